//! The layers of one simulcast publication (one per rid, ordered low→high as the publisher's
//! `a=simulcast` attribute lists them): each layer's SSRC, its keyframe-request throttle, and
//! what the selector needs to know of it — whether packets still arrive, its bitrate over the
//! last window and the size its last keyframe declared. Time is an argument.

use super::selector::LayerView;
use super::vp8;
use crate::media::publication::KeyframeThrottle;
use crate::rtp::dedup::DuplicateFilter;
use std::time::{Duration, Instant};

/// A layer that sent nothing for this long is not chosen for a leg.
pub const LAYER_TIMEOUT: Duration = Duration::from_millis(1500);
/// The window over which a layer's bitrate is measured.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);

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
}

impl Layers {
    /// Adds the stream `rid` (SSRC `ssrc`, at `order` in the simulcast list); returns its
    /// index. Indices of higher layers move up by one.
    pub fn add(&mut self, rid: &str, ssrc: u32, order: usize) -> usize {
        if let Some(i) = self.list.iter().position(|l| l.rid == rid) {
            self.list[i].ssrc = ssrc;
            return i;
        }
        let at = self.list.iter().take_while(|l| l.order <= order).count();
        self.list.insert(
            at,
            Layer {
                rid: rid.to_owned(),
                ssrc,
                order,
                keyframe: KeyframeThrottle::default(),
                duplicates: DuplicateFilter::default(),
                last_packet: None,
                window_start: None,
                window_bytes: 0,
                bitrate: 0,
                size: None,
            },
        );
        at
    }

    pub fn len(&self) -> usize {
        self.list.len()
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

    /// Records a packet of layer `i` (`payload` read for a VP8 keyframe's size when `vp8`).
    pub fn on_packet(&mut self, i: usize, payload: &[u8], vp8: bool, now: Instant) {
        let Some(l) = self.list.get_mut(i) else {
            return;
        };
        l.last_packet = Some(now);
        l.window_bytes += payload.len() as u64;
        let start = *l.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            l.bitrate = l.window_bytes * 8 * 1_000_000 / elapsed.as_micros().max(1) as u64;
            l.window_bytes = 0;
            l.window_start = Some(now);
        }
        if vp8 {
            if let Some(size) = vp8::keyframe_size(payload) {
                l.size = Some(size);
            }
        }
    }

    /// What the selector sees of each layer at `now`.
    pub fn views(&self, now: Instant) -> Vec<LayerView> {
        self.list
            .iter()
            .map(|l| LayerView {
                active: l
                    .last_packet
                    .is_some_and(|t| now.saturating_duration_since(t) < LAYER_TIMEOUT),
                bitrate: l.bitrate,
                size: l.size,
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
    /// Its measured bitrate (bits/s).
    pub fn bitrate(&self) -> u64 {
        self.bitrate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_ordered_and_measured() {
        let t0 = Instant::now();
        let mut l = Layers::default();
        assert_eq!(l.add("f", 3, 2), 0);
        assert_eq!(l.add("q", 1, 0), 0);
        assert_eq!(l.add("h", 2, 1), 1);
        let rids: Vec<&str> = l.iter().map(|x| x.rid.as_str()).collect();
        assert_eq!(rids, ["q", "h", "f"]);
        assert_eq!(l.index_of(3), Some(2));
        for k in 0..=10u32 {
            l.on_packet(
                2,
                &[0u8; 1000],
                true,
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
    }
}
