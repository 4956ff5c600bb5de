//! The floor's forwarder thread: the bare minimum an SFU does per packet — `recvmmsg`, per-leg
//! header rewrite and AES-128-GCM seal into a reused buffer, `sendmmsg` — with the shard's own
//! socket, poll and batching code ([`crate::net`]), and its thread CPU time.

use super::leg::{header_len, Leg, TAG};
use crate::net::thread::{pin_to_core, thread_cpu_nanos};
use crate::net::udp::{RecvBatch, SendQueue, BATCH, MAX_DATAGRAM};
use crate::net::wake::{Poller, Waker};
use bytes::BytesMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Upper bound of the reused send buffer; a batch that needs more is flushed in parts.
const MAX_POOL_BYTES: usize = 16 * 1024 * 1024;
/// How long one poll waits when nothing arrives (the shard waits up to its next timer).
const IDLE_POLL: Duration = Duration::from_millis(10);

/// What the forwarder did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ForwardStats {
    /// RTP packets received from the publisher.
    pub received: u64,
    /// Datagrams that were not RTP (or truncated) and were skipped.
    pub malformed: u64,
    /// Sealed datagrams `sendmmsg` accepted.
    pub forwarded: u64,
    /// Sealed datagrams dropped because the send buffer was full.
    pub send_dropped: u64,
    /// `poll` calls (turns), and `recvmmsg` batches that held packets.
    pub polls: u64,
    pub batches: u64,
    /// The thread's CPU time over its whole run.
    pub cpu_nanos: u64,
    /// Wall time from the first packet received to the last flush.
    pub active_nanos: u64,
}

/// The forwarder: one socket in, N legs out of the same socket (as a shard does).
pub struct Forwarder {
    socket: UdpSocket,
    legs: Vec<(Leg, SocketAddr)>,
    batch: RecvBatch,
    queue: SendQueue,
    pool: BytesMut,
    pool_cap: usize,
    slot: usize,
    seq: SeqExtender,
    stats: ForwardStats,
}

impl Forwarder {
    /// A forwarder reading `socket` and sending each packet to every `(leg, address)`.
    pub fn new(socket: UdpSocket, legs: Vec<(Leg, SocketAddr)>) -> Self {
        let slot = MAX_DATAGRAM + TAG;
        let pool_cap = (BATCH * legs.len().max(1) * slot).min(MAX_POOL_BYTES);
        Self {
            socket,
            legs,
            batch: RecvBatch::new(),
            queue: SendQueue::default(),
            pool: BytesMut::with_capacity(pool_cap),
            pool_cap,
            slot,
            seq: SeqExtender::default(),
            stats: ForwardStats::default(),
        }
    }

    /// Runs on the calling thread, pinned to `core`, until `stop` is set (and `waker` woken).
    pub fn run(mut self, core: usize, stop: &AtomicBool, waker: &Waker) -> ForwardStats {
        pin_to_core(core);
        let cpu_start = thread_cpu_nanos();
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        let mut poller = Poller::new(&[self.socket.as_raw_fd()], waker);
        while !stop.load(Ordering::Acquire) {
            self.stats.polls += 1;
            poller.wait(waker, IDLE_POLL);
            if !poller.readable(0) {
                continue;
            }
            // As the shard's turn: batches until one comes back short.
            loop {
                let n = self.forward_once();
                if n > 0 {
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                }
                if n < BATCH {
                    break;
                }
            }
        }
        self.stats.cpu_nanos = thread_cpu_nanos().saturating_sub(cpu_start);
        if let Some(first) = first {
            self.stats.active_nanos = last.saturating_duration_since(first).as_nanos() as u64;
        }
        self.stats
    }

    /// One `recvmmsg` batch (without waiting), forwarded; how many datagrams it held.
    pub fn forward_once(&mut self) -> usize {
        let n = self.batch.recv(&self.socket).unwrap_or(0);
        if n > 0 {
            self.stats.batches += 1;
            self.forward_batch(n);
        }
        n
    }

    /// What it has done so far (the CPU figures are filled in by [`Forwarder::run`]).
    pub fn stats(&self) -> ForwardStats {
        self.stats
    }

    /// Seals every packet of the last batch for every leg, then sends them all.
    fn forward_batch(&mut self, n: usize) {
        for i in 0..n {
            let Some((packet, _from)) = self.batch.get(i) else {
                self.stats.malformed += 1;
                continue;
            };
            let Some(header) = header_len(packet) else {
                self.stats.malformed += 1;
                continue;
            };
            self.stats.received += 1;
            let count = self.seq.extend(u16::from_be_bytes([packet[2], packet[3]]));
            for (leg, to) in &self.legs {
                if self.pool.capacity() - self.pool.len() < self.slot {
                    // Only with very many legs: send what is queued to reuse the buffer.
                    flush(&mut self.queue, &self.socket, &mut self.stats);
                    self.pool.reserve(self.pool_cap);
                }
                leg.seal_into(packet, header, count, &mut self.pool);
                self.queue.push(*to, self.pool.split());
            }
        }
        flush(&mut self.queue, &self.socket, &mut self.stats);
        // Every datagram handed out has been dropped by the flush: this reclaims the whole
        // buffer in place (no allocation) for the next batch.
        self.pool.reserve(self.pool_cap);
    }
}

fn flush(queue: &mut SendQueue, socket: &UdpSocket, stats: &mut ForwardStats) {
    if queue.is_empty() {
        return;
    }
    let st = queue.flush(socket);
    stats.forwarded += st.sent as u64;
    stats.send_dropped += st.dropped as u64;
}

/// The incoming stream's packet index from 0 (its sequence numbers extended past wraps).
#[derive(Debug, Default)]
struct SeqExtender {
    first: Option<u64>,
    last: u64,
}

impl SeqExtender {
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(first) = self.first else {
            self.first = Some(u64::from(seq));
            self.last = u64::from(seq);
            return 0;
        };
        // Nearest value to the last one with these low 16 bits (reordering tolerated).
        let delta = i64::from(seq.wrapping_sub(self.last as u16) as i16);
        let ext = (self.last as i64 + delta).max(first as i64) as u64;
        self.last = self.last.max(ext);
        ext - first
    }
}

#[cfg(test)]
mod tests {
    use super::super::leg::{LegSecret, Opener};
    use super::*;

    #[test]
    fn sequence_numbers_extend_across_the_wrap() {
        let mut s = SeqExtender::default();
        let got: Vec<u64> = [65_534u16, 65_535, 0, 1, 65_535, 2]
            .iter()
            .map(|&q| s.extend(q))
            .collect();
        assert_eq!(got, vec![0, 1, 2, 3, 1, 4]);
    }

    #[test]
    fn forwards_sealed_copies_and_reuses_its_buffer() {
        let bind = || crate::net::udp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (input, sink_a, sink_b) = (bind(), bind(), bind());
        let secret = LegSecret::random();
        let legs = vec![
            (Leg::new(1, 10, 0, secret), sink_a.local_addr().unwrap()),
            (
                Leg::new(2, 20, 0, LegSecret::random()),
                sink_b.local_addr().unwrap(),
            ),
        ];
        let mut fwd = Forwarder::new(input.try_clone().unwrap(), legs);
        let base = fwd.pool.as_ptr();
        let publisher = bind();
        let mut packet = vec![0x80, 96, 0, 5, 0, 0, 0, 9, 0, 0, 0, 3];
        packet.extend_from_slice(&[7u8; 500]);
        for _ in 0..2 {
            publisher
                .send_to(&packet, input.local_addr().unwrap())
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while fwd.stats.received < 2 && Instant::now() < deadline {
            fwd.forward_once();
        }
        assert_eq!((fwd.stats.received, fwd.stats.forwarded), (2, 4));
        assert_eq!(
            fwd.pool.as_ptr(),
            base,
            "the send buffer is reused in place"
        );
        let mut got = RecvBatch::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        while n == 0 && Instant::now() < deadline {
            n = got.recv(&sink_a).unwrap_or(0);
        }
        let mut datagram = got.get(0).unwrap().0.to_vec();
        assert_eq!(&datagram[2..4], &10u16.to_be_bytes());
        assert_eq!(
            Opener::new(secret).open(&mut datagram),
            Some(&[7u8; 500][..])
        );
    }
}
