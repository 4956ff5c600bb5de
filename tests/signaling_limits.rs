//! Bad input and limits: every malformed message gets an `error` with a stable code and the
//! connection stays open; oversize frames close with 1009, floods with 1008, silent clients are
//! dropped; and none of it disturbs the other members of the room.

mod support;

use serde_json::json;
use std::time::Duration;
use support::start_with;
use support::ws::WsClient;

#[tokio::test]
async fn malformed_messages_get_stable_error_codes_and_the_connection_stays_open() {
    let server = start_with(|c| c.mesh_grace_ms = 60_000).await;
    let addr = server.addr();
    let (mut observer, _) = WsClient::sfu_join(addr, "r", "Observer").await;
    let (mut alice, _) = WsClient::sfu_join(addr, "r", "Alice").await;
    observer.recv_json().await; // participant-joined Alice

    let cases = [
        ("this is not json", "bad-json"),
        (r#"{"type":"chat","text":"unterminated"#, "bad-json"),
        ("[1,2,3]", "bad-message"),
        ("42", "bad-message"),
        (r#"{"text":"no type"}"#, "bad-message"),
        (r#"{"type":5}"#, "bad-message"),
        (r#"{"type":"dance"}"#, "unknown-type"),
        (r#"{"type":"chat"}"#, "bad-message"),
        (r#"{"type":"chat","text":5}"#, "bad-message"),
        (r#"{"type":"chat","text":"   "}"#, "bad-message"),
        (r#"{"type":"answer","sdp":null}"#, "bad-message"),
        (r#"{"type":"unsubscribe","trackIds":"all"}"#, "bad-message"),
    ];
    for (frame, code) in cases {
        alice.send_text(frame).await;
        let error = alice.expect_error(code).await;
        assert_eq!(error.as_object().map(|o| o.len()), Some(3), "{error}");
    }
    alice.send_binary(vec![1, 2, 3]).await;
    alice.expect_error("binary-unsupported").await;

    let too_long = "x".repeat(4097);
    alice
        .send_json(&json!({"type":"chat","text": too_long}))
        .await;
    alice.expect_error("too-long").await;
    let just_fits = "é".repeat(2048); // 4096 bytes of UTF-8
    alice
        .send_json(&json!({"type":"chat","text": just_fits}))
        .await;
    assert_eq!(alice.recv_json().await["text"], just_fits.as_str());

    // Nothing of the above reached the observer but the one valid chat.
    assert_eq!(observer.recv_json().await["text"], just_fits.as_str());
    observer.expect_silence(200).await;
    alice
        .send_json(&json!({"type":"chat","text":"still here"}))
        .await;
    assert_eq!(observer.recv_json().await["text"], "still here");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn bad_joins_get_stable_error_codes() {
    let server = start_with(|c| c.mesh_grace_ms = 60_000).await;
    let addr = server.addr();
    let (mut observer, _) = WsClient::mesh_join(addr, "/ws", "O").await;
    let mut client = WsClient::connect(addr, "/ws").await;
    let long_id = "x".repeat(65);
    let cases = [
        (json!({"type":"join"}), "bad-message"),
        (json!({"type":"join","name":"No Room"}), "bad-message"),
        (json!({"type":"join","room":"r"}), "bad-message"),
        (
            json!({"type":"join","room":"bad room!","name":"x"}),
            "bad-room",
        ),
        (json!({"type":"join","room":"r","name":"  "}), "bad-name"),
        (
            json!({"type":"join","room":"r","name":"a\u{7}b"}),
            "bad-name",
        ),
        (json!({"type":"join","room":5,"name":"x"}), "bad-message"),
        (json!({"type":"join","peerId":"has space"}), "bad-peer-id"),
        (json!({"type":"join","peerId":""}), "bad-peer-id"),
        (json!({"type":"join","peerId": long_id}), "bad-peer-id"),
        (json!({"type":"join","peerId":"O"}), "id-taken"),
        (json!({"type":"chat","text":"hi"}), "not-joined"),
        (json!({"type":"leave"}), "not-joined"),
    ];
    // Before the first valid join a non-join frame would make this a seed-000 client, so the
    // not-joined cases come last, after a refused join has decided the protocol.
    for (message, code) in cases.iter().take(11) {
        client.send_json(message).await;
        client.expect_error(code).await;
    }
    client
        .send_json(&json!({"type":"join","room":"r","name":"Ok"}))
        .await;
    assert_eq!(client.recv_json().await["type"], "joined");
    client.send_json(&json!({"type":"leave"})).await;
    assert_eq!(client.recv_json().await["type"], "left");
    for (message, code) in cases.iter().skip(11) {
        client.send_json(message).await;
        client.expect_error(code).await;
    }
    client.send_json(&json!({"type":"dance"})).await;
    client.expect_error("unknown-type").await;
    observer.expect_silence(200).await;

    // Mesh peers: `to` must be a string, and a second join is refused.
    observer.send_text(r#"{"type":"offer","to":5}"#).await;
    observer.expect_error("bad-message").await;
    observer
        .send_json(&json!({"type":"join","peerId":"O2"}))
        .await;
    observer.expect_error("already-joined").await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn oversize_frames_close_with_1009_and_others_carry_on() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::mesh_join(addr, "/ws", "A").await;
    let (mut big, _) = WsClient::mesh_join(addr, "/ws", "Big").await;
    assert_eq!(a.recv_json().await["peerId"], "Big");
    let payload = format!(
        r#"{{"type":"offer","to":"A","sdp":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    big.send_text(&payload).await;
    let close = big
        .expect_close(Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-left","peerId":"Big"})
    );
    // A frame just under the limit is fine.
    let (mut b, _) = WsClient::mesh_join(addr, "/ws", "B").await;
    a.recv_json().await;
    let near_limit = format!(
        r#"{{"type":"offer","to":"A","sdp":"{}"}}"#,
        "x".repeat(60 * 1024)
    );
    b.send_text(&near_limit).await;
    assert_eq!(a.recv_text().await, near_limit);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn floods_are_rate_limited_then_closed_with_1008() {
    let server = start_with(|c| {
        c.rate_limit = 0.2;
        c.rate_burst = 5;
        c.rate_strikes = 5;
    })
    .await;
    let addr = server.addr();
    let (mut observer, _) = WsClient::sfu_join(addr, "r", "Observer").await;
    let (mut flooder, _) = WsClient::sfu_join(addr, "r", "Flooder").await;
    observer.recv_json().await;
    // The join used one token; four chats fit in the burst, the next is refused.
    for i in 0..4 {
        flooder
            .send_json(&json!({"type":"chat","text": format!("m{i}")}))
            .await;
        assert_eq!(flooder.recv_json().await["type"], "chat");
    }
    flooder
        .send_json(&json!({"type":"chat","text":"one too many"}))
        .await;
    flooder.expect_error("rate-limited").await;
    for _ in 0..20 {
        flooder
            .send_json(&json!({"type":"chat","text":"flood"}))
            .await;
    }
    let close = flooder
        .expect_close(Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(u16::from(close.code), 1008);

    // The observer got the four accepted chats, then the flooder's departure; nothing else.
    for i in 0..4 {
        assert_eq!(observer.recv_json().await["text"], format!("m{i}"));
    }
    assert_eq!(observer.recv_json().await["type"], "participant-left");
    observer.expect_silence(200).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn silent_connections_are_dropped_after_the_idle_timeout() {
    let server = start_with(|c| {
        c.ping_interval_secs = 1;
        c.idle_timeout_secs = 2;
    })
    .await;
    let addr = server.addr();
    let (mut active, _) = WsClient::mesh_join(addr, "/ws", "Active").await;
    // This client never reads again, so it never answers the server's pings.
    let (_silent, _) = WsClient::mesh_join(addr, "/ws", "Silent").await;
    assert_eq!(active.recv_json().await["peerId"], "Silent");
    // The active client answers pings while it waits (reading answers them).
    assert_eq!(
        active.recv_json().await,
        json!({"type":"peer-left","peerId":"Silent"})
    );
    active.expect_silence(2500).await;
    let (_other, peers) = WsClient::mesh_join(addr, "/ws", "Other").await;
    assert_eq!(peers, ["Active"], "the active client is still connected");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn server_shutdown_closes_connections_with_1001() {
    let server = start_with(|_| {}).await;
    let (mut client, _) = WsClient::sfu_join(server.addr(), "r", "A").await;
    server.shutdown().await.expect("shutdown");
    let close = client
        .expect_close(Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(u16::from(close.code), 1001);
}

/// Deterministic pseudo-random frames (no seed file, same every run).
fn hostile_frames(count: usize) -> Vec<String> {
    let fragments = [
        "{",
        "}",
        "[",
        "]",
        "\"type\"",
        ":",
        ",",
        "\"join\"",
        "\"chat\"",
        "\"offer\"",
        "\"to\"",
        "\"room\"",
        "\"peerId\"",
        "null",
        "true",
        "1e999",
        "-0",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"ü😀\"",
        "\"candidate\"",
        "{\"type\":",
        "\"trackIds\"",
        "[[[[[[",
        "\u{0}",
        " ",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut frames: Vec<String> = (0..count)
        .map(|_| {
            let len = 1 + (next() % 12) as usize;
            (0..len)
                .map(|_| fragments[(next() % fragments.len() as u64) as usize])
                .collect()
        })
        .collect();
    frames.push("[".repeat(10_000));
    frames.push(format!(
        "{{\"type\":\"chat\",\"text\":{}}}",
        "[".repeat(500)
    ));
    frames.push(r#"{"type":"join","room":null,"name":null,"peerId":null}"#.into());
    frames.push(r#"{"type":"candidate","candidate":null}"#.into());
    frames.push(r#"{"type":"mute","trackId":"nope","muted":true}"#.into());
    frames.push(r#"{"type":"subscribe","trackIds":[]}"#.into());
    frames
}

#[tokio::test]
async fn hostile_input_never_breaks_a_session() {
    let server = start_with(|c| {
        c.rate_limit = 10_000.0;
        c.rate_burst = 10_000;
    })
    .await;
    let addr = server.addr();
    let (mut observer, _) = WsClient::sfu_join(addr, "r", "Observer").await;
    let (mut sfu, _) = WsClient::sfu_join(addr, "r", "Target").await;
    let (mut mesh, _) = WsClient::mesh_join(addr, "/ws?room=r", "M").await;
    let (mut mesh_observer, _) = WsClient::mesh_join(addr, "/ws?room=r", "MO").await;
    for frame in hostile_frames(400) {
        sfu.send_text(&frame).await;
        mesh.send_text(&frame).await;
    }
    sfu.send_json(&json!({"type":"chat","text":"still alive"}))
        .await;
    mesh.send_text(r#"{"type":"chat","text":"mesh alive"}"#)
        .await;
    for (client, expected) in [
        (&mut sfu, "still alive"),
        (&mut observer, "still alive"),
        (&mut mesh_observer, "mesh alive"),
    ] {
        loop {
            let message = client.recv_json().await;
            if message["type"] == "chat" && message["text"] == expected {
                break;
            }
        }
    }
    server.shutdown().await.expect("shutdown");
}
