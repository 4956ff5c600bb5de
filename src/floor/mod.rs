//! `chorus bench-floor`: the wire floor of forwarding on this machine — a bare forwarder that
//! receives plaintext RTP with `recvmmsg`, rewrites the header per subscriber leg, seals it with
//! AES-128-GCM (SRTP, RFC 7714) and sends with `sendmmsg`, using the media shard's own socket
//! and batching code — and its CPU per forwarded packet, to measure the SFU against.
//!
//! Not included, by design: inbound SRTP decryption, RTCP (SR/RR, NACK, PLI, TWCC), the NACK
//! cache, ICE/DTLS, header extensions, stats, demultiplexing by address, any timers.

pub mod forwarder;
pub mod leg;
mod peers;
pub mod report;

use crate::config::parse_duration;
use crate::net::udp::{self, MAX_DATAGRAM};
use crate::net::wake::Waker;
use forwarder::{ForwardStats, Forwarder};
use leg::{Leg, LegSecret, RTP_HEADER, TAG};
use peers::{Received, Receivers};
use report::FloorReport;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most subscriber legs (each is a socket and a key).
pub const MAX_SUBSCRIBERS: usize = 1000;
/// Highest publisher rate, packets/s.
pub const MAX_RATE: u64 = 200_000;

/// `chorus bench-floor` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FloorConfig {
    /// Subscriber legs each packet is forwarded to (1..=1000).
    #[arg(long, default_value_t = 20)]
    pub subscribers: usize,
    /// Packets per second the publisher sends (paced). Default 6000: what `chorus loadtest
    /// --video-bitrate 57600000` publishes with its default 1200-byte video payloads
    /// (57.6 Mbit/s ÷ 9,600 bit per packet), the README's 1→20 row (~120k forwarded/s).
    #[arg(long, default_value_t = 6000)]
    pub rate: u64,
    /// RTP payload bytes after the 12-byte header (1..=1472). Default 1200: the load
    /// generator's video payload (`chorus loadtest --packet-size`, default 1200).
    #[arg(long, default_value_t = 1200)]
    pub payload_bytes: usize,
    /// How long the publisher sends, e.g. 20s (1s..=1h).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Core the forwarder thread is pinned to.
    #[arg(long, default_value_t = 0)]
    pub forwarder_cpu: usize,
    /// Core the publisher and the receiving thread are pinned to.
    #[arg(long, default_value_t = 1)]
    pub peers_cpu: usize,
    /// Open leg 0's datagrams with its key, proving the sealing is real (costs the
    /// receiving thread, not the forwarder).
    #[arg(long)]
    pub verify: bool,
    /// Drop RTP on every subscriber socket in the kernel, with the filter `chorus loadtest
    /// --sink` attaches: on loopback the drop runs in the forwarder's own send, so the
    /// receivers (their threads, wake-ups and late frees) are out of the figure, as they are
    /// for a server measured with `loadtest --sink`. Loss then counts send-side drops only.
    #[arg(long, conflicts_with = "verify")]
    pub sink: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl FloorConfig {
    fn validate(&self) -> Result<(), String> {
        let max_payload = MAX_DATAGRAM - RTP_HEADER - TAG;
        if !(1..=MAX_SUBSCRIBERS).contains(&self.subscribers) {
            return Err(format!("--subscribers must be 1..={MAX_SUBSCRIBERS}"));
        }
        if !(1..=MAX_RATE).contains(&self.rate) {
            return Err(format!("--rate must be 1..={MAX_RATE}"));
        }
        if !(1..=max_payload).contains(&self.payload_bytes) {
            return Err(format!("--payload-bytes must be 1..={max_payload}"));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.duration) {
            return Err("--duration must be 1s..=1h".into());
        }
        Ok(())
    }
}

/// Runs the floor once on 127.0.0.1 and returns what it measured.
pub fn run(config: &FloorConfig) -> Result<FloorReport, String> {
    config.validate()?;
    let loadavg_start = report::loadavg();
    let input = bind()?;
    let to = input.local_addr().map_err(|e| e.to_string())?;
    let mut sockets = Vec::with_capacity(config.subscribers);
    let mut legs = Vec::with_capacity(config.subscribers);
    let mut verify = None;
    for i in 0..config.subscribers {
        let socket = bind()?;
        if config.sink {
            crate::loadtest::sink::drop_media(&socket)
                .map_err(|e| format!("attaching the sink filter: {e}"))?;
        }
        let secret = LegSecret::random();
        if i == 0 && config.verify {
            verify = Some(secret);
        }
        let ssrc = 0x1000_0000 + i as u32;
        let leg = Leg::new(ssrc, rand::random(), rand::random(), secret);
        legs.push((leg, socket.local_addr().map_err(|e| e.to_string())?));
        sockets.push(socket);
    }
    let forwarder = Forwarder::new(input, legs);
    let receivers = Receivers { sockets, verify };
    let (published, fwd, rx) = run_threads(config, to, forwarder, receivers)?;
    let mut report = build_report(config, published, &fwd, &rx);
    report.loadavg_start = loadavg_start;
    Ok(report)
}

fn bind() -> Result<UdpSocket, String> {
    udp::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| format!("binding a loopback socket: {e}"))
}

/// Starts the forwarder and the receivers, publishes, waits for the flow to drain, stops.
fn run_threads(
    config: &FloorConfig,
    to: SocketAddr,
    forwarder: Forwarder,
    receivers: Receivers,
) -> Result<(u64, ForwardStats, Received), String> {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let wakers = [Waker::new(), Waker::new()];
    let [Ok(fwd_waker), Ok(rx_waker)] = wakers else {
        return Err("creating an eventfd".into());
    };
    std::thread::scope(|scope| {
        let spawn_err = |e: std::io::Error| format!("spawning a thread: {e}");
        let fwd = std::thread::Builder::new()
            .name("floor-forward".into())
            .spawn_scoped(scope, || {
                forwarder.run(config.forwarder_cpu, &stop, &fwd_waker)
            })
            .map_err(spawn_err)?;
        let rx = std::thread::Builder::new()
            .name("floor-receive".into())
            .spawn_scoped(scope, || {
                receivers.run(config.peers_cpu, &stop, &rx_waker, &total)
            })
            .map_err(spawn_err)?;
        let (rate, size, duration, core) = (
            config.rate,
            config.payload_bytes,
            config.duration,
            config.peers_cpu,
        );
        let published = std::thread::Builder::new()
            .name("floor-publish".into())
            .spawn_scoped(scope, move || {
                peers::publish(to, rate, size, duration, core)
            })
            .map_err(spawn_err)?
            .join()
            .unwrap_or(0);
        if !config.sink {
            wait_drained(&total, published * config.subscribers as u64);
        }
        stop.store(true, Ordering::Release);
        fwd_waker.wake();
        rx_waker.wake();
        let fwd = fwd.join().map_err(|_| "the forwarder panicked")?;
        let rx = rx.join().map_err(|_| "the receiver panicked")?;
        Ok((published, fwd, rx))
    })
}

/// Waits until `expected` datagrams arrived, or none for 500 ms, at most 5 s.
fn wait_drained(total: &AtomicU64, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = total.load(Ordering::Acquire);
    let mut last_change = Instant::now();
    while Instant::now() < deadline && last < expected {
        std::thread::sleep(Duration::from_millis(20));
        let now = total.load(Ordering::Acquire);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= Duration::from_millis(500) {
            break;
        }
    }
}

fn build_report(
    config: &FloorConfig,
    published: u64,
    fwd: &ForwardStats,
    rx: &Received,
) -> FloorReport {
    let expected = published * config.subscribers as u64;
    // With `--sink` nothing reaches the receivers: what `sendmmsg` accepted stands for it.
    let received: u64 = if config.sink {
        fwd.forwarded
    } else {
        rx.per_leg.iter().sum()
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let active_s = fwd.active_nanos as f64 / 1e9;
    FloorReport {
        subscribers: config.subscribers,
        rate_in_pps: config.rate,
        payload_bytes: config.payload_bytes,
        datagram_bytes: RTP_HEADER + config.payload_bytes + TAG,
        duration_s: config.duration.as_secs_f64(),
        forwarder_cpu: config.forwarder_cpu,
        peers_cpu: config.peers_cpu,
        sink: config.sink,
        published,
        forwarder_received: fwd.received,
        forwarded: fwd.forwarded,
        send_dropped: fwd.send_dropped,
        polls: fwd.polls,
        batches: fwd.batches,
        packets_per_batch: ratio(fwd.received as f64, fwd.batches as f64),
        forwarded_pps: ratio(fwd.forwarded as f64, active_s),
        received,
        expected,
        received_min_leg: rx.per_leg.iter().copied().min().unwrap_or(0),
        received_max_leg: rx.per_leg.iter().copied().max().unwrap_or(0),
        loss_pct: 100.0 * (1.0 - ratio(received as f64, expected as f64)).max(0.0),
        cpu_us_per_forwarded: ratio(fwd.cpu_nanos as f64 / 1e3, fwd.forwarded as f64),
        forwarder_core_pct: 100.0 * ratio(fwd.cpu_nanos as f64, fwd.active_nanos as f64),
        forwarder_cpu_ms: fwd.cpu_nanos as f64 / 1e6,
        loadavg_start: [0.0; 3],
        loadavg_end: report::loadavg(),
        verified: config.verify.then_some(rx.verified),
        verify_failed: config.verify.then_some(rx.verify_failed),
    }
}
