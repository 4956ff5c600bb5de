//! Negotiation is budgeted per shard turn: an offer storm from participants alone in their
//! own rooms is paced (a bounded number of descriptions applied per turn, a waiting offer
//! superseded by the next), while another room's media keeps flowing every turn and its
//! newcomer's negotiation is served in turn, not after the storm.

use super::harness::Bench;
use crate::media::backlog::NEGOTIATIONS_PER_TURN;
use crate::protocol::{MediaEvent, MediaRequest, TrackKind};

const ATTACKERS: usize = 8;
const OFFERS_PER_TURN_EACH: usize = 3;
const STEPS: usize = 100;

fn answers(bench: &Bench, c: usize) -> usize {
    bench.clients[c]
        .log
        .iter()
        .filter(|e| matches!(e, MediaEvent::Answer { .. }))
        .count()
}

#[test]
fn an_offer_storm_is_paced_and_never_holds_back_another_room() {
    let mut bench = Bench::new();
    let alice = bench.join("call", "alice");
    let bob = bench.join("call", "bob");
    bench.publish(alice, &[TrackKind::Audio, TrackKind::Video]);
    bench.settle();
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);

    // Each attacker is alone in its room and sends the same valid two-track offer, several
    // per turn, without ever applying an answer.
    let mut storm = Vec::new();
    for i in 0..ATTACKERS {
        let c = bench.join(&format!("storm-{i}"), &format!("mallory-{i}"));
        let now = bench.now;
        let client = &mut bench.clients[c];
        client.passive = true;
        client.add_track(TrackKind::Audio);
        client.add_track(TrackKind::Video);
        let sdp = client.offer(now);
        storm.push((c, client.key, sdp));
    }
    let carol = bench.join("call", "carol");
    let received_before = bench.clients[bob].received_on(&video);
    let mut carol_subscribed_at = None;
    for step in 0..STEPS {
        let now = bench.now;
        for (_, key, sdp) in &storm {
            for _ in 0..OFFERS_PER_TURN_EACH {
                let offer = MediaRequest::Offer {
                    sdp: sdp.clone(),
                    tracks: Vec::new(),
                };
                bench.state.handle_request(*key, offer, now);
            }
        }
        bench.clients[alice].send_packet(now, None);
        bench.step();
        // Audio: its first packet is not held back by the keyframe wait of a new video leg.
        let carol_audio = bench.clients[carol].announced("alice", TrackKind::Audio);
        if carol_subscribed_at.is_none()
            && !carol_audio.is_empty()
            && bench.clients[carol].received_on(&carol_audio[0].track_id) > 0
        {
            carol_subscribed_at = Some(step);
        }
    }

    let forwarded = bench.clients[bob].received_on(&video) - received_before;
    assert!(
        forwarded >= STEPS as u64 - 2,
        "bob received {forwarded} of {STEPS} video packets during the storm"
    );
    let served: usize = storm.iter().map(|(c, _, _)| answers(&bench, *c)).sum();
    let sent = ATTACKERS * OFFERS_PER_TURN_EACH * STEPS;
    assert!(
        served <= STEPS * NEGOTIATIONS_PER_TURN as usize,
        "{served} of {sent} storm offers answered in {STEPS} turns: more than the budget"
    );
    assert!(
        served >= STEPS / 2,
        "the storm is paced, not ignored: {served}"
    );
    for (c, _, _) in &storm {
        assert!(answers(&bench, *c) >= 2, "every attacker is served in turn");
    }
    let at = carol_subscribed_at.expect("carol's negotiation completed during the storm");
    assert!(
        at <= 40,
        "carol receives alice's audio {at} turns into the storm (round-robin serves her early)"
    );
    let counters = bench.state.counters_mut();
    assert!(counters.offers_superseded > 0 && counters.requests_deferred > 0);
    assert_eq!(counters.requests_refused, 0);
}

#[test]
fn a_participant_that_leaves_takes_its_waiting_requests_with_it() {
    let mut bench = Bench::new();
    let mallory = bench.join("storm", "mallory");
    let now = bench.now;
    let client = &mut bench.clients[mallory];
    client.passive = true;
    client.add_track(TrackKind::Audio);
    let sdp = client.offer(now);
    let key = client.key;
    for _ in 0..10 {
        let offer = MediaRequest::Offer {
            sdp: sdp.clone(),
            tracks: Vec::new(),
        };
        bench.state.handle_request(key, offer, now);
    }
    assert!(bench.state.poll_timeout().is_some_and(|t| t <= now));
    bench.leave(mallory);
    bench.run(3);
    assert_eq!(
        answers(&bench, mallory),
        NEGOTIATIONS_PER_TURN as usize,
        "what waited is never applied once its participant left"
    );
    assert_eq!(bench.state.counters_mut().requests_deferred, 1);
    assert_eq!(bench.state.counters_mut().offers_superseded, 7);
}
