//! A subscriber leg's send history for congestion control: each packet's transport-wide
//! sequence number, when it left and its size, in a fixed ring (8 bytes a slot, no allocation
//! per packet; `rtc`'s `History` keeps three hash maps per packet, too much for the fast path),
//! joined with the leg's TWCC feedback into the [`PacketReport`]s the estimator reads. A packet
//! is reported arrived at most once; one reported lost may later be reported arrived.

use rtc::interceptor::{Acknowledgement, PacketReport};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
use std::time::{Duration, Instant};

/// Slots in the ring (a power of two): feedback about a packet older than this many packets
/// of the leg is ignored. 2048 packets are several seconds of a leg's video.
pub const SLOTS: usize = 2048;

// A slot never written has state 0.
const SENT: u8 = 1;
const LOST: u8 = 2;
const ARRIVED: u8 = 3;

/// Sizes are kept in 14 bits (larger ones are counted as 16383 bytes); the top two bits hold
/// the state.
const SIZE_MASK: u16 = 0x3fff;

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
            self.slots = vec![Slot::default(); SLOTS];
            self.epoch = Some(now);
        }
        let ext = match self.newest {
            None => seq as u64 + (1 << 16),
            Some(newest) => extend(newest, seq),
        };
        self.newest = Some(self.newest.map_or(ext, |n| n.max(ext)));
        let sent_us = self.micros(now);
        self.slots[ext as usize % SLOTS] = Slot {
            seq,
            size_state: size.min(SIZE_MASK as usize) as u16 | ((SENT as u16) << 14),
            sent_us,
        };
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
            if ext > newest || newest - ext >= SLOTS as u64 {
                continue;
            }
            let slot = &mut self.slots[ext as usize % SLOTS];
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
}
