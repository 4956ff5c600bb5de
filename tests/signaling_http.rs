//! The plain HTTP endpoints: health and readiness probes, the start page, and `/metrics`, whose
//! counters must move when the signaling layer does something.

mod support;

use chorus::metrics::text::series as sample;
use serde_json::json;
use support::ws::WsClient;
use support::{http_get, start_with};

#[tokio::test]
async fn health_readiness_and_start_page() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(http_get(addr, "/readyz").await, (200, "ready\n".to_owned()));
    let (status, page) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Chorus"), "{page}");
    assert_eq!(http_get(addr, "/no-such-page").await.0, 404);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn metrics_move_with_signaling() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut alice, _) = WsClient::sfu_join(addr, "m", "Alice").await;
    let (_mesh, _) = WsClient::mesh_join(addr, "/ws?room=m", "M").await;
    alice
        .send_json(&json!({"type":"chat","text":"hello"}))
        .await;
    alice.recv_json().await;
    alice.send_text("{not json").await;
    alice.expect_error("bad-json").await;
    alice.send_json(&json!({"type":"made-up"})).await;
    alice.expect_error("unknown-type").await;

    let (status, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "chorus_ws_connections"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "chorus_rooms"), Some(1.0));
    assert_eq!(
        sample(&text, r#"chorus_participants{kind="sfu"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"chorus_participants{kind="mesh"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "chorus_chat_messages_total"), Some(1.0));
    assert_eq!(
        sample(&text, r#"chorus_errors_total{code="bad-json"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"chorus_errors_total{code="unknown-type"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"chorus_ws_messages_received_total{type="join"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"chorus_ws_messages_received_total{type="other"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "chorus_join_latency_seconds_count"),
        Some(2.0)
    );
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
    // The same numbers are available in-process.
    assert_eq!(server.metrics().chat_messages.get(), 1);
    server.shutdown().await.expect("shutdown");
}
