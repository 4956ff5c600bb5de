//! What the synthetic peers measure: per-track receive statistics (packets, unique counters →
//! loss, RFC 3550 jitter, one-way latency from the send time in each payload, kept in the
//! crate's histogram at microsecond resolution where it matters) and the run-wide totals the
//! progress line and the report are built from. Pure data: no I/O, no clocks of its own.

use crate::metrics::histogram::Histogram;
use serde::Serialize;
use std::sync::OnceLock;

/// Bounds of the latency histogram in microseconds: 10 µs steps up to 10 ms, 1 ms steps up
/// to 10 s (above that, the overflow bucket).
fn latency_bounds() -> &'static [f64] {
    static BOUNDS: OnceLock<Vec<f64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let fine = (1..=1000).map(|i| f64::from(i) * 10.0);
        let coarse = (11..=10_000).map(|i| f64::from(i) * 1000.0);
        fine.chain(coarse).collect()
    })
}

/// One-way latency, microsecond resolution where it matters: the crate's [`Histogram`] over
/// 10 µs buckets up to 10 ms and 1 ms buckets up to 10 s.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<Vec<u64>>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self(Histogram::with_buckets(latency_bounds()))
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, us: u64) {
        self.0.observe(latency_bounds(), us as f64);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.0.merge(&other.0);
    }

    /// What was recorded since `earlier` (a snapshot of this same histogram).
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        Self(self.0.since(&earlier.0))
    }

    pub fn count(&self) -> u64 {
        self.0.count()
    }

    /// The `q` quantile (0..=1) in microseconds (bucket upper bound); 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.0.quantile(latency_bounds(), q) as u64
    }
}

/// Receive statistics of one track at one synthetic subscriber.
#[derive(Debug, Clone, Default)]
pub struct TrackReceive {
    pub video: bool,
    pub packets: u64,
    pub bytes: u64,
    pub duplicates: u64,
    first_counter: Option<u32>,
    max_counter: u32,
    seen: crate::rtp::dedup::DuplicateFilter,
    unique: u64,
    /// RFC 3550 interarrival jitter, in RTP timestamp units.
    jitter: f64,
    last_transit: Option<i64>,
    clock_rate: u32,
    pub latency: LatencyHistogram,
}

impl TrackReceive {
    pub fn new(video: bool) -> Self {
        Self {
            video,
            clock_rate: if video { 90_000 } else { 48_000 },
            ..Default::default()
        }
    }

    /// One packet: its probe counter and send time, its RTP timestamp, its arrival time.
    pub fn record(
        &mut self,
        counter: u32,
        sent_us: u64,
        rtp_ts: u32,
        arrival_us: u64,
        size: usize,
    ) {
        self.packets += 1;
        self.bytes += size as u64;
        if !self.seen.first_time(counter as u16) {
            self.duplicates += 1;
            return;
        }
        self.unique += 1;
        let first = *self.first_counter.get_or_insert(counter);
        if counter >= first {
            self.max_counter = self.max_counter.max(counter);
        }
        self.latency.record(arrival_us.saturating_sub(sent_us));
        let arrival_ticks = (arrival_us as i128 * self.clock_rate as i128 / 1_000_000) as i64;
        let transit = arrival_ticks - rtp_ts as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Packets the publisher sent since the first one this subscriber saw.
    pub fn expected(&self) -> u64 {
        match self.first_counter {
            Some(first) if self.max_counter >= first => (self.max_counter - first) as u64 + 1,
            _ => 0,
        }
    }

    pub fn unique(&self) -> u64 {
        self.unique
    }

    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / self.clock_rate.max(1) as f64
    }
}

/// Counters over the whole run (all workers), sampled for the progress line and time series.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub peers_joined: u64,
    pub peers_connected: u64,
    pub tracks_expected: u64,
    pub tracks_receiving: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_expected: u64,
    pub packets_unique: u64,
    pub keyframes_sent: u64,
    pub plis_received: u64,
    /// RTP packets received without a probe payload: the server's padding when it probes.
    pub padding_received: u64,
    /// What subscribers received of simulcast tracks (`--simulcast`).
    pub layers: super::layers::LayerTotals,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.peers_joined += o.peers_joined;
        self.peers_connected += o.peers_connected;
        self.tracks_expected += o.tracks_expected;
        self.tracks_receiving += o.tracks_receiving;
        self.packets_sent += o.packets_sent;
        self.packets_received += o.packets_received;
        self.bytes_received += o.bytes_received;
        self.packets_expected += o.packets_expected;
        self.packets_unique += o.packets_unique;
        self.keyframes_sent += o.keyframes_sent;
        self.plis_received += o.plis_received;
        self.padding_received += o.padding_received;
        self.layers.add(&o.layers);
    }

    /// Fraction of expected packets that never arrived.
    pub fn loss(&self) -> f64 {
        if self.packets_expected == 0 {
            0.0
        } else {
            1.0 - self.packets_unique as f64 / self.packets_expected as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_right_buckets() {
        let mut h = LatencyHistogram::default();
        for us in 1..=100 {
            h.record(us * 100 - 5); // 0.1 .. 10 ms
        }
        assert_eq!(h.quantile_us(0.5), 5000);
        assert_eq!(h.quantile_us(0.99), 9900);
        h.record(50_500);
        assert_eq!(h.quantile_us(1.0), 51_000);
        h.record(20_000_000);
        assert_eq!(h.quantile_us(1.0), 10_000_000, "overflow reads as 10 s");
    }

    #[test]
    fn loss_and_duplicates_are_counted_from_counters() {
        let mut t = TrackReceive::new(false);
        for c in [10u32, 11, 13, 13, 14] {
            t.record(c, 0, c * 960, 1000 + c as u64 * 20_000, 100);
        }
        assert_eq!(t.expected(), 5);
        assert_eq!(t.unique(), 4);
        assert_eq!(t.duplicates, 1);
        assert!(t.jitter_ms() < 0.001);
    }
}
