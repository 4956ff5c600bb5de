//! The sans-IO core of a shard: every PeerConnection of its rooms, the demux tables and the
//! rooms, driven only by its inputs — datagrams with their addresses
//! ([`ShardState::handle_datagram`]), client requests and joins/leaves, and timer ticks with an
//! explicit `Instant` ([`ShardState::handle_timeout`]) — and producing datagrams to send
//! ([`ShardState::drain_transmits`]) and events to clients (on each member's channel). It owns
//! no socket, never sleeps and never reads the clock: the shard thread (`shard.rs`) and the unit
//! tests (`media/tests/`) are its two drivers.
//!
//! A turn: inputs touch peers; [`ShardState::finish_turn`] then drains each touched peer's
//! events (handled in `state/events.rs`) and received media (which forwards: on the fast path
//! straight into the turn's datagrams, otherwise through the subscriber's connection, which it
//! touches) and collects what every touched connection wants to send. Connection timers come
//! due from a heap (`timers.rs`), not a scan of every connection.

use super::backlog::{Admitted, Pacer, Queued};
use super::bwe;
use super::demux::{Demux, Routed};
use super::fast::{self, SENDER_REPORT_INTERVAL};
use super::fault::MediaFault;
use super::leg_bandwidth;
use super::liveness;
use super::peer::{MediaMember, Peer, PeerKey, Peers, TrackKey, Turn};
use super::room::{MediaRoom, Rooms};
use super::sdp::directions;
use super::simulcast::Want;
use super::speakers::SPEAKER_TICK;
use super::stats::{DropReason, ShardCounters};
use super::stun_auth;
use super::timers::TimerHeap;
use super::transmit::collect_writes;
pub use super::transmit::Transmit;
use crate::config::ShardLimits;
use crate::protocol::{MediaErrorCode, MediaEvent, MediaRequest, TrackInfo, TrackSourceInfo};
use crate::rtp::dtls_repeat::is_handshake_give_up;
use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use super::liveness::MEDIA_SILENCE;

mod events;
mod levels;

/// See the module documentation.
pub struct ShardState {
    /// The host candidates of the shard's sockets (what every connection advertises).
    candidates: Vec<SocketAddr>,
    peers: Peers,
    demux: Demux,
    rooms: Rooms,
    /// Members of the shard's largest room: what one datagram read can fan out to at most
    /// (kept on join and leave, read every turn for the read budget).
    largest_room: usize,
    next_track: TrackKey,
    turn: Turn,
    /// The per-turn negotiation budget and the requests that wait for a later turn.
    pacer: Pacer,
    limits: ShardLimits,
    /// When the fast path's sender reports are next looked at.
    reports_due: Instant,
    /// When each connection's timers are next due.
    timers: TimerHeap,
    /// When silent and never-connected connections are next looked for.
    liveness_due: Instant,
    /// When the rooms' speaker detectors next run.
    speakers_due: Instant,
    /// When probing legs' padding is next due (`None`: no leg probes).
    probe_due: Option<Instant>,
}

/// How often the shard looks for silent or never-connected connections.
const LIVENESS_SWEEP: Duration = Duration::from_millis(250);

impl ShardState {
    /// A shard core whose connections advertise `candidates`; `epoch` is its time origin and
    /// `epoch_unix` the Unix time it stands for (the clock of RTCP sender reports).
    pub fn new(candidates: Vec<SocketAddr>, epoch: Instant, epoch_unix: Duration) -> Self {
        Self::with_limits(candidates, epoch, epoch_unix, ShardLimits::default())
    }

    /// [`ShardState::new`] with per-connection `limits`.
    pub fn with_limits(
        candidates: Vec<SocketAddr>,
        epoch: Instant,
        epoch_unix: Duration,
        limits: ShardLimits,
    ) -> Self {
        Self {
            candidates,
            peers: Peers::default(),
            demux: Demux::new(limits),
            rooms: Rooms::default(),
            largest_room: 0,
            next_track: 1,
            turn: Turn::new(epoch, epoch_unix),
            pacer: Pacer::new(epoch),
            limits,
            reports_due: epoch + SENDER_REPORT_INTERVAL,
            timers: TimerHeap::default(),
            liveness_due: epoch + LIVENESS_SWEEP,
            speakers_due: epoch + SPEAKER_TICK,
            probe_due: None,
        }
    }

    /// How many remote addresses the demux tables remember (for tests and diagnostics).
    pub fn address_count(&self) -> usize {
        self.demux.address_count()
    }

    /// The counters since the last publish (the shard adds its socket-level figures).
    pub fn counters_mut(&mut self) -> &mut ShardCounters {
        &mut self.turn.counters
    }

    /// One peer's connection (for tests and diagnostics).
    pub fn peer(&self, key: PeerKey) -> Option<&Peer> {
        self.peers.get(&key)
    }

    /// One peer's connection, to stage states the rooms would not produce (tests only).
    #[cfg(test)]
    pub fn peer_mut(&mut self, key: PeerKey) -> Option<&mut Peer> {
        self.peers.get_mut(&key)
    }

    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    fn touch(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key) {
            self.turn.touch(peer);
        }
    }

    /// Runs `f` on the room of peer `key`, with the peers and the turn lent alongside.
    fn with_room<R>(
        &mut self,
        key: PeerKey,
        f: impl FnOnce(&mut MediaRoom, &mut Peers, &mut Turn) -> R,
    ) -> Option<R> {
        let room_key = self.peers.get(&key)?.room_key;
        let room = self.rooms.get_mut(room_key)?;
        Some(f(room, &mut self.peers, &mut self.turn))
    }

    /// A new media participant: a fresh connection, told about every track of its room.
    pub fn join(&mut self, key: PeerKey, member: MediaMember, now: Instant) {
        let events = member.events.clone();
        let room_key = self.rooms.open(&member.room);
        let fast_path = self.limits.fast_path;
        match Peer::new(key, member, room_key, &self.candidates, fast_path, now) {
            Ok(peer) => {
                self.demux.add_peer(&peer.ufrag, key);
                self.peers.insert(key, peer);
                self.with_room(key, |room, peers, turn| {
                    room.add_member(key, peers, turn, now)
                });
                self.touch(key);
                self.measure_rooms();
            }
            Err(e) => {
                self.rooms.close_if_empty(room_key);
                let _ = events.send(MediaEvent::Error {
                    code: MediaErrorCode::Internal,
                    message: format!("could not create the media connection: {e}"),
                });
            }
        }
    }

    /// Forgets a peer entirely: its tracks, its subscriptions, its demux entries; its
    /// connection is closed (the DTLS close alert is among the next transmits).
    pub fn leave(&mut self, key: PeerKey, now: Instant) {
        if self
            .with_room(key, |room, peers, turn| {
                room.remove_member(key, peers, turn, now)
            })
            .is_none()
        {
            return;
        }
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        self.pacer.forget(key);
        self.demux.remove_peer(&peer.ufrag, key);
        self.rooms.close_if_empty(peer.room_key);
        self.measure_rooms();
        peer.close();
        let _ = collect_writes(
            &self.candidates,
            &self.demux,
            &mut self.turn.transmits,
            &mut peer,
        );
    }

    /// Closes every connection (shutdown).
    pub fn leave_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.leave(key, now);
        }
    }

    /// A client media request from the WebSocket: applied now, or queued behind the
    /// participant's waiting requests or when this turn's negotiation budget is spent (see
    /// `backlog.rs`).
    pub fn handle_request(&mut self, key: PeerKey, request: MediaRequest, now: Instant) {
        if !self.peers.contains_key(&key) {
            return;
        }
        let outcome = match self.pacer.admit(key, request) {
            Admitted::Now(request) => return self.apply_request(key, request, now),
            Admitted::Later(outcome) => outcome,
        };
        let counters = &mut self.turn.counters;
        match outcome {
            Queued::Waiting => counters.requests_deferred += 1,
            Queued::Superseded => counters.offers_superseded += 1,
            Queued::Refused => {
                counters.requests_refused += 1;
                if let Some(peer) = self.peers.get(&key) {
                    peer.fault(MediaFault::new(
                        MediaErrorCode::Internal,
                        "too many media requests waiting; send fewer",
                    ));
                }
            }
        }
    }

    /// Applies waiting requests, round-robin over participants, until this turn's negotiation
    /// budget is spent.
    pub fn run_backlog(&mut self, now: Instant) {
        while let Some((key, request)) = self.pacer.next_due() {
            self.apply_request(key, request, now);
        }
    }

    fn apply_request(&mut self, key: PeerKey, request: MediaRequest, now: Instant) {
        let result = match request {
            MediaRequest::Offer { sdp, tracks } => self.client_offer(key, sdp, tracks, now),
            MediaRequest::Answer { sdp } => self.client_answer(key, sdp, now),
            MediaRequest::Candidate { candidate } => match (candidate, self.peers.get_mut(&key)) {
                (Some(c), Some(peer)) => peer.add_remote_candidate(c),
                _ => Ok(()),
            },
            MediaRequest::Mute { track_id, muted } => self
                .with_room(key, |room, peers, turn| {
                    room.mute_own(key, &track_id, muted, peers, turn, now)
                })
                .unwrap_or_else(|| Err(MediaFault::not_joined())),
            MediaRequest::Subscribe { track_ids } => {
                self.set_subscribed(key, &track_ids, true, now)
            }
            MediaRequest::Unsubscribe { track_ids } => {
                self.set_subscribed(key, &track_ids, false, now)
            }
            MediaRequest::VideoSize {
                track_id,
                width,
                height,
                layer,
            } => {
                let want = match (layer, width, height) {
                    (Some(layer), _, _) => Want::Layer(layer.into()),
                    (None, Some(width), Some(height)) => Want::Size { width, height },
                    _ => Want::Top,
                };
                self.with_room(key, |room, peers, turn| {
                    room.set_video_size(key, &track_id, want, peers, turn, now)
                })
                .unwrap_or_else(|| Err(MediaFault::not_joined()))
            }
        };
        if let (Err(fault), Some(peer)) = (result, self.peers.get(&key)) {
            peer.fault(fault);
        }
        self.touch(key);
    }

    fn set_subscribed(
        &mut self,
        key: PeerKey,
        track_ids: &[String],
        subscribe: bool,
        now: Instant,
    ) -> Result<(), MediaFault> {
        self.with_room(key, |room, peers, turn| {
            room.set_subscribed(key, track_ids, subscribe, peers, turn, now)
        })
        .unwrap_or_else(|| Err(MediaFault::not_joined()))
    }

    fn client_offer(
        &mut self,
        key: PeerKey,
        sdp: String,
        tracks: Vec<TrackSourceInfo>,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or_else(MediaFault::not_joined)?;
        let offered = directions(&sdp).unwrap_or_default();
        let updates = tracks.clone();
        peer.apply_offer(sdp, tracks, now)?;
        self.with_room(key, |room, peers, turn| {
            // A re-offer can change a published track's declared source; tracks whose m-line
            // the client stopped sending on (removeTrack) leave the room.
            for info in &updates {
                room.update_source(key, info, peers);
            }
            room.unpublish_stopped(key, &offered, peers, turn, now);
            room.after_negotiation(key, peers, turn, now);
        });
        Ok(())
    }

    fn client_answer(&mut self, key: PeerKey, sdp: String, now: Instant) -> Result<(), MediaFault> {
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or_else(MediaFault::not_joined)?;
        peer.apply_answer(sdp, now)?;
        self.with_room(key, |room, peers, turn| {
            room.after_negotiation(key, peers, turn, now)
        });
        Ok(())
    }

    /// An operator mutes (or unmutes) a track of `room`; false if there is no such track.
    pub fn admin_mute(&mut self, room: &str, track_id: &str, muted: bool, now: Instant) -> bool {
        let Some(room) = self.rooms.by_name_mut(room) else {
            return false;
        };
        room.admin_mute(track_id, muted, &mut self.peers, &mut self.turn, now)
    }

    /// The tracks published in `room`.
    pub fn room_tracks(&self, room: &str) -> Vec<TrackInfo> {
        self.rooms
            .by_name(room)
            .map(MediaRoom::tracks)
            .unwrap_or_default()
    }

    /// A datagram from `from` arrived on the socket of local candidate `local`.
    pub fn handle_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let routed = match self.demux.route(data, from, now) {
            Ok(routed) => routed,
            Err(reason) => {
                self.turn.counters.drop(reason);
                return;
            }
        };
        let key = routed.key();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Routed::Stun(_) = routed {
            // Nothing is learned from, or handed on for, a STUN message its sender cannot sign.
            peer.stun_in = true;
            let learned = if stun_auth::integrity_ok(data, &peer.pwd) {
                self.demux.learn(from, key, local, now)
            } else {
                Err(DropReason::Unauthenticated)
            };
            if let Err(reason) = learned {
                self.turn.counters.drop(reason);
                return;
            }
        }
        let tagged = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        peer.last_heard = now;
        // A DTLS alert (content type 21): if the stack answers it with its own alert, it was
        // the client's authentic close_notify (see `finish_turn`).
        peer.dtls_alert_in |= data.first() == Some(&21);
        if peer.dtls_repeats.is_repeat(data) {
            self.turn.counters.drop(DropReason::DtlsRepeat);
            return;
        }
        if peer.pc.handle_read(tagged).is_err() {
            self.turn.counters.drop(DropReason::Rejected);
        }
        self.turn.touch(peer);
    }

    /// Members of the shard's largest room: the most legs one datagram read can fan out to.
    pub fn largest_room(&self) -> usize {
        self.largest_room
    }

    fn measure_rooms(&mut self) {
        self.largest_room = self
            .rooms
            .values()
            .map(|r| r.members.len())
            .max()
            .unwrap_or(0);
    }

    /// When the state next needs [`ShardState::handle_timeout`] without new input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(due) = self.pacer.due() {
            return Some(due);
        }
        let peers = self.timers.next();
        let keyframes = self
            .rooms
            .values()
            .filter_map(MediaRoom::next_keyframe_due)
            .min();
        let deadline = Some(self.liveness_due);
        let reports = Some(self.reports_due);
        let speakers = Some(self.speakers_due);
        let sweep = self.demux.next_sweep();
        [
            peers,
            keyframes,
            deadline,
            sweep,
            reports,
            speakers,
            self.probe_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed: connection timers that are due, deferred keyframe requests, clients
    /// silent for longer than [`MEDIA_SILENCE`] or not connected by the DTLS deadline,
    /// remote addresses gone idle; the rooms' speaker detectors.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Every item below is due no earlier than `poll_timeout` says: a turn with nothing
        // due (most turns are a packet's) skips them all.
        if self.poll_timeout().is_none_or(|due| due > now) {
            return;
        }
        self.run_backlog(now);
        let mut gave_up = Vec::new();
        for key in self.timers.due(now, &self.peers) {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if let Err(e) = peer.pc.handle_timeout(now) {
                if is_handshake_give_up(&e) && !peer.connected {
                    gave_up.push(peer.key);
                }
            }
            peer.next_timeout = None;
            self.turn.touch(peer);
        }
        for key in gave_up {
            self.media_failed(key, "failed (DTLS handshake gave up)", now);
        }
        for room in self.rooms.values_mut() {
            room.deferred_keyframes(&mut self.peers, &mut self.turn, now);
        }
        if now >= self.liveness_due {
            self.liveness_due = now + LIVENESS_SWEEP;
            self.expire_dead_peers(now);
        }
        self.demux.sweep(now);
        if now >= self.reports_due {
            self.reports_due = now + SENDER_REPORT_INTERVAL;
            fast::sender_reports(&mut self.peers, &mut self.turn, now);
            if leg_bandwidth::review(&mut self.peers, self.limits.probe_max_bps, now) {
                self.probe_due.get_or_insert(now);
            }
        }
        if self.probe_due.is_some_and(|t| now >= t) {
            let probing = fast::padding::probe_tick(&mut self.peers, &mut self.turn, now);
            self.probe_due = probing.then_some(now + bwe::PROBE_TICK);
        }
        if now >= self.speakers_due {
            self.speakers_due = now + SPEAKER_TICK;
            for room in self.rooms.values_mut() {
                room.tick_speakers(&self.peers, &mut self.turn, now);
            }
        }
    }

    /// A connected client that sent nothing (no STUN consent check, no RTCP, no media) for
    /// [`MEDIA_SILENCE`] is gone from the media plane: its tracks leave the room now, without
    /// waiting for the WebSocket to time out. A connection negotiated longer than the DTLS
    /// deadline ago that never came up (handshake failed or its flights never arrived) is
    /// failed the same way.
    fn expire_dead_peers(&mut self, now: Instant) {
        for key in liveness::silent(&self.peers, now) {
            tracing::info!(key, "media connection silent; tearing it down");
            self.media_failed(key, "silent", now);
        }
        for key in liveness::unestablished(&self.peers, self.limits.dtls_timeout, now) {
            tracing::info!(
                key,
                "media connection not established in time; tearing it down"
            );
            self.media_failed(key, "not established (ICE/DTLS did not complete)", now);
        }
    }

    /// Ends the turn: drains every touched peer's events and received media (which forwards
    /// and touches subscribers), then collects what each touched connection sends.
    pub fn finish_turn(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.turn.touched.len() {
            let key = self.turn.touched[i];
            self.drain_peer(key, now);
            i += 1;
        }
        let mut touched = std::mem::take(&mut self.turn.touched);
        let mut closed = Vec::new();
        for key in &touched {
            if let Some(peer) = self.peers.get_mut(key) {
                let alert_out = collect_writes(
                    &self.candidates,
                    &self.demux,
                    &mut self.turn.transmits,
                    peer,
                );
                if std::mem::take(&mut peer.dtls_alert_in) && alert_out && peer.connected {
                    closed.push(*key);
                }
                // A connectivity check may have moved the selected pair (the client's
                // nomination, an ICE restart): the fast path follows it at once.
                if std::mem::take(&mut peer.stun_in) && peer.fast.is_some() {
                    if let Some(route) = fast::selected_route(peer, &self.candidates) {
                        peer.route = Some(route);
                    }
                }
                peer.next_timeout = peer.pc.poll_timeout();
                if let Some(at) = peer.next_timeout {
                    self.timers.schedule(*key, at);
                }
                peer.touched = false;
            }
        }
        touched.clear();
        self.turn.touched = touched;
        self.timers.compact(&self.peers);
        self.pacer.end_turn(now);
        // The client closed its connection (pc.close(): DTLS close_notify, which the stack
        // only answers when it decrypts): the leg ends now rather than after the silence.
        for key in closed {
            self.media_failed(key, "closed by the client", now);
        }
    }

    /// The datagrams produced since the last drain.
    pub fn drain_transmits(&mut self) -> std::vec::Drain<'_, Transmit> {
        self.turn.transmits.drain(..)
    }

    /// Drains one peer's events and received media.
    fn drain_peer(&mut self, key: PeerKey, now: Instant) {
        if self.peers.get(&key).is_some_and(|p| !p.dropped.is_empty()) {
            self.with_room(key, |room, peers, _| room.settle_dropped(key, peers));
        }
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let Some(event) = peer.pc.poll_event() else {
                break;
            };
            self.on_pc_event(key, event, now);
        }
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let Some(msg) = peer.pc.poll_read() else {
                break;
            };
            self.with_room(key, |room, peers, turn| {
                room.on_message(key, msg.message, peers, turn, now)
            });
        }
    }
}
