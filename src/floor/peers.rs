//! The floor's load: a paced publisher of plaintext RTP and one thread reading the N
//! subscriber sockets, counting datagrams per leg (and, with `--verify`, opening one leg's).

use super::leg::{LegSecret, Opener, RTP_HEADER};
use crate::net::thread::pin_to_core;
use crate::net::udp::{RecvBatch, BATCH};
use crate::net::wake::{wait_readable, Waker};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sends `rate` RTP packets per second of `payload_bytes` to `to` for `duration`, from a
/// thread pinned to `core`; returns how many it sent.
pub fn publish(
    to: SocketAddr,
    rate: u64,
    payload_bytes: usize,
    duration: Duration,
    core: usize,
) -> u64 {
    pin_to_core(core);
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return 0;
    };
    let mut packet = vec![0u8; RTP_HEADER + payload_bytes];
    packet[0] = 0x80;
    packet[1] = 0x80 | 96; // marker, dynamic payload type 96 (one packet per frame)
    packet[8..12].copy_from_slice(&0x5EED_0001u32.to_be_bytes());
    for (i, b) in packet[RTP_HEADER..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31);
    }
    let ts_step = (90_000 / rate.max(1)).max(1) as u32;
    let start = Instant::now();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            packet[2..4].copy_from_slice(&(sent as u16).to_be_bytes());
            packet[4..8].copy_from_slice(&(sent as u32).wrapping_mul(ts_step).to_be_bytes());
            // A full buffer drops the packet; the report compares against what was sent.
            if socket.send_to(&packet, to).is_ok() {
                sent += 1;
            } else {
                break;
            }
        }
        let next = Duration::from_secs_f64((sent + 1) as f64 / rate as f64);
        std::thread::sleep(
            next.saturating_sub(start.elapsed())
                .min(Duration::from_millis(1)),
        );
    }
    sent
}

/// What the subscriber sockets received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub per_leg: Vec<u64>,
    /// Leg 0's packets that opened with its key (`--verify`), and those that did not.
    pub verified: u64,
    pub verify_failed: u64,
}

/// The subscriber side: one socket per leg, read by one thread.
pub struct Receivers {
    pub sockets: Vec<UdpSocket>,
    /// Leg 0's secret, when its packets are to be opened.
    pub verify: Option<LegSecret>,
}

impl Receivers {
    /// Reads every socket until `stop` (and `waker`), pinned to `core`; `total` counts all
    /// datagrams as they arrive so the caller can see when the flow has drained.
    pub fn run(self, core: usize, stop: &AtomicBool, waker: &Waker, total: &AtomicU64) -> Received {
        pin_to_core(core);
        let fds: Vec<RawFd> = self.sockets.iter().map(|s| s.as_raw_fd()).collect();
        let mut opener = self.verify.map(Opener::new);
        let mut out = Received {
            per_leg: vec![0; fds.len()],
            ..Received::default()
        };
        let mut batch = RecvBatch::new();
        let mut scratch = Vec::with_capacity(2048);
        while !stop.load(Ordering::Acquire) {
            let readable = wait_readable(&fds, waker, Duration::from_millis(10));
            for (leg, _) in readable.iter().enumerate().filter(|(_, r)| **r) {
                loop {
                    let n = batch.recv(&self.sockets[leg]).unwrap_or(0);
                    out.per_leg[leg] += n as u64;
                    total.fetch_add(n as u64, Ordering::Release);
                    if leg == 0 {
                        if let Some(opener) = opener.as_mut() {
                            verify_batch(&batch, n, opener, &mut scratch, &mut out);
                        }
                    }
                    if n < BATCH {
                        break;
                    }
                }
            }
        }
        out
    }
}

fn verify_batch(
    batch: &RecvBatch,
    n: usize,
    opener: &mut Opener,
    scratch: &mut Vec<u8>,
    out: &mut Received,
) {
    for i in 0..n {
        scratch.clear();
        if let Some((data, _)) = batch.get(i) {
            scratch.extend_from_slice(data);
        }
        if opener.open(scratch).is_some() {
            out.verified += 1;
        } else {
            out.verify_failed += 1;
        }
    }
}
