//! Active speakers (issue 13 item 4) through the shard core: publishers whose audio carries
//! RFC 6464 levels, a listener told `active-speakers` loudest first, the level forwarded on
//! each subscriber leg at its own extension id (fast path and stack path), nothing told to
//! another room, and a publisher who leaves dropping out of the list.

use super::harness::Bench;
use crate::config::ShardLimits;
use crate::protocol::{MediaEvent, MediaRequest, TrackKind};

/// The `active-speakers` lists client `c` was sent, as peer ids.
fn speaker_lists(bench: &Bench, c: usize) -> Vec<Vec<String>> {
    bench.clients[c]
        .log
        .iter()
        .filter_map(|e| match e {
            MediaEvent::ActiveSpeakers { speakers } => {
                Some(speakers.iter().map(|s| s.peer_id.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

fn last_list(bench: &Bench, c: usize) -> Option<Vec<String>> {
    speaker_lists(bench, c).pop()
}

fn speakers_call(fast_path: bool) {
    let mut bench = Bench::with_limits(ShardLimits {
        fast_path,
        ..ShardLimits::default()
    });
    bench.audio_levels = true;
    let loud = bench.join("room", "loud");
    let quiet = bench.join("room", "quiet");
    let listener = bench.join("room", "listener");
    let elsewhere = bench.join("other", "elsewhere");
    bench.clients[loud].audio_level = Some(12);
    bench.clients[quiet].audio_level = Some(33);
    bench.publish(loud, &[TrackKind::Audio]);
    bench.publish(quiet, &[TrackKind::Audio]);
    bench.publish(elsewhere, &[TrackKind::Audio]);
    bench.settle();
    let want = vec!["loud".to_string(), "quiet".to_string()];
    for _ in 0..400 {
        if last_list(&bench, listener).as_ref() == Some(&want) {
            break;
        }
        bench.send(1);
    }
    assert_eq!(last_list(&bench, listener), Some(want.clone()));
    for c in [loud, quiet] {
        assert_eq!(last_list(&bench, c), Some(want.clone()), "every member");
    }
    assert!(speaker_lists(&bench, elsewhere).is_empty(), "other room");
    // The level reaches the listener on each track, at its leg's extension id.
    for (publisher, level) in [("loud", 12), ("quiet", 33)] {
        let track = bench.clients[listener].track_id(publisher, TrackKind::Audio);
        let levels = &bench.clients[listener].audio_levels_in;
        let got = levels.get(&track).and_then(|l| l.last().copied());
        assert_eq!(got, Some(level), "{publisher}'s forwarded audio level");
    }
    let key = bench.clients[listener].key;
    let on_fast_path = bench.state.peer(key).is_some_and(|p| p.fast.is_some());
    assert_eq!(on_fast_path, fast_path);
    assert!(bench.state.counters_mut().active_speaker_changes >= 1);
    // The loud one leaves: the list shrinks to the quiet one.
    bench.leave(loud);
    for _ in 0..400 {
        if last_list(&bench, listener) == Some(vec!["quiet".to_string()]) {
            break;
        }
        bench.send(1);
    }
    assert_eq!(last_list(&bench, listener), Some(vec!["quiet".to_string()]));
}

#[test]
fn the_loudest_publisher_is_named_first_on_the_fast_path() {
    speakers_call(true);
}

#[test]
fn the_loudest_publisher_is_named_first_on_the_stack_path() {
    speakers_call(false);
}

#[test]
fn a_member_who_joins_is_told_who_speaks() {
    let mut bench = Bench::new();
    bench.audio_levels = true;
    let alice = bench.join("room", "alice");
    bench.clients[alice].audio_level = Some(20);
    bench.publish(alice, &[TrackKind::Audio]);
    bench.settle();
    bench.send(150);
    assert_eq!(last_list(&bench, alice), Some(vec!["alice".to_string()]));
    let bob = bench.join("room", "bob");
    bench.run(1);
    assert_eq!(last_list(&bench, bob), Some(vec!["alice".to_string()]));
}

#[test]
fn a_speaker_who_mutes_drops_out_at_once() {
    let mut bench = Bench::new();
    bench.audio_levels = true;
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    bench.clients[alice].audio_level = Some(20);
    bench.publish(alice, &[TrackKind::Audio]);
    bench.settle();
    bench.send(150);
    assert_eq!(last_list(&bench, bob), Some(vec!["alice".to_string()]));
    let track_id = bench.clients[alice].track_id("alice", TrackKind::Audio);
    bench.request(
        alice,
        MediaRequest::Mute {
            track_id,
            muted: true,
        },
    );
    // One detector tick (250 ms = 50 steps) and the list is empty.
    bench.send(60);
    assert_eq!(last_list(&bench, bob), Some(vec![]));
}
