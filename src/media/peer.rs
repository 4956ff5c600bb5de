//! One client's PeerConnection on the server: its construction (own ICE credentials, the shard's
//! host candidates, ICE-lite), SDP negotiation under the "server is polite" rule, and the
//! subscription legs it sends. It does not know about rooms or other peers: the room decides
//! what to subscribe and where packets go; this type only applies it to one connection.

use super::codecs::{codec_matches, server_recipe};
use super::fault::MediaFault;
use super::recycle::Recycler;
use super::rewrite::{ExtensionMap, SequenceRewriter};
use super::sdp::{
    check_answer_directions, check_offer, declared_codecs, without_rtcp_candidates, OfferProblem,
};
use super::stats::ShardCounters;
use crate::protocol::{IceCandidate, MediaErrorCode, MediaEvent, OfferedTrack, TrackSourceInfo};
use crate::rtp::dtls_repeat::RepeatFilter;
use rand::Rng;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::{RTCSdpType, RTCSessionDescription};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Shard-local identity of a peer.
pub type PeerKey = u64;
/// Shard-local identity of a published track.
pub type TrackKey = u64;

/// Shard-local identity of a media room.
pub type RoomKey = u64;
/// Every peer of a shard, by key.
pub type Peers = HashMap<PeerKey, Peer>;

/// What one shard turn collects while rooms and peers act: the peers whose connection needs
/// servicing at the end of the turn (each also carries a `touched` flag), the counters, and
/// the shard's clock anchor (for abs-send-time and the NTP time of receiver reports).
pub struct Turn {
    pub touched: Vec<PeerKey>,
    pub counters: ShardCounters,
    /// The shard's time origin, and the Unix time it stands for.
    pub epoch: Instant,
    pub epoch_unix: Duration,
}

impl Turn {
    pub fn new(epoch: Instant, epoch_unix: Duration) -> Self {
        Self {
            touched: Vec::new(),
            counters: ShardCounters::default(),
            epoch,
            epoch_unix,
        }
    }

    /// Queues `peer` for the end-of-turn processing (reads, events, writes, timers).
    pub fn touch(&mut self, peer: &mut Peer) {
        if !peer.touched {
            peer.touched = true;
            self.touched.push(peer.key);
        }
    }

    /// `now` as a 64-bit NTP timestamp on the wall clock our sender reports use.
    pub fn ntp(&self, now: Instant) -> u64 {
        let unix = self.epoch_unix + now.saturating_duration_since(self.epoch);
        rtc::shared::time::SystemInstant::unix2ntp(unix)
    }
}

/// What a participant may do on the media plane (from its access token's grants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaGrants {
    pub publish: bool,
    pub subscribe: bool,
}

impl Default for MediaGrants {
    fn default() -> Self {
        Self {
            publish: true,
            subscribe: true,
        }
    }
}

/// Who a media participant is: enough to build (or rebuild) its connection.
#[derive(Debug, Clone)]
pub struct MediaMember {
    pub room: String,
    pub peer_id: String,
    pub grants: MediaGrants,
    pub events: UnboundedSender<MediaEvent>,
}

/// One forwarded track on this peer's connection.
pub struct Subscription {
    pub track: TrackKey,
    pub track_id: String,
    pub publisher_peer_id: String,
    pub sender_id: RTCRtpSenderId,
    pub ssrc: u32,
    /// Payload type on this leg; `None` until negotiated (nothing is forwarded before).
    pub payload_type: Option<u8>,
    pub extensions: ExtensionMap,
    pub rewriter: SequenceRewriter,
    pub mid: Option<String>,
    pub kind: RtpCodecKind,
    pub codec: RTCRtpCodec,
    /// Video that starts or resumes on this leg waits for a keyframe: nothing is forwarded
    /// until a packet that opens one (see `keyframe.rs`).
    pub awaiting_keyframe: bool,
}

impl Subscription {
    /// The stream on this leg starts again (negotiated, unmuted): the next forwarded packet
    /// re-anchors the numbering and, for video, is the start of a keyframe.
    pub fn restart(&mut self) {
        self.rewriter.pause();
        self.awaiting_keyframe = self.kind == RtpCodecKind::Video;
    }
}

/// A client's connection and everything negotiated on it.
pub struct Peer {
    pub key: PeerKey,
    pub peer_id: String,
    pub room: String,
    pub room_key: RoomKey,
    pub grants: MediaGrants,
    pub ufrag: String,
    /// The server side's ICE password (the key of the client's STUN checks).
    pub pwd: String,
    /// The shard's host candidates this connection advertises.
    candidates: Vec<SocketAddr>,
    pub pc: RTCPeerConnection,
    events: UnboundedSender<MediaEvent>,
    /// Track sources the client declared in its offers, by mid.
    pub sources: HashMap<String, TrackSourceInfo>,
    /// The tracks this peer publishes: rtc receiver track id → room track.
    pub published: HashMap<String, (TrackKey, RTCRtpReceiverId)>,
    pub subscriptions: HashMap<TrackKey, Subscription>,
    /// Transceivers of ended subscriptions, reused by the next ones (bounded SDP).
    pub recycler: Recycler,
    /// Our sender SSRC on this leg → the forwarded track (for PLI/FIR routing).
    pub ssrc_to_track: HashMap<u32, TrackKey>,
    /// Streams refused because the client may not publish (rtc track ids).
    pub refused_tracks: HashSet<String>,
    /// Tracks the client unsubscribed from (never re-subscribed automatically).
    pub opted_out: HashSet<String>,
    /// A server offer is wanted as soon as the signaling state allows.
    pub needs_offer: bool,
    /// When a description of the client was first applied (the DTLS deadline runs from it).
    pub negotiated_at: Option<Instant>,
    /// A DTLS alert arrived from the client this turn.
    pub dtls_alert_in: bool,
    pub next_timeout: Option<Instant>,
    local_candidates: Vec<RTCIceCandidateInit>,
    candidates_sent: bool,
    pub connected: bool,
    /// Queued for the shard's end-of-turn processing.
    pub touched: bool,
    /// When the last datagram from this client arrived (media-plane liveness).
    pub last_heard: Instant,
    /// Holds back the client's repeated DTLS flight 3 so our flight 4 is retransmitted.
    pub dtls_repeats: RepeatFilter,
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Peer {
    pub fn new(
        key: PeerKey,
        member: MediaMember,
        room_key: RoomKey,
        candidates: &[SocketAddr],
        now: Instant,
    ) -> Result<Self, rtc::shared::error::Error> {
        let ufrag = random_token(16);
        let pwd = random_token(24);
        let recipe = server_recipe(&ufrag, &pwd, candidates);
        let (pc, local_candidates) = recipe.build(now)?;
        Ok(Self {
            key,
            peer_id: member.peer_id,
            room: member.room,
            room_key,
            grants: member.grants,
            ufrag,
            pwd,
            candidates: candidates.to_vec(),
            pc,
            events: member.events,
            sources: HashMap::new(),
            published: HashMap::new(),
            subscriptions: HashMap::new(),
            recycler: Recycler::default(),
            ssrc_to_track: HashMap::new(),
            opted_out: HashSet::new(),
            refused_tracks: HashSet::new(),
            needs_offer: false,
            negotiated_at: None,
            dtls_alert_in: false,
            next_timeout: Some(now),
            local_candidates,
            candidates_sent: false,
            connected: false,
            touched: false,
            last_heard: now,
            dtls_repeats: RepeatFilter::for_server(),
        })
    }

    /// Who this peer is, to rebuild its connection with the same identity.
    pub fn member(&self) -> MediaMember {
        MediaMember {
            room: self.room.clone(),
            peer_id: self.peer_id.clone(),
            grants: self.grants,
            events: self.events.clone(),
        }
    }

    /// Sends an event to this peer's client; a closed session just drops it.
    pub fn send(&self, event: MediaEvent) {
        let _ = self.events.send(event);
    }

    pub fn fault(&self, fault: MediaFault) {
        self.send(MediaEvent::Error {
            code: fault.code,
            message: fault.message,
        });
    }

    fn has_local_offer(&self) -> bool {
        self.pc.pending_local_description().is_some()
    }

    fn has_remote_offer(&self) -> bool {
        self.pc.pending_remote_description().is_some()
    }

    /// Applies a client offer: rolls back our own outstanding offer if there is one (we are
    /// the polite side), answers, and remembers to re-offer afterwards.
    pub fn apply_offer(
        &mut self,
        sdp: String,
        tracks: Vec<TrackSourceInfo>,
        now: Instant,
    ) -> Result<(), MediaFault> {
        check_offer(&sdp).map_err(|p| match p {
            OfferProblem::Unparseable(m) => MediaFault::new(MediaErrorCode::BadSdp, m),
            OfferProblem::NoCommonCodec(m) => MediaFault::new(MediaErrorCode::NoCommonCodec, m),
        })?;
        if self.has_remote_offer() {
            return Err(MediaFault::new(
                MediaErrorCode::WrongState,
                "an offer from this client is already being answered",
            ));
        }
        let offer = RTCSessionDescription::offer(sdp)
            .map_err(|e| MediaFault::new(MediaErrorCode::BadSdp, e.to_string()))?;
        if self.has_local_offer() {
            let rollback = RTCSessionDescription::rollback(None)
                .map_err(|e| MediaFault::new(MediaErrorCode::Internal, e.to_string()))?;
            self.pc.set_local_description(now, rollback).map_err(|e| {
                MediaFault::new(MediaErrorCode::Internal, format!("rollback failed: {e}"))
            })?;
            self.needs_offer = true;
        }
        let sources_before = self.sources.clone();
        for info in tracks {
            self.sources.insert(info.mid.clone(), info);
        }
        if let Err(e) = self.pc.set_remote_description(now, offer) {
            self.sources = sources_before;
            self.undo_refused_offer(now)?;
            return Err(MediaFault::new(MediaErrorCode::BadSdp, e.to_string()));
        }
        self.negotiated_at.get_or_insert(now);
        let answer = match self.pc.create_answer(None) {
            Ok(answer) => answer,
            Err(e) => {
                self.rollback_remote(now);
                return Err(MediaFault::new(MediaErrorCode::BadSdp, e.to_string()));
            }
        };
        if let Err(e) = self.pc.set_local_description(now, answer) {
            self.rollback_remote(now);
            return Err(MediaFault::new(MediaErrorCode::BadSdp, e.to_string()));
        }
        let sdp = self
            .pc
            .local_description()
            .map(|d| without_rtcp_candidates(&d.sdp))
            .unwrap_or_default();
        self.send(MediaEvent::Answer { sdp });
        self.send_candidates_once();
        Ok(())
    }

    /// The stack refused an offer after taking it half-way (signaling state, pending remote
    /// description, transceivers for its m-lines): puts the leg back as it was before it, so
    /// the next offer is answered. A leg that was never negotiated is rebuilt (the stack's
    /// rollback leaves the transceivers the refused offer created); a negotiated one is
    /// rolled back.
    fn undo_refused_offer(&mut self, now: Instant) -> Result<(), MediaFault> {
        if self.pc.current_remote_description().is_some() {
            self.rollback_remote(now);
            return Ok(());
        }
        self.rebuild_connection(now).map_err(|e| {
            MediaFault::new(
                MediaErrorCode::Internal,
                format!("could not rebuild the media connection: {e}"),
            )
        })
    }

    /// Replaces a never-negotiated connection by a fresh one with the same ICE credentials
    /// and candidates (the demux tables stay valid), carrying the pending subscriptions over.
    fn rebuild_connection(&mut self, now: Instant) -> Result<(), rtc::shared::error::Error> {
        let recipe = server_recipe(&self.ufrag, &self.pwd, &self.candidates);
        let (pc, local_candidates) = recipe.build(now)?;
        self.pc = pc;
        self.local_candidates = local_candidates;
        self.next_timeout = Some(now);
        self.ssrc_to_track.clear();
        self.recycler.clear();
        let subscriptions = std::mem::take(&mut self.subscriptions);
        for s in subscriptions.into_values() {
            if let Err(fault) = self.subscribe(
                s.track,
                &s.track_id,
                &s.publisher_peer_id,
                s.kind,
                &s.codec,
                now,
            ) {
                self.fault(fault);
            }
        }
        Ok(())
    }

    fn rollback_remote(&mut self, now: Instant) {
        if let Ok(rollback) = RTCSessionDescription::rollback(None) {
            let _ = self.pc.set_remote_description(now, rollback);
        }
    }

    /// Applies the client's answer to our outstanding offer.
    pub fn apply_answer(&mut self, sdp: String, now: Instant) -> Result<(), MediaFault> {
        if !self.has_local_offer() {
            return Err(MediaFault::new(
                MediaErrorCode::WrongState,
                "no server offer is waiting for an answer",
            ));
        }
        let offer = self
            .pc
            .pending_local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        check_answer_directions(&offer, &sdp)?;
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| MediaFault::new(MediaErrorCode::BadSdp, e.to_string()))?;
        if answer.sdp_type != RTCSdpType::Answer {
            return Err(MediaFault::new(MediaErrorCode::BadSdp, "not an answer"));
        }
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| MediaFault::new(MediaErrorCode::BadSdp, e.to_string()))?;
        self.negotiated_at.get_or_insert(now);
        Ok(())
    }

    /// Sends a server offer if one is needed and the signaling state is stable; otherwise
    /// keeps it pending.
    pub fn offer_if_needed(&mut self, now: Instant) {
        if !self.needs_offer || self.has_local_offer() || self.has_remote_offer() {
            return;
        }
        self.needs_offer = false;
        tracing::debug!(peer = %self.peer_id, subscriptions = self.subscriptions.len(), "server offer");
        let offer = match self.pc.create_offer(None) {
            Ok(o) => o,
            Err(e) => {
                self.fault(MediaFault::new(
                    MediaErrorCode::Internal,
                    format!("create offer: {e}"),
                ));
                return;
            }
        };
        if let Err(e) = self.pc.set_local_description(now, offer) {
            self.fault(MediaFault::new(
                MediaErrorCode::Internal,
                format!("set offer: {e}"),
            ));
            return;
        }
        self.refresh_mids();
        let tracks = self
            .subscriptions
            .values()
            .filter_map(|s| {
                Some(OfferedTrack {
                    mid: s.mid.clone()?,
                    peer_id: s.publisher_peer_id.clone(),
                    track_id: s.track_id.clone(),
                })
            })
            .collect();
        let sdp = self
            .pc
            .local_description()
            .map(|d| without_rtcp_candidates(&d.sdp))
            .unwrap_or_default();
        self.send(MediaEvent::Offer { sdp, tracks });
        self.send_candidates_once();
    }

    fn send_candidates_once(&mut self) {
        if self.candidates_sent {
            return;
        }
        self.candidates_sent = true;
        let mid = self
            .pc
            .get_transceivers()
            .collect::<Vec<_>>()
            .into_iter()
            .find_map(|t| self.pc.rtp_transceiver(t).and_then(|t| t.mid().clone()));
        for c in &self.local_candidates {
            self.send(MediaEvent::Candidate {
                candidate: IceCandidate {
                    candidate: c.candidate.clone(),
                    sdp_mid: mid.clone(),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                },
            });
        }
    }

    /// Adds a remote candidate the client trickled.
    pub fn add_remote_candidate(&mut self, candidate: IceCandidate) -> Result<(), MediaFault> {
        if candidate.candidate.trim().is_empty() || self.pc.remote_description().is_none() {
            // End-of-candidates, or trickled ahead of the offer: the server is ICE-lite and
            // learns the client's address from its connectivity checks, so nothing is lost.
            return Ok(());
        }
        self.pc
            .add_remote_candidate(RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_m_line_index,
                username_fragment: candidate.username_fragment,
                url: None,
            })
            .map_err(|e| MediaFault::new(MediaErrorCode::BadCandidate, e.to_string()))
    }

    /// Starts sending `track` to this client: a new sender with our own SSRCs; the next
    /// server offer carries it.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &mut self,
        track: TrackKey,
        track_id: &str,
        publisher_peer_id: &str,
        kind: RtpCodecKind,
        codec: &RTCRtpCodec,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let mut rng = rand::rng();
        let ssrc: u32 = rng.random();
        let rtx = (kind == RtpCodecKind::Video).then(|| RTCRtpRtxParameters { ssrc: rng.random() });
        let media_track = MediaStreamTrack::new(
            publisher_peer_id.to_owned(),
            track_id.to_owned(),
            track_id.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rtx,
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            }],
        );
        // A transceiver of its own, send-only: `add_track` would reuse the receive transceiver
        // of one of the client's published tracks, and a send-recv transceiver could be
        // claimed by the client's next offer (JSEP matching), stealing the subscription. The
        // m-line of an ended subscription of the same codec is reused first.
        let reused = self.recycler.reuse(&mut self.pc, &media_track, codec);
        let transceiver = match reused {
            Some(transceiver) => transceiver,
            None => self
                .pc
                .add_transceiver_from_track(
                    media_track,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![publisher_peer_id.to_owned()],
                        send_encodings: vec![],
                    }),
                )
                .map_err(|e| {
                    MediaFault::new(MediaErrorCode::Internal, format!("add transceiver: {e}"))
                })?,
        };
        let sender_id = self
            .pc
            .rtp_transceiver(transceiver)
            .and_then(|t| t.sender())
            .ok_or_else(|| {
                MediaFault::new(MediaErrorCode::Internal, "new transceiver has no sender")
            })?;
        let clock_rate = codec.clock_rate;
        self.ssrc_to_track.insert(ssrc, track);
        self.subscriptions.insert(
            track,
            Subscription {
                track,
                track_id: track_id.to_owned(),
                publisher_peer_id: publisher_peer_id.to_owned(),
                sender_id,
                ssrc,
                payload_type: None,
                extensions: ExtensionMap::default(),
                rewriter: SequenceRewriter::new(clock_rate, rng.random(), rng.random(), now),
                mid: None,
                kind,
                codec: codec.clone(),
                awaiting_keyframe: kind == RtpCodecKind::Video,
            },
        );
        self.needs_offer = true;
        Ok(())
    }

    /// Stops sending `track`; the next server offer removes it.
    pub fn unsubscribe(&mut self, track: TrackKey) -> bool {
        let Some(sub) = self.subscriptions.remove(&track) else {
            return false;
        };
        self.ssrc_to_track.remove(&sub.ssrc);
        if self.pc.remove_track(sub.sender_id).is_ok() {
            self.recycler.release(sub.sender_id, &sub.codec);
        }
        self.needs_offer = true;
        true
    }

    fn refresh_mids(&mut self) {
        let mut mids = HashMap::new();
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            if let Some(t) = self.pc.rtp_transceiver(id) {
                if let (Some(sender), Some(mid)) = (t.sender(), t.mid().clone()) {
                    mids.insert(sender, mid);
                }
            }
        }
        for sub in self.subscriptions.values_mut() {
            sub.mid = mids.get(&sub.sender_id).cloned();
        }
    }

    /// After a negotiation completes: the payload type and extension ids each pending
    /// subscription got on this leg. `publisher_exts` gives the publisher's negotiated
    /// (uri, id) list for a track. Returns the tracks that became active (they need a
    /// keyframe) and those whose codec this leg did not accept.
    pub fn activate_subscriptions(
        &mut self,
        publisher_exts: impl Fn(TrackKey) -> Vec<(String, u8)>,
    ) -> (Vec<TrackKey>, Vec<TrackKey>) {
        if self.has_local_offer() || self.has_remote_offer() {
            return (Vec::new(), Vec::new());
        }
        self.refresh_mids();
        let mut activated = Vec::new();
        let mut refused = Vec::new();
        let keys: Vec<TrackKey> = self.subscriptions.keys().copied().collect();
        for key in keys {
            let (sender_id, pending) = match self.subscriptions.get(&key) {
                Some(s) => (s.sender_id, s.payload_type.is_none()),
                None => continue,
            };
            if !pending {
                continue;
            }
            let Some(mut sender) = self.pc.rtp_sender(sender_id) else {
                continue;
            };
            let params = sender.get_parameters();
            let Some(sub) = self.subscriptions.get(&key) else {
                continue;
            };
            if sub.mid.is_none() {
                continue; // not yet in a negotiated m-line
            }
            let pt = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| codec_matches(&sub.codec, &c.rtp_codec))
                .map(|c| c.payload_type);
            let leg_exts: Vec<(String, u8)> = params
                .rtp_parameters
                .header_extensions
                .iter()
                .map(|h| (h.uri.clone(), h.id as u8))
                .collect();
            match pt {
                Some(pt) => {
                    let exts = publisher_exts(key);
                    if let Some(sub) = self.subscriptions.get_mut(&key) {
                        sub.payload_type = Some(pt);
                        sub.extensions = ExtensionMap::new(&exts, &leg_exts, sub.mid.as_deref());
                        sub.restart();
                    }
                    activated.push(key);
                }
                None => {
                    tracing::debug!(peer = %self.peer_id, codec = %sub.codec.mime_type, leg = ?params.rtp_parameters.codecs.iter().map(|c| c.rtp_codec.mime_type.clone()).collect::<Vec<_>>(), "subscription refused");
                    refused.push(key)
                }
            }
        }
        (activated, refused)
    }

    /// The codecs of `kind` the client declared in its latest remote description, if any.
    pub fn remote_codecs(&self, kind: RtpCodecKind) -> Option<Vec<RTCRtpCodec>> {
        let parsed = self.pc.remote_description()?.unmarshal().ok()?;
        declared_codecs(&parsed, kind)
    }

    /// The mid of the transceiver that holds `receiver`, if negotiated.
    pub fn mid_of_receiver(&mut self, receiver: RTCRtpReceiverId) -> Option<String> {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        ids.into_iter().find_map(|id| {
            let t = self.pc.rtp_transceiver(id)?;
            (t.receiver() == Some(receiver))
                .then(|| t.mid().clone())
                .flatten()
        })
    }

    /// Sends the pending server offer if the signaling state allows, and queues the peer.
    pub fn renegotiate(&mut self, turn: &mut Turn, now: Instant) {
        self.offer_if_needed(now);
        turn.touch(self);
    }

    /// Closes the connection (DTLS close alert goes out with the next write poll).
    pub fn close(&mut self) {
        let _ = rtc::sansio::Protocol::close(&mut self.pc);
    }
}
