//! One synthetic published track: its webrtc local track and transceiver, the task that sends
//! probe payloads at the configured rate (VP8 keyframes on start, on each PLI/FIR and every
//! `keyframe_interval`), and the task that counts the RTCP feedback the server sends about it.
//! Packets are only sent (and counted) once the track's offer was answered and the connection
//! is up, with the payload type negotiated on that leg. This module does no signaling.

use super::options::{ClientOptions, ClientResult, TrackSpec};
use super::stats::PublishedTrackSnapshot;
use super::Shared;
use crate::loadtest::payload::{self, PayloadCodec};
use crate::protocol::{TrackKind, TrackSource};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};
use webrtc::rtp_transceiver::RtpTransceiver;

/// A track this client publishes.
pub(crate) struct PublishedTrack {
    pub tag: u64,
    pub spec: TrackSpec,
    pub local: Arc<TrackLocalStaticRTP>,
    pub transceiver: Arc<dyn RtpTransceiver>,
    /// Counters and hashes; also the base of [`PublishedTrackSnapshot`].
    pub state: Mutex<PublishedTrackSnapshot>,
    /// Set once an answer covering this track was applied.
    pub negotiated: AtomicBool,
    pub payload_type: AtomicU8,
    pub keyframe_wanted: AtomicBool,
    pub muted: AtomicBool,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn mime_and_fmtp(kind: TrackKind) -> (&'static str, u32, u16, &'static str) {
    match kind {
        TrackKind::Audio => (MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
        TrackKind::Video => (MIME_TYPE_VP8, 90_000, 0, ""),
    }
}

fn source_name(source: TrackSource) -> &'static str {
    match source {
        TrackSource::Camera => "camera",
        TrackSource::Microphone => "microphone",
        TrackSource::Screen => "screen",
    }
}

impl PublishedTrack {
    /// Adds a transceiver for `spec` to `pc` (no negotiation yet). Like a browser's `addTrack`
    /// it is send-recv (so the server may reuse its m-line to send us another track) unless
    /// [`ClientOptions::send_only`] is set.
    pub async fn add(
        pc: &Arc<dyn PeerConnection>,
        options: &ClientOptions,
        spec: TrackSpec,
        stream_id: &str,
    ) -> ClientResult<Arc<Self>> {
        let tag = rand::random::<u64>();
        let local_track_id = format!("{}-{:012x}", source_name(spec.source), tag >> 16);
        let ssrc = rand::random::<u32>();
        let (mime, clock_rate, channels, fmtp) = mime_and_fmtp(spec.kind);
        let (kind, payload_type) = match spec.kind {
            TrackKind::Audio => (RtpCodecKind::Audio, options.audio_payload_type),
            TrackKind::Video => (RtpCodecKind::Video, options.video_payload_type),
        };
        let rtx = (options.rtx && spec.kind == TrackKind::Video).then(|| RTCRtpRtxParameters {
            ssrc: rand::random::<u32>(),
        });
        let encoding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx,
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        };
        let track = MediaStreamTrack::new(
            stream_id.to_owned(),
            local_track_id.clone(),
            format!("{} {}", stream_id, source_name(spec.source)),
            kind,
            vec![encoding],
        );
        let local = Arc::new(TrackLocalStaticRTP::new(track));
        let direction = if options.send_only {
            RTCRtpTransceiverDirection::Sendonly
        } else {
            RTCRtpTransceiverDirection::Sendrecv
        };
        let init = RTCRtpTransceiverInit {
            direction,
            streams: vec![stream_id.to_owned()],
            send_encodings: vec![],
        };
        let transceiver = pc
            .add_transceiver_from_track(local.clone(), Some(init))
            .await?;
        let state = PublishedTrackSnapshot {
            tag,
            kind: spec.kind,
            source: spec.source,
            local_track_id,
            track_id: None,
            mid: None,
            ssrc,
            payload_type,
            sent: 0,
            bytes_sent: 0,
            keyframes_sent: 0,
            plis: 0,
            firs: 0,
            nacks: 0,
            write_errors: 0,
            muted: spec.muted,
            unpublished: false,
            hashes: Default::default(),
        };
        Ok(Arc::new(Self {
            tag,
            spec,
            local,
            transceiver,
            state: Mutex::new(state),
            negotiated: AtomicBool::new(false),
            payload_type: AtomicU8::new(payload_type),
            keyframe_wanted: AtomicBool::new(true),
            muted: AtomicBool::new(spec.muted),
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// Starts the sending and RTCP-reading tasks.
    pub fn start(self: &Arc<Self>, options: &ClientOptions, shared: Weak<Shared>) {
        let send = tokio::spawn(send_loop(self.clone(), options.clone(), shared));
        let rtcp = tokio::spawn(rtcp_loop(self.clone()));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(send);
            tasks.push(rtcp);
        }
    }

    /// Stops both tasks (before the track is removed from the connection).
    pub fn stop(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }

    /// Records the negotiated payload type and mid once an answer covering the track applied.
    pub async fn mark_negotiated(&self) {
        let (mime, ..) = mime_and_fmtp(self.spec.kind);
        let mid = self.transceiver.mid().await.ok().flatten();
        if let Ok(Some(sender)) = self.transceiver.sender().await {
            if let Ok(params) = sender.get_parameters().await {
                let negotiated = params
                    .rtp_parameters
                    .codecs
                    .iter()
                    .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                    .map(|c| c.payload_type);
                if let Some(pt) = negotiated {
                    self.payload_type.store(pt, Ordering::Release);
                }
            }
        }
        if let Ok(mut state) = self.state.lock() {
            state.mid = mid;
            state.payload_type = self.payload_type.load(Ordering::Acquire);
        }
        self.negotiated.store(true, Ordering::Release);
    }

    pub fn snapshot(&self) -> Option<PublishedTrackSnapshot> {
        self.state.lock().ok().map(|s| s.clone())
    }
}

/// Whether packets written now would reach the server.
fn ready(track: &PublishedTrack, shared: &Weak<Shared>) -> bool {
    track.negotiated.load(Ordering::Acquire)
        && shared
            .upgrade()
            .is_some_and(|s| *s.connection.borrow() == RTCPeerConnectionState::Connected)
}

/// Per-track sending state.
struct Cadence {
    seq: u16,
    timestamp: u32,
    counter: u32,
    picture_id: u16,
    last_keyframe: Option<Instant>,
}

async fn send_loop(track: Arc<PublishedTrack>, options: ClientOptions, shared: Weak<Shared>) {
    let video = track.spec.kind == TrackKind::Video;
    let rate = if video {
        options.video_packet_rate.clamp(1, 10_000)
    } else {
        50
    };
    let ts_step = if video { 90_000 / rate } else { 960 };
    let size = if video {
        options.video_payload_size
    } else {
        options.audio_payload_size
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut c = Cadence {
        seq: rand::random(),
        timestamp: rand::random(),
        counter: 0,
        picture_id: rand::random::<u16>() & 0x7FFF,
        last_keyframe: None,
    };
    loop {
        ticker.tick().await;
        c.timestamp = c.timestamp.wrapping_add(ts_step);
        let paused = options.pause_when_muted && track.muted.load(Ordering::Acquire);
        if paused || !ready(&track, &shared) {
            continue;
        }
        let keyframe = video
            && (track.keyframe_wanted.swap(false, Ordering::AcqRel)
                || c.last_keyframe
                    .is_none_or(|at| at.elapsed() >= options.keyframe_interval));
        let codec = if video {
            PayloadCodec::Vp8 {
                picture_id: c.picture_id,
                keyframe,
            }
        } else {
            PayloadCodec::Opus
        };
        let body = payload::build(codec, track.tag, c.counter, payload::unix_micros(), size);
        let hash = options.record_hashes.then(|| payload::hash(&body));
        let len = body.len() as u64;
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                marker: video,
                payload_type: track.payload_type.load(Ordering::Acquire),
                sequence_number: c.seq,
                timestamp: c.timestamp,
                ssrc: track.state.lock().map(|s| s.ssrc).unwrap_or_default(),
                ..Default::default()
            },
            payload: body,
        };
        let result = track.local.write_rtp(packet).await;
        let Ok(mut state) = track.state.lock() else {
            return;
        };
        if result.is_err() {
            state.write_errors += 1;
            continue;
        }
        state.sent += 1;
        state.bytes_sent += len;
        if let Some(hash) = hash {
            state.hashes.insert(c.counter, hash);
        }
        if keyframe {
            state.keyframes_sent += 1;
            c.last_keyframe = Some(Instant::now());
        }
        c.counter = c.counter.wrapping_add(1);
        c.seq = c.seq.wrapping_add(1);
        c.picture_id = (c.picture_id + 1) & 0x7FFF;
    }
}

/// Counts PLI/FIR/NACK the server sends about this track; a PLI or FIR asks for a keyframe.
async fn rtcp_loop(track: Arc<PublishedTrack>) {
    loop {
        match track.local.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                let Ok(mut state) = track.state.lock() else {
                    return;
                };
                for packet in &packets {
                    let any = (**packet).as_any();
                    if any.is::<PictureLossIndication>() {
                        state.plis += 1;
                        track.keyframe_wanted.store(true, Ordering::Release);
                    } else if any.is::<FullIntraRequest>() {
                        state.firs += 1;
                        track.keyframe_wanted.store(true, Ordering::Release);
                    } else if any.is::<TransportLayerNack>() {
                        state.nacks += 1;
                    }
                }
            }
            Some(_) => {}
            // Not bound (yet, or any more): look again shortly.
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
