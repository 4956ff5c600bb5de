//! What a session reads client messages from and writes its own to: the client's WebSocket, or
//! a connection another node of the cluster relays here over Redis ([`crate::cluster::bus`]),
//! whose envelopes stand in for WebSocket messages: text and binary frames as they are, the
//! edge's keepalives as pongs, the session's pings as keepalives, closes both ways. A relayed
//! connection also ends when its edge node leaves the registry. It must not interpret frames.

use crate::cluster::bus::Link;
use crate::cluster::envelope::Body;
use crate::cluster::Cluster;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Interval;

/// The session's side of its connection.
// One per session, never moved once running: boxing the WebSocket would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Transport {
    Ws(WebSocket),
    Relayed(Relayed),
}

/// A connection relayed by another node (the edge).
pub struct Relayed {
    link: Link,
    cluster: Arc<Cluster>,
    /// When to look whether the edge is still in the registry.
    registry: Interval,
}

impl Relayed {
    pub fn new(link: Link, cluster: Arc<Cluster>) -> Self {
        let every = crate::cluster::registry::heartbeat_interval(cluster.timeout);
        let mut registry = tokio::time::interval(every);
        registry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            link,
            cluster,
            registry,
        }
    }

    async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        loop {
            tokio::select! {
                body = self.link.recv() => {
                    let message = match body? {
                        Body::Text { text } => Message::Text(text.into()),
                        Body::Binary => Message::Binary(Default::default()),
                        Body::Keepalive => Message::Pong(Default::default()),
                        Body::Close { .. } => Message::Close(None),
                        Body::Open { .. } => continue,
                    };
                    return Some(Ok(message));
                }
                _ = self.registry.tick() => {
                    if !self.cluster.is_live(self.link.peer()) {
                        tracing::info!(edge = self.link.peer(), "the relaying node left the cluster");
                        return None;
                    }
                }
            }
        }
    }

    async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        let body = match message {
            Message::Text(text) => Body::Text {
                text: text.as_str().to_owned(),
            },
            Message::Ping(_) => Body::Keepalive,
            Message::Close(frame) => Body::Close {
                code: frame.map(|f| f.code),
            },
            Message::Binary(_) | Message::Pong(_) => return Ok(()),
        };
        self.link.send(body).await.map_err(axum::Error::new)
    }
}

impl Transport {
    /// The next message from the client; `None` when the connection is gone.
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        match self {
            Self::Ws(socket) => socket.recv().await,
            Self::Relayed(relayed) => relayed.recv().await,
        }
    }

    /// Writes one message to the client.
    pub async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        match self {
            Self::Ws(socket) => socket.send(message).await,
            Self::Relayed(relayed) => relayed.send(message).await,
        }
    }

    /// Sends what the WebSocket layer queued itself (e.g. its answer to a close).
    pub async fn flush(&mut self) {
        if let Self::Ws(socket) = self {
            let flush = futures::SinkExt::flush(socket);
            let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
        }
    }

    /// Closes with `code`; on a WebSocket, reads until the client answers (at most 1 s), so the
    /// TCP connection ends cleanly (closing with unread data would reset it and could lose the
    /// close frame).
    pub async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let drain = async {
            self.send(Message::Close(Some(frame))).await?;
            let Self::Ws(socket) = self else {
                return Ok(());
            };
            while let Some(Ok(message)) = socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
            Ok::<(), axum::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}
