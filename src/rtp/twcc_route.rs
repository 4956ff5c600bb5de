//! Gets a subscriber's transport-wide congestion control feedback to the application whatever
//! media SSRC it names. TWCC feedback is about the transport, yet its header names one media
//! source: the receiver's recorder (`rtc`'s, and libwebrtc's alike) puts there the SSRC of the
//! last packet it recorded — during a probe, often the RTX stream the padding rides on.
//! `rtc` 0.21.1 routes inbound RTCP by the first packet's media SSRC and drops it when no
//! track has that SSRC, which an RTX SSRC never is: the feedback covering a probe burst was
//! lost, and the burst proved nothing (issue 13: capped synthetic subscribers never climbed
//! back). This interceptor names, in each TWCC feedback whose media SSRC is not one of the
//! connection's sending streams, the stream it repairs (for its RTX SSRC) or else the first
//! sending stream, so `rtc` delivers it. Nothing else is changed.

use super::pass_through::PacketHook;
use rtc::interceptor::{Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

/// Registry position: anywhere on the read path before the endpoint; beside the tap.
pub const TWCC_ROUTE_SLOT: usize = 13_900;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct TwccRoute {
    /// The connection's sending streams: primary SSRC and its RTX SSRC.
    local: Vec<(u32, Option<u32>)>,
}

impl TwccRoute {
    /// The sending stream a feedback naming `ssrc` is handed to, if it must be renamed.
    fn rename(&self, ssrc: u32) -> Option<u32> {
        if self.local.iter().any(|(primary, _)| *primary == ssrc) {
            return None;
        }
        self.local
            .iter()
            .find(|(_, rtx)| *rtx == Some(ssrc))
            .or(self.local.first())
            .map(|(primary, _)| *primary)
    }
}

impl PacketHook for TwccRoute {
    fn on_read(&mut self, msg: &mut TaggedPacket) {
        let Packet::Rtcp(packets) = &mut msg.message.packet else {
            return;
        };
        for packet in packets.iter_mut() {
            let Some(tcc) = packet.as_any().downcast_ref::<TransportLayerCc>() else {
                continue;
            };
            if let Some(media_ssrc) = self.rename(tcc.media_ssrc) {
                *packet = Box::new(TransportLayerCc {
                    media_ssrc,
                    ..tcc.clone()
                });
            }
        }
    }

    fn on_bind_local(&mut self, info: &StreamInfo) {
        self.local.retain(|(ssrc, _)| *ssrc != info.ssrc);
        self.local.push((info.ssrc, info.ssrc_rtx));
    }

    fn on_unbind_local(&mut self, info: &StreamInfo) {
        self.local.retain(|(ssrc, _)| *ssrc != info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_repaired_stream_for_its_rtx_ssrc_else_the_first_stream() {
        let mut route = TwccRoute::default();
        assert_eq!(route.rename(7), None, "no sending stream: left alone");
        for (ssrc, rtx) in [(10, Some(11)), (20, Some(21))] {
            route.on_bind_local(&StreamInfo {
                ssrc,
                ssrc_rtx: rtx,
                ..Default::default()
            });
        }
        assert_eq!(route.rename(20), None);
        assert_eq!(route.rename(21), Some(20));
        assert_eq!(route.rename(99), Some(10));
        route.on_unbind_local(&StreamInfo {
            ssrc: 10,
            ..Default::default()
        });
        assert_eq!(route.rename(11), Some(20));
    }
}
