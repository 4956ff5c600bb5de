//! Access rules at the edge: a token whose `nbf` is in the future is refused
//! (`token-not-yet-valid`), a token without `name` shows its `sub`, a second connection with the
//! same room and `sub` replaces the first (`replaced`, close 1000), display names with bidi
//! controls or only invisible characters are refused (`bad-name`), foreign web origins are
//! refused at the upgrade (403 `forbidden-origin`), and a mesh peer's token grants apply to what
//! it relays.

mod support;

use chorus::auth::{unix_now, Claims, TokenAuthority};
use serde_json::{json, Value};
use std::time::Duration;
use support::auth::{start_secured, SECRET};
use support::start_with;
use support::ws::WsClient;
use tokio_tungstenite::tungstenite::Error as WsError;

fn mint(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("mint")
}

fn token(room: &str, sub: &str) -> String {
    let claims = Claims::new(room, sub, sub, Duration::from_secs(600));
    TokenAuthority::new(SECRET.as_bytes())
        .mint(&claims)
        .expect("mint")
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let server = start_secured().await;
    let addr = server.addr();
    let early = mint(&json!({
        "room": "r", "sub": "early", "name": "Early",
        "nbf": unix_now() + 600, "exp": unix_now() + 1200,
        "grants": {"publish": true, "subscribe": true, "chat": true},
    }));
    let mut client = WsClient::connect(addr, "/ws").await;
    client
        .send_json(&json!({"type": "join", "room": "r", "token": early}))
        .await;
    client.expect_error("token-not-yet-valid").await;
    match WsClient::try_connect(addr, &format!("/ws?token={early}")).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            let body = response.body().clone().unwrap_or_default();
            assert!(body.starts_with(b"token-not-yet-valid:"));
        }
        Err(other) => panic!("expected HTTP 401, got {other}"),
        Ok(_) => panic!("expected HTTP 401, got an upgrade"),
    }
    // Already valid (nbf in the past): admitted.
    let ready = mint(&json!({
        "room": "r", "sub": "ready", "nbf": unix_now() - 10, "exp": unix_now() + 600,
    }));
    client
        .send_json(&json!({"type": "join", "room": "r", "name": "Chosen", "token": ready}))
        .await;
    assert_eq!(client.recv_json().await["type"], "joined");
}

#[tokio::test]
async fn a_token_without_name_shows_its_sub_whatever_the_join_says() {
    let server = start_secured().await;
    let addr = server.addr();
    let (mut observer, _) = {
        let mut c = WsClient::connect(addr, "/ws").await;
        c.send_json(&json!({"type": "join", "room": "r", "token": token("r", "olga")}))
            .await;
        let joined = c.recv_json().await;
        (c, joined)
    };
    let unnamed = mint(&json!({"room": "r", "sub": "sam@example.org", "exp": unix_now() + 600}));
    let mut sam = WsClient::connect(addr, "/ws").await;
    sam.send_json(&json!({"type": "join", "room": "r", "name": "Admin", "token": unnamed}))
        .await;
    assert_eq!(sam.recv_json().await["type"], "joined");
    let announced = observer.recv_json().await;
    assert_eq!(announced["type"], "participant-joined");
    assert_eq!(announced["name"], "sam@example.org");
}

#[tokio::test]
async fn a_second_connection_with_the_same_identity_replaces_the_first() {
    let server = start_secured().await;
    let addr = server.addr();
    let join =
        |sub: &str, room: &str| json!({"type": "join", "room": room, "token": token(room, sub)});
    let mut observer = WsClient::connect(addr, "/ws").await;
    observer.send_json(&join("olga", "r")).await;
    assert_eq!(observer.recv_json().await["type"], "joined");
    let mut first = WsClient::connect(addr, "/ws").await;
    first.send_json(&join("kim", "r")).await;
    let first_id = first.recv_json().await["peerId"].clone();
    assert_eq!(observer.recv_json().await["type"], "participant-joined");
    // The same identity in another room is another seat.
    let mut elsewhere = WsClient::connect(addr, "/ws").await;
    elsewhere.send_json(&join("kim", "other")).await;
    assert_eq!(elsewhere.recv_json().await["type"], "joined");

    let mut second = WsClient::connect(addr, "/ws").await;
    second.send_json(&join("kim", "r")).await;
    let joined = second.recv_json().await;
    assert_eq!(joined["type"], "joined");
    // The newcomer is announced to the room while the older connection is being replaced (the
    // identity is claimed once the join is done), so that announcement may come first.
    let mut before_error = first.recv_json().await;
    if before_error["type"] == "participant-joined" {
        assert_eq!(before_error["peerId"], joined["peerId"], "{before_error}");
        before_error = first.recv_json().await;
    }
    assert_eq!(before_error["type"], "error", "{before_error}");
    assert_eq!(before_error["code"], "replaced", "{before_error}");
    let close = first.expect_close(Duration::from_secs(3)).await;
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = observer.recv_json().await;
        seen.push((event["type"].clone(), event["peerId"].clone()));
    }
    assert!(
        seen.contains(&(json!("participant-left"), first_id.clone())),
        "observer saw {seen:?}"
    );
    // The newcomer saw the stale connection in the room, then saw it go.
    let gone = second.recv_json().await;
    assert_eq!(gone["type"], "participant-left");
    assert_eq!(gone["peerId"], first_id);
    elsewhere.expect_silence(200).await;
}

#[tokio::test]
async fn bidi_and_invisible_only_names_are_refused() {
    let server = start_with(|_| {}).await;
    let mut client = WsClient::connect(server.addr(), "/ws").await;
    for name in [
        "admin\u{202E}gpj.exe",
        "\u{2067}Bob\u{2069}",
        "\u{200B}\u{200B}\u{200B}",
        "\u{FEFF} \u{2060}",
    ] {
        client
            .send_json(&json!({"type": "join", "room": "r", "name": name}))
            .await;
        client.expect_error("bad-name").await;
    }
    client
        .send_json(&json!({"type": "join", "room": "r", "name": "Zoë"}))
        .await;
    assert_eq!(client.recv_json().await["type"], "joined");
}

/// Opens `/ws` with an `Origin` header; `Err(status, body)` when refused.
async fn connect_from(addr: std::net::SocketAddr, origin: &str) -> Result<(), (u16, String)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", origin.parse().expect("header value"));
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(WsError::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
        Err(other) => panic!("connect failed: {other}"),
    }
}

#[tokio::test]
async fn foreign_origins_are_refused_unless_allowed() {
    let server = start_with(|_| {}).await;
    let addr = server.addr();
    assert_eq!(connect_from(addr, &format!("http://{addr}")).await, Ok(()));
    let (status, body) = connect_from(addr, "https://evil.example")
        .await
        .expect_err("foreign origin");
    assert_eq!(status, 403);
    assert!(body.starts_with("forbidden-origin:"), "body: {body}");
    // Clients without an Origin (native apps) are let in.
    WsClient::connect(addr, "/ws").await;

    let server = start_with(|c| {
        c.allowed_origins = vec![
            "https://app.example".to_owned(),
            "http://localhost:*".to_owned(),
        ];
    })
    .await;
    let addr = server.addr();
    assert_eq!(connect_from(addr, "https://app.example").await, Ok(()));
    assert_eq!(connect_from(addr, "http://localhost:5173").await, Ok(()));
    assert_eq!(connect_from(addr, &format!("http://{addr}")).await, Ok(()));
    assert!(connect_from(addr, "https://evil.example").await.is_err());

    let server = start_with(|c| c.allowed_origins = vec!["*".to_owned()]).await;
    assert_eq!(
        connect_from(server.addr(), "https://evil.example").await,
        Ok(())
    );
}

fn mesh_path(room: &str, sub: &str, grants: chorus::auth::Grants) -> String {
    let mut claims = Claims::new(room, sub, sub, Duration::from_secs(600));
    claims.grants = grants;
    let token = TokenAuthority::new(SECRET.as_bytes())
        .mint(&claims)
        .expect("mint");
    format!("/ws?token={token}")
}

#[tokio::test]
async fn mesh_frames_follow_the_url_tokens_grants() {
    use chorus::auth::Grants;
    let server = start_secured().await;
    let addr = server.addr();
    let none = Grants {
        publish: false,
        subscribe: false,
        chat: false,
    };
    let listen_only = Grants {
        subscribe: true,
        ..none
    };
    let (mut full, _) = WsClient::mesh_join(addr, &mesh_path("m", "full", Grants::ALL), "F").await;
    let (mut mute, _) = WsClient::mesh_join(addr, &mesh_path("m", "mute", none), "M").await;
    let (mut listener, _) =
        WsClient::mesh_join(addr, &mesh_path("m", "listener", listen_only), "L").await;
    for _ in 0..2 {
        assert_eq!(full.recv_json().await["type"], "peer-joined");
    }
    assert_eq!(mute.recv_json().await["type"], "peer-joined");

    mute.send_text(r#"{"type":"chat","text":"spam"}"#).await;
    mute.expect_error("forbidden").await;
    for kind in ["offer", "ice-candidate", "call-request"] {
        mute.send_text(&format!(r#"{{"type":"{kind}","from":"M","to":"F"}}"#))
            .await;
        mute.expect_error("forbidden").await;
    }
    listener.send_text(r#"{"type":"chat","text":"hi"}"#).await;
    listener.expect_error("forbidden").await;
    full.expect_silence(200).await;

    // A grant to receive is enough to take part in call signaling.
    let offer = r#"{"type":"offer","from":"L","to":"F","sdp":"v=0"}"#;
    listener.send_text(offer).await;
    assert_eq!(full.recv_text().await, offer);
    let chat = r#"{"type":"chat","text":"hello"}"#;
    full.send_text(chat).await;
    assert_eq!(mute.recv_text().await, chat);
    assert_eq!(listener.recv_text().await, chat);
}
