//! Issue 3, test 7: a client that vanishes silently — media stops without any goodbye and its
//! WebSocket stays open but unanswered — is cleaned up within 30 s: the others are told
//! (`participant-left`, `track-unpublished`), forwarding of its tracks stops and the server's
//! media counts drop. Also: a client whose TCP connection drops without a close frame is
//! cleaned up promptly.

mod support;

use anyhow::{ensure, Result};
use chorus::client::SfuClient;
use std::time::{Duration, Instant};
use support::media::*;

/// The bound, and a generous ceiling above it for a loaded machine (the measured time
/// is printed; the ceiling only catches cleanup that does not work).
const CLEANUP: Duration = Duration::from_secs(30);
const SLACK: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silently_vanished_client_is_cleaned_up() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(120), run(Gone::Silently)).await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_cleaned_up() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), run(Gone::TcpDropped)).await?
}

#[derive(Debug, Clone, Copy)]
enum Gone {
    Silently,
    TcpDropped,
}

async fn run(how: Gone) -> Result<()> {
    let server = start_server().await?;
    let room = format!("vanish-{how:?}");
    let ghost = server.client(&room, "ghost").await?;
    let (audio, video) = ghost.publish_audio_video().await?;
    let others = [
        server.client(&room, "bob").await?,
        server.client(&room, "carol").await?,
    ];
    let (b_audio, b_video) = others[0].publish_audio_video().await?;
    for o in &others {
        wait_receiving(o, &[audio, video], Duration::from_secs(15)).await?;
    }
    wait_receiving(&others[1], &[b_audio, b_video], Duration::from_secs(15)).await?;
    let gauge = ["chorus_media_peer_connections"];
    server
        .wait_metrics(&gauge, 3.0, Duration::from_secs(5))
        .await?;

    let gone_at = Instant::now();
    match how {
        Gone::Silently => ghost.vanish(),
        Gone::TcpDropped => ghost.drop_connection(),
    }
    let bound = match how {
        Gone::Silently => CLEANUP,
        Gone::TcpDropped => Duration::from_secs(5),
    };
    // Wait well past the ceiling so that a failure says how long cleanup really takes.
    for o in &others {
        told_gone(o, &ghost, (bound + SLACK) * 2).await?;
    }
    let elapsed = gone_at.elapsed();
    ensure!(
        elapsed <= bound + SLACK,
        "cleanup took {elapsed:?}, more than {bound:?} + {SLACK:?}"
    );
    for o in &others {
        wait_stopped(o, video, Duration::from_millis(800), Duration::from_secs(5)).await?;
    }
    // The others are unaffected.
    let before = packets_from(&others[1], b_video);
    others[1]
        .wait_until("bob's video still flowing", Duration::from_secs(3), |c| {
            packets_from(c, b_video) > before + 5
        })
        .await?;
    server
        .wait_metrics(&gauge, 2.0, Duration::from_secs(5))
        .await?;
    eprintln!("{how:?}: cleaned up after {elapsed:?}");
    Ok(())
}

/// Waits until `observer` is told the ghost left and its tracks are unpublished.
async fn told_gone(observer: &SfuClient, ghost: &SfuClient, timeout: Duration) -> Result<()> {
    let ghost_id = ghost.peer_id();
    observer
        .wait_for_message("participant-left", timeout, |m| {
            m["type"] == "participant-left" && m["peerId"] == ghost_id
        })
        .await?;
    let unpublished = |c: &SfuClient| {
        c.messages_of_type("track-unpublished")
            .iter()
            .filter(|m| m["peerId"] == ghost_id)
            .count()
    };
    let told = observer
        .wait_until("track-unpublished ×2", Duration::from_secs(2), |c| {
            unpublished(c) >= 2
        })
        .await;
    ensure!(
        told.is_ok(),
        "{} got {} track-unpublished for the ghost, expected 2",
        observer.peer_id(),
        unpublished(observer)
    );
    Ok(())
}
