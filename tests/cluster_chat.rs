//! Issue 14: with several nodes the chat history lives in Redis. A room's chat survives a
//! `kill -9` and restart of the node it lived on: the next joiner gets it in `joined`, and
//! numbering goes on after it. Skipped without `redis-server` (failed under CI).

mod support;

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use std::time::Duration;
use support::cluster::{redis_and_two_nodes, wait_nodes, Node};
use support::ws::WsClient;

/// The next message of `kind`.
async fn next_of(client: &mut WsClient, kind: &str) -> Value {
    loop {
        let message = client.recv_json().await;
        if message["type"] == kind {
            return message;
        }
    }
}

/// `LLEN key` (0 if Redis cannot be asked).
fn redis_list_len(url: &str, key: &str) -> i64 {
    let length = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .and_then(|mut connection| redis::cmd("LLEN").arg(key).query::<i64>(&mut connection));
    length.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_history_survives_a_restart_of_the_rooms_node() -> Result<()> {
    let Some((redis, mut a, b)) = redis_and_two_nodes(&[]) else {
        return Ok(());
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        wait_nodes(&[&a, &b], 2, 0).await;
        let (mut alice, _) = WsClient::sfu_join(a.addr, "talk", "Alice").await;
        ensure!(
            a.metric("chorus_rooms").await == 1.0,
            "the room is not on a"
        );
        for text in ["first", "second"] {
            alice
                .send_json(&json!({"type": "chat", "text": text}))
                .await;
            let echo = next_of(&mut alice, "chat").await;
            ensure!(echo["text"] == text, "echo {echo}");
        }
        // The history is written to Redis in the background: wait for it before the kill.
        let stored = || redis_list_len(&redis.url, "chorus:chat:talk");
        support::wait_for("the chat in redis", Duration::from_secs(5), || async {
            (stored() == 2).then_some(())
        })
        .await;
        a.kill();
        drop(alice);
        let a = Node::start(&redis, "a", &[]);
        wait_nodes(&[&a, &b], 2, 0).await;
        // Through the restarted node, and through the other one (relayed or not): the history
        // is there.
        let (mut bob, joined) = WsClient::sfu_join(a.addr, "talk", "Bob").await;
        let texts: Vec<&str> = joined["chat"]
            .as_array()
            .map(|list| list.iter().filter_map(|m| m["text"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            texts == ["first", "second"],
            "history after the restart: {joined}"
        );
        let (_carol, joined) = WsClient::sfu_join(b.addr, "talk", "Carol").await;
        ensure!(
            joined["chat"].as_array().map(Vec::len) == Some(2),
            "carol got {joined}"
        );
        bob.send_json(&json!({"type": "chat", "text": "third"}))
            .await;
        let echo = next_of(&mut bob, "chat").await;
        ensure!(echo["id"] == 3, "numbering does not go on: {echo}");
        Ok(())
    })
    .await?
}
