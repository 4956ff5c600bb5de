//! Negotiation: subscribe and unsubscribe, glare (a client offer crossing a server offer),
//! codecs a leg did not negotiate, and requests that do not fit the signaling state.

use super::harness::{Bench, Codecs};
use crate::media::peer::MediaGrants;
use crate::protocol::{MediaErrorCode, MediaRequest, TrackKind};

#[test]
fn unsubscribe_stops_one_track_and_subscribe_brings_it_back() {
    let (mut bench, _alice, bob) = Bench::call(&[TrackKind::Audio, TrackKind::Video]);
    let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.request(
        bob,
        MediaRequest::Unsubscribe {
            track_ids: vec![video.clone()],
        },
    );
    bench.settle();
    let (audio_before, video_before) = (
        bench.clients[bob].received_on(&audio),
        bench.clients[bob].received_on(&video),
    );
    bench.send(20);
    bench.run(5);
    assert!(bench.clients[bob].received_on(&audio) >= audio_before + 15);
    assert_eq!(bench.clients[bob].received_on(&video), video_before);
    assert_eq!(bench.state.levels().subscriptions, 1);
    bench.request(
        bob,
        MediaRequest::Subscribe {
            track_ids: vec![video.clone()],
        },
    );
    bench.settle();
    let id = bench.clients[bob].track_id("alice", TrackKind::Video);
    let before = bench.clients[bob].received_on(&id);
    // The leg restarts at the keyframe it asks for, at most one throttle window (500 ms =
    // 100 steps) after the last request for that track.
    bench.send(120);
    bench.run(5);
    assert!(
        bench.clients[bob].received_on(&id) >= before + 15,
        "video is back"
    );
    assert!(bench.clients[bob].keyframe_flags_on(&id)[before as usize]);
}

#[test]
fn an_unsubscribed_member_stays_unsubscribed_when_someone_joins() {
    let (mut bench, _alice, bob, audio) = Bench::audio_call();
    bench.request(
        bob,
        MediaRequest::Unsubscribe {
            track_ids: vec![audio],
        },
    );
    bench.settle();
    let carol = bench.join("room", "carol");
    bench.settle();
    bench.send(10);
    bench.run(5);
    assert_eq!(bench.clients[bob].total_received(), 0);
    assert!(bench.clients[carol].total_received() >= 8);
}

#[test]
fn subscribing_to_an_unknown_track_is_an_error() {
    let mut bench = Bench::new();
    let bob = bench.join("room", "bob");
    bench.request(
        bob,
        MediaRequest::Subscribe {
            track_ids: vec!["nobody-0".into()],
        },
    );
    bench.run(1);
    assert_eq!(
        bench.clients[bob].errors(),
        vec![MediaErrorCode::UnknownTrack]
    );
}

#[test]
fn subscribing_without_the_grant_is_forbidden() {
    let mut bench = Bench::new();
    let grants = MediaGrants {
        publish: true,
        subscribe: false,
    };
    let bob = bench.join_with("room", "bob", grants, Codecs::OpusAndVp8);
    bench.request(
        bob,
        MediaRequest::Subscribe {
            track_ids: vec!["x".into()],
        },
    );
    bench.run(1);
    assert_eq!(bench.clients[bob].errors(), vec![MediaErrorCode::Forbidden]);
}

#[test]
fn a_client_offer_crossing_a_server_offer_wins_and_the_server_reoffers() {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    bench.clients[bob].hold_offers = true;
    bench.publish(alice, &[TrackKind::Audio]);
    bench.stabilize();
    bench.send(2);
    bench.run_until(100, "the server offers alice's track to bob", |b| {
        b.clients[bob].offers() >= 1
    });
    // bob publishes while the server's offer is outstanding: glare.
    bench.publish(bob, &[TrackKind::Audio]);
    bench.clients[bob].hold_offers = false;
    bench.settle();
    assert!(
        bench.clients[bob].errors().is_empty(),
        "{:?}",
        bench.clients[bob].errors()
    );
    assert!(
        bench.clients[bob].offers() >= 2,
        "the server offered again after answering"
    );
    bench.send(20);
    bench.run(5);
    let from_alice = bench.clients[bob].track_id("alice", TrackKind::Audio);
    let from_bob = bench.clients[alice].track_id("bob", TrackKind::Audio);
    assert!(bench.clients[bob].received_on(&from_alice) >= 15);
    assert!(bench.clients[alice].received_on(&from_bob) >= 15);
}

#[test]
fn a_codec_the_leg_did_not_negotiate_is_not_playable() {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    let vp9 = bench.join_with("room", "vp9", MediaGrants::default(), Codecs::OpusAndVp9);
    // vp9's leg declares its video codecs (VP9 only) in an offer of its own.
    bench.declare_video(vp9);
    bench.settle();
    bench.publish(alice, &[TrackKind::Audio, TrackKind::Video]);
    bench.settle();
    let video = bench.clients[vp9].announced("alice", TrackKind::Video);
    let last = video.last().expect("vp9 is told about alice's video");
    assert!(!last.playable);
    assert!(
        last.reason.as_deref().unwrap_or("").contains("VP8"),
        "{:?}",
        last.reason
    );
    bench.send(20);
    bench.run(5);
    let audio = bench.clients[vp9].track_id("alice", TrackKind::Audio);
    assert!(
        bench.clients[vp9].received_on(&audio) >= 15,
        "audio still plays"
    );
    let total = bench.clients[vp9].total_received();
    assert_eq!(
        total,
        bench.clients[vp9].received_on(&audio),
        "and only audio"
    );
}

#[test]
fn an_answer_without_a_server_offer_is_refused() {
    let mut bench = Bench::new();
    let bob = bench.join("room", "bob");
    bench.request(
        bob,
        MediaRequest::Answer {
            sdp: "v=0\r\n".into(),
        },
    );
    bench.run(1);
    assert_eq!(
        bench.clients[bob].errors(),
        vec![MediaErrorCode::WrongState]
    );
}

#[test]
fn bad_offers_are_refused_before_they_touch_the_connection() {
    let mut bench = Bench::new();
    let bob = bench.join("room", "bob");
    bench.request(
        bob,
        MediaRequest::Offer {
            sdp: "not sdp".into(),
            tracks: vec![],
        },
    );
    let pcmu_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n";
    bench.request(
        bob,
        MediaRequest::Offer {
            sdp: pcmu_only.into(),
            tracks: vec![],
        },
    );
    bench.run(1);
    assert_eq!(
        bench.clients[bob].errors(),
        vec![MediaErrorCode::BadSdp, MediaErrorCode::NoCommonCodec]
    );
    // The connection is untouched: a good offer still works.
    let alice = bench.join("room", "alice");
    bench.publish(bob, &[TrackKind::Audio]);
    bench.settle();
    bench.send(10);
    bench.run(5);
    assert!(bench.clients[alice].total_received() >= 8);
}

/// Copies of `sdp` the stack itself refuses in `set_remote_description` (they pass the
/// server's own SDP checks): what is wrong with each, the copy, and whether the stack also
/// refuses it in a re-offer (it only checks the fingerprint and payload types the first time).
fn refused_variants(sdp: &str) -> Vec<(&'static str, String, bool)> {
    let edit = |f: &dyn Fn(&str) -> Option<String>| -> String {
        sdp.split("\r\n")
            .filter_map(f)
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let drop = |prefix: &'static str| move |l: &str| (!l.starts_with(prefix)).then(|| l.to_owned());
    vec![
        ("no fingerprint", edit(&drop("a=fingerprint:")), false),
        ("no ufrag", edit(&drop("a=ice-ufrag:")), true),
        ("no mid", edit(&drop("a=mid:")), true),
        (
            "bad payload type",
            edit(&|l: &str| Some(l.replace("a=rtpmap:111 ", "a=rtpmap:1111 "))),
            false,
        ),
    ]
}

/// bob offers a new audio track, first as the refused copy `variant` of the offer (in his
/// first offer, or in a re-offer), then as the real one: that one is answered and media flows
/// both ways.
fn refused_then_valid_offer(first: bool, variant: usize) {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    if !first {
        bench.publish(alice, &[TrackKind::Audio]);
        bench.settle();
    }
    let now = bench.now;
    let client = &mut bench.clients[bob];
    client.add_track(TrackKind::Audio);
    let sdp = client.offer(now);
    let tracks = client.declared_sources();
    let (what, bad, in_reoffer) = refused_variants(&sdp).swap_remove(variant);
    if !first && !in_reoffer {
        return;
    }
    let bad = MediaRequest::Offer {
        sdp: bad,
        tracks: tracks.clone(),
    };
    bench.request(bob, bad);
    bench.run(1);
    assert_eq!(
        bench.clients[bob].errors(),
        vec![MediaErrorCode::BadSdp],
        "{what} (first offer: {first})"
    );
    bench.request(bob, MediaRequest::Offer { sdp, tracks });
    bench.settle();
    assert_eq!(
        bench.clients[bob].errors(),
        vec![MediaErrorCode::BadSdp],
        "after {what} (first offer: {first}) the valid offer is answered"
    );
    bench.send(20);
    bench.run(5);
    let from_bob = bench.clients[alice].track_id("bob", TrackKind::Audio);
    assert!(
        bench.clients[alice].received_on(&from_bob) >= 15,
        "bob's track reaches alice after {what} (first offer: {first})"
    );
    if !first {
        let from_alice = bench.clients[bob].track_id("alice", TrackKind::Audio);
        assert!(bench.clients[bob].received_on(&from_alice) >= 15);
    }
}

#[test]
fn a_first_offer_the_stack_refuses_leaves_the_leg_as_it_was() {
    for variant in 0..4 {
        refused_then_valid_offer(true, variant);
    }
}

#[test]
fn a_reoffer_the_stack_refuses_leaves_the_leg_as_it_was() {
    for variant in 0..4 {
        refused_then_valid_offer(false, variant);
    }
}
