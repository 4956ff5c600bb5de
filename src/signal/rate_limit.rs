//! Per-connection rate limiting: a token bucket for messages, and a strike meter that turns
//! sustained flooding into a close. Time is an argument (`now`), so the logic is tested without
//! sleeping. This module decides nothing about what happens to a refused message.

use std::time::{Duration, Instant};

/// The verdict on one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Within the limit.
    Allow,
    /// Over the limit: refuse this message (`error rate-limited`).
    Refuse,
    /// Over the limit for too long: close the connection (1008).
    Abuse,
}

/// A message token bucket plus a leaky strike counter over a 10-second window.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    capacity: f64,
    tokens: f64,
    refill_per_sec: f64,
    max_strikes: f64,
    strikes: f64,
    last: Instant,
}

impl RateLimiter {
    /// Window over which `max_strikes` refused messages are tolerated.
    pub const STRIKE_WINDOW: Duration = Duration::from_secs(10);

    /// `rate` messages per second sustained, bursts of `burst`, `max_strikes` refusals per
    /// [`Self::STRIKE_WINDOW`].
    pub fn new(rate: f64, burst: u32, max_strikes: u32, now: Instant) -> Self {
        Self {
            capacity: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            refill_per_sec: rate.max(f64::MIN_POSITIVE),
            max_strikes: f64::from(max_strikes),
            strikes: 0.0,
            last: now,
        }
    }

    /// Judges one message arriving at `now`.
    pub fn check(&mut self, now: Instant) -> RateDecision {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        let strike_decay = self.max_strikes / Self::STRIKE_WINDOW.as_secs_f64();
        self.strikes = (self.strikes - elapsed * strike_decay).max(0.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return RateDecision::Allow;
        }
        self.strikes += 1.0;
        if self.strikes > self.max_strikes {
            RateDecision::Abuse
        } else {
            RateDecision::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10.0, 3, 100, start);
        for _ in 0..3 {
            assert_eq!(limiter.check(start), RateDecision::Allow);
        }
        assert_eq!(limiter.check(start), RateDecision::Refuse);
        // 100 ms at 10/s refills one token.
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.check(later), RateDecision::Allow);
        assert_eq!(limiter.check(later), RateDecision::Refuse);
    }

    #[test]
    fn sustained_flood_becomes_abuse() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1.0, 1, 5, start);
        assert_eq!(limiter.check(start), RateDecision::Allow);
        for _ in 0..5 {
            assert_eq!(limiter.check(start), RateDecision::Refuse);
        }
        assert_eq!(limiter.check(start), RateDecision::Abuse);
    }

    #[test]
    fn strikes_decay_over_the_window() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1.0, 1, 5, start);
        assert_eq!(limiter.check(start), RateDecision::Allow);
        for _ in 0..5 {
            assert_eq!(limiter.check(start), RateDecision::Refuse);
        }
        // After a full window the strikes are forgotten and a token is back.
        let later = start + RateLimiter::STRIKE_WINDOW;
        assert_eq!(limiter.check(later), RateDecision::Allow);
        assert_eq!(limiter.check(later), RateDecision::Refuse);
    }
}
