//! The admin API under `/admin`, for operators: list rooms with their participants and media
//! tracks, kick a participant, close a room, mute a track; with several nodes, the cluster's
//! registry. Every request needs
//! `Authorization: Bearer <--admin-key>` (401 otherwise); without `--admin-key` these routes are
//! not mounted at all, so they answer 404 like any unknown path. Handlers stay thin: the room
//! registry, the sessions and the media engine do the work. Answers are JSON; errors are
//! `{"error": code, "message": text}`.

use super::AppState;
use crate::protocol::TrackInfo;
use crate::room::{KickReason, MemberKind};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/rooms", get(list_rooms))
        .route("/admin/cluster", get(cluster))
        .route("/admin/rooms/{room}", get(show_room).delete(close_room))
        .route("/admin/rooms/{room}/participants/{peer_id}", delete(kick))
        .route("/admin/rooms/{room}/tracks/{track_id}/mute", post(mute))
        .with_state(state)
}

/// Proof that the request carried the admin key.
struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        match (state.signal.config.admin_key.as_deref(), given) {
            (Some(key), Some(given)) if same_secret(key.as_bytes(), given.as_bytes()) => Ok(Admin),
            _ => {
                tracing::info!("admin API: request without a valid key refused");
                let mut response = failure(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <admin key>",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                Err(response)
            }
        }
    }
}

/// Compares in time that depends only on the lengths.
fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn failure(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    (status, Json(body)).into_response()
}

fn no_room(room: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "no-such-room",
        &format!("no room `{room}` is open"),
    )
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ParticipantView {
    peer_id: String,
    name: String,
    /// `sfu` or `mesh`.
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct RoomView {
    room: String,
    participants: Vec<ParticipantView>,
    /// Tracks published on the media plane (SFU participants only).
    tracks: Vec<TrackInfo>,
}

async fn room_view(state: &AppState, room: &crate::room::Room) -> RoomView {
    let members = room.members();
    let has_sfu = members.iter().any(|m| m.kind == MemberKind::Sfu);
    let participants = members
        .into_iter()
        .map(|m| ParticipantView {
            peer_id: m.peer_id,
            name: m.name,
            kind: m.kind.as_str(),
        })
        .collect::<Vec<_>>();
    let tracks = if has_sfu {
        state.signal.media.room_tracks(room.name()).await
    } else {
        Vec::new()
    };
    RoomView {
        room: room.name().to_owned(),
        participants,
        tracks,
    }
}

/// `GET /admin/rooms`: every open room with its participants and tracks.
/// Several nodes (`--redis-url`): every live node's registry record (rooms and participants,
/// load, draining), as of this node's last heartbeat. One node: 404 `no-cluster`.
async fn cluster(_: Admin, State(state): State<AppState>) -> Response {
    let Some(cluster) = &state.signal.cluster else {
        let message = "this server runs alone (no --redis-url)";
        return failure(StatusCode::NOT_FOUND, "no-cluster", message);
    };
    let nodes = cluster.nodes();
    let rooms: usize = nodes.iter().map(|n| n.rooms.len()).sum();
    let participants: usize = nodes.iter().map(|n| n.participants).sum();
    let body = serde_json::json!({
        "node": cluster.node_id,
        "rooms": rooms,
        "participants": participants,
        "nodes": nodes,
    });
    Json(body).into_response()
}

async fn list_rooms(_: Admin, State(state): State<AppState>) -> Response {
    let mut rooms = Vec::new();
    for room in state.signal.rooms.list() {
        rooms.push(room_view(&state, &room).await);
    }
    Json(serde_json::json!({ "rooms": rooms })).into_response()
}

/// `GET /admin/rooms/{room}`.
async fn show_room(_: Admin, State(state): State<AppState>, Path(room): Path<String>) -> Response {
    match state.signal.rooms.get(&room) {
        Some(open) => Json(room_view(&state, &open).await).into_response(),
        None => no_room(&room),
    }
}

/// `DELETE /admin/rooms/{room}`: everyone gets `room-closed` and is disconnected.
async fn close_room(_: Admin, State(state): State<AppState>, Path(room): Path<String>) -> Response {
    let Some(kicked) = state.signal.rooms.close(&room) else {
        return no_room(&room);
    };
    count(&state, "close_room");
    tracing::info!(room, kicked, "admin: room closed");
    Json(serde_json::json!({ "room": room, "kicked": kicked })).into_response()
}

/// `DELETE /admin/rooms/{room}/participants/{peer_id}`: the participant gets `kicked` and is
/// disconnected.
async fn kick(
    _: Admin,
    State(state): State<AppState>,
    Path((room, peer_id)): Path<(String, String)>,
) -> Response {
    let Some(open) = state.signal.rooms.get(&room) else {
        return no_room(&room);
    };
    if !open.kick(&peer_id, KickReason::Kicked) {
        return failure(
            StatusCode::NOT_FOUND,
            "no-such-participant",
            &format!("no participant `{peer_id}` in room `{room}`"),
        );
    }
    count(&state, "kick");
    tracing::info!(room, peer = peer_id, "admin: participant kicked");
    Json(serde_json::json!({ "room": room, "peerId": peer_id, "kicked": true })).into_response()
}

/// Body of the mute request.
#[derive(Debug, Deserialize)]
struct MuteBody {
    muted: bool,
}

/// `POST /admin/rooms/{room}/tracks/{track_id}/mute` with `{"muted": true|false}`: the room is
/// told (`mute`), and forwarding of the track stops or resumes.
async fn mute(
    _: Admin,
    State(state): State<AppState>,
    Path((room, track_id)): Path<(String, String)>,
    Json(body): Json<MuteBody>,
) -> Response {
    if state.signal.rooms.get(&room).is_none() {
        return no_room(&room);
    }
    if !state
        .signal
        .media
        .admin_mute(&room, &track_id, body.muted)
        .await
    {
        return failure(
            StatusCode::NOT_FOUND,
            "no-such-track",
            &format!("no track `{track_id}` is published in room `{room}`"),
        );
    }
    count(&state, "mute");
    tracing::info!(
        room,
        track = track_id,
        muted = body.muted,
        "admin: track mute set"
    );
    Json(serde_json::json!({ "room": room, "trackId": track_id, "muted": body.muted }))
        .into_response()
}

fn count(state: &AppState, action: &str) {
    state
        .signal
        .metrics
        .admin_actions
        .with_label_values(&[action])
        .inc();
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcdeF"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!same_secret(b"0123456789abcdef", b""));
    }
}
