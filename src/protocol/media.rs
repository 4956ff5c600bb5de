//! Media vocabulary of the SFU protocol v1: tracks as announced to a room, and the requests and
//! events that a client and its media leg exchange over the WebSocket (`offer`, `answer`,
//! `candidate`, `mute`, `subscribe`, `unsubscribe`, `track-published`, ...).

use serde::{Deserialize, Serialize};

use super::errors::MediaErrorCode;

/// Where a published track comes from, as shown to the other participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrackSource {
    #[default]
    Camera,
    Microphone,
    Screen,
}

/// Kind of media a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
}

/// One ICE candidate as browsers produce it (`RTCIceCandidate.toJSON()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// Metadata a client attaches to an `offer` for the tracks it sends: which m-line (`mid`)
/// carries which source, and whether it starts muted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackSourceInfo {
    pub mid: String,
    pub source: TrackSource,
    #[serde(default)]
    pub muted: bool,
}

/// One codec a client can decode, as `RTCRtpReceiver.getCapabilities(kind).codecs` lists it
/// (other fields of that object, such as `clockRate`, are accepted and ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodecCapability {
    /// `audio/opus`, `video/VP8`, `video/H264`, ... (case-insensitive).
    pub mime_type: String,
    /// Format parameters; for H264 they name the profile and packetization mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_fmtp_line: Option<String>,
}

/// What a participant can receive, declared in its `join` (`receive: {codecs}`): every codec it
/// can decode, audio and video. Without it the server assumes the codecs every WebRTC browser
/// must decode (Opus, VP8, H264 constrained baseline), until the client's own SDP says more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReceiveCapabilities {
    pub codecs: Vec<CodecCapability>,
}

/// A track as announced to the room (`track-published`, and inside `joined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    pub peer_id: String,
    pub track_id: String,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub muted: bool,
    /// False when the receiving leg did not negotiate this track's codec.
    pub playable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Codec mime type of the track, e.g. `video/VP8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// The `mid` on the receiving leg that carries this track, once negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// One forwarded track inside a server `offer`: which m-line of the receiving leg carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferedTrack {
    pub mid: String,
    pub peer_id: String,
    pub track_id: String,
}

/// Media requests a client sends over the WebSocket; the session hands them to its media leg.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MediaRequest {
    /// SDP offer from the client (initial publish or renegotiation).
    Offer {
        sdp: String,
        #[serde(default)]
        tracks: Vec<TrackSourceInfo>,
    },
    /// SDP answer to a server offer.
    Answer { sdp: String },
    /// Trickle ICE candidate from the client. A `null`/absent candidate means end of candidates.
    Candidate {
        #[serde(default)]
        candidate: Option<IceCandidate>,
    },
    /// Mute/unmute one of the client's own tracks.
    #[serde(rename_all = "camelCase")]
    Mute { track_id: String, muted: bool },
    /// Receive these tracks (by default every track is subscribed).
    #[serde(rename_all = "camelCase")]
    Subscribe { track_ids: Vec<String> },
    /// Stop receiving these tracks.
    #[serde(rename_all = "camelCase")]
    Unsubscribe { track_ids: Vec<String> },
    /// The size the client renders a received video track at (CSS pixels times the device
    /// pixel ratio), or the highest simulcast layer it wants (`layer`, 0 the lowest; it wins
    /// over the size). Without either the hint is cleared (the top layer).
    #[serde(rename_all = "camelCase")]
    VideoSize {
        track_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layer: Option<u8>,
    },
}

/// Messages the media engine sends to one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MediaEvent {
    /// Server SDP offer (subscriptions changed). `tracks` maps each m-line (`mid`) that carries
    /// a forwarded track to that track, so clients can label what `ontrack` gives them.
    Offer {
        sdp: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tracks: Vec<OfferedTrack>,
    },
    /// Server SDP answer to the client's offer.
    Answer { sdp: String },
    /// Server ICE candidate.
    Candidate { candidate: IceCandidate },
    /// A track became available in the room.
    TrackPublished(TrackInfo),
    /// A track left the room.
    #[serde(rename_all = "camelCase")]
    TrackUnpublished { peer_id: String, track_id: String },
    /// A participant muted or unmuted a track.
    #[serde(rename = "mute", rename_all = "camelCase")]
    Muted {
        peer_id: String,
        track_id: String,
        muted: bool,
    },
    /// A media request failed; the session goes on.
    Error {
        code: MediaErrorCode,
        message: String,
    },
    /// Who speaks in the room now, loudest first (at most 3; empty: nobody). Sent to every
    /// member when the list changes, at most 4 times per second per room.
    ActiveSpeakers { speakers: Vec<ActiveSpeaker> },
}

/// One entry of `active-speakers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSpeaker {
    pub peer_id: String,
    /// Mean loudness over the last ~500 ms, 0.0 (silence) to 1.0 (0 dBov), two decimals.
    pub level: f64,
}
