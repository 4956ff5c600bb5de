//! An interceptor that marks chosen inbound RTCP for delivery to the application — the server
//! wants keyframe requests (PLI/FIR), NACKs, reception reports and TWCC feedback; the test client and the load
//! generator want keyframe requests and NACKs. It marks, it does not consume: the NACK
//! responder and report interceptors still act on every packet. It must not alter, delay or
//! generate anything.

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;

/// Registry position: application-most, after every stock interceptor.
pub const RTCP_TAP_SLOT: usize = 14_000;

/// Which RTCP packets the application wants to see.
pub type RtcpFilter = fn(&dyn rtc::rtcp::Packet) -> bool;

/// PLI, FIR and NACK: what a publisher acts on.
pub fn feedback(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>()
        || any.is::<FullIntraRequest>()
        || any.is::<TransportLayerNack>()
}

/// Feedback plus sender and receiver reports and transport-wide congestion control feedback
/// (bandwidth estimation): what the SFU acts on and measures.
pub fn feedback_and_reports(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    feedback(packet)
        || any.is::<ReceiverReport>()
        || any.is::<SenderReport>()
        || any.is::<TransportLayerCc>()
}

/// See the module documentation.
pub struct RtcpTap {
    wanted: RtcpFilter,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl RtcpTap {
    /// A tap that delivers the compound packets containing anything `wanted` accepts.
    pub fn new(wanted: RtcpFilter) -> Self {
        Self {
            wanted,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            if packets.iter().any(|p| (self.wanted)(p.as_ref())) {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
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

impl Interceptor for RtcpTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
