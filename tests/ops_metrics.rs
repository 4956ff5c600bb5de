//! Issue 6, metrics: with real media flowing, the media metrics the on-call dashboard reads move
//! (retransmissions answering a NACK; loss, jitter and RTT from subscribers' receiver reports;
//! shard loop lag), the whole `/metrics` exposition passes `promtool check metrics`, and every
//! metric named by an expression of `grafana/chorus.json` is one the server exports.
//!
//! promtool comes from Debian's `prometheus` package (`.ci/run` installs it). Without it the
//! promtool step is skipped with a note, except under CI (`CI` set), where it fails.

mod support;

use anyhow::{bail, ensure, Context, Result};
use chorus::metrics::text::{self as metrics_text, series as sample};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::media::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_metrics_move_and_pass_promtool() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let alice = server.client("ops", "alice").await?;
    let (_audio, video) = alice.publish_audio_video().await?;
    let bob = server.client("ops", "bob").await?;
    wait_receiving(&bob, &[video], Duration::from_secs(15)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let track = received_by_tag(&bob, video).context("bob's copy of alice's video")?;
    let recent = bob.recent_sequence_numbers(track.index, 10);
    ensure!(recent.len() >= 10, "only {} packets seen", recent.len());
    bob.send_nack(track.index, &recent[2..5]).await?;

    // Receiver reports come about once a second; the RTT needs one of our sender reports first.
    let wanted = [
        "chorus_rtp_retransmitted_packets_total",
        "chorus_rtcp_loss_ratio_count",
        "chorus_rtcp_jitter_seconds_count",
        "chorus_rtcp_rtt_seconds_count",
        "chorus_shard_loop_lag_seconds_count",
        "chorus_nack_received_total",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = server.metrics_text().await?;
        let values: Vec<Option<f64>> = wanted.iter().map(|n| metric_value(&text, n)).collect();
        if values.iter().all(|v| v.is_some_and(|v| v > 0.0)) {
            break text;
        }
        if Instant::now() >= deadline {
            bail!("metrics {wanted:?} are {values:?}; expected all > 0");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let rtt = metric_value(&text, "chorus_rtcp_rtt_seconds_sum").unwrap_or(-1.0)
        / metric_value(&text, "chorus_rtcp_rtt_seconds_count").unwrap_or(1.0);
    ensure!(
        (0.0..0.5).contains(&rtt),
        "mean RTT on loopback should be small, got {rtt} s"
    );
    let video_reports = sample(&text, r#"chorus_rtcp_loss_ratio_count{kind="video"}"#);
    ensure!(
        video_reports.is_some_and(|n| n > 0.0),
        "no video receiver report recorded:\n{text}"
    );
    promtool_check_metrics(&text)?;
    dashboard_names_are_exported(&text)?;
    Ok(())
}

/// Pipes the exposition into `promtool check metrics`, which must print nothing and succeed.
fn promtool_check_metrics(text: &str) -> Result<()> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not runnable ({e}); skipping `promtool check metrics`");
            return Ok(());
        }
        Err(e) => bail!("promtool is required under CI: {e}"),
    };
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}",
        output.status
    );
    Ok(())
}

/// Every `chorus_*` / `process_*` name in the dashboard's expressions is exported (histogram
/// `_bucket`/`_sum`/`_count` series count as their family).
fn dashboard_names_are_exported(text: &str) -> Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/chorus.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    ensure!(exprs.len() > 20, "only {} expressions found", exprs.len());
    let exported: BTreeSet<&str> = metrics_text::names(text);
    let mut missing = BTreeSet::new();
    for expr in &exprs {
        for name in identifiers(expr) {
            if (name.starts_with("chorus_") || name.starts_with("process_"))
                && !exported.contains(name.as_str())
            {
                missing.insert(name);
            }
        }
    }
    ensure!(
        missing.is_empty(),
        "the dashboard uses metrics the server does not export: {missing:?}"
    );
    Ok(())
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(expr) = map.get("expr").and_then(|e| e.as_str()) {
                out.push(expr.to_owned());
            }
            map.values().for_each(|v| collect_exprs(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Words of PromQL that could be metric names.
fn identifiers(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}
