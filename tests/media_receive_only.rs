//! Receive-only participants over real WebRTC peers (issue 10, item 1): viewers that never
//! offer. What a viewer declares in its `join` (`receive.codecs`) decides what it is sent: one
//! that declares only Opus gets the speaker's audio and is told, once and for good, that the
//! VP8 video is not playable; one that declares nothing gets both (the default covers VP8).

mod support;

use anyhow::{ensure, Result};
use chorus::client::{ClientOptions, SfuClient};
use chorus::protocol::{CodecCapability, ReceiveCapabilities};
use std::time::Duration;
use support::media::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_sent_only_what_its_join_declares() -> Result<()> {
    tokio::time::timeout(Duration::from_secs(90), run()).await?
}

fn video_announcements(viewer: &SfuClient, speaker: &SfuClient) -> Vec<serde_json::Value> {
    viewer
        .messages_of_type("track-published")
        .into_iter()
        .filter(|m| m["peerId"] == speaker.peer_id() && m["kind"] == "video")
        .collect()
}

async fn run() -> Result<()> {
    let server = start_server().await?;
    let audio_only = ClientOptions {
        receive: Some(ReceiveCapabilities {
            codecs: vec![CodecCapability {
                mime_type: "audio/opus".into(),
                sdp_fmtp_line: Some("minptime=10;useinbandfec=1".into()),
            }],
        }),
        ..ClientOptions::default()
    };
    let listener = server
        .client_with("webinar", "listener", audio_only)
        .await?;
    let viewer = server.client("webinar", "viewer").await?;
    let speaker = server.client("webinar", "speaker").await?;
    let (audio, video) = speaker.publish_audio_video().await?;

    wait_receiving(&viewer, &[audio, video], Duration::from_secs(15)).await?;
    wait_receiving(&listener, &[audio], Duration::from_secs(15)).await?;
    // Two seconds of audio (50 packets/s) later, still no video reached the listener.
    listener
        .wait_until("100 audio packets", Duration::from_secs(15), |c| {
            packets_from(c, audio) >= 100
        })
        .await?;
    ensure!(
        packets_from(&listener, video) == 0,
        "the listener declared no video codec: {}",
        describe(&listener, &[audio, video])
    );
    let announced = video_announcements(&listener, &speaker);
    ensure!(
        !announced.is_empty() && announced.iter().all(|m| m["playable"] == false),
        "the video is announced unplayable, and only so: {announced:?}"
    );
    ensure!(
        announced[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("VP8")),
        "with the reason: {announced:?}"
    );
    ensure!(
        video_announcements(&viewer, &speaker)
            .iter()
            .all(|m| m["playable"] == true),
        "the viewer that declared nothing may play it"
    );
    for client in [&listener, &viewer] {
        let errors = client.messages_of_type("error");
        ensure!(errors.is_empty(), "{errors:?}");
    }
    Ok(())
}
