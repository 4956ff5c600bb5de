//! HTTP handlers: the WebSocket upgrade (URL token and room checks, frame-size limits), health
//! and readiness probes, Prometheus metrics; every other path is a file of the embedded web
//! client (`web.rs`). Handlers stay thin; they must not implement protocol logic (that is
//! `signal::session`).

use super::AppState;
use crate::auth::AuthError;
use crate::room::ids::is_valid_room_name;
use crate::room::DEFAULT_MESH_ROOM;
use crate::signal::session::{self, ConnectionParams};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
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
    upgrade: WebSocketUpgrade,
) -> Response {
    let signal = state.signal.clone();
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
    };
    // The session closes anything over `max_frame_bytes` with 1009 after a clean close
    // handshake; the WebSocket layer's own (larger) cap only bounds memory for absurd frames.
    let hard_cap = signal
        .config
        .max_frame_bytes
        .saturating_mul(4)
        .max(256 * 1024);
    upgrade
        .max_frame_size(hard_cap)
        .max_message_size(hard_cap)
        .on_upgrade(move |socket| session::run(socket, signal, params))
}

fn refuse(status: StatusCode, error: &AuthError) -> Response {
    tracing::info!(%error, code = error.code().as_str(), "WebSocket upgrade refused");
    (status, format!("{}: {error}\n", error.code().as_str())).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
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
