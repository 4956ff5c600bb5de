//! An interceptor that marks chosen inbound RTCP for delivery to the application — the server
//! wants keyframe requests (PLI/FIR), NACKs, reception reports and TWCC feedback; the test client and the load
//! generator want keyframe requests and NACKs. It marks, it does not consume: the NACK
//! responder and report interceptors still act on every packet. It must not alter, delay or
//! generate anything.

use super::pass_through::{PacketHook, PassThrough};
use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

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
}

impl RtcpTap {
    /// A tap (as an interceptor) that delivers the compound packets containing anything
    /// `wanted` accepts.
    pub fn new(wanted: RtcpFilter) -> PassThrough<Self> {
        PassThrough::new(Self { wanted })
    }
}

impl PacketHook for RtcpTap {
    fn on_read(&mut self, msg: &mut TaggedPacket) {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            if packets.iter().any(|p| (self.wanted)(p.as_ref())) {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
    }
}
