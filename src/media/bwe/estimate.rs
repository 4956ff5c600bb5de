//! The bandwidth estimate of one subscriber leg, in the manner of GCC: `rtc`'s delay-based
//! stages (arrival groups and Kalman trend: `SlopeEstimator`; `OveruseDetector`; AIMD
//! `RateController`) and its loss-based `LossController`, combined by `min` as `rtc`'s `Gcc`
//! does. It is composed here rather than used as `Gcc` because the leg needs three things `Gcc`
//! hides: the overuse signal (to judge a probe), a reset to what a probe proved, and a ceiling
//! from the acknowledged rate — `rtc`'s controllers climb without bound while the leg sends
//! little (an SFU leg is application-limited most of the time), so the estimate is held to
//! 1.5 × what the receiver acknowledged over the last second plus 10 kbit/s (libwebrtc's rule),
//! or to what the last successful probe showed the path carries (to what it acknowledged while
//! more than 10 % is lost); and it does not fall below 0.85 × what the receiver acknowledged
//! (the path just carried that). Time is an argument.

use super::window::WindowRate;
use rtc::interceptor::{
    LossController, OveruseDetector, PacketReport, RateController, SlopeEstimator, Usage,
};
use std::time::{Duration, Instant};

/// The estimate never goes below this (audio and a thumbnail).
pub const MIN_BPS: f64 = 50_000.0;
/// Nor above this.
pub const MAX_BPS: f64 = 100_000_000.0;
/// Where the controllers start before anything is known.
pub const INITIAL_BPS: f64 = 1_000_000.0;
/// The estimate is at least this share of the rate the receiver acknowledged.
pub const FLOOR_OF_ACKED: f64 = 0.85;
/// Average loss above which the estimate is held to what the receiver acknowledged.
pub const LOSSY: f64 = 0.1;
/// How long what a probe proved holds the ceiling up without new proof.
pub const PROVEN_FOR: Duration = Duration::from_secs(10);

/// The window of the received rate the AIMD decrease backs off from (`rtc`'s default).
const RECEIVED_WINDOW: Duration = rtc::interceptor::GCC_RATE_WINDOW;

/// See the module documentation.
pub struct Estimator {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    delay: RateController,
    loss: LossController,
    /// What the receiver gets (500 ms), for the AIMD decrease (fixed size: `window.rs`).
    received: WindowRate,
    /// What it acknowledged over a second, for the ceiling.
    acked: WindowRate,
    /// The rate a probe showed the path carries, and until when it counts.
    proven: Option<(f64, Instant)>,
    estimate: Option<f64>,
    /// For a leg that cannot probe: how high the estimate may climb without proof (see
    /// [`Estimator::set_unproven_ceiling`]).
    unproven: Option<f64>,
    /// The first arrival seen (receiver clock) and our instant then: arrivals are counted
    /// into the rate calculators at `local + (arrival - receiver)`, when they arrived rather
    /// than when their feedback did (a window of feedback instants holds one feedback more
    /// bytes than its span: +25 % at 100 ms feedback over 500 ms).
    anchor: Option<(Duration, Instant)>,
    /// The newest arrival counted, as an instant of ours.
    newest: Option<Instant>,
}

impl Default for Estimator {
    fn default() -> Self {
        Self {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            delay: RateController::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            loss: LossController::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            received: WindowRate::new(RECEIVED_WINDOW),
            acked: WindowRate::new(Duration::from_secs(1)),
            proven: None,
            estimate: None,
            unproven: None,
            anchor: None,
            newest: None,
        }
    }
}

impl Estimator {
    /// Folds in the reports of one feedback, received at `now`.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let mut usage = self.detector.usage();
        for report in reports {
            if let (true, Some(arrival)) = (report.arrived, report.arrival) {
                let (receiver, local) = *self.anchor.get_or_insert((arrival, now));
                let at = local + arrival.saturating_sub(receiver);
                self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
                self.received.add(at, report.size);
                self.acked.add(at, report.size);
            }
            if let Some(trend) = self.slope.accumulate(report) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let Some(newest) = self.newest else {
            return;
        };
        let received = self.received.rate_bits_per_second(newest);
        let delay = self.delay.update(now, usage, received);
        let lost = reports.iter().filter(|r| !r.arrived).count();
        let loss = self.loss.update(now, lost, reports.len());
        if usage == Usage::Over || self.loss.average_loss().is_some_and(|l| l > LOSSY) {
            self.proven = None;
        }
        if self.proven.is_some_and(|(_, until)| now > until) {
            self.proven = None;
        }
        let Some(acked) = self.acked.rate_bits_per_second(newest) else {
            return;
        };
        // Losing more than 10 %: the path carries what arrives and no more (a leg sent above
        // a capped link's rate must not wait for the loss controller's slow decay to move to a
        // lower layer: its picture freezes meanwhile).
        let lossy = self.loss.average_loss().is_some_and(|l| l > LOSSY);
        let ceiling = match lossy {
            true => acked,
            false => (1.5 * acked + 10_000.0)
                .max(self.proven.map_or(0.0, |(bps, _)| bps))
                .max(self.unproven.unwrap_or(0.0)),
        };
        // What the path just delivered is a floor (less the AIMD backoff's margin): under
        // sustained loss the loss half keeps falling while the sender does not adapt, which
        // says nothing about a layer below the delivered rate.
        let floor = FLOOR_OF_ACKED * acked;
        let estimate = delay.min(loss).max(floor).min(ceiling);
        self.estimate = Some(estimate.clamp(MIN_BPS, MAX_BPS));
    }

    /// A probe showed the path carries `bps` (measured at `now`): the ceiling rises to it, and
    /// controllers below it restart from it. Ignored while the delay signal says overuse.
    pub fn on_probe(&mut self, now: Instant, bps: f64) {
        if self.detector.usage() == Usage::Over || bps <= self.estimate.unwrap_or(0.0) {
            return;
        }
        let bps = bps.clamp(MIN_BPS, MAX_BPS);
        self.proven = Some((bps, now + PROVEN_FOR));
        if self.delay.target() < bps {
            self.delay = RateController::new(bps, MIN_BPS, MAX_BPS);
        }
        if self.loss.target() < bps {
            self.loss = LossController::new(bps, MIN_BPS, MAX_BPS);
        }
        self.estimate = Some(bps.min(self.delay.target()).min(self.loss.target()));
    }

    /// A leg that cannot probe (the stack path, no RTX stream, probing off) could never prove
    /// more than 1.5 × what it is sent, and a layer selector that lowered it would keep it low
    /// for good: for such a leg the estimate may climb, as fast as GCC's controllers let it, up
    /// to `bps` (the rate it could take, with headroom) without proof. `None` for a leg that
    /// probes.
    pub fn set_unproven_ceiling(&mut self, bps: Option<f64>) {
        self.unproven = bps;
    }

    /// The estimate, in bits per second; `None` until feedback acknowledged some packets.
    pub fn bps(&self) -> Option<u64> {
        self.estimate.map(|e| e as u64)
    }

    /// Whether the delay signal currently says the path is overused.
    pub fn overusing(&self) -> bool {
        self.detector.usage() == Usage::Over
    }
}
