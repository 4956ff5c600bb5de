//! Keeps a browser stamping MID and RID on its simulcast streams. Chromium stops sending those
//! header extensions on a stream once a reception report acknowledges its SSRC; `rtc` 0.21.1
//! learns which SSRC carries which rid only from those extensions, and forgets it whenever a
//! renegotiation applies the remote description again (`start_rtp` rebuilds the rid codings
//! with no SSRC). From then on it dropped the publisher's simulcast video: every new
//! participant's renegotiation froze it. This interceptor leaves the report blocks about
//! rid-bound SSRCs out of the receiver and sender reports a server connection sends, so the
//! browser keeps stamping and `rtc` can bind again. Congestion control is not affected: it
//! runs on transport-wide feedback, and the audio stream's reports still carry RTT and loss.
//! Upstream `rtc` would need `start_rtp` to keep the SSRC a rid was bound to.

use super::pass_through::{PacketHook, PassThrough};
use parking_lot::Mutex;
use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use std::sync::Arc;

/// Registry position: transport-ward of the report interceptors (10 000 and 11 000), so it
/// sees the reports they generate on their way out.
pub const RID_KEEPER_SLOT: usize = 9_500;

/// The SSRCs of one connection's rid streams (simulcast layers), shared by the shard, which
/// learns them as the streams open, and the connection's [`RidKeeper`].
#[derive(Debug, Clone, Default)]
pub struct RidSsrcs(Arc<Mutex<Vec<u32>>>);

impl RidSsrcs {
    /// Remembers `ssrc` as a rid stream's.
    pub fn insert(&self, ssrc: u32) {
        let mut ssrcs = self.0.lock();
        if !ssrcs.contains(&ssrc) {
            ssrcs.push(ssrc);
        }
    }

    fn contains(&self, ssrc: u32) -> bool {
        self.0.lock().contains(&ssrc)
    }
}

/// See the module documentation.
pub struct RidKeeper {
    ssrcs: RidSsrcs,
}

impl RidKeeper {
    /// The keeper as an interceptor of the connection whose rid streams are `ssrcs`.
    pub fn new(ssrcs: RidSsrcs) -> PassThrough<Self> {
        PassThrough::new(Self { ssrcs })
    }

    /// `packet` without its report blocks about rid streams (`None`: nothing to leave out).
    fn without_rid_blocks(
        &self,
        packet: &dyn rtc::rtcp::Packet,
    ) -> Option<Box<dyn rtc::rtcp::Packet>> {
        let any = packet.as_any();
        if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            if rr.reports.iter().any(|r| self.ssrcs.contains(r.ssrc)) {
                let mut rr = rr.clone();
                rr.reports.retain(|r| !self.ssrcs.contains(r.ssrc));
                return Some(Box::new(rr));
            }
        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
            if sr.reports.iter().any(|r| self.ssrcs.contains(r.ssrc)) {
                let mut sr = sr.clone();
                sr.reports.retain(|r| !self.ssrcs.contains(r.ssrc));
                return Some(Box::new(sr));
            }
        }
        None
    }
}

impl PacketHook for RidKeeper {
    fn on_write(&mut self, msg: &mut TaggedPacket) {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            for packet in packets.iter_mut() {
                if let Some(trimmed) = self.without_rid_blocks(packet.as_ref()) {
                    *packet = trimmed;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::reception_report::ReceptionReport;

    fn block(ssrc: u32) -> ReceptionReport {
        ReceptionReport {
            ssrc,
            ..Default::default()
        }
    }

    #[test]
    fn report_blocks_about_rid_streams_are_left_out_and_the_rest_kept() {
        let ssrcs = RidSsrcs::default();
        let keeper = RidKeeper {
            ssrcs: ssrcs.clone(),
        };
        let rr = ReceiverReport {
            ssrc: 1,
            reports: vec![block(10), block(20), block(30)],
            ..Default::default()
        };
        assert!(
            keeper.without_rid_blocks(&rr).is_none(),
            "no rid stream yet"
        );
        ssrcs.insert(20);
        ssrcs.insert(20);
        let out = keeper.without_rid_blocks(&rr).expect("trimmed");
        let out = out.as_any().downcast_ref::<ReceiverReport>().unwrap();
        let kept: Vec<u32> = out.reports.iter().map(|r| r.ssrc).collect();
        assert_eq!(kept, [10, 30]);
        let sr = SenderReport {
            ssrc: 1,
            reports: vec![block(20)],
            ..Default::default()
        };
        let out = keeper.without_rid_blocks(&sr).expect("trimmed");
        let out = out.as_any().downcast_ref::<SenderReport>().unwrap();
        assert!(out.reports.is_empty());
    }
}
