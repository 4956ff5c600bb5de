//! Receiving rid-based simulcast and forwarding one layer per subscriber leg: the
//! publication's layers (`layers.rs`, their sizes read from VP8 keyframes and H264 SPS by
//! `h264.rs`), the per-leg layer choice and switch points (`selector.rs`), the VP8 descriptor
//! rewriting that keeps picture ids continuous (`vp8.rs`), the per-leg state that ties them
//! together ([`SimulcastLeg`]) and the pausing of layers nobody receives (`dynacast.rs`). All
//! pure; the fan-out (`forward.rs`) applies it.

pub mod dynacast;
pub mod h264;
pub mod layers;
pub mod selector;
pub mod vp8;

pub use layers::{Layer, Layers, SizeSource};
pub use selector::{choose, LayerSelector, LayerView, Verdict, Want};

use crate::rtp::dedup::seq_newer;
use std::time::{Duration, Instant};

/// The first hold after the budget moves a leg down (no move up meanwhile).
pub const HOLD_MIN: Duration = Duration::from_secs(8);
/// The longest hold, reached when moves up keep failing.
pub const HOLD_MAX: Duration = Duration::from_secs(64);

/// After a move up, how long the budget does not move the leg back down: the new layer's
/// keyframe (a burst, often read as a delay rise) and the acknowledged rate catching up with
/// the higher layer must not undo the move at once. A leg whose path cannot carry the layer
/// goes down after it, and is then held ([`HOLD_MIN`], doubling).
pub const UP_SETTLE: Duration = Duration::from_secs(2);

/// How long a review's shortfall counts: reviews come with the publication's packets (every
/// half second), so an older one belongs to a track that stopped (camera off, publisher gone)
/// and must not keep the leg probing for media nobody sends.
pub const SHORTFALL_FRESH: Duration = Duration::from_secs(2);

/// How much of a budget a higher layer may use before the leg moves up to it (1/1.15).
pub const UP_HEADROOM: f64 = 1.15;

fn with_headroom(budget: u64) -> u64 {
    (budget as f64 / UP_HEADROOM) as u64
}

/// How far (in sequence numbers) the anchor trails the layer before it is moved up.
const ANCHOR_LAG: u16 = 4096;

/// One subscriber leg's simulcast state for one track.
#[derive(Debug, Clone, Default)]
pub struct SimulcastLeg {
    pub selector: LayerSelector,
    pub vp8: vp8::Vp8Rewriter,
    /// What the subscriber asked for (`video-size`).
    pub want: Want,
    /// The bitrate (bits/s) this track may use on the leg, from the leg's bandwidth
    /// estimator; `None`: no limit.
    pub budget: Option<u64>,
    /// How much more (bits/s) the layer the subscriber asked for needs than the layer the
    /// budget allows, as of the last review: the leg's prober climbs while any track is short.
    pub shortfall_bps: u64,
    /// When [`Self::shortfall_bps`] was worked out (the last review).
    shortfall_at: Option<Instant>,
    /// After the budget moved the leg down: no move up before this instant.
    held_until: Option<Instant>,
    /// How long the next hold lasts: [`HOLD_MIN`], doubled (up to [`HOLD_MAX`]) when the
    /// budget moves the leg down again soon after it moved up.
    hold: Duration,
    /// When the leg last moved up.
    last_up: Option<Instant>,
    /// The publisher sequence number the current layer started at: its older packets
    /// (reordered) are not forwarded, they would collide with the previous layer's numbers.
    anchor: Option<u16>,
}

/// What the fan-out does with one packet on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegVerdict {
    Drop,
    /// Forward; re-anchor the leg's numbering first when `switched`.
    Forward {
        switched: bool,
    },
}

impl SimulcastLeg {
    /// A packet (`seq`) of `layer`; `keyframe` tells whether it starts a keyframe.
    pub fn on_packet(&mut self, layer: usize, seq: u16, keyframe: bool) -> LegVerdict {
        match self.selector.on_packet(layer, keyframe) {
            Verdict::Drop => LegVerdict::Drop,
            Verdict::Forward { switched: true } => {
                self.anchor = Some(seq);
                self.vp8.restart();
                LegVerdict::Forward { switched: true }
            }
            Verdict::Forward { switched: false } => {
                let Some(anchor) = self.anchor else {
                    return LegVerdict::Forward { switched: false };
                };
                if seq_newer(anchor, seq) {
                    return LegVerdict::Drop;
                }
                // Keep the anchor within reach of serial comparison as the layer goes on.
                if seq.wrapping_sub(anchor) > ANCHOR_LAG {
                    self.anchor = Some(seq.wrapping_sub(ANCHOR_LAG / 2));
                }
                LegVerdict::Forward { switched: false }
            }
        }
    }

    /// Starts a hold when the budget (not the hint) moves the leg down from its current
    /// layer, longer each time a move up did not last; notes moves up. One fall counts once:
    /// a further step down (or the same one again, while the leg waits for the lower layer's
    /// keyframe) during the hold restarts it at the same length, it does not double it again.
    fn hold_after(&mut self, target: Option<usize>, asked: Option<usize>, now: Instant) {
        let (Some(current), Some(target)) = (self.selector.current(), target) else {
            return;
        };
        if target > current {
            self.last_up = Some(now);
            return;
        }
        let by_budget = target < current && asked.is_some_and(|a| target < a);
        if !by_budget {
            return;
        }
        let soon_after_up = self
            .last_up
            .take()
            .is_some_and(|t| now.saturating_duration_since(t) < HOLD_MAX);
        let held = self.held_until.is_some_and(|t| now < t);
        self.hold = match (soon_after_up, held) {
            (true, _) => (self.hold * 2).clamp(HOLD_MIN, HOLD_MAX),
            (false, true) => self.hold.max(HOLD_MIN),
            (false, false) => HOLD_MIN,
        };
        self.held_until = Some(now + self.hold);
    }

    /// The shortfall of the last review while it is fresh ([`SHORTFALL_FRESH`]), else 0.
    pub fn shortfall(&self, now: Instant) -> u64 {
        match self.shortfall_at {
            Some(at) if now.saturating_duration_since(at) < SHORTFALL_FRESH => self.shortfall_bps,
            _ => 0,
        }
    }

    /// Whether publisher packet `seq` of the current layer was sent since the leg's last
    /// switch (so the current offsets map it: retransmissions).
    pub fn is_since_switch(&self, seq: u16) -> bool {
        self.anchor.is_some_and(|a| a == seq || seq_newer(seq, a))
    }

    /// The stream restarts on the leg (negotiated, muted, unmuted): nothing until a keyframe
    /// of the target, and no shortfall to probe for until the next review.
    pub fn reset(&mut self) {
        self.selector.reset();
        self.anchor = None;
        self.shortfall_bps = 0;
        self.shortfall_at = None;
    }

    /// Re-chooses the target from `layers`; returns the layer whose keyframe the leg now
    /// waits for, if any. Down as soon as the current layer no longer fits the budget; up
    /// only when the higher layer fits with [`UP_HEADROOM`] to spare, so an estimate that
    /// wavers around one layer's bitrate does not flip the leg at every review.
    pub fn review(&mut self, layers: &[LayerView], now: Instant) -> Option<usize> {
        let fits = choose(layers, self.want, self.budget);
        let fits_with_room = choose(layers, self.want, self.budget.map(with_headroom));
        let held = self.held_until.is_some_and(|t| now < t);
        let settling = self
            .last_up
            .is_some_and(|t| now.saturating_duration_since(t) < UP_SETTLE);
        let target = match (self.selector.current(), fits, fits_with_room) {
            (Some(current), Some(fits), Some(_)) if fits >= current && held => Some(current),
            (Some(current), Some(fits), Some(_)) if fits < current && settling => Some(current),
            (Some(current), Some(fits), Some(room)) if fits >= current => {
                Some(room.max(current).min(fits))
            }
            _ => fits,
        };
        self.hold_after(target, choose(layers, self.want, None), now);
        self.selector.set_target(target);
        let ideal = choose(layers, self.want, None);
        let rate =
            |layer: Option<usize>| layer.and_then(|i| layers.get(i)).map_or(0, |l| l.bitrate);
        // Held after the budget moved it down, the leg cannot move up: probing for more would
        // only load the path that just proved too narrow (a capped leg would lose media to
        // every burst).
        let held = self.held_until.is_some_and(|t| now < t);
        self.shortfall_bps = match held {
            true => 0,
            false => rate(ideal).saturating_sub(rate(target)),
        };
        self.shortfall_at = Some(now);
        self.selector.waiting_for()
    }
}

#[cfg(test)]
mod tests;
