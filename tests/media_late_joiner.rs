//! Issue 3, test 3: a participant joining a call in progress receives the tracks already
//! published, and the publisher is asked for a keyframe (PLI or FIR) for it — the periodic
//! keyframes are switched off so that only the request can explain the new keyframe.

mod support;

use anyhow::{ensure, Context, Result};
use chorus::client::ClientOptions;
use std::time::Duration;
use support::media::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_tracks_and_a_keyframe() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let quiet = ClientOptions {
        keyframe_interval: Duration::from_secs(3600),
        ..ClientOptions::default()
    };
    let alice = server.client_with("late", "alice", quiet).await?;
    let (audio, video) = alice.publish_audio_video().await?;
    let bob = server.client("late", "bob").await?;
    wait_receiving(&bob, &[audio, video], Duration::from_secs(15)).await?;
    // The call is in progress; remember how many keyframe requests Alice had so far.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests =
        |c: &chorus::client::SfuClient| c.published_track(video).map_or(0, |t| t.plis + t.firs);
    let before = requests(&alice);
    let keyframes_before = alice.published_track(video).map_or(0, |t| t.keyframes_sent);

    let carol = server.client("late", "carol").await?;
    let announced = carol
        .wait_for_message("track-published of alice", Duration::from_secs(10), |m| {
            m["type"] == "track-published" && m["peerId"] == alice.peer_id()
        })
        .await;
    let in_joined = carol
        .joined()
        .to_string()
        .contains(&alice.server_track_id(video).await?);
    ensure!(
        announced.is_ok() || in_joined,
        "carol was not told about alice's tracks"
    );
    wait_receiving(&carol, &[audio, video], Duration::from_secs(15)).await?;
    alice
        .wait_until(
            "a keyframe request for carol",
            Duration::from_secs(5),
            |c| requests(c) > before,
        )
        .await?;
    carol
        .wait_until("a keyframe at carol", Duration::from_secs(5), |c| {
            received_by_tag(c, video).is_some_and(|t| t.keyframes > 0)
        })
        .await?;
    let sent = alice.published_track(video).context("alice's video")?;
    ensure!(
        sent.keyframes_sent > keyframes_before,
        "alice sent no keyframe after the request"
    );
    Ok(())
}
