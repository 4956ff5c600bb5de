//! The rate a leg's receiver acknowledged over a sliding window, in a fixed ring of [`BINS`]
//! time bins: what `rtc`'s `RateCalculator` measures (bytes in the window over the span from
//! the oldest packet in it to now), without its queue of one entry per packet. That queue held
//! 24 bytes per acknowledged packet of the last window (rounded up to a power of two): 144 KiB
//! per leg at 3,000 packets/s over the estimator's two windows, growing with the leg's bitrate.
//! Here a window costs 1.2 KiB whatever the rate, allocated with its first packet, and nothing
//! per packet. The window is measured to within one bin (2 %) at its old edge. Time is an
//! argument.

use std::time::{Duration, Instant};

/// Bins per window.
pub const BINS: usize = 50;
/// Slots in the ring: the bins of a window plus the one it partly covers at its old edge.
const SLOTS: usize = BINS + 1;

#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    /// Which bin (count of bin widths since the epoch) this slot holds.
    period: u64,
    /// The earliest sample in it, microseconds since the epoch.
    first_us: u64,
    /// Bytes in it (a bin is at most 20 ms of one leg: far below 4 GiB).
    bytes: u32,
    packets: u32,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct WindowRate {
    window: Duration,
    bin_us: u64,
    /// The first sample's instant.
    epoch: Option<Instant>,
    /// [`SLOTS`] bins from the first sample on (a leg without feedback allocates nothing).
    bins: Vec<Bin>,
}

impl WindowRate {
    /// A rate over `window` (at least [`BINS`] microseconds).
    pub fn new(window: Duration) -> Self {
        let bin_us = (window.as_micros() as u64 / BINS as u64).max(1);
        Self {
            window,
            bin_us,
            epoch: None,
            bins: Vec::new(),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        self.epoch
            .map_or(0, |e| at.saturating_duration_since(e).as_micros() as u64)
    }

    /// Records `size` bytes acknowledged at `at`; a sample older than the ring holds is dropped
    /// (it is outside any window still asked about).
    pub fn add(&mut self, at: Instant, size: usize) {
        if self.bins.is_empty() {
            self.bins = vec![Bin::default(); SLOTS];
        }
        self.epoch.get_or_insert(at);
        let us = self.micros(at);
        let period = us / self.bin_us;
        let bin = &mut self.bins[(period % SLOTS as u64) as usize];
        if bin.packets > 0 && bin.period > period {
            return;
        }
        if bin.packets == 0 || bin.period < period {
            *bin = Bin {
                period,
                first_us: us,
                bytes: 0,
                packets: 0,
            };
        }
        bin.first_us = bin.first_us.min(us);
        bin.bytes = bin
            .bytes
            .saturating_add(u32::try_from(size).unwrap_or(u32::MAX));
        bin.packets += 1;
    }

    /// Bits per second acknowledged in the window ending at `now`, over the span from its
    /// oldest packet to `now`; `None` with fewer than two packets in it or no span.
    pub fn rate_bits_per_second(&self, now: Instant) -> Option<f64> {
        self.epoch?;
        let now_us = self.micros(now);
        let cutoff_us = now_us.saturating_sub(self.window.as_micros() as u64);
        let oldest_period = cutoff_us / self.bin_us;
        let mut bytes = 0;
        let mut packets = 0;
        let mut oldest_us = u64::MAX;
        for bin in self.bins.iter().filter(|b| b.packets > 0) {
            if bin.period >= oldest_period {
                bytes += bin.bytes as u64;
                packets += bin.packets;
                oldest_us = oldest_us.min(bin.first_us);
            }
        }
        let span_us = now_us.checked_sub(oldest_us).filter(|&s| s > 0)?;
        (packets >= 2).then(|| (bytes * 8) as f64 / (span_us as f64 / 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::RateCalculator;

    #[test]
    fn agrees_with_rtcs_calculator_and_keeps_a_fixed_size() {
        let t0 = Instant::now();
        for window_ms in [500u64, 1000] {
            let window = Duration::from_millis(window_ms);
            let mut ours = WindowRate::new(window);
            let mut theirs = RateCalculator::new(window);
            // 3,000 packets/s with a rate change halfway, a few out of order.
            for i in 0..9_000u64 {
                let jitter = if i % 97 == 0 { 3_000 } else { 0 };
                let at = t0
                    + Duration::from_micros(i * 333 + 100)
                        .saturating_sub(Duration::from_micros(jitter));
                let size = if i < 4_500 { 1_200 } else { 300 };
                ours.add(at, size);
                theirs.add(at, size);
                if i % 50 == 49 {
                    let now = t0 + Duration::from_micros(i * 333 + 100);
                    let (a, b) = (
                        ours.rate_bits_per_second(now),
                        theirs.rate_bits_per_second(now),
                    );
                    let (a, b) = (a.unwrap(), b.unwrap());
                    assert!(
                        (a - b).abs() <= 0.05 * b,
                        "{window_ms} ms at {i}: {a} vs {b}"
                    );
                }
            }
        }
        assert_eq!(std::mem::size_of::<Bin>(), 24);
    }

    #[test]
    fn needs_two_packets_and_forgets_an_old_window() {
        let t0 = Instant::now();
        let mut r = WindowRate::new(Duration::from_millis(500));
        assert_eq!(r.rate_bits_per_second(t0), None);
        r.add(t0, 1_000);
        assert_eq!(r.rate_bits_per_second(t0 + Duration::from_millis(10)), None);
        r.add(t0 + Duration::from_millis(100), 1_000);
        let bps = r
            .rate_bits_per_second(t0 + Duration::from_millis(200))
            .unwrap();
        assert!((bps - 80_000.0).abs() < 1.0, "{bps}");
        assert_eq!(r.rate_bits_per_second(t0 + Duration::from_secs(2)), None);
        // A sample far older than the ring is ignored.
        r.add(t0 + Duration::from_secs(3), 500);
        r.add(t0, 1_000_000);
        r.add(t0 + Duration::from_millis(3_100), 500);
        let bps = r
            .rate_bits_per_second(t0 + Duration::from_millis(3_200))
            .unwrap();
        assert!((bps - 40_000.0).abs() < 1.0, "{bps}");
    }
}
