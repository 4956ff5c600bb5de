//! HTTP handlers: the WebSocket upgrade (URL token and room checks, frame-size limits), health
//! and readiness probes, Prometheus metrics; every other path is a file of the embedded web
//! client (`web.rs`). Handlers stay thin; they must not implement protocol logic (that is
//! `signal::session`).

use super::budget::{ConnectionPermit, Refusal};
use super::AppState;
use crate::auth::AuthError;
use crate::protocol::ErrorCode;
use crate::room::ids::is_valid_room_name;
use crate::room::DEFAULT_MESH_ROOM;
use crate::signal::session::{self, ConnectionParams};
use crate::signal::transport::Transport;
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
pub(super) struct WsQuery {
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
    let raw_query = raw_query.unwrap_or_default();
    let (params, permit) = match admit(&state, &query, raw_query, remote, false) {
        Ok(admitted) => admitted,
        Err(refused) => return (refused.status, refused.body).into_response(),
    };
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
            session::run(Transport::Ws(socket), signal, params).await;
            drop(permit);
        })
}

/// A connection that was not admitted: the HTTP answer, and the error code it carries.
pub(super) struct Refused {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub body: String,
}

/// The checks every connection passes, a client's own or one another node relays here (then
/// `remote` is the client's address): a slot in the connection budget for its address, a
/// valid URL token, a valid mesh room.
pub(super) fn admit(
    state: &AppState,
    query: &WsQuery,
    raw_query: String,
    remote: SocketAddr,
    relayed: bool,
) -> Result<(ConnectionParams, ConnectionPermit), Refused> {
    let signal = &state.signal;
    let permit = match state.budget.acquire(remote.ip()) {
        Ok(permit) => permit,
        Err(refusal) => return Err(refuse_capacity(state, refusal, remote)),
    };
    let url_claims = match (&signal.auth, query.token.as_deref()) {
        (Some(authority), Some(token)) => match authority.verify(token) {
            Ok(claims) => Some(claims),
            Err(error) => return Err(refuse(StatusCode::UNAUTHORIZED, &error)),
        },
        _ => None,
    };
    let mesh_room = match (&query.room, &url_claims) {
        (Some(room), Some(claims)) if *room != claims.room => {
            let error = AuthError::WrongRoom {
                token_room: claims.room.clone(),
                room: room.clone(),
            };
            return Err(refuse(StatusCode::FORBIDDEN, &error));
        }
        (Some(room), _) => room.clone(),
        (None, Some(claims)) => claims.room.clone(),
        (None, None) => DEFAULT_MESH_ROOM.to_owned(),
    };
    if !is_valid_room_name(&mesh_room) {
        return Err(Refused {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::BadRoom,
            body: "room names are 1-64 of [A-Za-z0-9_.-]\n".to_owned(),
        });
    }
    let params = ConnectionParams {
        id: state.next_connection.fetch_add(1, Ordering::Relaxed),
        mesh_room,
        url_claims,
        remote: Some(remote),
        query: raw_query,
        relayed,
    };
    Ok((params, permit))
}

/// Initial read buffer of a WebSocket (tungstenite's default is 128 KiB per connection).
const WS_READ_BUFFER: usize = 4 * 1024;
/// Bytes of outgoing frames gathered before a write.
const WS_WRITE_BUFFER: usize = 4 * 1024;

/// The connection table is full, in all or for this address.
fn refuse_capacity(state: &AppState, refusal: Refusal, remote: SocketAddr) -> Refused {
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
    let body = format!("{}: {message}\n", code.as_str());
    Refused { status, code, body }
}

/// Counts an upgrade refusal in `chorus_errors_total`.
fn count_refusal(state: &AppState, code: ErrorCode) {
    let errors = &state.signal.metrics.errors;
    errors.with_label_values(&[code.as_str()]).inc();
}

fn refuse(status: StatusCode, error: &AuthError) -> Refused {
    tracing::info!(%error, code = error.code().as_str(), "WebSocket upgrade refused");
    let code = error.code();
    let body = format!("{}: {error}\n", code.as_str());
    Refused { status, code, body }
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
