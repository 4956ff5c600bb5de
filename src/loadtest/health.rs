//! The synthetic participant's watchdog: decides when a media leg is beyond saving and the
//! participant must reconnect (a fresh WebSocket, join and PeerConnection). A leg is unhealthy
//! while a publisher is not connected or a subscriber receives fewer tracks than were announced
//! to it; after [`STUCK_AFTER`] of that with no change in what was announced — or at once when
//! the connection failed — it asks for a reconnect, once per leg. Pure logic over instants: no
//! I/O, no clock of its own.

use std::time::{Duration, Instant};

/// How long a leg may stay unhealthy before the participant reconnects: longer than a
/// handshake that needs a few DTLS retransmissions (1 s apart) on a lossy link, shorter than
/// the stack's own give-up (8 transmissions of one flight).
pub const STUCK_AFTER: Duration = Duration::from_secs(7);

/// What the watchdog sees of a leg in one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegView {
    pub publisher: bool,
    pub connected: bool,
    /// The connection reached `failed` (ICE or DTLS gave up).
    pub failed: bool,
    pub tracks_announced: usize,
    pub tracks_receiving: usize,
    /// Counts every track announcement and withdrawal: a change restarts the clock (a
    /// publisher that just reconnected is given its full time before its subscribers give up).
    pub announcements: u64,
}

impl LegView {
    fn healthy(&self) -> bool {
        (!self.publisher || self.connected) && self.tracks_receiving >= self.tracks_announced
    }
}

/// Why a leg is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The connection state went to `failed`.
    Failed,
    /// Unhealthy for [`STUCK_AFTER`].
    Stuck,
}

impl GiveUp {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::Failed => "failed",
            GiveUp::Stuck => "stuck",
        }
    }
}

/// The watchdog state of one leg.
#[derive(Debug, Default)]
pub struct Watchdog {
    unhealthy_since: Option<Instant>,
    announcements: u64,
    gave_up: bool,
}

impl Watchdog {
    /// Looks at the leg; `Some` exactly once, when it is time to reconnect.
    pub fn check(&mut self, leg: LegView, now: Instant) -> Option<GiveUp> {
        if self.gave_up {
            return None;
        }
        if leg.announcements != self.announcements {
            self.announcements = leg.announcements;
            self.unhealthy_since = None;
        }
        let verdict = if leg.failed {
            Some(GiveUp::Failed)
        } else if leg.healthy() {
            self.unhealthy_since = None;
            None
        } else {
            let since = *self.unhealthy_since.get_or_insert(now);
            (now.saturating_duration_since(since) >= STUCK_AFTER).then_some(GiveUp::Stuck)
        };
        self.gave_up = verdict.is_some();
        verdict
    }

    /// When the watchdog must look again without new input.
    pub fn next_check(&self) -> Option<Instant> {
        if self.gave_up {
            return None;
        }
        self.unhealthy_since.map(|t| t + STUCK_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(publisher: bool, connected: bool, announced: usize, receiving: usize) -> LegView {
        LegView {
            publisher,
            connected,
            failed: false,
            tracks_announced: announced,
            tracks_receiving: receiving,
            announcements: announced as u64,
        }
    }

    #[test]
    fn a_publisher_not_connected_in_time_is_stuck_once() {
        let t0 = Instant::now();
        let mut w = Watchdog::default();
        assert_eq!(w.check(leg(true, false, 0, 0), t0), None);
        assert_eq!(w.next_check(), Some(t0 + STUCK_AFTER));
        assert_eq!(w.check(leg(true, false, 0, 0), t0 + STUCK_AFTER / 2), None);
        assert_eq!(
            w.check(leg(true, false, 0, 0), t0 + STUCK_AFTER),
            Some(GiveUp::Stuck)
        );
        assert_eq!(w.check(leg(true, false, 0, 0), t0 + STUCK_AFTER * 3), None);
        assert_eq!(w.next_check(), None);
    }

    #[test]
    fn recovering_in_time_resets_the_clock() {
        let t0 = Instant::now();
        let mut w = Watchdog::default();
        assert_eq!(w.check(leg(false, true, 2, 1), t0), None);
        assert_eq!(w.check(leg(false, true, 2, 2), t0 + STUCK_AFTER / 2), None);
        assert_eq!(w.next_check(), None);
        // Unhealthy again later: a new full period before giving up.
        let t1 = t0 + STUCK_AFTER;
        assert_eq!(w.check(leg(false, true, 3, 2), t1), None);
        assert_eq!(w.check(leg(false, true, 3, 2), t1 + STUCK_AFTER / 2), None);
        assert_eq!(
            w.check(leg(false, true, 3, 2), t1 + STUCK_AFTER),
            Some(GiveUp::Stuck)
        );
    }

    #[test]
    fn a_new_announcement_restarts_the_clock() {
        let t0 = Instant::now();
        let mut w = Watchdog::default();
        let waiting = leg(false, true, 2, 0);
        assert_eq!(w.check(waiting, t0), None);
        // The publisher reconnected: its tracks were withdrawn and announced again.
        let again = LegView {
            announcements: 4,
            ..waiting
        };
        assert_eq!(w.check(again, t0 + STUCK_AFTER / 2), None);
        assert_eq!(w.check(again, t0 + STUCK_AFTER), None);
        assert_eq!(
            w.check(again, t0 + STUCK_AFTER / 2 + STUCK_AFTER),
            Some(GiveUp::Stuck)
        );
    }

    #[test]
    fn an_idle_subscriber_is_healthy_and_failure_is_immediate() {
        let t0 = Instant::now();
        let mut w = Watchdog::default();
        // Nothing announced yet: nothing to wait for.
        assert_eq!(w.check(leg(false, false, 0, 0), t0), None);
        assert_eq!(w.check(leg(false, false, 0, 0), t0 + STUCK_AFTER * 2), None);
        let mut failed = leg(false, true, 1, 1);
        failed.failed = true;
        assert_eq!(w.check(failed, t0 + STUCK_AFTER * 2), Some(GiveUp::Failed));
    }
}
