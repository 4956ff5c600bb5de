//! Lossy links (issue 10 item 11): a lost DTLS flight is sent again although the peer repeats
//! its own previous flight (which silences the `rtc` stack's retransmit timer unless the
//! repeat is held back: `rtp::dtls_repeat`), and every leg of a call comes up under random
//! loss on every datagram, both ways, seeded so that a failing seed replays exactly. A
//! handshake that fails anyway is reported to the client (`media-failed`) and rebuilt.

use super::harness::{random_loss, Bench, LossRule, TICK};
use crate::protocol::{MediaErrorCode, TrackKind};
use crate::rtp::dtls_repeat::message;
use std::time::Duration;

const CLIENT_KEY_EXCHANGE: u8 = 16;

/// Whether `datagram` carries an unencrypted DTLS handshake record with message `typ`.
fn carries_handshake(datagram: &[u8], typ: u8) -> bool {
    let mut rest = datagram;
    while rest.len() >= 13 + 12 {
        let len = u16::from_be_bytes([rest[11], rest[12]]) as usize;
        if rest[0] == 22 && rest[3..5] == [0, 0] && rest[13] == typ {
            return true;
        }
        rest = rest.get(13 + len..).unwrap_or_default();
    }
    false
}

/// Loses the first `n` datagrams (toward a client when `to_client`) carrying handshake
/// message `typ`; nothing else.
fn lose_first(n: usize, to_client: bool, typ: u8) -> LossRule {
    let mut left = n;
    Box::new(move |toward_client, datagram| {
        let hit = left > 0 && toward_client == to_client && carries_handshake(datagram, typ);
        left -= hit as usize;
        hit
    })
}

/// Alice alone publishes audio and video over a network with `loss`; the fake time until
/// her leg is connected, `None` if not within `limit`.
fn connect_one(loss: LossRule, limit: Duration) -> Option<Duration> {
    let mut bench = Bench::new();
    bench.loss = Some(loss);
    let start = bench.now;
    let alice = bench.join("room", "alice");
    bench.publish(alice, &[TrackKind::Audio, TrackKind::Video]);
    for _ in 0..limit.as_millis() / TICK.as_millis() {
        if bench.clients[alice].connected {
            return Some(bench.now - start);
        }
        bench.step();
    }
    None
}

/// Alice publishes audio and video to Bob over a network with `loss`; the fake time until
/// both legs are connected, `None` if not within `limit`.
fn connect_call(loss: LossRule, limit: Duration) -> Option<Duration> {
    let mut bench = Bench::new();
    bench.loss = Some(loss);
    let start = bench.now;
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    bench.publish(alice, &[TrackKind::Audio, TrackKind::Video]);
    for _ in 0..limit.as_millis() / TICK.as_millis() {
        if bench.clients[alice].connected && bench.clients[bob].connected {
            return Some(bench.now - start);
        }
        let now = bench.now;
        bench.clients[alice].send_packet(now, None);
        bench.step();
    }
    None
}

#[test]
fn a_lost_server_flight_4_is_sent_again_although_the_client_repeats_flight_3() {
    let took = connect_one(
        lose_first(1, true, message::SERVER_HELLO),
        Duration::from_secs(4),
    );
    assert!(
        took.is_some(),
        "the leg whose flight 4 was lost never connected: the client's repeated flight 3 \
         cancelled the server's retransmit timer"
    );
}

#[test]
fn a_lost_client_flight_5_is_sent_again_although_the_server_repeats_flight_4() {
    let took = connect_one(
        lose_first(2, false, CLIENT_KEY_EXCHANGE),
        Duration::from_secs(4),
    );
    assert!(
        took.is_some(),
        "the leg whose flight 5 was lost never connected: the server's repeated flight 4 \
         cancelled the client's retransmit timer"
    );
}

#[test]
fn every_leg_connects_under_random_loss_of_5_and_20_percent() {
    let mut failed = Vec::new();
    for percent in [5, 20] {
        for seed in 0..40 {
            let took = connect_call(random_loss(percent, seed), Duration::from_secs(30));
            if took.is_none() {
                failed.push((percent, seed));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "(loss %, seed) of calls not connected in 30 s: {failed:?}"
    );
}

#[test]
fn a_handshake_that_gives_up_is_reported_and_the_leg_rebuilt() {
    let mut bench = Bench::new();
    // Every flight 4 is lost: the server retransmits it until the stack gives up.
    bench.loss = Some(lose_first(usize::MAX, true, message::SERVER_HELLO));
    let alice = bench.join("room", "alice");
    bench.publish(alice, &[TrackKind::Audio]);
    let start = bench.now;
    let old_ufrag = bench.server_ufrag(alice);
    bench.run_until(12_000 / TICK.as_millis() as usize, "alice is told", |b| {
        b.clients[alice]
            .errors()
            .contains(&MediaErrorCode::MediaFailed)
    });
    assert!(
        bench.now - start >= Duration::from_secs(7),
        "not before the flight's retransmissions ran out"
    );
    let peer = bench.state.peer(bench.clients[alice].key).expect("rebuilt");
    assert_ne!(
        peer.ufrag, old_ufrag,
        "a fresh connection waits for her next offer"
    );
}

#[test]
fn a_connected_call_stays_connected_at_20_percent_loss() {
    let mut dropped_out = Vec::new();
    for seed in 0..10 {
        let mut bench = Bench::new();
        bench.loss = Some(random_loss(20, seed));
        let alice = bench.join("room", "alice");
        let bob = bench.join("room", "bob");
        bench.publish(alice, &[TrackKind::Audio, TrackKind::Video]);
        let both = |b: &Bench| b.clients[alice].connected && b.clients[bob].connected;
        let mut up_for = 0;
        // Until both are up, then 20 s of media in which no leg may leave `connected` (rtc
        // hears only STUN responses, so the clients' consent checks must be frequent enough
        // for this loss).
        for _ in 0..50_000 / TICK.as_millis() {
            let now = bench.now;
            bench.clients[alice].send_packet(now, None);
            bench.step();
            if both(&bench) {
                up_for += 1;
            } else if up_for > 0 {
                dropped_out.push(seed);
                break;
            }
            if up_for == 20_000 / TICK.as_millis() {
                break;
            }
        }
        assert!(up_for > 0, "seed {seed}: the call never connected");
    }
    assert!(
        dropped_out.is_empty(),
        "seeds whose call left `connected`: {dropped_out:?}"
    );
}
