//! Issue 14: two `chorus serve` nodes sharing a Redis. A client whose room lives on the other
//! node is relayed there: two real WebRTC peers connected to different nodes meet in one room
//! and media flows both ways, straight to the room's node; mesh peers (seed 002) on different
//! nodes relay frames to each other too. Skipped without `redis-server` (failed under CI).

mod support;

use anyhow::{ensure, Context, Result};
use chorus::client::{ClientOptions, SfuClient};
use serde_json::json;
use std::time::Duration;
use support::cluster::{redis_and_two_nodes, wait_nodes, Node};
use support::media::{packets_from, wait_receiving};
use support::ws::WsClient;

async fn connect(node: &Node, room: &str, name: &str) -> Result<SfuClient> {
    SfuClient::connect_with(&node.ws_url(), room, name, None, ClientOptions::default())
        .await
        .with_context(|| format!("{name} joining {room} through node {}", node.id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_nodes_meet_in_one_room_with_media_both_ways() -> Result<()> {
    let Some((_redis, a, b)) = redis_and_two_nodes(&[]) else {
        return Ok(());
    };
    tokio::time::timeout(Duration::from_secs(90), async {
        wait_nodes(&[&a, &b], 2, 0).await;
        let alice = connect(&a, "call", "alice").await?;
        let bob = connect(&b, "call", "bob").await?;
        let (_, alice_video) = alice.publish_audio_video().await?;
        let (_, bob_video) = bob.publish_audio_video().await?;
        wait_receiving(&bob, &[alice_video], Duration::from_secs(20)).await?;
        wait_receiving(&alice, &[bob_video], Duration::from_secs(20)).await?;
        let (from_alice, from_bob) = (
            packets_from(&bob, alice_video),
            packets_from(&alice, bob_video),
        );
        alice
            .wait_until("more of bob's video", Duration::from_secs(5), |c| {
                packets_from(c, bob_video) > from_bob + 30
            })
            .await?;
        bob.wait_until("more of alice's video", Duration::from_secs(5), |c| {
            packets_from(c, alice_video) > from_alice + 30
        })
        .await?;
        // The room is open on exactly one node; the other relays one connection to it.
        let rooms = (
            a.metric("chorus_rooms").await,
            b.metric("chorus_rooms").await,
        );
        ensure!(
            rooms.0 + rooms.1 == 1.0,
            "room open on a: {}, b: {}",
            rooms.0,
            rooms.1
        );
        let relaying = if rooms.0 == 1.0 { &b } else { &a };
        let out = relaying.metric("chorus_cluster_relayed_connections").await;
        ensure!(out == 1.0, "node {} relays {out} connections", relaying.id);
        Ok(())
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_peers_on_two_nodes_relay_frames_to_each_other() -> Result<()> {
    let Some((_redis, a, b)) = redis_and_two_nodes(&[]) else {
        return Ok(());
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        wait_nodes(&[&a, &b], 2, 0).await;
        let (mut x, peers) = WsClient::mesh_join(a.addr, "/ws?room=m", "x").await;
        ensure!(peers.is_empty(), "x sees {peers:?}");
        let (mut y, peers) = WsClient::mesh_join(b.addr, "/ws?room=m", "y").await;
        ensure!(
            peers == ["x"],
            "y (on node b) sees {peers:?}, not x (on node a)"
        );
        let joined = x.recv_json().await;
        ensure!(joined["type"] == "peer-joined", "x got {joined}");
        y.send_json(&json!({"type": "call-request", "to": "x", "from": "y"}))
            .await;
        let relayed = x.recv_json().await;
        ensure!(
            relayed["type"] == "call-request" && relayed["from"] == "y",
            "x got {relayed}"
        );
        x.send_json(&json!({"type": "call-ack", "to": "y", "from": "x"}))
            .await;
        let back = y.recv_json().await;
        ensure!(back["type"] == "call-ack", "y got {back}");
        // y leaving on node b is seen by x on node a.
        y.close().await;
        let left = x.recv_json().await;
        ensure!(left["type"] == "peer-left", "x got {left}");
        Ok(())
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_spreads_participants_over_several_urls() -> Result<()> {
    let Some((_redis, a, b)) = redis_and_two_nodes(&[]) else {
        return Ok(());
    };
    wait_nodes(&[&a, &b], 2, 0).await;
    let config = chorus::loadtest::LoadConfig {
        urls: vec![a.ws_url(), b.ws_url()],
        scenario: Some("smoke".into()),
        duration: Duration::from_secs(4),
        ramp: 20.0,
        quiet: true,
        ..chorus::loadtest::LoadConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), chorus::loadtest::run(config))
        .await
        .context("the run ends")??;
    ensure!(
        report.tracks_receiving == report.tracks_expected,
        "{} of {} tracks received",
        report.tracks_receiving,
        report.tracks_expected
    );
    ensure!(report.errors.is_empty(), "errors: {:?}", report.errors);
    // Half the participants reached each node; each room lives on one, so some were relayed.
    let placed = (
        a.metric("chorus_cluster_placements_total").await,
        b.metric("chorus_cluster_placements_total").await,
    );
    ensure!(
        placed.0 >= 6.0 && placed.1 >= 6.0,
        "joins per node: {placed:?}"
    );
    let relayed = a
        .metric("chorus_cluster_placements_total{result=\"remote\"}")
        .await
        + b.metric("chorus_cluster_placements_total{result=\"remote\"}")
            .await;
    ensure!(relayed >= 2.0, "{relayed} relayed joins");
    let server = report
        .server
        .as_ref()
        .context("metrics of both nodes scraped")?;
    ensure!(server.forwarded_pps > 0.0, "no forwarding measured");
    Ok(())
}
