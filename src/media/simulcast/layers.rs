//! The layers of one simulcast publication (one per rid, ordered low→high as the publisher's
//! `a=simulcast` attribute lists them): each layer's SSRC, its keyframe-request throttle, and
//! what the selector needs to know of it — whether packets still arrive, its bitrate over the
//! last window and the size its last keyframe declared (VP8's header, H264's SPS). Time is an
//! argument.

use super::dynacast::Dynacast;
use super::selector::LayerView;
use super::{h264, vp8};
use crate::media::publication::KeyframeThrottle;
use crate::rtp::dedup::DuplicateFilter;
use std::time::{Duration, Instant};

/// A layer that sent nothing for this long is not chosen for a leg.
pub const LAYER_TIMEOUT: Duration = Duration::from_millis(1500);
/// The window over which a layer's bitrate is measured.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);
/// Each window's weight in a layer's bitrate (a moving average over about four windows): a
/// keyframe (often asked for by a leg switching layers, or by a lossy leg) doubles one window's
/// rate, and a leg whose budget is near its layer's rate must not be moved off it by that.
const WINDOW_WEIGHT: u64 = 4;
/// A layer measured below this (bits/s) is not chosen: a browser that suspends a layer may
/// still send a stray keyframe or padding on it.
pub const MIN_ACTIVE_BITRATE: u64 = 10_000;
/// How long a new layer counts as active before its bitrate is measured.
const GRACE: Duration = Duration::from_secs(1);

/// How a layer's picture size is read from its keyframes, by codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SizeSource {
    /// The VP8 keyframe header.
    Vp8,
    /// The H264 sequence parameter set sent with keyframes.
    H264,
    /// Not read: the size is assumed from the declared layers (`selector::size_of`).
    #[default]
    Unknown,
}

impl SizeSource {
    /// The source for a codec's MIME type (`video/VP8`, `video/H264`).
    pub fn of(mime: &str) -> Self {
        if mime.eq_ignore_ascii_case("video/vp8") {
            Self::Vp8
        } else if mime.eq_ignore_ascii_case("video/h264") {
            Self::H264
        } else {
            Self::Unknown
        }
    }

    /// The size one packet's payload declares, if it declares one.
    pub fn read(self, payload: &[u8]) -> Option<(u16, u16)> {
        match self {
            Self::Vp8 => vp8::keyframe_size(payload),
            Self::H264 => h264::sps_size(payload),
            Self::Unknown => None,
        }
    }
}

/// One rid stream of a publication.
#[derive(Debug, Clone)]
pub struct Layer {
    pub rid: String,
    pub ssrc: u32,
    /// Its position in the publisher's `a=simulcast` list (lower first).
    order: usize,
    pub keyframe: KeyframeThrottle,
    /// Its own duplicate filter (each layer numbers its packets on its own).
    pub duplicates: DuplicateFilter,
    last_packet: Option<Instant>,
    first_packet: Option<Instant>,
    window_start: Option<Instant>,
    window_bytes: u64,
    bitrate: u64,
    size: Option<(u16, u16)>,
}

/// The layers of a publication, low to high.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    list: Vec<Layer>,
    /// When the legs' targets are next re-evaluated.
    pub next_review: Option<Instant>,
    /// The layers paused at the publisher because no leg wants them.
    pub dynacast: Dynacast,
    /// The rids the publisher declared (its `a=simulcast` list, low to high), seen or not.
    declared: Vec<String>,
}

impl Layers {
    /// Adds the stream `rid` (SSRC `ssrc`, at `order` in the simulcast list); returns its
    /// index and whether it is new (then indices of higher layers moved up by one).
    pub fn add(&mut self, rid: &str, ssrc: u32, order: usize) -> (usize, bool) {
        if let Some(i) = self.list.iter().position(|l| l.rid == rid) {
            self.list[i].ssrc = ssrc;
            return (i, false);
        }
        let at = self.list.iter().take_while(|l| l.order <= order).count();
        self.dynacast.layer_inserted(at);
        self.list.insert(
            at,
            Layer {
                rid: rid.to_owned(),
                ssrc,
                order,
                keyframe: KeyframeThrottle::default(),
                duplicates: DuplicateFilter::default(),
                last_packet: None,
                first_packet: None,
                window_start: None,
                window_bytes: 0,
                bitrate: 0,
                size: None,
            },
        );
        (at, true)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Records the rids the publisher declared, low to high (its `a=simulcast` list).
    pub fn set_declared(&mut self, rids: Vec<String>) {
        self.declared = rids;
    }

    /// The declared rids that never sent a packet yet, and that dynacast pauses along with
    /// the `paused` layers (a bit per index): one is paused when the highest layer below it
    /// that did arrive is paused (not the lowest, which always flows). No leg wants more than
    /// that layer, so none wants a higher one; and a browser that stops the paused layer would
    /// otherwise spend the freed bandwidth on the one above it.
    pub fn unseen_paused(&self, paused: u32) -> Vec<String> {
        let mut out = Vec::new();
        for (order, rid) in self.declared.iter().enumerate() {
            if self.list.iter().any(|l| &l.rid == rid) {
                continue;
            }
            let below = self.list.iter().rposition(|l| l.order < order);
            if below.is_some_and(|i| i > 0 && i < 32 && paused & (1 << i) != 0) {
                out.push(rid.clone());
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Layer> {
        self.list.get(i)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Layer> {
        self.list.get_mut(i)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Layer> {
        self.list.iter_mut()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Layer> {
        self.list.iter()
    }

    /// The layer of a packet with SSRC `ssrc`.
    pub fn index_of(&self, ssrc: u32) -> Option<usize> {
        self.list.iter().position(|l| l.ssrc == ssrc)
    }

    /// Records a packet of layer `i` (`payload` read for the size a keyframe declares).
    pub fn on_packet(&mut self, i: usize, payload: &[u8], sizes: SizeSource, now: Instant) {
        let Some(l) = self.list.get_mut(i) else {
            return;
        };
        let gap = l
            .last_packet
            .is_some_and(|t| now.saturating_duration_since(t) >= LAYER_TIMEOUT);
        if gap {
            // Back after a pause (dynacast) or a stop: measure afresh, keeping the last
            // bitrate until the new window has one, and give it the new layer's grace.
            l.window_start = None;
            l.window_bytes = 0;
            l.first_packet = Some(now);
        }
        l.last_packet = Some(now);
        l.first_packet.get_or_insert(now);
        l.window_bytes += payload.len() as u64;
        let start = *l.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let window = l.window_bytes * 8 * 1_000_000 / elapsed.as_micros().max(1) as u64;
            l.bitrate = match l.bitrate {
                0 => window,
                b => (b * (WINDOW_WEIGHT - 1) + window) / WINDOW_WEIGHT,
            };
            l.window_bytes = 0;
            l.window_start = Some(now);
        }
        if let Some(size) = sizes.read(payload) {
            l.size = Some(size);
        }
    }

    /// What the selector sees of each layer at `now`.
    /// A layer paused by dynacast, or resumed and not back yet, counts as active (with the
    /// bitrate it had): a leg that chooses it is what resumes it.
    pub fn views(&self, now: Instant) -> Vec<LayerView> {
        let top = self
            .list
            .iter()
            .map(|l| l.order)
            .chain(self.declared.len().checked_sub(1))
            .max()
            .unwrap_or(0);
        self.list
            .iter()
            .enumerate()
            .map(|(i, l)| LayerView {
                // Paused by dynacast: counts as active (a leg that chooses it resumes it).
                active: (self.dynacast.is_held(i, now) && l.last_packet.is_some())
                    || l.is_active(now),
                bitrate: l.bitrate,
                size: l.size,
                below_top: Some(top.saturating_sub(l.order)),
            })
            .collect()
    }

    /// Whether the legs' targets are due for review at `now` (and schedules the next).
    pub fn review_due(&mut self, now: Instant) -> bool {
        if self.next_review.is_some_and(|t| t > now) {
            return false;
        }
        self.next_review = Some(now + RATE_WINDOW);
        true
    }
}

impl Layer {
    /// Packets arrived lately, at a rate worth forwarding (or it is too new to tell).
    fn is_active(&self, now: Instant) -> bool {
        let (Some(first), Some(last)) = (self.first_packet, self.last_packet) else {
            return false;
        };
        let since = |t: Instant| now.saturating_duration_since(t);
        since(last) < LAYER_TIMEOUT && (self.bitrate >= MIN_ACTIVE_BITRATE || since(first) < GRACE)
    }

    /// Its measured bitrate (bits/s).
    pub fn bitrate(&self) -> u64 {
        self.bitrate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_layer_never_seen_is_paused_with_the_one_below_it() {
        let mut l = Layers::default();
        l.set_declared(vec!["q".into(), "h".into(), "f".into()]);
        l.add("q", 1, 0);
        assert!(l.unseen_paused(0).is_empty());
        assert!(
            l.unseen_paused(0b1).is_empty(),
            "the lowest layer never pauses"
        );
        l.add("h", 2, 1);
        assert!(l.unseen_paused(0).is_empty(), "h flows: f may be wanted");
        assert_eq!(l.unseen_paused(0b10), ["f"]);
        l.add("f", 3, 2);
        assert!(l.unseen_paused(0b10).is_empty(), "f is a known layer now");
    }

    #[test]
    fn views_count_declared_layers_above_each_one() {
        let now = Instant::now();
        let mut l = Layers::default();
        l.add("h", 2, 1);
        l.add("q", 1, 0);
        let below: Vec<_> = l.views(now).iter().map(|v| v.below_top).collect();
        assert_eq!(below, [Some(1), Some(0)], "undeclared: h is the top seen");
        l.set_declared(vec!["q".into(), "h".into(), "f".into()]);
        let below: Vec<_> = l.views(now).iter().map(|v| v.below_top).collect();
        assert_eq!(below, [Some(2), Some(1)], "f, never seen, is above h");
    }

    #[test]
    fn layers_are_ordered_and_measured() {
        let t0 = Instant::now();
        let mut l = Layers::default();
        assert_eq!(l.add("f", 3, 2), (0, true));
        assert_eq!(l.add("q", 1, 0), (0, true));
        assert_eq!(l.add("h", 2, 1), (1, true));
        assert_eq!(l.add("h", 4, 1), (1, false));
        let rids: Vec<&str> = l.iter().map(|x| x.rid.as_str()).collect();
        assert_eq!(rids, ["q", "h", "f"]);
        assert_eq!(l.index_of(3), Some(2));
        for k in 0..=10u32 {
            l.on_packet(
                2,
                &[0u8; 1000],
                SizeSource::Vp8,
                t0 + Duration::from_millis(50 * u64::from(k)),
            );
        }
        assert_eq!(l.get(2).unwrap().bitrate(), 176_000);
        let views = l.views(t0 + Duration::from_millis(600));
        assert!(views[2].active && !views[0].active);
        assert!(
            !l.views(t0 + Duration::from_secs(3))[2].active,
            "a layer that stopped"
        );
        // One window at about twice the rate (a keyframe) moves the bitrate a quarter of the way.
        let t1 = t0 + Duration::from_millis(500);
        for k in 1..=10u32 {
            let at = t1 + Duration::from_millis(50 * u64::from(k));
            l.on_packet(2, &[0u8; 2000], SizeSource::Vp8, at);
        }
        assert_eq!(l.get(2).unwrap().bitrate(), (176_000 * 3 + 320_000) / 4);
        // A layer that trickles (a packet a second) is not active once past its grace.
        for ms in [0, 900, 1800] {
            l.on_packet(
                0,
                &[0u8; 100],
                SizeSource::Unknown,
                t0 + Duration::from_millis(ms),
            );
        }
        assert!(
            !l.views(t0 + Duration::from_millis(1900))[0].active,
            "a trickle"
        );
        l.on_packet(
            1,
            &[0u8; 100],
            SizeSource::Unknown,
            t0 + Duration::from_millis(1800),
        );
        let views = l.views(t0 + Duration::from_millis(1900));
        assert!(views[1].active, "a new layer, in its grace");
    }
}
