//! Issue 6, admin API and metrics listener: the admin API answers 401 without the right bearer
//! key and 404 when no `--admin-key` is configured; it lists rooms with their participants and
//! tracks, kicks a participant (`kicked`, then a 1000 close), closes a room (`room-closed` to
//! everyone), and mutes a track (the room is told, forwarding stops). `--metrics-addr` serves
//! `/metrics` on a listener of its own.

mod support;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use support::start_with;
use support::ws::WsClient;

const KEY: &str = "test-admin-key-0123456789";

/// One HTTP/1.1 request; returns the status and the body parsed as JSON (`Null` if it is not).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    let (status, body) = support::http(addr, method, path, &headers, &body).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn admin_get(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = request(addr, "GET", path, Some(KEY), None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[tokio::test]
async fn admin_api_needs_the_key_and_is_off_without_one() {
    let server = start_with(|c| c.admin_key = Some(KEY.to_owned())).await;
    let addr = server.addr();
    let (status, body) = request(addr, "GET", "/admin/rooms", None, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = request(addr, "GET", "/admin/rooms", Some("wrong-key"), None).await;
    assert_eq!(status, 401);
    let (status, _) = request(addr, "DELETE", "/admin/rooms/x", Some("wrong-key"), None).await;
    assert_eq!(status, 401);
    assert_eq!(admin_get(addr, "/admin/rooms").await, json!({"rooms": []}));
    server.shutdown().await.expect("shutdown");

    let open = start_with(|_| {}).await;
    let (status, _) = request(open.addr(), "GET", "/admin/rooms", Some(KEY), None).await;
    assert_eq!(status, 404, "no --admin-key: the admin API does not exist");
    open.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn admin_lists_kicks_and_closes() {
    let server = start_with(|c| c.admin_key = Some(KEY.to_owned())).await;
    let addr = server.addr();
    let (mut alice, _) = WsClient::sfu_join(addr, "standup", "Alice").await;
    let (mut bob, joined) = WsClient::sfu_join(addr, "standup", "Bob").await;
    let bob_id = joined["peerId"].as_str().expect("peer id").to_owned();
    assert_eq!(alice.recv_json().await["type"], "participant-joined");

    let listed = admin_get(addr, "/admin/rooms").await;
    let room = &listed["rooms"][0];
    assert_eq!(room["room"], "standup");
    let names: Vec<&str> = room["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["Alice", "Bob"]);
    assert_eq!(room["participants"][1]["peerId"], bob_id.as_str());
    assert_eq!(room["participants"][1]["kind"], "sfu");
    assert_eq!(admin_get(addr, "/admin/rooms/standup").await, *room);
    let (status, body) = request(addr, "GET", "/admin/rooms/nope", Some(KEY), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no-such-room"))
    );

    // Kick Bob: he is told, then disconnected; Alice sees him leave.
    let path = format!("/admin/rooms/standup/participants/{bob_id}");
    let (status, body) = request(addr, "DELETE", &path, Some(KEY), None).await;
    assert_eq!(
        (status, body["kicked"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    bob.expect_error("kicked").await;
    let frame = bob.expect_close(Duration::from_secs(5)).await;
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
    let left = alice.recv_json().await;
    assert_eq!(
        (left["type"].as_str(), left["peerId"].as_str()),
        (Some("participant-left"), Some(bob_id.as_str()))
    );
    let (status, body) = request(addr, "DELETE", &path, Some(KEY), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no-such-participant"))
    );

    // Close the room: everyone in it is told and disconnected; the room is gone.
    let (mut mesh, _) = WsClient::mesh_join(addr, "/ws?room=standup", "M").await;
    let (status, body) = request(addr, "DELETE", "/admin/rooms/standup", Some(KEY), None).await;
    assert_eq!((status, body["kicked"].as_u64()), (200, Some(2)), "{body}");
    for client in [&mut alice, &mut mesh] {
        client.expect_error("room-closed").await;
        let frame = client.expect_close(Duration::from_secs(5)).await;
        assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
    }
    assert_eq!(admin_get(addr, "/admin/rooms").await, json!({"rooms": []}));
    let (status, _) = request(addr, "DELETE", "/admin/rooms/standup", Some(KEY), None).await;
    assert_eq!(status, 404);
    // A later join opens a fresh room.
    let (_carol, joined) = WsClient::sfu_join(addr, "standup", "Carol").await;
    assert_eq!(joined["participants"], json!([]));
    let metrics = server.metrics();
    assert_eq!(metrics.admin_actions.with_label_values(&["kick"]).get(), 1);
    assert_eq!(
        metrics
            .admin_actions
            .with_label_values(&["close_room"])
            .get(),
        1
    );
    assert_eq!(metrics.errors.with_label_values(&["kicked"]).get(), 1);
    assert_eq!(metrics.errors.with_label_values(&["room-closed"]).get(), 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mutes_a_published_track() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), mute_steps()).await?
}

async fn mute_steps() -> Result<()> {
    let mut config = support::test_config();
    config.admin_key = Some(KEY.to_owned());
    let test = support::media::start_server_with(config).await?;
    let alice = test.client("mute", "alice").await?;
    let (_audio, video) = alice.publish_audio_video().await?;
    let bob = test.client("mute", "bob").await?;
    support::media::wait_receiving(&bob, &[video], Duration::from_secs(15)).await?;
    let track_id = alice.server_track_id(video).await?;

    let room = admin_get(test.http, "/admin/rooms/mute").await;
    let tracks = room["tracks"].as_array().context("tracks")?;
    ensure!(
        tracks.iter().any(|t| t["trackId"] == track_id.as_str()),
        "admin listing lacks {track_id}: {room}"
    );
    let path = format!("/admin/rooms/mute/tracks/{track_id}/mute");
    let (status, body) = request(
        test.http,
        "POST",
        &path,
        Some(KEY),
        Some(&json!({"muted": true})),
    )
    .await;
    ensure!(status == 200 && body["muted"] == true, "{status} {body}");
    bob.wait_for_message("mute notice", Duration::from_secs(5), |m| {
        m["type"] == "mute" && m["trackId"] == track_id.as_str() && m["muted"] == true
    })
    .await?;
    // Forwarding stops: within 5 s, no video packet reaches Bob for a whole second.
    support::media::wait_stopped(&bob, video, Duration::from_secs(1), Duration::from_secs(5))
        .await?;

    let missing = "/admin/rooms/mute/tracks/no-such-track/mute";
    let (status, body) = request(
        test.http,
        "POST",
        missing,
        Some(KEY),
        Some(&json!({"muted": true})),
    )
    .await;
    ensure!(
        status == 404 && body["error"] == "no-such-track",
        "{status} {body}"
    );
    let (status, _) = request(test.http, "POST", &path, Some(KEY), Some(&json!({}))).await;
    ensure!(
        (400..500).contains(&status),
        "a body without `muted` is refused, got {status}"
    );
    Ok(())
}

#[tokio::test]
async fn metrics_listener_serves_metrics_only() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = start_with(|c| c.metrics_addr = Some(loopback)).await;
    let metrics_addr = server.metrics_addr().expect("metrics listener");
    assert_ne!(metrics_addr, server.addr());
    let (status, text) = support::http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("chorus_rooms 0"), "{text}");
    assert_eq!(support::http_get(metrics_addr, "/healthz").await.0, 200);
    assert_eq!(support::http_get(metrics_addr, "/ws").await.0, 404);
    assert_eq!(support::http_get(server.addr(), "/metrics").await.0, 200);
    server.shutdown().await.expect("shutdown");
}
