//! Lossy links (issue 10 item 11): `chorus serve` in one network namespace and `chorus loadtest`
//! in another, joined by a veth pair, nftables dropping a share of the media datagrams (UDP to
//! and from the server's media ports, each direction). Every media leg of two 1→6 calls must
//! connect the first time (DTLS and ICE retransmit; no reconnect of the load generator, which
//! would hide a handshake that dies) and receive every track at 5 % loss. 20 % is measured by
//! an ignored test. Skipped (with a message) without root or `ip`/`nft`, failed under
//! `CI=true`.

mod support;

use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::netns::{self, Killed, LossyLink, CLIENT_IP, SERVER_IP};

const MEDIA_PORTS: (u16, u16) = (40000, 40001);
const SIGNALING_PORT: u16 = 8080;
/// Longest a `chorus loadtest` run may take before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(75);

/// One `chorus loadtest` run (1 publisher with audio and video, `subscribers` receivers)
/// inside the client namespace; its JSON report.
fn loadtest(link: &LossyLink, subscribers: usize, window: &str, tag: &str) -> Value {
    let json = std::env::temp_dir().join(format!("chorus-lossy-{}-{tag}.json", std::process::id()));
    let _ = std::fs::remove_file(&json);
    let url = format!("ws://{SERVER_IP}:{SIGNALING_PORT}/ws");
    let (bind, subs) = (CLIENT_IP.to_string(), subscribers.to_string());
    let mut command = link.command(&link.client_ns, env!("CARGO_BIN_EXE_chorus"));
    command
        .args([
            "loadtest",
            "--url",
            &url,
            "--bind",
            &bind,
            "--publishers",
            "1",
        ])
        .args([
            "--subscribers",
            &subs,
            "--audio",
            "--duration",
            window,
            "--quiet",
        ])
        .arg("--json")
        .arg(&json)
        .env_remove("CHORUS_AUTH_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = Killed(command.spawn().expect("start chorus loadtest"));
    let started = Instant::now();
    loop {
        match child.0.try_wait().expect("wait for the load test") {
            Some(status) => {
                assert!(status.success(), "chorus loadtest failed: {status}");
                break;
            }
            None if started.elapsed() > RUN_LIMIT => {
                panic!("chorus loadtest ran over {RUN_LIMIT:?}")
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let text = std::fs::read_to_string(&json).expect("the JSON report");
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).expect("the report is JSON")
}

/// A run's outcome: whether every leg connected and every track arrived, whether any leg
/// had to be rebuilt (a reconnect), and the run in one line.
fn outcome(report: &Value) -> (bool, bool, String) {
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    let complete = n("legs") > 0
        && n("legs_connected") == n("legs")
        && n("tracks_expected") > 0
        && n("tracks_receiving") == n("tracks_expected");
    let reconnected = report["reconnects"]
        .as_object()
        .is_some_and(|r| !r.is_empty());
    let line = format!(
        "legs {}/{} tracks {}/{} reconnects {} errors {} loss {:.2} %",
        n("legs_connected"),
        n("legs"),
        n("tracks_receiving"),
        n("tracks_expected"),
        report["reconnects"],
        report["errors"],
        report["loss_pct"].as_f64().unwrap_or(f64::NAN),
    );
    (complete, reconnected, line)
}

/// What `runs` calls at one loss rate gave.
struct Tally {
    complete: usize,
    reconnected: usize,
}

/// Runs `runs` 1→`subscribers` calls at `loss` % (`None` when the test is skipped).
fn measure(loss: u32, runs: usize, subscribers: usize, window: &str) -> Option<Tally> {
    if let Some(why) = netns::unavailable() {
        netns::skip_or_fail(&why);
        return None;
    }
    let link = LossyLink::create(loss, MEDIA_PORTS).expect("create the lossy link");
    let _server = link.serve(SIGNALING_PORT, MEDIA_PORTS.0, &[]);
    let mut tally = Tally {
        complete: 0,
        reconnected: 0,
    };
    for run in 0..runs {
        let report = loadtest(&link, subscribers, window, &format!("{loss}-{run}"));
        let (complete, reconnected, line) = outcome(&report);
        eprintln!("{loss} % loss, run {}/{runs}: {line}", run + 1);
        tally.complete += complete as usize;
        tally.reconnected += reconnected as usize;
    }
    let dropped = link.dropped();
    eprintln!(
        "{loss} % loss: {}/{runs} runs complete, {} with reconnects; {dropped} datagrams dropped",
        tally.complete, tally.reconnected
    );
    assert!(
        dropped > 0,
        "the loss rules dropped nothing: the link is not lossy"
    );
    Some(tally)
}

#[test]
fn every_leg_connects_and_receives_at_5_percent_loss() {
    if let Some(tally) = measure(5, 2, 6, "12s") {
        assert_eq!(
            tally.complete, 2,
            "a leg had no media at 5 % loss (see the run lines above)"
        );
        // The load generator's reconnect would hide a handshake that dies under loss: at
        // 5 % every leg must come up the first time.
        assert_eq!(
            tally.reconnected, 0,
            "a leg had to be rebuilt at 5 % loss (see the run lines above)"
        );
    }
}

/// The 20 % figure: `CHORUS_LOSSY_RUNS` runs (default 4), each reported on stderr.
#[test]
#[ignore = "a measurement (several minutes): cargo test --test media_lossy -- --ignored --nocapture"]
fn measure_20_percent_loss() {
    let runs = std::env::var("CHORUS_LOSSY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let loss = std::env::var("CHORUS_LOSSY_PCT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    measure(loss, runs, 6, "15s");
}
