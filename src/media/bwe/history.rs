//! A subscriber leg's send history for congestion control: each packet's transport-wide
//! sequence number, when it left and its size, in a ring (8 bytes a slot, no allocation per
//! packet) that holds at least the leg's last [`KEPT_FOR`] of packets, up to [`SLOTS`] (`rtc`'s
//! `History` keeps three hash maps per packet, too much for the fast path), joined with the
//! leg's TWCC feedback into the [`PacketReport`]s the estimator reads. A packet is reported
//! arrived at most once; one reported lost may later be reported arrived.

use rtc::interceptor::{Acknowledgement, PacketReport};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
use std::time::{Duration, Instant};

/// Most slots in the ring (a power of two): feedback about a packet older than this many
/// packets of the leg is ignored. 2048 packets are several seconds of a leg's video.
pub const SLOTS: usize = 2048;
/// Slots of a new ring (it doubles, up to [`SLOTS`], while it would overwrite a packet younger
/// than [`KEPT_FOR`]): 2 KiB where a 2.5 Mbit/s leg needs 4, instead of 16 for every leg.
pub const MIN_SLOTS: usize = 256;
/// How long a packet is kept at least (unless [`SLOTS`] newer ones were sent since): feedback
/// comes every 50–100 ms and is useless to the estimate after a second.
pub const KEPT_FOR: Duration = Duration::from_secs(1);

// A slot never written has state 0.
const SENT: u8 = 1;
const LOST: u8 = 2;
const ARRIVED: u8 = 3;

/// Sizes are kept in 14 bits (larger ones are counted as 16383 bytes); the top two bits hold
/// the state.
const SIZE_MASK: u16 = 0x3fff;

/// The slot of extended sequence number `ext` in a ring of `len` slots (a power of two: the
/// ring starts at [`MIN_SLOTS`] and doubles), by mask rather than division.
fn slot_of(ext: u64, len: usize) -> usize {
    debug_assert!(len.is_power_of_two());
    ext as usize & (len - 1)
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    seq: u16,
    /// Size on the wire in bytes (low 14 bits) and state (top 2 bits).
    size_state: u16,
    /// Microseconds since the history's epoch, wrapping (about 71 minutes).
    sent_us: u32,
}

impl Slot {
    fn state(&self) -> u8 {
        (self.size_state >> 14) as u8
    }

    fn size(&self) -> usize {
        (self.size_state & SIZE_MASK) as usize
    }

    fn set_state(&mut self, state: u8) {
        self.size_state = (self.size_state & SIZE_MASK) | ((state as u16) << 14);
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct SendHistory {
    slots: Vec<Slot>,
    epoch: Option<Instant>,
    /// The newest sequence number recorded, extended to 64 bits.
    newest: Option<u64>,
}

impl SendHistory {
    fn micros(&self, at: Instant) -> u32 {
        self.epoch
            .map_or(0, |e| at.saturating_duration_since(e).as_micros() as u32)
    }

    /// Records a packet with transport-wide number `seq` of `size` bytes leaving at `now`.
    pub fn on_sent(&mut self, seq: u16, size: usize, now: Instant) {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); MIN_SLOTS];
            self.epoch = Some(now);
        }
        let ext = match self.newest {
            None => seq as u64 + (1 << 16),
            Some(newest) => extend(newest, seq),
        };
        let sent_us = self.micros(now);
        while self.slots.len() < SLOTS {
            let old = self.slots[slot_of(ext, self.slots.len())];
            let young = sent_us.wrapping_sub(old.sent_us) < KEPT_FOR.as_micros() as u32;
            if old.state() == 0 || !young {
                break;
            }
            self.grow();
        }
        self.newest = Some(self.newest.map_or(ext, |n| n.max(ext)));
        let len = self.slots.len();
        self.slots[slot_of(ext, len)] = Slot {
            seq,
            size_state: size.min(SIZE_MASK as usize) as u16 | ((SENT as u16) << 14),
            sent_us,
        };
    }

    /// Slots in the ring now.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Doubles the ring, each packet moved to its slot in the larger one.
    fn grow(&mut self) {
        // Without a newest packet no slot is in use.
        let newest = self.newest.unwrap_or_default();
        let (old_len, len) = (self.slots.len() as u64, self.slots.len() * 2);
        let mut slots = vec![Slot::default(); len];
        for slot in self.slots.iter().filter(|s| s.state() != 0) {
            let ext = extend(newest, slot.seq);
            if ext <= newest && newest - ext < old_len {
                slots[slot_of(ext, len)] = *slot;
            }
        }
        self.slots = slots;
    }

    /// The packet reports that `acks` (one TWCC feedback, received at `now`) add, in send order.
    pub fn on_feedback(&mut self, acks: &[Acknowledgement], now: Instant) -> Vec<PacketReport> {
        let Some(newest) = self.newest else {
            return Vec::new();
        };
        let now_us = self.micros(now);
        let mut reports = Vec::with_capacity(acks.len());
        for ack in acks {
            let ext = extend(newest, ack.sequence_number);
            let len = self.slots.len();
            if ext > newest || newest - ext >= len as u64 {
                continue;
            }
            let slot = &mut self.slots[slot_of(ext, len)];
            let fresh = matches!((slot.state(), ack.arrived), (SENT, _) | (LOST, true));
            if slot.seq != ack.sequence_number || !fresh {
                continue;
            }
            slot.set_state(if ack.arrived { ARRIVED } else { LOST });
            let age = Duration::from_micros(now_us.wrapping_sub(slot.sent_us) as u64);
            reports.push(PacketReport {
                ssrc: 0,
                id: ext,
                rtp_sequence_number: 0,
                is_twcc: true,
                twcc_sequence_number: ack.sequence_number,
                size: slot.size(),
                arrived: ack.arrived,
                departure: now.checked_sub(age).unwrap_or(now),
                arrival: ack.arrival,
                ecn: Ecn::NotEct,
            });
        }
        reports.sort_by_key(|r| r.id);
        reports
    }
}

/// `seq` as the 64-bit number closest to `newest`.
fn extend(newest: u64, seq: u16) -> u64 {
    let delta = seq.wrapping_sub(newest as u16) as i16 as i64;
    (newest as i64 + delta).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(seq: u16, ms: u64) -> Acknowledgement {
        Acknowledgement::received(seq, Some(Duration::from_millis(ms)), Ecn::NotEct)
    }

    #[test]
    fn a_slot_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 8);
    }

    #[test]
    fn joins_feedback_with_departures_across_the_wrap_once() {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        for (i, seq) in [65_534u16, 65_535, 0, 1].into_iter().enumerate() {
            h.on_sent(seq, 1000 + i, t0 + Duration::from_millis(10 * i as u64));
        }
        let later = t0 + Duration::from_millis(100);
        let acks = [
            received(65_535, 20),
            Acknowledgement::lost(0),
            received(1, 40),
        ];
        let reports = h.on_feedback(&acks, later);
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[0].departure, t0 + Duration::from_millis(10));
        assert_eq!(reports[0].size, 1001);
        assert!(!reports[1].arrived && reports[2].arrived);
        assert!(reports[0].id < reports[1].id && reports[1].id < reports[2].id);
        // The same feedback again adds nothing; a late arrival of the lost one counts.
        assert!(h.on_feedback(&acks, later).is_empty());
        assert_eq!(h.on_feedback(&[received(0, 50)], later).len(), 1);
        // Unknown and far-future numbers are ignored.
        assert!(h.on_feedback(&[received(500, 1)], later).is_empty());
    }

    /// Sends `pps` packets a second for `secs` seconds; returns the history and the start.
    fn sent_at(pps: u64, secs: u64) -> (SendHistory, Instant) {
        let t0 = Instant::now();
        let mut h = SendHistory::default();
        for i in 0..pps * secs {
            h.on_sent(
                i as u16,
                1200,
                t0 + Duration::from_micros(i * 1_000_000 / pps),
            );
        }
        (h, t0)
    }

    #[test]
    fn the_ring_holds_a_second_of_packets_in_as_few_slots_as_that_takes() {
        // 300 packets/s (2.5 Mbit/s of video and audio): 512 slots, not 2048.
        let (mut h, t0) = sent_at(300, 5);
        assert_eq!(h.capacity(), 512);
        // A packet sent 1.2 s before the newest is still known after growing.
        let seq = (300 * 5 - 1 - 360) as u16;
        let reports = h.on_feedback(&[received(seq, 3_800)], t0 + Duration::from_secs(5));
        assert_eq!(reports.len(), 1);
        assert_eq!(
            reports[0].departure,
            t0 + Duration::from_micros(seq as u64 * 1_000_000 / 300)
        );
        // 10,000 packets/s: capped at SLOTS (0.2 s of packets).
        assert_eq!(sent_at(10_000, 2).0.capacity(), SLOTS);
        assert_eq!(sent_at(100, 5).0.capacity(), MIN_SLOTS);
    }
}
