//! Smoke test of `chorus bench-floor` (the bare rewrite + AES-GCM + sendmmsg forwarder): a short
//! 1→3 run at 500 packets/s writes a JSON report with packets forwarded and received, little
//! loss, a CPU figure and leg 0's datagrams opened with its key. Not a performance claim.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `chorus bench-floor` with `args` and `--json` (bounded: 30 s at most), and returns its
/// report, parsed and as text.
fn run_floor(label: &str, args: &[&str]) -> (serde_json::Value, String) {
    let json = std::env::temp_dir().join(format!("chorus-{label}-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .arg("bench-floor")
        .args(args)
        .arg("--json")
        .arg(&json)
        .spawn()
        .expect("chorus starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chorus") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bench-floor {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "bench-floor {args:?} failed: {status}");
    let text = std::fs::read_to_string(&json).expect("JSON report written");
    let _ = std::fs::remove_file(&json);
    (serde_json::from_str(&text).expect("valid JSON"), text)
}

/// The report's number at `key` (`text`, the whole report, in the panic when it is missing).
fn number(report: &serde_json::Value, text: &str, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {text}"))
}

#[test]
fn bench_floor_forwards_seals_and_reports() {
    // 2 s of sending, at most 5 s of draining: bounded, never a hang.
    let (report, text) = run_floor(
        "floor",
        &[
            "--subscribers",
            "3",
            "--rate",
            "500",
            "--duration",
            "2s",
            "--verify",
        ],
    );
    let num = |key: &str| number(&report, &text, key);
    assert_eq!(num("subscribers"), 3.0);
    assert!(num("published") > 0.0, "{text}");
    assert_eq!(num("expected"), num("published") * 3.0, "{text}");
    assert!(num("forwarded") > 0.0, "{text}");
    assert!(num("forwarded_pps") > 0.0, "{text}");
    assert!(num("loss_pct") < 5.0, "{text}");
    assert!(num("cpu_us_per_forwarded") > 0.0, "{text}");
    assert!(num("forwarder_core_pct") > 0.0, "{text}");
    assert!(
        num("batches") > 0.0 && num("polls") >= num("batches"),
        "{text}"
    );
    assert!(
        num("verified") > 0.0,
        "leg 0's datagrams open with its key: {text}"
    );
    assert_eq!(num("verify_failed"), 0.0, "{text}");
    assert_eq!(report["loadavg_end"].as_array().map(Vec::len), Some(3));
}

/// `--sink`: the subscriber sockets drop the RTP in the kernel (the receivers get none), the
/// forwarder still forwards and the report says so.
#[test]
fn bench_floor_sink_drops_at_the_receivers() {
    let (report, text) = run_floor(
        "floor-sink",
        &[
            "--subscribers",
            "2",
            "--rate",
            "500",
            "--duration",
            "1s",
            "--sink",
        ],
    );
    let num = |key: &str| number(&report, &text, key);
    assert_eq!(report["sink"].as_bool(), Some(true), "{text}");
    assert!(num("forwarded") > 0.0, "{text}");
    assert_eq!(num("received"), num("forwarded"), "{text}");
    assert_eq!(
        num("received_max_leg"),
        0.0,
        "the filter drops every RTP datagram before a receiver sees it: {text}"
    );
    assert!(num("cpu_us_per_forwarded") > 0.0, "{text}");
}
