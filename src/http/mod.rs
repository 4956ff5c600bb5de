//! The HTTP server: builds the shared state, binds the listener and serves the axum router
//! (`/ws`, `/healthz`, `/readyz`, `/metrics`, `/`, the admin API under `/admin`). [`spawn`]
//! starts the whole server in-process, which is how both `chorus serve` and the integration
//! tests run it. This module owns startup, graceful drain and shutdown; request handling lives
//! in `routes.rs` and `admin.rs`, the protocol in `signal`.
//!
//! Drain ([`RunningServer::drain`], what SIGTERM triggers): `/readyz` fails at once, every new
//! join is refused with `server-draining`, and calls in progress go on until every room is empty
//! or the timeout passes; then the caller shuts the server down.

mod admin;
mod budget;
mod origin;
mod relayed;
mod routes;
mod serve;
mod web;

use crate::auth::TokenAuthority;
use crate::config::{Config, ConfigError};
use crate::media::{MediaEngine, MediaError};
use crate::metrics::Metrics;
use crate::protocol::IceServer;
use crate::room::{RoomLimits, RoomRegistry};
use crate::signal::SignalContext;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("media engine: {0}")]
    Media(#[from] MediaError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
    #[error("cluster (--redis-url): {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("HTTP server task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// State of the HTTP handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub signal: Arc<SignalContext>,
    pub ready: Arc<AtomicBool>,
    pub next_connection: Arc<AtomicU64>,
    /// Open WebSockets, against `--max-connections` and `--max-connections-per-ip`.
    pub budget: Arc<budget::ConnectionBudget>,
    /// Which web origins may open WebSockets.
    pub origins: Arc<origin::OriginPolicy>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every room emptied.
    RoomsEmpty,
    /// The timeout passed with this many rooms still open.
    TimedOut { rooms: usize },
}

/// A server running on the current tokio runtime. Dropping it shuts the server down without
/// waiting (the listener stops and every WebSocket is closed with 1001); [`Self::shutdown`]
/// does the same and waits.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    metrics_task: Option<JoinHandle<std::io::Result<()>>>,
    state: AppState,
}

impl RunningServer {
    /// The address the HTTP/WebSocket listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the separate metrics listener (`--metrics-addr`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The server's metrics (tests read them to check that counters moved).
    pub fn metrics(&self) -> &Metrics {
        &self.state.signal.metrics
    }

    /// The room registry.
    pub fn rooms(&self) -> &RoomRegistry {
        &self.state.signal.rooms
    }

    /// Starts draining: `/readyz` answers 503 and joins are refused with `server-draining`
    /// from now on. Calls in progress are not touched. Idempotent.
    pub fn begin_drain(&self) {
        self.state.ready.store(false, Ordering::SeqCst);
        let signal = &self.state.signal;
        if !signal.draining.swap(true, Ordering::SeqCst) {
            signal.metrics.draining.set(1);
            if let Some(cluster) = &signal.cluster {
                // The registry says so at once: no new room is placed here from now on.
                cluster.beat_now();
            }
            tracing::info!(
                rooms = signal.rooms.len(),
                "draining: new joins are refused"
            );
        }
    }

    /// [`Self::begin_drain`], then waits until every room is empty or `timeout` passes. The
    /// server keeps serving; call [`Self::shutdown`] afterwards.
    pub async fn drain(&self, timeout: Duration) -> DrainOutcome {
        self.begin_drain();
        let deadline = Instant::now() + timeout;
        let rooms = &self.state.signal.rooms;
        loop {
            if rooms.is_empty() {
                tracing::info!("drained: every room is empty");
                return DrainOutcome::RoomsEmpty;
            }
            let now = Instant::now();
            if now >= deadline {
                let open = rooms.len();
                tracing::warn!(rooms = open, "drain timeout: closing the calls still going");
                return DrainOutcome::TimedOut { rooms: open };
            }
            tokio::time::sleep(DRAIN_POLL.min(deadline - now)).await;
        }
    }

    /// Stops accepting connections, closes every WebSocket with 1001 and waits (up to 5 s)
    /// for the server to finish.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.state.ready.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        let tasks = async {
            if let Some(metrics) = self.metrics_task {
                if let Err(e) = metrics.await? {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            }
            self.task.await?.map_err(ServerError::Serve)
        };
        match tokio::time::timeout(Duration::from_secs(5), tasks).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("server did not stop within 5 s");
                Ok(())
            }
        }
    }

    /// Waits until the server stops by itself (it only does on error).
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        (&mut self.task).await?.map_err(ServerError::Serve)
    }
}

/// Joins the cluster of `--redis-url`, if set.
async fn connect_cluster(
    config: &Config,
    addr: SocketAddr,
    metrics: &Metrics,
) -> Result<Option<Arc<crate::cluster::Cluster>>, ServerError> {
    let Some(url) = config.redis_url.as_deref() else {
        return Ok(None);
    };
    let cluster = crate::cluster::Cluster::connect(config, url, addr, metrics.registry()).await?;
    Ok(Some(cluster))
}

/// What the cluster heartbeat reports of this node: its rooms, forwarded packets, draining
/// state and media addresses.
fn load_sampler(signal: &Arc<SignalContext>) -> impl Fn() -> crate::cluster::LoadSample {
    let signal = Arc::downgrade(signal);
    move || {
        let Some(signal) = signal.upgrade() else {
            return Default::default();
        };
        let rooms = signal
            .rooms
            .list()
            .iter()
            .map(|room| crate::cluster::registry::RoomLoad {
                name: room.name().to_owned(),
                participants: room.len(),
            })
            .collect();
        crate::cluster::LoadSample {
            rooms,
            forwarded_packets: forwarded_packets(signal.media.registry()),
            draining: signal.is_draining(),
            media: signal.media.candidates(),
        }
    }
}

/// The media engine's `chorus_forwarded_packets_total`.
fn forwarded_packets(registry: &prometheus::Registry) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == "chorus_forwarded_packets_total")
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_counter().value() as u64)
        .sum()
}

/// How often a drain looks whether the rooms are empty.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// File descriptors kept free of WebSockets (listeners, media sockets, probes, `/metrics`).
const SPARE_FILES: u64 = 256;

/// `--max-connections`, lowered when the open-file limit could not hold that many WebSockets
/// plus [`SPARE_FILES`], so `/healthz` and the media plane still get descriptors at a full table.
fn connection_cap(configured: usize) -> usize {
    let Some(limit) = crate::rlimit::file_limit() else {
        return configured;
    };
    let room = limit.soft.saturating_sub(SPARE_FILES).max(1);
    if (configured as u64) <= room {
        return configured;
    }
    tracing::warn!(
        configured,
        open_file_limit = limit.soft,
        cap = room,
        "--max-connections is above what the open-file limit allows; lowering it"
    );
    usize::try_from(room).unwrap_or(configured)
}

/// Validates `config`, starts the media engine, binds `config.listen` and serves in a background
/// task. With `--listen 127.0.0.1:0` the OS picks the port; [`RunningServer::addr`] tells it.
pub async fn spawn(config: Config) -> Result<RunningServer, ServerError> {
    config.validate()?;
    let metrics = Metrics::new()?;
    let media = MediaEngine::start(config.media())?;
    let auth = match config.auth_secret.as_deref() {
        Some(secret) => Some(TokenAuthority::new(secret.as_bytes())),
        None => {
            tracing::warn!(
                "NO --auth-secret SET: this server is OPEN; anyone who can reach it may join any \
                 room. Set CHORUS_AUTH_SECRET to require access tokens."
            );
            None
        }
    };
    let limits = RoomLimits {
        max_rooms: config.max_rooms,
        max_members: config.max_participants,
        chat_history: config.chat_history,
    };
    let rooms = RoomRegistry::new(limits, metrics.clone());
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cluster = connect_cluster(&config, addr, &metrics).await?;
    let config_max_connections = config.max_connections;
    let config_max_per_ip = config.max_connections_per_ip;
    let header_timeout = config.header_timeout();
    let origins = origin::OriginPolicy::new(&config.allowed_origins);
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|url| IceServer {
            urls: vec![url.clone()],
            username: None,
            credential: None,
        })
        .collect();
    let signal = Arc::new(SignalContext {
        config,
        rooms,
        metrics,
        auth,
        media,
        shutdown: shutdown_rx.clone(),
        ice_servers,
        draining: AtomicBool::new(false),
        identities: Default::default(),
        cluster,
    });
    let state = AppState {
        signal,
        ready: Arc::new(AtomicBool::new(true)),
        next_connection: Arc::new(AtomicU64::new(1)),
        budget: budget::ConnectionBudget::new(
            connection_cap(config_max_connections),
            config_max_per_ip,
        ),
        origins: Arc::new(origins),
    };
    let metrics_listener =
        match state.signal.config.metrics_addr {
            Some(metrics_addr) => Some(TcpListener::bind(metrics_addr).await.map_err(
                |source| ServerError::Bind {
                    addr: metrics_addr,
                    source,
                },
            )?),
            None => None,
        };
    let mut app = routes::router(state.clone());
    if state.signal.config.admin_key.is_some() {
        app = app.merge(admin::router(state.clone()));
    }
    let (metrics_addr, metrics_task) = match metrics_listener {
        Some(listener) => {
            let bound = listener.local_addr().map_err(ServerError::Serve)?;
            let router = routes::metrics_router(state.clone());
            let serve = serve::serve(listener, router, header_timeout, shutdown_rx.clone());
            tracing::info!(addr = %bound, "metrics listening");
            (Some(bound), Some(tokio::spawn(serve)))
        }
        None => (None, None),
    };
    if let Some(cluster) = &state.signal.cluster {
        cluster.spawn_heartbeat(load_sampler(&state.signal), shutdown_rx.clone());
        if let Some(opened) = cluster.spawn_relay(shutdown_rx.clone()) {
            relayed::spawn(state.clone(), opened, shutdown_rx.clone());
        }
    }
    let task = tokio::spawn(serve::serve(listener, app, header_timeout, shutdown_rx));
    tracing::info!(%addr, "listening");
    Ok(RunningServer {
        addr,
        metrics_addr,
        shutdown: shutdown_tx,
        task,
        metrics_task,
        state,
    })
}
