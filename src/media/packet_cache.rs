//! The last packets of a published video track, by the publisher's sequence number, kept once
//! per publication (not per subscriber leg) so the fast path can answer any leg's NACK with
//! a retransmission. The packet the fan-out already owns is moved in: no copy.

use rtc::rtp::Packet;

/// Packets kept per video publication (a power of two): several seconds of video.
pub const CACHED_PACKETS: usize = 512;

/// See the module documentation.
#[derive(Default)]
pub struct PacketCache {
    /// Each packet with the abs-send-time it was forwarded with.
    slots: Vec<Option<(Packet, u32)>>,
}

impl PacketCache {
    /// Keeps `packet` (forwarded with `abs_send_time`), replacing the one `CACHED_PACKETS`
    /// sequence numbers older.
    pub fn put(&mut self, packet: Packet, abs_send_time: u32) {
        if self.slots.is_empty() {
            self.slots.resize_with(CACHED_PACKETS, || None);
        }
        let slot = packet.header.sequence_number as usize & (CACHED_PACKETS - 1);
        self.slots[slot] = Some((packet, abs_send_time));
    }

    /// The packet with sequence number `seq` and its abs-send-time, if still kept.
    pub fn get(&self, seq: u16) -> Option<(&Packet, u32)> {
        self.slots
            .get(seq as usize & (CACHED_PACKETS - 1))?
            .as_ref()
            .filter(|(p, _)| p.header.sequence_number == seq)
            .map(|(p, ast)| (p, *ast))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> Packet {
        let mut p = Packet::default();
        p.header.sequence_number = seq;
        p
    }

    #[test]
    fn keeps_the_last_packets_and_forgets_older_ones() {
        let mut cache = PacketCache::default();
        assert!(cache.get(1).is_none());
        for seq in 0..600u16 {
            cache.put(packet(seq), 0);
        }
        assert!(cache.get(599).is_some());
        assert!(cache.get(600 - CACHED_PACKETS as u16).is_some());
        assert!(cache.get(600 - CACHED_PACKETS as u16 - 1).is_none());
    }
}
