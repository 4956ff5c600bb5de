//! A media request that could not be applied: the typed error code and message the client is
//! sent as a media `error` event.

use crate::protocol::MediaErrorCode;

/// A negotiation step the client asked for that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFault {
    pub code: MediaErrorCode,
    pub message: String,
}

impl MediaFault {
    pub fn new(code: MediaErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The request names a participant this shard has no media session for.
    pub fn not_joined() -> Self {
        Self::new(MediaErrorCode::NotJoined, "no media session")
    }
}
