//! Issue 14: signaling between nodes goes through Redis pub/sub, not a socket between them. A
//! subscriber on every node's relay inbox sees the envelopes of a cross-node join; the room's
//! node is reached even though every advertised `--node-url` is a closed port; an `open`
//! without the cluster's relay key is refused and one with it is served; Redis going away
//! mid-relay tells the relayed client (`cluster-unavailable`, close 1013) instead of leaving it
//! hanging; the room's node lets go of a client whose edge node hangs within the node timeout;
//! the size limits hold for relayed clients. Skipped without `redis-server` (failed under CI).

mod support;

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::cluster::{wait_nodes, Node, Redis};
use support::ws::WsClient;

/// Every envelope published to any node's relay inbox, as (channel, envelope).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Subscribes to every relay inbox (`chorus:node:*:relay`) and records what is published.
async fn watch_inboxes(url: &str) -> Result<Seen> {
    let mut pubsub = redis::Client::open(url)?.get_async_pubsub().await?;
    pubsub.psubscribe("chorus:node:*:relay").await?;
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload().unwrap_or_default();
            let envelope = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let channel = message.get_channel_name().to_owned();
            record.lock().expect("seen").push((channel, envelope));
        }
    });
    Ok(seen)
}

/// Waits (up to 5 s) until an envelope on `channel` satisfies `check`.
async fn wait_envelope(seen: &Seen, channel: &str, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = (seen.lock().expect("seen").iter()).any(|(c, e)| c == channel && check(e));
        if found {
            return;
        }
        if Instant::now() >= deadline {
            let seen = seen.lock().expect("seen").clone();
            panic!("no {what} on {channel}; seen: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 5 s) until `series` on `node` reads `value`.
async fn wait_metric(node: &Node, series: &str, value: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = node.metric(series).await;
        if now == value {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{series} on {} is {now}, not {value}",
            node.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next message of `kind`.
async fn next_of(client: &mut WsClient, kind: &str) -> Value {
    loop {
        let message = client.recv_json().await;
        if message["type"] == kind {
            return message;
        }
    }
}

/// A call across two nodes: the room opens on `owner` (node "a", alone in the cluster when
/// alice joins there); then `edge` (node "b") starts, and bob, who reaches it, is relayed.
struct RelayedCall {
    owner: Node,
    edge: Node,
    alice: WsClient,
    bob: WsClient,
}

async fn relayed_call(redis: &Redis, args: &[&str]) -> RelayedCall {
    let owner = Node::start(redis, "a", args);
    wait_nodes(&[&owner], 1, 0).await;
    let (mut alice, _) = WsClient::sfu_join(owner.addr, "call", "Alice").await;
    let edge = Node::start(redis, "b", args);
    wait_nodes(&[&owner, &edge], 2, 0).await;
    let (bob, joined) = WsClient::sfu_join(edge.addr, "call", "Bob").await;
    assert_eq!(joined["room"], "call", "bob got {joined}");
    next_of(&mut alice, "participant-joined").await;
    RelayedCall {
        owner,
        edge,
        alice,
        bob,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_between_nodes_goes_through_redis_not_a_socket() -> Result<()> {
    support::init_tracing();
    let Some(redis) = Redis::start() else {
        return Ok(());
    };
    let seen = watch_inboxes(&redis.url).await?;
    tokio::time::timeout(Duration::from_secs(30), async {
        // Both nodes advertise a closed port: a node-to-node WebSocket could never reach them.
        let closed = ["--node-url", "ws://127.0.0.1:9"];
        let call = relayed_call(&redis, &closed).await;
        let (owner, edge) = (&call.owner, &call.edge);
        let (mut alice, mut bob) = (call.alice, call.bob);
        bob.send_json(&json!({"type": "chat", "text": "via redis"}))
            .await;
        let chat = next_of(&mut alice, "chat").await;
        ensure!(chat["text"] == "via redis", "alice got {chat}");
        let to_owner = format!("chorus:node:{}:relay", owner.id);
        let to_edge = format!("chorus:node:{}:relay", edge.id);
        let up_from_edge = |e: &Value| e["edge"] == edge.id.as_str() && e["up"] == true;
        wait_envelope(&seen, &to_owner, "open", |e| {
            up_from_edge(e) && e["kind"] == "open"
        })
        .await;
        let carries = |e: &Value, kind: &str| {
            e["kind"] == "text" && e["text"].as_str().is_some_and(|t| t.contains(kind))
        };
        wait_envelope(&seen, &to_owner, "bob's join", |e| {
            up_from_edge(e) && carries(e, "\"join\"")
        })
        .await;
        wait_envelope(&seen, &to_edge, "bob's joined", |e| {
            e["up"] == false && carries(e, "\"joined\"")
        })
        .await;
        let (out, into) = (
            "chorus_cluster_relayed_connections{direction=\"out\"}",
            "chorus_cluster_relayed_connections{direction=\"in\"}",
        );
        wait_metric(edge, out, 1.0).await?;
        wait_metric(owner, into, 1.0).await?;
        let published = edge
            .metric("chorus_cluster_relay_envelopes_total{direction=\"published\"}")
            .await;
        ensure!(published >= 3.0, "the edge published {published} envelopes");
        // Bob's close reaches the room's node through Redis too: alice sees him leave.
        bob.close().await;
        next_of(&mut alice, "participant-left").await;
        wait_envelope(&seen, &to_owner, "bob's close", |e| {
            up_from_edge(e) && e["kind"] == "close"
        })
        .await;
        wait_metric(owner, into, 0.0).await?;
        wait_metric(edge, out, 0.0).await
    })
    .await
    .context("timed out")?
}

/// Publishes `envelope` to node `to`'s relay inbox.
async fn publish(redis: &mut redis::aio::MultiplexedConnection, to: &str, envelope: Value) {
    let channel = format!("chorus:node:{to}:relay");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(envelope.to_string())
        .query_async(redis)
        .await
        .expect("publish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_without_the_relay_key_is_refused_and_one_with_it_is_served() -> Result<()> {
    support::init_tracing();
    let Some(redis) = Redis::start() else {
        return Ok(());
    };
    // Short timers: the stand-in edge below sends no keepalives, so the room's node must let
    // go of its connection after the idle timeout.
    let timers = ["--ping-interval-secs", "1", "--idle-timeout-secs", "2"];
    let a = Node::start(&redis, "a", &timers);
    tokio::time::timeout(Duration::from_secs(30), async {
        let client = redis::Client::open(redis.url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        // A stand-in edge node "x" in the registry (draining: no room is placed on it).
        let record = json!({"id": "x", "url": "ws://127.0.0.1:9", "media": [], "rooms": [],
            "participants": 0, "forwarded_pps": 0.0, "cpu": 0.0, "draining": true,
            "heartbeat_ms": 0});
        let _: () = redis::pipe()
            .cmd("SET")
            .arg("chorus:node:x")
            .arg(record.to_string())
            .arg("PX")
            .arg(60_000)
            .ignore()
            .cmd("SADD")
            .arg("chorus:nodes")
            .arg("x")
            .ignore()
            .query_async(&mut conn)
            .await?;
        wait_nodes(&[&a], 2, 1).await;
        let seen = watch_inboxes(&redis.url).await?;
        let to_x = "chorus:node:x:relay";
        let open = |conn: u64, key: &str| {
            json!({"edge": "x", "conn": conn, "up": true, "kind": "open", "key": key,
                "query": "", "client": "192.0.2.7"})
        };
        publish(&mut conn, "a", open(1, "not-the-cluster-key")).await;
        wait_envelope(&seen, to_x, "the refusal", |e| {
            e["conn"] == 1 && e["kind"] == "close" && e["code"] == 1008
        })
        .await;
        let key: String = redis::cmd("GET")
            .arg("chorus:relay-key")
            .query_async(&mut conn)
            .await?;
        publish(&mut conn, "a", open(2, &key)).await;
        let join = json!({"type": "join", "room": "r", "name": "Zed"}).to_string();
        let text = json!({"edge": "x", "conn": 2, "up": true, "kind": "text", "text": join});
        publish(&mut conn, "a", text).await;
        wait_envelope(&seen, to_x, "joined", |e| {
            e["conn"] == 2 && e["text"].as_str().is_some_and(|t| t.contains("\"joined\""))
        })
        .await;
        wait_metric(
            &a,
            "chorus_cluster_relayed_connections{direction=\"in\"}",
            1.0,
        )
        .await?;
        ensure!(
            !seen
                .lock()
                .expect("seen")
                .iter()
                .any(|(_, e)| e["conn"] == 1 && e["kind"] == "text"),
            "the refused connection was served"
        );
        // The room's node keeps the connection alive, and ends it when the edge stays silent.
        wait_envelope(&seen, to_x, "a keepalive", |e| {
            e["conn"] == 2 && e["kind"] == "keepalive"
        })
        .await;
        wait_envelope(&seen, to_x, "the idle close", |e| {
            e["conn"] == 2 && e["kind"] == "close" && e["code"] == 1001
        })
        .await;
        let into = "chorus_cluster_relayed_connections{direction=\"in\"}";
        wait_metric(&a, into, 0.0).await
    })
    .await
    .context("timed out")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_mid_relay_tells_the_relayed_client() -> Result<()> {
    support::init_tracing();
    let Some(redis) = Redis::start() else {
        return Ok(());
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut call = relayed_call(&redis, &[]).await;
        let out = "chorus_cluster_relayed_connections{direction=\"out\"}";
        wait_metric(&call.edge, out, 1.0).await?;
        drop(redis);
        let gone = Instant::now();
        call.bob.expect_error("cluster-unavailable").await;
        let close = call.bob.expect_close(Duration::from_secs(5)).await;
        let code = close.map(|f| u16::from(f.code));
        ensure!(code == Some(1013), "bob's close code: {code:?}");
        let took = gone.elapsed();
        ensure!(took < Duration::from_secs(5), "told only after {took:?}");
        Ok(())
    })
    .await
    .context("timed out")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rooms_node_lets_go_of_a_client_whose_edge_hangs() -> Result<()> {
    support::init_tracing();
    let Some(redis) = Redis::start() else {
        return Ok(());
    };
    let mut call = tokio::time::timeout(Duration::from_secs(30), relayed_call(&redis, &[]))
        .await
        .context("timed out")?;
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        let into = "chorus_cluster_relayed_connections{direction=\"in\"}";
        wait_metric(&call.owner, into, 1.0).await?;
        // The edge hangs: its Redis connections stay open, only its heartbeats and keepalives
        // stop.
        call.edge.signal(libc::SIGSTOP);
        let stopped = Instant::now();
        // Within a few node timeouts (a loaded machine is slow), well before the idle timeout
        // (30 s) that was all a hung node-to-node WebSocket would have been noticed by.
        let most = Duration::from_secs(support::cluster::NODE_TIMEOUT_SECS * 5);
        loop {
            let frames = call.alice.frames_within(Duration::from_millis(200)).await;
            if frames.iter().any(|f| f["type"] == "participant-left") {
                break;
            }
            ensure!(stopped.elapsed() < most, "bob not gone after {most:?}");
        }
        tracing::info!(took = ?stopped.elapsed(), "the hung edge's client left");
        wait_metric(&call.owner, into, 0.0).await
    })
    .await;
    call.edge.signal(libc::SIGCONT);
    result.context("timed out")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_client_over_the_size_limits_is_closed_as_a_direct_one() -> Result<()> {
    support::init_tracing();
    let Some(redis) = Redis::start() else {
        return Ok(());
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        // (`..` would drop, and so kill, the room's node at once.)
        let RelayedCall {
            owner: _owner,
            edge,
            alice: _alice,
            mut bob,
        } = relayed_call(&redis, &[]).await;
        // A binary frame over --max-frame-bytes (64 KiB): refused by the edge itself.
        bob.send_binary(vec![0; 70_000]).await;
        let close = bob.expect_close(Duration::from_secs(5)).await;
        let code = close.map(|f| u16::from(f.code));
        ensure!(code == Some(1009), "binary: close code {code:?}");
        // A chat over --max-frame-bytes (only SDP may be larger): refused by the room's node,
        // whose close reaches the client with its code.
        let (mut carol, _) = WsClient::sfu_join(edge.addr, "call", "Carol").await;
        let text = "x".repeat(70_000);
        carol
            .send_json(&json!({"type": "chat", "text": text}))
            .await;
        let close = carol.expect_close(Duration::from_secs(5)).await;
        let code = close.map(|f| u16::from(f.code));
        ensure!(code == Some(1009), "chat: close code {code:?}");
        let out = "chorus_cluster_relayed_connections{direction=\"out\"}";
        wait_metric(&edge, out, 0.0).await
    })
    .await
    .context("timed out")?
}
