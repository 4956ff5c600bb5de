//! When a leg probes, and what a probe showed. A leg whose estimate is below what it could take
//! (the rate the layer selector wants for it, [`super::LegBwe::set_wanted_bps`]) sends padding
//! in a short burst so the estimate can climb: at most one burst per [`PROBE_INTERVAL`]
//! (doubling after each burst that proved nothing, up to [`MAX_INTERVAL`]), lasting
//! [`BURST`], aiming at twice the estimate (never above the wanted rate nor the configured
//! cap). Nothing is probed when the leg already gets all it wants, while the path is overused,
//! or when nobody said what the leg wants. The burst's result is the rate at which its packets
//! arrived (their bytes over their arrival span, no more than they were sent at). Plain state
//! and arithmetic; time is an argument. The padding itself is written by `fast/padding.rs`.

use rtc::interceptor::PacketReport;
use std::time::{Duration, Instant};

/// Shortest time between the starts of two bursts.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(3);
/// Longest, after bursts that proved nothing. Short, because nothing but a burst tells a leg
/// sent less than it wants that its path widened (its media keeps flowing clean below the old
/// cap either way): the time a leg takes to climb back once a cap is lifted is up to this plus
/// a burst and its feedback. At 24 s the climb of a capped browser took up to 22.6 s; libwebrtc
/// probes an application-limited path every 5 s without any backoff (ALR probing). A burst
/// under a lasting cap costs at most [`BURST`] per interval of padding at up to the estimate.
pub const MAX_INTERVAL: Duration = Duration::from_secs(6);
/// How long a burst lasts.
pub const BURST: Duration = Duration::from_millis(500);
/// How long after a burst its feedback is waited for.
const RESULT_WAIT: Duration = Duration::from_millis(1500);
/// A burst is worth it only when the leg wants this much more than the estimate (fraction).
const ROOM: f64 = 0.1;
/// A burst aims this far above the wanted rate (never above twice the estimate), so that what
/// it proves leaves the layer selector its headroom (`simulcast::UP_HEADROOM`, 1.15) after the
/// share it keeps for overhead (`OVERHEAD_SHARE`, 0.1): 1.15 / 0.9 = 1.28 is the least that
/// moves a leg up on a proof of exactly the aim, and a burst often gets through a little short
/// of it, hence 1.4 (at 1.25 a leg one layer short of what it wants probed for good in vain).
pub const ABOVE_WANTED: f64 = 1.4;
/// Padding below this rate is not worth a burst.
const MIN_PADDING_BPS: u64 = 30_000;
/// Fewest arrived packets that make a measurement.
const MIN_PACKETS: u32 = 10;

/// A burst under way or waiting for its feedback.
#[derive(Debug, Clone, Copy)]
struct Burst {
    start: Instant,
    end: Instant,
    /// The total rate aimed at (media plus padding), and the padding's share.
    target_bps: u64,
    padding_bps: u64,
    /// Padding bytes owed but not yet sent, and when that was last worked out.
    owed: f64,
    last: Instant,
    /// What feedback says of the packets sent during the burst.
    sent_bytes: u64,
    arrived_bytes: u64,
    arrived: u32,
    first_arrival: Option<Duration>,
    last_arrival: Option<Duration>,
}

/// What a finished burst showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The path carried this many bits per second.
    Carried(f64),
    /// Too little feedback to say, or the rate aimed at did not get through.
    Nothing,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Prober {
    burst: Option<Burst>,
    next_allowed: Option<Instant>,
    interval: Duration,
}

impl Default for Prober {
    fn default() -> Self {
        Self {
            burst: None,
            next_allowed: None,
            interval: PROBE_INTERVAL,
        }
    }
}

impl Prober {
    /// Starts a burst if one is due; true if it did. `estimate` and `wanted` are the leg's
    /// estimate and the rate it could take, `sent` what it is sent now (all bits per second),
    /// `cap` the most a burst may aim at.
    pub fn maybe_start(
        &mut self,
        now: Instant,
        estimate: Option<u64>,
        wanted: Option<u64>,
        sent: u64,
        cap: u64,
        overusing: bool,
    ) -> bool {
        let (Some(estimate), Some(wanted)) = (estimate, wanted) else {
            return false;
        };
        let due = self.next_allowed.is_none_or(|t| now >= t);
        if self.burst.is_some() || !due || overusing || cap == 0 {
            return false;
        }
        if (wanted as f64) <= estimate as f64 * (1.0 + ROOM) {
            return false;
        }
        let above = (wanted as f64 * ABOVE_WANTED) as u64;
        let target = above.min(estimate.saturating_mul(2)).min(cap);
        let padding_bps = target.saturating_sub(sent);
        if padding_bps < MIN_PADDING_BPS {
            return false;
        }
        self.next_allowed = Some(now + self.interval);
        self.burst = Some(Burst {
            start: now,
            end: now + BURST,
            target_bps: target,
            padding_bps,
            owed: 0.0,
            last: now,
            sent_bytes: 0,
            arrived_bytes: 0,
            arrived: 0,
            first_arrival: None,
            last_arrival: None,
        });
        true
    }

    /// Whether a burst is sending now.
    pub fn sending(&self, now: Instant) -> bool {
        self.burst.is_some_and(|b| now < b.end)
    }

    /// Padding bytes due at `now` (whole packets of `packet_bytes` are taken; the rest stays
    /// owed).
    pub fn padding_due(&mut self, now: Instant, packet_bytes: usize) -> usize {
        let Some(burst) = self.burst.as_mut().filter(|b| now < b.end) else {
            return 0;
        };
        let elapsed = now.saturating_duration_since(burst.last).as_secs_f64();
        burst.last = now;
        burst.owed += burst.padding_bps as f64 / 8.0 * elapsed;
        let packets = (burst.owed / packet_bytes as f64) as usize;
        burst.owed -= (packets * packet_bytes) as f64;
        packets
    }

    /// Takes the reports of packets sent during the burst into its measurement.
    pub fn on_reports(&mut self, reports: &[PacketReport]) {
        let Some(burst) = self.burst.as_mut() else {
            return;
        };
        for r in reports
            .iter()
            .filter(|r| (burst.start..burst.end).contains(&r.departure))
        {
            burst.sent_bytes += r.size as u64;
            if let (true, Some(at)) = (r.arrived, r.arrival) {
                burst.arrived += 1;
                burst.arrived_bytes += r.size as u64;
                burst.first_arrival = Some(burst.first_arrival.map_or(at, |f| f.min(at)));
                burst.last_arrival = Some(burst.last_arrival.map_or(at, |l| l.max(at)));
            }
        }
    }

    /// The finished burst's outcome, once its feedback had time to come; the interval to the
    /// next burst resets after a success and doubles after a failure.
    pub fn finish(&mut self, now: Instant) -> Option<Outcome> {
        let burst = self.burst.filter(|b| now >= b.end + RESULT_WAIT)?;
        self.burst = None;
        let outcome = measure(&burst);
        self.interval = match outcome {
            Outcome::Carried(_) => PROBE_INTERVAL,
            Outcome::Nothing => (self.interval * 2).min(MAX_INTERVAL),
        };
        Some(outcome)
    }
}

fn measure(b: &Burst) -> Outcome {
    let (Some(first), Some(last)) = (b.first_arrival, b.last_arrival) else {
        return Outcome::Nothing;
    };
    let span = last.saturating_sub(first).max(Duration::from_millis(1));
    if b.arrived < MIN_PACKETS {
        return Outcome::Nothing;
    }
    let received = b.arrived_bytes as f64 * 8.0 / span.as_secs_f64();
    let sent = b.sent_bytes as f64 * 8.0 / BURST.as_secs_f64();
    let carried = received.min(sent);
    // A burst that got through at well under its aim proved nothing new.
    if carried < b.target_bps as f64 * 0.5 {
        return Outcome::Nothing;
    }
    Outcome::Carried(carried)
}
