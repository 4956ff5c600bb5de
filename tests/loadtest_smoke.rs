//! The load tester's CI smoke scenario against an in-process server: 2 rooms × 1 publisher ×
//! 5 subscribers (audio + video) for 10 s. Asserts zero errors, loss under 1 % and every
//! expected track received — no timing assertions (performance lives in the benchmarks).

mod support;

use chorus::loadtest::{self, LoadConfig};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_is_clean() {
    let server = support::start(support::test_config()).await;
    let html = std::env::temp_dir().join(format!("chorus-smoke-{}.html", std::process::id()));
    let config = LoadConfig {
        urls: vec![format!("ws://{}/ws", server.addr())],
        scenario: Some("smoke".into()),
        duration: Duration::from_secs(10),
        ramp: 20.0,
        quiet: true,
        html: Some(html.clone()),
        ..LoadConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), loadtest::run(config))
        .await
        .expect("the run ends")
        .expect("the run succeeds");
    assert_eq!(report.participants, 12);
    // Each room: 5 subscribers receive audio + video of their publisher.
    assert_eq!(report.tracks_expected, 20);
    assert_eq!(
        report.tracks_receiving, report.tracks_expected,
        "every expected track is received"
    );
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert!(report.loss_pct < 1.0, "loss {:.3} %", report.loss_pct);
    assert!(report.received_pps > 0.0);
    let server_figures = report.server.as_ref().expect("server metrics scraped");
    assert!(server_figures.forwarded_pps > 0.0);
    let page = std::fs::read_to_string(&html).expect("HTML report written");
    assert!(page.contains("<svg") && page.contains("Chorus load test"));
    let _ = std::fs::remove_file(html);
}
