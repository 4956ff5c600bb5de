//! The estimator and the prober against a simulated path with a fake clock: a bottleneck of
//! some capacity with an unbounded queue (sending above it makes the delay grow), optional
//! loss, feedback every 100 ms, the once-a-second review and 20 ms padding ticks of the shard.

use super::*;
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

const PACKET: usize = 1200;
const STEP: Duration = Duration::from_millis(20);

/// A path and the leg that sends over it.
struct Sim {
    bwe: LegBwe,
    t0: Instant,
    /// Time since `t0`.
    at: Duration,
    capacity_bps: f64,
    /// Every n-th packet is lost.
    lose_every: Option<u64>,
    /// When the bottleneck is next free (receiver clock = sender clock + 20 ms).
    free_at: Duration,
    seq: u16,
    count: u64,
    /// Media bits owed by the sender.
    owed: f64,
    acks: Vec<Acknowledgement>,
    probes: u32,
    probe_cap: u64,
}

impl Sim {
    fn new(capacity_bps: f64) -> Self {
        Self {
            bwe: LegBwe::default(),
            t0: Instant::now(),
            at: Duration::ZERO,
            capacity_bps,
            lose_every: None,
            free_at: Duration::ZERO,
            seq: 0,
            count: 0,
            owed: 0.0,
            acks: Vec::new(),
            probes: 0,
            probe_cap: 5_000_000,
        }
    }

    fn now(&self) -> Instant {
        self.t0 + self.at
    }

    fn send(&mut self, size: usize) {
        let now = self.now();
        self.seq = self.seq.wrapping_add(1);
        self.count += 1;
        self.bwe.on_sent(Some(self.seq), size, false, now);
        if self
            .lose_every
            .is_some_and(|n| self.count.is_multiple_of(n))
        {
            self.acks.push(Acknowledgement::lost(self.seq));
            return;
        }
        let start = self.free_at.max(self.at + Duration::from_millis(20));
        let arrival = start + Duration::from_secs_f64(size as f64 * 8.0 / self.capacity_bps);
        self.free_at = arrival;
        self.acks.push(Acknowledgement::received(
            self.seq,
            Some(arrival),
            Ecn::NotEct,
        ));
    }

    /// Sends media at `bps` for `secs`, with the shard's feedback, review and padding rhythm.
    fn run(&mut self, bps: f64, secs: f64) {
        let steps = (secs / STEP.as_secs_f64()) as u32;
        for _ in 0..steps {
            self.at += STEP;
            self.owed += bps * STEP.as_secs_f64();
            while self.owed >= (PACKET * 8) as f64 {
                self.owed -= (PACKET * 8) as f64;
                self.send(PACKET);
            }
            let now = self.now();
            for _ in 0..self.bwe.padding_due(now) {
                self.send(PADDING_BYTES + 40);
            }
            let ms = self.at.as_millis();
            if ms.is_multiple_of(100) {
                // Feedback about what has arrived by now reaches the sender 20 ms later.
                let (ready, later): (Vec<_>, Vec<_>) = self
                    .acks
                    .drain(..)
                    .partition(|a| a.arrival.is_none_or(|t| t <= self.at));
                self.acks = later;
                self.bwe.on_acks(&ready, now + Duration::from_millis(20));
            }
            if ms.is_multiple_of(1000) && self.bwe.review(now, self.probe_cap) {
                self.probes += 1;
            }
            if ms.is_multiple_of(1000) && std::env::var("BWE_TRACE").is_ok() {
                eprintln!(
                    "{ms} ms: estimate {:?} sent {} probing {}",
                    self.bwe.estimate_bps(),
                    self.bwe.sent_bps(now),
                    self.bwe.probing(now)
                );
            }
        }
    }

    fn estimate(&self) -> u64 {
        self.bwe.estimate_bps().expect("an estimate")
    }
}

#[test]
fn a_growing_queue_brings_the_estimate_down() {
    let mut sim = Sim::new(1_000_000.0);
    sim.run(800_000.0, 4.0);
    let before = sim.estimate();
    assert!(before > 1_000_000, "clean at 800k: {before}");
    // Sending 1.6 Mbit/s into 1 Mbit/s: the queue and the delay grow.
    sim.run(1_600_000.0, 4.0);
    let after = sim.estimate();
    assert!(
        after < 1_000_000,
        "estimate {after} stays above the capacity"
    );
    assert!(after < before * 3 / 4, "{before} → {after}");
}

#[test]
fn clean_feedback_lets_the_estimate_climb_back() {
    let mut sim = Sim::new(1_000_000.0);
    sim.run(800_000.0, 2.0);
    sim.run(1_600_000.0, 4.0);
    let low = sim.estimate();
    // The path widens; the sender goes back to 800k and the queue drains.
    sim.capacity_bps = 10_000_000.0;
    sim.run(800_000.0, 10.0);
    let high = sim.estimate();
    assert!(high > low * 13 / 10, "{low} → {high}");
    // Held to what the receiver acknowledged: about 1.5 × 800k + 10k.
    assert!(high <= 1_260_000, "{high}");
}

#[test]
fn loss_above_ten_percent_brings_it_down() {
    let mut clean = Sim::new(10_000_000.0);
    clean.run(800_000.0, 6.0);
    let mut lossy = Sim::new(10_000_000.0);
    lossy.lose_every = Some(5);
    lossy.run(800_000.0, 6.0);
    assert!(
        lossy.estimate() < clean.estimate() / 2,
        "20 % loss: {} against {} clean",
        lossy.estimate(),
        clean.estimate()
    );
}

#[test]
fn a_leg_that_starts_losing_a_quarter_is_held_to_what_arrives_at_once() {
    let mut sim = Sim::new(10_000_000.0);
    sim.run(800_000.0, 6.0);
    assert!(sim.estimate() > 1_000_000, "{}", sim.estimate());
    // A cap: a quarter of what is sent is lost from now on.
    sim.lose_every = Some(4);
    sim.run(800_000.0, 1.5);
    let arrives = 800_000 * 3 / 4;
    assert!(
        sim.estimate() <= arrives * 21 / 20,
        "estimate {} while {arrives} bit/s arrive",
        sim.estimate()
    );
}

#[test]
fn no_estimate_before_feedback_and_the_budget_puts_audio_first() {
    let mut bwe = LegBwe::default();
    let t0 = Instant::now();
    assert_eq!(bwe.estimate_bps(), None);
    assert_eq!(bwe.video_budget_bps(t0), None);
    let mut sim = Sim::new(10_000_000.0);
    sim.run(500_000.0, 3.0);
    let now = sim.now();
    // 64 kbit/s of audio over the last second.
    for i in 0..50u32 {
        sim.bwe
            .on_sent(None, 160, true, now - Duration::from_millis(20) * i);
    }
    let audio = sim.bwe.audio.bps(now);
    assert!(audio > 50_000, "{audio}");
    assert_eq!(sim.bwe.video_budget_bps(now), Some(sim.estimate() - audio),);
    bwe.on_sent(Some(1), 1000, false, t0);
    assert_eq!(bwe.estimate_bps(), None);
}

#[test]
fn probing_climbs_where_the_leg_wants_more_and_stops_when_it_has_it() {
    // Without a wanted rate nothing probes and the estimate stays near 1.5 × what is sent.
    let mut idle = Sim::new(5_000_000.0);
    idle.run(300_000.0, 12.0);
    assert_eq!(idle.probes, 0);
    assert!(idle.estimate() <= 500_000, "{}", idle.estimate());
    // Wanting 2.5 Mbit/s, the leg probes in bursts and the estimate climbs past it.
    let mut sim = Sim::new(5_000_000.0);
    sim.bwe.set_wanted_bps(Some(2_500_000));
    sim.run(300_000.0, 12.0);
    assert!(sim.probes >= 1, "no probe");
    // At most one burst per PROBE_INTERVAL.
    assert!(sim.probes <= 4, "{} probes in 12 s", sim.probes);
    let estimate = sim.estimate();
    assert!(
        estimate > 1_500_000,
        "probing left the estimate at {estimate}"
    );
    // The leg gets everything it wants (the selector is at the top layer): no more bursts,
    // also once the probe's proof has run out and the estimate is back near 1.5 × sent.
    sim.bwe.set_wanted_bps(Some(300_000));
    let before = sim.probes;
    sim.run(300_000.0, 15.0);
    assert_eq!(sim.probes, before);
    assert!(!sim.bwe.probing(sim.now()));
}

#[test]
fn a_leg_that_cannot_probe_may_climb_towards_what_it_wants_without_proof() {
    let mut sim = Sim::new(5_000_000.0);
    sim.probe_cap = 0;
    sim.bwe.set_wanted_bps(Some(2_000_000));
    sim.run(300_000.0, 12.0);
    assert_eq!(sim.probes, 0);
    let estimate = sim.estimate();
    assert!(estimate > 900_000, "held at {estimate}");
    assert!(
        estimate as f64 <= 2_000_000.0 * probe::ABOVE_WANTED,
        "{estimate} above ABOVE_WANTED × what it wants"
    );
}

#[test]
fn a_probe_that_gets_near_its_aim_lets_the_selector_move_up() {
    use crate::media::simulcast::{choose, LayerView, Want, UP_HEADROOM};
    let layers: Vec<LayerView> = [150_000, 300_000, 600_000]
        .map(|bitrate| LayerView {
            active: true,
            bitrate,
            size: None,
            below_top: None,
        })
        .to_vec();
    // A leg on the middle layer (320k on the wire) short of the top one by 300k wants 620k.
    let wanted = 320_000.0 + 300_000.0;
    // Its burst got through at 95 % of its aim; the selector's budget is that less the share
    // kept for overhead, and it moves up when the top layer fits with its headroom.
    let proven = wanted * probe::ABOVE_WANTED * 0.95;
    let budget = proven * (1.0 - OVERHEAD_SHARE);
    let room = (budget / UP_HEADROOM) as u64;
    assert_eq!(
        choose(&layers, Want::Top, Some(room)),
        Some(2),
        "budget {budget}"
    );
}

#[test]
fn a_burst_is_bounded_in_time_and_rate_and_backs_off_when_it_proves_nothing() {
    // A path that carries no more than what is sent: bursts prove nothing.
    let mut sim = Sim::new(400_000.0);
    sim.probe_cap = 1_000_000;
    sim.bwe.set_wanted_bps(Some(3_000_000));
    sim.run(300_000.0, 0.9);
    let now = sim.now() + Duration::from_millis(10);
    assert!(sim.bwe.review(now, 1_000_000), "a burst starts");
    let mut padding = 0;
    let mut t = now;
    while sim.bwe.probing(t) {
        t += PROBE_TICK;
        padding += sim.bwe.padding_due(t);
    }
    assert!(t - now <= probe::BURST + PROBE_TICK);
    // Padding at no more than the cap minus what is sent, for half a second.
    let bits = (padding * PADDING_BYTES * 8) as u64;
    assert!(bits <= 1_000_000 / 2, "{bits} bits of padding");
    assert!(bits > 0);
    // Failed bursts space out: one per MAX_INTERVAL (6 s) after the first two.
    let mut sim = Sim::new(400_000.0);
    sim.bwe.set_wanted_bps(Some(3_000_000));
    sim.run(300_000.0, 31.0);
    assert!((1..=6).contains(&sim.probes), "{} probes", sim.probes);
}

#[test]
fn a_leg_whose_bursts_failed_for_long_climbs_within_seconds_once_the_path_widens() {
    // Capped for 49 s: every burst proves nothing and the bursts space out as far as they go.
    let mut sim = Sim::new(330_000.0);
    sim.bwe.set_wanted_bps(Some(3_000_000));
    sim.run(300_000.0, 49.0);
    let failed = sim.probes;
    assert!(failed >= 4, "{failed} bursts while capped");
    // The cap is lifted: the next burst is due within MAX_INTERVAL (6 s)...
    sim.capacity_bps = 5_000_000.0;
    let mut waited = Duration::ZERO;
    while sim.probes == failed && waited < Duration::from_secs(40) {
        sim.run(300_000.0, 0.1);
        waited += Duration::from_millis(100);
    }
    assert!(
        waited <= Duration::from_secs(7),
        "the first burst after the cap came {} s later",
        waited.as_secs_f64()
    );
    // ... and proves the path carries more than the 1.5 × what is sent (460 kbit/s) the
    // estimate may reach without proof, once its feedback is in (the once-a-second review
    // after BURST and RESULT_WAIT).
    sim.run(300_000.0, 3.5);
    assert!(sim.estimate() > 700_000, "{}", sim.estimate());
}
