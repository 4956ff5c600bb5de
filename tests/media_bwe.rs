//! Issue 13 item 2, bandwidth estimation: a real WebRTC subscriber (the async `webrtc` test
//! client, which sends TWCC feedback for what it receives) over loopback gives its leg an
//! estimate, exported as `chorus_leg_estimated_bitrate_bps`, in a plausible range of what the
//! server forwards to it.

mod support;

use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use support::media::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_leg_is_estimated_near_what_it_is_forwarded() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

/// (sum, count) of the estimate histogram, and the payload bytes forwarded.
async fn sample(server: &TestServer) -> Result<(f64, f64, f64)> {
    let text = server.metrics_text().await?;
    let value = |name| metric_value(&text, name).unwrap_or(0.0);
    Ok((
        value("chorus_leg_estimated_bitrate_bps_sum"),
        value("chorus_leg_estimated_bitrate_bps_count"),
        value("chorus_forwarded_bytes_total"),
    ))
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let alice = server.client("bwe", "alice").await?;
    let (_audio, video) = alice.publish_audio_video().await?;
    let bob = server.client("bwe", "bob").await?;
    wait_receiving(&bob, &[video], Duration::from_secs(15)).await?;
    // The first estimates: bob's leg is the only one sent anything (alice's receives nothing).
    let deadline = Instant::now() + Duration::from_secs(15);
    while sample(&server).await?.1 < 2.0 {
        if Instant::now() >= deadline {
            bail!(
                "no leg estimate exported:\n{}",
                server.metrics_text().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (sum0, count0, bytes0) = sample(&server).await?;
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (sum1, count1, bytes1) = sample(&server).await?;
    let secs = start.elapsed().as_secs_f64();
    let forwarded_bps = (bytes1 - bytes0) * 8.0 / secs;
    let samples = count1 - count0;
    let estimate = (sum1 - sum0) / samples;
    eprintln!(
        "forwarded {forwarded_bps:.0} bit/s of payload; mean estimate {estimate:.0} bit/s over \
         {samples} samples"
    );
    if !(2.0..=8.0).contains(&samples) {
        bail!("{samples} estimate samples in {secs:.1} s for one leg (expected ~1 per second)");
    }
    // Payload only is counted as forwarded; the estimate covers headers too and may run up
    // to 1.5 × what was acknowledged.
    if !(forwarded_bps * 0.75..=forwarded_bps * 2.5 + 50_000.0).contains(&estimate) {
        bail!("estimate {estimate:.0} bit/s for {forwarded_bps:.0} bit/s forwarded");
    }
    Ok(())
}
