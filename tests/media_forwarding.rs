//! Issue 3, test 1: three participants each publish audio + video; each receives the other
//! two's tracks; ≥ 95 % of the packets arrive within 5 s; payloads are byte-identical; SSRC and
//! payload type on each receiving leg are the ones that leg negotiated (the clients register
//! different payload types, so the server has to rewrite them). Run twice: with publishers on
//! send-recv transceivers (a browser's `addTrack`) and on send-only ones (`addTransceiver` with
//! `direction: "sendonly"`), whose m-lines the server cannot reuse.

mod support;

use anyhow::{ensure, Context, Result};
use chorus::client::{ClientOptions, PublishedTrackSnapshot, SfuClient};
use chorus::protocol::TrackKind;
use std::time::Duration;
use support::media::*;

const FLOW: Duration = Duration::from_secs(15);

fn options(audio_pt: u8, video_pt: u8, send_only: bool) -> ClientOptions {
    ClientOptions {
        audio_payload_type: audio_pt,
        video_payload_type: video_pt,
        send_only,
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_receive_each_other() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run(false)).await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_send_only_publishers_receive_each_other() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run(true)).await?
}

async fn run(send_only: bool) -> Result<()> {
    let server = start_server().await?;
    let room = "forwarding";
    let clients = [
        server
            .client_with(room, "alice", options(111, 96, send_only))
            .await?,
        server
            .client_with(room, "bob", options(109, 102, send_only))
            .await?,
        server
            .client_with(room, "carol", options(105, 120, send_only))
            .await?,
    ];
    let mut tags = Vec::new();
    for c in &clients {
        let (audio, video) = c.publish_audio_video().await.context("publish")?;
        tags.push((audio, video));
    }
    for (i, c) in clients.iter().enumerate() {
        let others: Vec<u64> = tags
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, (a, v))| [*a, *v])
            .collect();
        wait_receiving(c, &others, FLOW).await?;
    }
    // Let media flow, then fix a window of sent packets and give it 5 s to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent: Vec<Vec<PublishedTrackSnapshot>> = clients.iter().map(|c| c.published()).collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (i, receiver) in clients.iter().enumerate() {
        for (j, publisher) in clients.iter().enumerate().filter(|(j, _)| *j != i) {
            for track in &sent[j] {
                check_track(receiver, publisher, track).await?;
            }
        }
        ensure!(
            receiver.received().len() == 4,
            "{} received {} tracks, expected 4",
            receiver.peer_id(),
            receiver.received().len()
        );
    }
    Ok(())
}

/// One publisher track as seen by one receiver.
async fn check_track(
    receiver: &SfuClient,
    publisher: &SfuClient,
    sent: &PublishedTrackSnapshot,
) -> Result<()> {
    let who = format!(
        "{} receiving {}'s {:?}",
        receiver.peer_id(),
        publisher.peer_id(),
        sent.kind
    );
    let got = received_by_tag(receiver, sent.tag).with_context(|| format!("{who}: no track"))?;
    ensure!(got.foreign_tags == 0, "{who}: payloads of another track");
    ensure!(
        got.bad_payloads == 0,
        "{who}: {} bad payloads",
        got.bad_payloads
    );
    ensure!(
        got.peer_id.as_deref() == Some(publisher.peer_id()),
        "{who}: labelled as coming from {:?}",
        got.peer_id
    );
    // ≥ 95 % of the window [first counter received, last counter sent at the snapshot].
    let first = got.hashes.keys().next().copied().context("no payload")?;
    let last = sent
        .hashes
        .keys()
        .next_back()
        .copied()
        .context("nothing sent")?;
    ensure!(
        last >= first,
        "{who}: first received {first} after last sent {last}"
    );
    let window = u64::from(last - first + 1);
    let arrived = got.hashes.range(first..=last).count() as u64;
    ensure!(
        arrived * 100 >= window * 95,
        "{who}: {arrived} of {window} packets arrived"
    );
    // Byte-identical payloads.
    for (counter, hash) in got.hashes.range(first..=last) {
        ensure!(
            sent.hashes.get(counter) == Some(hash),
            "{who}: payload {counter} differs from what was sent"
        );
    }
    ensure!(
        got.latency.p95_us < 5_000_000,
        "{who}: p95 latency {} µs",
        got.latency.p95_us
    );
    check_leg(receiver, &got, sent.kind, &who).await
}

/// SSRC and payload type are those the receiving leg negotiated (its remote description).
async fn check_leg(
    receiver: &SfuClient,
    got: &chorus::client::ReceivedTrackSnapshot,
    kind: TrackKind,
    who: &str,
) -> Result<()> {
    let mid = got
        .mid
        .as_deref()
        .with_context(|| format!("{who}: no mid"))?;
    let sdp = receiver
        .remote_sdp()
        .await
        .context("no remote description")?;
    let section = sdp_section(&sdp, mid).with_context(|| format!("{who}: no m-section {mid}"))?;
    let codec = match kind {
        TrackKind::Audio => "OPUS",
        TrackKind::Video => "VP8",
    };
    let pt = section.payload_types.get(codec).copied();
    ensure!(
        pt.is_some() && got.payload_types == vec![pt.unwrap_or_default()],
        "{who}: payload types {:?}, leg negotiated {codec} as {pt:?}",
        got.payload_types
    );
    ensure!(
        !got.ssrcs.is_empty() && got.ssrcs.iter().all(|s| section.ssrcs.contains(s)),
        "{who}: SSRCs {:?}, leg announced {:?}",
        got.ssrcs,
        section.ssrcs
    );
    Ok(())
}
