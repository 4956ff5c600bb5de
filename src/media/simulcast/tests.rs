//! A leg moved between three simulcast layers with a fake clock: what it receives is one
//! continuous stream (sequence numbers, timestamps, picture ids, TL0PICIDX), and it changes
//! layer only at the target layer's keyframes.

use super::vp8::{keyframe_size, parse};
use super::*;
use crate::media::rewrite::SequenceRewriter;
use std::time::{Duration, Instant};

/// One publisher layer: its own numbering, a keyframe every `gop` frames.
struct Source {
    seq: u16,
    ts: u32,
    pid: u16,
    tl0: u8,
    frame: u32,
    gop: u32,
}

impl Source {
    fn new(seq: u16, ts: u32, pid: u16, gop: u32) -> Self {
        Self {
            seq,
            ts,
            pid,
            tl0: pid as u8,
            frame: 0,
            gop,
        }
    }

    /// The next frame: (seq, ts, payload) of its two packets.
    fn frame(&mut self) -> Vec<(u16, u32, Vec<u8>)> {
        let key = self.frame.is_multiple_of(self.gop);
        self.frame += 1;
        let (pid, tl0) = (self.pid, self.tl0);
        let mut first = vec![0x90, 0xc0, 0x80 | (pid >> 8) as u8, pid as u8, tl0];
        first.extend_from_slice(&[u8::from(!key), 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0]);
        let second = vec![0x80, 0xc0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, 7, 7];
        let out = vec![
            (self.seq, self.ts, first),
            (self.seq.wrapping_add(1), self.ts, second),
        ];
        self.seq = self.seq.wrapping_add(2);
        self.ts = self.ts.wrapping_add(3000);
        self.pid = self.pid.wrapping_add(1) & 0x7fff;
        self.tl0 = self.tl0.wrapping_add(1);
        out
    }
}

/// What the leg received: (layer, seq, ts, picture id, tl0, opens a keyframe).
type Received = Vec<(usize, u16, u32, u16, u8, bool)>;

struct Run {
    leg: SimulcastLeg,
    rewriter: SequenceRewriter,
    now: Instant,
    got: Received,
    switches: usize,
}

impl Run {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            leg: SimulcastLeg::default(),
            rewriter: SequenceRewriter::new(90_000, 65_500, 4_294_000_000, now),
            now,
            got: Vec::new(),
            switches: 0,
        }
    }

    /// `frames` frames of every layer, 33 ms apart; layers in `stopped` send nothing.
    fn play(&mut self, sources: &mut [Source], frames: usize, stopped: &[usize]) {
        for _ in 0..frames {
            self.now += Duration::from_millis(33);
            for (layer, src) in sources.iter_mut().enumerate() {
                if stopped.contains(&layer) {
                    continue;
                }
                for (seq, ts, payload) in src.frame() {
                    self.packet(layer, seq, ts, &payload);
                }
            }
        }
    }

    fn packet(&mut self, layer: usize, seq: u16, ts: u32, payload: &[u8]) {
        let key = crate::media::keyframe::starts_keyframe("video/VP8", payload);
        let LegVerdict::Forward { switched } = self.leg.on_packet(layer, seq, key) else {
            return;
        };
        if switched {
            self.rewriter.pause();
            self.switches += 1;
        }
        let (s, t) = self.rewriter.rewrite(seq, ts, self.now);
        let d = parse(payload).unwrap();
        let w = self.leg.vp8.rewrite(&d, payload);
        let o = parse(w.as_slice()).unwrap();
        let (pid, tl0) = (o.picture_id().unwrap(), o.tl0_pic_idx().unwrap());
        self.got
            .push((layer, s, t, pid, tl0, keyframe_size(payload).is_some()));
    }

    fn target(&mut self, layers: usize, want: Want) {
        self.leg.want = want;
        let views = vec![
            LayerView {
                active: true,
                bitrate: 0,
                size: None,
                below_top: None
            };
            layers
        ];
        self.leg.review(&views, self.now);
    }
}

fn sources() -> Vec<Source> {
    vec![
        Source::new(100, 1_000, 32_000, 10),
        Source::new(40_000, 7_000_000, 5, 15),
        Source::new(65_000, 4_000_000_000, 32_760, 20),
    ]
}

/// Asserts the leg's stream is continuous and each layer starts with a keyframe.
fn assert_continuous(got: &Received) {
    for pair in got.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(b.1, a.1.wrapping_add(1), "sequence gap: {a:?} -> {b:?}");
        let dpid = b.3.wrapping_sub(a.3) & 0x7fff;
        assert!(dpid <= 1, "picture id jump: {a:?} -> {b:?}");
        assert_eq!(
            b.4.wrapping_sub(a.4),
            dpid as u8,
            "TL0PICIDX: {a:?} -> {b:?}"
        );
        let dts = b.2.wrapping_sub(a.2);
        assert!(dts < 90_000, "timestamp jump: {a:?} -> {b:?}");
        assert_eq!(
            dts == 0,
            dpid == 0,
            "same picture, same timestamp: {a:?} -> {b:?}"
        );
        if b.0 != a.0 {
            assert!(b.5, "layer {} entered on a delta frame", b.0);
        }
    }
}

#[test]
fn a_leg_moves_between_layers_only_at_keyframes_and_sees_one_stream() {
    let mut sources = sources();
    let mut run = Run::new();
    run.target(3, Want::Top);
    run.play(&mut sources, 25, &[]);
    assert!(run.got[0].5, "the first packet opens a keyframe");
    assert!(run.got.iter().all(|g| g.0 == 2));
    run.target(3, Want::Layer(0));
    run.play(&mut sources, 25, &[]);
    run.target(
        3,
        Want::Size {
            width: 600,
            height: 300,
        },
    );
    run.play(&mut sources, 25, &[]);
    assert_eq!(run.switches, 3);
    let layers: Vec<usize> = run.got.iter().map(|g| g.0).collect();
    assert!(layers.contains(&0) && layers.contains(&1));
    assert_continuous(&run.got);
    // Picture ids wrapped (the top layer started at 32760) and so did sequence numbers.
    assert!(run.got.iter().any(|g| g.3 < 100) && run.got.iter().any(|g| g.1 < 100));
}

#[test]
fn a_stopped_layer_is_left_at_the_next_keyframe_of_another() {
    let mut sources = sources();
    let mut run = Run::new();
    run.target(3, Want::Top);
    run.play(&mut sources, 21, &[]);
    // The top layer stops: the review sees it inactive and picks layer 1.
    let mut views = vec![
        LayerView {
            active: true,
            bitrate: 0,
            size: None,
            below_top: None
        };
        3
    ];
    views[2].active = false;
    assert_eq!(run.leg.review(&views, run.now), Some(1));
    run.play(&mut sources, 20, &[2]);
    assert_eq!(run.got.last().unwrap().0, 1);
    assert_continuous(&run.got);
}

#[test]
fn a_long_run_on_one_layer_is_never_dropped() {
    let mut leg = SimulcastLeg::default();
    leg.review(
        &[LayerView {
            active: true,
            bitrate: 0,
            size: None,
            below_top: None,
        }],
        Instant::now(),
    );
    assert_eq!(
        leg.on_packet(0, 7, true),
        LegVerdict::Forward { switched: true }
    );
    for n in 1..100_000u32 {
        let seq = 7u16.wrapping_add(n as u16);
        assert_eq!(
            leg.on_packet(0, seq, false),
            LegVerdict::Forward { switched: false },
            "{n}"
        );
    }
    assert!(leg.is_since_switch(7u16.wrapping_add(99_990u32 as u16)));
}

/// Three active layers at 150k, 500k and 1.5M bits/s.
fn three_layers() -> Vec<LayerView> {
    [150_000, 500_000, 1_500_000]
        .into_iter()
        .map(|bitrate| LayerView {
            active: true,
            bitrate,
            size: None,
            below_top: None,
        })
        .collect()
}

/// The leg as if the keyframe of its target arrived: it is on the target now.
fn settle(leg: &mut SimulcastLeg) {
    if let Some(layer) = leg.selector.waiting_for() {
        leg.on_packet(layer, 1, true);
    }
}

#[test]
fn the_budget_moves_a_leg_down_at_once_and_up_only_with_headroom_after_a_hold() {
    let layers = three_layers();
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let mut leg = SimulcastLeg {
        budget: Some(2_000_000),
        ..SimulcastLeg::default()
    };
    leg.review(&layers, at(0));
    settle(&mut leg);
    assert_eq!(leg.selector.current(), Some(2));
    assert_eq!(leg.shortfall_bps, 0, "on the layer it asked for");
    // The estimate falls below the top layer: down to the middle one straight away.
    leg.budget = Some(1_400_000);
    assert_eq!(leg.review(&layers, at(1)), Some(1));
    settle(&mut leg);
    assert_eq!(leg.selector.current(), Some(1));
    assert_eq!(leg.shortfall_bps, 0, "held: nothing to probe for");
    // Room for the top layer again, but within the hold: it stays.
    leg.budget = Some(2_000_000);
    assert_eq!(leg.review(&layers, at(5)), None);
    assert_eq!(leg.selector.target(), Some(1));
    assert_eq!(leg.shortfall_bps, 0, "still held");
    // After the hold, just enough for the top layer without headroom: it stays.
    leg.budget = Some(1_550_000);
    assert_eq!(leg.review(&layers, at(10)), None);
    assert_eq!(leg.selector.target(), Some(1));
    assert_eq!(
        leg.shortfall_bps, 1_000_000,
        "the hold over: the top layer is 1M more"
    );
    // With 15 % to spare: up.
    leg.budget = Some(1_750_000);
    assert_eq!(leg.review(&layers, at(11)), Some(2));
    settle(&mut leg);
    assert_eq!(leg.selector.current(), Some(2));
    // A budget that wavers just under the next layer up does not move it back down while
    // the current layer fits.
    leg.budget = Some(1_500_000);
    assert_eq!(leg.review(&layers, at(12)), None);
    assert_eq!(leg.selector.target(), Some(2));
    // Down again soon after moving up: the next hold is twice as long.
    leg.budget = Some(1_000_000);
    assert_eq!(leg.review(&layers, at(13)), Some(1));
    settle(&mut leg);
    leg.budget = Some(2_000_000);
    assert_eq!(leg.review(&layers, at(13 + 15)), None, "held for 16 s");
    assert_eq!(leg.review(&layers, at(13 + 16)), Some(2));
}

#[test]
fn a_fall_in_steps_after_a_move_up_doubles_the_hold_once() {
    let layers = three_layers();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut leg = SimulcastLeg {
        budget: Some(1_000_000),
        ..SimulcastLeg::default()
    };
    leg.review(&layers, at(0));
    settle(&mut leg);
    // Up to the top layer after the first hold-free review, then the link is capped.
    leg.budget = Some(2_000_000);
    assert_eq!(leg.review(&layers, at(1_000)), Some(2));
    settle(&mut leg);
    // (Once the move up has settled: the budget does not move a leg down before then.)
    leg.budget = Some(1_000_000);
    assert_eq!(leg.review(&layers, at(1_000) + UP_SETTLE), Some(1));
    // The next review comes before the middle layer's keyframe: still the same fall.
    assert_eq!(leg.review(&layers, at(3_500)), Some(1));
    settle(&mut leg);
    // And the estimate goes on falling: one more step down.
    leg.budget = Some(300_000);
    assert_eq!(leg.review(&layers, at(5_000)), Some(0));
    settle(&mut leg);
    // The cap is lifted: the hold is the first fall's (8 s) from the last step, not doubled
    // at each review and step of the same fall (32 s).
    leg.budget = Some(2_000_000);
    assert_eq!(leg.review(&layers, at(5_000 + 7_500)), None, "held");
    assert_eq!(leg.review(&layers, at(5_000 + 8_500)), Some(2));
}

#[test]
fn no_budget_means_the_asked_for_layer_and_no_shortfall() {
    let layers = three_layers();
    let mut leg = SimulcastLeg {
        want: Want::Layer(1),
        ..SimulcastLeg::default()
    };
    assert_eq!(leg.review(&layers, Instant::now()), Some(1));
    assert_eq!(leg.shortfall_bps, 0);
    leg.budget = Some(100_000);
    leg.review(&layers, Instant::now());
    assert_eq!(
        leg.selector.target(),
        Some(0),
        "the lowest when nothing fits"
    );
    assert_eq!(
        leg.shortfall_bps, 350_000,
        "the asked-for layer 1 is 350k more"
    );
}

#[test]
fn a_leg_that_just_moved_up_is_not_moved_down_by_the_budget_before_it_settles() {
    let layers = three_layers();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut leg = SimulcastLeg {
        budget: Some(400_000),
        ..SimulcastLeg::default()
    };
    leg.review(&layers, at(0));
    settle(&mut leg);
    assert_eq!(leg.selector.current(), Some(0));
    leg.budget = Some(700_000);
    assert_eq!(leg.review(&layers, at(500)), Some(1), "up with headroom");
    settle(&mut leg);
    // Its keyframe reads as a delay rise: the budget dips under the new layer at once.
    leg.budget = Some(450_000);
    assert_eq!(leg.review(&layers, at(1000)), None);
    assert_eq!(leg.selector.target(), Some(1), "kept while it settles");
    // Still under it once settled: down.
    assert_eq!(leg.review(&layers, at(500) + UP_SETTLE), Some(0));
}

#[test]
fn a_shortfall_stops_counting_once_the_track_stops_being_reviewed() {
    let layers = three_layers();
    let t0 = Instant::now();
    let mut leg = SimulcastLeg {
        budget: Some(300_000),
        ..SimulcastLeg::default()
    };
    leg.review(&layers, t0);
    assert!(
        leg.shortfall_bps > 0,
        "held below the top layer by the budget"
    );
    assert_eq!(
        leg.shortfall(t0 + Duration::from_secs(1)),
        leg.shortfall_bps
    );
    // No review since (the camera went off: no packets, no reviews): nothing to probe for.
    assert_eq!(leg.shortfall(t0 + SHORTFALL_FRESH), 0);
}

#[test]
fn a_leg_that_restarts_has_no_shortfall_to_probe_for() {
    let layers = three_layers();
    let mut leg = SimulcastLeg {
        budget: Some(100_000),
        ..SimulcastLeg::default()
    };
    let now = Instant::now();
    leg.review(&layers, now);
    assert!(leg.shortfall(now) > 0, "short of the top layer");
    // The track is muted (or unmuted): nothing flows until the next review says what is short.
    leg.reset();
    assert_eq!(leg.shortfall(now), 0);
}
