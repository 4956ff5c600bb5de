//! The codecs and header extensions Chorus negotiates (Opus; VP8, VP9, H264 packetization-mode 1
//! 42e01f, AV1, each with RTX) and the interceptor chain every PeerConnection gets. Codec
//! compatibility between a publisher and a subscriber leg is decided here.

use crate::rtp::rtcp_tap::{feedback_and_reports, RtcpTap, RTCP_TAP_SLOT};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
    MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::shared::error::Error as RtcError;

/// Packets of history each sending leg keeps to answer NACKs (a power of two).
pub const NACK_CACHE_PACKETS: u16 = 512;

const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Mime types (lower case) the SFU forwards.
const FORWARDABLE: [&str; 5] = [
    "audio/opus",
    "video/vp8",
    "video/vp9",
    "video/h264",
    "video/av1",
];

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str, pt: u8) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    }
}

/// A media engine with Chorus' codecs and extensions, and the interceptor chain to go with it:
/// NACK generator + responder (RTX when negotiated), sender and receiver reports, TWCC feedback
/// toward publishers, the tap that hands keyframe requests and reports to the shard, and the
/// wire-side counter of NACKs sent and retransmissions.
pub fn build_media_engine() -> Result<(MediaEngine, Registry), RtcError> {
    let mut me = MediaEngine::default();
    me.register_codec(
        codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111),
        RtpCodecKind::Audio,
    )?;
    let video = [
        (MIME_TYPE_VP8, "", 96u8),
        (MIME_TYPE_VP9, "profile-id=0", 98),
        (MIME_TYPE_H264, H264_FMTP, 102),
        (MIME_TYPE_AV1, "", 45),
    ];
    for (mime, fmtp, pt) in video {
        me.register_codec(codec(mime, 90_000, 0, fmtp, pt), RtpCodecKind::Video)?;
        me.register_codec(
            codec(MIME_TYPE_RTX, 90_000, 0, &format!("apt={pt}"), pt + 1),
            RtpCodecKind::Video,
        )?;
    }
    let mut extensions = vec![
        (rtc::sdp::extmap::SDES_MID_URI, RtpCodecKind::Audio),
        (rtc::sdp::extmap::SDES_MID_URI, RtpCodecKind::Video),
        (rtc::sdp::extmap::AUDIO_LEVEL_URI, RtpCodecKind::Audio),
        (rtc::sdp::extmap::ABS_SEND_TIME_URI, RtpCodecKind::Audio),
        (rtc::sdp::extmap::ABS_SEND_TIME_URI, RtpCodecKind::Video),
        (rtc::sdp::extmap::TRANSPORT_CC_URI, RtpCodecKind::Audio),
        (rtc::sdp::extmap::TRANSPORT_CC_URI, RtpCodecKind::Video),
    ];
    extensions.push((rtc::sdp::extmap::VIDEO_ORIENTATION_URI, RtpCodecKind::Video));
    for (uri, kind) in extensions {
        me.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            kind,
            None,
        )?;
    }
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        me.register_feedback(
            RTCPFeedback {
                typ: "transport-cc".to_owned(),
                parameter: String::new(),
            },
            kind,
        );
    }
    me.register_feedback(
        RTCPFeedback {
            typ: "ccm".to_owned(),
            parameter: "fir".to_owned(),
        },
        RtpCodecKind::Video,
    );
    let registry = Registry::new()
        .with(
            Slot::from(RTCP_TAP_SLOT),
            RtcpTap::new(feedback_and_reports),
        )
        .with(
            Slot::from(super::stats::wire::WIRE_COUNTER_SLOT),
            super::stats::wire::WireCounter::default(),
        );
    for parameter in ["", "pli"] {
        me.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    // The retransmission cache holds packet headers per leg (payloads are shared with the
    // publisher's packet); 512 packets is several seconds of video, far beyond any NACK's
    // useful life, at half the default's memory.
    let registry = registry
        .with(
            Slot::NackResponder,
            rtc::interceptor::NackResponderBuilder::new()
                .with_size(NACK_CACHE_PACKETS)
                .build(),
        )
        .with(
            Slot::NackGenerator,
            rtc::interceptor::NackGeneratorBuilder::new().build(),
        );
    let registry = configure_rtcp_reports(registry);
    let registry = registry.with(
        Slot::TwccReceiver,
        rtc::interceptor::TwccReceiverBuilder::new().build(),
    );
    Ok((me, registry))
}

/// True if this SFU can forward `mime` (case-insensitive), RTX and FEC excluded.
pub fn is_forwardable(mime: &str) -> bool {
    FORWARDABLE.iter().any(|m| m.eq_ignore_ascii_case(mime))
}

/// True if a subscriber leg offering `leg` can carry a track encoded as `track`: same mime
/// type, and for H264 and VP9 the same profile.
pub fn codec_matches(track: &RTCRtpCodec, leg: &RTCRtpCodec) -> bool {
    if !track.mime_type.eq_ignore_ascii_case(&leg.mime_type) {
        return false;
    }
    let mime = track.mime_type.to_ascii_lowercase();
    if mime == "video/h264" {
        return fmtp_param(&track.sdp_fmtp_line, "packetization-mode").unwrap_or("0")
            == fmtp_param(&leg.sdp_fmtp_line, "packetization-mode").unwrap_or("0")
            && profile_idc(&track.sdp_fmtp_line) == profile_idc(&leg.sdp_fmtp_line);
    }
    if mime == "video/vp9" {
        return fmtp_param(&track.sdp_fmtp_line, "profile-id").unwrap_or("0")
            == fmtp_param(&leg.sdp_fmtp_line, "profile-id").unwrap_or("0");
    }
    true
}

fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.eq_ignore_ascii_case(key).then_some(v)
    })
}

/// H264 profile_idc and constraint flags (the level is allowed to differ).
fn profile_idc(fmtp: &str) -> Option<String> {
    fmtp_param(fmtp, "profile-level-id").map(|p| p.get(..4).unwrap_or(p).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(mime: &str, fmtp: &str) -> RTCRtpCodec {
        RTCRtpCodec {
            mime_type: mime.into(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: vec![],
        }
    }

    #[test]
    fn h264_profiles_must_match_levels_may_differ() {
        let base = c("video/H264", H264_FMTP);
        let other_level = c("video/h264", "packetization-mode=1;profile-level-id=42e034");
        let high = c("video/H264", "packetization-mode=1;profile-level-id=640c1f");
        let mode0 = c("video/H264", "profile-level-id=42e01f");
        assert!(codec_matches(&base, &other_level));
        assert!(!codec_matches(&base, &high));
        assert!(!codec_matches(&base, &mode0));
        assert!(!codec_matches(&base, &c("video/VP8", "")));
    }

    #[test]
    fn engine_builds() {
        assert!(build_media_engine().is_ok());
    }
}
