//! What the integration tests share: ONE server configuration ([`test_config`]), starting the
//! whole server in-process, plain HTTP requests, and bounded condition waits. The submodules
//! hold the clients: [`ws`] (a raw WebSocket client for the signaling tests), [`media`] (the
//! Rust WebRTC test client against a server), [`browser`] (Node-driven real browsers); [`auth`]
//! holds the test secret, [`cluster`] runs several `chorus serve` nodes around one Redis,
//! [`netns`] builds lossy links between network namespaces, [`star`] a server namespace with
//! one capped-or-not link per client namespace, [`sdp`] writes offers by hand and
//! [`readme`] reads the repository's documents. Every test file says
//! `mod support;`; a file uses only part of this, hence `dead_code` is allowed.
#![allow(dead_code)]

pub mod auth;
pub mod browser;
pub mod cluster;
pub mod media;
pub mod netns;
pub mod readme;
pub mod sdp;
pub mod star;
pub mod ws;

use chorus::{Config, RunningServer};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long one HTTP request may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The configuration of every server under test: everything on 127.0.0.1 (loopback
/// candidates only, which is also what a browser on this machine reaches), ephemeral HTTP and
/// UDP ports, two media shards whatever the machine (so cross-shard paths are exercised), and
/// a mesh grace long enough for a loaded machine. Tests change what they need from here.
pub fn test_config() -> Config {
    Config {
        listen: SocketAddr::new(LOOPBACK, 0),
        udp_port: 0,
        udp_threads: 2,
        udp_bind: LOOPBACK,
        advertise_ips: vec![LOOPBACK],
        mesh_grace_ms: 1000,
        ..Config::default()
    }
}

/// [`test_config`] as `chorus serve` flags, for tests that run the binary itself.
pub const SERVE_ARGS: &[&str] = &[
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--udp-port",
    "0",
    "--udp-threads",
    "2",
    "--udp-bind",
    "127.0.0.1",
    "--advertise-ip",
    "127.0.0.1",
    "--mesh-grace-ms",
    "1000",
];

/// The `chorus` binary with [`SERVE_ARGS`], cleared of every `CHORUS_*` (and `NO_COLOR`)
/// variable of the environment the tests run in; callers add flags and pipes.
pub fn serve_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chorus"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHORUS_") || k == "NO_COLOR") {
        command.env_remove(key);
    }
    command.args(SERVE_ARGS);
    command
}

/// Logs to the test output when `RUST_LOG` is set (warnings otherwise).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Starts a server with `config`.
pub async fn start(config: Config) -> RunningServer {
    init_tracing();
    chorus::spawn(config).await.expect("server starts")
}

/// Starts a server with [`test_config`] changed by `change`.
pub async fn start_with(change: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = test_config();
    change(&mut config);
    start(config).await
}

/// One HTTP/1.1 request with extra `headers` and `body`; returns the status and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::time::timeout(HTTP_TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(HTTP_TIMEOUT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, &[], "").await
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `timeout`; panics naming
/// `what` when it never does.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
