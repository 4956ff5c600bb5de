//! The embedded web client in real browsers when things go wrong around it (issue 4 and the
//! field round): a draining server, a server restart, an ICE restart, a dead media path and a
//! room of fifteen that still renegotiates. Headless Chromium through the Node scenarios of
//! `tests/browser/scenarios/`, against the real server on 127.0.0.1; the assertions are here.
//! Needs `npm ci --prefix tests/browser` (`.ci/run` installs it); without it these tests fail.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::browser::{no_page_errors, num, start};

/// Generous bound for one scenario (they take 5–25 s on two cores).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_server_is_explained_and_retried() {
    let test = start().await;
    test.server.begin_drain();
    let result = test.scenario("draining", SCENARIO_TIMEOUT).await;
    assert!(result["banner"]
        .as_str()
        .is_some_and(|b| b.contains("restarting for maintenance")));
    assert_eq!(result["state"], "connecting");
    assert_eq!(result["detail"]["reason"], "draining");
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_reconnect_by_themselves_after_a_server_restart() {
    let test = start().await;
    let signal_dir = std::env::temp_dir().join(format!("chorus-reconnect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&signal_dir);
    std::fs::create_dir_all(&signal_dir).expect("signal dir");
    let base = test.base.clone();
    let dir = signal_dir.to_string_lossy().into_owned();
    let scenario = tokio::spawn(async move {
        support::browser::run_scenario(
            &base,
            "reconnect",
            SCENARIO_TIMEOUT,
            &[("CHORUS_SIGNAL_DIR", dir.as_str())],
        )
        .await
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !signal_dir.join("in-call").exists() {
        assert!(
            std::time::Instant::now() < deadline && !scenario.is_finished(),
            "the pages never got into the call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _test = test
        .restart(
            support::browser::browser_config(),
            Duration::from_millis(1500),
        )
        .await;
    let result = scenario.await.expect("the scenario task");
    let _ = std::fs::remove_dir_all(&signal_dir);
    for page in ["Alice", "Bob"] {
        let seen = &result["reconnecting"][page];
        assert_eq!(seen["reason"], "server-restart", "{page}: {seen}");
        assert!(seen["banner"]
            .as_str()
            .is_some_and(|b| b.starts_with("The server restarted.")));
        assert!(
            result["peerIds"]["before"][page] != result["peerIds"]["after"][page],
            "{page} did not join afresh"
        );
        assert_eq!(result["bannersAfter"][page], Value::Null, "{page}");
    }
    assert!(num(&result, &["decoded", "Alice", "Bob", "video"]) > 0.0);
    assert!(num(&result, &["decoded", "Bob", "Alice", "video"]) > 0.0);
    assert!(num(&result, &["decodingAgainMs"]) < 30_000.0);
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_does_not_stall_the_video() {
    let test = start().await;
    let result = test.scenario("ice-restart", SCENARIO_TIMEOUT).await;
    eprintln!("ice restart: {result}");
    assert_eq!(result["mediaState"], "connected");
    // Bob's decoded frames of Alice never stand still for a second: not while Alice's
    // (publishing) leg restarts ICE, nor while Bob's own (receiving) leg does.
    for stall in ["publisherStallMs", "subscriberStallMs"] {
        assert!(num(&result, &[stall]) < 1_000.0, "{stall}: {result}");
    }
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_media_path_is_rebuilt_after_media_failed() {
    let test = start().await;
    let result = test.scenario("media-failed", SCENARIO_TIMEOUT).await;
    assert!(result["notice"]
        .as_str()
        .is_some_and(|n| n.contains("media connection dropped")));
    // Same signaling session: only the media connection was rebuilt.
    assert_eq!(result["sameSession"], true);
    assert_eq!(result["state"], "connected");
    assert!(num(&result, &["restoredAfterMs"]) < 40_000.0);
    no_page_errors(&result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_in_a_room_of_fifteen_can_still_renegotiate() {
    use chorus::client::{ClientOptions, SfuClient};
    let test = start().await;
    let ws_url = format!("ws://{}/ws", test.server.addr());
    let options = ClientOptions {
        video_packet_rate: 5,
        video_payload_size: 300,
        record_hashes: false,
        ..ClientOptions::default()
    };
    let mut others = Vec::new();
    for i in 0..14 {
        let client = SfuClient::connect_with(
            &ws_url,
            "big-room",
            &format!("Synthetic {i:02}"),
            None,
            options.clone(),
        )
        .await
        .expect("a synthetic participant joins");
        client
            .publish_audio_video()
            .await
            .expect("it publishes audio and video");
        others.push(client);
    }
    let result = test.scenario("big-room", SCENARIO_TIMEOUT).await;
    assert_eq!(num(&result, &["remoteTiles"]), 14.0);
    assert_eq!(result["state"], "connected");
    assert!(num(&result, &["receivingMlines"]) >= 28.0, "{result:#}");
    let sizes = result["offerSizes"].as_array().expect("offer sizes");
    assert!(!sizes.is_empty(), "no offer sent for the screen share");
    // Each receiving m-line carries every codec the page can receive (the server offers them
    // all, so that a first answer never locks a codec out): the re-offer is ~6 KB a member,
    // within the SDP limit sized from the room.
    let limit = support::browser::browser_config().sdp_limit() as f64;
    for size in sizes {
        let size = size.as_f64().unwrap_or(f64::MAX);
        assert!(
            size < limit,
            "an offer of {size} bytes exceeds the SDP limit of {limit}"
        );
    }
    // The synthetic participants were told of the browser's screen.
    let browser = result["selfId"].as_str().expect("selfId");
    let told = others[0]
        .wait_for_message("track-published", Duration::from_secs(10), |m| {
            m["peerId"] == browser && m["source"] == "screen"
        })
        .await;
    assert!(told.is_ok(), "no track-published for the browser's screen");
    no_page_errors(&result);
}
