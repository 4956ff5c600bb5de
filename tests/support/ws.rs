//! A small WebSocket client for the signaling tests (tokio-tungstenite): sends JSON, receives
//! the next frame with a timeout, asserts silence and close frames.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long `recv_*` waits before failing the test.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// One test WebSocket client.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects to `ws://addr{path}` (path includes any query).
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        Self::try_connect(addr, path)
            .await
            .unwrap_or_else(|e| panic!("connect to {path}: {e}"))
    }

    /// Connects, returning the handshake error (e.g. an HTTP 401) instead of panicking.
    pub async fn try_connect(
        addr: SocketAddr,
        path: &str,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://{addr}{path}");
        let (ws, _response) = tokio_tungstenite::connect_async(url).await?;
        Ok(Self { ws })
    }

    /// A seed-002 mesh client: connects to `path` and joins as `peer_id`; returns the client
    /// and the peers of its `peer-list`.
    pub async fn mesh_join(addr: SocketAddr, path: &str, peer_id: &str) -> (Self, Vec<String>) {
        let mut client = Self::connect(addr, path).await;
        client
            .send_json(&json!({"type": "join", "peerId": peer_id}))
            .await;
        let list = client.recv_json().await;
        assert_eq!(list["type"], "peer-list", "expected peer-list, got {list}");
        (client, string_list(&list["peers"]))
    }

    /// An SFU client: connects to `/ws` and joins `room` as `name`; returns the client and its
    /// `joined` message.
    pub async fn sfu_join(addr: SocketAddr, room: &str, name: &str) -> (Self, Value) {
        let mut client = Self::connect(addr, "/ws").await;
        client
            .send_json(&json!({"type": "join", "room": room, "name": name}))
            .await;
        let joined = client.recv_json().await;
        assert_eq!(joined["type"], "joined", "expected joined, got {joined}");
        (client, joined)
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("send text frame");
    }

    pub async fn send_binary(&mut self, data: Vec<u8>) {
        self.ws
            .send(Message::binary(data))
            .await
            .expect("send binary frame");
    }

    /// The next text frame, verbatim (pings/pongs skipped). Fails on timeout or close.
    pub async fn recv_text(&mut self) -> String {
        match tokio::time::timeout(RECV_TIMEOUT, self.next_text()).await {
            Ok(Ok(text)) => text,
            Ok(Err(what)) => panic!("expected a text frame, got {what}"),
            Err(_) => panic!("no text frame within {RECV_TIMEOUT:?}"),
        }
    }

    /// The next text frame parsed as JSON.
    pub async fn recv_json(&mut self) -> Value {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// The next message, which must be `error` with `code`; returns it.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let message = self.recv_json().await;
        assert_eq!(
            message["type"], "error",
            "expected error {code}, got {message}"
        );
        assert_eq!(
            message["code"], code,
            "expected error {code}, got {message}"
        );
        assert!(
            message["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without message: {message}"
        );
        message
    }

    /// Asserts that no text frame arrives within `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        let wait = Duration::from_millis(ms);
        if let Ok(result) = tokio::time::timeout(wait, self.next_text()).await {
            panic!("expected silence for {ms} ms, got {result:?}");
        }
    }

    /// Every text frame (parsed as JSON) that arrives within `window`; stops early at a close
    /// or the end of the stream.
    pub async fn frames_within(&mut self, window: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + window;
        let mut frames = Vec::new();
        while let Ok(Ok(text)) = tokio::time::timeout_at(deadline, self.next_text()).await {
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
            frames.push(value);
        }
        frames
    }

    /// Waits for the server's close frame (text frames before it are skipped).
    pub async fn expect_close(&mut self, wait: Duration) -> Option<CloseFrame> {
        let closed = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => panic!("connection error instead of a close frame: {e}"),
                    None => return None,
                }
            }
        };
        tokio::time::timeout(wait, closed)
            .await
            .expect("the server closes the connection in time")
    }

    /// Closes the connection cleanly.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Let the close handshake finish so the server sees a clean disconnect.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn next_text(&mut self) -> Result<String, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => return Err(format!("{other:?}")),
                Some(Err(e)) => return Err(format!("error {e}")),
                None => return Err("end of stream".to_owned()),
            }
        }
    }
}

/// A JSON array of strings as a Vec.
pub fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}
