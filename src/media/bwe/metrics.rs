//! The bandwidth estimation metrics: `chorus_leg_estimated_bitrate_bps` (a histogram, one
//! observation per leg with an estimate about once a second) and `chorus_bwe_probes_total`
//! (padding bursts started). Observed in plain thread-local cells on the shard thread and
//! merged into the Prometheus collectors when the shard publishes, like `stats::wire`.

use crate::metrics::histogram::{HistogramFamily, LocalHistogram};
use prometheus::{IntCounter, Registry};
use std::cell::Cell;

/// Estimate buckets, bits per second.
pub const BITRATE_BUCKETS: &[f64] = &[
    50e3, 100e3, 200e3, 300e3, 500e3, 750e3, 1e6, 1.5e6, 2e6, 3e6, 5e6, 8e6, 12e6, 20e6, 50e6,
];

thread_local! {
    static ESTIMATES: Cell<LocalHistogram> = Cell::new(LocalHistogram::default());
    static PROBES: Cell<u64> = const { Cell::new(0) };
}

/// One leg's estimate, sampled.
pub fn observe_estimate(bps: u64) {
    ESTIMATES.with(|cell| {
        let mut h = cell.get();
        h.observe(BITRATE_BUCKETS, bps as f64);
        cell.set(h);
    });
}

/// A padding burst started.
pub fn count_probe() {
    PROBES.with(|c| c.set(c.get() + 1));
}

/// The Prometheus side.
#[derive(Clone)]
pub struct BweMetrics {
    estimates: HistogramFamily,
    probes: IntCounter,
}

impl BweMetrics {
    /// The collectors, registered in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            estimates: HistogramFamily::new(
                "chorus_leg_estimated_bitrate_bps",
                "Send-side bandwidth estimate of each subscriber leg (from its TWCC feedback), \
                 bits per second, sampled once a second per leg",
                &[],
                BITRATE_BUCKETS,
            )?,
            probes: IntCounter::new(
                "chorus_bwe_probes_total",
                "Padding bursts sent to subscriber legs to probe for more bandwidth",
            )?,
        };
        registry.register(Box::new(m.estimates.clone()))?;
        registry.register(Box::new(m.probes.clone()))?;
        m.estimates.touch(&[]);
        Ok(m)
    }

    /// Merges what the calling (shard) thread observed since its last publish.
    pub fn publish(&self) {
        let local = ESTIMATES.with(Cell::take);
        if local.count() > 0 {
            self.estimates.merge(&[], &local);
        }
        self.probes.inc_by(PROBES.with(Cell::take));
    }
}
