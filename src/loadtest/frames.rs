//! What one synthetic subscriber saw of one video track, as a viewer would: frames completed
//! (a packet with the marker bit and an RTP timestamp new to the track — the decoded-frame
//! proxy), the simulcast layer it is on and when it switched, freezes (gaps without a new
//! frame), and a per-second timeline of frames, bytes and layer. Packets that carry no probe
//! payload (the server's padding when it probes the leg) are counted apart, never as media.
//! Pure data; times are unix microseconds handed in by the caller. Every list is bounded.

use serde::Serialize;
use std::collections::VecDeque;

/// Gaps between frames at least this long are listed as freezes.
pub const FREEZE_US: u64 = 300_000;
/// Most switches and freezes kept per track (the counts go on).
const MAX_EVENTS: usize = 256;
/// Seconds of timeline kept per track (the oldest go first).
const MAX_SECONDS: usize = 900;

/// The track moved to `layer` at `at_ms` (unix milliseconds).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Switch {
    pub at_ms: u64,
    pub layer: usize,
}

/// No new frame for `ms` milliseconds from `start_ms` (unix milliseconds).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Freeze {
    pub start_ms: u64,
    pub ms: u64,
}

/// One second of the track (unix second `t`): frames completed, payload bytes, the layer at
/// its end.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Second {
    pub t: u64,
    pub frames: u32,
    pub bytes: u64,
    pub layer: Option<usize>,
}

/// The viewer's side of one received video track.
#[derive(Debug, Clone, Default)]
pub struct FrameWatch {
    last_ts: Option<u32>,
    last_frame_us: Option<u64>,
    pub frames: u64,
    pub layer: Option<usize>,
    /// Layer changes after the first layer.
    pub switch_count: u64,
    pub switches: Vec<Switch>,
    pub longest_gap_us: u64,
    pub freezes: Vec<Freeze>,
    pub seconds: VecDeque<Second>,
}

impl FrameWatch {
    /// A media packet of `layer` (`None`: not simulcast) with `marker` and RTP timestamp
    /// `ts`, `size` payload bytes, arrived at `now_us`.
    pub fn on_packet(
        &mut self,
        layer: Option<usize>,
        marker: bool,
        ts: u32,
        size: usize,
        now_us: u64,
    ) {
        if layer.is_some() && layer != self.layer {
            if self.layer.is_some() {
                self.switch_count += 1;
            }
            self.layer = layer;
            if let Some(layer) = layer.filter(|_| self.switches.len() < MAX_EVENTS) {
                let at_ms = now_us / 1000;
                self.switches.push(Switch { at_ms, layer });
            }
        }
        let layer = self.layer;
        let second = self.second(now_us);
        second.bytes += size as u64;
        second.layer = layer;
        if !marker || self.last_ts == Some(ts) {
            return;
        }
        self.last_ts = Some(ts);
        self.frames += 1;
        self.second(now_us).frames += 1;
        if let Some(last) = self.last_frame_us.replace(now_us) {
            let gap = now_us.saturating_sub(last);
            self.longest_gap_us = self.longest_gap_us.max(gap);
            if gap >= FREEZE_US && self.freezes.len() < MAX_EVENTS {
                let (start_ms, ms) = (last / 1000, gap / 1000);
                self.freezes.push(Freeze { start_ms, ms });
            }
        }
    }

    /// The timeline entry of the second `now_us` falls in.
    fn second(&mut self, now_us: u64) -> &mut Second {
        let t = now_us / 1_000_000;
        if self.seconds.back().is_none_or(|s| s.t != t) {
            if self.seconds.len() >= MAX_SECONDS {
                self.seconds.pop_front();
            }
            let layer = self.layer;
            self.seconds.push_back(Second {
                t,
                frames: 0,
                bytes: 0,
                layer,
            });
        }
        self.seconds.back_mut().expect("just pushed")
    }

    /// Frames completed in unix seconds `from..to`.
    pub fn frames_between(&self, from: u64, to: u64) -> u64 {
        let inside = self.seconds.iter().filter(|s| (from..to).contains(&s.t));
        inside.map(|s| u64::from(s.frames)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_switches_and_freezes_are_counted() {
        let mut w = FrameWatch::default();
        let s = 1_000_000u64;
        // 10 frames/s on layer 2, a repeated timestamp (one frame), a packet without marker.
        for i in 0..10u64 {
            w.on_packet(Some(2), true, i as u32 * 9000, 1000, 100 * s + i * 100_000);
        }
        w.on_packet(Some(2), true, 9 * 9000, 1000, 100 * s + 950_000);
        w.on_packet(Some(2), false, 99, 1000, 100 * s + 960_000);
        assert_eq!(w.frames, 10);
        // A 700 ms freeze, then layer 0.
        w.on_packet(Some(0), true, 500_000, 300, 101 * s + 600_000);
        w.on_packet(Some(0), true, 509_000, 300, 101 * s + 700_000);
        assert_eq!((w.frames, w.switch_count, w.layer), (12, 1, Some(0)));
        assert_eq!(w.longest_gap_us, 700_000);
        let freeze = Freeze {
            start_ms: 100_900,
            ms: 700,
        };
        assert_eq!(w.freezes, vec![freeze]);
        assert_eq!(w.switches.len(), 2);
        assert_eq!(w.switches[1].layer, 0);
        assert_eq!(w.frames_between(100, 101), 10);
        assert_eq!(w.frames_between(101, 102), 2);
        assert_eq!(w.seconds[0].bytes, 12_000);
        assert_eq!(w.seconds[1].layer, Some(0));
    }
}
