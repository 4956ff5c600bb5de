//! Settings of the test client, the description of a track to publish, and the client's error
//! type. Plain data: nothing here touches the network.

use crate::protocol::{ReceiveCapabilities, TrackKind, TrackSource};
use std::net::IpAddr;
use std::time::Duration;

/// How a client behaves. `Default` suits the integration tests.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Address the client's UDP socket binds to (a concrete address: a wildcard skips loopback).
    pub bind_ip: IpAddr,
    /// Payload type the client registers for Opus.
    pub audio_payload_type: u8,
    /// Payload type the client registers for VP8.
    pub video_payload_type: u8,
    /// Register RTX (`video/rtx`, PT = video PT + 1) and send retransmissions on it.
    pub rtx: bool,
    /// Publish on send-only transceivers (`addTransceiver(track, {direction: "sendonly"})`)
    /// instead of send-recv ones (`addTrack`), so the server cannot reuse their m-lines.
    pub send_only: bool,
    /// Video packets per second (each packet is one frame).
    pub video_packet_rate: u32,
    /// Size of each video RTP payload in bytes.
    pub video_payload_size: usize,
    /// Size of each audio RTP payload in bytes (audio is always 50 packets/s, 20 ms).
    pub audio_payload_size: usize,
    /// A keyframe is sent at least this often (besides start and each PLI/FIR).
    pub keyframe_interval: Duration,
    /// Stop sending while a track is muted (a browser keeps sending silence / black frames,
    /// so the default is to keep sending and let the server stop forwarding).
    pub pause_when_muted: bool,
    /// Keep a hash of every payload sent and received (for byte-identity checks).
    pub record_hashes: bool,
    /// Upper bound of every wait inside the client (join, negotiation, …).
    pub timeout: Duration,
    /// What the `join` declares the client can decode (`receive`); `None`: nothing declared.
    pub receive: Option<ReceiveCapabilities>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            audio_payload_type: 111,
            video_payload_type: 96,
            rtx: true,
            send_only: false,
            video_packet_rate: 50,
            video_payload_size: 1000,
            audio_payload_size: 160,
            keyframe_interval: Duration::from_secs(3),
            pause_when_muted: false,
            record_hashes: true,
            timeout: Duration::from_secs(10),
            receive: None,
        }
    }
}

/// One synthetic track to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackSpec {
    pub kind: TrackKind,
    pub source: TrackSource,
    pub muted: bool,
}

impl TrackSpec {
    pub fn microphone() -> Self {
        Self {
            kind: TrackKind::Audio,
            source: TrackSource::Microphone,
            muted: false,
        }
    }

    pub fn camera() -> Self {
        Self {
            kind: TrackKind::Video,
            source: TrackSource::Camera,
            muted: false,
        }
    }

    pub fn screen() -> Self {
        Self {
            kind: TrackKind::Video,
            source: TrackSource::Screen,
            muted: false,
        }
    }
}

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("server refused: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("the client is closed")]
    Closed,
    #[error("unknown track: {0}")]
    UnknownTrack(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Result alias of the client.
pub type ClientResult<T> = Result<T, ClientError>;
