//! One client's PeerConnection on the server: its construction (own ICE credentials, the shard's
//! host candidates, ICE-lite), SDP negotiation under the "server is polite" rule, and what the
//! leg can receive (`capabilities.rs`); the tracks it sends are in `sending.rs`. It does not
//! know about rooms or other peers: the room decides what to subscribe and where packets go;
//! this type only applies it to one connection.

use super::bwe::LegBwe;
use super::capabilities::ReceiveCaps;
use super::codecs::{server_recipe, NACK_CACHE_PACKETS, NACK_CACHE_PACKETS_FAST};
use super::datagram::Transmit;
use super::fast::leg::{FastLeg, Route};
use super::fault::MediaFault;
use super::key_map::KeyMap;
use super::recycle::Recycler;
use super::sdp::{check_answer_directions, check_offer, without_rtcp_candidates, OfferProblem};
pub use super::sending::Subscription;
use super::stats::ShardCounters;
use crate::protocol::{
    CodecCapability, IceCandidate, MediaErrorCode, MediaEvent, OfferedTrack, TrackSourceInfo,
};
use crate::rtp::dtls_repeat::RepeatFilter;
use crate::rtp::key_tap::KeyTap;
use crate::rtp::rid_keeper::{RidKeeper, RidSsrcs, RID_KEEPER_SLOT};
use rand::Rng;
use rtc::interceptor::Slot;
use rtc::peer_connection::sdp::{RTCSdpType, RTCSessionDescription};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sdp::description::session::SessionDescription;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Shard-local identity of a peer.
pub type PeerKey = u64;
/// Shard-local identity of a published track.
pub type TrackKey = u64;

/// Shard-local identity of a media room.
pub type RoomKey = u64;
/// Every peer of a shard, by key.
pub type Peers = KeyMap<PeerKey, Peer>;

/// What one shard turn collects while rooms and peers act: the peers whose connection needs
/// servicing at the end of the turn (each also carries a `touched` flag), the counters, and
/// the shard's clock anchor (for abs-send-time and the NTP time of receiver reports).
pub struct Turn {
    pub touched: Vec<PeerKey>,
    /// Datagrams produced this turn (the stack's writes and the fast path's packets).
    pub transmits: Vec<Transmit>,
    /// Emptied buffers of sent datagrams, reused by the fast path (no allocation per packet).
    pub buffers: super::buffer_pool::BufferPool,
    pub counters: ShardCounters,
    /// The shard's time origin, and the Unix time it stands for.
    pub epoch: Instant,
    pub epoch_unix: Duration,
}

impl Turn {
    pub fn new(epoch: Instant, epoch_unix: Duration) -> Self {
        Self {
            touched: Vec::new(),
            transmits: Vec::new(),
            buffers: Default::default(),
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
    /// The codecs it declared it can decode at `join`, if it did.
    pub receive: Option<Vec<CodecCapability>>,
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
    /// Boxed: the connection is ~10 KB, and the peers map is probed for every leg of every
    /// forwarded packet (a small entry keeps the fields the fan-out reads close together).
    pub pc: Box<RTCPeerConnection>,
    events: UnboundedSender<MediaEvent>,
    /// Track sources the client declared in its offers, by mid.
    pub sources: HashMap<String, TrackSourceInfo>,
    /// The tracks this peer publishes: rtc receiver track id → room track.
    pub published: HashMap<String, (TrackKey, RTCRtpReceiverId)>,
    pub subscriptions: KeyMap<TrackKey, Subscription>,
    /// Transceivers of ended subscriptions, reused by the next ones (bounded SDP).
    pub recycler: Recycler,
    /// Our sender SSRC on this leg → the forwarded track (for PLI/FIR routing).
    pub ssrc_to_track: KeyMap<u32, TrackKey>,
    /// Streams refused because the client may not publish (rtc track ids).
    pub refused_tracks: HashSet<String>,
    /// Tracks the client unsubscribed from (never re-subscribed automatically).
    pub opted_out: HashSet<String>,
    /// What this leg can receive (declared, or the default, narrowed by negotiation).
    pub receive: ReceiveCaps,
    /// Subscriptions the leg dropped by itself (a server offer the stack refused), with the
    /// reason: the room takes them out of its index and tells the client.
    pub dropped: Vec<(TrackKey, String)>,
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
    /// The crypto provider that learns the leg's SRTP keys (`rtp::key_tap`).
    pub key_tap: Arc<KeyTap>,
    /// The SSRCs of its rid streams, whose reception reports it does not send
    /// (`rtp::rid_keeper`).
    pub rid_ssrcs: RidSsrcs,
    /// The forwarding fast path, once DTLS is up with keys it can use (`fast.rs`).
    pub fast: Option<FastLeg>,
    /// Where the connection last sent DTLS/SRTP/SRTCP: the fast path's destination.
    pub route: Option<Route>,
    /// Whether the fast path may serve this leg (`--fast-path`).
    pub fast_path: bool,
    /// A STUN message from the client arrived this turn.
    pub stun_in: bool,
    /// The leg's transport-wide numbering, send history and bandwidth estimate (`bwe/`).
    pub bwe: LegBwe,
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A server leg's connection with its key tap (`rtp::key_tap`) as crypto provider.
fn build_connection(
    ufrag: &str,
    pwd: &str,
    candidates: &[SocketAddr],
    fast_path: bool,
    rid_ssrcs: &RidSsrcs,
    now: Instant,
) -> Result<(RTCPeerConnection, Vec<RTCIceCandidateInit>, Arc<KeyTap>), rtc::shared::error::Error> {
    let key_tap = KeyTap::new().map_err(|e| rtc::shared::error::Error::Other(e.to_string()))?;
    let history = if fast_path {
        NACK_CACHE_PACKETS_FAST
    } else {
        NACK_CACHE_PACKETS
    };
    let mut recipe = server_recipe(ufrag, pwd, candidates, history);
    recipe.crypto = Some(key_tap.clone());
    let interceptors = std::mem::take(&mut recipe.interceptors);
    recipe.interceptors = interceptors.with(
        Slot::from(RID_KEEPER_SLOT),
        RidKeeper::new(rid_ssrcs.clone()),
    );
    let (pc, local_candidates) = recipe.build(now)?;
    Ok((pc, local_candidates, key_tap))
}

impl Peer {
    pub fn new(
        key: PeerKey,
        member: MediaMember,
        room_key: RoomKey,
        candidates: &[SocketAddr],
        fast_path: bool,
        now: Instant,
    ) -> Result<Self, rtc::shared::error::Error> {
        let ufrag = random_token(16);
        let pwd = random_token(24);
        let rid_ssrcs = RidSsrcs::default();
        let (pc, local_candidates, key_tap) =
            build_connection(&ufrag, &pwd, candidates, fast_path, &rid_ssrcs, now)?;
        Ok(Self {
            key,
            peer_id: member.peer_id,
            room: member.room,
            room_key,
            grants: member.grants,
            receive: ReceiveCaps::new(member.receive.as_deref()),
            dropped: Vec::new(),
            ufrag,
            pwd,
            candidates: candidates.to_vec(),
            pc: Box::new(pc),
            events: member.events,
            sources: HashMap::new(),
            published: HashMap::new(),
            subscriptions: KeyMap::default(),
            recycler: Recycler::default(),
            ssrc_to_track: KeyMap::default(),
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
            key_tap,
            rid_ssrcs,
            fast: None,
            route: None,
            fast_path,
            stun_in: false,
            bwe: LegBwe::default(),
        })
    }

    /// Who this peer is, to rebuild its connection with the same identity.
    pub fn member(&self) -> MediaMember {
        MediaMember {
            room: self.room.clone(),
            peer_id: self.peer_id.clone(),
            grants: self.grants,
            events: self.events.clone(),
            receive: self.receive.declared(),
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

    pub(super) fn has_local_offer(&self) -> bool {
        self.pc.pending_local_description().is_some()
    }

    pub(super) fn has_remote_offer(&self) -> bool {
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
        let parsed = offer.unmarshal().ok();
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
            self.undo_refused_offer(parsed.as_ref(), now)?;
            return Err(MediaFault::new(MediaErrorCode::BadSdp, e.to_string()));
        }
        self.negotiated_at.get_or_insert(now);
        self.learn(parsed.as_ref());
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
    fn undo_refused_offer(
        &mut self,
        parsed: Option<&SessionDescription>,
        now: Instant,
    ) -> Result<(), MediaFault> {
        if self.pc.current_remote_description().is_some() {
            // The stack fixed the codecs of a kind this offer brought first before it refused
            // the rest, and a rollback does not undo that.
            self.learn(parsed);
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
        let (pc, local_candidates, key_tap) = build_connection(
            &self.ufrag,
            &self.pwd,
            &self.candidates,
            self.fast_path,
            &self.rid_ssrcs,
            now,
        )?;
        *self.pc = pc;
        self.key_tap = key_tap;
        self.receive.forget_locks();
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
        let parsed = answer.unmarshal().ok();
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| MediaFault::new(MediaErrorCode::BadSdp, e.to_string()))?;
        self.negotiated_at.get_or_insert(now);
        self.learn(parsed.as_ref());
        Ok(())
    }

    /// A remote description was applied: the codecs it locks the connection to narrow what
    /// this leg can receive.
    fn learn(&mut self, parsed: Option<&SessionDescription>) {
        if let Some(parsed) = parsed {
            if self.receive.learn(parsed) {
                tracing::debug!(peer = %self.peer_id, caps = ?self.receive, "receive codecs locked");
            }
        }
    }

    /// Sends a server offer if one is needed and the signaling state is stable; otherwise
    /// keeps it pending.
    pub fn offer_if_needed(&mut self, now: Instant) {
        if !self.needs_offer || self.has_local_offer() || self.has_remote_offer() {
            return;
        }
        tracing::debug!(peer = %self.peer_id, subscriptions = self.subscriptions.len(), "server offer");
        let offer = self.create_offer_or_shed();
        self.needs_offer = false;
        let Some(offer) = offer else {
            return;
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
