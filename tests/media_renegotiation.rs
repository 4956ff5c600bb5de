//! Issue 3, test 6: renegotiation mid-call and glare. (a) A participant adds a third track
//! (screen share) during the call: the other side is told and receives it, and the existing
//! tracks keep flowing. (b) Glare: the client's offer crosses the server's offer on the wire
//! (the client holds the server's offer back until its own has left, as network delay would);
//! by the protocol's rule the client ignores the server's offer, the server rolls its own back
//! and answers, then re-offers — and everything converges.

mod support;

use anyhow::{ensure, Context, Result};
use chorus::client::{SfuClient, TrackSpec};
use chorus::protocol::TrackSource;
use std::time::Duration;
use support::media::*;

const FLOW: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_mid_call_and_glare_converge() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let alice = server.client("reneg", "alice").await?;
    let bob = server.client("reneg", "bob").await?;
    let (a_audio, a_video) = alice.publish_audio_video().await?;
    let (b_audio, b_video) = bob.publish_audio_video().await?;
    wait_receiving(&alice, &[b_audio, b_video], FLOW).await?;
    wait_receiving(&bob, &[a_audio, a_video], FLOW).await?;

    // (a) Alice shares her screen.
    let screen = alice.publish(&[TrackSpec::screen()]).await?[0];
    bob.wait_for_message("track-published screen", FLOW, |m| {
        m["type"] == "track-published" && m["peerId"] == alice.peer_id() && m["source"] == "screen"
    })
    .await?;
    wait_receiving(&bob, &[screen], FLOW).await?;
    still_flowing(&bob, &[a_audio, a_video]).await?;
    still_flowing(&alice, &[b_audio, b_video]).await?;

    // (b) Glare: hold alice's incoming media messages, make the server offer to her (bob adds
    // a track), then have alice offer (she adds a track) before she has seen the server's.
    let offers_before = alice.messages_of_type("offer").len();
    alice.hold_server_events(true)?;
    let bob_screen = bob.publish(&[TrackSpec::screen()]).await?[0];
    alice
        .wait_until("server offer on the wire", FLOW, |c| {
            c.messages_of_type("offer").len() > offers_before
        })
        .await?;
    let sent_before = alice.negotiation().offers_sent;
    let second_camera = [TrackSpec::camera()];
    let (published, released) = tokio::join!(
        alice.publish(&second_camera),
        release_after_offer(&alice, sent_before)
    );
    released?;
    let alice_cam2 = published.context("alice's offer during glare")?[0];

    wait_receiving(&alice, &[bob_screen], FLOW).await?;
    wait_receiving(&bob, &[alice_cam2], FLOW).await?;
    let n = alice.negotiation();
    ensure!(
        n.server_offers_ignored >= 1,
        "no glare happened: {n:?} (the server's offer was not ignored)"
    );
    ensure!(n.failures == 0, "alice had failed negotiations: {n:?}");
    for c in [&alice, &bob] {
        let errors = c.messages_of_type("error");
        ensure!(errors.is_empty(), "{} got errors: {errors:?}", c.peer_id());
    }
    still_flowing(&bob, &[a_audio, a_video, screen, alice_cam2]).await?;
    still_flowing(&alice, &[b_audio, b_video, bob_screen]).await?;
    let sources: Vec<TrackSource> = alice.published().iter().map(|t| t.source).collect();
    ensure!(sources.len() == 4, "alice publishes {sources:?}");
    Ok(())
}

/// Releases alice's held server messages once her own offer has gone out.
async fn release_after_offer(alice: &SfuClient, sent_before: u64) -> Result<()> {
    let waited = alice
        .wait_until("alice's offer", FLOW, |c| {
            c.negotiation().offers_sent > sent_before
        })
        .await;
    alice.hold_server_events(false)?;
    Ok(waited?)
}

/// Each track in `tags` delivers new packets to `client` within 3 s.
async fn still_flowing(client: &SfuClient, tags: &[u64]) -> Result<()> {
    let before: Vec<u64> = tags.iter().map(|t| packets_from(client, *t)).collect();
    client
        .wait_until("tracks still flowing", Duration::from_secs(3), |c| {
            tags.iter()
                .zip(&before)
                .all(|(t, b)| packets_from(c, *t) > b + 5)
        })
        .await
        .with_context(|| format!("{} stopped receiving", client.peer_id()))?;
    Ok(())
}
