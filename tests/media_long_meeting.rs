//! Issue 10 item 2 with real WebRTC peers: publishers join, publish audio and video, and leave
//! one after another while a viewer stays. The server reuses the m-lines of departed tracks,
//! so the viewer's offers stay as large as the tracks present, and the (async `webrtc`) viewer
//! plays each newcomer's tracks on the reused m-lines.

mod support;

use anyhow::{ensure, Result};
use std::time::Duration;
use support::media::*;

const CYCLES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_keeps_a_bounded_sdp_while_publishers_come_and_go() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(180), run()).await?
}

fn m_lines(offer: &serde_json::Value) -> usize {
    offer["sdp"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("m="))
        .count()
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let viewer = server.client("long", "viewer").await?;
    for i in 0..CYCLES {
        let publisher = server.client("long", &format!("p{i}")).await?;
        let (audio, video) = publisher.publish_audio_video().await?;
        wait_receiving(&viewer, &[audio, video], Duration::from_secs(15)).await?;
        let from = viewer.messages().len();
        publisher.leave().await?;
        drop(publisher);
        // The server's offer that ends the departed tracks (every m-line inactive).
        viewer
            .messages()
            .wait_for(from, "an offer without the departed tracks", REPLY, &|m| {
                m["type"] == "offer"
                    && !m["sdp"].as_str().unwrap_or_default().contains("a=sendonly")
            })
            .await?;
    }
    let offers = viewer.messages_of_type("offer");
    let most = offers.iter().map(m_lines).max().unwrap_or(0);
    let last = offers
        .last()
        .and_then(|o| o["sdp"].as_str())
        .map_or(0, str::len);
    eprintln!(
        "viewer: {} offers, at most {most} m-lines; last offer {last} bytes after {CYCLES} \
         departures",
        offers.len()
    );
    // One publisher's audio and video at a time, plus two not yet negotiated inactive.
    ensure!(
        most <= 4,
        "the viewer's offers grew to {most} m-lines over {CYCLES} departures"
    );
    Ok(())
}

const REPLY: Duration = Duration::from_secs(10);
