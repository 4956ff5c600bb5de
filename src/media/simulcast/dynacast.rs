//! Dynacast: the simulcast layers of a publication that no subscriber leg receives or wants
//! are paused at the publisher (it stops encoding and sending them), and resumed as soon as a
//! leg wants one again. The lowest layer always flows, so a newcomer starts at once. Pure;
//! time is an argument, and the fan-out tells the publisher what [`Dynacast::review`] returns.

use std::time::{Duration, Instant};

/// How long a layer goes unwanted before it is paused (a leg moving between layers, or a
/// subscriber reconnecting, does not pause and resume it at once).
pub const PAUSE_AFTER: Duration = Duration::from_secs(3);

/// How long a resumed layer counts as coming back (its encoder restarting) before its
/// absence means it stopped.
pub const RESUME_GRACE: Duration = Duration::from_secs(2);

/// One publication's paused layers.
#[derive(Debug, Clone, Default)]
pub struct Dynacast {
    /// Since when each layer has been unwanted (`None`: wanted now).
    unwanted_since: Vec<Option<Instant>>,
    /// When each layer was last resumed.
    resumed_at: Vec<Option<Instant>>,
    /// Paused layers, a bit per index.
    paused: u32,
}

impl Dynacast {
    /// Layers paused now, a bit per index.
    pub fn paused(&self) -> u32 {
        self.paused
    }

    /// Whether layer `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        i < 32 && self.paused & (1 << i) != 0
    }

    /// Whether layer `i` is paused, or was resumed at most [`RESUME_GRACE`] ago: the
    /// selector still counts it as there.
    pub fn is_held(&self, i: usize, now: Instant) -> bool {
        self.is_paused(i)
            || self
                .resumed_at
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|t| now.saturating_duration_since(t) < RESUME_GRACE)
    }

    /// A layer was inserted at index `at` (layers may start in any order): the state of the
    /// layers above it moves up with them.
    pub fn layer_inserted(&mut self, at: usize) {
        if at < self.unwanted_since.len() {
            self.unwanted_since.insert(at, None);
        }
        if at < self.resumed_at.len() {
            self.resumed_at.insert(at, None);
        }
        let low = self.paused & ((1u32 << at.min(31)) - 1);
        self.paused = low | ((self.paused & !low) << 1);
    }

    /// Looks at which of `layers` layers some leg receives or wants (`wanted`, a bit per
    /// index) at `now`: a wanted layer resumes at once, a layer unwanted for [`PAUSE_AFTER`]
    /// is paused. Returns the new set of paused layers when it changed (the publisher must
    /// be told).
    pub fn review(&mut self, layers: usize, wanted: u32, now: Instant) -> Option<u32> {
        let layers = layers.min(32);
        self.unwanted_since.resize(layers, None);
        let mut paused = 0u32;
        for (i, since) in self.unwanted_since.iter_mut().enumerate() {
            if i == 0 || wanted & (1 << i) != 0 {
                *since = None;
                continue;
            }
            let since = *since.get_or_insert(now);
            // An unwanted layer above a paused one (`paused` holds only lower layers yet)
            // pauses with it at once, however recently it started: no leg wants a larger
            // picture than the one nobody wants, and left running it would take the
            // bandwidth the paused one frees (an encoder that starts its top layer late, just
            // as the middle one pauses).
            if paused != 0 || now.saturating_duration_since(since) >= PAUSE_AFTER {
                paused |= 1 << i;
            }
        }
        if paused == self.paused {
            return None;
        }
        self.resumed_at.resize(layers, None);
        for (i, at) in self.resumed_at.iter_mut().enumerate() {
            if self.paused & !paused & (1 << i) != 0 {
                *at = Some(now);
            }
        }
        self.paused = paused;
        Some(paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwanted_layers_pause_after_a_while_and_resume_at_once() {
        let t0 = Instant::now();
        let mut d = Dynacast::default();
        // Everyone on the lowest layer: the others are unwanted from now on.
        assert_eq!(d.review(3, 0b001, t0), None, "not paused at once");
        assert_eq!(d.review(3, 0b001, t0 + Duration::from_secs(2)), None);
        assert_eq!(d.review(3, 0b001, t0 + PAUSE_AFTER), Some(0b110));
        assert!(d.is_paused(1) && d.is_paused(2) && !d.is_paused(0));
        assert_eq!(d.review(3, 0b001, t0 + Duration::from_secs(9)), None);
        // A leg wants the top layer: it resumes at once, the middle one stays paused; the
        // top one counts as there while its encoder restarts.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(d.review(3, 0b101, t1), Some(0b010));
        assert!(d.is_held(2, t1 + Duration::from_secs(1)));
        assert!(!d.is_held(2, t1 + RESUME_GRACE));
        // A wanted layer is never paused, however long.
        assert_eq!(d.review(3, 0b101, t1 + Duration::from_secs(60)), None);
    }

    /// Two layers, nobody on the upper one since `t0`: paused at `t0 + PAUSE_AFTER`.
    fn upper_of_two_paused(t0: Instant) -> Dynacast {
        let mut d = Dynacast::default();
        d.review(2, 0b01, t0);
        assert_eq!(d.review(2, 0b01, t0 + PAUSE_AFTER), Some(0b10));
        d
    }

    #[test]
    fn a_layer_that_starts_above_a_paused_one_pauses_with_it_at_once() {
        let t0 = Instant::now();
        let mut d = upper_of_two_paused(t0);
        // The top layer shows up late, wanted by nobody: paused now, not 3 s from now.
        let t1 = t0 + PAUSE_AFTER + Duration::from_millis(500);
        assert_eq!(d.review(3, 0b001, t1), Some(0b110));
        // Wanted, it resumes alone; the middle one stays paused.
        assert_eq!(d.review(3, 0b101, t1), Some(0b010));
        // A wanted middle layer lets an unwanted top one run its own PAUSE_AFTER.
        let mut e = Dynacast::default();
        assert_eq!(e.review(3, 0b011, t0), None);
        assert_eq!(e.review(3, 0b011, t0 + Duration::from_secs(1)), None);
        assert_eq!(e.review(3, 0b011, t0 + PAUSE_AFTER), Some(0b100));
    }

    #[test]
    fn an_inserted_layer_moves_the_paused_ones_above_it() {
        let t0 = Instant::now();
        let mut d = upper_of_two_paused(t0);
        d.layer_inserted(1);
        assert_eq!(d.paused(), 0b100, "the paused layer is now index 2");
        assert_eq!(d.review(3, 0b011, t0 + PAUSE_AFTER), None);
    }

    #[test]
    fn the_lowest_layer_always_flows_and_a_brief_gap_pauses_nothing() {
        let t0 = Instant::now();
        let mut d = Dynacast::default();
        // Nobody receives anything: all but the lowest pause.
        assert_eq!(d.review(3, 0, t0), None);
        assert_eq!(d.review(3, 0, t0 + PAUSE_AFTER), Some(0b110));
        let mut e = Dynacast::default();
        // The top layer unwanted for a moment only (a leg switching): never paused; the
        // middle one, never wanted, is.
        e.review(3, 0b100, t0);
        e.review(3, 0b001, t0 + Duration::from_secs(1));
        assert_eq!(e.review(3, 0b100, t0 + Duration::from_secs(2)), None);
        assert_eq!(e.review(3, 0b100, t0 + Duration::from_secs(5)), Some(0b010));
        assert!(!e.is_paused(2));
    }
}
