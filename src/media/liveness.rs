//! When a media connection counts as gone: silent for longer than [`MEDIA_SILENCE`] once
//! connected, or not connected (ICE and DTLS) within the DTLS deadline after its first
//! negotiation — a DTLS handshake that failed or whose client flight never arrived.

use super::peer::{PeerKey, Peers};
use std::time::{Duration, Instant};

/// Silence after which a connected client's media connection is considered gone. Browsers
/// send STUN consent checks every few seconds and RTCP about every second.
pub const MEDIA_SILENCE: Duration = Duration::from_secs(12);

/// Connected peers silent for longer than [`MEDIA_SILENCE`].
pub fn silent(peers: &Peers, now: Instant) -> Vec<PeerKey> {
    peers
        .values()
        .filter(|p| p.connected && now.saturating_duration_since(p.last_heard) > MEDIA_SILENCE)
        .map(|p| p.key)
        .collect()
}

/// Peers negotiated more than `timeout` ago whose connection never came up.
pub fn unestablished(peers: &Peers, timeout: Duration, now: Instant) -> Vec<PeerKey> {
    peers
        .values()
        .filter(|p| !p.connected && p.negotiated_at.is_some_and(|t| now >= t + timeout))
        .map(|p| p.key)
        .collect()
}
