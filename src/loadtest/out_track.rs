//! The tracks a synthetic publisher sends: one per audio or video source, three (one per rid
//! layer) for simulcast video, each with its own SSRC, pacing, sequence numbers, timestamps,
//! VP8 picture id and TL0PICIDX, and its sender on the connection.

use super::layers::{layer_bitrate, layer_tag, plain_tag, LAYERS, RIDS};
use crate::rtp::connection::{add_sendonly_track, add_simulcast_track, SendTrack};
use rand::Rng;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpSenderId;
use std::time::{Duration, Instant};

/// What a synthetic participant publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishSpec {
    pub audio: bool,
    pub video: bool,
    /// Video bitrate in bits per second (one packet per frame, `video_packet_size` bytes).
    pub video_bitrate: u64,
    pub video_packet_size: usize,
    /// Send video as three rid layers (see `layers.rs`).
    pub simulcast: bool,
}

impl PublishSpec {
    pub(super) fn video_packet_rate(&self, bitrate: u64) -> f64 {
        (bitrate as f64 / (self.video_packet_size as f64 * 8.0)).clamp(1.0, 20_000.0)
    }
}

/// Opus payload bytes of a synthetic audio packet (video packets are larger).
pub(super) const AUDIO_PAYLOAD: usize = 120;

/// One track (or simulcast layer) a synthetic publisher sends.
pub(super) struct OutTrack {
    pub(super) sender: RTCRtpSenderId,
    pub(super) ssrc: u32,
    pub(super) video: bool,
    pub(super) payload_type: Option<u8>,
    pub(super) seq: u16,
    pub(super) ts: u32,
    pub(super) ts_step: u32,
    pub(super) counter: u32,
    pub(super) tag: u64,
    pub(super) interval: Duration,
    pub(super) next_send: Instant,
    pub(super) keyframe_pending: bool,
    pub(super) last_keyframe: Instant,
    pub(super) picture_id: u16,
    pub(super) size: usize,
    /// The simulcast layer it is (video sent with `--simulcast`).
    pub(super) layer: Option<usize>,
    pub(super) tl0: u8,
    /// A layer's header extensions once negotiated: mid id, rid id, mid.
    pub(super) stamp: Option<(u8, u8, bytes::Bytes)>,
}

/// The tracks of one new audio or video source on `pc` (three layers for simulcast video),
/// named after `peer_id`.
pub(super) fn add(
    pc: &mut RTCPeerConnection,
    peer_id: &str,
    video: bool,
    spec: &PublishSpec,
    now: Instant,
) -> Result<Vec<OutTrack>, String> {
    let mut rng = rand::rng();
    let ssrc: u32 = rng.random();
    let (kind, mime, clock) = if video {
        (RtpCodecKind::Video, MIME_TYPE_VP8, 90_000)
    } else {
        (RtpCodecKind::Audio, MIME_TYPE_OPUS, 48_000)
    };
    let track = SendTrack {
        stream_id: format!("synthetic-{}", peer_id),
        track_id: format!("{}-{}", if video { "video" } else { "audio" }, ssrc),
        label: "synthetic".into(),
        kind,
        ssrc,
        codec: RTCRtpCodec {
            mime_type: mime.into(),
            clock_rate: clock,
            channels: if video { 0 } else { 2 },
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    };
    let simulcast = video && spec.simulcast;
    let ssrcs: Vec<u32> = match simulcast {
        true => (0..LAYERS).map(|_| rng.random()).collect(),
        false => vec![ssrc],
    };
    let sender = if simulcast {
        let layers: Vec<(&str, u32)> = RIDS.iter().copied().zip(ssrcs.clone()).collect();
        add_simulcast_track(pc, track, &layers)?
    } else {
        add_sendonly_track(pc, track)?
    };
    let base_tag: u64 = rng.random();
    let mut out = Vec::new();
    for (i, ssrc) in ssrcs.into_iter().enumerate() {
        let layer = simulcast.then_some(i);
        let rate = match (video, layer) {
            (false, _) => 50.0,
            (true, None) => spec.video_packet_rate(spec.video_bitrate),
            (true, Some(l)) => spec.video_packet_rate(layer_bitrate(spec.video_bitrate, l)),
        };
        out.push(OutTrack {
            sender,
            ssrc,
            video,
            payload_type: None,
            seq: rng.random(),
            ts: rng.random(),
            ts_step: (clock as f64 / rate) as u32,
            counter: 0,
            tag: layer.map_or(plain_tag(base_tag), |l| layer_tag(base_tag, l)),
            interval: Duration::from_secs_f64(1.0 / rate),
            next_send: now,
            keyframe_pending: true,
            last_keyframe: now,
            picture_id: rng.random::<u16>() & 0x7fff,
            size: if video {
                spec.video_packet_size
            } else {
                AUDIO_PAYLOAD
            },
            layer,
            tl0: rng.random(),
            stamp: None,
        });
    }
    Ok(out)
}
