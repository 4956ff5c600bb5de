//! Access tokens: with `--auth-secret` an SFU `join` needs a valid token for its room, and mesh
//! clients need `?token=` on the WebSocket URL (refused with 401/403 at the upgrade otherwise).
//! Refusals carry stable codes and leave the others undisturbed.

mod support;

use chorus::auth::{unix_now, Claims, TokenAuthority};
use serde_json::json;
use std::time::Duration;
use support::start_with;
use support::ws::WsClient;
use tokio_tungstenite::tungstenite::Error as WsError;

const SECRET: &str = "test-secret-0123456789abcdef";

fn token(room: &str, name: &str) -> String {
    let claims = Claims::new(
        room,
        &format!("{name}@example.org"),
        name,
        Duration::from_secs(600),
    );
    TokenAuthority::new(SECRET.as_bytes())
        .mint(&claims)
        .expect("mint")
}

fn expired_token(room: &str) -> String {
    let mut claims = Claims::new(room, "late@example.org", "Late", Duration::from_secs(1));
    claims.exp = unix_now() - 3600;
    TokenAuthority::new(SECRET.as_bytes())
        .mint(&claims)
        .expect("mint")
}

async fn start_secured() -> chorus::RunningServer {
    start_with(|c| {
        c.auth_secret = Some(SECRET.to_owned());
        c.mesh_grace_ms = 300;
    })
    .await
}

#[tokio::test]
async fn sfu_join_requires_a_valid_token_for_the_room() {
    let server = start_secured().await;
    let addr = server.addr();
    let mut observer = WsClient::connect(addr, "/ws").await;
    observer
        .send_json(
            &json!({"type":"join","room":"board","name":"x","token": token("board", "Olga")}),
        )
        .await;
    let joined = observer.recv_json().await;
    assert_eq!(joined["type"], "joined");

    let foreign = TokenAuthority::new(b"some-other-secret-entirely")
        .mint(&Claims::new(
            "board",
            "eve",
            "Eve",
            Duration::from_secs(600),
        ))
        .expect("mint");
    let mut client = WsClient::connect(addr, "/ws").await;
    let cases = [
        (None, "auth-required"),
        (Some("not-a-token".to_owned()), "bad-token"),
        (Some(foreign), "bad-token"),
        (Some(expired_token("board")), "token-expired"),
        (Some(token("another-room", "Mallory")), "wrong-room"),
    ];
    for (token, code) in cases {
        let mut join = json!({"type":"join","room":"board","name":"Mallory"});
        if let Some(token) = token {
            join["token"] = json!(token);
        }
        client.send_json(&join).await;
        client.expect_error(code).await;
    }
    observer.expect_silence(200).await;

    // A valid token admits; the display name comes from the token.
    client
        .send_json(
            &json!({"type":"join","room":"board","name":"Ignored","token": token("board", "Tom")}),
        )
        .await;
    let joined = client.recv_json().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["participants"][0]["name"], "Olga");
    let announced = observer.recv_json().await;
    assert_eq!(announced["type"], "participant-joined");
    assert_eq!(announced["name"], "Tom");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn chat_needs_the_chat_grant() {
    let server = start_secured().await;
    let authority = TokenAuthority::new(SECRET.as_bytes());
    let mut claims = Claims::new("quiet", "q", "Quiet", Duration::from_secs(600));
    claims.grants.chat = false;
    let muted = authority.mint(&claims).expect("mint");
    let mut client = WsClient::connect(server.addr(), "/ws").await;
    client
        .send_json(&json!({"type":"join","room":"quiet","token": muted}))
        .await;
    assert_eq!(client.recv_json().await["type"], "joined");
    client.send_json(&json!({"type":"chat","text":"hi"})).await;
    client.expect_error("forbidden").await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn mesh_upgrade_needs_a_valid_url_token() {
    let server = start_secured().await;
    let addr = server.addr();
    for (path, status) in [
        ("/ws?token=garbage".to_owned(), 401),
        (format!("/ws?token={}", expired_token("lobby")), 401),
        (
            format!("/ws?room=lobby&token={}", token("other", "Ann")),
            403,
        ),
    ] {
        match WsClient::try_connect(addr, &path).await {
            Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), status),
            Err(other) => panic!("expected HTTP {status} for {path}, got {other}"),
            Ok(_) => panic!("expected HTTP {status} for {path}, got an upgrade"),
        }
    }

    // Without a URL token a connection can only make an SFU join: no seed-000 ID is handed out
    // (not even after the 300 ms grace period) and a mesh join is refused.
    let mut anonymous = WsClient::connect(addr, "/ws").await;
    anonymous.expect_silence(600).await;
    anonymous
        .send_json(&json!({"type":"join","peerId":"A"}))
        .await;
    anonymous.expect_error("auth-required").await;
    anonymous
        .send_text(r#"{"type":"offer","to":"B","sdp":"v=0"}"#)
        .await;
    anonymous.expect_error("not-joined").await;

    // With a valid URL token the mesh room defaults to the token's room.
    let path = format!("/ws?token={}", token("design", "Ann"));
    let (mut ann, peers) = WsClient::mesh_join(addr, &path, "Ann").await;
    assert!(peers.is_empty());
    let path = format!("/ws?room=design&token={}", token("design", "Ben"));
    let (_ben, peers) = WsClient::mesh_join(addr, &path, "Ben").await;
    assert_eq!(peers, ["Ann"]);
    assert_eq!(ann.recv_json().await["peerId"], "Ben");

    // An SFU client may carry its token in the URL instead of the join.
    let path = format!("/ws?token={}", token("design", "Cy"));
    let mut cy = WsClient::connect(addr, &path).await;
    cy.send_json(&json!({"type":"join","room":"design","name":"Cy"}))
        .await;
    assert_eq!(cy.recv_json().await["type"], "joined");
    server.shutdown().await.expect("shutdown");
}
