//! One media shard: a thread that owns a set of UDP sockets (one per local address, all on the
//! shard's port), every PeerConnection of the rooms pinned to it, and their timers. It demuxes
//! datagrams to connections (STUN USERNAME first, then remote address), drives the sans-IO
//! stack, and batches sends. Room logic (who gets which track) lives in `routing.rs`; this file
//! only moves bytes, time and commands.

use super::peer::{Admission, Peer, PeerKey, TrackKey};
use super::routing::{MediaRoom, PublishedTrack};
use super::stats::{DropReason, MediaMetrics, ShardCounters, ShardLevels};
use super::udp::{self, RecvBatch, SendQueue};
use super::wake::wait_readable;
pub use super::wake::Waker;
use crate::protocol::{MediaErrorCode, MediaEvent, MediaRequest, TrackInfo};
use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What signaling asks of a shard.
pub enum Command {
    Join {
        key: PeerKey,
        admission: Admission,
    },
    /// An operator mutes a track; the reply says whether it exists.
    AdminMute {
        room: String,
        track_id: String,
        muted: bool,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// The tracks published in a room.
    ListTracks {
        room: String,
        reply: tokio::sync::oneshot::Sender<Vec<TrackInfo>>,
    },
    Request {
        key: PeerKey,
        request: MediaRequest,
    },
    Leave {
        key: PeerKey,
    },
    Shutdown,
}

/// One local socket of the shard and the host candidate it stands for.
pub struct ShardSocket {
    pub socket: UdpSocket,
    /// The address advertised for it (what the ICE agent knows as the local candidate).
    pub candidate: SocketAddr,
    pub queue: SendQueue,
}

/// The state of one shard thread.
pub struct Shard {
    pub index: usize,
    pub sockets: Vec<ShardSocket>,
    commands: Receiver<Command>,
    waker: Arc<Waker>,
    pub peers: HashMap<PeerKey, Peer>,
    by_ufrag: HashMap<String, PeerKey>,
    by_addr: HashMap<SocketAddr, (PeerKey, usize)>,
    pub rooms: HashMap<String, MediaRoom>,
    pub tracks: HashMap<TrackKey, PublishedTrack>,
    pub next_track: TrackKey,
    /// Peers with work for the end of this turn (each also carries a `touched` flag).
    pub(super) touched: Vec<PeerKey>,
    pub counters: ShardCounters,
    metrics: MediaMetrics,
    reported: ShardLevels,
    pub epoch: Instant,
    recv: RecvBatch,
}

/// How long a shard sleeps at most without a timer or datagram, to publish metrics.
const MAX_IDLE: Duration = Duration::from_millis(200);
/// Silence after which a connected client's media connection is considered gone. Browsers
/// send STUN consent checks every few seconds and RTCP about every second.
pub const MEDIA_SILENCE: Duration = Duration::from_secs(12);
/// Receive batches per socket per loop turn, so timers and sends are not starved.
const MAX_BATCHES_PER_TURN: usize = 16;

impl Shard {
    pub fn new(
        index: usize,
        sockets: Vec<ShardSocket>,
        commands: Receiver<Command>,
        waker: Arc<Waker>,
        metrics: MediaMetrics,
    ) -> Self {
        Self {
            index,
            sockets,
            commands,
            waker,
            peers: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            rooms: HashMap::new(),
            tracks: HashMap::new(),
            next_track: 1,
            touched: Vec::new(),
            counters: ShardCounters::default(),
            metrics,
            reported: ShardLevels::default(),
            epoch: Instant::now(),
            recv: RecvBatch::new(),
        }
    }

    /// The local candidates every connection of this shard advertises.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|s| s.candidate).collect()
    }

    /// Marks a peer for the end-of-turn processing (reads, events, writes, timers).
    pub fn touch(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key).filter(|p| !p.touched) {
            peer.touched = true;
            self.touched.push(key);
        }
    }

    /// Runs until shutdown.
    pub fn run(mut self) {
        let mut last_publish = Instant::now();
        self.metrics.touch_shard(self.index);
        loop {
            let deadline = self.next_deadline();
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let timeout = timeout.unwrap_or(MAX_IDLE).min(MAX_IDLE);
            let readable = self.wait(timeout);
            let started = Instant::now();
            if let Some(due) = deadline.filter(|d| *d <= started) {
                self.counters.record_lag(started - due);
            }
            if !self.drain_commands(started) {
                break;
            }
            for (i, ready) in readable.iter().enumerate() {
                if *ready {
                    self.read_socket(i, started);
                }
            }
            let now = Instant::now();
            self.run_timers(now);
            self.finish_turn(now);
            self.counters.busy_nanos += started.elapsed().as_nanos() as u64;
            if now.saturating_duration_since(last_publish) >= Duration::from_secs(1) {
                last_publish = now;
                self.publish_metrics();
            }
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.remove_peer(key, Instant::now());
        }
        self.finish_turn(Instant::now());
        self.publish_metrics();
    }

    fn publish_metrics(&mut self) {
        let levels = self.levels();
        self.metrics
            .publish(self.index, &mut self.counters, levels, &mut self.reported);
    }

    /// Blocks until a socket or the waker is readable or `timeout` passes.
    fn wait(&self, timeout: Duration) -> Vec<bool> {
        let fds: Vec<RawFd> = self.sockets.iter().map(|s| s.socket.as_raw_fd()).collect();
        wait_readable(&fds, &self.waker, timeout)
    }

    /// Applies queued commands; false on shutdown.
    fn drain_commands(&mut self, now: Instant) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Join { key, admission }) => self.join(key, admission, now),
                Ok(Command::AdminMute {
                    room,
                    track_id,
                    muted,
                    reply,
                }) => {
                    let found = self.admin_mute(&room, &track_id, muted, now);
                    let _ = reply.send(found);
                }
                Ok(Command::ListTracks { room, reply }) => {
                    let _ = reply.send(self.room_tracks(&room));
                }
                Ok(Command::Request { key, request }) => self.handle_request(key, request, now),
                Ok(Command::Leave { key }) => self.remove_peer(key, now),
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Rebuilds a peer's connection after a media failure (same identity, fresh ICE/DTLS).
    pub fn rejoin(&mut self, key: PeerKey, admission: Admission, now: Instant) {
        self.join(key, admission, now);
    }

    fn join(&mut self, key: PeerKey, admission: Admission, now: Instant) {
        let candidates = self.candidates();
        let (room, events) = (admission.room.clone(), admission.events.clone());
        match Peer::new(key, admission, &candidates, now) {
            Ok(peer) => {
                self.by_ufrag.insert(peer.ufrag.clone(), key);
                self.peers.insert(key, peer);
                self.rooms.entry(room).or_default().members.push(key);
                self.on_joined(key, now);
                self.touch(key);
            }
            Err(e) => {
                let _ = events.send(MediaEvent::Error {
                    code: MediaErrorCode::Internal,
                    message: format!("could not create the media connection: {e}"),
                });
            }
        }
    }

    /// Forgets a peer entirely: its tracks, its subscriptions, its demux entries.
    pub fn remove_peer(&mut self, key: PeerKey, now: Instant) {
        if !self.peers.contains_key(&key) {
            return;
        }
        self.before_remove(key, now);
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        self.by_ufrag.remove(&peer.ufrag);
        for addr in &peer.addrs {
            self.by_addr.remove(addr);
        }
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.members.retain(|k| *k != key);
            if room.members.is_empty() {
                self.rooms.remove(&peer.room);
            }
        }
        peer.close();
        flush_writes(&mut self.sockets, &self.by_addr, &mut peer);
    }

    fn read_socket(&mut self, index: usize, now: Instant) {
        for _ in 0..MAX_BATCHES_PER_TURN {
            let n = match self.recv.recv(&self.sockets[index].socket) {
                Ok(n) => n,
                Err(_) => return,
            };
            for i in 0..n {
                self.counters.datagrams_in += 1;
                let Some((data, from)) = self.recv.get(i) else {
                    self.counters.drop(DropReason::Garbage);
                    continue;
                };
                if !udp::looks_like_webrtc(data) {
                    self.counters.drop(DropReason::Garbage);
                    continue;
                }
                let key = match udp::stun_username_ufrag(data) {
                    Some(ufrag) => self.by_ufrag.get(ufrag).copied(),
                    None => self.by_addr.get(&from).map(|(k, _)| *k),
                };
                let Some(key) = key else {
                    self.counters.drop(DropReason::UnknownSource);
                    continue;
                };
                let message = BytesMut::from(data);
                let local = self.sockets[index].candidate;
                let Some(peer) = self.peers.get_mut(&key) else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(e) = self.by_addr.entry(from) {
                    e.insert((key, index));
                    peer.addrs.push(from);
                }
                let tagged = TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: local,
                        peer_addr: from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message,
                };
                peer.last_heard = now;
                if peer.pc.handle_read(tagged).is_err() {
                    self.counters.drop(DropReason::Rejected);
                }
                self.touch(key);
            }
            if n < udp::BATCH {
                return;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let peers = self.peers.values().filter_map(|p| p.next_timeout).min();
        let keyframes = self
            .tracks
            .values()
            .filter_map(|t| t.keyframe.next_due())
            .min();
        match (peers, keyframes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn run_timers(&mut self, now: Instant) {
        let due: Vec<PeerKey> = self
            .peers
            .values()
            .filter(|p| p.next_timeout.is_some_and(|t| t <= now))
            .map(|p| p.key)
            .collect();
        for key in due {
            if let Some(peer) = self.peers.get_mut(&key) {
                let _ = peer.pc.handle_timeout(now);
                peer.next_timeout = None;
            }
            self.touch(key);
        }
        self.deferred_keyframes(now);
        self.expire_silent_peers(now);
    }

    /// A connected client that sent nothing (no STUN consent check, no RTCP, no media) for
    /// [`MEDIA_SILENCE`] is gone from the media plane: its tracks leave the room now, without
    /// waiting for the WebSocket to time out.
    fn expire_silent_peers(&mut self, now: Instant) {
        let silent: Vec<PeerKey> = self
            .peers
            .values()
            .filter(|p| p.connected && now.saturating_duration_since(p.last_heard) > MEDIA_SILENCE)
            .map(|p| p.key)
            .collect();
        for key in silent {
            tracing::info!(key, "media connection silent; tearing it down");
            self.media_failed(key, "silent", now);
        }
    }

    /// Processes every touched peer: events and reads (which forward and touch subscribers),
    /// then writes into the socket queues, then sends.
    fn finish_turn(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.touched.len() {
            let key = self.touched[i];
            self.drain_peer(key, now);
            i += 1;
        }
        let touched = std::mem::take(&mut self.touched);
        for key in &touched {
            if let Some(peer) = self.peers.get_mut(key) {
                flush_writes(&mut self.sockets, &self.by_addr, peer);
                peer.next_timeout = peer.pc.poll_timeout();
                peer.touched = false;
            }
        }
        self.touched = touched;
        self.touched.clear();
        for s in &mut self.sockets {
            if !s.queue.is_empty() {
                let st = s.queue.flush(&s.socket);
                self.counters.datagrams_out += st.sent as u64;
                self.counters.dropped[DropReason::SendBufferFull as usize] += st.dropped as u64;
            }
        }
    }

    /// Drains one peer's events and received media.
    fn drain_peer(&mut self, key: PeerKey, now: Instant) {
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
            self.on_pc_message(key, msg.message, now);
        }
    }
}

/// Moves a peer's outgoing datagrams into the queue of the socket they leave from.
fn flush_writes(
    sockets: &mut [ShardSocket],
    by_addr: &HashMap<SocketAddr, (PeerKey, usize)>,
    peer: &mut Peer,
) {
    while let Some(msg) = peer.pc.poll_write() {
        let to = msg.transport.peer_addr;
        let index = sockets
            .iter()
            .position(|s| s.candidate == msg.transport.local_addr)
            .or_else(|| by_addr.get(&to).map(|(_, i)| *i))
            .unwrap_or(0);
        if let Some(s) = sockets.get_mut(index) {
            s.queue.push(to, msg.message);
        }
    }
}
