//! A load-generator worker: one thread driving many synthetic participants, each with its own
//! UDP socket, in one poll(2) loop — batched receive, sans-IO PeerConnections, paced sends.
//! Signaling tasks talk to it over a channel (plus an eventfd wake-up); it answers snapshots
//! for the progress line and the report. It must never block on anything but poll.

use super::measure::{LatencyHistogram, Totals};
use super::synthetic::{Outbound, PublishSpec, ReceiveSpec, SynthPeer};
use super::viewers::SubscriberVideo;
use crate::net::udp::{self, RecvBatch};
use crate::net::wake::{wait_readable, Waker};
use crate::protocol::MediaEvent;
use crate::rtp::dtls_repeat::is_handshake_give_up;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// What signaling asks of a worker.
pub enum WorkerCommand {
    Add {
        index: usize,
        peer_id: String,
        publish: Option<PublishSpec>,
        signal: UnboundedSender<Outbound>,
        joined_at: Instant,
        /// How it receives (layer asked for, TWCC feedback).
        receive: ReceiveSpec,
    },
    Event {
        index: usize,
        event: MediaEvent,
    },
    Remove {
        index: usize,
    },
    Snapshot(oneshot::Sender<WorkerSnapshot>),
    /// Every subscriber's view of its video, frames per second over unix seconds `window`.
    Viewers {
        window: (u64, u64),
        reply: oneshot::Sender<Vec<SubscriberVideo>>,
    },
}

/// The measurements of one worker at one moment.
#[derive(Debug, Clone, Default)]
pub struct WorkerSnapshot {
    pub totals: Totals,
    pub latency: LatencyHistogram,
    pub first_packet_ms: Vec<f64>,
    pub jitter_ms: Vec<f64>,
    pub failures: HashMap<String, u64>,
    pub cpu_seconds: f64,
}

/// Handle to a running worker thread.
#[derive(Clone)]
pub struct WorkerHandle {
    commands: mpsc::Sender<WorkerCommand>,
    waker: Arc<Waker>,
}

impl WorkerHandle {
    pub fn send(&self, command: WorkerCommand) {
        if self.commands.send(command).is_ok() {
            self.waker.wake();
        }
    }

    pub async fn snapshot(&self) -> WorkerSnapshot {
        let (tx, rx) = oneshot::channel();
        self.send(WorkerCommand::Snapshot(tx));
        rx.await.unwrap_or_default()
    }

    /// Every subscriber's view of its video (see [`WorkerCommand::Viewers`]).
    pub async fn viewers(&self, window: (u64, u64)) -> Vec<SubscriberVideo> {
        let (reply, rx) = oneshot::channel();
        self.send(WorkerCommand::Viewers { window, reply });
        rx.await.unwrap_or_default()
    }
}

/// Starts a worker thread (pinned to `core` if given). It stops when every handle is gone.
/// With `sink`, receive-only peers drop media in the kernel (`--sink`, see `sink.rs`).
pub fn spawn(bind: IpAddr, core: Option<usize>, sink: bool) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = mpsc::channel();
    let waker = Arc::new(Waker::new()?);
    let worker = Worker {
        bind,
        sink,
        sinks: Default::default(),
        commands: rx,
        waker: waker.clone(),
        peers: HashMap::new(),
        recv: RecvBatch::new(),
    };
    std::thread::Builder::new()
        .name("chorus-loadgen".into())
        .spawn(move || {
            if let Some(core) = core {
                crate::net::thread::pin_to_core(core);
            }
            worker.run()
        })?;
    Ok(WorkerHandle {
        commands: tx,
        waker,
    })
}

struct Worker {
    bind: IpAddr,
    /// `--sink`: receive-only peers drop media in the kernel and are never reconnected for
    /// receiving none.
    sink: bool,
    /// The peers whose socket drops media.
    sinks: std::collections::HashSet<usize>,
    commands: Receiver<WorkerCommand>,
    waker: Arc<Waker>,
    peers: HashMap<usize, SynthPeer>,
    recv: RecvBatch,
}

impl Worker {
    fn run(mut self) {
        loop {
            let now = Instant::now();
            let deadline = self.peers.values().filter_map(|p| p.next_wake()).min();
            let timeout = deadline
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(100))
                .min(Duration::from_millis(100));
            let mut touched = self.wait(timeout);
            let Some(commanded) = self.drain_commands() else {
                return;
            };
            touched.extend(commanded);
            let now = Instant::now();
            for index in &touched {
                self.read(*index, now);
            }
            // Only peers with something to do: readable, commanded, or a timer/pacing due.
            touched.extend(
                self.peers
                    .iter()
                    .filter(|(_, p)| p.next_wake().is_some_and(|t| t <= now))
                    .map(|(i, _)| *i),
            );
            touched.sort_unstable();
            touched.dedup();
            for index in touched {
                if let Some(peer) = self.peers.get_mut(&index) {
                    let watch = !self.sinks.contains(&index);
                    service(peer, now, watch);
                }
            }
        }
    }

    /// Waits on every peer socket and the waker; returns the readable peers.
    fn wait(&self, timeout: Duration) -> Vec<usize> {
        let (index, fds): (Vec<usize>, Vec<std::os::fd::RawFd>) = self
            .peers
            .iter()
            .map(|(i, p)| (*i, p.socket.as_raw_fd()))
            .unzip();
        let ready = wait_readable(&fds, &self.waker, timeout);
        index
            .into_iter()
            .zip(ready)
            .filter_map(|(i, r)| r.then_some(i))
            .collect()
    }

    /// Applies queued commands; the peers they touched, or `None` when every handle is gone.
    fn drain_commands(&mut self) -> Option<Vec<usize>> {
        let mut touched = Vec::new();
        loop {
            match self.commands.try_recv() {
                Ok(WorkerCommand::Add {
                    index,
                    peer_id,
                    publish,
                    signal,
                    joined_at,
                    receive,
                }) => {
                    let is_publisher = publish.is_some();
                    match SynthPeer::new(self.bind, peer_id, publish, signal, joined_at, receive) {
                        Ok(peer) => {
                            if self.sink && !is_publisher {
                                match super::sink::drop_media(&peer.socket) {
                                    Ok(()) => _ = self.sinks.insert(index),
                                    Err(e) => tracing::warn!(index, error = %e, "no sink filter"),
                                }
                            }
                            self.peers.insert(index, peer);
                            touched.push(index);
                        }
                        Err(e) => {
                            tracing::warn!(index, error = %e, "synthetic peer failed to start")
                        }
                    }
                }
                Ok(WorkerCommand::Event { index, event }) => {
                    if let Some(peer) = self.peers.get_mut(&index) {
                        peer.on_event(event, Instant::now());
                        touched.push(index);
                    }
                }
                Ok(WorkerCommand::Remove { index }) => {
                    self.sinks.remove(&index);
                    if let Some(mut peer) = self.peers.remove(&index) {
                        let _ = peer.pc.close();
                        while let Some(msg) = peer.pc.poll_write() {
                            peer.queue.push(msg.transport.peer_addr, msg.message);
                        }
                        peer.queue.flush(&peer.socket);
                    }
                }
                Ok(WorkerCommand::Snapshot(reply)) => {
                    let _ = reply.send(self.snapshot());
                }
                Ok(WorkerCommand::Viewers { window, reply }) => {
                    let _ = reply.send(self.viewers(window));
                }
                Err(TryRecvError::Empty) => return Some(touched),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }

    fn read(&mut self, index: usize, now: Instant) {
        let Some(peer) = self.peers.get_mut(&index) else {
            return;
        };
        for _ in 0..16 {
            let Ok(n) = self.recv.recv(&peer.socket) else {
                return;
            };
            for i in 0..n {
                let Some((data, from)) = self.recv.get(i) else {
                    continue;
                };
                if peer.dtls_repeats.is_repeat(data) {
                    continue;
                }
                let _ = peer.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: peer.local,
                        peer_addr: from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: bytes::BytesMut::from(data),
                });
            }
            drain(peer, now);
            if n < udp::BATCH {
                return;
            }
        }
    }

    fn viewers(&self, window: (u64, u64)) -> Vec<SubscriberVideo> {
        let mut all = Vec::new();
        for peer in self.peers.values() {
            for (track, watch) in &peer.frames {
                let (name, asked) = (&peer.name, peer.want_layer);
                all.push(SubscriberVideo::of(name, track, asked, watch, window));
            }
        }
        all
    }

    fn snapshot(&self) -> WorkerSnapshot {
        let mut snap = WorkerSnapshot {
            cpu_seconds: crate::net::thread::thread_cpu_nanos() as f64 / 1e9,
            ..Default::default()
        };
        for peer in self.peers.values() {
            snap.totals.add(&peer.totals());
            for track in peer.incoming.values() {
                snap.latency.merge(&track.latency);
                snap.jitter_ms.push(track.jitter_ms());
            }
            snap.first_packet_ms.extend(peer.first_packet_ms);
            for f in &peer.failures {
                *snap.failures.entry(f.clone()).or_default() += 1;
            }
        }
        snap
    }
}

/// One turn of a peer: timers, events, received media, due sends, writes out.
fn service(peer: &mut SynthPeer, now: Instant, watch: bool) {
    if peer.next_timeout.is_some_and(|t| t <= now) {
        if let Err(e) = peer.pc.handle_timeout(now) {
            if is_handshake_give_up(&e) && !peer.connected {
                peer.failed = true;
                peer.failures.push("dtls-gave-up".into());
            }
        }
    }
    drain(peer, now);
    peer.next_pace = peer.pace(now);
    while let Some(msg) = peer.pc.poll_write() {
        peer.queue.push(msg.transport.peer_addr, msg.message);
    }
    if !peer.queue.is_empty() {
        peer.queue.flush(&peer.socket);
    }
    peer.next_timeout = peer.pc.poll_timeout();
    if watch {
        peer.watch(now);
    }
}

/// Events and received media of one peer.
fn drain(peer: &mut SynthPeer, now: Instant) {
    use rtc::peer_connection::event::RTCPeerConnectionEvent;
    use rtc::peer_connection::state::RTCPeerConnectionState;
    while let Some(event) = peer.pc.poll_event() {
        if let RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) = &event {
            peer.last_state = format!("ice {state}");
        }
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
            peer.last_state = format!("pc {state}");
            peer.connected = state == RTCPeerConnectionState::Connected;
            match state {
                RTCPeerConnectionState::Connected => peer.media_up = true,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    peer.media_up = false
                }
                _ => {}
            }
            if state == RTCPeerConnectionState::Failed {
                peer.failed = true;
                peer.failures.push("ice-failed".into());
            }
        }
    }
    while let Some(msg) = peer.pc.poll_read() {
        peer.on_message(msg.message, now);
    }
}
