//! One task per WebSocket connection: reads client frames, enforces the per-connection limits
//! (frame size, rate, idle timeout, slow-consumer queue), decides which protocol the client
//! speaks, and writes everything the client is owed (replies, room events, media events). The
//! SFU and mesh handlers live in `sfu.rs` and `mesh.rs`. A session owns its membership and its
//! media leg; leaving or disconnecting gives both up. It must never panic on client input.
//!
//! How a connection's protocol is decided (no one ever sees a peer that is not there):
//! - first frame `join` with `room` or `name` → SFU participant;
//! - first frame `join` with only `peerId` → mesh peer (seed 002) under that ID;
//! - any other first frame, or no `join` within `--mesh-grace-ms` → mesh peer (seed 000): it
//!   gets `client-id` and `peer-list`, and only then is announced to the others.

use super::identity::HeldIdentity;
use super::rate_limit::{RateDecision, RateLimiter};
use super::transport::Transport;
use super::SignalContext;
use crate::auth::{Claims, Grants};
use crate::media::MediaLeg;
use crate::protocol::{
    ClientMessage, ErrorCode, MediaEvent, RawFrame, ServerMessage, CLIENT_MESSAGE_TYPES,
};
use crate::room::{Frame, Inbox, KickReason, Mailbox, PeerIdChoice, Room};
use axum::extract::ws::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::{field, info_span, Instrument, Span};

/// WebSocket close codes the server uses.
pub mod close_code {
    /// Removed by an operator (admin API kick or room close).
    pub const NORMAL: u16 = 1000;
    /// Server shutting down, or the client went silent.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol violation at the WebSocket level.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Abuse: sustained rate-limit violation, or too slow to read its messages.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Frame or message over `--max-frame-bytes`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// In no room for `--join-timeout-secs` (after `error join-timeout`).
    pub const JOIN_TIMEOUT: u16 = 4408;
}

/// What the upgrade handler learned about the connection.
#[derive(Debug, Clone)]
pub struct ConnectionParams {
    /// Server-local connection number, for logs.
    pub id: u64,
    /// Room for mesh clients (`?room=`, else the URL token's room, else `lobby`).
    pub mesh_room: String,
    /// Claims of a valid `?token=` (already verified at upgrade).
    pub url_claims: Option<Claims>,
    pub remote: Option<SocketAddr>,
    /// The raw query string of the `/ws` URL (passed on when the connection is relayed).
    pub query: String,
    /// Relayed by another node of the cluster (never relayed again).
    pub relayed: bool,
}

/// Serves one connection (a WebSocket, or one relayed by another node) until it closes.
pub async fn run(socket: Transport, ctx: Arc<SignalContext>, params: ConnectionParams) {
    let span = info_span!(
        "conn",
        id = params.id,
        remote = field::Empty,
        room = field::Empty,
        peer = field::Empty
    );
    if let Some(remote) = params.remote {
        span.record("remote", field::display(remote));
    }
    let session = Session::new(socket, ctx, params, span.clone());
    session.run().instrument(span).await;
}

/// What the loop does after one event.
#[must_use]
pub(super) enum Flow {
    Continue,
    /// Send a close frame with this code and reason, then end.
    Close(u16, &'static str),
    /// The socket is gone; just end.
    Gone,
}

/// Where the connection stands.
pub(super) enum Membership {
    /// Connected, protocol not decided yet; becomes a seed-000 mesh peer at `deadline`.
    Pending {
        deadline: Instant,
    },
    /// Decided, in no room (after `leave`, a refused join, or an auth-less mesh attempt).
    Idle,
    Sfu(SfuMember),
    Mesh(MeshMember),
}

pub(super) struct SfuMember {
    pub room: Arc<Room>,
    pub peer_id: String,
    pub grants: Grants,
    /// Dropping it takes the participant off the media plane.
    pub leg: MediaLeg,
}

pub(super) struct MeshMember {
    pub room: Arc<Room>,
    pub peer_id: String,
    /// Seed-000 client that got a server-generated ID (it may still switch to an SFU join).
    pub auto_assigned: bool,
}

pub(super) struct Session {
    pub ctx: Arc<SignalContext>,
    pub params: ConnectionParams,
    pub span: Span,
    pub socket: Transport,
    pub mailbox: Mailbox,
    inbox: Inbox,
    overflow: Arc<Notify>,
    pub media_events: mpsc::UnboundedSender<MediaEvent>,
    media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    pub membership: Membership,
    limiter: RateLimiter,
    pub last_seen: Instant,
    /// When the connection last came to be in no room (connected, or left); it must join
    /// within `--join-timeout-secs` of this.
    unjoined_since: Instant,
    /// The token identity this connection holds in its room (one connection per identity).
    identity: Option<HeldIdentity>,
}

impl Session {
    fn new(
        socket: Transport,
        ctx: Arc<SignalContext>,
        params: ConnectionParams,
        span: Span,
    ) -> Self {
        let now = Instant::now();
        let (mailbox, inbox) = Mailbox::new(ctx.config.send_queue);
        let overflow = inbox.overflow_signal();
        let (media_events, media_rx) = mpsc::unbounded_channel();
        let config = &ctx.config;
        let limiter = RateLimiter::new(
            config.rate_limit,
            config.rate_burst,
            config.rate_strikes,
            now.into_std(),
        );
        let deadline = now + config.mesh_grace();
        ctx.metrics.ws_connections.inc();
        Self {
            params,
            span,
            socket,
            mailbox,
            inbox,
            overflow,
            media_events,
            media_rx,
            membership: Membership::Pending { deadline },
            limiter,
            last_seen: now,
            unjoined_since: now,
            identity: None,
            ctx,
        }
    }

    async fn run(mut self) {
        tracing::debug!("connected");
        let ping_every = self.ctx.config.ping_interval();
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = self.ctx.shutdown.clone();
        let overflow = self.overflow.clone();
        let kick = self.inbox.kick_signal();
        let far_future = Instant::now() + Duration::from_secs(365 * 86400);
        let outcome = loop {
            let grace = match self.membership {
                Membership::Pending { deadline } => Some(deadline),
                _ => None,
            };
            // A pending connection is decided at the end of the grace period first.
            let join_deadline = match self.membership {
                Membership::Idle => Some(self.unjoined_since + self.ctx.config.join_timeout()),
                _ => None,
            };
            // A silent client is dropped at `last_seen + idle_timeout`, not at the next ping.
            let idle_deadline = self.last_seen + self.ctx.config.idle_timeout();
            let flow = tokio::select! {
                incoming = self.socket.recv() => self.on_incoming(incoming).await,
                _ = sleep_until(idle_deadline) => {
                    tracing::info!("closing silent connection");
                    Flow::Close(close_code::GOING_AWAY, "idle timeout")
                }
                Some(frame) = self.inbox.recv() => self.send(frame).await,
                Some(event) = self.media_rx.recv() => self.on_media_event(&event).await,
                _ = ping.tick() => self.on_ping_tick().await,
                _ = sleep_until(grace.unwrap_or(far_future)), if grace.is_some() => {
                    self.on_grace_expired().await
                }
                _ = sleep_until(join_deadline.unwrap_or(far_future)), if join_deadline.is_some() => {
                    self.on_join_timeout().await
                }
                _ = overflow.notified() => {
                    let _ = self.send_error(ErrorCode::SlowConsumer, "too many undelivered messages")
                        .await;
                    Flow::Close(close_code::POLICY_VIOLATION, "send queue overflow")
                }
                reason = kick.kicked() => self.on_kicked(reason).await,
                _ = shutdown.changed() => Flow::Close(close_code::GOING_AWAY, "server shutting down"),
            };
            match flow {
                Flow::Continue => {}
                Flow::Close(code, reason) => break Some((code, reason)),
                Flow::Gone => break None,
            }
        };
        if let Some((code, reason)) = outcome {
            self.close(code, reason).await;
        }
        self.leave_current();
        tracing::debug!("disconnected");
    }

    async fn on_incoming(&mut self, incoming: Option<Result<Message, axum::Error>>) -> Flow {
        let message = match incoming {
            None => return Flow::Gone,
            Some(Ok(message)) => message,
            Some(Err(error)) => return classify_read_error(error),
        };
        self.last_seen = Instant::now();
        let config = &self.ctx.config;
        if matches!(&message, Message::Text(t) if t.len() > config.message_limit())
            || matches!(&message, Message::Binary(b) if b.len() > config.max_frame_bytes)
        {
            return Flow::Close(close_code::MESSAGE_TOO_BIG, "message too big");
        }
        match message {
            Message::Text(text) => self.on_text(text).await,
            Message::Binary(_) => match self.rate_check().await {
                Some(flow) => flow,
                None => {
                    self.send_error(
                        ErrorCode::BinaryUnsupported,
                        "binary frames are not supported; send JSON text frames",
                    )
                    .await
                }
            },
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
            Message::Close(_) => {
                // The WebSocket layer has queued its answering close frame (1002 for an invalid
                // close code); send it before the socket goes.
                self.socket.flush().await;
                Flow::Gone
            }
        }
    }

    /// Applies the rate limit; `Some` when the message must not be processed.
    async fn rate_check(&mut self) -> Option<Flow> {
        match self.limiter.check(std::time::Instant::now()) {
            RateDecision::Allow => None,
            RateDecision::Refuse => Some(
                self.send_error(ErrorCode::RateLimited, "too many messages; slow down")
                    .await,
            ),
            RateDecision::Abuse => Some(Flow::Close(
                close_code::POLICY_VIOLATION,
                "rate limit exceeded",
            )),
        }
    }

    async fn on_text(&mut self, frame: Frame) -> Flow {
        let mut parsed = None;
        if frame.len() > self.ctx.config.max_frame_bytes {
            // Only an SFU participant's SDP may be larger (up to `Config::sdp_limit`, which
            // the WebSocket layer enforced): it grows with the room.
            match RawFrame::parse(&frame) {
                Ok(raw) if self.carries_sdp(&raw) => parsed = Some(raw),
                _ => return Flow::Close(close_code::MESSAGE_TOO_BIG, "message too big"),
            }
        }
        if let Some(flow) = self.rate_check().await {
            return flow;
        }
        let raw = match parsed.map_or_else(|| RawFrame::parse(&frame), Ok) {
            Ok(raw) => raw,
            Err(error) => return self.send_error(error.code(), error.to_string()).await,
        };
        self.ctx.metrics.count_message(&raw.kind);
        match self.membership {
            Membership::Pending { .. } | Membership::Idle => self.on_unjoined(raw, frame).await,
            Membership::Sfu(_) => self.on_sfu_message(raw).await,
            Membership::Mesh(_) => self.on_mesh_message(raw, frame).await,
        }
    }

    /// Whether `raw` is an SDP-carrying message of an SFU participant (`offer`, `answer`).
    fn carries_sdp(&self, raw: &RawFrame) -> bool {
        matches!(self.membership, Membership::Sfu(_))
            && matches!(raw.kind.as_str(), "offer" | "answer")
    }

    /// A frame from a connection that is in no room yet.
    async fn on_unjoined(&mut self, raw: RawFrame, frame: Frame) -> Flow {
        let started = Instant::now();
        if raw.kind == "join" {
            // A connection that asked to join is never admitted by the grace timer, whatever
            // becomes of its join (a refused one stays in no room until the next `join`).
            if matches!(self.membership, Membership::Pending { .. }) {
                self.membership = Membership::Idle;
            }
            return match raw.into_message() {
                Ok(ClientMessage::Join(join)) if join.is_sfu() => {
                    self.sfu_join(join, started, &frame).await
                }
                Ok(ClientMessage::Join(join)) => match join.peer_id {
                    Some(id) => {
                        let choice = PeerIdChoice::Chosen(id);
                        self.mesh_join(choice, started, Some(&frame)).await
                    }
                    None => {
                        self.send_error(
                            ErrorCode::BadMessage,
                            "join needs `room` and `name` (SFU) or `peerId` (mesh)",
                        )
                        .await
                    }
                },
                Ok(_) => Flow::Continue,
                Err(error) => self.send_error(error.code(), error.to_string()).await,
            };
        }
        if matches!(self.membership, Membership::Pending { .. }) {
            // A seed-000 client: it talks without joining.
            self.membership = Membership::Idle;
            match self
                .mesh_join(PeerIdChoice::Generated, started, Some(&frame))
                .await
            {
                Flow::Continue if matches!(self.membership, Membership::Mesh(_)) => {
                    return self.on_mesh_message(raw, frame).await
                }
                flow => return flow,
            }
        }
        if CLIENT_MESSAGE_TYPES.contains(&raw.kind.as_str()) {
            self.send_error(ErrorCode::NotJoined, "join a room first")
                .await
        } else {
            let message = format!("unknown message type `{}`", raw.kind);
            self.send_error(ErrorCode::UnknownType, message).await
        }
    }

    /// No `join` within the grace period: a seed-000 client, unless tokens are required and the
    /// URL carried none (then only an SFU join with a token can follow).
    async fn on_grace_expired(&mut self) -> Flow {
        self.membership = Membership::Idle;
        if self.ctx.auth.is_some() && self.params.url_claims.is_none() {
            return Flow::Continue;
        }
        self.mesh_join(PeerIdChoice::Generated, Instant::now(), None)
            .await
    }

    /// The connection stayed in no room for `--join-timeout-secs`: say so, then close (4408).
    async fn on_join_timeout(&mut self) -> Flow {
        let secs = self.ctx.config.join_timeout_secs;
        tracing::debug!("closing a connection that did not join");
        let message = format!("no join within {secs} s");
        match self.send_error(ErrorCode::JoinTimeout, message).await {
            Flow::Continue => Flow::Close(close_code::JOIN_TIMEOUT, "join timeout"),
            flow => flow,
        }
    }

    async fn on_media_event(&mut self, event: &MediaEvent) -> Flow {
        match serde_json::to_string(event) {
            Ok(text) => self.send(Frame::from(text)).await,
            Err(error) => {
                tracing::warn!(%error, "could not serialize a media event");
                Flow::Continue
            }
        }
    }

    /// An operator removed this member (admin API), or a newer connection took its identity
    /// over: say why, then close the connection.
    async fn on_kicked(&mut self, reason: KickReason) -> Flow {
        let (code, message, close_reason) = match reason {
            KickReason::Kicked => (
                ErrorCode::Kicked,
                "an operator removed you from the room",
                "kicked by an operator",
            ),
            KickReason::RoomClosed => (
                ErrorCode::RoomClosed,
                "an operator closed the room",
                "room closed by an operator",
            ),
            KickReason::Replaced => (
                ErrorCode::Replaced,
                "another connection joined this room with your identity",
                "replaced by a newer connection",
            ),
        };
        tracing::info!(code = code.as_str(), "removed from the room");
        match self.send_error(code, message).await {
            Flow::Continue => Flow::Close(close_code::NORMAL, close_reason),
            flow => flow,
        }
    }

    /// Refuses a join while the server drains; `Some` when refused.
    pub(super) async fn refuse_if_draining(&mut self) -> Option<Flow> {
        if !self.ctx.is_draining() {
            return None;
        }
        let message = "the server is shutting down; join again to be sent to another server";
        Some(self.send_error(ErrorCode::ServerDraining, message).await)
    }

    async fn on_ping_tick(&mut self) -> Flow {
        if self.last_seen.elapsed() >= self.ctx.config.idle_timeout() {
            tracing::info!("closing silent connection");
            return Flow::Close(close_code::GOING_AWAY, "idle timeout");
        }
        self.send_message(Message::Ping(Default::default())).await
    }

    /// Takes the connection out of its room (and off the media plane), announcing the
    /// departure. Idempotent.
    pub(super) fn leave_current(&mut self) {
        let previous = std::mem::replace(&mut self.membership, Membership::Idle);
        if let Some(held) = self.identity.take() {
            self.ctx.identities.release(&held, self.params.id);
        }
        if matches!(previous, Membership::Sfu(_) | Membership::Mesh(_)) {
            self.unjoined_since = Instant::now();
        }
        match previous {
            Membership::Sfu(member) => {
                drop(member.leg);
                self.ctx.rooms.leave(&member.room, &member.peer_id);
                // Nothing of the room may reach the connection after it left: events the old
                // media leg queued go with its channel, and room frames still queued are dropped.
                let (media_events, media_rx) = mpsc::unbounded_channel();
                self.media_events = media_events;
                self.media_rx = media_rx;
                self.inbox.discard_queued();
                tracing::info!("left");
            }
            Membership::Mesh(member) => {
                self.ctx.rooms.leave(&member.room, &member.peer_id);
                self.inbox.discard_queued();
                tracing::info!("left");
            }
            Membership::Pending { .. } | Membership::Idle => {}
        }
    }

    /// Records that this connection holds `sub` in `room` (after a join with a token); an
    /// earlier connection with the same identity there is replaced.
    pub(super) fn hold_identity(&mut self, room: &str, sub: &str) {
        let held = HeldIdentity {
            room: room.to_owned(),
            sub: sub.to_owned(),
        };
        if self
            .ctx
            .identities
            .claim(&held, self.params.id, &self.mailbox)
        {
            tracing::info!(sub, "replaced an older connection with the same identity");
        }
        self.identity = Some(held);
    }

    /// Sends a server message to this client.
    pub(super) async fn reply(&mut self, message: &ServerMessage) -> Flow {
        self.send(Frame::from(message.to_json())).await
    }

    /// Sends an `error` and counts it.
    pub(super) async fn send_error(&mut self, code: ErrorCode, message: impl Into<String>) -> Flow {
        self.ctx
            .metrics
            .errors
            .with_label_values(&[code.as_str()])
            .inc();
        let message = message.into();
        tracing::debug!(code = code.as_str(), %message, "error sent");
        self.reply(&ServerMessage::error(code, message)).await
    }

    pub(super) async fn send(&mut self, frame: Frame) -> Flow {
        self.send_message(Message::Text(frame)).await
    }

    /// Writes one message; a client that does not take it within the idle timeout is gone.
    async fn send_message(&mut self, message: Message) -> Flow {
        let limit = self.ctx.config.idle_timeout();
        match tokio::time::timeout(limit, self.socket.send(message)).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) | Err(_) => Flow::Gone,
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        self.ctx
            .metrics
            .closes
            .with_label_values(&[&code.to_string()])
            .inc();
        tracing::info!(code, reason, "closing connection");
        self.socket.close(code, reason).await;
    }
}

impl Drop for Session {
    /// Whatever ends the session (even a panic), its membership and media leg go with it, so
    /// no one is left seeing a peer that is not there.
    fn drop(&mut self) {
        self.leave_current();
        self.ctx.metrics.ws_connections.dec();
    }
}

/// Maps a read error to what the loop does: oversize → 1009, a text frame that is not UTF-8 →
/// 1007, other protocol violations → 1002, anything else (reset, EOF) → gone.
fn classify_read_error(error: axum::Error) -> Flow {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = error.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => Flow::Close(close_code::MESSAGE_TOO_BIG, "message too big"),
        Some(WsError::Utf8(_)) => Flow::Close(close_code::INVALID_PAYLOAD, "invalid UTF-8"),
        Some(WsError::Protocol(_)) => Flow::Close(close_code::PROTOCOL_ERROR, "protocol error"),
        _ => Flow::Gone,
    }
}
