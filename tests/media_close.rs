//! Issue 10, item 7: a client that closes its PeerConnection (`pc.close()`, which sends a DTLS
//! close_notify) while its WebSocket stays open is noticed within 2 s — the others are told
//! `track-unpublished` for its tracks and it gets `error media-failed` — rather than after the
//! 12 s media-silence limit.

mod support;

use anyhow::{ensure, Result};
use std::time::{Duration, Instant};
use support::media::*;

const NOTICED: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_peer_connection_is_noticed_within_two_seconds() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let room = "close-notify";
    let ghost = server.client(room, "ghost").await?;
    let (audio, video) = ghost.publish_audio_video().await?;
    let bob = server.client(room, "bob").await?;
    wait_receiving(&bob, &[audio, video], Duration::from_secs(15)).await?;
    let ghost_id = ghost.peer_id();
    let unpublished = |c: &chorus::client::SfuClient| {
        c.messages_of_type("track-unpublished")
            .iter()
            .filter(|m| m["peerId"] == ghost_id)
            .count()
    };
    let closed_at = Instant::now();
    ghost.close_media().await;
    // Wait past the silence limit, so that a failure says how long noticing really takes.
    bob.wait_until("track-unpublished ×2", Duration::from_secs(20), |c| {
        unpublished(c) >= 2
    })
    .await?;
    let elapsed = closed_at.elapsed();
    eprintln!("pc.close() noticed after {elapsed:?}");
    ensure!(
        elapsed <= NOTICED,
        "noticed after {elapsed:?}, more than {NOTICED:?}"
    );
    let failed = ghost
        .messages_of_type("error")
        .iter()
        .any(|m| m["code"] == "media-failed");
    ensure!(failed, "the closing client is told media-failed");
    Ok(())
}
