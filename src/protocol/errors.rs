//! Every error the server reports on the wire: [`ErrorCode`] for signaling (`error` messages of
//! the session), [`MediaErrorCode`] for media requests (`error` events of the media leg, after
//! which the session goes on), and [`ParseError`], why a client frame could not be understood.

use serde::{Deserialize, Serialize};

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
    /// No `join` within `--join-timeout-secs` of connecting (or of leaving); the connection is closed with 4408.
    JoinTimeout,
    /// The server is at `--max-connections` (HTTP 503 at the upgrade).
    ServerFull,
    /// This address is at `--max-connections-per-ip` (HTTP 429 at the upgrade).
    TooManyConnections,
    /// The page's web origin may not open WebSockets here (`--allowed-origins`; HTTP 403 at
    /// the upgrade).
    ForbiddenOrigin,
    /// The token's `nbf` (not before) is still in the future.
    TokenNotYetValid,
    /// Another connection joined this room with the same token identity (`sub`); this one is closed.
    Replaced,
    /// Several nodes (`--redis-url`): Redis cannot be reached, or the room's node cannot be
    /// reached or went away; connect (or join) again.
    ClusterUnavailable,
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
        ErrorCode::JoinTimeout,
        ErrorCode::ServerFull,
        ErrorCode::TooManyConnections,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::TokenNotYetValid,
        ErrorCode::Replaced,
        ErrorCode::ClusterUnavailable,
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
            ErrorCode::JoinTimeout => "join-timeout",
            ErrorCode::ServerFull => "server-full",
            ErrorCode::TooManyConnections => "too-many-connections",
            ErrorCode::ForbiddenOrigin => "forbidden-origin",
            ErrorCode::TokenNotYetValid => "token-not-yet-valid",
            ErrorCode::Replaced => "replaced",
            ErrorCode::ClusterUnavailable => "cluster-unavailable",
        }
    }
}

/// Stable error codes of media `error` events: a media request failed, the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaErrorCode {
    /// The SDP does not parse, or the WebRTC stack refused it.
    BadSdp,
    /// An audio or video section offers no codec the server can forward.
    NoCommonCodec,
    /// An answer with no server offer outstanding, or a second offer before the first was
    /// answered.
    WrongState,
    /// The request names a track that is not (or no longer) published in the room.
    UnknownTrack,
    /// A trickle ICE candidate that does not parse or that the stack refused.
    BadCandidate,
    /// ICE/DTLS failed or the connection closed: the server rebuilds it; send a new offer.
    MediaFailed,
    /// The token's grants do not allow this media request (publishing, subscribing).
    Forbidden,
    /// The media leg is gone (the session left its room).
    NotJoined,
    /// The server failed while handling the request.
    Internal,
}

impl MediaErrorCode {
    /// Every code, for documentation checks.
    pub const ALL: &'static [MediaErrorCode] = &[
        MediaErrorCode::BadSdp,
        MediaErrorCode::NoCommonCodec,
        MediaErrorCode::WrongState,
        MediaErrorCode::UnknownTrack,
        MediaErrorCode::BadCandidate,
        MediaErrorCode::MediaFailed,
        MediaErrorCode::Forbidden,
        MediaErrorCode::NotJoined,
        MediaErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaErrorCode::BadSdp => "bad-sdp",
            MediaErrorCode::NoCommonCodec => "no-common-codec",
            MediaErrorCode::WrongState => "wrong-state",
            MediaErrorCode::UnknownTrack => "unknown-track",
            MediaErrorCode::BadCandidate => "bad-candidate",
            MediaErrorCode::MediaFailed => "media-failed",
            MediaErrorCode::Forbidden => "forbidden",
            MediaErrorCode::NotJoined => "not-joined",
            MediaErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for MediaErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    fn media_error_code_strings_match_the_wire_form() {
        for code in MediaErrorCode::ALL {
            let wire = serde_json::to_value(code).expect("serialize");
            assert_eq!(wire, serde_json::Value::from(code.as_str()));
            let back: MediaErrorCode = serde_json::from_value(wire).expect("deserialize");
            assert_eq!(back, *code);
        }
    }
}
