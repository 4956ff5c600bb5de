//! The connection a synthetic participant builds: Opus and VP8 with NACK and the RTCP tap for
//! keyframe requests; a simulcast publisher's rid extensions; and, unless `--no-twcc`, what
//! lets the server estimate the bandwidth toward it — the transport-wide-cc header extension,
//! `rtcp-fb transport-cc`, TWCC feedback for what it receives, and (receive-only participants)
//! RTX, the stream the server pads on when it probes the leg.

use super::rid::SIMULCAST_EXTENSIONS;
use crate::rtp::connection::{opus, vp8, Ice, Recipe};
use crate::rtp::rtcp_tap::{feedback, RtcpTap, RTCP_TAP_SLOT};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use std::net::SocketAddr;
use std::time::Instant;

/// Packets of history kept to answer NACKs (the stack's default).
const NACK_HISTORY: u16 = 1024;

/// What a synthetic participant's connection negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcShape {
    /// It publishes rid simulcast video.
    pub simulcast: bool,
    /// It publishes at all (publishers get no RTX: their layers are sent without it).
    pub publisher: bool,
    /// transport-cc and TWCC feedback (`--no-twcc` turns them off).
    pub twcc: bool,
}

/// A client-side connection (full ICE, DTLS client) shaped by `shape`, advertising `local`.
pub fn build_pc(
    local: SocketAddr,
    shape: PcShape,
    now: Instant,
) -> Result<RTCPeerConnection, rtc::shared::error::Error> {
    let mut recipe = Recipe::new(vec![opus(""), vp8()], Ice::Full, vec![local]);
    recipe.nack_history = Some(NACK_HISTORY);
    if shape.simulcast {
        recipe.extensions = SIMULCAST_EXTENSIONS
            .iter()
            .map(|uri| (*uri, RtpCodecKind::Video))
            .collect();
    }
    if shape.twcc {
        recipe.twcc_receiver = true;
        recipe.rtx = !shape.publisher;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            recipe.extensions.push((TRANSPORT_CC_URI, kind));
            recipe.feedback.push(("transport-cc", "", kind));
        }
    }
    recipe.interceptors = Registry::new().with(Slot::from(RTCP_TAP_SLOT), RtcpTap::new(feedback));
    Ok(recipe.build(now)?.0)
}
