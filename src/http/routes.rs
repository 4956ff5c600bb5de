//! HTTP handlers: the WebSocket upgrade (URL token and room checks, frame-size limits), health
//! and readiness probes, Prometheus metrics; every other path is a file of the embedded web
//! client (`web.rs`). Handlers stay thin; they must not implement protocol logic (that is
//! `signal::session`).

use super::budget::Refusal;
use super::AppState;
use crate::auth::AuthError;
use crate::protocol::ErrorCode;
use crate::room::ids::is_valid_room_name;
use crate::room::DEFAULT_MESH_ROOM;
use crate::signal::session::{self, ConnectionParams};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(super::web::asset)
        .with_state(state)
}

/// The router of the separate metrics listener (`--metrics-addr`): `/metrics` and `/healthz`.
pub(super) fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Query parameters of `/ws`.
#[derive(Debug, Deserialize)]
struct WsQuery {
    /// Mesh room (default: the URL token's room, else `lobby`).
    room: Option<String>,
    /// Access token (mesh clients; SFU clients may send it in `join` instead).
    token: Option<String>,
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Query(query): Query<WsQuery>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let signal = state.signal.clone();
    let (remote, relayed) = client_address(&state, &headers, remote);
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("?"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !state.origins.allows(origin, host) {
        let code = ErrorCode::ForbiddenOrigin;
        count_refusal(&state, code);
        tracing::debug!(%remote, origin, "WebSocket from a foreign origin refused");
        let body = format!(
            "{}: pages of this origin may not connect (see --allowed-origins)\n",
            code.as_str()
        );
        return (StatusCode::FORBIDDEN, body).into_response();
    }
    let permit = match state.budget.acquire(remote.ip()) {
        Ok(permit) => permit,
        Err(refusal) => return refuse_capacity(&state, refusal, remote),
    };
    let url_claims = match (&signal.auth, query.token.as_deref()) {
        (Some(authority), Some(token)) => match authority.verify(token) {
            Ok(claims) => Some(claims),
            Err(error) => return refuse(StatusCode::UNAUTHORIZED, &error),
        },
        _ => None,
    };
    let mesh_room = match (&query.room, &url_claims) {
        (Some(room), Some(claims)) if *room != claims.room => {
            let error = AuthError::WrongRoom {
                token_room: claims.room.clone(),
                room: room.clone(),
            };
            return refuse(StatusCode::FORBIDDEN, &error);
        }
        (Some(room), _) => room.clone(),
        (None, Some(claims)) => claims.room.clone(),
        (None, None) => DEFAULT_MESH_ROOM.to_owned(),
    };
    if !is_valid_room_name(&mesh_room) {
        return (
            StatusCode::BAD_REQUEST,
            "room names are 1-64 of [A-Za-z0-9_.-]\n",
        )
            .into_response();
    }
    let params = ConnectionParams {
        id: state.next_connection.fetch_add(1, Ordering::Relaxed),
        mesh_room,
        url_claims,
        remote: Some(remote),
        query: raw_query.unwrap_or_default(),
        relayed,
    };
    let relayed_gauge = (signal.cluster.as_ref())
        .filter(|_| relayed)
        .map(|cluster| cluster.metrics.relayed.with_label_values(&["in"]));
    // Messages (and their fragments, while reassembled) are capped by the WebSocket layer
    // itself, which closes with 1009, at the largest message any client may send (an SFU
    // participant's offer or answer, `Config::sdp_limit`); the session refuses other messages
    // over `--max-frame-bytes`. The read buffer starts small (an idle connection costs little)
    // and grows for a large frame.
    let max = signal.config.message_limit();
    upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_frame_size(max)
        .max_message_size(max)
        .on_upgrade(move |socket| async move {
            let _counted = relayed_gauge.map(Counted::new);
            session::run(socket, signal, params).await;
            drop(permit);
        })
}

/// Counts one in a gauge while it lives.
struct Counted(prometheus::IntGauge);

impl Counted {
    fn new(gauge: prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The client's address, and whether another node relays the connection (then the address the
/// relaying node names, which the per-address limit counts).
fn client_address(state: &AppState, headers: &HeaderMap, remote: SocketAddr) -> (SocketAddr, bool) {
    match relayed_client(state, headers) {
        Some(Some(ip)) => (SocketAddr::new(ip, 0), true),
        Some(None) => (remote, true),
        None => (remote, false),
    }
}

/// `Some` when another node of the cluster relays this connection (it presented the cluster's
/// relay key), with the client's own address if it sent one.
fn relayed_client(state: &AppState, headers: &HeaderMap) -> Option<Option<std::net::IpAddr>> {
    let cluster = state.signal.cluster.as_ref()?;
    let key = headers.get(crate::cluster::RELAY_KEY_HEADER)?;
    if key.as_bytes() != cluster.relay_key.as_bytes() {
        return None;
    }
    let client = headers
        .get(crate::cluster::RELAY_CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Some(client)
}

/// Initial read buffer of a WebSocket (tungstenite's default is 128 KiB per connection).
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes of outgoing frames gathered before a write.
const WS_WRITE_BUFFER: usize = 4 * 1024;

/// The connection table is full, in all or for this address.
fn refuse_capacity(state: &AppState, refusal: Refusal, remote: SocketAddr) -> Response {
    let (status, code, message) = match refusal {
        Refusal::ServerFull => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerFull,
            format!(
                "the server is at its limit of {} connections",
                state.budget.max_total()
            ),
        ),
        Refusal::TooManyFromAddress => (
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyConnections,
            format!(
                "too many connections from this address (limit {})",
                state.signal.config.max_connections_per_ip
            ),
        ),
    };
    count_refusal(state, code);
    tracing::debug!(%remote, code = code.as_str(), "WebSocket upgrade refused");
    (status, format!("{}: {message}\n", code.as_str())).into_response()
}

/// Counts an upgrade refusal in `chorus_errors_total`.
fn count_refusal(state: &AppState, code: ErrorCode) {
    let errors = &state.signal.metrics.errors;
    errors.with_label_values(&[code.as_str()]).inc();
}

fn refuse(status: StatusCode, error: &AuthError) -> Response {
    tracing::info!(%error, code = error.code().as_str(), "WebSocket upgrade refused");
    (status, format!("{}: {error}\n", error.code().as_str())).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let stalled = state.signal.media.stalled_shards();
    if let Some((shard, age)) = stalled.first() {
        let message = format!(
            "media shard {shard} stalled: no turn for {:.1} s\n",
            age.as_secs_f64()
        );
        return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .signal
            .metrics
            .render(&[state.signal.media.registry()]),
    )
        .into_response()
}
