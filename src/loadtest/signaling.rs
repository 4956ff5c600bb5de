//! The WebSocket side of one synthetic participant: join (with a token if one was minted),
//! record the join time, register the participant with its worker, then relay media events to
//! the worker and the worker's SDP/candidates to the server until told to stop; when the media
//! leg fails (`media-failed`, or the worker's watchdog) it reconnects with bounded retries and
//! backoff. Counts every `error` by code and every reconnect by reason. It never touches media.

use super::synthetic::{Outbound, PublishSpec, ReceiveSpec};
use super::worker::{WorkerCommand, WorkerHandle};
use crate::protocol::MediaEvent;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Shared outcome counters of all signaling tasks.
#[derive(Debug, Default)]
pub struct SignalingStats {
    pub join_ms: Vec<f64>,
    pub errors: HashMap<String, u64>,
    /// Reconnects by why the media leg was given up.
    pub reconnects: HashMap<String, u64>,
}

/// One participant to run.
pub struct PeerPlan {
    pub index: usize,
    pub url: String,
    pub room: String,
    pub name: String,
    pub token: Option<String>,
    pub publish: Option<PublishSpec>,
    /// How it receives: the layer it asks for, TWCC feedback.
    pub receive: ReceiveSpec,
}

fn count(stats: &Arc<Mutex<SignalingStats>>, code: &str) {
    if let Ok(mut s) = stats.lock() {
        *s.errors.entry(code.to_owned()).or_default() += 1;
    }
}

/// Most reconnects of one participant in a run.
pub const MAX_RECONNECTS: u32 = 6;
/// Wait before the first reconnect; doubled on each further one, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How one session (a WebSocket and a join) ended.
enum SessionEnd {
    /// Told to stop, or the server refused or dropped us: no retry.
    Done,
    /// The media leg failed (why): reconnect.
    Reconnect(String),
}

/// Runs one participant until `stop` turns true: a session, and a fresh one (after a short
/// backoff, at most [`MAX_RECONNECTS`] times) whenever its media leg failed, the server said
/// `media-failed`, or the worker's watchdog found the leg stuck.
pub async fn run_peer(
    plan: PeerPlan,
    worker: WorkerHandle,
    stats: Arc<Mutex<SignalingStats>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_FIRST;
    for attempt in 0..=MAX_RECONNECTS {
        let end = session(&plan, &worker, &stats, &mut stop).await;
        worker.send(WorkerCommand::Remove { index: plan.index });
        let SessionEnd::Reconnect(why) = end else {
            return;
        };
        if let Ok(mut s) = stats.lock() {
            *s.reconnects.entry(why).or_default() += 1;
        }
        if attempt == MAX_RECONNECTS {
            return count(&stats, "gave-up-reconnecting");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One WebSocket session: join, relay, until stopped or the leg must be rebuilt.
async fn session(
    plan: &PeerPlan,
    worker: &WorkerHandle,
    stats: &Arc<Mutex<SignalingStats>>,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let started = Instant::now();
    let ws = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(plan.url.as_str()),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        _ => {
            count(stats, "connect-failed");
            return SessionEnd::Done;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let mut join = serde_json::json!({"type": "join", "room": plan.room, "name": plan.name});
    if let Some(token) = &plan.token {
        join["token"] = token.clone().into();
    }
    if sink.send(Message::text(join.to_string())).await.is_err() {
        count(stats, "connect-failed");
        return SessionEnd::Done;
    }
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outbound>();
    let mut joined = false;
    let end = loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else {
                    if !*stop.borrow() { count(stats, "disconnected"); }
                    break SessionEnd::Done;
                };
                let Message::Text(text) = msg else { continue };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    count(stats, "bad-json-from-server");
                    continue;
                };
                match value["type"].as_str() {
                    Some("joined") if !joined => {
                        joined = true;
                        if let Ok(mut s) = stats.lock() {
                            s.join_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                        }
                        worker.send(WorkerCommand::Add {
                            index: plan.index,
                            peer_id: value["peerId"].as_str().unwrap_or_default().to_owned(),
                            publish: plan.publish,
                            signal: out_tx.clone(),
                            joined_at: Instant::now(),
                            receive: plan.receive.clone(),
                        });
                    }
                    Some("error") if joined && value["code"] == "media-failed" => {
                        break SessionEnd::Reconnect("media-failed".into());
                    }
                    Some("error") | Some("room-full") => {
                        let code = value["code"].as_str().unwrap_or("room-full");
                        count(stats, code);
                        if !joined { break SessionEnd::Done; }
                    }
                    _ => {}
                }
                if let Ok(event) = serde_json::from_value::<MediaEvent>(value) {
                    if !matches!(event, MediaEvent::Error { .. }) {
                        worker.send(WorkerCommand::Event { index: plan.index, event });
                    }
                }
            }
            Some(out) = out_rx.recv() => match out {
                Outbound::Json(text) => {
                    if sink.send(Message::text(text)).await.is_err() {
                        count(stats, "disconnected");
                        break SessionEnd::Done;
                    }
                }
                Outbound::Reconnect(why) => break SessionEnd::Reconnect(why.into()),
            },
            _ = stop.changed() => {
                if *stop.borrow() {
                    break SessionEnd::Done;
                }
            }
        }
    };
    let _ = sink.send(Message::text(r#"{"type":"leave"}"#)).await;
    let _ = sink.close().await;
    end
}
