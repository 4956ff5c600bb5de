//! The edge side of the signaling relay: a client whose room lives on another node keeps its
//! WebSocket to the node that accepted it, which opens a relayed connection to the room's node
//! over Redis ([`super::bus`]) and copies messages both ways, unchanged: client frames go up
//! as envelopes in order, the room's node's replies come down and are written to the client.
//! The room's node serves the relayed connection like any other, so both protocols (SFU and
//! mesh) work across nodes, and the client's media goes straight to the room's node (its own
//! ICE candidates are in the SDP it sends). A close on either side closes the other; a room
//! node that leaves the registry or is silent for the idle timeout ends the relay with
//! [`RelayEnd::OwnerLost`], as does a Redis that stops taking envelopes.

use super::bus::Link;
use super::envelope::Body;
use super::Cluster;
use axum::extract::ws::{Message, WebSocket};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The client's socket ended (closed, reset, or could not take a message).
    ClientGone,
    /// The client sent a message over the server's limit.
    ClientTooBig,
    /// The client did not take the room node's messages fast enough.
    ClientSlow,
    /// The room's node closed the connection with this code.
    OwnerClosed(u16),
    /// The room's node went away without closing, stopped heartbeating, or Redis failed.
    OwnerLost,
    /// The client was silent for the idle timeout.
    ClientIdle,
    /// This server shuts down.
    Shutdown,
}

/// Timing and limits of a relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayTiming {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    /// Largest text message a client may send (`Config::message_limit`).
    pub max_message: usize,
    /// Largest binary frame (`--max-frame-bytes`).
    pub max_frame: usize,
}

/// Copies messages between `client` and the room's node over `link` (after sending `first`
/// up) until one side ends. Keeps both sides alive every `ping_interval`; the room's node
/// counts as lost when it drops out of the registry (looked at every heartbeat) or is silent
/// for the idle timeout.
pub async fn pump(
    cluster: &Cluster,
    client: &mut WebSocket,
    mut link: Link,
    first: Vec<String>,
    timing: RelayTiming,
    mut shutdown: watch::Receiver<bool>,
) -> RelayEnd {
    for text in first {
        if link.send(Body::Text { text }).await.is_err() {
            return RelayEnd::OwnerLost;
        }
    }
    let owner = link.peer().to_owned();
    let mut ping = tokio::time::interval(timing.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registry = tokio::time::interval(super::registry::heartbeat_interval(cluster.timeout));
    registry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut client_seen, mut owner_seen) = (Instant::now(), Instant::now());
    let end = loop {
        tokio::select! {
            incoming = client.recv() => {
                client_seen = Instant::now();
                if let Some(end) = to_owner(incoming, &mut link, &timing).await {
                    break end;
                }
            }
            body = link.recv() => {
                owner_seen = Instant::now();
                if let Some(end) = to_client(body, &link, client, &timing).await {
                    break end;
                }
            }
            _ = ping.tick() => {
                if client_seen.elapsed() >= timing.idle_timeout {
                    break RelayEnd::ClientIdle;
                }
                if owner_seen.elapsed() >= timing.idle_timeout {
                    break RelayEnd::OwnerLost;
                }
                if link.send(Body::Keepalive).await.is_err() {
                    break RelayEnd::OwnerLost;
                }
                let _ = client.send(Message::Ping(Default::default())).await;
            }
            _ = registry.tick() => {
                if !cluster.is_live(&owner) {
                    break RelayEnd::OwnerLost;
                }
            }
            _ = shutdown.changed() => break RelayEnd::Shutdown,
        }
    };
    if !matches!(
        end,
        RelayEnd::OwnerClosed(_) | RelayEnd::OwnerLost | RelayEnd::ClientGone
    ) {
        let close = link.send(Body::Close { code: None });
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
    }
    end
}

/// Forwards one client message; `Some` when the relay ends.
async fn to_owner(
    incoming: Option<Result<Message, axum::Error>>,
    link: &mut Link,
    timing: &RelayTiming,
) -> Option<RelayEnd> {
    let message = match incoming {
        None | Some(Err(_)) => return Some(RelayEnd::ClientGone),
        Some(Ok(message)) => message,
    };
    let body = match message {
        Message::Text(text) if text.len() > timing.max_message => {
            return Some(RelayEnd::ClientTooBig)
        }
        Message::Binary(bytes) if bytes.len() > timing.max_frame => {
            return Some(RelayEnd::ClientTooBig)
        }
        Message::Text(text) => Body::Text {
            text: text.as_str().to_owned(),
        },
        Message::Binary(_) => Body::Binary,
        Message::Ping(_) | Message::Pong(_) => return None,
        Message::Close(frame) => {
            let code = frame.map(|f| f.code);
            let close = link.send(Body::Close { code });
            let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
            return Some(RelayEnd::ClientGone);
        }
    };
    match link.send(body).await {
        Ok(()) => None,
        Err(_) => Some(RelayEnd::OwnerLost),
    }
}

/// Forwards one event of the room's node; `Some` when the relay ends.
async fn to_client(
    body: Option<Body>,
    link: &Link,
    client: &mut WebSocket,
    timing: &RelayTiming,
) -> Option<RelayEnd> {
    let text = match body {
        None if link.overflowed() => return Some(RelayEnd::ClientSlow),
        None | Some(Body::Close { code: None }) => return Some(RelayEnd::OwnerLost),
        Some(Body::Close { code: Some(code) }) => return Some(RelayEnd::OwnerClosed(code)),
        Some(Body::Text { text }) => text,
        Some(Body::Keepalive | Body::Binary | Body::Open { .. }) => return None,
    };
    let send = client.send(Message::Text(text.into()));
    match tokio::time::timeout(timing.idle_timeout, send).await {
        Ok(Ok(())) => None,
        Ok(Err(_)) | Err(_) => Some(RelayEnd::ClientGone),
    }
}
