//! Simulcast from real browsers, layer by subscriber, and dynacast (issue 13 items 1 and 3): a
//! Chromium (VP8, and H264) or a Firefox (VP8) publisher sends its camera in simulcast through the web client; two
//! Chromium subscribers watch it, one in a small window and one in a large one. Each must
//! decode the layer its window needs (the large one a wider picture), the server must count
//! legs on two layers, and when the large window shrinks the server must pause the layer
//! nobody needs at the publisher (the browser's encoder stops sending it) and resume it when
//! the window grows again. Needs the browser tooling of `browser_client.rs`.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::browser::{no_page_errors, num, start};

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(150);

/// Judges one run of the `simulcast-layers` scenario: `agent` published in `codec`.
fn judge(result: &Value, agent: &str, codec: &str) {
    assert_eq!(
        result["sentCodecs"],
        serde_json::json!([codec]),
        "the publisher's video codec"
    );
    assert!(
        result["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.contains(agent)),
        "publisher is not {agent}: {result}"
    );
    let rids: Vec<&str> = result["rids"]
        .as_array()
        .expect("rids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        rids.contains(&"q") && rids.contains(&"h"),
        "the publisher does not send simulcast: {rids:?}"
    );
    let split = &result["split"];
    assert_eq!(
        split["ok"], true,
        "the subscribers never got different layers: {split}"
    );
    let (small_width, large_width) = (
        num(split, &["last", "small", "width"]),
        num(split, &["last", "large", "width"]),
    );
    assert!(large_width > small_width, "{split}");
    let legs = result["gaugesSplit"]["legs"].as_object().expect("legs");
    let layers_used = legs.values().filter(|v| v.as_f64() > Some(0.0)).count();
    assert!(layers_used >= 2, "legs on one layer only: {legs:?}");

    let large_rid = result["largeRid"]
        .as_str()
        .unwrap_or_else(|| panic!("no rid sends the large width: {result}"));
    let paused_after = result["pausedAfterMs"].as_f64();
    assert!(
        paused_after.is_some_and(|ms| ms < 12_000.0),
        "the publisher never stopped layer {large_rid}: {result}"
    );
    assert!(
        num(result, &["gaugesPaused", "paused"]) > 0.0,
        "no paused layer in chorus_simulcast_paused_layers: {result}"
    );
    let before = num(result, &["sentSplit", large_rid]);
    let paused = num(result, &["sentPaused", large_rid]);
    assert!(
        before > 20_000.0,
        "layer {large_rid} carried {before} B in 2 s"
    );
    assert!(
        paused < before / 10.0,
        "the publisher kept sending layer {large_rid}: {paused} B in 2 s (before {before} B)"
    );
    // Both windows small: only the lowest layer flows (not a layer the encoder had not
    // started yet, which would take the bandwidth the paused one freed).
    for rid in rids.iter().filter(|r| **r != "q") {
        let sent = num(result, &["sentPaused", rid]);
        assert!(
            sent < before / 10.0,
            "layer {rid} flowed while nobody needed it: {sent} B in 2 s"
        );
    }
    for who in ["small", "large"] {
        let fps = num(result, &["whilePaused", who, "fps"]);
        assert!(fps > 0.0, "{who} froze while a layer was paused: {result}");
    }

    let grown = &result["grown"];
    assert_eq!(
        grown["ok"], true,
        "the paused layer never came back: {grown}"
    );
    let resumed = num(result, &["sentResumed", large_rid]);
    assert!(
        resumed > before / 4.0,
        "layer {large_rid} resumed at {resumed} B in 2 s (before {before} B)"
    );
    no_page_errors(result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_simulcast_gives_each_window_its_layer_and_pauses_unused_ones() {
    let test = start().await;
    let result = test
        .scenario_with_env(
            "simulcast-layers",
            SCENARIO_TIMEOUT,
            &[("CHORUS_PUBLISHER_BROWSER", "chromium")],
        )
        .await;
    judge(&result, "Chrome/", "video/VP8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_simulcast_gives_each_window_its_layer_and_pauses_unused_ones() {
    let test = start().await;
    let result = test
        .scenario_with_env(
            "simulcast-layers",
            SCENARIO_TIMEOUT,
            &[("CHORUS_PUBLISHER_BROWSER", "firefox")],
        )
        .await;
    judge(&result, "Firefox/", "video/VP8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_h264_simulcast_gives_each_window_its_layer_and_pauses_unused_ones() {
    let test = start().await;
    let result = test
        .scenario_with_env(
            "simulcast-layers",
            SCENARIO_TIMEOUT,
            &[
                ("CHORUS_PUBLISHER_BROWSER", "chromium"),
                ("CHORUS_PUBLISHER_CODEC", "h264"),
            ],
        )
        .await;
    judge(&result, "Chrome/", "video/H264");
}
