//! The signaling relay: a client whose room lives on another node keeps its WebSocket to the
//! node that accepted it, which opens a WebSocket to the room's node (with the cluster's relay
//! key and the client's address) and copies messages both ways, unchanged. The room's node
//! serves the relayed connection like any other, so both protocols (SFU and mesh) work across
//! nodes, and the client's media goes straight to the room's node (its own ICE candidates are
//! in the SDP it sends). A close on either side closes the other; a room node that dies or
//! stops heartbeating ends the relay with [`RelayEnd::OwnerLost`].

use super::{Cluster, NodeRecord, RELAY_CLIENT_HEADER, RELAY_KEY_HEADER};
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message as Upstream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The WebSocket to the room's node.
pub type OwnerSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long connecting to the room's node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The client's socket ended (closed, reset, or could not take a message).
    ClientGone,
    /// The room's node closed the connection with this code.
    OwnerClosed(u16),
    /// The room's node went away without closing, or stopped heartbeating.
    OwnerLost,
    /// The client was silent for the idle timeout.
    ClientIdle,
    /// This server shuts down.
    Shutdown,
}

/// Timing of a relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayTiming {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
}

/// Opens the relayed WebSocket to `node` for a client that connected with `query` (the raw
/// query string of its `/ws` URL) from `client`.
pub async fn connect(
    cluster: &Cluster,
    node: &NodeRecord,
    query: &str,
    client: Option<IpAddr>,
) -> Result<OwnerSocket, String> {
    let url = match query.is_empty() {
        true => format!("{}/ws", node.url),
        false => format!("{}/ws?{query}", node.url),
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad node URL `{url}`: {e}"))?;
    let headers = request.headers_mut();
    let key = cluster.relay_key.parse().map_err(|_| "bad relay key")?;
    headers.insert(RELAY_KEY_HEADER, key);
    if let Some(ip) = client.and_then(|ip| ip.to_string().parse().ok()) {
        headers.insert(RELAY_CLIENT_HEADER, ip);
    }
    let connect = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(error)) => Err(format!("{url}: {error}")),
        Err(_) => Err(format!("{url}: no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Copies messages between `client` and `owner` (after sending `first` to the owner) until
/// one side ends. Pings both sides every `ping_interval`; the room's node counts as lost when
/// it drops out of the registry (looked at every heartbeat) or is silent for the idle timeout.
pub async fn pump(
    cluster: &Cluster,
    node_id: &str,
    client: &mut WebSocket,
    mut owner: OwnerSocket,
    first: Vec<String>,
    timing: RelayTiming,
    mut shutdown: watch::Receiver<bool>,
) -> RelayEnd {
    for text in first {
        if owner.send(Upstream::text(text)).await.is_err() {
            return RelayEnd::OwnerLost;
        }
    }
    let mut ping = tokio::time::interval(timing.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registry = tokio::time::interval(super::registry::heartbeat_interval(cluster.timeout));
    registry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut client_seen, mut owner_seen) = (Instant::now(), Instant::now());
    let end = loop {
        tokio::select! {
            incoming = client.recv() => {
                client_seen = Instant::now();
                if let Some(end) = to_owner(incoming, &mut owner).await {
                    break end;
                }
            }
            incoming = owner.next() => {
                owner_seen = Instant::now();
                if let Some(end) = to_client(incoming, client).await {
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
                let _ = owner.send(Upstream::Ping(Default::default())).await;
                let _ = client.send(Message::Ping(Default::default())).await;
            }
            _ = registry.tick() => {
                if !cluster.is_live(node_id) {
                    break RelayEnd::OwnerLost;
                }
            }
            _ = shutdown.changed() => break RelayEnd::Shutdown,
        }
    };
    if !matches!(end, RelayEnd::OwnerClosed(_) | RelayEnd::OwnerLost) {
        let close = owner.close(None);
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
    }
    end
}

/// Forwards one client message; `Some` when the relay ends.
async fn to_owner(
    incoming: Option<Result<Message, axum::Error>>,
    owner: &mut OwnerSocket,
) -> Option<RelayEnd> {
    let message = match incoming {
        None | Some(Err(_)) => return Some(RelayEnd::ClientGone),
        Some(Ok(message)) => message,
    };
    let upstream = match message {
        Message::Text(text) => Upstream::text(text.as_str()),
        Message::Binary(bytes) => Upstream::binary(bytes),
        Message::Ping(_) | Message::Pong(_) => return None,
        Message::Close(frame) => {
            let frame = frame.map(|f| CloseFrame {
                code: CloseCode::from(f.code),
                reason: f.reason.as_str().into(),
            });
            let _ = owner.close(frame).await;
            return Some(RelayEnd::ClientGone);
        }
    };
    match owner.send(upstream).await {
        Ok(()) => None,
        Err(_) => Some(RelayEnd::OwnerLost),
    }
}

/// Forwards one message of the room's node; `Some` when the relay ends.
async fn to_client(
    incoming: Option<Result<Upstream, tokio_tungstenite::tungstenite::Error>>,
    client: &mut WebSocket,
) -> Option<RelayEnd> {
    let message = match incoming {
        None | Some(Err(_)) => return Some(RelayEnd::OwnerLost),
        Some(Ok(message)) => message,
    };
    let downstream = match message {
        Upstream::Text(text) => Message::Text(text.as_str().into()),
        Upstream::Binary(bytes) => Message::Binary(bytes),
        Upstream::Close(frame) => {
            let code = frame.map_or(1001, |f| u16::from(f.code));
            return Some(RelayEnd::OwnerClosed(code));
        }
        Upstream::Ping(_) | Upstream::Pong(_) | Upstream::Frame(_) => return None,
    };
    match client.send(downstream).await {
        Ok(()) => None,
        Err(_) => Some(RelayEnd::ClientGone),
    }
}
