//! Issue 13 item 2 with real browsers: three headless Chromium pages in a call (the web
//! client's `three-way-call` scenario) send TWCC feedback for what the server forwards them,
//! and every leg's estimate (`chorus_leg_estimated_bitrate_bps`) is sampled and plausible.
//! Headless Chromium negotiates SRTP AES-CM-HMAC-SHA1-80 (its first DTLS use_srtp profile), and
//! its legs take the fast path (`chorus_media_fast_path_legs`, sampled while the call runs), so
//! this is the test of the fast path's transport-wide numbering and AES-CM protection with a
//! real browser; the stack path's numbering is `media::tests::bwe`'s.
//! Needs the browser tooling of `browser_client.rs` (`npm ci --prefix tests/browser`).

mod support;

use std::time::Duration;
use support::browser::start;
use support::media::metric_value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_subscribers_feedback_gives_their_legs_plausible_estimates() {
    let test = start().await;
    let addr = test.server.addr();
    let (scenario_done, mut done) = tokio::sync::oneshot::channel::<()>();
    // The most legs on the fast path at once while the call runs (sampled every 250 ms).
    let fast_legs = tokio::spawn(async move {
        let mut most = 0.0f64;
        loop {
            let (_, text) = support::http_get(addr, "/metrics").await;
            most = most.max(metric_value(&text, "chorus_media_fast_path_legs").unwrap_or(0.0));
            tokio::select! {
                _ = &mut done => return most,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    });
    let result = test
        .scenario("three-way-call", Duration::from_secs(120))
        .await;
    let _ = scenario_done.send(());
    let fast_legs = fast_legs.await.expect("the sampler");
    assert!(result.is_object(), "the scenario ran: {result}");
    assert_eq!(
        fast_legs, 3.0,
        "every Chromium leg (AES-CM) on the fast path at once"
    );
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
