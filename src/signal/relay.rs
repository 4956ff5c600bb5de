//! The cluster side of a session (`--redis-url`): before a connection joins a room, it asks
//! where the room lives; if on another node, the session relays itself there over Redis
//! ([`crate::cluster::relay`]) and only copies messages from then on. It must not hold room
//! state; the room's node does everything else.

use super::session::{close_code, Flow, Session};
use super::transport::Transport;
use crate::cluster::relay::{self, RelayEnd, RelayTiming};
use crate::cluster::{NodeRecord, Placement};
use crate::protocol::ErrorCode;
use crate::room::Frame;

/// Close code after the room's node was lost: try again later (the client reconnects).
pub const TRY_AGAIN_LATER: u16 = 1013;

impl Session {
    /// In a cluster, routes a joining connection to the node room `room` lives on: `None` to
    /// join here, `Some` when the connection was relayed (and the relay has ended) or refused.
    /// `replay` is the frame that asked to join, sent on to the room's node.
    pub(super) async fn route_to_owner(
        &mut self,
        room: &str,
        replay: Option<&Frame>,
    ) -> Option<Flow> {
        let cluster = self.ctx.cluster.clone()?;
        match cluster.place(room, self.ctx.is_draining()).await {
            Ok(Placement::Local) => None,
            Ok(Placement::Remote(_)) if self.params.relayed => {
                // Placed anew while the relay was opening: never a second hop.
                let message = "the room moved to another node; connect again";
                Some(
                    self.send_error(ErrorCode::ClusterUnavailable, message)
                        .await,
                )
            }
            Ok(Placement::Remote(node)) => {
                self.leave_current();
                Some(self.relay_to(&node, replay).await)
            }
            Err(error) => {
                tracing::error!(%error, room, "cannot place the room: redis unavailable");
                let message = "the cluster's store (Redis) cannot be reached; try again";
                Some(
                    self.send_error(ErrorCode::ClusterUnavailable, message)
                        .await,
                )
            }
        }
    }

    /// Relays this connection to `node` until either side ends it.
    async fn relay_to(&mut self, node: &NodeRecord, replay: Option<&Frame>) -> Flow {
        let Some(cluster) = self.ctx.cluster.clone() else {
            return Flow::Continue;
        };
        let client_ip = self.params.remote.map(|a| a.ip());
        let link = match cluster
            .bus
            .open(&node.id, &self.params.query, client_ip)
            .await
        {
            Ok(link) => link,
            Err(error) => {
                tracing::warn!(node = %node.id, %error, "cannot reach the room's node");
                let message = "the room's node cannot be reached; try again";
                return self
                    .send_error(ErrorCode::ClusterUnavailable, message)
                    .await;
            }
        };
        tracing::info!(node = %node.id, "relaying to the room's node");
        let config = &self.ctx.config;
        let timing = RelayTiming {
            ping_interval: config.ping_interval(),
            idle_timeout: config.idle_timeout(),
            max_message: config.message_limit(),
            max_frame: config.max_frame_bytes,
        };
        let first = replay.map(|f| f.as_str().to_owned()).into_iter().collect();
        let Transport::Ws(socket) = &mut self.socket else {
            return Flow::Continue;
        };
        let gauge = cluster.metrics.relayed.with_label_values(&["out"]);
        gauge.inc();
        let shutdown = self.ctx.shutdown.clone();
        let end = relay::pump(&cluster, socket, link, first, timing, shutdown).await;
        gauge.dec();
        tracing::info!(node = %node.id, ?end, "relay ended");
        self.after_relay(end).await
    }

    async fn after_relay(&mut self, end: RelayEnd) -> Flow {
        match end {
            RelayEnd::ClientGone => Flow::Gone,
            RelayEnd::ClientTooBig => Flow::Close(close_code::MESSAGE_TOO_BIG, "message too big"),
            RelayEnd::ClientSlow => {
                let message = "too many undelivered messages";
                let _ = self.send_error(ErrorCode::SlowConsumer, message).await;
                Flow::Close(close_code::POLICY_VIOLATION, "send queue overflow")
            }
            RelayEnd::OwnerClosed(code) => Flow::Close(code, "closed by the room's node"),
            RelayEnd::ClientIdle => Flow::Close(close_code::GOING_AWAY, "idle timeout"),
            RelayEnd::Shutdown => Flow::Close(close_code::GOING_AWAY, "server shutting down"),
            RelayEnd::OwnerLost => {
                let message = "the room's node went away; connect again";
                match self
                    .send_error(ErrorCode::ClusterUnavailable, message)
                    .await
                {
                    Flow::Continue => Flow::Close(TRY_AGAIN_LATER, "room node lost"),
                    flow => flow,
                }
            }
        }
    }
}
