//! The one builder of sans-IO `rtc` PeerConnections: a [`Recipe`] says which codecs (with or
//! without RTX), header extensions, RTCP feedback, NACK history, TWCC feedback and application
//! interceptors a connection gets, which ICE role it plays and which host candidates it
//! advertises; [`Recipe::build`] makes it. The SFU's legs (`media/peer.rs`) and the load
//! generator's synthetic peers (`loadtest/synthetic.rs`) both come from here, and both publish
//! through [`add_sendonly_track`]. The async test
//! client (`webrtc` crate) cannot use it, but shares the codec constants below.

use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::shared::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A full-ICE client's consent check interval (load generator, test clients).
pub const FULL_ICE_KEEPALIVE: Duration = Duration::from_secs(1);
/// How long a full-ICE client hears no STUN response before it calls itself disconnected.
pub const FULL_ICE_DISCONNECTED: Duration = Duration::from_secs(10);

/// Opus payload type every Chorus endpoint uses.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// VP8 payload type every Chorus endpoint uses (its RTX is one above).
pub const VP8_PAYLOAD_TYPE: u8 = 96;
/// Opus format parameters (10 ms minimum packet time, in-band FEC).
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";
/// RTP clock rates.
pub const OPUS_CLOCK_RATE: u32 = 48_000;
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// A codec at a payload type.
pub fn codec(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
    pt: u8,
) -> RTCRtpCodecParameters {
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

/// Opus at [`OPUS_PAYLOAD_TYPE`] with `fmtp`.
pub fn opus(fmtp: &str) -> (RTCRtpCodecParameters, RtpCodecKind) {
    let c = codec(MIME_TYPE_OPUS, OPUS_CLOCK_RATE, 2, fmtp, OPUS_PAYLOAD_TYPE);
    (c, RtpCodecKind::Audio)
}

/// VP8 at [`VP8_PAYLOAD_TYPE`].
pub fn vp8() -> (RTCRtpCodecParameters, RtpCodecKind) {
    let c = codec(MIME_TYPE_VP8, VIDEO_CLOCK_RATE, 0, "", VP8_PAYLOAD_TYPE);
    (c, RtpCodecKind::Video)
}

/// The ICE role of a connection.
#[derive(Debug, Clone)]
pub enum Ice {
    /// The server's: ICE-lite with these credentials, DTLS server when answering.
    Lite { ufrag: String, pwd: String },
    /// A client's: full ICE with browser-like check pacing (50 ms, hosts accepted at once),
    /// DTLS client when answering.
    Full,
}

/// Everything that makes a PeerConnection; see the module documentation.
pub struct Recipe {
    /// Codecs to register, in order.
    pub codecs: Vec<(RTCRtpCodecParameters, RtpCodecKind)>,
    /// Register an RTX codec (`apt`) at `pt + 1` after each video codec.
    pub rtx: bool,
    /// Header extensions (uri, kind).
    pub extensions: Vec<(&'static str, RtpCodecKind)>,
    /// RTCP feedback (type, parameter, kind) advertised besides NACK.
    pub feedback: Vec<(&'static str, &'static str, RtpCodecKind)>,
    /// NACK generator and responder keeping this many packets (a power of two); `None`: none.
    pub nack_history: Option<u16>,
    /// Send TWCC feedback for what this connection receives.
    pub twcc_receiver: bool,
    /// The application's interceptors (RTCP tap, counters); sender and receiver reports and
    /// the NACK/TWCC ones above are added to them.
    pub interceptors: Registry,
    pub ice: Ice,
    /// Host candidates this connection advertises.
    pub candidates: Vec<SocketAddr>,
    /// The crypto provider (default: the stack's own).
    pub crypto: Option<Arc<dyn RTCCryptoProvider>>,
    /// The DTLS-SRTP profiles offered, in order (empty: the stack's default list).
    pub srtp_profiles: Vec<SrtpProtectionProfile>,
}

impl Recipe {
    /// A recipe with `codecs`, the ICE role and candidates, sender/receiver reports only.
    pub fn new(
        codecs: Vec<(RTCRtpCodecParameters, RtpCodecKind)>,
        ice: Ice,
        candidates: Vec<SocketAddr>,
    ) -> Self {
        Self {
            codecs,
            rtx: false,
            extensions: Vec::new(),
            feedback: Vec::new(),
            nack_history: None,
            twcc_receiver: false,
            interceptors: Registry::new(),
            ice,
            candidates,
            crypto: None,
            srtp_profiles: Vec::new(),
        }
    }

    fn media_engine(&self) -> Result<MediaEngine, Error> {
        let mut me = MediaEngine::default();
        for (c, kind) in &self.codecs {
            me.register_codec(c.clone(), *kind)?;
            if self.rtx && *kind == RtpCodecKind::Video {
                let clock = c.rtp_codec.clock_rate;
                let apt = format!("apt={}", c.payload_type);
                let rtx = codec(MIME_TYPE_RTX, clock, 0, &apt, c.payload_type + 1);
                me.register_codec(rtx, RtpCodecKind::Video)?;
            }
        }
        for (uri, kind) in &self.extensions {
            let ext = RTCRtpHeaderExtensionCapability {
                uri: (*uri).to_owned(),
            };
            me.register_header_extension(ext, *kind, None)?;
        }
        let nack = self.nack_history.map(|_| [("nack", ""), ("nack", "pli")]);
        let nack = nack
            .into_iter()
            .flatten()
            .map(|(t, p)| (t, p, RtpCodecKind::Video));
        for (typ, parameter, kind) in self.feedback.iter().copied().chain(nack) {
            let feedback = RTCPFeedback {
                typ: typ.to_owned(),
                parameter: parameter.to_owned(),
            };
            me.register_feedback(feedback, kind);
        }
        Ok(me)
    }

    /// Builds the connection; returns it with the candidates it advertises (to trickle).
    pub fn build(
        self,
        now: Instant,
    ) -> Result<(RTCPeerConnection, Vec<RTCIceCandidateInit>), Error> {
        let media_engine = self.media_engine()?;
        let mut registry = configure_rtcp_reports(self.interceptors);
        if let Some(size) = self.nack_history {
            registry = registry
                .with(
                    Slot::NackResponder,
                    NackResponderBuilder::new().with_size(size).build(),
                )
                .with(Slot::NackGenerator, NackGeneratorBuilder::new().build());
        }
        if self.twcc_receiver {
            registry = registry.with(
                Slot::TwccReceiver,
                rtc::interceptor::TwccReceiverBuilder::new().build(),
            );
        }
        let builder = match self.crypto {
            Some(provider) => SettingEngineBuilder::new().with_crypto_provider(provider),
            None => SettingEngineBuilder::new(),
        };
        let builder = if self.srtp_profiles.is_empty() {
            builder
        } else {
            builder.with_srtp_protection_profiles(self.srtp_profiles)
        };
        let settings = match self.ice {
            Ice::Lite { ufrag, pwd } => builder
                .with_ice_credentials(ufrag, pwd)
                .with_lite(true)
                .with_answering_dtls_role(RTCDtlsRole::Server)
                .build(),
            // Browsers pace connectivity checks at ~50 ms; rtc's 200 ms default would
            // dominate the time to first packet. rtc counts only STUN responses as signs of
            // life (not the media that arrives), so with its 2 s consent checks and 5 s
            // disconnected timeout a leg at 20 % loss flaps to `disconnected` every few
            // seconds: check every second, and call it disconnected after 10 s of silence.
            Ice::Full => builder
                .with_answering_dtls_role(RTCDtlsRole::Client)
                .with_ice_connection_attempts(Some(Duration::from_millis(50)), None)
                .with_ice_timeouts(Some(FULL_ICE_DISCONNECTED), None, Some(FULL_ICE_KEEPALIVE))
                .with_host_acceptance_min_wait(Some(Duration::ZERO))
                .build(),
        };
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(now)?;
        let mut inits = Vec::new();
        for addr in &self.candidates {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()?;
            let init = RTCIceCandidate::from(&candidate).to_json()?;
            pc.add_local_candidate(init.clone())?;
            inits.push(init);
        }
        Ok((pc, inits))
    }
}

/// What a publishing client sends on one new send-only transceiver: its ids (stream, track,
/// label), one SSRC and one codec.
pub struct SendTrack {
    pub stream_id: String,
    pub track_id: String,
    pub label: String,
    pub kind: RtpCodecKind,
    pub ssrc: u32,
    pub codec: RTCRtpCodec,
}

/// Adds `track` to `pc` on a send-only transceiver of its own and returns its sender (the
/// load generator's synthetic publishers and the shard's test clients publish this way).
pub fn add_sendonly_track(
    pc: &mut RTCPeerConnection,
    track: SendTrack,
) -> Result<RTCRtpSenderId, String> {
    let ssrc = track.ssrc;
    add_simulcast_track(pc, track, &[("", ssrc)])
}

/// [`add_sendonly_track`] with one encoding per (rid, SSRC) of `layers` (rid-based
/// simulcast, offered as `a=rid` and `a=simulcast:send` in that order; one layer with an
/// empty rid is a plain track). `track.ssrc` is not used.
pub fn add_simulcast_track(
    pc: &mut RTCPeerConnection,
    track: SendTrack,
    layers: &[(&str, u32)],
) -> Result<RTCRtpSenderId, String> {
    let codings = layers
        .iter()
        .map(|(rid, ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: (*rid).to_owned(),
                ssrc: Some(*ssrc),
                ..Default::default()
            },
            codec: track.codec.clone(),
            ..Default::default()
        })
        .collect();
    let media = MediaStreamTrack::new(
        track.stream_id,
        track.track_id,
        track.label,
        track.kind,
        codings,
    );
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![],
        send_encodings: vec![],
    };
    let id = pc
        .add_transceiver_from_track(media, Some(init))
        .map_err(|e| e.to_string())?;
    pc.rtp_transceiver(id)
        .and_then(|t| t.sender())
        .ok_or_else(|| "transceiver without sender".to_owned())
}
