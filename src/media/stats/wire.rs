//! An observing interceptor near the wire end of every PeerConnection's chain, below the NACK
//! generator and responder, so it sees what they emit: NACKs we send to publishers and the
//! retransmissions we send to subscribers (tagged [`Attribute::Retransmission`] by the
//! responder). It counts them in plain thread-local cells — a PeerConnection is only ever driven
//! by its shard's thread — which the shard collects with [`take`] when it publishes. It passes
//! every packet on unchanged and generates nothing.

use crate::rtp::pass_through::PacketHook;
use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use std::cell::Cell;

/// Chain position: wire-ward of the NACK responder (4 000) and generator (7 000), so both
/// their outputs pass through it.
pub const WIRE_COUNTER_SLOT: usize = 3_500;

/// What the chains of this thread sent since the last [`take`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WireCounts {
    pub nacks_out: u64,
    pub retransmitted_packets: u64,
    pub retransmitted_bytes: u64,
}

thread_local! {
    static COUNTS: Cell<WireCounts> = const {
        Cell::new(WireCounts {
            nacks_out: 0,
            retransmitted_packets: 0,
            retransmitted_bytes: 0,
        })
    };
}

/// The calling thread's counts since the previous call; resets them.
pub fn take() -> WireCounts {
    COUNTS.with(Cell::take)
}

/// A retransmission the forwarding fast path sent itself (it bypasses the chain).
pub fn count_retransmission(bytes: u64) {
    bump(|c| {
        c.retransmitted_packets += 1;
        c.retransmitted_bytes += bytes;
    });
}

fn bump(change: impl FnOnce(&mut WireCounts)) {
    COUNTS.with(|cell| {
        let mut counts = cell.get();
        change(&mut counts);
        cell.set(counts);
    });
}

/// See the module documentation (an interceptor as `PassThrough<WireCounter>`).
pub struct WireCounter;

impl PacketHook for WireCounter {
    fn on_write(&mut self, msg: &mut TaggedPacket) {
        match &msg.message.packet {
            Packet::Rtp(packet) if msg.message.has(&Attribute::Retransmission) => {
                let bytes = packet.payload.len() as u64;
                bump(|c| {
                    c.retransmitted_packets += 1;
                    c.retransmitted_bytes += bytes;
                });
            }
            Packet::Rtcp(packets) => {
                let nacks = packets
                    .iter()
                    .filter(|p| p.as_any().is::<TransportLayerNack>())
                    .count() as u64;
                if nacks > 0 {
                    bump(|c| c.nacks_out += nacks);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::pass_through::PassThrough;
    use rtc::interceptor::AttributedPacket;
    use rtc::sansio::Protocol;
    use rtc::shared::TransportContext;
    use std::time::Instant;

    fn tagged(message: AttributedPacket) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message,
        }
    }

    #[test]
    fn counts_nacks_and_retransmissions_and_passes_everything_on() {
        take();
        let mut counter = PassThrough::new(WireCounter);
        let rtp = rtc::rtp::Packet {
            payload: vec![0u8; 100].into(),
            ..Default::default()
        };
        let original = AttributedPacket::new(Packet::Rtp(rtp.clone()));
        let resent = AttributedPacket::new(Packet::Rtp(rtp)).with(Attribute::Retransmission);
        let nack: Box<dyn rtc::rtcp::Packet> = Box::new(TransportLayerNack::default());
        let rtcp = AttributedPacket::new(Packet::Rtcp(vec![nack]));
        for message in [original, resent, rtcp] {
            counter.handle_write(tagged(message)).expect("write");
        }
        let mut passed = 0;
        while counter.poll_write().is_some() {
            passed += 1;
        }
        assert_eq!(passed, 3);
        assert_eq!(
            take(),
            WireCounts {
                nacks_out: 1,
                retransmitted_packets: 1,
                retransmitted_bytes: 100,
            }
        );
        assert_eq!(take(), WireCounts::default());
    }
}
