//! A Rust client of Chorus for the integration tests and the load tester: SFU-protocol
//! signaling over one WebSocket and ONE webrtc PeerConnection to the server, synthetic tracks
//! whose payloads carry a probe (publisher tag, counter, send time) so receivers can check
//! identity and latency, and plain counters to assert on. Every wait is bounded by
//! [`ClientOptions::timeout`] or an explicit timeout; library code never panics. The client
//! reuses the wire types of [`crate::protocol`] and never implements server behaviour.
//!
//! Shape: [`signaling`] owns the socket and records every message in a [`MessageLog`];
//! [`negotiator`] is the only code that sets descriptions (glare rule: the server is polite);
//! [`peer`] builds the connection and reads remote tracks; [`publisher`] sends probe
//! payloads; [`stats`] holds the snapshot types.

mod actions;
mod gate;
mod negotiator;
pub mod options;
mod peer;
mod publisher;
pub mod signaling;
pub mod stats;

pub use options::{ClientError, ClientOptions, ClientResult, TrackSpec};
pub use signaling::{MessageLog, Received};
pub use stats::{
    LatencySummary, NegotiationSnapshot, PublishedTrackSnapshot, ReceivedTrackSnapshot,
};

use crate::protocol::{IceCandidate, MediaEvent, MediaRequest};
use gate::Silence;
use peer::ReceivedTrack;
use publisher::PublishedTrack;
use serde_json::Value;
use signaling::Outgoing;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

/// State shared by the client handle and its tasks.
pub(crate) struct Shared {
    pub options: ClientOptions,
    pub peer_id: String,
    pub messages: Arc<MessageLog>,
    out: mpsc::UnboundedSender<Outgoing>,
    pub pc: OnceLock<Arc<dyn PeerConnection>>,
    pub published: Mutex<Vec<Arc<PublishedTrack>>>,
    pub received: Mutex<Vec<Arc<ReceivedTrack>>>,
    /// mid of the receiving leg → (publisher peer id, track id), from the server.
    pub mid_map: Mutex<HashMap<String, (String, String)>>,
    pub negotiation: Mutex<NegotiationSnapshot>,
    pub connection: watch::Sender<RTCPeerConnectionState>,
    candidates: Mutex<CandidateOutbox>,
    first_mid: Mutex<Option<String>>,
    pub silence: Silence,
}

/// Local candidates wait until our first SDP went out (the server needs it first).
#[derive(Default)]
struct CandidateOutbox {
    released: bool,
    buffered: Vec<IceCandidate>,
}

impl Shared {
    pub fn pc(&self) -> ClientResult<Arc<dyn PeerConnection>> {
        self.pc.get().cloned().ok_or(ClientError::Closed)
    }

    pub fn send(&self, request: &MediaRequest) {
        if let Ok(text) = serde_json::to_string(request) {
            let _ = self.out.send(Outgoing::Text(text));
        }
    }

    pub fn send_text(&self, text: String) -> ClientResult<()> {
        self.out
            .send(Outgoing::Text(text))
            .map_err(|_| ClientError::Closed)
    }

    pub(crate) fn send_outgoing(&self, outgoing: Outgoing) -> ClientResult<()> {
        self.out.send(outgoing).map_err(|_| ClientError::Closed)
    }

    fn candidate_request(&self, mut candidate: IceCandidate) -> MediaRequest {
        if candidate.sdp_mid.is_none() {
            candidate.sdp_mid = self.first_mid.lock().ok().and_then(|m| m.clone());
        }
        MediaRequest::Candidate {
            candidate: Some(candidate),
        }
    }

    pub fn send_local_candidate(&self, candidate: IceCandidate) {
        let Ok(mut outbox) = self.candidates.lock() else {
            return;
        };
        if !outbox.released {
            outbox.buffered.push(candidate);
            return;
        }
        drop(outbox);
        self.send(&self.candidate_request(candidate));
        self.count_candidates(1);
    }

    pub fn release_local_candidates(&self) {
        let Ok(mut outbox) = self.candidates.lock() else {
            return;
        };
        outbox.released = true;
        let buffered = std::mem::take(&mut outbox.buffered);
        drop(outbox);
        let n = buffered.len() as u64;
        for c in buffered {
            self.send(&self.candidate_request(c));
        }
        self.count_candidates(n);
    }

    fn count_candidates(&self, n: u64) {
        if let Ok(mut s) = self.negotiation.lock() {
            s.local_candidates_sent += n;
        }
    }

    /// Remembers the first `a=mid:` of a local description (the bundle tag for candidates).
    pub fn note_first_mid(&self, sdp: &str) {
        let mid = sdp
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=mid:"))
            .map(str::to_owned);
        if let (Some(mid), Ok(mut slot)) = (mid, self.first_mid.lock()) {
            *slot = Some(mid);
        }
    }

    /// Published tracks not unpublished.
    pub fn live_tracks(&self) -> Vec<Arc<PublishedTrack>> {
        self.published
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|t| t.state.lock().map(|s| !s.unpublished).unwrap_or(false))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One participant: a WebSocket session plus one PeerConnection to the server.
pub struct SfuClient {
    shared: Arc<Shared>,
    joined: Value,
    room: String,
    negotiate: mpsc::UnboundedSender<negotiator::Input>,
    park: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl SfuClient {
    /// Connects to `ws_url`, joins `room` as `name` and sets up the PeerConnection.
    pub async fn connect(
        ws_url: &str,
        room: &str,
        name: &str,
        token: Option<&str>,
    ) -> ClientResult<Self> {
        Self::connect_with(ws_url, room, name, token, ClientOptions::default()).await
    }

    /// [`SfuClient::connect`] with explicit options.
    pub async fn connect_with(
        ws_url: &str,
        room: &str,
        name: &str,
        token: Option<&str>,
        options: ClientOptions,
    ) -> ClientResult<Self> {
        let messages = Arc::new(MessageLog::default());
        let (negotiate, negotiate_rx) = mpsc::unbounded_channel();
        let route_tx = negotiate.clone();
        let route = move |v: &Value| {
            if let Ok(event) = serde_json::from_value::<MediaEvent>(v.clone()) {
                let _ = route_tx.send(negotiator::Input::Event(event));
            }
        };
        let socket = signaling::connect(ws_url, options.timeout, messages.clone(), route).await?;
        let mut tasks = socket.tasks;
        let mut join = serde_json::json!({"type": "join", "room": room, "name": name});
        if let Some(token) = token {
            join["token"] = Value::from(token);
        }
        if let Some(receive) = &options.receive {
            join["receive"] = serde_json::to_value(receive).unwrap_or_default();
        }
        let _ = socket.out.send(Outgoing::Text(join.to_string()));
        let answered = messages
            .wait_for(0, "joined", options.timeout, &|v| {
                matches!(v["type"].as_str(), Some("joined" | "error" | "room-full"))
            })
            .await;
        let joined = match answered {
            Ok((_, v)) if v["type"] == "joined" => v,
            Ok((_, v)) => {
                tasks.iter().for_each(|t| t.abort());
                return Err(refusal(&v));
            }
            Err(e) => {
                tasks.iter().for_each(|t| t.abort());
                return Err(e);
            }
        };
        let peer_id = joined["peerId"].as_str().unwrap_or_default().to_owned();
        let silence = Silence::default();
        let shared = Arc::new(Shared {
            options: options.clone(),
            peer_id,
            messages,
            out: socket.out,
            pc: OnceLock::new(),
            published: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            mid_map: Mutex::new(HashMap::new()),
            negotiation: Mutex::new(NegotiationSnapshot::default()),
            connection: watch::channel(RTCPeerConnectionState::New).0,
            candidates: Mutex::new(CandidateOutbox::default()),
            first_mid: Mutex::new(None),
            silence: silence.clone(),
        });
        let pc = match peer::build(&options, silence, Arc::downgrade(&shared)).await {
            Ok(pc) => pc,
            Err(e) => {
                tasks.iter().for_each(|t| t.abort());
                return Err(e);
            }
        };
        let _ = shared.pc.set(pc);
        tasks.push(tokio::spawn(negotiator::run(shared.clone(), negotiate_rx)));
        Ok(Self {
            shared,
            joined,
            room: room.to_owned(),
            negotiate,
            park: socket.park,
            tasks: Mutex::new(tasks),
        })
    }

    /// The peer id the server gave us.
    pub fn peer_id(&self) -> &str {
        &self.shared.peer_id
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// The `joined` message as received.
    pub fn joined(&self) -> &Value {
        &self.joined
    }

    /// Every message received, in order.
    pub fn messages(&self) -> &MessageLog {
        &self.shared.messages
    }

    /// Messages of one `type` received so far.
    pub fn messages_of_type(&self, kind: &str) -> Vec<Value> {
        self.shared.messages.of_type(kind)
    }

    /// Waits for a message (from the start of the session) matching `pred`.
    pub async fn wait_for_message(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> ClientResult<Value> {
        self.shared
            .messages
            .wait_for(0, what, timeout, &pred)
            .await
            .map(|(_, v)| v)
    }

    /// Counters of every track published so far (track ids resolved from the server's
    /// `track-published` announcements, else the msid track id).
    pub fn published(&self) -> Vec<PublishedTrackSnapshot> {
        let tracks = self
            .shared
            .published
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        let announced = self.shared.messages.of_type("track-published");
        tracks
            .iter()
            .filter_map(|t| t.snapshot())
            .map(|mut s| {
                s.track_id = Some(self.own_track_id(&s, &announced));
                s
            })
            .collect()
    }

    fn own_track_id(&self, s: &PublishedTrackSnapshot, announced: &[Value]) -> String {
        announced
            .iter()
            .filter(|v| v["peerId"] == self.peer_id())
            .find(|v| {
                v["trackId"] == s.local_track_id.as_str()
                    || (s.mid.is_some() && v["mid"].as_str() == s.mid.as_deref())
            })
            .and_then(|v| v["trackId"].as_str())
            .unwrap_or(&s.local_track_id)
            .to_owned()
    }

    /// Snapshot of one published track by tag.
    pub fn published_track(&self, tag: u64) -> Option<PublishedTrackSnapshot> {
        self.published().into_iter().find(|t| t.tag == tag)
    }

    /// Counters of every remote track received so far, labelled with the publisher and track
    /// (from the server's mid mapping when known, else from the msid).
    pub fn received(&self) -> Vec<ReceivedTrackSnapshot> {
        let tracks = self
            .shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        let map = self
            .shared
            .mid_map
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        tracks
            .iter()
            .filter_map(|t| t.recorder.lock().ok().map(|r| r.snapshot()))
            .map(|mut s| {
                let mapped = s.mid.as_ref().and_then(|m| map.get(m));
                let (peer, track) = match mapped {
                    Some((p, t)) => (p.clone(), t.clone()),
                    None => (s.msid_stream_id.clone(), s.msid_track_id.clone()),
                };
                s.peer_id = (!peer.is_empty()).then_some(peer);
                s.track_id = (!track.is_empty()).then_some(track);
                s
            })
            .collect()
    }

    /// How negotiation went so far.
    pub fn negotiation(&self) -> NegotiationSnapshot {
        self.shared
            .negotiation
            .lock()
            .map(|s| *s)
            .unwrap_or_default()
    }

    /// Current state of the PeerConnection.
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.shared.connection.borrow()
    }

    /// Waits until the PeerConnection is connected.
    pub async fn wait_connected(&self, timeout: Duration) -> ClientResult<()> {
        let mut rx = self.shared.connection.subscribe();
        let connected = async move {
            rx.wait_for(|s| *s == RTCPeerConnectionState::Connected)
                .await
                .is_ok()
        };
        match tokio::time::timeout(timeout, connected).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout("peer connection connected".into())),
        }
    }

    /// The SDP currently in effect locally / remotely (pending one during a negotiation).
    pub async fn local_sdp(&self) -> Option<String> {
        self.shared
            .pc()
            .ok()?
            .local_description()
            .await
            .map(|d| d.sdp)
    }

    pub async fn remote_sdp(&self) -> Option<String> {
        self.shared
            .pc()
            .ok()?
            .remote_description()
            .await
            .map(|d| d.sdp)
    }

    /// Polls `cond` every 20 ms until it holds; `Err(Timeout(what))` after `timeout`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Self) -> bool,
    ) -> ClientResult<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond(self) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(what.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn refusal(v: &Value) -> ClientError {
    ClientError::Refused {
        code: v["code"]
            .as_str()
            .or_else(|| v["type"].as_str())
            .unwrap_or("unknown")
            .to_owned(),
        message: v["message"].as_str().unwrap_or_default().to_owned(),
    }
}

impl Drop for SfuClient {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            tasks.iter().for_each(|t| t.abort());
        }
        for track in self.shared.live_tracks() {
            track.stop();
        }
        if let (Ok(pc), Ok(rt)) = (self.shared.pc(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}
