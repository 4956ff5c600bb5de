//! The WebSocket side of one synthetic participant: join (with a token if one was minted),
//! record the join time, register the participant with its worker, then relay media events to
//! the worker and the worker's SDP/candidates to the server until told to stop. Counts every
//! `error` by code. It never touches media.

use super::synthetic::PublishSpec;
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
}

/// One participant to run.
pub struct PeerPlan {
    pub index: usize,
    pub url: String,
    pub room: String,
    pub name: String,
    pub token: Option<String>,
    pub publish: Option<PublishSpec>,
}

fn count(stats: &Arc<Mutex<SignalingStats>>, code: &str) {
    if let Ok(mut s) = stats.lock() {
        *s.errors.entry(code.to_owned()).or_default() += 1;
    }
}

/// Runs one participant until `stop` turns true.
pub async fn run_peer(
    plan: PeerPlan,
    worker: WorkerHandle,
    stats: Arc<Mutex<SignalingStats>>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let ws = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(plan.url.as_str()),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        _ => return count(&stats, "connect-failed"),
    };
    let (mut sink, mut stream) = ws.split();
    let mut join = serde_json::json!({"type": "join", "room": plan.room, "name": plan.name});
    if let Some(token) = &plan.token {
        join["token"] = token.clone().into();
    }
    if sink.send(Message::text(join.to_string())).await.is_err() {
        return count(&stats, "connect-failed");
    }
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let mut joined = false;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else {
                    if !*stop.borrow() { count(&stats, "disconnected"); }
                    break;
                };
                let Message::Text(text) = msg else { continue };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    count(&stats, "bad-json-from-server");
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
                        });
                    }
                    Some("error") | Some("room-full") => {
                        let code = value["code"].as_str().unwrap_or("room-full");
                        count(&stats, code);
                        if !joined { break; }
                    }
                    _ => {}
                }
                if let Ok(event) = serde_json::from_value::<MediaEvent>(value) {
                    if !matches!(event, MediaEvent::Error { .. }) {
                        worker.send(WorkerCommand::Event { index: plan.index, event });
                    }
                }
            }
            Some(out) = out_rx.recv() => {
                if sink.send(Message::text(out)).await.is_err() {
                    count(&stats, "disconnected");
                    break;
                }
            }
            _ = stop.changed() => {
                if *stop.borrow() {
                    let _ = sink.send(Message::text(r#"{"type":"leave"}"#)).await;
                    let _ = sink.close().await;
                    break;
                }
            }
        }
    }
    worker.send(WorkerCommand::Remove { index: plan.index });
}
