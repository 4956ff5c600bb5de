//! Issue 3, test 4: a subscriber's NACK is answered with the retransmitted packet. The
//! subscriber NACKs sequence numbers it has received (on its own leg), so the answer can only
//! come from the server's retransmission cache and shows up as a repeated sequence number.

mod support;

use anyhow::{ensure, Context, Result};
use std::time::Duration;
use support::media::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_is_answered_with_a_retransmission() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let alice = server.client("nack", "alice").await?;
    let (_audio, video) = alice.publish_audio_video().await?;
    let bob = server.client("nack", "bob").await?;
    wait_receiving(&bob, &[video], Duration::from_secs(15)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let track = received_by_tag(&bob, video).context("bob's copy of alice's video")?;
    let before = track.retransmissions;
    let packets_before = track.packets;
    // Five recent packets, a few behind the newest one (well inside any sane cache).
    let recent = bob.recent_sequence_numbers(track.index, 20);
    ensure!(recent.len() >= 20, "only {} packets seen", recent.len());
    let asked: Vec<u16> = recent[5..10].to_vec();
    bob.send_nack(track.index, &asked).await?;
    bob.wait_until("retransmissions", Duration::from_secs(5), |c| {
        received_by_tag(c, video).is_some_and(|t| t.retransmissions >= before + asked.len() as u64)
    })
    .await
    .with_context(|| {
        let now = received_by_tag(&bob, video);
        format!(
            "asked {asked:?}; retransmissions {:?}",
            now.map(|t| t.retransmissions)
        )
    })?;
    let after = received_by_tag(&bob, video).context("track gone")?;
    ensure!(after.packets > packets_before, "forwarding stopped");
    ensure!(
        after.bad_payloads == 0 && after.foreign_tags == 0,
        "corrupt retransmission"
    );
    Ok(())
}
