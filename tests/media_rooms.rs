//! Issue 3, test 2: six participants in two rooms, everyone publishing: each receives exactly
//! the tracks of its own room, and no packet crosses rooms.

mod support;

use anyhow::{ensure, Result};
use chorus::client::SfuClient;
use std::time::Duration;
use support::media::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_packet_crosses_rooms() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let mut rooms: Vec<Vec<(SfuClient, [u64; 2])>> = Vec::new();
    for room in ["north", "south"] {
        let mut members = Vec::new();
        for name in ["one", "two", "three"] {
            let client = server.client(room, &format!("{room}-{name}")).await?;
            let (audio, video) = client.publish_audio_video().await?;
            members.push((client, [audio, video]));
        }
        rooms.push(members);
    }
    for members in &rooms {
        for (i, (client, _)) in members.iter().enumerate() {
            let same_room: Vec<u64> = members
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, (_, tags))| tags.iter().copied())
                .collect();
            wait_receiving(client, &same_room, Duration::from_secs(20)).await?;
        }
    }
    // Let media flow a while longer so that a leak would show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (r, members) in rooms.iter().enumerate() {
        let foreign: Vec<u64> = rooms[1 - r]
            .iter()
            .flat_map(|(_, tags)| tags.iter().copied())
            .collect();
        let foreign_peers: Vec<&str> = rooms[1 - r].iter().map(|(c, _)| c.peer_id()).collect();
        for (client, own) in members {
            let received = client.received();
            ensure!(
                received.len() == 4,
                "{} received {} tracks, expected 4",
                client.peer_id(),
                received.len()
            );
            for track in &received {
                let tag = track.tag.unwrap_or_default();
                ensure!(
                    !foreign.contains(&tag) && !own.contains(&tag),
                    "{} received track {tag:016x} that is not from its room",
                    client.peer_id()
                );
                ensure!(track.foreign_tags == 0, "mixed payloads on one track");
                let from = track.peer_id.as_deref().unwrap_or_default();
                ensure!(
                    !foreign_peers.contains(&from),
                    "{} was told about a track of {from} from the other room",
                    client.peer_id()
                );
            }
            for msg in client.messages_of_type("track-published") {
                let from = msg["peerId"].as_str().unwrap_or_default();
                ensure!(
                    !foreign_peers.contains(&from),
                    "{} got track-published of {from}",
                    client.peer_id()
                );
            }
        }
    }
    Ok(())
}
