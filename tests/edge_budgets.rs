//! Edge budgets: a connection that never joins is closed (`join-timeout`, 4408), HTTP clients
//! that never finish their request head are cut off (`--header-timeout-secs`), a fragmented
//! message is capped at `--max-frame-bytes` while it is reassembled, and the connection table
//! is bounded in all (`--max-connections`, 503) and per address (`--max-connections-per-ip`,
//! 429) while `/healthz` keeps answering. WebSocket-level violations get RFC 6455 close codes:
//! invalid UTF-8 1007, a close frame with an invalid code a close frame (1002) back.

mod support;

use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::ws::WsClient;
use support::{http_get, start_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;

const SECRET: &str = "edge-secret-0123456789abcdef";

/// Connects to `/ws`; on an HTTP refusal returns its status and body.
async fn refused(addr: SocketAddr) -> (u16, String) {
    match WsClient::try_connect(addr, "/ws").await {
        Err(WsError::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, got an upgrade"),
    }
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed_with_4408() {
    // With tokens required and none on the URL, no seed-000 admission happens: the connection
    // stays in no room until the join deadline.
    let server = start_with(|c| {
        c.auth_secret = Some(SECRET.to_owned());
        c.mesh_grace_ms = 200;
        c.join_timeout_secs = 1;
    })
    .await;
    let started = Instant::now();
    let mut idle = WsClient::connect(server.addr(), "/ws").await;
    idle.expect_error("join-timeout").await;
    let close = idle.expect_close(Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    assert_eq!(close.map(|f| u16::from(f.code)), Some(4408));
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}"
    );
}

#[tokio::test]
async fn the_join_deadline_spares_members_and_restarts_after_leave() {
    let server = start_with(|c| {
        c.mesh_grace_ms = 200;
        c.join_timeout_secs = 1;
    })
    .await;
    let (mut member, _) = WsClient::sfu_join(server.addr(), "r", "Mia").await;
    member.expect_silence(1800).await;
    member.send_json(&json!({"type": "leave"})).await;
    assert_eq!(member.recv_json().await["type"], "left");
    let left = Instant::now();
    member.expect_error("join-timeout").await;
    assert!(left.elapsed() >= Duration::from_millis(900));
    let close = member.expect_close(Duration::from_secs(3)).await;
    assert_eq!(close.map(|f| u16::from(f.code)), Some(4408));
}

#[tokio::test]
async fn the_connection_table_is_bounded_and_healthz_still_answers() {
    let server = start_with(|c| {
        c.max_connections = 3;
        c.max_connections_per_ip = 0;
    })
    .await;
    let addr = server.addr();
    let mut open = Vec::new();
    for name in ["a", "b", "c"] {
        open.push(WsClient::sfu_join(addr, "r", name).await.0);
    }
    let (status, body) = refused(addr).await;
    assert_eq!(status, 503);
    assert!(body.starts_with("server-full:"), "body: {body}");
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    // A slot comes back once a connection ends.
    open.pop().expect("one").close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match WsClient::try_connect(addr, "/ws").await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("no slot came back: {e}"),
        }
    }
}

#[tokio::test]
async fn connections_per_address_are_bounded() {
    let server = start_with(|c| c.max_connections_per_ip = 2).await;
    let addr = server.addr();
    let _a = WsClient::connect(addr, "/ws").await;
    let _b = WsClient::connect(addr, "/ws").await;
    let (status, body) = refused(addr).await;
    assert_eq!(status, 429);
    assert!(body.starts_with("too-many-connections:"), "body: {body}");
    let metrics = http_get(addr, "/metrics").await.1;
    assert!(
        chorus::metrics::text::series(
            &metrics,
            r#"chorus_errors_total{code="too-many-connections"}"#
        ) == Some(1.0),
        "refusal not counted"
    );
}

/// Reads until the server closes the TCP connection; returns when.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read_to_end)
        .await
        .expect("the server closes the connection in time");
    started.elapsed()
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    let server = start_with(|c| c.header_timeout_secs = 1).await;
    let addr = server.addr();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut trickling = TcpStream::connect(addr).await.expect("connect");
    trickling
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .expect("write");
    let (silent_after, trickling_after) = tokio::join!(
        closed_after(&mut silent, Duration::from_secs(5)),
        closed_after(&mut trickling, Duration::from_secs(5)),
    );
    for after in [silent_after, trickling_after] {
        assert!(
            after >= Duration::from_millis(800),
            "closed after {after:?}"
        );
    }
    // A complete request is still served.
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
}

/// A raw WebSocket client that writes hand-made frames.
async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "no upgrade");
    stream
}

/// A masked client frame (zero mask key).
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// Reads server frames until a close frame; returns its code.
async fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await.ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).await.ok()?;
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                stream.read_exact(&mut ext).await.ok()?;
                len = u64::from_be_bytes(ext);
            }
            let mut payload = vec![0u8; len as usize];
            stream.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 0x8 {
                return payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a close frame in time")
}

#[tokio::test]
async fn a_fragmented_message_is_capped_at_the_largest_message_limit() {
    // Reassembly stops at the largest message anyone may send: an SFU participant's SDP
    // (`--max-sdp-bytes`), never below `--max-frame-bytes`.
    let server = start_with(|c| {
        c.max_frame_bytes = 4096;
        c.max_sdp_bytes = 4096;
    })
    .await;
    let mut ws = raw_upgrade(server.addr()).await;
    let chunk = vec![b'a'; 1500];
    ws.write_all(&frame(false, 0x1, &chunk))
        .await
        .expect("write");
    for _ in 0..3 {
        if ws.write_all(&frame(false, 0x0, &chunk)).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = start_with(|_| {}).await;
    let mut ws = raw_upgrade(server.addr()).await;
    ws.write_all(&frame(true, 0x1, &[b'{', 0xff, 0xfe, b'}']))
        .await
        .expect("write");
    assert_eq!(close_code(&mut ws).await, Some(1007));
}

#[tokio::test]
async fn a_close_frame_is_answered_with_a_close_frame() {
    let server = start_with(|_| {}).await;
    // 1005 may never be sent on the wire: the answer is a protocol error.
    let mut ws = raw_upgrade(server.addr()).await;
    ws.write_all(&frame(true, 0x8, &1005u16.to_be_bytes()))
        .await
        .expect("write");
    assert_eq!(close_code(&mut ws).await, Some(1002));
    // A valid close code is echoed, completing the closing handshake.
    let mut ws = raw_upgrade(server.addr()).await;
    ws.write_all(&frame(true, 0x8, &1000u16.to_be_bytes()))
        .await
        .expect("write");
    assert_eq!(close_code(&mut ws).await, Some(1000));
}
