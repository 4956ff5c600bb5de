//! One media shard: a thread that owns a set of UDP sockets (one per local address, all on the
//! shard's port), the clock and the command channel, and drives its [`ShardState`] with them:
//! datagrams in, transmits out in `sendmmsg` batches, timers at their deadline, commands from
//! signaling as they arrive, metrics published about once a second. Everything a room does
//! lives in the sans-IO state; this file only moves bytes, time and commands.

use super::heartbeat::Heartbeat;
use super::peer::{MediaMember, PeerKey};
use super::state::ShardState;
use super::stats::{DropReason, MediaMetrics, ShardLevels};
use crate::config::ShardLimits;
use crate::net::udp::{RecvBatch, SendQueue, BATCH};
use crate::net::wake::Poller;
pub use crate::net::wake::Waker;
use crate::protocol::{MediaRequest, TrackInfo};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What signaling asks of a shard.
pub enum Command {
    Join {
        key: PeerKey,
        member: MediaMember,
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

/// One shard thread: its sockets, its command channel and its state.
pub struct Shard {
    index: usize,
    sockets: Vec<ShardSocket>,
    commands: Receiver<Command>,
    waker: Arc<Waker>,
    state: ShardState,
    metrics: MediaMetrics,
    reported: ShardLevels,
    recv: RecvBatch,
    poller: Poller,
    heartbeat: Arc<Heartbeat>,
}

/// How long a shard sleeps at most without a timer or datagram, to publish metrics.
const MAX_IDLE: Duration = Duration::from_millis(200);
/// Receive batches per socket per loop turn, so timers and sends are not starved.
const MAX_BATCHES_PER_TURN: usize = 16;
/// Datagrams a turn may fan out (issue 12, memory). A turn reads at most this many divided by
/// the members of the shard's largest room (at least [`MIN_READ_PER_TURN`]): each datagram
/// read may be forwarded to every other leg of its room, and the whole turn's datagrams are
/// held until its `sendmmsg`, so a turn never holds more than about this many datagram
/// buffers (0.8 MiB; `buffer_pool` keeps one arena of 160 between turns). Without it a shard
/// that fell behind read 1,024 datagrams in one turn and held 1,024 × legs buffers (33 MB at
/// 1→20). A turn costs a few tens of µs besides its packets, against ~2.5 ms
/// for 512 sends.
pub const MAX_FAN_OUT_PER_TURN: usize = 512;
/// Datagrams a turn reads at least: in a big room most datagrams are subscribers' RTCP and
/// STUN, which fan out to nobody, and reading them one a turn would cost a turn each. A turn
/// then holds at most 8 datagrams (13 KiB) per leg.
pub const MIN_READ_PER_TURN: usize = 8;

/// Datagrams one turn reads (from all its sockets) when the shard's largest room has
/// `fan_out` members. Many small rooms keep large reads: only a datagram's own room fans out.
pub fn read_budget(fan_out: usize) -> usize {
    (MAX_FAN_OUT_PER_TURN / fan_out.max(1)).clamp(MIN_READ_PER_TURN, MAX_BATCHES_PER_TURN * BATCH)
}

impl Shard {
    pub fn new(
        index: usize,
        sockets: Vec<ShardSocket>,
        commands: Receiver<Command>,
        waker: Arc<Waker>,
        metrics: MediaMetrics,
        limits: ShardLimits,
    ) -> Self {
        let candidates = sockets.iter().map(|s| s.candidate).collect();
        let fds: Vec<RawFd> = sockets.iter().map(|s| s.socket.as_raw_fd()).collect();
        let poller = Poller::new(&fds, &waker);
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            index,
            sockets,
            commands,
            waker,
            state: ShardState::with_limits(candidates, Instant::now(), unix, limits),
            metrics,
            reported: ShardLevels::default(),
            recv: RecvBatch::new(),
            poller,
            heartbeat: Arc::new(Heartbeat::new(Instant::now())),
        }
    }

    /// Where the loop stamps the start of each turn (see `heartbeat.rs`).
    pub fn set_heartbeat(&mut self, heartbeat: Arc<Heartbeat>) {
        self.heartbeat = heartbeat;
    }

    /// Runs until shutdown.
    pub fn run(mut self) {
        let mut last_publish = Instant::now();
        self.metrics.touch_shard(self.index);
        loop {
            let deadline = self.state.poll_timeout();
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let timeout = timeout.unwrap_or(MAX_IDLE).min(MAX_IDLE);
            self.poller.wait(&self.waker, timeout);
            let started = Instant::now();
            self.heartbeat.beat(started);
            if let Some(due) = deadline.filter(|d| *d <= started) {
                self.state.counters_mut().record_lag(started - due);
            }
            // Media first; then signaling's commands, whose negotiation work is budgeted per
            // turn (the rest waits in the state's backlog for the next turns).
            let mut budget = read_budget(self.state.largest_room());
            for i in 0..self.sockets.len() {
                if self.poller.readable(i) {
                    self.read_socket(i, started, &mut budget);
                }
            }
            if !self.drain_commands(started) {
                break;
            }
            let now = Instant::now();
            self.state.handle_timeout(now);
            self.finish_turn(now);
            self.state.counters_mut().busy_nanos += started.elapsed().as_nanos() as u64;
            if now.saturating_duration_since(last_publish) >= Duration::from_secs(1) {
                last_publish = now;
                self.publish_metrics();
            }
        }
        self.state.leave_all(Instant::now());
        self.finish_turn(Instant::now());
        self.publish_metrics();
    }

    fn publish_metrics(&mut self) {
        let levels = self.state.levels();
        self.metrics.publish(
            self.index,
            self.state.counters_mut(),
            levels,
            &mut self.reported,
        );
    }

    /// Applies queued commands; false on shutdown.
    fn drain_commands(&mut self, now: Instant) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Join { key, member }) => self.state.join(key, member, now),
                Ok(Command::AdminMute {
                    room,
                    track_id,
                    muted,
                    reply,
                }) => {
                    let found = self.state.admin_mute(&room, &track_id, muted, now);
                    let _ = reply.send(found);
                }
                Ok(Command::ListTracks { room, reply }) => {
                    let _ = reply.send(self.state.room_tracks(&room));
                }
                Ok(Command::Request { key, request }) => {
                    self.state.handle_request(key, request, now)
                }
                Ok(Command::Leave { key }) => self.state.leave(key, now),
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Reads up to `budget` datagrams (less what it read) from socket `index`.
    fn read_socket(&mut self, index: usize, now: Instant, budget: &mut usize) {
        let local = self.sockets[index].candidate;
        while *budget > 0 {
            let want = (*budget).min(BATCH);
            let n = match self.recv.recv_up_to(&self.sockets[index].socket, want) {
                Ok(n) => n,
                Err(_) => return,
            };
            *budget -= n.min(*budget);
            for i in 0..n {
                self.state.counters_mut().datagrams_in += 1;
                match self.recv.get(i) {
                    Some((data, from)) => self.state.handle_datagram(local, from, data, now),
                    None => self.state.counters_mut().drop(DropReason::Garbage),
                }
            }
            if n < want {
                return;
            }
        }
    }

    /// Ends the state's turn and sends what it produced, each datagram from the socket of
    /// its local candidate.
    fn finish_turn(&mut self, now: Instant) {
        self.state.finish_turn(now);
        for t in self.state.drain_transmits() {
            let index = self
                .sockets
                .iter()
                .position(|s| s.candidate == t.local)
                .unwrap_or(0);
            if let Some(s) = self.sockets.get_mut(index) {
                s.queue.push(t.to, t.data);
            }
        }
        for s in &mut self.sockets {
            if !s.queue.is_empty() {
                let st = s.queue.flush(&s.socket);
                let counters = self.state.counters_mut();
                counters.datagrams_out += st.sent as u64;
                counters.dropped[DropReason::SendBufferFull as usize] += st.dropped as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_reads_no_more_than_its_legs_can_fan_out_within_the_budget() {
        for members in [0, 1, 2, 21, 51, 200, 2_047, 2_048, 5_000] {
            let read = read_budget(members);
            assert!(read >= MIN_READ_PER_TURN);
            let most = MAX_FAN_OUT_PER_TURN.max(MIN_READ_PER_TURN * members);
            assert!(
                read * members.max(1) <= most,
                "{members} members: {read} datagrams a turn"
            );
        }
        // A lone leg still reads whole batches.
        assert!(read_budget(1) >= BATCH);
    }
}
