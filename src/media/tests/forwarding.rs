//! Forwarding: RTP reaches every subscriber and nobody else, duplicates and muted tracks are
//! dropped, keyframe requests travel back to the publisher (throttled), NACKs are answered.

use super::harness::Bench;
use crate::media::stats::DropReason;
use crate::protocol::{MediaEvent, MediaRequest, TrackKind};

/// alice publishes audio and video; bob and carol receive both.
fn three_in_a_room() -> (Bench, usize, usize, usize) {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    let carol = bench.join("room", "carol");
    bench.publish(alice, &[TrackKind::Audio, TrackKind::Video]);
    bench.settle();
    (bench, alice, bob, carol)
}

#[test]
fn rtp_reaches_every_subscriber_of_the_room() {
    let (mut bench, _alice, bob, carol) = three_in_a_room();
    bench.send(30);
    bench.run(5);
    for c in [bob, carol] {
        let client = &bench.clients[c];
        for kind in [TrackKind::Audio, TrackKind::Video] {
            let id = client.track_id("alice", kind);
            assert!(
                client.received_on(&id) >= 25,
                "{} got {} packets of alice's {kind:?}",
                client.peer_id,
                client.received_on(&id)
            );
        }
    }
}

#[test]
fn a_publisher_does_not_receive_its_own_tracks() {
    let (mut bench, alice, bob, _carol) = three_in_a_room();
    bench.send(20);
    bench.run(5);
    assert!(bench.clients[bob].total_received() >= 30, "bob receives");
    assert_eq!(bench.clients[alice].total_received(), 0);
    assert!(
        bench.clients[alice]
            .announced("alice", TrackKind::Video)
            .len()
            <= 1
    );
}

#[test]
fn an_operator_mute_stops_the_track_for_everyone() {
    let (mut bench, _alice, bob, carol) = three_in_a_room();
    let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
    let now = bench.now;
    assert!(bench.state.admin_mute("room", &audio, true, now));
    assert!(!bench.state.admin_mute("room", "nobody-0", true, now));
    assert!(!bench.state.admin_mute("elsewhere", &audio, true, now));
    bench.run(1);
    let before = bench.clients[bob].received_on(&audio);
    bench.send(10);
    bench.run(5);
    assert_eq!(bench.clients[bob].received_on(&audio), before);
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    assert!(
        bench.clients[bob].received_on(&video) >= 8,
        "only the muted track stops"
    );
    let tracks = bench.state.room_tracks("room");
    assert!(tracks.iter().any(|t| t.track_id == audio && t.muted));
    for c in [bob, carol] {
        assert!(bench.clients[c].log.iter().any(|e| matches!(e,
            MediaEvent::Muted { track_id, muted: true, .. } if *track_id == audio)));
    }
}

#[test]
fn a_muted_track_is_not_forwarded_and_unmuting_asks_for_a_keyframe() {
    let (mut bench, alice, bob, carol) = three_in_a_room();
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.send_from(alice, TrackKind::Video, 10);
    let before_mute = bench.clients[bob].received_on(&video);
    assert!(before_mute >= 8, "video flows before the mute");
    bench.request(
        alice,
        MediaRequest::Mute {
            track_id: video.clone(),
            muted: true,
        },
    );
    bench.send_from(alice, TrackKind::Video, 10);
    bench.run(5);
    assert_eq!(bench.clients[bob].received_on(&video), before_mute);
    assert!(bench.state.counters_mut().dropped[DropReason::Muted as usize] >= 10);
    for c in [bob, carol] {
        assert!(
            bench.clients[c].log.iter().any(|e| matches!(e,
                MediaEvent::Muted { track_id, muted: true, .. } if *track_id == video)),
            "{} is told about the mute",
            bench.clients[c].peer_id
        );
    }
    // Past the keyframe throttle window, unmuting sends a fresh keyframe request.
    bench.run(250);
    let keyframes = bench.clients[alice].keyframe_requests;
    bench.request(
        alice,
        MediaRequest::Mute {
            track_id: video.clone(),
            muted: false,
        },
    );
    bench.send_from(alice, TrackKind::Video, 10);
    bench.run(5);
    assert!(
        bench.clients[alice].keyframe_requests > keyframes,
        "keyframe request on unmute"
    );
    assert!(
        bench.clients[bob].received_on(&video) >= before_mute + 8,
        "video flows again"
    );
}

#[test]
fn keyframe_requests_reach_the_publisher_at_most_once_per_window() {
    let (mut bench, alice, bob, carol) = three_in_a_room();
    bench.send(10);
    bench.run(250); // past the windows of the keyframe requests of the subscriptions
    let before = bench.clients[alice].keyframe_requests;
    let now = bench.now;
    bench.clients[bob].request_keyframes(now);
    bench.clients[carol].request_keyframes(now);
    bench.run(10);
    assert_eq!(
        bench.clients[alice].keyframe_requests,
        before + 1,
        "two requests inside one window: one goes out now"
    );
    bench.run(100);
    assert_eq!(
        bench.clients[alice].keyframe_requests,
        before + 2,
        "the deferred one goes out when the window ends"
    );
}

#[test]
fn audio_keyframe_requests_are_not_relayed() {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    bench.publish(alice, &[TrackKind::Audio]);
    bench.settle();
    bench.send(10);
    bench.run(120);
    let now = bench.now;
    bench.clients[bob].request_keyframes(now);
    bench.run(10);
    assert!(
        bench.state.counters_mut().keyframe_requests_in >= 1,
        "the request arrived"
    );
    assert_eq!(bench.clients[alice].keyframe_requests, 0);
}

#[test]
fn a_lost_packet_is_nacked_and_retransmitted() {
    let (mut bench, alice, bob, _carol) = three_in_a_room();
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.send_from(alice, TrackKind::Video, 10);
    let _ = crate::media::stats::wire::take();
    bench.clients[bob].drop_rtp = 1;
    bench.send_from(alice, TrackKind::Video, 20);
    bench.run(100);
    assert_eq!(bench.clients[bob].drop_rtp, 0, "one packet was lost");
    assert!(bench.state.counters_mut().nacks_in >= 1, "bob sent a NACK");
    let wire = crate::media::stats::wire::take();
    assert!(wire.retransmitted_packets >= 1, "the server resent it");
    assert!(
        bench.clients[bob].received_on(&video) >= 30,
        "the lost packet was recovered"
    );
}
