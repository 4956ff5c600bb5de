//! Simulcast and bandwidth estimation with real browsers (issue 13 item 5): `chorus serve` in a
//! network namespace this test makes, a Chromium publisher sending its camera in simulcast and
//! two Chromium subscribers, one behind a token-bucket cap (`tc qdisc ... tbf`) on the veth pair
//! to a second namespace. The capped subscriber must settle on a lower layer without freezing
//! (decoded frames keep increasing every second), the free one must keep the layer its tile
//! needs, and both moves must happen within a few seconds; with the cap lifted it must climb
//! back. `CHORUS_TEST_SERVER_LOG=<filter>` shows the server's log. Needs root,
//! `ip` and `tc`; skipped without them, failed under `CI=true`. Best run alone (three Chromium
//! instances on a 2-core machine): `cargo test --test browser_simulcast -- --nocapture`.

mod support;

use std::time::Duration;
use support::browser::{num, run_scenario};
use support::netns::{self, LossyLink, SERVER_DEV, SERVER_IP};

const SIGNALING_PORT: u16 = 8080;
const MEDIA_PORT: u16 = 40000;
/// The cap on what the server sends to the capped subscriber.
const CAP_KBIT: &str = "300";

/// Chromium's legs negotiate SRTP AES-CM-HMAC-SHA1-80 and take the fast path, so a leg held
/// below the layer it asked for can probe with padding to climb back (it could not on the stack
/// path, and the capped leg then oscillated: 1 run in 4 passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_subscriber_gets_a_lower_layer_and_keeps_decoding() {
    if let Some(why) = netns::unavailable() {
        netns::skip_or_fail(&why);
        return;
    }
    let link = LossyLink::clean().expect("create the link");
    let _server = link.serve(SIGNALING_PORT, MEDIA_PORT, &[]);
    let base = format!("http://{SERVER_IP}:{SIGNALING_PORT}");
    let env = [
        ("CHORUS_CAP_SERVER_NS", link.server_ns.as_str()),
        ("CHORUS_CAP_CLIENT_NS", link.client_ns.as_str()),
        ("CHORUS_CAP_DEV", SERVER_DEV),
        ("CHORUS_CAP_KBIT", CAP_KBIT),
    ];
    let result = run_scenario(&base, "capped-subscriber", Duration::from_secs(180), &env).await;
    // What a failure shows: the figures without the half-second samples.
    let mut brief = result.clone();
    if let Some(o) = brief.as_object_mut() {
        o.remove("samples");
    }

    // `top`: the layer the subscribers' tiles need (the narrowest that covers them; the web
    // client's tiles are 480x272 here, so `h` at 640x360, whether or not Chromium encodes `f`).
    let top = num(&result, &["topWidth"]);
    let lowest = result["layersBefore"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["width"].as_f64().filter(|w| *w > 0.0))
        .fold(f64::INFINITY, f64::min);
    assert!(
        top >= 320.0 && top > lowest,
        "the tiles need a {top} px wide layer, the lowest is {lowest}: {brief}"
    );
    // Before the cap both subscribers are on it.
    for who in ["free", "capped"] {
        let width = num(&result, &["before", who, "width"]);
        assert_eq!(
            width, top,
            "before the cap, {who} is not on the layer its tile needs: {brief}"
        );
    }
    // Under the cap: a lower layer within a few seconds, still decoding every second.
    let adapted = result["adaptedAtMs"].as_f64();
    assert!(
        adapted.is_some_and(|ms| ms <= 10_000.0),
        "the capped subscriber did not settle on a lower layer within 10 s: {brief}"
    );
    let during = num(&result, &["during", "capped", "width"]);
    assert!(
        during > 0.0 && during < top,
        "capped width {during}: {brief}"
    );
    let fps = num(&result, &["during", "capped", "fps"]);
    assert!(
        fps >= 10.0,
        "the capped subscriber decodes {fps} fps: {brief}"
    );
    // Half-second windows while capped, the move down included.
    let windows = result["cappedFramesPerSample"].as_array().expect("samples");
    let frozen = windows.iter().filter(|f| f.as_f64() == Some(0.0)).count();
    assert!(
        frozen <= 2,
        "the capped subscriber decoded nothing in {frozen} half-second windows: {windows:?}"
    );
    // The free subscriber keeps its layer all along.
    let free = num(&result, &["during", "free", "width"]);
    assert_eq!(free, top, "the free subscriber left its layer: {brief}");
    // The cap lifted: back on the layer its tile needs. The tail is set by the leg's hold after
    // the fall the cap caused (`simulcast::HOLD_MIN`, 8 s, doubled to 16 s when that fall undid
    // a move up: one before the cap, as its estimate ramped, is enough), then the prober's
    // spacing (bursts that proved nothing under the cap space the next one up to 6 s apart,
    // `bwe::probe`), a burst and its feedback. The cap is lifted 11–16 s after it went on, so a
    // doubled hold can end up to ~9 s after the lift: 1.0–2.1 s in nine of ten runs here, 10.2 s
    // in the tenth (2026-12-04). The same bound as `loadtest_capped`'s.
    let recovered = result["recoveredAtMs"].as_f64();
    assert!(
        recovered.is_some_and(|ms| ms <= 24_000.0),
        "the subscriber did not climb back to its layer within 24 s: {brief}"
    );
}
