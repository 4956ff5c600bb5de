//! Issue 6, graceful drain, step by step: once a drain begins `/readyz` fails, every new join
//! (new room, existing room, mesh) gets `server-draining`, and the call in progress goes on —
//! media keeps flowing, chat keeps working — until its room empties (the drain then ends) or
//! the drain timeout passes (its connections are then closed with 1001). The last test runs
//! the real binary: SIGTERM starts the drain and the process exits 0 once the rooms are empty.

mod support;

use anyhow::{bail, ensure, Context, Result};
use chorus::DrainOutcome;
use serde_json::json;
use std::time::{Duration, Instant};
use support::http_get;
use support::ws::WsClient;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A fresh WebSocket client's SFU join is refused with `server-draining`.
async fn join_is_refused(addr: std::net::SocketAddr, room: &str) {
    let mut late = WsClient::connect(addr, "/ws").await;
    late.send_json(&json!({"type": "join", "room": room, "name": "Late"}))
        .await;
    late.expect_error("server-draining").await;
}

/// The next message of `kind` (media announcements before it are skipped).
async fn recv_type(client: &mut WsClient, kind: &str) -> serde_json::Value {
    loop {
        let message = client.recv_json().await;
        if message["type"] == kind {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_joins_and_waits_for_the_call_to_end() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), drain_steps()).await?
}

async fn drain_steps() -> Result<()> {
    let test = support::media::start_server().await?;
    let addr = test.http;
    let alice = test.client("call", "alice").await?;
    let (_audio, video) = alice.publish_audio_video().await?;
    let bob = test.client("call", "bob").await?;
    support::media::wait_receiving(&bob, &[video], Duration::from_secs(15)).await?;
    let (mut carol, _) = WsClient::sfu_join(addr, "call", "Carol").await;
    assert_eq!(http_get(addr, "/readyz").await.0, 200);

    test.server.begin_drain();
    // Readiness fails at once; liveness does not.
    assert_eq!(http_get(addr, "/readyz").await.0, 503);
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    // New rooms and joins to the running call are refused, SFU and mesh alike.
    join_is_refused(addr, "another-room").await;
    join_is_refused(addr, "call").await;
    let mut mesh = WsClient::connect(addr, "/ws?room=call").await;
    mesh.send_json(&json!({"type": "join", "peerId": "M"}))
        .await;
    mesh.expect_error("server-draining").await;
    ensure!(
        test.metric("chorus_draining").await? == 1.0,
        "chorus_draining is not 1"
    );
    // The call goes on: media flows, chat works.
    let before = support::media::packets_from(&bob, video);
    bob.wait_until("media during the drain", Duration::from_secs(5), |c| {
        support::media::packets_from(c, video) > before + 20
    })
    .await
    .context("forwarding stopped during the drain")?;
    carol
        .send_json(&json!({"type": "chat", "text": "still here"}))
        .await;
    let echo = recv_type(&mut carol, "chat").await;
    ensure!(echo["text"] == "still here", "chat during drain: {echo}");
    // The drain waits while the room is in use...
    tokio::select! {
        outcome = test.server.drain(Duration::from_secs(30)) => {
            bail!("drain ended ({outcome:?}) while the call was still going")
        }
        () = tokio::time::sleep(Duration::from_millis(800)) => {}
    }
    // ...and ends as soon as the last member has left.
    alice.leave().await?;
    bob.leave().await?;
    carol.close().await;
    let started = Instant::now();
    let outcome = test.server.drain(Duration::from_secs(30)).await;
    ensure!(outcome == DrainOutcome::RoomsEmpty, "{outcome:?}");
    // A measurement with a generous ceiling: the drain notices quickly, but a loaded machine
    // may be slow to run it.
    let took = started.elapsed();
    eprintln!("drain ended {took:?} after the room emptied");
    ensure!(
        took < Duration::from_secs(15),
        "drain took {took:?} after the room emptied"
    );
    test.server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn drain_timeout_closes_the_calls_left() {
    let server = support::start_with(|_| {}).await;
    let addr = server.addr();
    let (mut dave, _) = WsClient::sfu_join(addr, "long-call", "Dave").await;
    let started = Instant::now();
    let outcome = server.drain(Duration::from_millis(600)).await;
    assert_eq!(outcome, DrainOutcome::TimedOut { rooms: 1 });
    assert!(started.elapsed() >= Duration::from_millis(600));
    server.shutdown().await.expect("shutdown");
    let frame = dave.expect_close(Duration::from_secs(5)).await;
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(60), sigterm_steps()).await?
}

async fn sigterm_steps() -> Result<()> {
    let mut child = tokio::process::Command::from(support::serve_command())
        .args([
            "--log-format",
            "json",
            "--log",
            "info",
            "--drain-timeout",
            "30s",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines
            .next_line()
            .await?
            .context("the server exited before listening")?;
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["message"] == "listening" {
            break entry["addr"]
                .as_str()
                .context("listening line without addr")?
                .parse()?;
        }
    };
    // Keep reading the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (mut erin, _) = WsClient::sfu_join(addr, "r", "Erin").await;
    let pid = child.id().context("pid")? as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    ensure!(
        unsafe { libc::kill(pid, libc::SIGTERM) } == 0,
        "kill failed"
    );
    support::wait_for(
        "/readyz answers 503 after SIGTERM",
        Duration::from_secs(5),
        || async { (http_get(addr, "/readyz").await.0 == 503).then_some(()) },
    )
    .await;
    join_is_refused(addr, "r").await;
    erin.send_json(&json!({"type": "chat", "text": "finishing up"}))
        .await;
    ensure!(recv_type(&mut erin, "chat").await["text"] == "finishing up");
    ensure!(
        child.try_wait()?.is_none(),
        "the process exited while a call was going"
    );
    erin.close().await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("the process did not exit after its last room emptied")??;
    ensure!(status.success(), "exit status {status}");
    Ok(())
}
