//! Load: 200 concurrent WebSocket clients in 20 rooms, each sending 50 chat messages. Every
//! client must receive every message of its room exactly once and none of another room, within
//! a bounded time.

mod support;

use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use support::start_with;
use support::ws::WsClient;
use tokio::sync::Barrier;

const ROOMS: usize = 20;
const CLIENTS_PER_ROOM: usize = 10;
const MESSAGES_PER_CLIENT: usize = 50;
const TIME_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_in_twenty_rooms_get_every_chat_of_their_room_exactly_once() {
    let server = start_with(|c| {
        // Each client sends a burst of 51 messages (join + 50 chats): allow it, at a sustained
        // rate a real client would not reach.
        c.rate_limit = 100.0;
        c.rate_burst = 64;
        c.max_participants = CLIENTS_PER_ROOM;
        c.chat_history = 10;
    })
    .await;
    let addr = server.addr();

    // Everyone joins first, so that everyone is present for every message.
    let mut clients = Vec::with_capacity(ROOMS * CLIENTS_PER_ROOM);
    for room in 0..ROOMS {
        for member in 0..CLIENTS_PER_ROOM {
            let name = format!("r{room}-c{member}");
            let (client, joined) = WsClient::sfu_join(addr, &format!("room-{room}"), &name).await;
            assert_eq!(
                joined["participants"].as_array().map(Vec::len),
                Some(member)
            );
            clients.push((room, name, client));
        }
    }
    let expected_per_client = CLIENTS_PER_ROOM * MESSAGES_PER_CLIENT;
    // Everyone stays connected until everyone has checked for stray messages (a departure
    // would be announced to the room).
    let all_received = Arc::new(Barrier::new(clients.len()));
    let all_checked = Arc::new(Barrier::new(clients.len()));
    let run = async {
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|(room, name, mut client)| {
                let all_received = all_received.clone();
                let all_checked = all_checked.clone();
                tokio::spawn(async move {
                    for i in 0..MESSAGES_PER_CLIENT {
                        let text = format!("{room}|{name}|{i}");
                        client.send_json(&json!({"type":"chat","text": text})).await;
                    }
                    // Presence announcements of later joiners come first; skip them.
                    let mut seen = HashSet::new();
                    while seen.len() < expected_per_client {
                        let message = client.recv_json().await;
                        if message["type"] == "participant-joined" {
                            continue;
                        }
                        assert_eq!(message["type"], "chat", "{name} got {message}");
                        let text = message["text"].as_str().unwrap_or_default().to_owned();
                        let from_room = text.split('|').next().unwrap_or_default();
                        assert_eq!(from_room, room.to_string(), "{name} got a foreign chat");
                        assert!(seen.insert(text.clone()), "{name} got {text} twice");
                    }
                    // Nothing more may arrive: no duplicates, nothing from other rooms.
                    all_received.wait().await;
                    client.expect_silence(300).await;
                    all_checked.wait().await;
                    seen.len()
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("client task");
        }
        total
    };
    let total = tokio::time::timeout(TIME_LIMIT, run)
        .await
        .expect("load test finished in time");
    assert_eq!(total, ROOMS * CLIENTS_PER_ROOM * expected_per_client);
    assert_eq!(
        server.metrics().chat_messages.get() as usize,
        ROOMS * CLIENTS_PER_ROOM * MESSAGES_PER_CLIENT
    );
    server.shutdown().await.expect("shutdown");
}
