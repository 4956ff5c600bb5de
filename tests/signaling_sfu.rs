//! SFU protocol v1 on `/ws`: join/joined, presence, leave, chat with history, room isolation,
//! room-full, room lifecycle, and the hand-off of media messages to the media engine.

mod support;

use chorus::protocol::MediaEvent;
use serde_json::{json, Value};
use std::time::Duration;
use support::start_with;
use support::ws::WsClient;

fn peer_id(joined: &Value) -> String {
    let id = joined["peerId"].as_str().expect("peerId").to_owned();
    assert_eq!(id.len(), 32, "server IDs are 128-bit hex: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    id
}

#[tokio::test]
async fn join_presence_and_leave() {
    let server = start_with(|c| c.ice_servers = vec!["stun:stun.example.org:3478".into()]).await;
    let addr = server.addr();
    let (mut alice, joined) = WsClient::sfu_join(addr, "standup", "Alice").await;
    let alice_id = peer_id(&joined);
    assert_eq!(
        joined,
        json!({"type":"joined","peerId": alice_id,"room":"standup","participants":[],"chat":[],
               "iceServers":[{"urls":["stun:stun.example.org:3478"]}]})
    );

    let (mut bob, joined) = WsClient::sfu_join(addr, "standup", "  Bob ").await;
    let bob_id = peer_id(&joined);
    assert_eq!(
        joined["participants"],
        json!([{"peerId": alice_id, "name": "Alice"}])
    );
    assert_eq!(
        alice.recv_json().await,
        json!({"type":"participant-joined","peerId": bob_id,"name":"Bob"})
    );

    bob.send_json(&json!({"type":"leave"})).await;
    assert_eq!(
        bob.recv_json().await,
        json!({"type":"left","room":"standup"})
    );
    assert_eq!(
        alice.recv_json().await,
        json!({"type":"participant-left","peerId": bob_id})
    );
    // After leave the connection may join again, under a fresh ID.
    bob.send_json(&json!({"type":"join","room":"standup","name":"Bob"}))
        .await;
    let rejoined = bob.recv_json().await;
    assert_eq!(rejoined["type"], "joined");
    let bob_again = peer_id(&rejoined);
    assert_ne!(bob_again, bob_id);
    assert_eq!(alice.recv_json().await["type"], "participant-joined");

    // A second join while joined is refused; nothing changes.
    bob.send_json(&json!({"type":"join","room":"other","name":"Bob"}))
        .await;
    bob.expect_error("already-joined").await;
    alice.expect_silence(150).await;

    alice.close().await;
    assert_eq!(
        bob.recv_json().await,
        json!({"type":"participant-left","peerId": alice_id})
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn chat_reaches_everyone_including_sender_and_history_reaches_late_joiners() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut alice, joined) = WsClient::sfu_join(addr, "chat", "Alice").await;
    let alice_id = peer_id(&joined);
    let (mut bob, _) = WsClient::sfu_join(addr, "chat", "Bob").await;
    alice.recv_json().await; // participant-joined Bob

    let mut sent = Vec::new();
    for (i, text) in ["first", "second ✓", "third"].into_iter().enumerate() {
        alice.send_json(&json!({"type":"chat","text": text})).await;
        let own = alice.recv_json().await;
        let received = bob.recv_json().await;
        assert_eq!(own, received, "sender and others get the same message");
        assert_eq!(own["type"], "chat");
        assert_eq!(own["id"], i as u64 + 1);
        assert_eq!(own["from"], alice_id.as_str());
        assert_eq!(own["name"], "Alice");
        assert_eq!(own["text"], text);
        assert!(own["ts"].as_u64().is_some_and(|ts| ts > 1_600_000_000_000));
        let mut stored = own.clone();
        if let Some(fields) = stored.as_object_mut() {
            fields.remove("type");
        }
        sent.push(stored);
    }

    let (_carol, joined) = WsClient::sfu_join(addr, "chat", "Carol").await;
    assert_eq!(joined["chat"], Value::Array(sent), "history in order");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn chat_history_is_bounded_to_the_newest() {
    let server = start_with(|c| c.chat_history = 3).await;
    let addr = server.addr();
    let (mut alice, _) = WsClient::sfu_join(addr, "r", "Alice").await;
    for i in 1..=5 {
        alice
            .send_json(&json!({"type":"chat","text": format!("m{i}")}))
            .await;
        alice.recv_json().await;
    }
    let (_bob, joined) = WsClient::sfu_join(addr, "r", "Bob").await;
    let texts: Vec<_> = joined["chat"]
        .as_array()
        .expect("chat array")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, ["m3", "m4", "m5"]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut a1, _) = WsClient::sfu_join(addr, "one", "A1").await;
    let (mut b1, joined) = WsClient::sfu_join(addr, "two", "B1").await;
    assert_eq!(joined["participants"], json!([]));
    let (_a2, joined) = WsClient::sfu_join(addr, "one", "A2").await;
    assert_eq!(joined["participants"].as_array().map(Vec::len), Some(1));
    a1.recv_json().await; // participant-joined A2
    b1.expect_silence(150).await;
    a1.send_json(&json!({"type":"chat","text":"room one"}))
        .await;
    assert_eq!(a1.recv_json().await["text"], "room one");
    b1.expect_silence(200).await;
    let (_b2, joined) = WsClient::sfu_join(addr, "two", "B2").await;
    assert_eq!(joined["chat"], json!([]), "history never crosses rooms");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn full_room_answers_room_full_and_frees_up_after_a_leave() {
    let server = start_with(|c| c.max_participants = 2).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::sfu_join(addr, "small", "A").await;
    let (mut b, _) = WsClient::sfu_join(addr, "small", "B").await;
    a.recv_json().await;
    let mut c = WsClient::connect(addr, "/ws").await;
    let join = json!({"type":"join","room":"small","name":"C"});
    c.send_json(&join).await;
    assert_eq!(
        c.recv_json().await,
        json!({"type":"room-full","room":"small","maxParticipants":2})
    );
    a.expect_silence(150).await;
    b.send_json(&json!({"type":"leave"})).await;
    assert_eq!(b.recv_json().await["type"], "left");
    assert_eq!(a.recv_json().await["type"], "participant-left");
    c.send_json(&join).await;
    assert_eq!(c.recv_json().await["type"], "joined");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn rooms_are_created_on_join_and_removed_when_empty() {
    let server = start_with(|c| c.max_rooms = 1).await;
    let addr = server.addr();
    assert_eq!(server.rooms().len(), 0);
    let (a, _) = WsClient::sfu_join(addr, "first", "A").await;
    assert_eq!(server.rooms().len(), 1);
    let mut b = WsClient::connect(addr, "/ws").await;
    b.send_json(&json!({"type":"join","room":"second","name":"B"}))
        .await;
    b.expect_error("too-many-rooms").await;
    a.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !server.rooms().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "room not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.send_json(&json!({"type":"join","room":"second","name":"B"}))
        .await;
    assert_eq!(b.recv_json().await["type"], "joined");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn media_messages_are_handed_to_the_media_engine() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    // Before joining there is no media leg to hand them to.
    let mut early = WsClient::connect(addr, "/ws").await;
    early
        .send_json(&json!({"type":"join","room":"m","name":"Early"}))
        .await;
    assert_eq!(early.recv_json().await["type"], "joined");
    early.send_json(&json!({"type":"leave"})).await;
    assert_eq!(early.recv_json().await["type"], "left");
    early
        .send_json(&json!({"type":"offer","sdp":"v=0\r\n","tracks":[]}))
        .await;
    early.expect_error("not-joined").await;

    // Joined: the session parses the request and passes it on; whatever the engine answers
    // (an answer, or an error for this unusable SDP) comes back as a media event.
    let (mut alice, _) = WsClient::sfu_join(addr, "m", "Alice").await;
    alice
        .send_json(&json!({"type":"offer","sdp":"v=0\r\n","tracks":[{"mid":"0","source":"camera","muted":false}]}))
        .await;
    let reply = alice.recv_text().await;
    let event: Result<MediaEvent, _> = serde_json::from_str(&reply);
    assert!(event.is_ok(), "expected a media event, got {reply}");
    // Malformed media messages are refused by the session itself.
    alice.send_json(&json!({"type":"mute","trackId":7})).await;
    alice.expect_error("bad-message").await;
    alice.send_json(&json!({"type":"subscribe"})).await;
    alice.expect_error("bad-message").await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_seed_000_client_may_still_join_as_sfu_participant() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut mesh, _) = WsClient::mesh_join(addr, "/ws", "M").await;
    let mut late = WsClient::connect(addr, "/ws").await;
    let client_id = late.recv_json().await;
    assert_eq!(client_id["type"], "client-id");
    let late_id = client_id["id"].as_str().expect("id").to_owned();
    late.recv_json().await; // peer-list
    assert_eq!(mesh.recv_json().await["peerId"], late_id.as_str());

    late.send_json(&json!({"type":"join","room":"lobby","name":"Late"}))
        .await;
    assert_eq!(late.recv_json().await["type"], "joined");
    assert_eq!(
        mesh.recv_json().await,
        json!({"type":"peer-left","peerId": late_id})
    );
    server.shutdown().await.expect("shutdown");
}
