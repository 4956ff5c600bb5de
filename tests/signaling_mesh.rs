//! The mesh-compatible protocol of the seeds on `/ws`: seed 002's 3-peer frame exchange message
//! by message, seed-000 clients (no `join`) beside seed-002 clients, seed 003's call-* frames,
//! unknown targets, duplicate IDs, room isolation, and the wall between mesh and SFU members.

mod support;

use serde_json::{json, Value};
use support::start_with;
use support::ws::{string_list, WsClient};

/// Frames the way browsers and the seed clients write them, with odd spacing and key order so
/// that "unchanged" really means byte-identical.
const OFFER_A_TO_B: &str =
    r#"{"type":"offer", "from":"A","to":"B",  "sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}"#;
const ANSWER_B_TO_A: &str =
    r#"{ "sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n", "to":"A", "from":"B", "type":"answer" }"#;
const CANDIDATE_A_TO_B: &str = r#"{"type":"candidate","from":"A","to":"B","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}}"#;
const CANDIDATE_B_TO_A: &str = r#"{"type":"candidate","from":"B","to":"A","candidate":{"candidate":"candidate:2 1 udp 2122260223 192.0.2.2 54401 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;

fn frame(kind: &str, from: &str, to: &str) -> String {
    format!(r#"{{"type":"{kind}","from":"{from}","to":"{to}","sdp":"v=0\r\n{kind}-{from}-{to}"}}"#)
}

#[tokio::test]
async fn seed_002_frame_exchange_with_three_peers() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();

    // Phase 1: all peers join; peer-list and peer-joined exactly as in the seed.
    let (mut a, peers) = WsClient::mesh_join(addr, "/ws", "A").await;
    assert!(peers.is_empty());
    let (mut b, peers) = WsClient::mesh_join(addr, "/ws", "B").await;
    assert_eq!(peers, ["A"]);
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-joined","peerId":"B"})
    );
    let (mut c, peers) = WsClient::mesh_join(addr, "/ws", "C").await;
    assert_eq!(peers, ["A", "B"]);
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-joined","peerId":"C"})
    );
    assert_eq!(
        b.recv_json().await,
        json!({"type":"peer-joined","peerId":"C"})
    );

    // Phase 2: A calls B. Targeted frames arrive unchanged at the target only.
    a.send_text(OFFER_A_TO_B).await;
    assert_eq!(b.recv_text().await, OFFER_A_TO_B);
    b.send_text(ANSWER_B_TO_A).await;
    assert_eq!(a.recv_text().await, ANSWER_B_TO_A);
    a.send_text(CANDIDATE_A_TO_B).await;
    assert_eq!(b.recv_text().await, CANDIDATE_A_TO_B);
    b.send_text(CANDIDATE_B_TO_A).await;
    assert_eq!(a.recv_text().await, CANDIDATE_B_TO_A);
    c.expect_silence(200).await;

    // Phase 3: C calls A.
    let offer = frame("offer", "C", "A");
    c.send_text(&offer).await;
    assert_eq!(a.recv_text().await, offer);
    let answer = frame("answer", "A", "C");
    a.send_text(&answer).await;
    assert_eq!(c.recv_text().await, answer);
    b.expect_silence(200).await;

    // Phase 4: C calls B.
    let offer = frame("offer", "C", "B");
    c.send_text(&offer).await;
    assert_eq!(b.recv_text().await, offer);
    let answer = frame("answer", "B", "C");
    b.send_text(&answer).await;
    assert_eq!(c.recv_text().await, answer);
    a.expect_silence(200).await;

    // Clean disconnect sends peer-left to all the others.
    c.close().await;
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-left","peerId":"C"})
    );
    assert_eq!(
        b.recv_json().await,
        json!({"type":"peer-left","peerId":"C"})
    );
    a.expect_silence(100).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn seed_000_client_beside_seed_002_clients() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::mesh_join(addr, "/ws", "A").await;
    let (mut b, _) = WsClient::mesh_join(addr, "/ws", "B").await;
    assert_eq!(a.recv_json().await["peerId"], "B");

    // X never sends join: after the grace period it gets an ID and the peer list.
    let mut x = WsClient::connect(addr, "/ws").await;
    let client_id = x.recv_json().await;
    assert_eq!(client_id["type"], "client-id", "got {client_id}");
    let x_id = client_id["id"].as_str().expect("id").to_owned();
    assert_eq!(client_id["peerId"], x_id.as_str());
    assert_eq!(x_id.len(), 32, "server IDs are 128-bit hex");
    let list = x.recv_json().await;
    assert_eq!(list["type"], "peer-list");
    assert_eq!(string_list(&list["peers"]), ["A", "B"]);
    // ... and only then do the others hear of it.
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-joined","peerId": x_id})
    );
    assert_eq!(
        b.recv_json().await,
        json!({"type":"peer-joined","peerId": x_id})
    );

    // Seed 000 messages: ice-candidate by `to`, chat to everyone else, unchanged.
    let candidate = format!(
        r#"{{"type":"ice-candidate","from":"{x_id}","to":"A","candidate":{{"candidate":"candidate:1 1 udp 1 192.0.2.9 9 typ host"}}}}"#
    );
    x.send_text(&candidate).await;
    assert_eq!(a.recv_text().await, candidate);
    let chat = r#"{"type":"chat","text":"hello from seed 000"}"#;
    x.send_text(chat).await;
    assert_eq!(a.recv_text().await, chat);
    assert_eq!(b.recv_text().await, chat);
    x.expect_silence(200).await;
    let offer = frame("offer", "A", &x_id);
    a.send_text(&offer).await;
    assert_eq!(x.recv_text().await, offer);

    // A seed-002 client joining now sees X and no phantom, and is itself never given a
    // client-id: its first message is its peer-list.
    let (mut d, peers) = WsClient::mesh_join(addr, "/ws", "D").await;
    assert_eq!(peers, vec!["A".to_owned(), "B".to_owned(), x_id.clone()]);
    for peer in [&mut a, &mut b, &mut x] {
        assert_eq!(
            peer.recv_json().await,
            json!({"type":"peer-joined","peerId":"D"})
        );
    }

    // A seed-000 client that talks first is admitted at once, before its message is relayed.
    let mut y = WsClient::connect(addr, "/ws").await;
    let first = r#"{"type":"chat","text":"first words"}"#;
    y.send_text(first).await;
    let y_id = y.recv_json().await["id"].as_str().expect("id").to_owned();
    assert_eq!(y.recv_json().await["type"], "peer-list");
    for peer in [&mut a, &mut b, &mut x, &mut d] {
        assert_eq!(
            peer.recv_json().await,
            json!({"type":"peer-joined","peerId": y_id})
        );
        assert_eq!(peer.recv_text().await, first);
    }

    x.close().await;
    for peer in [&mut a, &mut b, &mut d, &mut y] {
        assert_eq!(
            peer.recv_json().await,
            json!({"type":"peer-left","peerId": x_id})
        );
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn seed_003_call_messages_are_routed_by_to() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut caller, _) = WsClient::mesh_join(addr, "/ws?room=calls", "caller").await;
    let (mut callee, _) = WsClient::mesh_join(addr, "/ws?room=calls", "callee").await;
    let (mut bystander, _) = WsClient::mesh_join(addr, "/ws?room=calls", "bystander").await;
    caller.recv_json().await; // peer-joined callee
    caller.recv_json().await; // peer-joined bystander
    callee.recv_json().await; // peer-joined bystander

    let exchange: [(&str, bool, Value); 7] = [
        ("call-request", true, json!({})),
        ("call-ack", false, json!({})),
        ("call-offer", true, json!({"sdp": "v=0\r\ncall-offer"})),
        ("call-answer", false, json!({"sdp": "v=0\r\ncall-answer"})),
        (
            "ice-candidate",
            true,
            json!({"candidate": {"candidate": "candidate:1", "sdpMid": "0"}}),
        ),
        (
            "ice-candidate",
            false,
            json!({"candidate": {"candidate": "candidate:2", "sdpMLineIndex": 0}}),
        ),
        ("call-hangup", true, json!({"channel_id": "c-1"})),
    ];
    for (kind, from_caller, extra) in exchange {
        let (from, to) = if from_caller {
            ("caller", "callee")
        } else {
            ("callee", "caller")
        };
        let mut message = json!({"type": kind, "from": from, "to": to});
        if let (Some(target), Some(fields)) = (message.as_object_mut(), extra.as_object()) {
            target.extend(fields.clone());
        }
        let text = message.to_string();
        let (sender, receiver) = if from_caller {
            (&mut caller, &mut callee)
        } else {
            (&mut callee, &mut caller)
        };
        sender.send_text(&text).await;
        assert_eq!(
            receiver.recv_text().await,
            text,
            "{kind} must arrive unchanged"
        );
    }
    bystander.expect_silence(200).await;
    caller.expect_silence(0).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unknown_target_and_other_rooms_get_an_error_and_go_nowhere() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::mesh_join(addr, "/ws?room=one", "A").await;
    let (mut b, _) = WsClient::mesh_join(addr, "/ws?room=one", "B").await;
    let (mut q, peers) = WsClient::mesh_join(addr, "/ws?room=two", "Q").await;
    assert!(peers.is_empty(), "rooms are separate: {peers:?}");
    a.recv_json().await; // peer-joined B

    a.send_text(&frame("offer", "A", "Z")).await;
    let error = a.expect_error("unknown-peer").await;
    assert!(error["message"].as_str().unwrap_or("").contains('Z'));
    a.send_text(&frame("offer", "A", "Q")).await;
    a.expect_error("unknown-peer").await;
    b.expect_silence(200).await;
    q.expect_silence(0).await;

    // Broadcasts stay in the room too.
    q.send_text(r#"{"type":"chat","text":"room two only"}"#)
        .await;
    a.expect_silence(200).await;
    b.expect_silence(0).await;
    // And the connection still works after the error.
    a.send_text(&frame("offer", "A", "B")).await;
    assert_eq!(b.recv_text().await, frame("offer", "A", "B"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn duplicate_peer_id_is_refused_without_a_phantom() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::mesh_join(addr, "/ws", "A").await;
    let mut impostor = WsClient::connect(addr, "/ws").await;
    impostor
        .send_json(&json!({"type":"join","peerId":"A"}))
        .await;
    impostor.expect_error("id-taken").await;
    a.expect_silence(200).await;
    // The refused connection stays open and may join under another ID.
    impostor
        .send_json(&json!({"type":"join","peerId":"A2"}))
        .await;
    let list = impostor.recv_json().await;
    assert_eq!(list, json!({"type":"peer-list","peers":["A"]}));
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-joined","peerId":"A2"})
    );
    // The same ID in another room is fine.
    let (_other, peers) = WsClient::mesh_join(addr, "/ws?room=elsewhere", "A").await;
    assert!(peers.is_empty());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn mesh_peers_and_sfu_participants_do_not_see_each_other() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    let (mut mesh, _) = WsClient::mesh_join(addr, "/ws?room=shared", "M").await;
    let (mut sfu, joined) = WsClient::sfu_join(addr, "shared", "Sally").await;
    assert_eq!(joined["participants"], json!([]));
    mesh.expect_silence(200).await;
    let sally = joined["peerId"].as_str().expect("peerId").to_owned();

    mesh.send_text(r#"{"type":"chat","text":"mesh only"}"#)
        .await;
    mesh.send_text(&frame("offer", "M", &sally)).await;
    mesh.expect_error("unknown-peer").await;
    sfu.expect_silence(200).await;

    let (mut mesh2, peers) = WsClient::mesh_join(addr, "/ws?room=shared", "M2").await;
    assert_eq!(
        peers,
        ["M"],
        "SFU participants are not in the mesh peer list"
    );
    sfu.expect_silence(100).await;
    mesh.recv_json().await; // peer-joined M2
    sfu.send_json(&json!({"type":"chat","text":"sfu only"}))
        .await;
    assert_eq!(sfu.recv_json().await["text"], "sfu only");
    mesh.expect_silence(200).await;
    mesh2.expect_silence(0).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn full_mesh_room_answers_room_full() {
    let server = start_with(|c| c.max_participants = 2).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::mesh_join(addr, "/ws", "A").await;
    let (_b, _) = WsClient::mesh_join(addr, "/ws", "B").await;
    a.recv_json().await; // peer-joined B
    let mut c = WsClient::connect(addr, "/ws").await;
    c.send_json(&json!({"type":"join","peerId":"C"})).await;
    let full = c.recv_json().await;
    assert_eq!(
        full,
        json!({"type":"room-full","room":"lobby","maxParticipants":2})
    );
    a.expect_silence(200).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_seed_002_join_after_the_grace_period_still_takes_its_chosen_id() {
    let server = start_with(|c| c.mesh_grace_ms = 100).await;
    let addr = server.addr();
    let (mut a, _) = WsClient::mesh_join(addr, "/ws", "A").await;
    // A slow client: its join arrives after the grace period.
    let mut slow = WsClient::connect(addr, "/ws").await;
    let generated = slow.recv_json().await;
    assert_eq!(generated["type"], "client-id");
    let generated = generated["id"].as_str().expect("id").to_owned();
    assert_eq!(
        slow.recv_json().await,
        json!({"type":"peer-list","peers":["A"]})
    );
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-joined","peerId": generated})
    );

    slow.send_json(&json!({"type":"join","peerId":"Slow"}))
        .await;
    assert_eq!(
        slow.recv_json().await,
        json!({"type":"peer-list","peers":["A"]})
    );
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-left","peerId": generated})
    );
    assert_eq!(
        a.recv_json().await,
        json!({"type":"peer-joined","peerId":"Slow"})
    );
    let offer = frame("offer", "A", "Slow");
    a.send_text(&offer).await;
    assert_eq!(slow.recv_text().await, offer);
    // Only that first switch is allowed.
    slow.send_json(&json!({"type":"join","peerId":"Other"}))
        .await;
    slow.expect_error("already-joined").await;
    server.shutdown().await.expect("shutdown");
}

/// A connection whose first frame is a refused `join` (bad room, bad name, bad or taken peer ID)
/// asked to join: the mesh grace timer never turns it into a seed-000 peer, and nobody is told
/// of a peer that never joined.
#[tokio::test]
async fn a_refused_join_is_never_admitted_by_the_grace_timer() {
    let server = start_with(|c| c.mesh_grace_ms = 200).await;
    let addr = server.addr();
    let (mut mesh, _) = WsClient::mesh_join(addr, "/ws", "M").await;
    let refused = [
        (
            json!({"type":"join","room":"no spaces","name":"Ann"}),
            "bad-room",
        ),
        (
            json!({"type":"join","room":"r1","name":"\u{7}"}),
            "bad-name",
        ),
        (json!({"type":"join","peerId":"no spaces"}), "bad-peer-id"),
        (json!({"type":"join","peerId":"M"}), "id-taken"),
    ];
    for (join, code) in refused {
        let mut client = WsClient::connect(addr, "/ws").await;
        client.send_json(&join).await;
        client.expect_error(code).await;
        // Five times the grace: no `client-id`, no `peer-list`.
        client.expect_silence(1000).await;
    }
    mesh.expect_silence(100).await;
}
