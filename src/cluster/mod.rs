//! Several Chorus nodes sharing one Redis (`--redis-url`): the node registry with heartbeats
//! and load ([`registry`]), room → node placement ([`placement`]), the signaling relay that
//! carries a client's messages from the node that accepted its WebSocket to the node its room
//! lives on as envelopes over Redis pub/sub ([`bus`], [`envelope`], [`relay`]), and the chat
//! history kept in Redis ([`chat_store`]). Without `--redis-url` none of this runs. Redis
//! coordinates (who is alive, where each room lives) and carries relayed signaling; media never
//! passes through it. This module must not touch rooms or media itself: the server hands it a
//! [`LoadSample`] each heartbeat and serves the relayed connections it hands out.

pub mod bus;
pub mod chat_store;
pub mod envelope;
pub mod placement;
pub mod registry;
pub mod relay;

pub use placement::Placement;
pub use registry::{LoadSample, NodeRecord};

use crate::config::Config;
use parking_lot::RwLock;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Prefix of every key Chorus writes.
pub const KEY_PREFIX: &str = "chorus:";
/// How long one Redis command may take before it counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one cluster operation (a few commands) may take in all.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the cluster could not be reached or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cluster metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Cluster metrics (registered in the server's registry).
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    /// Live nodes this node sees, by state (`active`, `draining`).
    pub nodes: IntGaugeVec,
    /// Connections this node relays to another node, and relayed connections it serves.
    pub relayed: IntGaugeVec,
    /// Placement decisions, by result (`local`, `remote`, `error`).
    pub placements: IntCounterVec,
    /// Redis commands that failed, by operation.
    pub redis_errors: IntCounterVec,
    /// Relay envelopes published to other nodes and received from them (`direction`).
    pub relay_envelopes: IntCounterVec,
    /// 1, labelled with this node's id (maps an instance to its node id on dashboards).
    pub node_info: IntGaugeVec,
    /// Rooms open on all live nodes together, as of the last heartbeat.
    pub cluster_rooms: IntGauge,
    /// Room members on all live nodes together, as of the last heartbeat.
    pub cluster_participants: IntGauge,
}

impl ClusterMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let nodes = IntGaugeVec::new(
            Opts::new("chorus_cluster_nodes", "Live cluster nodes seen, by state"),
            &["state"],
        )?;
        let relayed = IntGaugeVec::new(
            Opts::new(
                "chorus_cluster_relayed_connections",
                "Connections relayed between nodes (out: this node relays; in: it serves one)",
            ),
            &["direction"],
        )?;
        let placements = IntCounterVec::new(
            Opts::new(
                "chorus_cluster_placements_total",
                "Room placements, by result",
            ),
            &["result"],
        )?;
        let redis_errors = IntCounterVec::new(
            Opts::new("chorus_cluster_redis_errors_total", "Failed Redis commands"),
            &["op"],
        )?;
        let relay_envelopes = IntCounterVec::new(
            Opts::new(
                "chorus_cluster_relay_envelopes_total",
                "Relay envelopes published to other nodes' inboxes and received in this one's",
            ),
            &["direction"],
        )?;
        let node_info = IntGaugeVec::new(
            Opts::new("chorus_cluster_node_info", "This node's id in the cluster"),
            &["node"],
        )?;
        let cluster_rooms = IntGauge::new(
            "chorus_cluster_rooms",
            "Rooms open on all live nodes, as of the last heartbeat",
        )?;
        let cluster_participants = IntGauge::new(
            "chorus_cluster_participants",
            "Room members on all live nodes, as of the last heartbeat",
        )?;
        registry.register(Box::new(cluster_rooms.clone()))?;
        registry.register(Box::new(cluster_participants.clone()))?;
        registry.register(Box::new(nodes.clone()))?;
        registry.register(Box::new(relayed.clone()))?;
        registry.register(Box::new(placements.clone()))?;
        registry.register(Box::new(redis_errors.clone()))?;
        registry.register(Box::new(node_info.clone()))?;
        registry.register(Box::new(relay_envelopes.clone()))?;
        for direction in ["published", "received"] {
            relay_envelopes.with_label_values(&[direction]);
        }
        for state in ["active", "draining"] {
            nodes.with_label_values(&[state]);
        }
        for direction in ["in", "out"] {
            relayed.with_label_values(&[direction]);
        }
        for result in ["local", "remote", "error"] {
            placements.with_label_values(&[result]);
        }
        Ok(Self {
            nodes,
            relayed,
            placements,
            redis_errors,
            relay_envelopes,
            node_info,
            cluster_rooms,
            cluster_participants,
        })
    }
}

/// This node's handle on the cluster, shared by every session.
pub struct Cluster {
    /// This node's id.
    pub node_id: String,
    /// The base URL this node is reached at (`--node-url`), listed in the registry.
    pub node_url: String,
    /// The shared secret every relayed connection's `open` envelope carries.
    pub relay_key: String,
    /// Signaling to and from the other nodes (Redis pub/sub).
    pub bus: Arc<bus::RelayBus>,
    /// The inbox subscription and the relayed connections it opens, until the server starts
    /// reading them ([`Self::spawn_relay`]).
    relay_start: parking_lot::Mutex<Option<RelayStart>>,
    pub timeout: Duration,
    pub metrics: ClusterMetrics,
    redis: ConnectionManager,
    /// The live nodes as of the last heartbeat (this one included once it has written).
    nodes: RwLock<Vec<NodeRecord>>,
    /// Wakes the heartbeat before its time (e.g. a drain began: say so at once).
    beat_now: tokio::sync::Notify,
}

/// What [`Cluster::spawn_relay`] starts.
struct RelayStart {
    client: redis::Client,
    stream: redis::aio::PubSubStream,
    opened: tokio::sync::mpsc::Receiver<bus::Opened>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("node_url", &self.node_url)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to `--redis-url` and reads (or sets) the cluster's relay key. `listen` is the
    /// bound HTTP address, for the default `--node-url`.
    pub async fn connect(
        config: &Config,
        url: &str,
        listen: SocketAddr,
        registry: &Registry,
    ) -> Result<Arc<Self>, ClusterError> {
        let client = redis::Client::open(url)?;
        let node_id = config.node_id.clone().unwrap_or_else(default_node_id);
        let metrics = ClusterMetrics::new(registry)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(2);
        let connect = async {
            let mut redis =
                ConnectionManager::new_with_config(client.clone(), manager_config).await?;
            let relay_key = placement::relay_key(&mut redis).await?;
            Ok::<_, redis::RedisError>((redis, relay_key))
        };
        let (redis, relay_key) = bounded(connect).await?;
        let (bus, stream, opened) = bus::RelayBus::connect(
            &client,
            redis.clone(),
            &node_id,
            &relay_key,
            &metrics,
            config.send_queue,
        )
        .await?;
        let node_url = config
            .node_url
            .clone()
            .unwrap_or_else(|| default_node_url(config, listen));
        metrics.node_info.with_label_values(&[&node_id]).set(1);
        tracing::info!(node = %node_id, url = %node_url, "joined the cluster");
        Ok(Arc::new(Self {
            node_id,
            node_url: node_url.trim_end_matches('/').to_owned(),
            relay_key,
            bus,
            relay_start: parking_lot::Mutex::new(Some(RelayStart {
                client,
                stream,
                opened,
            })),
            timeout: config.node_timeout(),
            metrics,
            redis,
            nodes: RwLock::new(Vec::new()),
            beat_now: tokio::sync::Notify::new(),
        }))
    }

    /// A connection to Redis (cheap: the manager multiplexes one connection).
    fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// Starts reading this node's relay inbox (once; `None` after the first call): returns the
    /// connections other nodes relay here, for the server to serve.
    pub fn spawn_relay(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::sync::mpsc::Receiver<bus::Opened>> {
        let start = self.relay_start.lock().take()?;
        self.bus.spawn(start.client, start.stream, shutdown);
        Some(start.opened)
    }

    /// Heartbeats now rather than at the next tick (a drain began).
    pub fn beat_now(&self) {
        self.beat_now.notify_one();
    }

    /// Whether node `id` was alive at the last heartbeat.
    pub fn is_live(&self, id: &str) -> bool {
        self.nodes.read().iter().any(|n| n.id == id)
    }

    /// The live nodes as of the last heartbeat.
    pub fn nodes(&self) -> Vec<NodeRecord> {
        self.nodes.read().clone()
    }

    /// Counts a failed Redis operation and logs it.
    fn redis_failed(&self, op: &str, error: &redis::RedisError) {
        self.metrics.redis_errors.with_label_values(&[op]).inc();
        tracing::warn!(op, %error, "redis command failed");
    }
}

/// `op`, failed with a timeout error if Redis does not answer within [`OP_TIMEOUT`] (the
/// connection manager would otherwise keep reconnecting while a client waits).
pub(crate) async fn bounded<T>(
    op: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from Redis within {OP_TIMEOUT:?}"),
        ))),
    }
}

/// The host name and a random suffix, e.g. `web-1-3fa2c1`.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(48)
        .collect();
    let suffix: u32 = rand::random();
    match host.is_empty() {
        true => format!("node-{suffix:08x}"),
        false => format!("{host}-{suffix:08x}"),
    }
}

/// `ws://` + the listen address; when listening on every address, the first `--advertise-ip`
/// (else 127.0.0.1, which only works with every node on one host: set `--node-url`).
fn default_node_url(config: &Config, listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if !ip.is_unspecified() => ip,
        _ => match config.advertise_ips.first() {
            Some(ip) => *ip,
            None => {
                tracing::warn!(
                    "no --node-url and no --advertise-ip: other nodes are told 127.0.0.1"
                );
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            }
        },
    };
    format!("ws://{}", SocketAddr::new(ip, listen.port()))
}
