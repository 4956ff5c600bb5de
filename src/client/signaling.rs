//! The client's WebSocket: one writer task fed by a channel, one reader task that records every
//! message received (in order, with its arrival time) in the [`MessageLog`] and routes the media
//! signaling ones to the negotiator. Both tasks can be "parked" to simulate a client that
//! vanished: they stop reading and writing but keep the TCP connection open, so pings go
//! unanswered. This module never interprets SDP and never touches the PeerConnection.

use super::options::{ClientError, ClientResult};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What the writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Text(String),
    /// Send a close frame and end.
    Close,
}

/// A message the server sent, as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub message: Value,
}

/// Every message received, in order. Waiters are woken on each new message.
#[derive(Debug)]
pub struct MessageLog {
    messages: Mutex<Vec<Received>>,
    version: watch::Sender<u64>,
    closed: std::sync::atomic::AtomicBool,
}

impl Default for MessageLog {
    fn default() -> Self {
        Self {
            messages: Mutex::new(Vec::new()),
            version: watch::channel(0).0,
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl MessageLog {
    pub(crate) fn push(&self, message: Value) {
        if let Ok(mut m) = self.messages.lock() {
            m.push(Received {
                at: Instant::now(),
                message,
            });
        }
        self.version.send_modify(|v| *v += 1);
    }

    pub(crate) fn mark_closed(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.version.send_modify(|v| *v += 1);
    }

    /// Whether the server closed the WebSocket (or it failed).
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// All messages received so far.
    pub fn all(&self) -> Vec<Received> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Messages of one `type`, in order.
    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.messages
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|r| r.message["type"] == kind)
                    .map(|r| r.message.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// First message (from index `from` on) matching `pred`, with its index.
    pub fn find(&self, from: usize, pred: &dyn Fn(&Value) -> bool) -> Option<(usize, Value)> {
        let m = self.messages.lock().ok()?;
        m.iter()
            .enumerate()
            .skip(from)
            .find(|(_, r)| pred(&r.message))
            .map(|(i, r)| (i, r.message.clone()))
    }

    /// Number of messages received so far.
    pub fn len(&self) -> usize {
        self.messages.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until a message from index `from` on matches `pred`.
    pub async fn wait_for(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: &dyn Fn(&Value) -> bool,
    ) -> ClientResult<(usize, Value)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.version.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(found) = self.find(from, pred) {
                return Ok(found);
            }
            if self.is_closed() {
                return Err(ClientError::Closed);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ClientError::Closed),
                Err(_) => return Err(ClientError::Timeout(what.to_owned())),
            }
        }
    }
}

/// Resolves to true once the switch is set (false if its sender is gone).
async fn parked(switch: &mut watch::Receiver<bool>) -> bool {
    switch.wait_for(|parked| *parked).await.is_ok()
}

/// The two socket tasks and the switch that parks them.
pub(crate) struct Socket {
    pub out: mpsc::UnboundedSender<Outgoing>,
    /// Set to true to park both tasks (see [`connect`]).
    pub park: watch::Sender<bool>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Connects and starts the writer and reader tasks. Every text message is recorded in `messages`
/// and then handed to `route` (which forwards media signaling to the negotiator).
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
    messages: std::sync::Arc<MessageLog>,
    route: impl Fn(&Value) + Send + 'static,
) -> ClientResult<Socket> {
    let (stream, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| ClientError::Timeout(format!("websocket connect to {url}")))??;
    let (mut sink, mut read) = stream.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let (park, park_rx) = watch::channel(false);

    let mut park_w = park_rx.clone();
    let writer = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = out_rx.recv() => next,
                true = parked(&mut park_w) => {
                    // Vanished: keep the sink (and so the TCP connection) but never write again.
                    std::future::pending::<()>().await;
                    None
                }
            };
            let result = match next {
                Some(Outgoing::Text(text)) => sink.send(Message::text(text)).await,
                Some(Outgoing::Close) | None => {
                    let _ = sink.close().await;
                    break;
                }
            };
            if result.is_err() {
                break;
            }
        }
    });

    let mut park_r = park_rx;
    let reader = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = read.next() => next,
                true = parked(&mut park_r) => {
                    // Vanished: stop reading (pings go unanswered) but keep the connection open.
                    std::future::pending::<()>().await;
                    None
                }
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value = serde_json::from_str::<Value>(text.as_str()).unwrap_or_else(
                        |_| serde_json::json!({"type": "<unparsed>", "raw": text.as_str()}),
                    );
                    messages.push(value.clone());
                    route(&value);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
        messages.mark_closed();
    });

    Ok(Socket {
        out,
        park,
        tasks: vec![writer, reader],
    })
}
