//! The node registry: each node writes its [`NodeRecord`] (address, load, draining flag) to
//! `chorus:node:<id>` every heartbeat with a time-to-live of `--node-timeout-secs`, and lists
//! `chorus:nodes`; a node whose record has expired is dead and is removed from the set.

use super::{Cluster, KEY_PREFIX};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The set of node ids.
fn nodes_key() -> String {
    format!("{KEY_PREFIX}nodes")
}

/// The record of node `id`.
pub(super) fn node_key(id: &str) -> String {
    format!("{KEY_PREFIX}node:{id}")
}

/// One room hosted by a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomLoad {
    pub name: String,
    pub participants: usize,
}

/// What a node tells the others about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// WebSocket base URL (`ws://host:port`) other nodes relay to.
    pub url: String,
    /// Media addresses (ICE host candidates) its clients send media to.
    pub media: Vec<String>,
    pub rooms: Vec<RoomLoad>,
    pub participants: usize,
    /// RTP packets forwarded per second, over the last heartbeat.
    pub forwarded_pps: f64,
    /// Process CPU use over the last heartbeat, 0..1 of all cores.
    pub cpu: f64,
    pub draining: bool,
    /// Time of the heartbeat, Unix milliseconds.
    pub heartbeat_ms: u64,
}

impl NodeRecord {
    /// Load used to place rooms: lower is better.
    pub fn load(&self) -> (usize, usize, u64) {
        (
            self.participants,
            self.rooms.len(),
            (self.cpu * 1000.0) as u64,
        )
    }
}

/// What the server reports each heartbeat.
#[derive(Debug, Clone, Default)]
pub struct LoadSample {
    pub rooms: Vec<RoomLoad>,
    /// Total `chorus_forwarded_packets_total` so far.
    pub forwarded_packets: u64,
    pub draining: bool,
    pub media: Vec<SocketAddr>,
}

/// Turns cumulative counters into rates between heartbeats.
struct RateMeter {
    at: Instant,
    packets: u64,
    cpu_secs: f64,
}

impl RateMeter {
    fn new(packets: u64) -> Self {
        Self {
            at: Instant::now(),
            packets,
            cpu_secs: process_cpu_secs(),
        }
    }

    /// (packets per second, CPU share of all cores) since the last call.
    fn sample(&mut self, packets: u64) -> (f64, f64) {
        let now = Instant::now();
        let cpu_secs = process_cpu_secs();
        let wall = now.duration_since(self.at).as_secs_f64().max(1e-3);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let pps = packets.saturating_sub(self.packets) as f64 / wall;
        let cpu = ((cpu_secs - self.cpu_secs) / wall / cores).clamp(0.0, 1.0);
        *self = Self {
            at: now,
            packets,
            cpu_secs,
        };
        (pps, cpu)
    }
}

/// User + system CPU time of this process, seconds.
fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Cluster {
    /// Every quarter of the node timeout: writes this node's record, renews its rooms'
    /// placements, and refreshes the list of live nodes. On shutdown the record and the
    /// placements are removed, so the rooms can be placed elsewhere at once.
    pub fn spawn_heartbeat<F>(self: &Arc<Self>, sample: F, mut shutdown: watch::Receiver<bool>)
    where
        F: Fn() -> LoadSample + Send + 'static,
    {
        let cluster = self.clone();
        let every = heartbeat_interval(self.timeout);
        tokio::spawn(async move {
            let mut meter = RateMeter::new(sample().forwarded_packets);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut hosted = Vec::new();
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = cluster.beat_now.notified() => {}
                    _ = shutdown.changed() => break,
                }
                let load = sample();
                let (pps, cpu) = meter.sample(load.forwarded_packets);
                let record = cluster.record(&load, pps, cpu);
                // One slow Redis must not stop the heartbeats: each step is bounded.
                let limit = every.max(std::time::Duration::from_millis(500));
                if tokio::time::timeout(limit, cluster.beat(&record))
                    .await
                    .is_err()
                {
                    cluster
                        .metrics
                        .redis_errors
                        .with_label_values(&["heartbeat"])
                        .inc();
                    tracing::warn!("heartbeat: no answer from redis");
                }
                let renew = cluster.renew_rooms(&record.rooms, hosted.clone());
                if let Ok(now) = tokio::time::timeout(limit, renew).await {
                    hosted = now;
                }
                let _ = tokio::time::timeout(limit, cluster.refresh_nodes()).await;
            }
            cluster.leave(&hosted).await;
        });
    }

    fn record(&self, load: &LoadSample, forwarded_pps: f64, cpu: f64) -> NodeRecord {
        NodeRecord {
            id: self.node_id.clone(),
            url: self.node_url.clone(),
            media: load.media.iter().map(ToString::to_string).collect(),
            participants: load.rooms.iter().map(|r| r.participants).sum(),
            rooms: load.rooms.clone(),
            forwarded_pps,
            cpu,
            draining: load.draining,
            heartbeat_ms: unix_millis(),
        }
    }

    /// Writes this node's record with its time-to-live.
    async fn beat(&self, record: &NodeRecord) {
        let Ok(json) = serde_json::to_string(record) else {
            return;
        };
        let ttl = self.timeout.as_millis() as u64;
        let mut redis = self.redis();
        let result: redis::RedisResult<()> = redis::pipe()
            .set_options(
                node_key(&self.node_id),
                json,
                redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl)),
            )
            .ignore()
            .sadd(nodes_key(), &self.node_id)
            .ignore()
            .query_async(&mut redis)
            .await;
        if let Err(error) = result {
            self.redis_failed("heartbeat", &error);
        }
    }

    /// Reads every node's record; ids whose record expired are dead and removed.
    pub async fn refresh_nodes(&self) {
        match self.read_nodes().await {
            Ok(nodes) => {
                let draining = nodes.iter().filter(|n| n.draining).count();
                let gauge = &self.metrics.nodes;
                gauge.with_label_values(&["draining"]).set(draining as i64);
                let active = nodes.len() - draining;
                gauge.with_label_values(&["active"]).set(active as i64);
                let rooms: usize = nodes.iter().map(|n| n.rooms.len()).sum();
                let participants: usize = nodes.iter().map(|n| n.participants).sum();
                self.metrics.cluster_rooms.set(rooms as i64);
                self.metrics.cluster_participants.set(participants as i64);
                *self.nodes.write() = nodes;
            }
            Err(error) => self.redis_failed("list-nodes", &error),
        }
    }

    async fn read_nodes(&self) -> redis::RedisResult<Vec<NodeRecord>> {
        let mut redis = self.redis();
        let ids: Vec<String> = redis.smembers(nodes_key()).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| node_key(id)).collect();
        let records: Vec<Option<String>> = redis.mget(&keys).await?;
        let mut live = Vec::new();
        for (id, record) in ids.iter().zip(records) {
            match record.map(|json| serde_json::from_str::<NodeRecord>(&json)) {
                Some(Ok(record)) => live.push(record),
                Some(Err(error)) => tracing::warn!(node = %id, %error, "unreadable node record"),
                None => {
                    tracing::info!(node = %id, "node stopped heartbeating: removed");
                    let _: () = redis.srem(nodes_key(), id).await?;
                }
            }
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }

    /// Removes this node from the registry and gives up its rooms (clean shutdown).
    async fn leave(&self, hosted: &[String]) {
        for room in hosted {
            self.release_room(room).await;
        }
        let mut redis = self.redis();
        let result: redis::RedisResult<()> = redis::pipe()
            .del(node_key(&self.node_id))
            .ignore()
            .srem(nodes_key(), &self.node_id)
            .ignore()
            .query_async(&mut redis)
            .await;
        match result {
            Ok(()) => tracing::info!("left the cluster"),
            Err(error) => self.redis_failed("leave", &error),
        }
    }
}

/// How long [`Cluster::spawn_heartbeat`] waits between beats for a timeout.
pub fn heartbeat_interval(timeout: Duration) -> Duration {
    timeout / 4
}
