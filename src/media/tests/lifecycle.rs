//! Lifecycle: publish and unpublish, joining late, leaving, rooms kept apart, grants, a silent
//! connection torn down and rebuilt, datagrams nobody owns.

use super::harness::{Bench, Codecs};
use crate::media::peer::MediaGrants;
use crate::media::state::MEDIA_SILENCE;
use crate::media::stats::DropReason;
use crate::protocol::{MediaErrorCode, MediaEvent, TrackKind};

fn unpublished(bench: &Bench, c: usize, track_id: &str) -> bool {
    bench.clients[c]
        .log
        .iter()
        .any(|e| matches!(e, MediaEvent::TrackUnpublished { track_id: t, .. } if t == track_id))
}

#[test]
fn publishing_announces_the_track_to_every_member() {
    let (bench, alice, bob) = Bench::call(&[TrackKind::Audio, TrackKind::Video]);
    let levels = bench.state.levels();
    assert_eq!((levels.published_audio, levels.published_video), (1, 1));
    assert_eq!(levels.subscriptions, 2);
    for kind in [TrackKind::Audio, TrackKind::Video] {
        let info = bench.clients[bob].announced("alice", kind);
        assert!(
            info.iter().any(|i| i.playable),
            "bob can play alice's {kind:?}"
        );
        assert_eq!(
            bench.clients[alice].announced("alice", kind).len(),
            1,
            "alice is told her own track's id once"
        );
    }
    let tracks = bench.state.room_tracks("room");
    assert_eq!(tracks.len(), 2);
}

#[test]
fn a_late_joiner_receives_the_tracks_already_published() {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    bench.publish(alice, &[TrackKind::Video]);
    bench.settle();
    bench.send(5);
    let dave = bench.join("room", "dave");
    bench.settle();
    let id = bench.clients[dave].track_id("alice", TrackKind::Video);
    bench.send(20);
    bench.run(5);
    assert!(bench.clients[dave].received_on(&id) >= 15);
}

#[test]
fn leaving_unpublishes_and_empties_the_room() {
    let (mut bench, alice, bob) = Bench::call(&[TrackKind::Audio, TrackKind::Video]);
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    let offers = bench.clients[bob].offers();
    bench.leave(alice);
    bench.run(2);
    assert!(
        unpublished(&bench, bob, &video),
        "bob is told alice's video left"
    );
    let levels = bench.state.levels();
    assert_eq!(levels.peer_connections, 1);
    assert_eq!(levels.published_audio + levels.published_video, 0);
    assert_eq!(
        levels.subscriptions, 0,
        "bob's subscriptions ended with the tracks"
    );
    assert_eq!(levels.rooms, 1);
    bench.settle();
    assert!(
        bench.clients[bob].offers() > offers,
        "bob's leg is renegotiated without them"
    );
    bench.leave(bob);
    assert_eq!(bench.state.levels().rooms, 0);
    assert_eq!(bench.state.levels().peer_connections, 0);
}

#[test]
fn removing_a_track_unpublishes_it_and_keeps_the_others() {
    let (mut bench, alice, bob) = Bench::call(&[TrackKind::Audio, TrackKind::Video]);
    let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.unpublish(alice, TrackKind::Video);
    bench.settle();
    assert!(
        unpublished(&bench, bob, &video),
        "bob is told the video left"
    );
    assert!(!unpublished(&bench, bob, &audio));
    let levels = bench.state.levels();
    assert_eq!((levels.published_audio, levels.published_video), (1, 0));
    assert_eq!(levels.subscriptions, 1);
    let before = bench.clients[bob].received_on(&audio);
    bench.send(10);
    bench.run(5);
    assert!(
        bench.clients[bob].received_on(&audio) >= before + 8,
        "audio goes on"
    );
}

#[test]
fn rooms_are_isolated() {
    let mut bench = Bench::new();
    let alice = bench.join("one", "alice");
    let bob = bench.join("one", "bob");
    let eve = bench.join("two", "eve");
    bench.publish(alice, &[TrackKind::Audio]);
    bench.publish(eve, &[TrackKind::Audio]);
    bench.settle();
    bench.send(20);
    bench.run(5);
    let id = bench.clients[bob].track_id("alice", TrackKind::Audio);
    assert!(
        bench.clients[bob].received_on(&id) >= 15,
        "room one forwards"
    );
    assert!(bench.clients[bob]
        .announced("eve", TrackKind::Audio)
        .is_empty());
    assert!(bench.clients[eve]
        .announced("alice", TrackKind::Audio)
        .is_empty());
    assert_eq!(bench.clients[eve].total_received(), 0);
    assert_eq!(bench.state.room_tracks("one").len(), 1);
    assert_eq!(bench.state.room_tracks("two").len(), 1);
    assert_eq!(bench.state.levels().rooms, 2);
}

#[test]
fn a_track_without_the_publish_grant_is_refused() {
    let mut bench = Bench::new();
    let grants = MediaGrants {
        publish: false,
        subscribe: true,
    };
    let viewer = bench.join_with("room", "viewer", grants, Codecs::OpusAndVp8);
    let bob = bench.join("room", "bob");
    bench.publish(viewer, &[TrackKind::Audio]);
    bench.settle();
    bench.send(10);
    bench.run(5);
    assert!(bench.clients[viewer]
        .errors()
        .contains(&MediaErrorCode::Forbidden));
    assert!(bench.clients[bob]
        .announced("viewer", TrackKind::Audio)
        .is_empty());
    assert_eq!(bench.clients[bob].total_received(), 0);
    assert_eq!(bench.state.levels().published_audio, 0);
}

#[test]
fn a_member_without_the_subscribe_grant_receives_nothing() {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    let grants = MediaGrants {
        publish: true,
        subscribe: false,
    };
    let muted_viewer = bench.join_with("room", "nosub", grants, Codecs::OpusAndVp8);
    let bob = bench.join("room", "bob");
    bench.publish(alice, &[TrackKind::Audio]);
    bench.settle();
    bench.send(10);
    bench.run(5);
    let info = bench.clients[muted_viewer].announced("alice", TrackKind::Audio);
    assert!(
        info.iter().all(|i| !i.playable),
        "announced as not playable"
    );
    assert!(!info.is_empty());
    assert_eq!(bench.clients[muted_viewer].total_received(), 0);
    assert!(bench.clients[bob].total_received() >= 8, "bob does receive");
}

#[test]
fn a_silent_connection_is_torn_down_and_rebuilt() {
    let (mut bench, alice, bob, audio) = Bench::audio_call();
    let old_ufrag = bench.server_ufrag(alice);
    // alice vanishes: no datagram reaches or leaves her any more.
    bench.clients[alice].offline = true;
    let silence = (MEDIA_SILENCE.as_millis() / super::harness::TICK.as_millis()) as usize;
    bench.run_until(silence + 200, "alice's track leaves", |b| {
        unpublished(b, bob, &audio)
    });
    assert!(
        bench.now - bench.clients[alice].last_sent >= MEDIA_SILENCE,
        "not before the silence limit"
    );
    assert!(bench.clients[alice]
        .errors()
        .contains(&MediaErrorCode::MediaFailed));
    let peer = bench.state.peer(bench.clients[alice].key).expect("rebuilt");
    assert_ne!(
        peer.ufrag, old_ufrag,
        "a fresh connection waits for her next offer"
    );
    assert_eq!(bench.state.levels().published_audio, 0);
}

#[test]
fn datagrams_nobody_owns_are_dropped_and_counted() {
    let mut bench = Bench::new();
    let _alice = bench.join("room", "alice");
    let stranger = "127.0.0.1:9".parse().unwrap();
    let now = bench.now;
    let server = bench.server;
    bench
        .state
        .handle_datagram(server, stranger, &[0x80; 40], now);
    bench
        .state
        .handle_datagram(server, stranger, &[0xff; 40], now);
    bench
        .state
        .handle_datagram(server, stranger, &[22; 40], now);
    let counters = bench.state.counters_mut();
    assert_eq!(counters.dropped[DropReason::UnknownSource as usize], 2);
    assert_eq!(counters.dropped[DropReason::Garbage as usize], 1);
}

/// A client's ICE restart (new credentials in a re-offer): the server's agent starts a new
/// session with the same server credentials, and media flows again within half a second.
#[test]
fn an_ice_restart_resumes_media_within_half_a_second() {
    use crate::protocol::MediaRequest;
    use rtc::peer_connection::configuration::RTCOfferOptions;
    let (mut bench, alice, bob, audio) = Bench::audio_call();
    bench.send(10);
    let before = bench.clients[bob].received_on(&audio);
    assert!(before >= 8);
    let now = bench.now;
    let client = &mut bench.clients[bob];
    let offer = client
        .pc
        .create_offer(Some(RTCOfferOptions { ice_restart: true }))
        .expect("restart offer");
    client
        .pc
        .set_local_description(now, offer)
        .expect("set offer");
    let sdp = client.pc.local_description().map(|d| d.sdp).expect("sdp");
    let ufrag = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    let first = client.pc.current_local_description().map(|d| d.sdp);
    assert_ne!(
        ufrag(&sdp),
        first.as_deref().and_then(ufrag),
        "a real restart"
    );
    let tracks = client.declared_sources();
    bench.request(bob, MediaRequest::Offer { sdp, tracks });
    let mut resumed_at = None;
    for step in 0..800 {
        let now = bench.now;
        bench.clients[alice].send_packet(now, Some(TrackKind::Audio));
        bench.step();
        if resumed_at.is_none() && bench.clients[bob].received_on(&audio) > before + 1 {
            resumed_at = Some(step);
        }
    }
    let at = resumed_at.expect("media resumes after the ICE restart");
    assert!(
        at <= 100,
        "media resumed {at} steps (5 ms each) after the restart"
    );
    assert!(bench.clients[bob].errors().is_empty());
}

#[test]
fn the_read_budget_follows_the_largest_room_not_the_shard() {
    // Eight rooms of two: a datagram fans out to one leg, so a turn may read whole batches.
    let mut bench = Bench::new();
    let mut last = 0;
    for room in 0..8 {
        for who in ["a", "b"] {
            last = bench.join(&format!("room-{room}"), who);
        }
    }
    assert_eq!(bench.state.largest_room(), 2);
    assert!(crate::media::shard::read_budget(bench.state.largest_room()) >= 64);
    // One room of five: the budget shrinks with it, and grows back when they leave.
    let big: Vec<usize> = (0..5)
        .map(|i| bench.join("big", &format!("p{i}")))
        .collect();
    assert_eq!(bench.state.largest_room(), 5);
    for c in big {
        bench.leave(c);
    }
    assert_eq!(bench.state.largest_room(), 2);
    bench.leave(last);
    assert_eq!(bench.state.largest_room(), 2, "other rooms of two are left");
}
