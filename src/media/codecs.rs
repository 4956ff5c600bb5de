//! The codecs and header extensions Chorus negotiates (Opus; VP8, VP9, H264 packetization-mode 1
//! 42e01f, AV1, each with RTX) and the interceptor chain of every server leg, as the
//! [`Recipe`] the leg is built from. Codec
//! compatibility between a publisher and a subscriber leg is decided here.

use crate::rtp::connection::{
    codec, opus, Ice, Recipe, OPUS_FMTP, VIDEO_CLOCK_RATE, VP8_PAYLOAD_TYPE,
};
use crate::rtp::pass_through::PassThrough;
use crate::rtp::rtcp_tap::{feedback_and_reports, RtcpTap, RTCP_TAP_SLOT};
use crate::rtp::twcc_route::{TwccRoute, TWCC_ROUTE_SLOT};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sdp::extmap::{
    ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, SDES_MID_URI, SDES_REPAIR_RTP_STREAM_ID_URI,
    SDES_RTP_STREAM_ID_URI, TRANSPORT_CC_URI, VIDEO_ORIENTATION_URI,
};
use std::net::SocketAddr;

/// Packets of history the stack keeps per sending stream to answer NACKs (a power of two)
/// when every packet goes through it (`--fast-path false`).
pub const NACK_CACHE_PACKETS: u16 = 512;
/// The same with the fast path on: its legs are answered from the publication's cache
/// (`packet_cache.rs`) and the stack's buffer only serves a leg whose SRTP profile keeps it
/// on the slow path. 512 slots cost ~60 KiB per video leg even when empty.
pub const NACK_CACHE_PACKETS_FAST: u16 = 64;

/// The DTLS-SRTP profiles a server leg offers: the two the fast path protects itself
/// (`rtp::leg_srtp`). A client picks by its own order (the server, DTLS server, takes the
/// client's first it supports): webrtc-rs and aiortc AES-128-GCM, Chromium AES-CM-80. Not
/// offered: AES-256-GCM (Chromium would take it only if CM were missing) and AES-CM-32, whose
/// shorter tag the key tap could not tell from AES-CM-80's (`rtp::key_tap`); every WebRTC
/// endpoint supports AES-CM-80 (RFC 8827 §6.5).
pub const SERVER_SRTP_PROFILES: [SrtpProtectionProfile; 2] = [
    SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
    SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
];

/// The one H264 format the server negotiates (constrained baseline, packetization-mode 1).
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Mime types (lower case) the SFU forwards.
const FORWARDABLE: [&str; 5] = [
    "audio/opus",
    "video/vp8",
    "video/vp9",
    "video/h264",
    "video/av1",
];

/// The recipe of a server leg: Chorus' codecs (each video codec with RTX) and extensions,
/// transport-cc and FIR feedback, NACK generator + responder, sender and receiver reports, TWCC
/// feedback toward publishers, the tap that hands keyframe requests and reports to the shard,
/// and the wire-side counter of NACKs sent and retransmissions; ICE-lite with `ufrag`/`pwd`.
pub fn server_recipe(
    ufrag: &str,
    pwd: &str,
    candidates: &[SocketAddr],
    nack_history: u16,
) -> Recipe {
    let codecs = server_codecs();
    let ice = Ice::Lite {
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
    };
    let mut recipe = Recipe::new(codecs, ice, candidates.to_vec());
    recipe.rtx = true;
    recipe.extensions = vec![
        (SDES_MID_URI, RtpCodecKind::Audio),
        (SDES_MID_URI, RtpCodecKind::Video),
        (AUDIO_LEVEL_URI, RtpCodecKind::Audio),
        (ABS_SEND_TIME_URI, RtpCodecKind::Audio),
        (ABS_SEND_TIME_URI, RtpCodecKind::Video),
        (TRANSPORT_CC_URI, RtpCodecKind::Audio),
        (TRANSPORT_CC_URI, RtpCodecKind::Video),
        (VIDEO_ORIENTATION_URI, RtpCodecKind::Video),
        // Simulcast: the stack tells a publisher's rid streams apart by these.
        (SDES_RTP_STREAM_ID_URI, RtpCodecKind::Video),
        (SDES_REPAIR_RTP_STREAM_ID_URI, RtpCodecKind::Video),
    ];
    recipe.feedback = vec![
        ("transport-cc", "", RtpCodecKind::Audio),
        ("transport-cc", "", RtpCodecKind::Video),
        ("ccm", "fir", RtpCodecKind::Video),
    ];
    // The retransmission cache holds packet headers per leg (payloads are shared with the
    // publisher's packet); 512 packets is several seconds of video, far beyond any NACK's
    // useful life, at half the default's memory.
    recipe.nack_history = Some(nack_history);
    recipe.twcc_receiver = true;
    recipe.srtp_profiles = SERVER_SRTP_PROFILES.to_vec();
    recipe.interceptors = Registry::new()
        .with(
            Slot::from(RTCP_TAP_SLOT),
            RtcpTap::new(feedback_and_reports),
        )
        .with(
            Slot::from(TWCC_ROUTE_SLOT),
            PassThrough::new(TwccRoute::default()),
        )
        .with(
            Slot::from(super::stats::wire::WIRE_COUNTER_SLOT),
            PassThrough::new(super::stats::wire::WireCounter),
        );
    recipe
}

/// The codecs of a server leg (RTX excluded), at the leg's payload types: Opus, then VP8, VP9
/// profile 0, H264 packetization-mode 1 42e01f and AV1.
pub fn server_codecs() -> Vec<(RTCRtpCodecParameters, RtpCodecKind)> {
    let video = [
        (MIME_TYPE_VP8, "", VP8_PAYLOAD_TYPE),
        (MIME_TYPE_VP9, "profile-id=0", 98),
        (MIME_TYPE_H264, H264_FMTP, 102),
        (MIME_TYPE_AV1, "", 45),
    ];
    let mut codecs = vec![opus(OPUS_FMTP)];
    for (mime, fmtp, pt) in video {
        codecs.push((
            codec(mime, VIDEO_CLOCK_RATE, 0, fmtp, pt),
            RtpCodecKind::Video,
        ));
    }
    codecs
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
    fn server_leg_builds() {
        let candidates = ["127.0.0.1:40000".parse().unwrap()];
        let recipe = server_recipe(
            "ufrag",
            "password-of-24-characters",
            &candidates,
            NACK_CACHE_PACKETS,
        );
        let (_, advertised) = recipe.build(std::time::Instant::now()).expect("builds");
        assert_eq!(advertised.len(), 1);
    }
}
