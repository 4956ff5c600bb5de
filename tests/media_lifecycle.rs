//! Issue 3, test 5: mute, unpublish and leave — the others are told and forwarding stops; when
//! everyone has left, the server's media counts (`/metrics`) are back to zero. The publisher
//! keeps sending while muted (as a browser sends silence / black frames), so it is the server
//! that must stop forwarding.

mod support;

use anyhow::Result;
use chorus::client::SfuClient;
use std::time::Duration;
use support::media::*;

const GAUGES: [&str; 3] = [
    "chorus_media_peer_connections",
    "chorus_media_subscriptions",
    "chorus_media_published_tracks",
];
const TOLD: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(800);
const STOP: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_unpublish_leave_stop_forwarding() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let alice = server.client("life", "alice").await?;
    let (audio, video) = alice.publish_audio_video().await?;
    let others = [
        server.client("life", "bob").await?,
        server.client("life", "carol").await?,
    ];
    for o in &others {
        wait_receiving(o, &[audio, video], Duration::from_secs(15)).await?;
    }
    // 3 connections, 2 published tracks, each subscribed by 2 others.
    for (gauge, value) in GAUGES.iter().zip([3.0, 4.0, 2.0]) {
        server.wait_metrics(&[gauge], value, STOP).await?;
    }

    // Mute: told, forwarding stops; unmute: forwarding resumes.
    let video_id = alice.server_track_id(video).await?;
    alice.mute(video, true).await?;
    for o in &others {
        told(o, "mute", alice.peer_id(), &video_id, Some(true)).await?;
        wait_stopped(o, video, QUIET, STOP).await?;
    }
    alice.mute(video, false).await?;
    for o in &others {
        told(o, "mute", alice.peer_id(), &video_id, Some(false)).await?;
        let at = packets_from(o, video);
        o.wait_until("video after unmute", STOP, |c| {
            packets_from(c, video) > at + 10
        })
        .await?;
    }

    // Unpublish the audio: told, forwarding stops, video still flows.
    let audio_id = alice.server_track_id(audio).await?;
    alice.unpublish(audio).await?;
    for o in &others {
        told(o, "track-unpublished", alice.peer_id(), &audio_id, None).await?;
        wait_stopped(o, audio, QUIET, STOP).await?;
        let at = packets_from(o, video);
        o.wait_until("video still flowing", STOP, |c| {
            packets_from(c, video) > at + 10
        })
        .await?;
    }
    server.wait_metrics(&[GAUGES[2]], 1.0, STOP).await?;

    // Leave: told, forwarding stops.
    alice.leave().await?;
    for o in &others {
        o.wait_for_message("participant-left", TOLD, |m| {
            m["type"] == "participant-left" && m["peerId"] == alice.peer_id()
        })
        .await?;
        wait_stopped(o, video, QUIET, STOP).await?;
    }
    for o in &others {
        o.leave().await?;
    }
    server
        .wait_metrics(&GAUGES, 0.0, Duration::from_secs(10))
        .await
}

/// Waits until `client` is told `kind` about `track_id` of `peer_id` (and `muted`, if given).
async fn told(
    client: &SfuClient,
    kind: &str,
    peer_id: &str,
    track_id: &str,
    muted: Option<bool>,
) -> Result<()> {
    client
        .wait_for_message(kind, TOLD, |m| {
            m["type"] == kind
                && m["peerId"] == peer_id
                && m["trackId"] == track_id
                && muted.is_none_or(|muted| m["muted"] == muted)
        })
        .await?;
    Ok(())
}
