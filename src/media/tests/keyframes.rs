//! Video starts and resumes at a keyframe: a leg that is new (late join, subscribe) or whose
//! track was unmuted gets nothing until a packet that opens a keyframe, and the server keeps
//! asking a publisher that does not answer (at most once per throttle window).

use super::harness::{Bench, TICK};
use crate::media::publication::KEYFRAME_REQUEST_INTERVAL;
use crate::media::stats::DropReason;
use crate::protocol::{MediaRequest, TrackKind};

fn awaiting_keyframe_drops(bench: &mut Bench) -> u64 {
    bench.state.counters_mut().dropped[DropReason::AwaitingKeyframe as usize]
}

/// alice publishes video and has already sent her first keyframe when bob joins; she answers
/// keyframe requests only when `answers` is set.
fn late_subscriber(answers: bool) -> (Bench, usize, usize, String) {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    bench.publish(alice, &[TrackKind::Video]);
    bench.settle();
    bench.send_from(alice, TrackKind::Video, 5);
    bench.clients[alice].ignore_keyframe_requests = !answers;
    let bob = bench.join("room", "bob");
    bench.settle();
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    (bench, alice, bob, video)
}

#[test]
fn a_late_subscriber_gets_no_delta_frame_before_a_keyframe() {
    let (mut bench, alice, bob, video) = late_subscriber(false);
    let window_steps = (KEYFRAME_REQUEST_INTERVAL.as_millis() / TICK.as_millis()) as usize;
    let asked = bench.clients[alice].keyframe_requests;
    bench.send_from(alice, TrackKind::Video, 3 * window_steps);
    assert_eq!(
        bench.clients[bob].received_on(&video),
        0,
        "only delta frames were sent: none may reach the new leg"
    );
    assert!(awaiting_keyframe_drops(&mut bench) >= 3 * window_steps as u64);
    let asked_again = bench.clients[alice].keyframe_requests - asked;
    assert!(
        (2..=4).contains(&asked_again),
        "the server keeps asking, once per window: {asked_again} requests in 3 windows"
    );
    // The publisher finally sends a keyframe: the leg starts there.
    bench.clients[alice].keyframe_due = true;
    bench.send_from(alice, TrackKind::Video, 10);
    let flags = bench.clients[bob].keyframe_flags_on(&video);
    assert_eq!(flags.len(), 10, "everything from the keyframe on arrives");
    assert!(flags[0], "the first packet opens a keyframe");
    assert!(flags[1..].iter().all(|k| !k));
}

#[test]
fn a_late_subscriber_starts_at_the_keyframe_it_asked_for() {
    let (mut bench, alice, bob, video) = late_subscriber(true);
    bench.send_from(alice, TrackKind::Video, 20);
    let flags = bench.clients[bob].keyframe_flags_on(&video);
    assert!(flags.len() >= 15, "video flows: {} packets", flags.len());
    assert!(flags[0], "the first packet bob gets opens a keyframe");
}

#[test]
fn unmuted_video_resumes_at_a_keyframe() {
    let (mut bench, alice, bob, video) = late_subscriber(true);
    bench.send_from(alice, TrackKind::Video, 10);
    let mute = |muted| MediaRequest::Mute {
        track_id: video.clone(),
        muted,
    };
    bench.request(alice, mute(true));
    bench.run(5);
    bench.clients[alice].ignore_keyframe_requests = true;
    bench.request(alice, mute(false));
    bench.run(5);
    let before = bench.clients[bob].received_on(&video) as usize;
    bench.send_from(alice, TrackKind::Video, 10);
    assert_eq!(
        bench.clients[bob].received_on(&video) as usize,
        before,
        "after the unmute, delta frames wait for a keyframe"
    );
    bench.clients[alice].keyframe_due = true;
    bench.send_from(alice, TrackKind::Video, 5);
    let flags = bench.clients[bob].keyframe_flags_on(&video);
    assert_eq!(flags.len(), before + 5);
    assert!(flags[before], "the stream resumes with a keyframe");
}

#[test]
fn audio_never_waits_for_a_keyframe() {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    bench.publish(alice, &[TrackKind::Audio]);
    bench.settle();
    let bob = bench.join("room", "bob");
    bench.settle();
    let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
    let before = bench.clients[bob].received_on(&audio);
    bench.send_from(alice, TrackKind::Audio, 10);
    assert_eq!(bench.clients[bob].received_on(&audio), before + 10);
    assert_eq!(awaiting_keyframe_drops(&mut bench), 0);
}
