//! Issue 3, test 8: bad media input — an SDP that does not parse, an offer with no codec in
//! common, an answer when no offer is outstanding, and garbage datagrams on the media port —
//! gets a clear `error` (`bad-sdp`, `no-common-codec`, `wrong-state`) or is silently dropped;
//! the offending session goes on (it can still publish), the others are unaffected, and the
//! garbage shows in the drop counters.

mod support;

use anyhow::{ensure, Context, Result};
use chorus::client::SfuClient;
use chorus::metrics::text as metrics_text;
use serde_json::json;
use std::time::Duration;
use support::media::*;
use support::sdp::sendonly_offer;

const REPLY: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sdp_and_garbage_datagrams() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

/// Sends `request` and waits for the next `error` after it; returns its code.
async fn error_code(client: &SfuClient, request: serde_json::Value) -> Result<String> {
    let from = client.messages().len();
    client.send_json(&request)?;
    let (_, err) = client
        .messages()
        .wait_for(from, "error", REPLY, &|m| m["type"] == "error")
        .await
        .with_context(|| format!("no error for {}", request["type"]))?;
    Ok(err["code"].as_str().unwrap_or_default().to_owned())
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let alice = server.client("bad", "alice").await?;
    let (audio, video) = alice.publish_audio_video().await?;
    let bob = server.client("bad", "bob").await?;
    wait_receiving(&bob, &[audio, video], Duration::from_secs(15)).await?;
    let mallory = server.client("bad", "mallory").await?;
    // Let mallory's own negotiation settle first, so the stray answer below meets a stable
    // server (a server offer in flight would make it an answer to that offer instead).
    wait_receiving(&mallory, &[audio, video], Duration::from_secs(15)).await?;

    let code = error_code(&mallory, json!({"type": "offer", "sdp": "this is not SDP"})).await?;
    ensure!(code == "bad-sdp", "garbage SDP answered with {code}");
    let no_codec = sendonly_offer("X-NOPE/48000/2", "X-NOPE-VIDEO/90000");
    let code = error_code(&mallory, json!({"type": "offer", "sdp": no_codec})).await?;
    ensure!(
        code == "no-common-codec",
        "offer without common codec answered with {code}"
    );
    let answer =
        sendonly_offer("opus/48000/2", "VP8/90000").replace("a=setup:actpass", "a=setup:active");
    let code = error_code(&mallory, json!({"type": "answer", "sdp": answer})).await?;
    ensure!(
        code == "wrong-state",
        "unsolicited answer answered with {code}"
    );

    // Garbage datagrams at every media port the server told us about.
    let ports = server_udp_ports(&alice).await;
    ensure!(!ports.is_empty(), "no server candidate on 127.0.0.1");
    let socket = tokio::net::UdpSocket::bind((support::LOOPBACK, 0)).await?;
    let before = packets_from(&bob, video);
    let drops_before = bad_input_drops(&server).await?;
    for i in 0..2000u32 {
        let datagram = garbage(i);
        for port in &ports {
            socket
                .send_to(&datagram, (support::LOOPBACK, *port))
                .await?;
        }
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The engine saw them and counted them as dropped (shards publish their counters about
    // once a second); most of the 2000 per port must be accounted for.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let dropped = bad_input_drops(&server).await? - drops_before;
        if dropped >= 1000.0 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "only {dropped} of the garbage datagrams were counted as dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Others unaffected: media keeps flowing, nobody else got an error.
    bob.wait_until("alice's video still flowing", Duration::from_secs(5), |c| {
        packets_from(c, video) > before + 25
    })
    .await?;
    for c in [&alice, &bob] {
        let errors = c.messages_of_type("error");
        ensure!(errors.is_empty(), "{} got errors: {errors:?}", c.peer_id());
    }
    // The offending session goes on: mallory can still publish for real.
    let (m_audio, m_video) = mallory.publish_audio_video().await?;
    wait_receiving(&bob, &[m_audio, m_video], Duration::from_secs(15)).await?;
    wait_receiving(&mallory, &[audio, video], Duration::from_secs(15)).await?;
    Ok(())
}

/// Datagrams dropped as garbage, from an unknown source, or rejected by a connection's stack.
async fn bad_input_drops(server: &TestServer) -> Result<f64> {
    let text = server.metrics_text().await?;
    Ok(["garbage", "unknown_source", "rejected"]
        .iter()
        .map(|reason| {
            let series = format!("chorus_dropped_packets_total{{reason=\"{reason}\"}}");
            metrics_text::series(&text, &series).unwrap_or(0.0)
        })
        .sum())
}

/// Datagram `i` of a mix that looks like each protocol the port speaks, and like nothing.
fn garbage(i: u32) -> Vec<u8> {
    let noise: Vec<u8> = (0..(i % 1400) + 1)
        .map(|k| (k.wrapping_mul(2_654_435_761) ^ i) as u8)
        .collect();
    let mut d = match i % 6 {
        // STUN binding request header with a bogus USERNAME and no integrity.
        0 => {
            let mut d = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
            d.extend_from_slice(&[7; 12]);
            d.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
            d.extend_from_slice(b"bAdC:xyz");
            d
        }
        // DTLS handshake record header.
        1 => vec![0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0x00],
        // RTP v2 header.
        2 => vec![0x80, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF],
        // RTCP (PLI) header.
        3 => vec![0x81, 0xCE, 0x00, 0x02, 0, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF],
        // Empty datagram.
        4 => Vec::new(),
        _ => Vec::new(),
    };
    if i % 6 != 4 {
        d.extend_from_slice(&noise);
    }
    d
}
