//! Media-plane counters: plain integers bumped on the shard's hot path, published to
//! Prometheus about once a second. The hot path never touches an atomic or a lock for them.

use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

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
    /// The subscriber leg's stack refused the rewritten packet.
    WriteFailed,
    /// The socket send buffer was full.
    SendBufferFull,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::Garbage,
        DropReason::UnknownSource,
        DropReason::Rejected,
        DropReason::Duplicate,
        DropReason::Muted,
        DropReason::WriteFailed,
        DropReason::SendBufferFull,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::Garbage => "garbage",
            DropReason::UnknownSource => "unknown_source",
            DropReason::Rejected => "rejected",
            DropReason::Duplicate => "duplicate",
            DropReason::Muted => "muted",
            DropReason::WriteFailed => "write_failed",
            DropReason::SendBufferFull => "send_buffer_full",
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
    pub dropped: [u64; 7],
    pub nacks_in: u64,
    pub keyframe_requests_in: u64,
    pub keyframe_requests_out: u64,
    pub busy_nanos: u64,
}

impl ShardCounters {
    pub fn drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
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
    /// CPU time of the shard thread at the last publish (only meaningful in `last`).
    pub cpu_nanos: u64,
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
    peer_connections: IntGauge,
    published_tracks: IntGaugeVec,
    subscriptions: IntGauge,
    media_rooms: IntGauge,
    shard_busy: CounterVec,
    shard_cpu: CounterVec,
}

impl MediaMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            datagrams: IntCounterVec::new(
                Opts::new(
                    "chorus_media_datagrams_total",
                    "UDP datagrams on the media sockets",
                ),
                &["direction"],
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
            dropped: IntCounterVec::new(
                Opts::new(
                    "chorus_dropped_packets_total",
                    "Datagrams or RTP packets not forwarded, by reason",
                ),
                &["reason"],
            )?,
            nacks_in: IntCounter::new(
                "chorus_nack_received_total",
                "RTCP NACK packets received from subscribers",
            )?,
            keyframe_requests: IntCounterVec::new(
                Opts::new(
                    "chorus_keyframe_requests_total",
                    "PLI/FIR keyframe requests: received from subscribers, sent to publishers",
                ),
                &["direction"],
            )?,
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
            media_rooms: IntGauge::new("chorus_media_rooms", "Rooms with a media participant")?,
            shard_busy: CounterVec::new(
                Opts::new(
                    "chorus_shard_busy_seconds_total",
                    "Time each media shard spent working rather than waiting",
                ),
                &["shard"],
            )?,
            shard_cpu: CounterVec::new(
                Opts::new(
                    "chorus_shard_cpu_seconds_total",
                    "CPU time consumed by each media shard thread",
                ),
                &["shard"],
            )?,
        };
        registry.register(Box::new(m.shard_cpu.clone()))?;
        registry.register(Box::new(m.datagrams.clone()))?;
        registry.register(Box::new(m.rtp_packets_in.clone()))?;
        registry.register(Box::new(m.rtp_bytes_in.clone()))?;
        registry.register(Box::new(m.forwarded_packets.clone()))?;
        registry.register(Box::new(m.forwarded_bytes.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.nacks_in.clone()))?;
        registry.register(Box::new(m.keyframe_requests.clone()))?;
        registry.register(Box::new(m.peer_connections.clone()))?;
        registry.register(Box::new(m.published_tracks.clone()))?;
        registry.register(Box::new(m.subscriptions.clone()))?;
        registry.register(Box::new(m.media_rooms.clone()))?;
        registry.register(Box::new(m.shard_busy.clone()))?;
        for reason in DropReason::ALL {
            m.dropped.with_label_values(&[reason.label()]);
        }
        Ok(m)
    }

    /// Adds a shard's counters and level changes; resets the counters.
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
        self.shard_busy
            .with_label_values(&[&shard.to_string()])
            .inc_by(c.busy_nanos as f64 / 1e9);
        let cpu = thread_cpu_nanos();
        self.shard_cpu
            .with_label_values(&[&shard.to_string()])
            .inc_by(cpu.saturating_sub(last.cpu_nanos) as f64 / 1e9);
        last.cpu_nanos = cpu;
        *c = ShardCounters::default();
        self.peer_connections
            .add(levels.peer_connections - last.peer_connections);
        self.published_tracks
            .with_label_values(&["audio"])
            .add(levels.published_audio - last.published_audio);
        self.published_tracks
            .with_label_values(&["video"])
            .add(levels.published_video - last.published_video);
        self.subscriptions
            .add(levels.subscriptions - last.subscriptions);
        self.media_rooms.add(levels.rooms - last.rooms);
        *last = ShardLevels {
            cpu_nanos: last.cpu_nanos,
            ..levels
        };
    }
}
