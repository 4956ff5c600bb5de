//! Each shard's sign of life: the loop stamps its heartbeat at the start of every turn (at
//! least every 200 ms, idle or not), so a shard stuck in one long turn — or starved of CPU —
//! shows as a heartbeat that ages. `/readyz` fails while any shard's is older than
//! [`STALLED_AFTER`], and `/metrics` exports the ages.

use prometheus::{Gauge, GaugeVec, Opts, Registry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shard whose heartbeat is older than this is stalled (its loop wakes at least every
/// 200 ms).
pub const STALLED_AFTER: Duration = Duration::from_secs(2);

/// One shard's heartbeat: microseconds since `origin` at its last turn.
pub struct Heartbeat {
    origin: Instant,
    last_us: AtomicU64,
}

impl Heartbeat {
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            last_us: AtomicU64::new(0),
        }
    }

    /// The shard starts a turn.
    pub fn beat(&self, now: Instant) {
        let us = now.saturating_duration_since(self.origin).as_micros() as u64;
        self.last_us.store(us, Ordering::Relaxed);
    }

    /// How long ago the last turn started, as seen at `now`.
    pub fn age(&self, now: Instant) -> Duration {
        let last = self.origin + Duration::from_micros(self.last_us.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

/// The heartbeats of every shard and the gauge that exports their ages.
pub struct ShardHealth {
    beats: Vec<Arc<Heartbeat>>,
    ages: Vec<Gauge>,
}

impl ShardHealth {
    /// Heartbeats for `shards` shards, registered as `chorus_shard_heartbeat_age_seconds`.
    pub fn new(shards: usize, registry: &Registry) -> prometheus::Result<Self> {
        let family = GaugeVec::new(
            Opts::new(
                "chorus_shard_heartbeat_age_seconds",
                "Time since each media shard's loop last started a turn (at scrape time)",
            ),
            &["shard"],
        )?;
        registry.register(Box::new(family.clone()))?;
        let origin = Instant::now();
        let beats = (0..shards)
            .map(|_| {
                let beat = Heartbeat::new(origin);
                beat.beat(origin);
                Arc::new(beat)
            })
            .collect();
        let ages = (0..shards)
            .map(|i| family.with_label_values(&[&i.to_string()]))
            .collect();
        Ok(Self { beats, ages })
    }

    /// Shard `index`'s heartbeat, for its thread.
    pub fn heartbeat(&self, index: usize) -> Arc<Heartbeat> {
        self.beats[index].clone()
    }

    /// Updates the exported ages (before a scrape).
    pub fn refresh(&self, now: Instant) {
        for (beat, gauge) in self.beats.iter().zip(&self.ages) {
            gauge.set(beat.age(now).as_secs_f64());
        }
    }

    /// The shards whose heartbeat is older than [`STALLED_AFTER`], with their ages.
    pub fn stalled(&self, now: Instant) -> Vec<(usize, Duration)> {
        self.beats
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.age(now)))
            .filter(|(_, age)| *age > STALLED_AFTER)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_that_stops_beating_is_stalled_and_its_age_exported() {
        let registry = Registry::new();
        let health = ShardHealth::new(2, &registry).unwrap();
        let start = Instant::now();
        health.heartbeat(0).beat(start + Duration::from_secs(10));
        health.heartbeat(1).beat(start + Duration::from_secs(7));
        let now = start + Duration::from_secs(10);
        let stalled = health.stalled(now);
        assert_eq!(stalled.len(), 1);
        assert_eq!(stalled[0].0, 1);
        assert!(stalled[0].1 >= Duration::from_secs(3) - Duration::from_millis(1));
        health.refresh(now);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        let age = |s: &str| crate::metrics::text::series(&text, s).unwrap();
        assert!((age("chorus_shard_heartbeat_age_seconds{shard=\"1\"}") - 3.0).abs() < 0.01);
        assert!(age("chorus_shard_heartbeat_age_seconds{shard=\"0\"}") < 0.01);
    }
}
