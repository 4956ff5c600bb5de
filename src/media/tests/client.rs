//! A test client of the shard core: a real sans-IO `rtc` PeerConnection (full ICE, DTLS
//! client) that follows the Chorus negotiation rules — it answers server offers, ignores one
//! that crosses its own offer, applies the server's answer — sends paced test RTP on its
//! tracks, and counts what it receives (RTP per track, keyframe requests). The bench
//! (`harness.rs`) moves its datagrams and drives its clock.

use crate::media::codecs::H264_FMTP;
use crate::media::keyframe::starts_keyframe;
use crate::media::peer::PeerKey;
use crate::protocol::{
    MediaErrorCode, MediaEvent, MediaRequest, TrackInfo, TrackKind, TrackSource, TrackSourceInfo,
};
use crate::rtp::connection::{add_sendonly_track, SendTrack};
use crate::rtp::dtls_repeat::RepeatFilter;
use bytes::BytesMut;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

/// Puts `level` on `packet` as the audio-level extension, at the id the sender negotiated.
fn set_audio_level(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
    packet: &mut rtc::rtp::Packet,
    level: u8,
) {
    let Some(mut s) = pc.rtp_sender(sender) else {
        return;
    };
    let params = s.get_parameters();
    let mut exts = params.rtp_parameters.header_extensions.iter();
    if let Some(h) = exts.find(|h| h.uri == AUDIO_LEVEL_URI) {
        let value = bytes::Bytes::copy_from_slice(&[level & 0x7f]);
        let _ = packet.header.set_extension(h.id as u8, value);
    }
}

/// One track a client sends.
pub struct OutTrack {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub kind: TrackKind,
    pub payload_type: Option<u8>,
    pub seq: u16,
    pub ts: u32,
}

/// A test client: its connection, what the server told it and what it received.
pub struct Client {
    pub key: PeerKey,
    pub peer_id: String,
    pub addr: SocketAddr,
    pub pc: RTCPeerConnection,
    pub events: UnboundedReceiver<MediaEvent>,
    /// Every event the server sent, in order.
    pub log: Vec<MediaEvent>,
    /// Server offers not applied yet while [`Client::hold_offers`] is set.
    pub held: Vec<MediaEvent>,
    /// Keep server offers instead of answering them (to stage glare).
    pub hold_offers: bool,
    /// Only log what the server sends (a scripted peer whose requests the test makes).
    pub passive: bool,
    pub out: Vec<OutTrack>,
    /// RTP packets received, by the receiving leg's track id.
    pub received: HashMap<String, u64>,
    /// Every RTP packet received per track: (sequence number, timestamp, payload).
    pub packets: HashMap<String, Vec<(u16, u32, bytes::Bytes)>>,
    /// Keyframe requests (PLI/FIR) received for the tracks it sends.
    pub keyframe_requests: u64,
    /// The media SSRC of each PLI received, in order.
    pub pli_ssrcs: Vec<u32>,
    /// The next video packet it sends opens a keyframe (set at start and by each keyframe
    /// request unless [`Client::ignore_keyframe_requests`]); the others are delta frames.
    pub keyframe_due: bool,
    /// A publisher that does not answer keyframe requests.
    pub ignore_keyframe_requests: bool,
    /// For each track received: whether each packet opened a keyframe, in arrival order.
    pub keyframe_flags: HashMap<String, Vec<bool>>,
    pub connected: bool,
    pub next_timeout: Option<Instant>,
    /// Drop the next datagrams the server sends to this client that look like RTP (to
    /// provoke NACKs): how many more to drop.
    pub drop_rtp: usize,
    /// The client's network is gone: nothing reaches it or leaves it.
    pub offline: bool,
    /// Every DTLS record the client sends is lost on the way to the server.
    pub drop_dtls: bool,
    /// When its last datagram reached the server.
    pub last_sent: Instant,
    /// The codec of the video tracks it publishes: `video/VP8` or `video/H264`.
    pub video_mime: &'static str,
    /// Holds back the server's repeated DTLS flight 4, as the load generator does.
    pub dtls_repeats: RepeatFilter,
    /// The RFC 6464 level (−dBov) its audio packets carry, when it negotiated the extension.
    pub audio_level: Option<u8>,
    /// The audio-level values received, per track, in arrival order.
    pub audio_levels_in: HashMap<String, Vec<u8>>,
}

impl Client {
    pub fn new(
        key: PeerKey,
        peer_id: &str,
        addr: SocketAddr,
        pc: RTCPeerConnection,
        events: UnboundedReceiver<MediaEvent>,
        now: Instant,
    ) -> Self {
        Self {
            key,
            peer_id: peer_id.to_owned(),
            addr,
            pc,
            events,
            log: Vec::new(),
            held: Vec::new(),
            hold_offers: false,
            passive: false,
            out: Vec::new(),
            received: HashMap::new(),
            packets: HashMap::new(),
            keyframe_requests: 0,
            pli_ssrcs: Vec::new(),
            keyframe_due: true,
            ignore_keyframe_requests: false,
            keyframe_flags: HashMap::new(),
            connected: false,
            next_timeout: Some(now),
            drop_rtp: 0,
            offline: false,
            drop_dtls: false,
            last_sent: now,
            video_mime: "video/VP8",
            dtls_repeats: RepeatFilter::for_client(),
            audio_level: None,
            audio_levels_in: HashMap::new(),
        }
    }

    pub fn add_track(&mut self, kind: TrackKind) {
        let ssrc: u32 = rand::random();
        let (rtc_kind, codec) = match kind {
            TrackKind::Audio => (
                RtpCodecKind::Audio,
                RTCRtpCodec {
                    mime_type: "audio/opus".into(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
            ),
            TrackKind::Video => (
                RtpCodecKind::Video,
                RTCRtpCodec {
                    mime_type: self.video_mime.into(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: if self.video_mime == "video/H264" {
                        H264_FMTP.into()
                    } else {
                        String::new()
                    },
                    rtcp_feedback: vec![],
                },
            ),
        };
        let track = SendTrack {
            stream_id: format!("stream-{}", self.peer_id),
            track_id: format!("{}-{ssrc}", self.peer_id),
            label: "test".into(),
            kind: rtc_kind,
            ssrc,
            codec,
        };
        let sender = add_sendonly_track(&mut self.pc, track).expect("send transceiver");
        self.out.push(OutTrack {
            sender,
            ssrc,
            kind,
            payload_type: None,
            seq: rand::random(),
            ts: rand::random(),
        });
    }

    /// Creates and applies an offer; returns its SDP.
    pub fn offer(&mut self, now: Instant) -> String {
        let offer = self.pc.create_offer(None).expect("offer");
        self.pc
            .set_local_description(now, offer)
            .expect("set offer");
        self.pc.local_description().map(|d| d.sdp).expect("sdp")
    }

    pub fn declared_sources(&mut self) -> Vec<TrackSourceInfo> {
        let mut tracks = Vec::new();
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            let Some(t) = self.pc.rtp_transceiver(id) else {
                continue;
            };
            if let (Some(mid), Some(sender)) = (t.mid().clone(), t.sender()) {
                if let Some(out) = self.out.iter().find(|o| o.sender == sender) {
                    tracks.push(TrackSourceInfo {
                        mid,
                        source: match out.kind {
                            TrackKind::Audio => TrackSource::Microphone,
                            TrackKind::Video => TrackSource::Camera,
                        },
                        muted: false,
                    });
                }
            }
        }
        tracks
    }

    /// Applies the server's events; returns the requests they call for (answers).
    pub fn handle_events(&mut self, now: Instant) -> Vec<MediaRequest> {
        let mut requests = Vec::new();
        let mut incoming = Vec::new();
        if !self.hold_offers {
            incoming.append(&mut self.held);
        }
        while let Ok(event) = self.events.try_recv() {
            self.log.push(event.clone());
            if !self.passive {
                incoming.push(event);
            }
        }
        for event in incoming {
            match event {
                MediaEvent::Offer { .. } if self.hold_offers => self.held.push(event),
                MediaEvent::Offer { sdp, .. } => {
                    if self.pc.pending_local_description().is_some() {
                        continue; // glare: the server is polite and re-offers
                    }
                    let offer = RTCSessionDescription::offer(sdp).expect("server offer");
                    self.pc
                        .set_remote_description(now, offer)
                        .expect("apply offer");
                    let answer = self.pc.create_answer(None).expect("answer");
                    self.pc
                        .set_local_description(now, answer)
                        .expect("set answer");
                    let sdp = self.pc.local_description().map(|d| d.sdp).expect("sdp");
                    requests.push(MediaRequest::Answer { sdp });
                }
                MediaEvent::Answer { sdp } => {
                    let answer = RTCSessionDescription::answer(sdp).expect("server answer");
                    self.pc
                        .set_remote_description(now, answer)
                        .expect("apply answer");
                }
                MediaEvent::Candidate { candidate } => {
                    let _ = self.pc.add_remote_candidate(RTCIceCandidateInit {
                        candidate: candidate.candidate,
                        sdp_mid: candidate.sdp_mid,
                        sdp_mline_index: candidate.sdp_m_line_index,
                        username_fragment: candidate.username_fragment,
                        url: None,
                    });
                }
                _ => {}
            }
        }
        requests
    }

    pub fn drive(&mut self, now: Instant) {
        if self.next_timeout.is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
    }

    /// The id this connection's receivers negotiated for the header extension `uri`.
    pub fn received_extension_id(&mut self, uri: &str) -> Option<u8> {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        ids.into_iter().find_map(|id| {
            let receiver = self.pc.rtp_transceiver(id)?.receiver()?;
            let mut r = self.pc.rtp_receiver(receiver)?;
            let params = r.get_parameters();
            let ext = params.rtp_parameters.header_extensions.iter();
            ext.filter(|h| h.uri == uri).map(|h| h.id as u8).next()
        })
    }

    /// Reads what the connection delivered: state changes, RTP, keyframe requests.
    pub fn drain(&mut self, _now: Instant) {
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                self.connected = state == RTCPeerConnectionState::Connected;
            }
        }
        let mut level_id = None;
        while let Some(msg) = self.pc.poll_read() {
            match msg.message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    let id = *level_id
                        .get_or_insert_with(|| self.received_extension_id(AUDIO_LEVEL_URI));
                    if let Some(level) = id.and_then(|id| packet.header.get_extension(id)) {
                        let levels = self.audio_levels_in.entry(track_id.clone()).or_default();
                        levels.extend(level.first().copied());
                    }
                    let key = starts_keyframe("video/VP8", &packet.payload);
                    self.keyframe_flags
                        .entry(track_id.clone())
                        .or_default()
                        .push(key);
                    self.packets.entry(track_id.clone()).or_default().push((
                        packet.header.sequence_number,
                        packet.header.timestamp,
                        packet.payload.clone(),
                    ));
                    *self.received.entry(track_id).or_default() += 1;
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in &packets {
                        let any = p.as_any();
                        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                            self.pli_ssrcs.push(pli.media_ssrc);
                        }
                        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                            self.keyframe_requests += 1;
                            self.keyframe_due |= !self.ignore_keyframe_requests;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends one packet on each track (of `kind`, if given) whose payload type is negotiated.
    pub fn send_packet(&mut self, now: Instant, kind: Option<TrackKind>) {
        if !self.connected {
            return;
        }
        let video_mime = self.video_mime;
        let mut sent_video = false;
        for t in self
            .out
            .iter_mut()
            .filter(|t| kind.is_none_or(|k| k == t.kind))
        {
            if t.payload_type.is_none() {
                t.payload_type = self.pc.rtp_sender(t.sender).and_then(|mut s| {
                    let params = s.get_parameters();
                    params.rtp_parameters.codecs.first().map(|c| c.payload_type)
                });
            }
            let Some(pt) = t.payload_type else {
                continue;
            };
            let mut packet = rtc::rtp::Packet::default();
            packet.header.version = 2;
            packet.header.marker = true;
            packet.header.payload_type = pt;
            packet.header.sequence_number = t.seq;
            packet.header.timestamp = t.ts;
            packet.header.ssrc = t.ssrc;
            if let (TrackKind::Audio, Some(level)) = (t.kind, self.audio_level) {
                set_audio_level(&mut self.pc, t.sender, &mut packet, level);
            }
            // A VP8 descriptor (start of partition) and a keyframe header (P=0) or a delta
            // frame's (P=1) — for H264 an IDR or a non-IDR slice NAL unit header — then
            // filler. Audio carries the same bytes (nothing reads them).
            let video = t.kind == TrackKind::Video;
            let delta = video && !self.keyframe_due;
            sent_video |= video;
            let start: [u8; 5] = if video && video_mime == "video/H264" {
                [if delta { 0x41 } else { 0x65 }, 0x88, 0x84, 0x00, 0x00]
            } else {
                [0x10, u8::from(delta), 0x9d, 0x01, 0x2a]
            };
            let mut payload = BytesMut::from(&start[..]);
            payload.resize(160, 0xAB);
            // Which packet this is, so receivers can tell payloads apart.
            payload[8..10].copy_from_slice(&t.seq.to_be_bytes());
            packet.payload = payload.freeze();
            t.seq = t.seq.wrapping_add(1);
            t.ts = t.ts.wrapping_add(3000);
            if let Some(mut s) = self.pc.rtp_sender(t.sender) {
                let _ = s.write_rtp(now, packet);
            }
        }
        if sent_video {
            self.keyframe_due = false;
        }
    }

    /// Whether each video packet received on `track_id` opened a keyframe, in order.
    pub fn keyframe_flags_on(&self, track_id: &str) -> &[bool] {
        self.keyframe_flags
            .get(track_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Asks the server for a keyframe of every track it receives (PLI on each receiver).
    pub fn request_keyframes(&mut self, now: Instant) {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            let Some(receiver) = self.pc.rtp_transceiver(id).and_then(|t| t.receiver()) else {
                continue;
            };
            let Some(mut r) = self.pc.rtp_receiver(receiver) else {
                continue;
            };
            let ssrcs: Vec<u32> = r.track().ssrcs().collect();
            for ssrc in ssrcs {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                };
                let _ = r.write_rtcp(now, vec![Box::new(pli)]);
            }
        }
    }

    /// The announcements of `peer_id`'s track of `kind` this client got.
    pub fn announced(&self, peer_id: &str, kind: TrackKind) -> Vec<&TrackInfo> {
        self.log
            .iter()
            .filter_map(|e| match e {
                MediaEvent::TrackPublished(info)
                    if info.peer_id == peer_id && info.kind == kind =>
                {
                    Some(info)
                }
                _ => None,
            })
            .collect()
    }

    /// The id of `peer_id`'s track of `kind`, from its announcement.
    pub fn track_id(&self, peer_id: &str, kind: TrackKind) -> String {
        self.announced(peer_id, kind)
            .last()
            .map(|i| i.track_id.clone())
            .unwrap_or_else(|| panic!("{} was not told about {peer_id}'s {kind:?}", self.peer_id))
    }

    /// Packets received on the track `track_id`.
    pub fn received_on(&self, track_id: &str) -> u64 {
        self.received.get(track_id).copied().unwrap_or(0)
    }

    pub fn total_received(&self) -> u64 {
        self.received.values().sum()
    }

    /// Server offers this client got.
    pub fn offers(&self) -> usize {
        self.log
            .iter()
            .filter(|e| matches!(e, MediaEvent::Offer { .. }))
            .count()
    }

    /// The media error codes this client was sent.
    pub fn errors(&self) -> Vec<MediaErrorCode> {
        self.log
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Error { code, .. } => Some(*code),
                _ => None,
            })
            .collect()
    }
}
