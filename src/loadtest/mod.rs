//! `chorus loadtest`: synthetic participants that speak the real protocol and real WebRTC
//! against a running server, and the report of what they measured. Shape: one tokio task per
//! participant for signaling ([`signaling`]), a few worker threads that own every
//! PeerConnection and socket ([`worker`], [`synthetic`]) so that one process drives thousands
//! of subscribers, the measurements ([`measure`]), the server's own figures from `/metrics`
//! ([`scrape`]) and the summary table, JSON and HTML report ([`report`]).

pub mod frames;
pub mod health;
pub mod layers;
pub mod measure;
mod out_track;
pub mod payload;
pub mod recipe;
pub mod report;
pub mod rid;
pub mod scrape;
pub mod signaling;
pub mod sink;
pub mod synthetic;
pub mod viewers;
pub mod worker;

use clap::Args;
use measure::{LatencyHistogram, Totals};
use report::{Report, SeriesPoint};
use signaling::{PeerPlan, SignalingStats};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use synthetic::{PublishSpec, ReceiveSpec};
use worker::{WorkerHandle, WorkerSnapshot};

/// Flags of `chorus loadtest`.
#[derive(Debug, Clone, Args)]
pub struct LoadConfig {
    /// Signaling URL of the server under test; several (repeated or comma-separated: the
    /// nodes of a cluster) get the participants round-robin, and their metrics are summed.
    #[arg(
        long = "url",
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    pub urls: Vec<String>,
    /// A named scenario (fanout-10, fanout-50, fanout-200, meeting-10x4, audio-1000, smoke);
    /// it sets rooms/publishers/subscribers/media, other flags still apply.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Publishing participants per room (they also receive every other track).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Receive-only participants per room.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Video bitrate per publisher, bits/s (one packet per frame of `--packet-size`).
    #[arg(long, default_value_t = 1_000_000)]
    pub video_bitrate: u64,
    /// Video RTP payload size in bytes.
    #[arg(long, default_value_t = 1200)]
    pub packet_size: usize,
    /// Publishers also send Opus audio (20 ms packets).
    #[arg(long)]
    pub audio: bool,
    /// Publishers send no video.
    #[arg(long)]
    pub no_video: bool,
    /// Publishers send video as rid simulcast: layers q, h, f at 1/4, 1/2 and 1 of
    /// `--video-bitrate`.
    #[arg(long)]
    pub simulcast: bool,
    /// Simulcast layers the subscribers ask for (`video-size` with `layer`), spread over them
    /// in turn, e.g. `0,1,2`; empty: no hint (the top layer).
    #[arg(long, value_delimiter = ',')]
    pub subscriber_layers: Vec<u8>,
    /// The synthetic peers negotiate no transport-cc and send no TWCC feedback (the server
    /// then has no bandwidth estimate for their legs).
    #[arg(long)]
    pub no_twcc: bool,
    /// Room name prefix (rooms are `<room>-0`, `<room>-1`, …); default `load-<random>`. Lets
    /// several `chorus loadtest` processes (e.g. on different links) share rooms.
    #[arg(long)]
    pub room: Option<String>,
    /// How long to measure once everyone has joined, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = crate::config::parse_duration)]
    pub duration: Duration,
    /// Joins per second.
    #[arg(long, default_value_t = 50.0)]
    pub ramp: f64,
    /// Mint access tokens with this secret (the server's `--auth-secret`).
    #[arg(long, env = "CHORUS_AUTH_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    pub html: Option<std::path::PathBuf>,
    /// Local address the synthetic peers' UDP sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Worker threads driving the peers.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Pin worker k to CPU core `pin_core + k`.
    #[arg(long)]
    pub pin_core: Option<usize>,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Receive-only participants drop media in the kernel (a socket filter keeps STUN, DTLS
    /// and RTCP) and are not reconnected for receiving none: for measuring the server's
    /// forwarding capacity by its own counters (client-side reception figures are void).
    #[arg(long)]
    pub sink: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            urls: vec!["ws://127.0.0.1:8080/ws".into()],
            scenario: None,
            rooms: 1,
            publishers: 1,
            subscribers: 10,
            video_bitrate: 1_000_000,
            packet_size: 1200,
            audio: false,
            no_video: false,
            simulcast: false,
            subscriber_layers: Vec::new(),
            no_twcc: false,
            room: None,
            duration: Duration::from_secs(30),
            ramp: 50.0,
            token_secret: None,
            json: None,
            html: None,
            bind: IpAddr::from([127, 0, 0, 1]),
            threads: 1,
            pin_core: None,
            quiet: false,
            sink: false,
        }
    }
}

/// Errors that stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "unknown scenario {0} (fanout-10, fanout-50, fanout-200, meeting-10x4, audio-1000, smoke)"
    )]
    UnknownScenario(String),
    #[error("starting a worker: {0}")]
    Worker(#[from] std::io::Error),
    #[error("minting a token: {0}")]
    Token(#[from] crate::auth::AuthError),
    #[error("writing the report: {0}")]
    Report(String),
}

impl LoadConfig {
    /// Applies `--scenario`.
    pub fn resolved(mut self) -> Result<Self, LoadError> {
        let Some(name) = self.scenario.clone() else {
            return Ok(self);
        };
        let (rooms, publishers, subscribers, audio, video) = match name.as_str() {
            "fanout-10" => (1, 1, 10, false, true),
            "fanout-50" => (1, 1, 50, false, true),
            "fanout-200" => (1, 1, 200, false, true),
            "meeting-10x4" => (10, 4, 0, true, true),
            "audio-1000" => (1, 1, 1000, true, false),
            "smoke" => (2, 1, 5, true, true),
            other => return Err(LoadError::UnknownScenario(other.to_owned())),
        };
        self.rooms = rooms;
        self.publishers = publishers;
        self.subscribers = subscribers;
        self.audio = audio;
        self.no_video = !video;
        Ok(self)
    }

    fn publish_spec(&self) -> PublishSpec {
        PublishSpec {
            audio: self.audio,
            video: !self.no_video,
            video_bitrate: self.video_bitrate,
            video_packet_size: self.packet_size,
            simulcast: self.simulcast,
        }
    }

    /// Tracks each receiving participant should get.
    fn expected_tracks(&self, publisher: bool) -> usize {
        let per_publisher = self.audio as usize + (!self.no_video) as usize;
        let others = if publisher {
            self.publishers.saturating_sub(1)
        } else {
            self.publishers
        };
        others * per_publisher
    }
}

struct Fleet {
    workers: Vec<WorkerHandle>,
}

impl Fleet {
    async fn snapshot(&self) -> WorkerSnapshot {
        let mut all = WorkerSnapshot::default();
        for w in &self.workers {
            let s = w.snapshot().await;
            all.totals.add(&s.totals);
            all.latency.merge(&s.latency);
            all.first_packet_ms.extend(s.first_packet_ms);
            all.jitter_ms.extend(s.jitter_ms);
            for (k, v) in s.failures {
                *all.failures.entry(k).or_default() += v;
            }
            all.cpu_seconds += s.cpu_seconds;
        }
        all
    }

    async fn viewers(&self, window: (u64, u64)) -> Vec<viewers::SubscriberVideo> {
        let mut all = Vec::new();
        for w in &self.workers {
            all.extend(w.viewers(window).await);
        }
        all.sort_by(|a, b| (&a.subscriber, &a.track).cmp(&(&b.subscriber, &b.track)));
        all
    }
}

/// The URL participant `index` connects to: round-robin over `urls`.
fn url_for(urls: &[String], index: usize) -> String {
    match urls.len() {
        0 => "ws://127.0.0.1:8080/ws".to_owned(),
        n => urls[index % n].clone(),
    }
}

fn plans(config: &LoadConfig, run_id: &str) -> Result<Vec<PeerPlan>, LoadError> {
    let authority = config
        .token_secret
        .as_ref()
        .map(|s| crate::auth::TokenAuthority::new(s.as_bytes()));
    let mut plans = Vec::new();
    for r in 0..config.rooms {
        let room = match &config.room {
            Some(prefix) => format!("{prefix}-{r}"),
            None => format!("load-{run_id}-{r}"),
        };
        for p in 0..config.publishers + config.subscribers {
            let publisher = p < config.publishers;
            let name = format!("{}{p}", if publisher { "pub" } else { "sub" });
            let token = match &authority {
                Some(a) => Some(a.mint(&crate::auth::Claims::new(
                    &room,
                    &format!("{name}-{r}"),
                    &name,
                    config.duration + Duration::from_secs(3600),
                ))?),
                None => None,
            };
            plans.push(PeerPlan {
                index: plans.len(),
                url: url_for(&config.urls, plans.len()),
                room: room.clone(),
                name: name.clone(),
                token,
                publish: publisher.then(|| config.publish_spec()),
                receive: ReceiveSpec {
                    want_layer: (!publisher && !config.subscriber_layers.is_empty()).then(|| {
                        let s = p - config.publishers;
                        config.subscriber_layers[s % config.subscriber_layers.len()]
                    }),
                    twcc: !config.no_twcc,
                    name,
                },
            });
        }
    }
    Ok(plans)
}

/// Runs a load test and returns its report (also printed and written as configured).
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    let config = config.resolved()?;
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xFF_FFFF);
    let plans = plans(&config, &run_id)?;
    let expected_tracks: usize = plans
        .iter()
        .map(|p| config.expected_tracks(p.publish.is_some()))
        .sum();
    let total = plans.len();
    let mut workers = Vec::new();
    for k in 0..config.threads.max(1) {
        let core = config.pin_core.map(|c| c + k);
        workers.push(worker::spawn(config.bind, core, config.sink)?);
    }
    let fleet = Fleet { workers };
    let metrics: Vec<(String, String)> = config
        .urls
        .iter()
        .filter_map(|url| scrape::metrics_url_for(url))
        .collect();
    let server_at_start = scrape::scrape_all(&metrics).await;
    let stats = Arc::new(Mutex::new(SignalingStats::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut series = Vec::new();
    let mut tasks = Vec::new();
    let gap = Duration::from_secs_f64(1.0 / config.ramp.max(0.1));
    let mut progress = Progress::new(&config, total);
    for plan in plans {
        let w = fleet.workers[plan.index % fleet.workers.len()].clone();
        tasks.push(tokio::spawn(signaling::run_peer(
            plan,
            w,
            stats.clone(),
            stop_rx.clone(),
        )));
        tokio::time::sleep(gap).await;
        progress
            .tick(&fleet, &metrics, started, &mut series, false)
            .await;
    }
    // Settle, then the measured window.
    let settle_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        progress
            .tick(&fleet, &metrics, started, &mut series, false)
            .await;
    }
    let window_start = fleet.snapshot().await;
    let window_start_unix = payload::unix_micros() / 1_000_000;
    let server_window_start = scrape::scrape_all(&metrics).await;
    let t0 = Instant::now();
    while t0.elapsed() < config.duration {
        tokio::time::sleep(Duration::from_millis(200)).await;
        progress
            .tick(&fleet, &metrics, started, &mut series, false)
            .await;
    }
    let window_end = fleet.snapshot().await;
    let viewers = fleet
        .viewers((window_start_unix, payload::unix_micros() / 1_000_000))
        .await;
    let server_window_end = scrape::scrape_all(&metrics).await;
    let window = t0.elapsed();
    progress.finish();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let signaling =
        std::mem::take(&mut *stats.lock().map_err(|e| LoadError::Report(e.to_string()))?);
    let report = Report::build(report::Inputs {
        config: &config,
        participants: total,
        expected_tracks,
        window,
        window_start: &window_start,
        window_end: &window_end,
        server_at_start,
        server_window_start,
        server_window_end,
        signaling,
        series,
        viewers,
    });
    report.print();
    if let Some(path) = &config.json {
        std::fs::write(path, report.to_json()).map_err(|e| LoadError::Report(e.to_string()))?;
    }
    if let Some(path) = &config.html {
        std::fs::write(path, report.to_html()).map_err(|e| LoadError::Report(e.to_string()))?;
    }
    Ok(report)
}

/// The live progress line and the once-a-second time series.
struct Progress {
    quiet: bool,
    total: usize,
    last_at: Option<Instant>,
    last: Option<(Totals, LatencyHistogram, f64, Option<scrape::ServerSample>)>,
}

impl Progress {
    fn new(config: &LoadConfig, total: usize) -> Self {
        Self {
            quiet: config.quiet,
            total,
            last_at: None,
            last: None,
        }
    }

    async fn tick(
        &mut self,
        fleet: &Fleet,
        metrics: &[(String, String)],
        started: Instant,
        series: &mut Vec<SeriesPoint>,
        force: bool,
    ) {
        let now = Instant::now();
        if !force
            && self
                .last_at
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        let snap = fleet.snapshot().await;
        let server = scrape::scrape_all(metrics).await;
        if let (Some(at), Some((prev, prev_latency, _prev_cpu, prev_server))) =
            (self.last_at, &self.last)
        {
            let dt = now.duration_since(at).as_secs_f64().max(1e-3);
            let interval = snap.latency.since(prev_latency);
            let mut delta = snap.totals.clone();
            delta.packets_expected = delta.packets_expected.saturating_sub(prev.packets_expected);
            delta.packets_unique = delta.packets_unique.saturating_sub(prev.packets_unique);
            let point = SeriesPoint {
                t: now.duration_since(started).as_secs_f64(),
                joined: snap.totals.peers_joined,
                received_mbps: (snap.totals.bytes_received - prev.bytes_received) as f64 * 8.0
                    / dt
                    / 1e6,
                received_pps: (snap.totals.packets_received - prev.packets_received) as f64 / dt,
                loss_pct: delta.loss() * 100.0,
                latency_p50_ms: interval.quantile_us(0.5) as f64 / 1000.0,
                latency_p99_ms: interval.quantile_us(0.99) as f64 / 1000.0,
                server_cpu_pct: match (server, prev_server) {
                    (Some(a), Some(b)) => {
                        (a.process_cpu_seconds - b.process_cpu_seconds) / dt * 100.0
                    }
                    _ => 0.0,
                },
            };
            if !self.quiet {
                eprint!(
                    "\r[{:>5.1}s] joined {}/{} connected {} | recv {:.1} Mbit/s {:.0} pkt/s | loss {:.2} % | latency p50 {:.1} ms p99 {:.1} ms   ",
                    point.t,
                    snap.totals.peers_joined,
                    self.total,
                    snap.totals.peers_connected,
                    point.received_mbps,
                    point.received_pps,
                    point.loss_pct,
                    point.latency_p50_ms,
                    point.latency_p99_ms
                );
            }
            series.push(point);
        }
        self.last_at = Some(now);
        self.last = Some((snap.totals, snap.latency, snap.cpu_seconds, server));
    }

    fn finish(&self) {
        if !self.quiet {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: LoadConfig,
    }

    #[test]
    fn several_urls_get_the_participants_round_robin() {
        let parsed =
            Cli::try_parse_from(["x", "--url", "ws://a/ws,ws://b/ws", "--url", "ws://c/ws"])
                .map(|c| c.config.urls);
        let urls = parsed.expect("flags parse");
        assert_eq!(urls, ["ws://a/ws", "ws://b/ws", "ws://c/ws"]);
        let spread: Vec<String> = (0..4).map(|i| url_for(&urls, i)).collect();
        assert_eq!(spread, ["ws://a/ws", "ws://b/ws", "ws://c/ws", "ws://a/ws"]);
        let default = Cli::try_parse_from(["x"]).map(|c| c.config.urls);
        assert_eq!(default.expect("parses"), ["ws://127.0.0.1:8080/ws"]);
    }

    #[test]
    fn twcc_is_on_unless_turned_off_and_rooms_take_the_given_name() {
        let config = Cli::try_parse_from(["x", "--subscribers", "2"]).map(|c| c.config);
        let on = plans(&config.expect("flags parse"), "abc").expect("plans");
        assert!(on.iter().all(|p| p.receive.twcc));
        assert_eq!(on[0].room, "load-abc-0");
        assert_eq!(on[1].receive.name, "sub1");
        let args = ["x", "--no-twcc", "--room", "shared", "--rooms", "2"];
        let config = Cli::try_parse_from(args).map(|c| c.config);
        let off = plans(&config.expect("flags parse"), "abc").expect("plans");
        assert!(off.iter().all(|p| !p.receive.twcc));
        assert_eq!(off.last().map(|p| p.room.as_str()), Some("shared-1"));
    }
}
