//! The in-memory test bench of the shard core: one [`ShardState`], clients that are real
//! sans-IO `rtc` PeerConnections (full ICE, DTLS client, Opus/VP8, NACK, the RTCP tap — the
//! load generator's recipe), datagrams moved between them in memory, and a fake clock that
//! only moves when [`Bench::step`] says so. A client follows the Chorus negotiation rules: it
//! answers server offers, ignores one that crosses its own offer, and applies the server's
//! answer. No sockets, no sleeps, no threads.

use crate::media::peer::{MediaGrants, MediaMember, PeerKey};
use crate::media::state::ShardState;
use crate::protocol::{
    MediaEvent, MediaRequest, TrackInfo, TrackKind, TrackSource, TrackSourceInfo,
};
use crate::rtp::connection::{codec, opus, vp8, Ice, Recipe};
use crate::rtp::rtcp_tap::{feedback, RtcpTap, RTCP_TAP_SLOT};
use bytes::BytesMut;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// The fake clock's step per [`Bench::step`].
pub const TICK: Duration = Duration::from_millis(5);
/// The shard's one host candidate.
pub const SERVER: &str = "127.0.0.1:40000";

/// What a client's connection can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codecs {
    /// Opus, VP8 and VP9.
    OpusAndVp8,
    /// Opus and VP9 only: it cannot play VP8.
    OpusAndVp9,
}

/// One track a client sends.
struct OutTrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    kind: TrackKind,
    payload_type: Option<u8>,
    seq: u16,
    ts: u32,
}

/// A test client: its connection, what the server told it and what it received.
pub struct Client {
    pub key: PeerKey,
    pub peer_id: String,
    pub addr: SocketAddr,
    pub pc: RTCPeerConnection,
    events: UnboundedReceiver<MediaEvent>,
    /// Every event the server sent, in order.
    pub log: Vec<MediaEvent>,
    /// Server offers not applied yet while [`Client::hold_offers`] is set.
    held: Vec<MediaEvent>,
    /// Keep server offers instead of answering them (to stage glare).
    pub hold_offers: bool,
    out: Vec<OutTrack>,
    /// RTP packets received, by the receiving leg's track id.
    pub received: HashMap<String, u64>,
    /// Keyframe requests (PLI/FIR) received for the tracks it sends.
    pub keyframe_requests: u64,
    pub connected: bool,
    next_timeout: Option<Instant>,
    /// Drop the next datagrams the server sends to this client that look like RTP (to
    /// provoke NACKs): how many more to drop.
    pub drop_rtp: usize,
    /// The client's network is gone: nothing reaches it or leaves it.
    pub offline: bool,
    /// When its last datagram reached the server.
    pub last_sent: Instant,
}

/// The shard core, its clients and the fake clock.
pub struct Bench {
    pub now: Instant,
    pub state: ShardState,
    pub server: SocketAddr,
    pub clients: Vec<Client>,
    next_key: PeerKey,
}

fn unix_epoch() -> Duration {
    Duration::from_secs(1_800_000_000)
}

impl Bench {
    pub fn new() -> Self {
        let now = Instant::now();
        let server: SocketAddr = SERVER.parse().expect("address");
        Self {
            now,
            state: ShardState::new(vec![server], now, unix_epoch()),
            server,
            clients: Vec::new(),
            next_key: 1,
        }
    }

    /// A client joins `room` with all grants and both codecs; returns its index.
    pub fn join(&mut self, room: &str, peer_id: &str) -> usize {
        self.join_with(room, peer_id, MediaGrants::default(), Codecs::OpusAndVp8)
    }

    /// A client joins `room` with `grants`, able to receive `codecs`; returns its index.
    pub fn join_with(
        &mut self,
        room: &str,
        peer_id: &str,
        grants: MediaGrants,
        codecs: Codecs,
    ) -> usize {
        let key = self.next_key;
        self.next_key += 1;
        let addr: SocketAddr = format!("127.0.0.1:{}", 50_000 + key)
            .parse()
            .expect("address");
        let vp9 = (
            codec("video/VP9", 90_000, 0, "profile-id=0", 98),
            RtpCodecKind::Video,
        );
        let codec_list = match codecs {
            Codecs::OpusAndVp8 => vec![opus(""), vp8(), vp9],
            Codecs::OpusAndVp9 => vec![opus(""), vp9],
        };

        let mut recipe = Recipe::new(codec_list, Ice::Full, vec![addr]);
        recipe.nack_history = Some(1024);
        recipe.interceptors =
            Registry::new().with(Slot::from(RTCP_TAP_SLOT), RtcpTap::new(feedback));
        let (pc, _) = recipe.build(self.now).expect("client connection");
        let (tx, rx) = unbounded_channel();
        let member = MediaMember {
            room: room.to_owned(),
            peer_id: peer_id.to_owned(),
            grants,
            events: tx,
        };
        self.state.join(key, member, self.now);
        self.clients.push(Client {
            key,
            peer_id: peer_id.to_owned(),
            addr,
            pc,
            events: rx,
            log: Vec::new(),
            held: Vec::new(),
            hold_offers: false,
            out: Vec::new(),
            received: HashMap::new(),
            keyframe_requests: 0,
            connected: false,
            next_timeout: Some(self.now),
            drop_rtp: 0,
            offline: false,
            last_sent: self.now,
        });
        self.turn();
        self.clients.len() - 1
    }

    /// Client `c` sends a media request.
    pub fn request(&mut self, c: usize, request: MediaRequest) {
        let key = self.clients[c].key;
        self.state.handle_request(key, request, self.now);
        self.turn();
    }

    /// Client `c` leaves (its signaling session ended).
    pub fn leave(&mut self, c: usize) {
        let key = self.clients[c].key;
        self.state.leave(key, self.now);
        self.turn();
    }

    /// Client `c` offers a receive-only video section: its leg declares its video codecs.
    pub fn declare_video(&mut self, c: usize) {
        let now = self.now;
        let client = &mut self.clients[c];
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            streams: vec![],
            send_encodings: vec![],
        };
        client
            .pc
            .add_transceiver_from_kind(RtpCodecKind::Video, Some(init))
            .expect("transceiver");
        let sdp = client.offer(now);
        self.request(
            c,
            MediaRequest::Offer {
                sdp,
                tracks: vec![],
            },
        );
    }

    /// Client `c` adds send-only tracks (`kinds`) and offers them.
    pub fn publish(&mut self, c: usize, kinds: &[TrackKind]) {
        let now = self.now;
        let client = &mut self.clients[c];
        for kind in kinds {
            client.add_track(*kind);
        }
        let sdp = client.offer(now);
        let tracks = client.declared_sources();
        self.request(c, MediaRequest::Offer { sdp, tracks });
    }

    /// Ends a shard turn: the state processes what it got and its datagrams reach the clients.
    fn turn(&mut self) {
        self.state.finish_turn(self.now);
        let transmits: Vec<_> = self.state.drain_transmits().collect();
        for t in transmits {
            let Some(client) = self
                .clients
                .iter_mut()
                .find(|c| c.addr == t.to && !c.offline)
            else {
                continue;
            };
            if client.drop_rtp > 0 && t.data.len() > 100 && matches!(t.data[0], 128..=191) {
                client.drop_rtp -= 1;
                continue;
            }
            let msg = TaggedBytesMut {
                now: self.now,
                transport: TransportContext {
                    local_addr: t.to,
                    peer_addr: t.local,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: t.data,
            };
            let _ = client.pc.handle_read(msg);
        }
    }

    /// One tick of the fake clock: clients act on server events and timers, their datagrams
    /// reach the state, the state's timers run, and its datagrams reach the clients.
    pub fn step(&mut self) {
        self.now += TICK;
        let now = self.now;
        let mut requests = Vec::new();
        for client in &mut self.clients {
            for request in client.handle_events(now) {
                requests.push((client.key, request));
            }
        }
        for (key, request) in requests {
            self.state.handle_request(key, request, now);
        }
        for client in &mut self.clients {
            client.drive(now);
            while let Some(msg) = client.pc.poll_write() {
                if client.offline {
                    continue;
                }
                client.last_sent = now;
                self.state
                    .handle_datagram(msg.transport.peer_addr, client.addr, &msg.message, now);
            }
            client.next_timeout = client.pc.poll_timeout();
        }
        if self.state.poll_timeout().is_some_and(|t| t <= now) {
            self.state.handle_timeout(now);
        }
        self.turn();
        for client in &mut self.clients {
            client.drain(now);
        }
    }

    /// Steps until `done` holds; panics after `max` steps (fake time: `max * TICK`).
    pub fn run_until(&mut self, max: usize, what: &str, done: impl Fn(&Bench) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        if !done(self) {
            for c in &self.clients {
                let server = self.state.peer(c.key);
                eprintln!(
                    "{}: connected {} local offer {} remote offer {} | server: needs offer {:?} local offer {:?} errors {:?}",
                    c.peer_id,
                    c.connected,
                    c.pc.pending_local_description().is_some(),
                    c.pc.pending_remote_description().is_some(),
                    server.map(|p| p.needs_offer),
                    server.map(|p| p.pc.pending_local_description().is_some()),
                    c.errors(),
                );
            }
            panic!("not reached after {max} steps: {what}");
        }
    }

    /// Steps `n` times.
    pub fn run(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Every connected client that publishes sends `n` packets per track, one step apart.
    pub fn send(&mut self, n: usize) {
        for _ in 0..n {
            let now = self.now;
            for client in &mut self.clients {
                client.send_packet(now, None);
            }
            self.step();
        }
    }

    /// Client `c` sends `n` packets on its track of `kind`, one step apart.
    pub fn send_from(&mut self, c: usize, kind: TrackKind, n: usize) {
        for _ in 0..n {
            let now = self.now;
            self.clients[c].send_packet(now, Some(kind));
            self.step();
        }
    }

    /// Runs until every client's connection is up and no offer is outstanding anywhere, then
    /// has every publisher send two packets per track (a track enters the room with its first
    /// packet) and runs until that negotiation settles too.
    pub fn settle(&mut self) {
        self.stabilize();
        self.send(2);
        self.stabilize();
    }

    fn stable(&self) -> bool {
        self.clients.iter().all(|c| {
            (c.connected || c.pc.remote_description().is_none())
                && c.pc.pending_local_description().is_none()
                && c.pc.pending_remote_description().is_none()
                && self
                    .state
                    .peer(c.key)
                    .is_none_or(|p| !p.needs_offer && p.pc.pending_local_description().is_none())
        })
    }

    /// Runs until every client is connected and no offer is outstanding anywhere.
    pub fn stabilize(&mut self) {
        self.run_until(600, "every client connected and negotiated", Bench::stable);
        self.run(4);
    }
}

impl Client {
    fn add_track(&mut self, kind: TrackKind) {
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
                    mime_type: "video/VP8".into(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
            ),
        };
        let track = MediaStreamTrack::new(
            format!("stream-{}", self.peer_id),
            format!("{}-{ssrc}", self.peer_id),
            "test".into(),
            rtc_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        let id = self
            .pc
            .add_transceiver_from_track(track, Some(init))
            .expect("transceiver");
        let sender = self
            .pc
            .rtp_transceiver(id)
            .and_then(|t| t.sender())
            .expect("sender");
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

    fn declared_sources(&mut self) -> Vec<TrackSourceInfo> {
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
    fn handle_events(&mut self, now: Instant) -> Vec<MediaRequest> {
        let mut requests = Vec::new();
        let mut incoming = Vec::new();
        if !self.hold_offers {
            incoming.append(&mut self.held);
        }
        while let Ok(event) = self.events.try_recv() {
            self.log.push(event.clone());
            incoming.push(event);
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

    fn drive(&mut self, now: Instant) {
        if self.next_timeout.is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
    }

    /// Reads what the connection delivered: state changes, RTP, keyframe requests.
    fn drain(&mut self, _now: Instant) {
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                self.connected = state == RTCPeerConnectionState::Connected;
            }
        }
        while let Some(msg) = self.pc.poll_read() {
            match msg.message {
                RTCMessage::RtpPacket(track_id, _) => {
                    *self.received.entry(track_id).or_default() += 1;
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in &packets {
                        let any = p.as_any();
                        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                            self.keyframe_requests += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends one packet on each track (of `kind`, if given) whose payload type is negotiated.
    fn send_packet(&mut self, now: Instant, kind: Option<TrackKind>) {
        if !self.connected {
            return;
        }
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
            // A VP8 descriptor (start of partition) and a keyframe header, then filler.
            let mut payload = BytesMut::from(&[0x10u8, 0x00, 0x9d, 0x01, 0x2a][..]);
            payload.resize(160, 0xAB);
            packet.payload = payload.freeze();
            t.seq = t.seq.wrapping_add(1);
            t.ts = t.ts.wrapping_add(3000);
            if let Some(mut s) = self.pc.rtp_sender(t.sender) {
                let _ = s.write_rtp(now, packet);
            }
        }
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
    pub fn errors(&self) -> Vec<crate::protocol::MediaErrorCode> {
        self.log
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Error { code, .. } => Some(*code),
                _ => None,
            })
            .collect()
    }
}
