//! Active speakers from RFC 6464 audio levels, free of sockets and clocks (time is an
//! argument). Each published audio track has a [`LevelMeter`] that counts, per packet and
//! without allocating, how loud the publisher says it is; a room's [`SpeakerDetector`] reads
//! its meters every [`SPEAKER_TICK`], over a window of the last two ticks (~500 ms), and
//! decides who speaks: a publisher becomes active when at least 40 % of its packets in the
//! window are louder than −40 dBov, and stays active while at least 20 % are louder than
//! −50 dBov (the hysteresis keeps pauses between words and background noise from flapping).
//! The loudest [`MAX_SPEAKERS`] active ones, loudest first, are the room's list; it is
//! reported only when it changes, at most once per [`MIN_MESSAGE_INTERVAL`].

use std::time::{Duration, Instant};

/// How often a room's detector reads its meters (half the smoothing window).
pub const SPEAKER_TICK: Duration = Duration::from_millis(250);
/// The shortest time between two reports of one room (so at most 4 per second).
pub const MIN_MESSAGE_INTERVAL: Duration = Duration::from_millis(250);
/// At most this many speakers are reported.
pub const MAX_SPEAKERS: usize = 3;

/// A packet at least this loud (in −dBov, 0 loudest, 127 silence) counts toward becoming active.
const ENTER_DBOV: u8 = 40;
/// Share (percent) of the window's packets that must be that loud to become active.
const ENTER_SHARE: u32 = 40;
/// A packet at least this loud counts toward staying active.
const STAY_DBOV: u8 = 50;
/// Share (percent) of the window's packets that must be that loud to stay active.
const STAY_SHARE: u32 = 20;
/// A window needs this many packets before anyone becomes active in it (one loud packet, or
/// the first packets of a new track, do not make a speaker).
const MIN_PACKETS: u32 = 5;
/// A speaker already reported keeps its place unless another is louder by more than this
/// (loudness units of 1/127), so near-equal speakers do not swap at every tick.
const ORDER_MARGIN: u32 = 3;

/// What one window of packets said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    packets: u32,
    /// Packets at least [`ENTER_DBOV`] loud.
    speech: u32,
    /// Packets at least [`STAY_DBOV`] loud.
    voiced: u32,
    /// Sum of each packet's loudness (127 − level).
    loudness: u32,
}

impl Counts {
    fn add(self, other: Counts) -> Counts {
        Counts {
            packets: self.packets.saturating_add(other.packets),
            speech: self.speech.saturating_add(other.speech),
            voiced: self.voiced.saturating_add(other.voiced),
            loudness: self.loudness.saturating_add(other.loudness),
        }
    }

    /// Mean loudness over the window, 0..=127 scaled by 16 (for ordering without floats).
    fn mean_x16(&self) -> u32 {
        let mean = (u64::from(self.loudness) * 16).checked_div(u64::from(self.packets));
        mean.unwrap_or(0) as u32
    }

    fn active(&self, was_active: bool) -> bool {
        let (count, share) = if was_active {
            (self.voiced, STAY_SHARE)
        } else {
            (self.speech, ENTER_SHARE)
        };
        let enough = if was_active { 1 } else { MIN_PACKETS };
        self.packets >= enough
            && u64::from(count) * 100 >= u64::from(share) * u64::from(self.packets)
    }
}

/// The audio levels one published audio track reported, in the current and previous tick.
#[derive(Debug, Clone, Default)]
pub struct LevelMeter {
    current: Counts,
    previous: Counts,
}

impl LevelMeter {
    /// One packet's RFC 6464 byte: V flag (ignored) and level 0..=127 (−dBov).
    pub fn record(&mut self, byte: u8) {
        let level = byte & 0x7f;
        let c = &mut self.current;
        c.packets = c.packets.saturating_add(1);
        c.speech = c.speech.saturating_add(u32::from(level <= ENTER_DBOV));
        c.voiced = c.voiced.saturating_add(u32::from(level <= STAY_DBOV));
        c.loudness = c.loudness.saturating_add(u32::from(127 - level));
    }

    /// The window (previous and current tick), then starts a new tick.
    fn take_window(&mut self) -> Counts {
        let window = self.previous.add(self.current);
        self.previous = std::mem::take(&mut self.current);
        window
    }
}

/// One reported speaker: who, and how loud (0.0 silence ..= 1.0 the loudest level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speaker<K> {
    pub key: K,
    pub level: f64,
}

/// The speaker detector of one room. See the module documentation.
#[derive(Debug, Clone)]
pub struct SpeakerDetector<K> {
    next_tick: Option<Instant>,
    /// Everyone active at the last tick (more than [`MAX_SPEAKERS`] possible), for hysteresis.
    active: Vec<K>,
    /// The list last reported, in order.
    reported: Vec<Speaker<K>>,
    reported_at: Option<Instant>,
}

impl<K> Default for SpeakerDetector<K> {
    fn default() -> Self {
        Self {
            next_tick: None,
            active: Vec::new(),
            reported: Vec::new(),
            reported_at: None,
        }
    }
}

impl<K: Copy + PartialEq> SpeakerDetector<K> {
    /// The list last reported (what a member who joins now is told).
    pub fn reported(&self) -> &[Speaker<K>] {
        &self.reported
    }

    /// Reads the room's meters when a tick is due and returns the new list of speakers if it
    /// changed and the last report is at least [`MIN_MESSAGE_INTERVAL`] old; `meters` are the
    /// room's audio tracks by publisher (a publisher with several counts as its loudest).
    /// Before a tick is due the meters are left alone.
    pub fn tick<'a>(
        &mut self,
        now: Instant,
        meters: impl Iterator<Item = (K, &'a mut LevelMeter)>,
    ) -> Option<Vec<Speaker<K>>> {
        let due = *self.next_tick.get_or_insert(now);
        if now < due {
            return None;
        }
        self.next_tick = Some(now + SPEAKER_TICK);
        let mut windows: Vec<(K, Counts)> = Vec::new();
        for (key, meter) in meters {
            let window = meter.take_window();
            match windows.iter_mut().find(|(k, _)| *k == key) {
                Some((_, w)) if w.mean_x16() >= window.mean_x16() => {}
                Some((_, w)) => *w = window,
                None => windows.push((key, window)),
            }
        }
        let mut active: Vec<(K, u32)> = windows
            .iter()
            .filter(|(k, w)| w.active(self.active.contains(k)))
            .map(|(k, w)| (*k, self.ranked(*k, w.mean_x16())))
            .collect();
        active.sort_by_key(|a| std::cmp::Reverse(a.1));
        self.active = active.iter().map(|(k, _)| *k).collect();
        let list: Vec<Speaker<K>> = active
            .iter()
            .take(MAX_SPEAKERS)
            .filter_map(|(k, _)| windows.iter().find(|(w, _)| w == k))
            .map(|(k, w)| Speaker {
                key: *k,
                level: level_of(w),
            })
            .collect();
        let same = list.len() == self.reported.len()
            && list.iter().zip(&self.reported).all(|(a, b)| a.key == b.key);
        let too_soon = self
            .reported_at
            .is_some_and(|at| now.saturating_duration_since(at) < MIN_MESSAGE_INTERVAL);
        if same || too_soon {
            return None;
        }
        self.reported.clone_from(&list);
        self.reported_at = Some(now);
        Some(list)
    }

    /// A publisher's rank: its mean loudness, plus a margin per place below it in the list
    /// last reported (so each keeps its place unless another is louder by the margin).
    fn ranked(&self, key: K, mean_x16: u32) -> u32 {
        let place = self.reported.iter().position(|s| s.key == key);
        let places_below = place.map_or(0, |p| (MAX_SPEAKERS - p) as u32);
        mean_x16 + places_below * ORDER_MARGIN * 16
    }
}

/// The window's mean loudness as 0.0..=1.0, two decimals.
fn level_of(window: &Counts) -> f64 {
    let mean = f64::from(window.mean_x16()) / 16.0 / 127.0;
    (mean * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake room: meters per publisher and a fake clock; 50 packets per second each.
    struct Room {
        now: Instant,
        meters: Vec<(u32, LevelMeter)>,
        detector: SpeakerDetector<u32>,
        reports: Vec<(Duration, Vec<u32>)>,
        start: Instant,
    }

    impl Room {
        fn new(publishers: &[u32]) -> Self {
            let now = Instant::now();
            Self {
                now,
                start: now,
                meters: publishers
                    .iter()
                    .map(|k| (*k, LevelMeter::default()))
                    .collect(),
                detector: SpeakerDetector::default(),
                reports: Vec::new(),
            }
        }

        /// Runs `ms` of fake time, each publisher sending a packet every 20 ms at the
        /// level `level(key, packet index)` gives, the detector polled every 10 ms.
        fn run(&mut self, ms: u64, level: impl Fn(u32, u64) -> u8) {
            for step in 0..ms / 10 {
                self.now += Duration::from_millis(10);
                if step % 2 == 0 {
                    for (key, meter) in &mut self.meters {
                        meter.record(level(*key, step / 2));
                    }
                }
                let meters = self.meters.iter_mut().map(|(k, m)| (*k, m));
                if let Some(list) = self.detector.tick(self.now, meters) {
                    let keys = list.iter().map(|s| s.key).collect();
                    self.reports.push((self.now - self.start, keys));
                }
            }
        }

        fn last(&self) -> Vec<u32> {
            self.reports.last().map(|r| r.1.clone()).unwrap_or_default()
        }
    }

    #[test]
    fn the_loudest_come_first_and_at_most_three() {
        let mut room = Room::new(&[1, 2, 3, 4, 5]);
        // 1: −30 dBov, 2: −10, 3: −20, 4: −35, 5: silence.
        let levels = [0, 30, 10, 20, 35, 127];
        room.run(1000, |k, _| levels[k as usize]);
        assert_eq!(room.last(), vec![2, 3, 1]);
        let reported = room.detector.reported();
        assert!(reported[0].level > reported[1].level);
        assert!((reported[0].level - 0.92).abs() < 0.01, "{reported:?}");
    }

    #[test]
    fn silence_and_noise_report_nothing() {
        let mut room = Room::new(&[1, 2]);
        // 1: steady background noise at −55 dBov; 2: one click in a second of silence.
        room.run(2000, |k, i| match (k, i) {
            (1, _) => 55,
            (_, 20) => 0,
            _ => 127,
        });
        assert!(room.reports.is_empty(), "{:?}", room.reports);
    }

    #[test]
    fn hysteresis_keeps_a_speaker_through_pauses_between_words() {
        let mut room = Room::new(&[1]);
        // Soft speech: 3 packets of 10 at −45 dBov, the rest at −60 (room tone): not enough to
        // become active...
        let soft = |_, i| if i % 10 < 3 { 45 } else { 60 };
        room.run(1000, soft);
        assert!(room.reports.is_empty());
        // ...but a speaker who started talking stays active through the same pattern.
        room.run(1000, |_, _| 30);
        assert_eq!(room.last(), vec![1]);
        room.run(3000, soft);
        assert_eq!(room.reports.len(), 1, "{:?}", room.reports);
        // Real silence ends it, within the window.
        room.run(1000, |_, _| 127);
        assert_eq!(room.reports.len(), 2);
        let (at, list) = &room.reports[1];
        assert!(list.is_empty());
        assert!(*at <= Duration::from_millis(5000 + 750), "{at:?}");
    }

    #[test]
    fn changes_are_reported_at_most_four_times_a_second() {
        let mut room = Room::new(&[1, 2]);
        // The two take turns every 300 ms: the list changes all the time.
        room.run(4000, |k, i| {
            let first = (i / 15) % 2 == 0;
            if (k == 1) == first {
                5
            } else {
                127
            }
        });
        assert!(room.reports.len() >= 8, "{:?}", room.reports);
        for pair in room.reports.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= MIN_MESSAGE_INTERVAL, "{pair:?}");
        }
        assert!(room.reports.len() <= 4 * 4 + 1, "{}", room.reports.len());
    }

    #[test]
    fn a_publisher_who_leaves_drops_out() {
        let mut room = Room::new(&[1, 2]);
        room.run(1000, |k, _| if k == 1 { 10 } else { 20 });
        assert_eq!(room.last(), vec![1, 2]);
        room.meters.retain(|(k, _)| *k != 1);
        room.run(300, |_, _| 20);
        assert_eq!(room.last(), vec![2]);
    }

    #[test]
    fn a_publisher_with_two_tracks_counts_once_at_its_loudest() {
        let t0 = Instant::now();
        let (mut mic, mut screen, mut other) = Default::default();
        let mut detector = SpeakerDetector::default();
        let record = |m: &mut LevelMeter, level| (0..25).for_each(|_| m.record(level));
        record(&mut mic, 30);
        record(&mut screen, 10);
        record(&mut other, 20);
        let meters: [(u32, &mut LevelMeter); 3] =
            [(1, &mut mic), (1, &mut screen), (2, &mut other)];
        let list = detector.tick(t0, meters.into_iter()).expect("a report");
        let keys: Vec<u32> = list.iter().map(|s| s.key).collect();
        assert_eq!(keys, vec![1, 2]);
        assert!((list[0].level - 0.92).abs() < 0.01, "{list:?}");
    }

    #[test]
    fn a_flood_of_packets_saturates_instead_of_overflowing() {
        let full = Counts {
            packets: u32::MAX,
            speech: u32::MAX,
            voiced: u32::MAX,
            loudness: u32::MAX,
        };
        let mut meter = LevelMeter {
            current: full,
            previous: full,
        };
        meter.record(0);
        let window = meter.take_window();
        assert_eq!(window.packets, u32::MAX);
        assert!(window.active(false));
        assert_eq!(window.mean_x16(), 16);
    }

    #[test]
    fn near_equal_speakers_keep_their_order() {
        let mut room = Room::new(&[1, 2]);
        room.run(1000, |k, _| if k == 1 { 20 } else { 25 });
        assert_eq!(room.last(), vec![1, 2]);
        // 2 becomes slightly louder than 1 (by less than the margin): no reorder.
        room.run(2000, |k, _| if k == 1 { 21 } else { 20 });
        assert_eq!(room.reports.len(), 1, "{:?}", room.reports);
        // Clearly louder: it moves up.
        room.run(1000, |k, _| if k == 1 { 30 } else { 10 });
        assert_eq!(room.last(), vec![2, 1]);
    }
}
