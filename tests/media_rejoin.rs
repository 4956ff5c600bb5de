//! Issue 10, item 4: `leave` then `join` of another room on one connection. A publisher is in
//! room A; a second connection joins A (every other time also offers) and right after `joined` (without waiting for
//! any negotiation) leaves and joins room B, over and over. Nothing of room A — its
//! `track-published`, the server's `offer` and `answer` of the old leg, its candidates, any
//! frame naming A's peers or tracks — may reach the connection once it has left A.

mod support;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::time::Duration;
use support::media::*;
use support::sdp::sendonly_offer;
use support::ws::WsClient;

const ROOM_A: &str = "rejoin-a";
const ROOM_B: &str = "rejoin-b";
/// Leave-then-join rounds (the leak is a race: one round may miss it).
const ROUNDS: usize = 12;
/// How long each round listens after `joined` for room B.
const WINDOW: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_room_reaches_a_connection_that_left_it() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

/// What identifies room A in a frame.
struct RoomA {
    peer_id: String,
    track_ids: Vec<String>,
}

impl RoomA {
    /// Why `frame` belongs to room A's media leg or names A's members, if it does. Room B has
    /// nobody else and the connection negotiates nothing there, so any media frame is A's.
    fn leak(&self, frame: &Value) -> Option<String> {
        let kind = frame["type"].as_str().unwrap_or_default();
        let media = [
            "offer",
            "answer",
            "candidate",
            "track-published",
            "track-unpublished",
            "mute",
        ];
        if media.contains(&kind) {
            return Some(format!("a `{kind}` of the old media leg"));
        }
        let text = frame.to_string();
        if text.contains(&self.peer_id) {
            return Some(format!("names A's publisher {}", self.peer_id));
        }
        self.track_ids
            .iter()
            .find(|id| text.contains(id.as_str()))
            .map(|id| format!("names A's track {id}"))
    }
}

/// Frames before the first of type `kind`, and that one (each within 5 s of the last).
async fn until(client: &mut WsClient, kind: &str) -> Result<(Vec<Value>, Value)> {
    let mut before = Vec::new();
    loop {
        let frame = client.recv_json().await;
        if frame["type"] == kind {
            return Ok((before, frame));
        }
        before.push(frame);
    }
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let publisher = server.client(ROOM_A, "publisher").await?;
    let (audio, video) = publisher.publish_audio_video().await?;
    let room_a = RoomA {
        peer_id: publisher.peer_id().to_owned(),
        track_ids: vec![
            publisher.server_track_id(audio).await?,
            publisher.server_track_id(video).await?,
        ],
    };

    let mut client = WsClient::connect(server.http, "/ws").await;
    for round in 0..ROUNDS {
        client
            .send_json(&json!({"type": "join", "room": ROOM_A, "name": "rejoiner"}))
            .await;
        let joined = client.recv_json().await;
        ensure!(joined["type"] == "joined", "round {round}: got {joined}");
        // Every other round publishes in A first (the server answers it); the server offers
        // A's tracks either way. Then the connection goes at once.
        if round % 2 == 0 {
            client
                .send_json(&json!({"type": "offer", "sdp": sendonly_offer("opus/48000/2", "VP8/90000"), "tracks": []}))
                .await;
        }
        client.send_json(&json!({"type": "leave"})).await;
        client
            .send_json(&json!({"type": "join", "room": ROOM_B, "name": "rejoiner"}))
            .await;
        let (_in_a, left) = until(&mut client, "left").await?;
        ensure!(left["room"] == ROOM_A, "round {round}: got {left}");
        let (between, joined_b) = until(&mut client, "joined").await?;
        ensure!(joined_b["room"] == ROOM_B, "round {round}: got {joined_b}");
        let mut after_leave = between;
        after_leave.push(joined_b);
        after_leave.extend(client.frames_within(WINDOW).await);
        for frame in &after_leave {
            if let Some(why) = room_a.leak(frame) {
                bail!("round {round}: after leaving {ROOM_A}, got {frame} ({why})");
            }
        }
        client.send_json(&json!({"type": "leave"})).await;
        let (stray, left_b) = until(&mut client, "left").await?;
        ensure!(left_b["room"] == ROOM_B, "round {round}: got {left_b}");
        if let Some(frame) = stray.iter().find(|f| room_a.leak(f).is_some()) {
            bail!("round {round}: in {ROOM_B}, got {frame}");
        }
    }

    // The frames looked for above are real: a connection that stays in A gets them.
    client
        .send_json(&json!({"type": "join", "room": ROOM_A, "name": "stayer"}))
        .await;
    let (mut seen, joined) = until(&mut client, "joined").await?;
    seen.push(joined);
    let (more, offer) = until(&mut client, "offer").await?;
    seen.extend(more);
    seen.push(offer);
    let published = seen
        .iter()
        .filter(|f| f["type"] == "track-published" && room_a.leak(f).is_some())
        .count();
    ensure!(
        published >= 2,
        "a member of {ROOM_A} was not told of A's tracks: {seen:?}"
    );
    ensure!(
        room_a.leak(seen.last().context("offer")?).is_some(),
        "the control offer was not recognised as A's"
    );
    Ok(())
}
