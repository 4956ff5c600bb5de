//! The SFU media engine: one WebRTC PeerConnection per client, RTP forwarded between the members
//! of a room. Signaling talks to it only through [`MediaEngine::join`] and the [`MediaLeg`] it
//! returns; everything the engine has to tell a client arrives as [`MediaEvent`]s on the channel
//! given at join.
//!
//! Shape: `--udp-threads` shard threads ([`shard`]), each owning UDP sockets on its own port
//! (shard k uses `udp_port + k`) and every PeerConnection of the rooms pinned to it, so
//! forwarding inside a room needs no lock and no cross-thread hop. Commands reach a shard over a
//! channel plus an eventfd wake-up. Inside a shard, the sans-IO [`state::ShardState`] holds the
//! connections ([`peer`]), the demux tables ([`demux`], which learn a client's address only
//! from a STUN request [`stun_auth`] verified) and the rooms ([`room`]), and ends connections
//! that went silent or never came up ([`liveness`]); a room owns
//! its publications ([`publication`]), decides who receives which ([`subscriptions`]) and who
//! speaks ([`speakers`], from the audio levels its publications count on ingress); one
//! packet's path is `shard` (socket) → `state` (demux, connection) → `room` → `forward`
//! (fan-out, `rewrite` per leg) → the subscribers' connections → `shard` (socket).
//!
//! Negotiation rule (glare-safe): the client may offer whenever its signaling state is stable;
//! the server offers when subscriptions change and its own state is stable. The server is the
//! polite peer: a client offer that crosses a server offer makes the server roll its offer
//! back, answer the client, and re-offer afterwards. A client therefore ignores a server offer
//! that arrives while it has its own offer outstanding.

pub mod backlog;
pub mod buffer_pool;
pub mod bwe;
pub mod capabilities;
pub mod codecs;
pub mod datagram;
pub mod demux;
pub mod fast;
pub mod fault;
pub mod forward;
pub mod heartbeat;
pub mod key_map;
pub mod keyframe;
pub mod layer_review;
pub mod leg_bandwidth;
pub mod leg_packet;
pub mod liveness;
pub mod packet_cache;
pub mod peer;
pub mod placement;
pub mod pli;
pub mod publication;
pub mod recycle;
pub mod rewrite;
pub mod room;
pub mod sdp;
pub mod sending;
pub mod shard;
pub mod simulcast;
pub mod speakers;
pub mod state;
pub mod stats;
pub mod stun_auth;
pub mod subscriptions;
#[cfg(test)]
mod tests;
pub mod timers;
pub mod transmit;

pub use crate::config::MediaConfig;
use crate::net::thread::pin_to_core;
use crate::net::udp;
use crate::protocol::{CodecCapability, MediaEvent, MediaRequest};
use heartbeat::ShardHealth;
pub use peer::MediaGrants;
use peer::MediaMember;
use shard::{Command, Shard, ShardSocket, Waker};
use stats::MediaMetrics;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc as tokio_mpsc;

/// Errors starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("media metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

struct ShardHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    ports: Vec<SocketAddr>,
}

impl ShardHandle {
    fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            self.waker.wake();
        }
    }
}

struct EngineInner {
    shards: Vec<ShardHandle>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    next_key: AtomicU64,
    registry: prometheus::Registry,
    health: ShardHealth,
    placement: placement::Placement,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        for shard in &self.shards {
            shard.send(Command::Shutdown);
        }
        if let Ok(mut threads) = self.threads.lock() {
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// Handle to the running engine; cheap to clone. The shards stop when the last handle and
/// the last leg are gone.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

/// The sockets of shard `index`: one per local address, all on the same port when possible.
fn bind_shard_sockets(config: &MediaConfig, index: usize) -> std::io::Result<Vec<ShardSocket>> {
    let port = if config.udp_port == 0 {
        0
    } else {
        config.udp_port.saturating_add(index as u16)
    };
    let mut sockets = Vec::new();
    if !config.advertise_ips.is_empty() || !config.bind_ip.is_unspecified() {
        let socket = udp::bind(SocketAddr::new(config.bind_ip, port))?;
        let bound = socket.local_addr()?;
        let advertised = config.advertise_ips.first().copied().unwrap_or(bound.ip());
        sockets.push(ShardSocket {
            socket,
            candidate: SocketAddr::new(advertised, bound.port()),
            queue: Default::default(),
        });
        return Ok(sockets);
    }
    let mut chosen_port = port;
    for ip in udp::interface_ipv4s() {
        let socket = match udp::bind(SocketAddr::new(ip, chosen_port)) {
            Ok(s) => s,
            Err(_) if chosen_port != 0 && port == 0 => udp::bind(SocketAddr::new(ip, 0))?,
            Err(e) => return Err(e),
        };
        let bound = socket.local_addr()?;
        if chosen_port == 0 {
            chosen_port = bound.port();
        }
        sockets.push(ShardSocket {
            socket,
            candidate: bound,
            queue: Default::default(),
        });
    }
    Ok(sockets)
}

/// With explicit `--advertise-ip`s and one bound socket, every advertised address is a
/// candidate of that socket; extra ones are added as further candidates on the same socket.
fn extra_candidates(config: &MediaConfig, sockets: &[ShardSocket]) -> Vec<SocketAddr> {
    match sockets.first() {
        Some(s) if config.advertise_ips.len() > 1 => config.advertise_ips[1..]
            .iter()
            .map(|ip| SocketAddr::new(*ip, s.candidate.port()))
            .collect(),
        _ => Vec::new(),
    }
}

impl MediaEngine {
    /// Binds the shard sockets and starts the shard threads.
    pub fn start(config: MediaConfig) -> Result<Self, MediaError> {
        let registry = prometheus::Registry::new();
        let metrics = MediaMetrics::new(&registry)?;
        let threads = if config.udp_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.udp_threads
        };
        let health = ShardHealth::new(threads, &registry)?;
        let mut shards = Vec::new();
        let mut handles = Vec::new();
        for index in 0..threads {
            let sockets = bind_shard_sockets(&config, index)?;
            let ports: Vec<SocketAddr> = sockets
                .iter()
                .map(|s| s.candidate)
                .chain(extra_candidates(&config, &sockets))
                .collect();
            let (tx, rx) = mpsc::channel();
            let waker = Arc::new(Waker::new()?);
            let mut shard = Shard::new(
                index,
                sockets,
                rx,
                waker.clone(),
                metrics.clone(),
                config.limits,
            );
            shard.set_heartbeat(health.heartbeat(index));
            let pin = config.pin_shards.then_some(index);
            let handle = std::thread::Builder::new()
                .name(format!("chorus-shard-{index}"))
                .spawn(move || {
                    if let Some(index) = pin {
                        pin_to_core(index);
                    }
                    shard.run()
                })?;
            handles.push(handle);
            shards.push(ShardHandle {
                commands: tx,
                waker,
                ports,
            });
        }
        tracing::info!(
            shards = threads,
            candidates = ?shards.iter().flat_map(|s| s.ports.iter()).collect::<Vec<_>>(),
            "media engine started"
        );
        let placement = placement::Placement::new(shards.len());
        Ok(Self {
            inner: Arc::new(EngineInner {
                shards,
                threads: Mutex::new(handles),
                next_key: AtomicU64::new(1),
                placement,
                registry,
                health,
            }),
        })
    }

    /// The media metrics (gathered by `/metrics` alongside the signaling ones), with the
    /// shard heartbeat ages brought up to date.
    pub fn registry(&self) -> &prometheus::Registry {
        self.inner.health.refresh(std::time::Instant::now());
        &self.inner.registry
    }

    /// The shards whose loop has not started a turn for longer than
    /// [`heartbeat::STALLED_AFTER`], with how long (what `/readyz` reports).
    pub fn stalled_shards(&self) -> Vec<(usize, std::time::Duration)> {
        self.inner.health.stalled(std::time::Instant::now())
    }

    /// The host candidates of every shard (what clients are told to connect to).
    pub fn candidates(&self) -> Vec<SocketAddr> {
        self.inner
            .shards
            .iter()
            .flat_map(|s| s.ports.iter().copied())
            .collect()
    }

    /// Registers `peer_id` as a media participant of `room`. Events for the client (server
    /// offers, candidates, track announcements, errors) are sent on `events`. Dropping the
    /// returned leg tears the participant's PeerConnection down and unpublishes its tracks.
    pub fn join(
        &self,
        room: &str,
        peer_id: &str,
        events: tokio_mpsc::UnboundedSender<MediaEvent>,
    ) -> MediaLeg {
        self.join_with_grants(room, peer_id, MediaGrants::default(), None, events)
    }

    /// [`MediaEngine::join`] for a participant whose token limits what it may do: without
    /// `publish` its tracks are refused (`forbidden`), without `subscribe` nothing is sent to it.
    /// `receive` is what it declared it can decode (`join.receive.codecs`); `None`: the default.
    pub fn join_with_grants(
        &self,
        room: &str,
        peer_id: &str,
        grants: MediaGrants,
        receive: Option<Vec<CodecCapability>>,
        events: tokio_mpsc::UnboundedSender<MediaEvent>,
    ) -> MediaLeg {
        let key = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
        let shard = self.inner.placement.enter(room);
        let leg = MediaLeg {
            key,
            shard,
            room: room.to_owned(),
            engine: self.clone(),
        };
        leg.send(Command::Join {
            key,
            member: MediaMember {
                room: room.to_owned(),
                peer_id: peer_id.to_owned(),
                grants,
                events,
                receive,
            },
        });
        leg
    }

    /// Operator action: mutes or unmutes `track_id` in `room` (the room is told, forwarding
    /// stops). Returns whether the track exists.
    pub async fn admin_mute(&self, room: &str, track_id: &str, muted: bool) -> bool {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.shard_handle(room).send(Command::AdminMute {
            room: room.to_owned(),
            track_id: track_id.to_owned(),
            muted,
            reply,
        });
        answer.await.unwrap_or(false)
    }

    /// The tracks published in `room` (for the admin API).
    pub async fn room_tracks(&self, room: &str) -> Vec<crate::protocol::TrackInfo> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.shard_handle(room).send(Command::ListTracks {
            room: room.to_owned(),
            reply,
        });
        answer.await.unwrap_or_default()
    }

    /// The shard hosting `room` (any shard when it has no media legs: it knows no such room).
    fn shard_handle(&self, room: &str) -> &ShardHandle {
        let index = self.inner.placement.shard_of(room).unwrap_or(0);
        &self.inner.shards[index.min(self.inner.shards.len().saturating_sub(1))]
    }
}

/// One participant's media session, owned by its signaling session.
pub struct MediaLeg {
    key: u64,
    shard: usize,
    room: String,
    engine: MediaEngine,
}

impl std::fmt::Debug for MediaLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLeg").field("key", &self.key).finish()
    }
}

impl MediaLeg {
    fn send(&self, command: Command) {
        if let Some(shard) = self.engine.inner.shards.get(self.shard) {
            shard.send(command);
        }
    }

    /// Hands a client media request (offer, answer, candidate, mute, subscribe…) to the engine.
    pub fn request(&self, request: MediaRequest) {
        self.send(Command::Request {
            key: self.key,
            request,
        });
    }
}

impl Drop for MediaLeg {
    fn drop(&mut self) {
        self.send(Command::Leave { key: self.key });
        self.engine.inner.placement.leave(&self.room);
    }
}
