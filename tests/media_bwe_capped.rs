//! Issue 13 item 2, bandwidth estimation behind a bandwidth cap: `chorus serve` in one network
//! namespace, the test's own WebRTC clients (this test binary run again inside the other
//! namespace) in another, joined by a veth pair whose server end sends through
//! `tc qdisc … tbf rate 500kbit` (`support::netns::LossyLink::cap_rate`) from the middle of the
//! call on. A publisher sends ~1.6 Mbit/s of video; once capped, the subscriber's leg can only
//! carry 500 kbit/s, and its exported estimate (`chorus_leg_estimated_bitrate_bps`) must fall
//! well below what it was uncapped and below the publisher's rate, to near the cap. Skipped
//! (with a message) without root or `ip`/`tc`/`nft`, failed under `CI=true`.

mod support;

use anyhow::Result;
use chorus::client::{ClientOptions, SfuClient};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;
use support::media::{metric_value, wait_receiving};
use support::netns::{self, Killed, LossyLink, CLIENT_IP, SERVER_IP};

const MEDIA_PORT: u16 = 40000;
const SIGNALING_PORT: u16 = 8080;
/// The metrics listener, on the server namespace's own loopback.
const METRICS_PORT: u16 = 9100;
/// Set (to the server's signaling address) in the run inside the clients' namespace.
const INNER: &str = "CHORUS_BWE_CAPPED_SERVER";
/// Video the publisher sends: 200 packets/s of 1000 bytes.
const PUBLISHED_BPS: f64 = 1_600_000.0;
/// The cap on the server's end of the link (`tc … tbf rate 500kbit`).
const CAP_KBIT: u32 = 500;
const CAP_BPS: f64 = CAP_KBIT as f64 * 1000.0;
const TEST_NAME: &str = "a_capped_subscribers_estimate_falls_well_below_the_publishers_rate";

#[test]
fn a_capped_subscribers_estimate_falls_well_below_the_publishers_rate() {
    if let Ok(server) = std::env::var(INNER) {
        let addr: SocketAddr = server.parse().expect("server address");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), clients(addr)).await })
            .expect("the clients' run ends within 60 s")
            .expect("the clients' call");
        return;
    }
    if let Some(why) = netns::unavailable() {
        netns::skip_or_fail(&why);
        return;
    }
    let link = LossyLink::clean().expect("network namespaces");
    let metrics = format!("127.0.0.1:{METRICS_PORT}");
    let _server = link.serve(SIGNALING_PORT, MEDIA_PORT, &["--metrics-addr", &metrics]);
    let exe = std::env::current_exe().expect("exe");
    let mut inner = link.command(&link.client_ns, exe.to_str().expect("a UTF-8 path"));
    inner
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, format!("{SERVER_IP}:{SIGNALING_PORT}"));
    inner.stdout(Stdio::piped());
    let mut child = Killed(inner.spawn().expect("the clients' run"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("RECEIVING") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(40))
        .expect("the subscriber receives video within 40 s");
    std::thread::sleep(Duration::from_secs(6));
    let free = mean_estimate(&link);
    link.cap_rate(CAP_KBIT).expect("tc tbf on the server's end");
    std::thread::sleep(Duration::from_secs(6));
    let capped = mean_estimate(&link);
    eprintln!(
        "published {PUBLISHED_BPS} bit/s of video: mean estimate {free:.0} bit/s uncapped, \
         {capped:.0} bit/s behind the {CAP_BPS} bit/s cap"
    );
    assert!(
        capped < free * 0.6 && capped < PUBLISHED_BPS / 2.0,
        "the cap did not bring the estimate well down: {free:.0} → {capped:.0} bit/s"
    );
    // Near what the cap lets through, not at the estimator's floor.
    assert!(
        (CAP_BPS * 0.3..=CAP_BPS * 1.2).contains(&capped),
        "estimate {capped:.0} bit/s behind a {CAP_BPS} bit/s cap"
    );
    assert!(
        child.0.try_wait().expect("wait").is_none(),
        "the clients' run ended early"
    );
}

/// The mean of the estimates sampled over the next 4 s.
fn mean_estimate(link: &LossyLink) -> f64 {
    let (sum0, count0) = estimates(link);
    std::thread::sleep(Duration::from_secs(4));
    let (sum1, count1) = estimates(link);
    assert!(
        count1 - count0 >= 2.0,
        "{} estimate samples in 4 s",
        count1 - count0
    );
    (sum1 - sum0) / (count1 - count0)
}

/// (sum, count) of the estimate histogram, read inside the server's namespace (the capped
/// link is saturated by the video: an HTTP response through it would crawl).
fn estimates(link: &LossyLink) -> (f64, f64) {
    let url = format!("http://127.0.0.1:{METRICS_PORT}/metrics");
    let out = link
        .command(&link.server_ns, "curl")
        .args(["-s", "--max-time", "5", &url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name| metric_value(&text, name).unwrap_or(0.0);
    (
        value("chorus_leg_estimated_bitrate_bps_sum"),
        value("chorus_leg_estimated_bitrate_bps_count"),
    )
}

/// Inside the clients' namespace: alice publishes ~1.6 Mbit/s of video, bob receives it
/// through the cap; says `RECEIVING` once bob gets video, then keeps the call up for 40 s.
async fn clients(server: SocketAddr) -> Result<()> {
    let url = format!("ws://{server}/ws");
    let bind = IpAddr::V4(CLIENT_IP);
    let publisher = ClientOptions {
        bind_ip: bind,
        video_packet_rate: 200,
        video_payload_size: 1000,
        ..ClientOptions::default()
    };
    let alice = SfuClient::connect_with(&url, "capped", "alice", None, publisher).await?;
    let (_audio, video) = alice.publish_audio_video().await?;
    let options = ClientOptions {
        bind_ip: bind,
        ..ClientOptions::default()
    };
    let bob = SfuClient::connect_with(&url, "capped", "bob", None, options).await?;
    wait_receiving(&bob, &[video], Duration::from_secs(20)).await?;
    println!("RECEIVING");
    tokio::time::sleep(Duration::from_secs(40)).await;
    drop((alice, bob));
    Ok(())
}
