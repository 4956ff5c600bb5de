//! Builds the client's single webrtc PeerConnection (Opus + VP8 [+ RTX], default interceptors,
//! TWCC sender so the server gets transport-cc, the RTCP tap, mDNS off, UDP bound to a concrete
//! address through the gated runtime) and handles its events: local ICE candidates go out over
//! the WebSocket, each remote track gets its own reading task (on_track runs inside the
//! connection's event loop and must return at once). It never decides when to negotiate.

use super::gate::{GatedRuntime, Silence};
use super::options::{ClientOptions, ClientResult};
use super::stats::ReceiveRecorder;
use super::Shared;
use crate::protocol::{IceCandidate, TrackKind};
use crate::rtp::rtcp_tap::{feedback, RtcpTap, RTCP_TAP_SLOT};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc,
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCPeerConnectionIceEvent, RTCPeerConnectionState, Registry,
    SettingEngineBuilder,
};

/// One remote track being received.
pub(crate) struct ReceivedTrack {
    pub recorder: Mutex<ReceiveRecorder>,
    pub remote: Arc<dyn TrackRemote>,
    /// SSRC announced when the track opened (target of NACK/PLI).
    pub media_ssrc: std::sync::atomic::AtomicU32,
}

/// Opus, VP8 and (optionally) RTX for VP8, at the configured payload types.
fn media_engine(options: &ClientOptions) -> ClientResult<MediaEngine> {
    let mut engine = MediaEngine::default();
    let codec = |mime: &str, clock_rate, channels, fmtp: String, feedback| RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp,
        rtcp_feedback: feedback,
    };
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec(
                MIME_TYPE_OPUS,
                48_000,
                2,
                "minptime=10;useinbandfec=1".into(),
                vec![],
            ),
            payload_type: options.audio_payload_type,
        },
        RtpCodecKind::Audio,
    )?;
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let video_feedback = vec![
        feedback("ccm", "fir"),
        feedback("nack", ""),
        feedback("nack", "pli"),
    ];
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec(MIME_TYPE_VP8, 90_000, 0, String::new(), video_feedback),
            payload_type: options.video_payload_type,
        },
        RtpCodecKind::Video,
    )?;
    if options.rtx {
        let apt = options.video_payload_type;
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec(MIME_TYPE_RTX, 90_000, 0, format!("apt={apt}"), vec![]),
                payload_type: apt.wrapping_add(1),
            },
            RtpCodecKind::Video,
        )?;
    }
    Ok(engine)
}

/// Builds the PeerConnection; its events go to `shared` (held weakly: the connection must not
/// keep the client alive).
pub(crate) async fn build(
    options: &ClientOptions,
    silence: Silence,
    shared: Weak<Shared>,
) -> ClientResult<Arc<dyn PeerConnection>> {
    let mut engine = media_engine(options)?;
    // The default set (NACK, reports, simulcast header extensions) with the full TWCC pair
    // instead of its receiver-only half, so that our packets carry transport-cc numbers.
    let registry = configure_nack(Registry::new(), &mut engine);
    configure_simulcast_extension_headers(&mut engine)?;
    let registry = configure_twcc(registry, &mut engine)?;
    let registry = configure_rtcp_reports(registry);
    let registry = registry.with(Slot::from(RTCP_TAP_SLOT), RtcpTap::new(feedback));
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { shared }))
        .with_runtime(Arc::new(GatedRuntime::new(silence)))
        .with_udp_addrs(vec![SocketAddr::new(options.bind_ip, 0)])
        .build()
        .await?;
    Ok(Arc::new(pc))
}

struct Handler {
    shared: Weak<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let (Some(shared), Ok(init)) = (self.shared.upgrade(), event.candidate.to_json()) else {
            return;
        };
        shared.send_local_candidate(IceCandidate {
            candidate: init.candidate,
            sdp_mid: None,
            sdp_m_line_index: init.sdp_mline_index,
            username_fragment: init.username_fragment,
        });
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if let Some(shared) = self.shared.upgrade() {
            shared.connection.send_replace(state);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = self.shared.clone();
        tokio::spawn(receive(shared, track));
    }
}

/// Reads one remote track until it ends, recording every packet.
async fn receive(shared: Weak<Shared>, remote: Arc<dyn TrackRemote>) {
    let Some(entry) = register_track(&shared, &remote).await else {
        return;
    };
    while let Some(event) = remote.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                if let Ok(mut rec) = entry.recorder.lock() {
                    rec.record(&pkt, Instant::now());
                }
            }
            TrackRemoteEvent::OnOpen(init) => {
                entry
                    .media_ssrc
                    .store(init.ssrc, std::sync::atomic::Ordering::Release);
                let mid = match shared.upgrade() {
                    Some(s) => find_mid(&s, init.receiver_id).await,
                    None => None,
                };
                if let (Some(mid), Ok(mut rec)) = (mid, entry.recorder.lock()) {
                    rec.snap.mid = Some(mid);
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    if let Ok(mut rec) = entry.recorder.lock() {
        rec.snap.ended = true;
    };
}

/// Adds a received-track entry to the client, labelled with the track's msid and kind.
async fn register_track(
    shared: &Weak<Shared>,
    remote: &Arc<dyn TrackRemote>,
) -> Option<Arc<ReceivedTrack>> {
    let kind = match remote.kind().await {
        RtpCodecKind::Audio => Some(TrackKind::Audio),
        RtpCodecKind::Video => Some(TrackKind::Video),
        _ => None,
    };
    let stream_id = remote.stream_id().await;
    let track_id = remote.track_id().await;
    let shared = shared.upgrade()?;
    let mut received = shared.received.lock().ok()?;
    let mut recorder = ReceiveRecorder::new(received.len(), shared.options.record_hashes);
    recorder.snap.kind = kind;
    recorder.snap.msid_stream_id = stream_id;
    recorder.snap.msid_track_id = track_id;
    let entry = Arc::new(ReceivedTrack {
        recorder: Mutex::new(recorder),
        remote: remote.clone(),
        media_ssrc: std::sync::atomic::AtomicU32::new(0),
    });
    received.push(entry.clone());
    Some(entry)
}

/// The mid of the transceiver whose receiver is `receiver_id`.
async fn find_mid(shared: &Shared, receiver_id: RTCRtpReceiverId) -> Option<String> {
    let pc = shared.pc.get()?;
    for transceiver in pc.get_transceivers().await {
        let Ok(Some(receiver)) = transceiver.receiver().await else {
            continue;
        };
        if receiver.id() == receiver_id {
            return transceiver.mid().await.ok().flatten();
        }
    }
    None
}
