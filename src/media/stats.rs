//! Media-plane counters: plain integers bumped on the shard's hot path, published to
//! Prometheus about once a second. The hot path never touches an atomic or a lock for them:
//! counters and histograms ([`LocalHistogram`]) live in [`ShardCounters`], and what the
//! interceptor chain sees (NACKs sent, retransmissions) is counted in thread-local cells by
//! [`wire::WireCounter`] and collected at publish time on the same shard thread.
//!
//! Receiver-report figures ([`ReportSample`]) come from subscribers' RTCP: the fraction lost,
//! the interarrival jitter (in the track's clock rate, turned into seconds) and the round-trip
//! time from LSR/DLSR against our own sender reports' NTP clock.

mod report;
pub mod simulcast;
pub mod wire;

pub use report::{ntp_now, round_trip, ReportSample};

use super::bwe::metrics::BweMetrics;
use crate::metrics::histogram::{HistogramFamily, LocalHistogram};
use crate::net::thread::thread_cpu_nanos;
use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::time::Duration;

/// Round-trip time buckets, seconds.
pub const RTT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0,
];
/// Fraction-lost buckets (0–1); `le="0"` counts loss-free reports.
pub const LOSS_BUCKETS: &[f64] = &[0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];
/// Interarrival jitter buckets, seconds.
pub const JITTER_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5];
/// Shard loop lag buckets, seconds.
pub const LAG_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Media kinds, as the `kind` label of the report histograms (index = [`kind_index`]).
const KINDS: [&str; 2] = ["audio", "video"];

fn kind_index(video: bool) -> usize {
    usize::from(video)
}

/// The `outcome` labels of `chorus_media_requests_backlog_total`.
const BACKLOG_OUTCOMES: [&str; 3] = ["deferred", "superseded", "refused"];

/// Why a datagram or packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not STUN/DTLS/RTP/RTCP (RFC 7983 demux) or truncated.
    Garbage,
    /// From an address no connection owns.
    UnknownSource,
    /// The connection's stack rejected it (bad SRTP, bad DTLS, …).
    Rejected,
    /// A publisher retransmission of a packet already forwarded.
    Duplicate,
    /// The track is muted.
    Muted,
    /// Video on a leg that starts or resumes, before the first keyframe.
    AwaitingKeyframe,
    /// The subscriber leg's stack refused the rewritten packet.
    WriteFailed,
    /// The socket send buffer was full.
    SendBufferFull,
    /// A STUN message naming a connection's ufrag whose MESSAGE-INTEGRITY does not verify
    /// with that connection's ICE password (its source address is not learned).
    Unauthenticated,
    /// An authenticated STUN request from a new address of a connection that already has
    /// as many live addresses as `--media-addrs-per-peer` allows.
    AddressLimit,
    /// A packet for a subscriber leg whose ICE and DTLS are not up yet (no SRTP keys).
    NotConnected,
    /// A client's repeated DTLS handshake flight, held back so that ours is retransmitted
    /// (see `rtp::dtls_repeat`).
    DtlsRepeat,
}

impl DropReason {
    pub const ALL: [DropReason; 12] = [
        DropReason::Garbage,
        DropReason::UnknownSource,
        DropReason::Rejected,
        DropReason::Duplicate,
        DropReason::Muted,
        DropReason::AwaitingKeyframe,
        DropReason::WriteFailed,
        DropReason::SendBufferFull,
        DropReason::Unauthenticated,
        DropReason::AddressLimit,
        DropReason::NotConnected,
        DropReason::DtlsRepeat,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::Garbage => "garbage",
            DropReason::UnknownSource => "unknown_source",
            DropReason::Rejected => "rejected",
            DropReason::Duplicate => "duplicate",
            DropReason::Muted => "muted",
            DropReason::AwaitingKeyframe => "awaiting_keyframe",
            DropReason::WriteFailed => "write_failed",
            DropReason::SendBufferFull => "send_buffer_full",
            DropReason::Unauthenticated => "unauthenticated",
            DropReason::AddressLimit => "address_limit",
            DropReason::NotConnected => "not_connected",
            DropReason::DtlsRepeat => "dtls_repeat",
        }
    }
}

/// Counters of one shard since its last publish.
#[derive(Debug, Default, Clone)]
pub struct ShardCounters {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub rtp_in: u64,
    pub rtp_bytes_in: u64,
    pub forwarded: u64,
    pub forwarded_bytes: u64,
    pub dropped: [u64; DropReason::ALL.len()],
    pub nacks_in: u64,
    pub keyframe_requests_in: u64,
    pub keyframe_requests_out: u64,
    /// `active-speakers` messages rooms sent (each to every member).
    pub active_speaker_changes: u64,
    /// Simulcast legs moved to another layer.
    pub layer_switches: u64,
    /// Media requests that waited for a later turn, offers a newer one replaced while they
    /// waited, and requests refused because too many were waiting (see `backlog.rs`).
    pub requests_deferred: u64,
    pub offers_superseded: u64,
    pub requests_refused: u64,
    pub busy_nanos: u64,
    /// Receiver-report figures by kind (index 0 audio, 1 video).
    pub rtt: [LocalHistogram; 2],
    pub loss: [LocalHistogram; 2],
    pub jitter: [LocalHistogram; 2],
    /// How late the shard woke for a due timer.
    pub loop_lag: LocalHistogram,
}

impl ShardCounters {
    pub fn drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    /// Records one receiver-report block about a track we send.
    pub fn record_report(&mut self, video: bool, sample: ReportSample) {
        let k = kind_index(video);
        self.loss[k].observe(LOSS_BUCKETS, sample.loss);
        if let Some(jitter) = sample.jitter_seconds {
            self.jitter[k].observe(JITTER_BUCKETS, jitter);
        }
        if let Some(rtt) = sample.rtt {
            self.rtt[k].observe(RTT_BUCKETS, rtt.as_secs_f64());
        }
    }

    /// Records how late the loop served a timer that was due at `deadline`.
    pub fn record_lag(&mut self, lag: Duration) {
        self.loop_lag.observe(LAG_BUCKETS, lag.as_secs_f64());
    }
}

/// Gauges a shard reports as absolute values (it adds the difference to the shared gauge).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardLevels {
    pub peer_connections: i64,
    pub published_audio: i64,
    pub published_video: i64,
    pub subscriptions: i64,
    pub rooms: i64,
    /// Legs whose forwarded RTP takes the fast path.
    pub fast_path_legs: i64,
    /// Simulcast subscriber legs per layer they are on (see `stats/simulcast.rs`).
    pub simulcast_legs: [i64; 4],
    /// Simulcast layers paused at their publishers (dynacast).
    pub simulcast_paused_layers: i64,
    /// CPU time of the shard thread at the last publish (only meaningful in `last`).
    pub cpu_nanos: u64,
}

/// The Prometheus side of the media counters, shared by all shards.
#[derive(Clone)]
pub struct MediaMetrics {
    datagrams: IntCounterVec,
    rtp_packets_in: IntCounter,
    rtp_bytes_in: IntCounter,
    forwarded_packets: IntCounter,
    forwarded_bytes: IntCounter,
    dropped: IntCounterVec,
    nacks_in: IntCounter,
    keyframe_requests: IntCounterVec,
    backlog: IntCounterVec,
    nacks_out: IntCounter,
    retransmitted_packets: IntCounter,
    retransmitted_bytes: IntCounter,
    active_speaker_changes: IntCounter,
    levels: Levels,
    histograms: Histograms,
    /// Bandwidth estimation (`media::bwe::metrics`).
    bwe: Option<BweMetrics>,
    simulcast: simulcast::SimulcastMetrics,
}

impl MediaMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let mut m = Self::traffic(registry)?;
        for collector in m.collectors() {
            registry.register(collector)?;
        }
        m.bwe = Some(BweMetrics::new(registry)?);
        for kind in KINDS {
            m.histograms.rtt.touch(&[kind]);
            m.histograms.loss.touch(&[kind]);
            m.histograms.jitter.touch(&[kind]);
            m.levels.published_tracks.with_label_values(&[kind]);
        }
        for direction in ["in", "out"] {
            m.keyframe_requests.with_label_values(&[direction]);
            m.datagrams.with_label_values(&[direction]);
        }
        for reason in DropReason::ALL {
            m.dropped.with_label_values(&[reason.label()]);
        }
        for outcome in BACKLOG_OUTCOMES {
            m.backlog.with_label_values(&[outcome]);
        }
        Ok(m)
    }

    /// Every metric, for registration.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.nacks_out.clone()),
            Box::new(self.retransmitted_packets.clone()),
            Box::new(self.retransmitted_bytes.clone()),
            Box::new(self.active_speaker_changes.clone()),
            Box::new(self.histograms.rtt.clone()),
            Box::new(self.histograms.loss.clone()),
            Box::new(self.histograms.jitter.clone()),
            Box::new(self.histograms.loop_lag.clone()),
            Box::new(self.levels.shard_cpu.clone()),
            Box::new(self.datagrams.clone()),
            Box::new(self.rtp_packets_in.clone()),
            Box::new(self.rtp_bytes_in.clone()),
            Box::new(self.forwarded_packets.clone()),
            Box::new(self.forwarded_bytes.clone()),
            Box::new(self.dropped.clone()),
            Box::new(self.nacks_in.clone()),
            Box::new(self.keyframe_requests.clone()),
            Box::new(self.backlog.clone()),
            Box::new(self.levels.peer_connections.clone()),
            Box::new(self.levels.published_tracks.clone()),
            Box::new(self.levels.subscriptions.clone()),
            Box::new(self.levels.fast_path_legs.clone()),
            Box::new(self.levels.media_rooms.clone()),
            Box::new(self.levels.shard_busy.clone()),
        ]
    }

    /// The metrics, unregistered: packet and byte counters, then levels, then histograms.
    fn traffic(registry: &Registry) -> prometheus::Result<Self> {
        let (levels, histograms) = (Levels::new()?, Histograms::new()?);
        Ok(Self {
            simulcast: simulcast::SimulcastMetrics::new(registry)?,
            datagrams: counter_vec(
                "chorus_media_datagrams_total",
                "UDP datagrams on the media sockets",
                "direction",
            )?,
            rtp_packets_in: IntCounter::new(
                "chorus_rtp_packets_received_total",
                "RTP packets received from publishers",
            )?,
            rtp_bytes_in: IntCounter::new(
                "chorus_rtp_received_bytes_total",
                "RTP payload bytes received from publishers",
            )?,
            forwarded_packets: IntCounter::new(
                "chorus_forwarded_packets_total",
                "RTP packets forwarded to subscribers",
            )?,
            forwarded_bytes: IntCounter::new(
                "chorus_forwarded_bytes_total",
                "RTP payload bytes forwarded to subscribers",
            )?,
            dropped: counter_vec(
                "chorus_dropped_packets_total",
                "Datagrams or RTP packets not forwarded, by reason",
                "reason",
            )?,
            nacks_in: IntCounter::new(
                "chorus_nack_received_total",
                "RTCP NACK packets received from subscribers",
            )?,
            backlog: counter_vec(
                "chorus_media_requests_backlog_total",
                "Media requests that waited for a later shard turn (deferred), offers replaced \
                 by a newer one while waiting (superseded), requests refused (too many waiting)",
                "outcome",
            )?,
            keyframe_requests: counter_vec(
                "chorus_keyframe_requests_total",
                "PLI/FIR keyframe requests: received from subscribers, sent to publishers",
                "direction",
            )?,
            nacks_out: IntCounter::new(
                "chorus_nack_sent_total",
                "RTCP NACK packets sent to publishers for lost packets",
            )?,
            retransmitted_packets: IntCounter::new(
                "chorus_rtp_retransmitted_packets_total",
                "RTP packets resent to subscribers in answer to their NACKs",
            )?,
            retransmitted_bytes: IntCounter::new(
                "chorus_rtp_retransmitted_bytes_total",
                "RTP payload bytes resent to subscribers in answer to their NACKs",
            )?,
            active_speaker_changes: IntCounter::new(
                "chorus_active_speaker_changes_total",
                "active-speakers messages sent by rooms (each to every member of its room)",
            )?,
            levels,
            histograms,
            bwe: None,
        })
    }

    /// Makes the per-shard series exist before the shard's first publish.
    pub fn touch_shard(&self, shard: usize) {
        let label = shard.to_string();
        self.levels.shard_busy.with_label_values(&[&label]);
        self.levels.shard_cpu.with_label_values(&[&label]);
        self.histograms.loop_lag.touch(&[&label]);
    }

    /// Adds a shard's counters and level changes; resets the counters. Runs on the shard's
    /// thread (it also collects that thread's [`wire`] counts).
    pub fn publish(
        &self,
        shard: usize,
        c: &mut ShardCounters,
        levels: ShardLevels,
        last: &mut ShardLevels,
    ) {
        self.datagrams
            .with_label_values(&["in"])
            .inc_by(c.datagrams_in);
        self.datagrams
            .with_label_values(&["out"])
            .inc_by(c.datagrams_out);
        self.rtp_packets_in.inc_by(c.rtp_in);
        self.rtp_bytes_in.inc_by(c.rtp_bytes_in);
        self.forwarded_packets.inc_by(c.forwarded);
        self.forwarded_bytes.inc_by(c.forwarded_bytes);
        for reason in DropReason::ALL {
            let n = c.dropped[reason as usize];
            if n > 0 {
                self.dropped.with_label_values(&[reason.label()]).inc_by(n);
            }
        }
        self.nacks_in.inc_by(c.nacks_in);
        self.keyframe_requests
            .with_label_values(&["in"])
            .inc_by(c.keyframe_requests_in);
        self.keyframe_requests
            .with_label_values(&["out"])
            .inc_by(c.keyframe_requests_out);
        let outcomes = [c.requests_deferred, c.offers_superseded, c.requests_refused];
        for (outcome, n) in BACKLOG_OUTCOMES.into_iter().zip(outcomes) {
            self.backlog.with_label_values(&[outcome]).inc_by(n);
        }
        let wire = wire::take();
        self.nacks_out.inc_by(wire.nacks_out);
        self.retransmitted_packets
            .inc_by(wire.retransmitted_packets);
        self.retransmitted_bytes.inc_by(wire.retransmitted_bytes);
        self.active_speaker_changes.inc_by(c.active_speaker_changes);
        if let Some(bwe) = &self.bwe {
            bwe.publish();
        }
        for (k, kind) in KINDS.iter().enumerate() {
            for (family, local) in [
                (&self.histograms.rtt, &c.rtt[k]),
                (&self.histograms.loss, &c.loss[k]),
                (&self.histograms.jitter, &c.jitter[k]),
            ] {
                if local.count() > 0 {
                    family.merge(&[kind], local);
                }
            }
        }
        if c.loop_lag.count() > 0 {
            self.histograms
                .loop_lag
                .merge(&[&shard.to_string()], &c.loop_lag);
        }
        self.levels
            .shard_busy
            .with_label_values(&[&shard.to_string()])
            .inc_by(c.busy_nanos as f64 / 1e9);
        let cpu = thread_cpu_nanos();
        self.levels
            .shard_cpu
            .with_label_values(&[&shard.to_string()])
            .inc_by(cpu.saturating_sub(last.cpu_nanos) as f64 / 1e9);
        last.cpu_nanos = cpu;
        *c = ShardCounters::default();
        self.levels
            .peer_connections
            .add(levels.peer_connections - last.peer_connections);
        self.levels
            .published_tracks
            .with_label_values(&["audio"])
            .add(levels.published_audio - last.published_audio);
        self.levels
            .published_tracks
            .with_label_values(&["video"])
            .add(levels.published_video - last.published_video);
        self.levels
            .subscriptions
            .add(levels.subscriptions - last.subscriptions);
        self.levels
            .fast_path_legs
            .add(levels.fast_path_legs - last.fast_path_legs);
        self.levels.media_rooms.add(levels.rooms - last.rooms);
        self.simulcast
            .publish(c.layer_switches, levels.simulcast_legs, last.simulcast_legs);
        self.simulcast
            .publish_paused(levels.simulcast_paused_layers - last.simulcast_paused_layers);
        *last = ShardLevels {
            cpu_nanos: last.cpu_nanos,
            ..levels
        };
    }
}

fn counter_vec(name: &str, help: &str, label: &str) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), &[label])
}

fn shard_seconds(name: &str, help: &str) -> prometheus::Result<CounterVec> {
    CounterVec::new(Opts::new(name, help), &["shard"])
}

/// The gauges and per-shard time counters.
#[derive(Clone)]
struct Levels {
    peer_connections: IntGauge,
    published_tracks: IntGaugeVec,
    subscriptions: IntGauge,
    fast_path_legs: IntGauge,
    media_rooms: IntGauge,
    shard_busy: CounterVec,
    shard_cpu: CounterVec,
}

impl Levels {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            peer_connections: IntGauge::new(
                "chorus_media_peer_connections",
                "Server-side WebRTC PeerConnections",
            )?,
            published_tracks: IntGaugeVec::new(
                Opts::new("chorus_media_published_tracks", "Published tracks by kind"),
                &["kind"],
            )?,
            subscriptions: IntGauge::new(
                "chorus_media_subscriptions",
                "Forwarded track subscriptions (publisher track → subscriber leg)",
            )?,
            fast_path_legs: IntGauge::new(
                "chorus_media_fast_path_legs",
                "Connections whose forwarded RTP takes the fast path (own SRTP, send batches)",
            )?,
            media_rooms: IntGauge::new("chorus_media_rooms", "Rooms with a media participant")?,
            shard_busy: shard_seconds(
                "chorus_shard_busy_seconds_total",
                "Time each media shard spent working rather than waiting",
            )?,
            shard_cpu: shard_seconds(
                "chorus_shard_cpu_seconds_total",
                "CPU time consumed by each media shard thread",
            )?,
        })
    }
}

/// The receiver-report and loop-lag histograms.
#[derive(Clone)]
struct Histograms {
    rtt: HistogramFamily,
    loss: HistogramFamily,
    jitter: HistogramFamily,
    loop_lag: HistogramFamily,
}

impl Histograms {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            rtt: HistogramFamily::new(
                "chorus_rtcp_rtt_seconds",
                "Round-trip time to subscribers, from their RTCP receiver reports (LSR/DLSR)",
                &["kind"],
                RTT_BUCKETS,
            )?,
            loss: HistogramFamily::new(
                "chorus_rtcp_loss_ratio",
                "Fraction of packets lost on the way to subscribers, per RTCP receiver report",
                &["kind"],
                LOSS_BUCKETS,
            )?,
            jitter: HistogramFamily::new(
                "chorus_rtcp_jitter_seconds",
                "Interarrival jitter seen by subscribers, per RTCP receiver report",
                &["kind"],
                JITTER_BUCKETS,
            )?,
            loop_lag: HistogramFamily::new(
                "chorus_shard_loop_lag_seconds",
                "How late a media shard woke for a due timer",
                &["shard"],
                LAG_BUCKETS,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::reception_report::ReceptionReport;

    #[test]
    fn report_block_in_seconds_and_ratios() {
        let block = ReceptionReport {
            ssrc: 1,
            fraction_lost: 64,
            jitter: 900,
            last_sender_report: 0,
            delay: 0,
            ..Default::default()
        };
        let sample = ReportSample::from_block(&block, 90_000, ntp_now());
        assert_eq!(sample.loss, 0.25);
        assert_eq!(sample.jitter_seconds, Some(0.01));
        assert_eq!(sample.rtt, None);
        let mut counters = ShardCounters::default();
        counters.record_report(true, sample);
        assert_eq!(counters.loss[1].count(), 1);
        assert_eq!(counters.jitter[1].count(), 1);
        assert_eq!(counters.rtt[1].count(), 0);
        assert_eq!(counters.loss[0].count(), 0);
    }

    #[test]
    fn every_media_metric_is_registered_with_its_series() {
        let registry = Registry::new();
        let metrics = MediaMetrics::new(&registry).expect("metrics");
        metrics.touch_shard(0);
        let families = registry.gather();
        assert_eq!(families.len(), 29);
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        for name in [
            "chorus_media_datagrams_total",
            "chorus_dropped_packets_total",
            "chorus_shard_cpu_seconds_total",
            "chorus_rtcp_rtt_seconds",
            "chorus_media_published_tracks",
            "chorus_media_fast_path_legs",
            "chorus_active_speaker_changes_total",
            "chorus_leg_estimated_bitrate_bps",
            "chorus_bwe_probes_total",
            "chorus_simulcast_layer_switches_total",
            "chorus_simulcast_legs",
            "chorus_simulcast_paused_layers",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let dropped = families
            .iter()
            .find(|f| f.name() == "chorus_dropped_packets_total")
            .expect("dropped");
        assert_eq!(dropped.get_metric().len(), DropReason::ALL.len());
    }
}
