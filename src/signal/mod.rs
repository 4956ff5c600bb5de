//! Signaling: the `/ws` protocol (wire types in [`crate::protocol`]) and the per-connection session
//! task that speaks it ([`session`]). A session validates and interprets client frames, talks to
//! the room registry and the media engine, and writes replies and events to its socket. This
//! module must not hold room state itself or forward media.

pub mod identity;
pub mod rate_limit;
pub mod session;
pub mod transport;

mod mesh;
mod relay;
mod sfu;

use crate::auth::TokenAuthority;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::media::MediaEngine;
use crate::metrics::Metrics;
use crate::protocol::IceServer;
use crate::room::RoomRegistry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Everything a session needs from the server, shared by all sessions.
#[derive(Debug)]
pub struct SignalContext {
    pub config: Config,
    pub rooms: RoomRegistry,
    pub metrics: Metrics,
    /// `None` when the server runs open (no `--auth-secret`).
    pub auth: Option<TokenAuthority>,
    pub media: MediaEngine,
    /// Becomes `true` when the server shuts down; sessions close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// Sent to clients in `joined`.
    pub ice_servers: Vec<IceServer>,
    /// Set when the server starts draining: joins are refused with `server-draining`.
    pub draining: AtomicBool,
    /// Which connection holds each token identity in each room.
    pub identities: identity::IdentityTable,
    /// The cluster this node belongs to (`--redis-url`), if any.
    pub cluster: Option<Arc<Cluster>>,
}

impl SignalContext {
    /// True once the server drains (no new joins).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
