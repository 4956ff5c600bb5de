//! Signaling messages of the `/ws` protocol that are not media: SFU `join`/`chat`/`leave`, the
//! server's replies and notices, the mesh-compatible notices of the seeds, and [`RawFrame`], a
//! client frame parsed as far as routing needs. Mesh frames that carry a `to` field are relayed
//! byte-for-byte by the room layer and therefore have no typed form here beyond what routing
//! needs.

use serde::{Deserialize, Serialize};

use super::errors::{ErrorCode, ParseError};
use super::media::{MediaRequest, ReceiveCapabilities};

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
    /// SFU only: the codecs the client can decode (see [`ReceiveCapabilities`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<ReceiveCapabilities>,
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
    "video-size",
];

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
            "offer" | "answer" | "candidate" | "mute" | "subscribe" | "unsubscribe"
            | "video-size" => typed(self.value).map(ClientMessage::Media),
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
