//! An observing interceptor near the wire end of every PeerConnection's chain, below the NACK
//! generator and responder, so it sees what they emit: NACKs we send to publishers and the
//! retransmissions we send to subscribers (tagged [`Attribute::Retransmission`] by the
//! responder). It counts them in plain thread-local cells — a PeerConnection is only ever driven
//! by its shard's thread — which the shard collects with [`take`] when it publishes. It passes
//! every packet on unchanged and generates nothing.

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::cell::Cell;
use std::collections::VecDeque;
use std::time::Instant;

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

/// See the module documentation.
#[derive(Default)]
pub struct WireCounter {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for WireCounter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
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
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for WireCounter {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

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
        let mut counter = WireCounter::default();
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
