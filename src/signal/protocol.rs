//! Wire types of the `/ws` signaling protocol: the SFU protocol v1 (JSON text frames with a
//! `type` field) and the mesh-compatible frames of the seeds. This module only describes and
//! (de)serializes messages; it never routes them. Mesh frames that carry a `to` field are relayed
//! byte-for-byte by the room layer and therefore have no typed form here beyond what routing needs.

use serde::{Deserialize, Serialize};

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
    Error { code: String, message: String },
}

// ---------------------------------------------------------------------------------------------
// SFU protocol v1: room membership, chat, errors (everything that is not media).
// ---------------------------------------------------------------------------------------------

/// `join`, in both of its forms. A `join` that carries `room` or `name` is an SFU join; one that
/// carries only `peerId` is a mesh join (seed 002). The session decides which; this type only
/// holds the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Access token (HS256 JWT); required when the server runs with an auth secret, unless the
    /// WebSocket URL already carried a valid `?token=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Mesh (seed 002) only: the peer ID the client chose for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
}

impl JoinRequest {
    /// True for the SFU form of `join` (it names a room or a display name).
    pub fn is_sfu(&self) -> bool {
        self.room.is_some() || self.name.is_some()
    }
}

/// `chat` from a client: one text message to everyone in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub text: String,
}

/// Everything an SFU client may send, typed. Mesh clients' frames are not parsed into this: the
/// room relays them unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Join(JoinRequest),
    Chat(ChatRequest),
    Leave,
    Media(MediaRequest),
}

/// The message types a client may send, by wire name; anything else is `unknown-type`.
pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "join",
    "chat",
    "leave",
    "offer",
    "answer",
    "candidate",
    "mute",
    "subscribe",
    "unsubscribe",
];

/// Why a client frame could not be understood. Each maps to a stable wire error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("frame is not valid JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    BadMessage(String),
    #[error("unknown message type `{0}`")]
    UnknownType(String),
}

impl ParseError {
    /// The wire error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::BadJson(_) => ErrorCode::BadJson,
            ParseError::BadMessage(_) => ErrorCode::BadMessage,
            ParseError::UnknownType(_) => ErrorCode::UnknownType,
        }
    }
}

/// A client frame parsed as far as routing needs: valid JSON, an object, with a string `type`.
/// Mesh frames stop here (plus [`RawFrame::to`]); SFU frames go on to [`RawFrame::into_message`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    pub kind: String,
    value: serde_json::Value,
}

impl RawFrame {
    /// Parses one text frame. Fails with `bad-json` or `bad-message`, never panics.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ParseError::BadJson(e.to_string()))?;
        let kind = match value.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(_) => return Err(ParseError::BadMessage("`type` must be a string".into())),
            None if value.is_object() => {
                return Err(ParseError::BadMessage("missing field `type`".into()))
            }
            None => {
                return Err(ParseError::BadMessage(
                    "a message must be a JSON object".into(),
                ))
            }
        };
        Ok(Self { kind, value })
    }

    /// The `to` field of a mesh frame: `Ok(None)` when absent or null, an error when it is not a
    /// string.
    pub fn to(&self) -> Result<Option<&str>, ParseError> {
        match self.value.get("to") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(to)) => Ok(Some(to)),
            Some(_) => Err(ParseError::BadMessage("`to` must be a string".into())),
        }
    }

    /// Whether the frame has a non-null field `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.value.get(name).is_some_and(|v| !v.is_null())
    }

    /// Types the frame as an SFU client message.
    pub fn into_message(self) -> Result<ClientMessage, ParseError> {
        fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ParseError> {
            serde_json::from_value(v).map_err(|e| ParseError::BadMessage(e.to_string()))
        }
        match self.kind.as_str() {
            "join" => typed(self.value).map(ClientMessage::Join),
            "chat" => typed(self.value).map(ClientMessage::Chat),
            "leave" => Ok(ClientMessage::Leave),
            "offer" | "answer" | "candidate" | "mute" | "subscribe" | "unsubscribe" => {
                typed(self.value).map(ClientMessage::Media)
            }
            _ => Err(ParseError::UnknownType(self.kind)),
        }
    }
}

/// One other participant, as listed in `joined` and announced by `participant-joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    pub peer_id: String,
    pub name: String,
}

/// One chat message as the room stores and delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Per-room sequence number, increasing from 1.
    pub id: u64,
    /// Peer ID of the sender.
    pub from: String,
    /// Display name of the sender.
    pub name: String,
    pub text: String,
    /// Server time of receipt, Unix milliseconds.
    pub ts: u64,
}

/// An ICE server the client should use (`RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Stable error codes of `error` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// Valid JSON but not a valid message: not an object, missing field, wrong type.
    BadMessage,
    /// A `type` the server does not know.
    UnknownType,
    /// Binary frames are not part of the protocol.
    BinaryUnsupported,
    /// Chat text over the limit.
    TooLong,
    /// Over the per-connection message rate.
    RateLimited,
    /// The token's grants do not allow this.
    Forbidden,
    /// The server requires a token and none was given.
    AuthRequired,
    /// The token is malformed or its signature is wrong.
    BadToken,
    /// The token has expired.
    TokenExpired,
    /// The token is for another room.
    WrongRoom,
    /// Room name not 1–64 of `[A-Za-z0-9_.-]`.
    BadRoom,
    /// Display name empty, over 64 characters or with control characters.
    BadName,
    /// Peer ID not 1–64 of `[A-Za-z0-9_-]`.
    BadPeerId,
    /// Another member of the room already has this peer ID.
    IdTaken,
    /// `to` names no peer of this room.
    UnknownPeer,
    /// The server is at `--max-rooms`.
    TooManyRooms,
    /// The message needs a joined session.
    NotJoined,
    /// A second `join` on a joined session.
    AlreadyJoined,
    /// The server could not keep up with this connection's outgoing messages.
    SlowConsumer,
    /// The server is draining (shutting down gracefully): no new joins.
    ServerDraining,
    /// An operator removed this participant (admin API); the connection is closed.
    Kicked,
    /// An operator closed the room (admin API); the connection is closed.
    RoomClosed,
}

impl ErrorCode {
    /// Every code, for documentation checks.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadJson,
        ErrorCode::BadMessage,
        ErrorCode::UnknownType,
        ErrorCode::BinaryUnsupported,
        ErrorCode::TooLong,
        ErrorCode::RateLimited,
        ErrorCode::Forbidden,
        ErrorCode::AuthRequired,
        ErrorCode::BadToken,
        ErrorCode::TokenExpired,
        ErrorCode::WrongRoom,
        ErrorCode::BadRoom,
        ErrorCode::BadName,
        ErrorCode::BadPeerId,
        ErrorCode::IdTaken,
        ErrorCode::UnknownPeer,
        ErrorCode::TooManyRooms,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::SlowConsumer,
        ErrorCode::ServerDraining,
        ErrorCode::Kicked,
        ErrorCode::RoomClosed,
    ];

    /// The code as it appears on the wire (and as a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad-json",
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::BinaryUnsupported => "binary-unsupported",
            ErrorCode::TooLong => "too-long",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AuthRequired => "auth-required",
            ErrorCode::BadToken => "bad-token",
            ErrorCode::TokenExpired => "token-expired",
            ErrorCode::WrongRoom => "wrong-room",
            ErrorCode::BadRoom => "bad-room",
            ErrorCode::BadName => "bad-name",
            ErrorCode::BadPeerId => "bad-peer-id",
            ErrorCode::IdTaken => "id-taken",
            ErrorCode::UnknownPeer => "unknown-peer",
            ErrorCode::TooManyRooms => "too-many-rooms",
            ErrorCode::NotJoined => "not-joined",
            ErrorCode::AlreadyJoined => "already-joined",
            ErrorCode::SlowConsumer => "slow-consumer",
            ErrorCode::ServerDraining => "server-draining",
            ErrorCode::Kicked => "kicked",
            ErrorCode::RoomClosed => "room-closed",
        }
    }
}

/// Messages the server sends: SFU protocol v1 and the mesh-compatible notices. Media events
/// ([`MediaEvent`]) share the socket but are their own type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Reply to an SFU `join`: who you are and who else is here.
    #[serde(rename_all = "camelCase")]
    Joined {
        peer_id: String,
        room: String,
        participants: Vec<ParticipantInfo>,
        chat: Vec<ChatMessage>,
        ice_servers: Vec<IceServer>,
    },
    /// Another SFU participant joined the room.
    #[serde(rename_all = "camelCase")]
    ParticipantJoined { peer_id: String, name: String },
    /// An SFU participant left the room.
    #[serde(rename_all = "camelCase")]
    ParticipantLeft { peer_id: String },
    /// A chat message, delivered to everyone in the room including its sender.
    Chat(ChatMessage),
    /// Acknowledges `leave`; the session may `join` again.
    Left { room: String },
    /// The room is at `--max-participants`; nothing changed.
    #[serde(rename_all = "camelCase")]
    RoomFull {
        room: String,
        max_participants: usize,
    },
    /// A request failed; the connection stays open.
    Error { code: ErrorCode, message: String },
    /// Mesh (seed 000): the server-generated ID of a client that did not `join`. `id` and
    /// `peerId` carry the same value.
    #[serde(rename_all = "camelCase")]
    ClientId { id: String, peer_id: String },
    /// Mesh: the other mesh peers of the room, in join order.
    PeerList { peers: Vec<String> },
    /// Mesh: another mesh peer joined.
    #[serde(rename_all = "camelCase")]
    PeerJoined { peer_id: String },
    /// Mesh: a mesh peer left.
    #[serde(rename_all = "camelCase")]
    PeerLeft { peer_id: String },
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (no maps with non-string keys, no
        // user-defined Serialize impls); fall back to an internal error frame regardless.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"bad-message","message":"internal serialization error"}"#
                .to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_strings_match_the_wire_form() {
        for code in ErrorCode::ALL {
            let wire = serde_json::to_value(code).expect("serialize");
            assert_eq!(wire, serde_json::Value::from(code.as_str()));
        }
    }

    #[test]
    fn raw_frames_classify_bad_input() {
        assert!(matches!(
            RawFrame::parse("nope"),
            Err(ParseError::BadJson(_))
        ));
        assert!(matches!(
            RawFrame::parse("[]"),
            Err(ParseError::BadMessage(_))
        ));
        assert!(matches!(
            RawFrame::parse("{}"),
            Err(ParseError::BadMessage(_))
        ));
        let unknown = RawFrame::parse(r#"{"type":"x"}"#).expect("parses");
        assert_eq!(
            unknown.into_message(),
            Err(ParseError::UnknownType("x".into()))
        );
        let mesh = RawFrame::parse(r#"{"type":"offer","to":"B","sdp":1}"#).expect("parses");
        assert_eq!(mesh.to(), Ok(Some("B")));
        let join = RawFrame::parse(r#"{"type":"join","peerId":"A"}"#).expect("parses");
        match join.into_message() {
            Ok(ClientMessage::Join(join)) => {
                assert!(!join.is_sfu());
                assert_eq!(join.peer_id.as_deref(), Some("A"));
            }
            other => panic!("expected a join, got {other:?}"),
        }
    }
}
