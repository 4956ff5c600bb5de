//! A byte-rate meter over the last second in four 250 ms buckets: one add per packet, no
//! allocation, time as an argument. What a leg is sent (all of it, and its audio) is measured
//! with it; it decides nothing.

use std::time::{Duration, Instant};

const BUCKETS: usize = 4;
const BUCKET: Duration = Duration::from_millis(250);

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    /// Start of bucket 0's current period (set by the first add).
    epoch: Option<Instant>,
    /// Bytes per bucket, and which period (count of buckets since `epoch`) each holds.
    bytes: [u64; BUCKETS],
    period: [u64; BUCKETS],
}

impl RateMeter {
    fn index(&self, now: Instant) -> Option<u64> {
        let epoch = self.epoch?;
        Some((now.saturating_duration_since(epoch).as_millis() / BUCKET.as_millis()) as u64)
    }

    /// Counts `bytes` sent at `now`.
    pub fn add(&mut self, now: Instant, bytes: usize) {
        let epoch = *self.epoch.get_or_insert(now);
        let period = (now.saturating_duration_since(epoch).as_millis() / BUCKET.as_millis()) as u64;
        let slot = (period % BUCKETS as u64) as usize;
        if self.period[slot] != period {
            self.period[slot] = period;
            self.bytes[slot] = 0;
        }
        self.bytes[slot] += bytes as u64;
    }

    /// Bits per second over the last second (the current bucket counted in part).
    pub fn bps(&self, now: Instant) -> u64 {
        let Some(current) = self.index(now) else {
            return 0;
        };
        let oldest = current.saturating_sub(BUCKETS as u64 - 1);
        let bytes: u64 = (0..BUCKETS)
            .filter(|&i| (oldest..=current).contains(&self.period[i]))
            .map(|i| self.bytes[i])
            .sum();
        let epoch = self.epoch.unwrap_or(now);
        let span = now
            .saturating_duration_since(epoch)
            .min(BUCKET * BUCKETS as u32)
            .max(BUCKET);
        (bytes as f64 * 8.0 / span.as_secs_f64()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_steady_rate_and_forgets_after_a_second() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        // 125 bytes every 10 ms: 100 kbit/s.
        for i in 0..300u32 {
            m.add(t0 + Duration::from_millis(10) * i, 125);
        }
        let bps = m.bps(t0 + Duration::from_millis(2_995));
        assert!((85_000..=115_000).contains(&bps), "{bps}");
        assert_eq!(m.bps(t0 + Duration::from_secs(5)), 0);
    }
}
