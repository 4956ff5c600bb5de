//! Issue 13 item 2 with real browsers: three headless Chromium pages in a call (the web
//! client's `three-way-call` scenario) send TWCC feedback for what the server forwards them,
//! and every leg's estimate (`chorus_leg_estimated_bitrate_bps`) is sampled and plausible.
//! Headless Chromium here negotiates SRTP AES-CM-HMAC-SHA1-80, so its legs stay on the stack
//! path: this is the test of the stack path's transport-wide numbering.
//! Needs the browser tooling of `browser_client.rs` (`npm ci --prefix tests/browser`).

mod support;

use std::time::Duration;
use support::browser::start;
use support::media::metric_value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_subscribers_feedback_gives_their_legs_plausible_estimates() {
    let test = start().await;
    let result = test
        .scenario("three-way-call", Duration::from_secs(120))
        .await;
    assert!(result.is_object(), "the scenario ran: {result}");
    let (status, text) = support::http_get(test.server.addr(), "/metrics").await;
    assert_eq!(status, 200);
    let count = metric_value(&text, "chorus_leg_estimated_bitrate_bps_count").unwrap_or(0.0);
    let sum = metric_value(&text, "chorus_leg_estimated_bitrate_bps_sum").unwrap_or(0.0);
    let forwarded = metric_value(&text, "chorus_forwarded_bytes_total").unwrap_or(0.0);
    eprintln!(
        "{count} estimate samples, mean {:.0} bit/s; {forwarded} payload bytes forwarded",
        sum / count
    );
    // Three legs, each sampled about once a second once its feedback came.
    assert!(count >= 6.0, "{count} estimate samples:\n{text}");
    let mean = sum / count;
    assert!(
        (100_000.0..=20_000_000.0).contains(&mean),
        "mean estimate {mean:.0} bit/s"
    );
}
