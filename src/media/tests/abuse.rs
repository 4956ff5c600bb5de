//! Hostile and broken peers (issue 10, items 9, 10 and 7): forged STUN requests that name a
//! connection's ufrag without its password, a source spraying addresses, a client whose DTLS
//! flights never arrive, and what the server puts in the SDP and on a leg before it is up.

use super::harness::{Bench, TICK};
use crate::media::stats::DropReason;
use crate::media::stun_auth::tests::signed_binding;
use crate::protocol::{MediaErrorCode, MediaEvent, TrackKind};
use std::net::SocketAddr;
use std::time::Duration;

/// The server-side ICE ufrag and password of client `c`'s connection.
fn credentials(bench: &Bench, c: usize) -> (String, String) {
    let peer = bench.state.peer(bench.clients[c].key).expect("peer");
    (peer.ufrag.clone(), peer.pwd.clone())
}

fn dropped(bench: &mut Bench, reason: DropReason) -> u64 {
    bench.state.counters_mut().dropped[reason as usize]
}

/// Alice publishes audio and is connected.
fn alice_publishing() -> (Bench, usize) {
    let mut bench = Bench::new();
    let alice = bench.join("room", "alice");
    bench.publish(alice, &[TrackKind::Audio]);
    bench.settle();
    (bench, alice)
}

#[test]
fn a_forged_stun_request_does_not_take_the_address_of_a_future_client() {
    let (mut bench, alice) = alice_publishing();
    let (ufrag, _) = credentials(&bench, alice);
    // One datagram from the address bob is about to use, naming alice's ufrag, signed with a
    // password the attacker does not have.
    let forged = signed_binding(&format!("{ufrag}:evil"), "not-the-password-of-alice");
    let (server, from, now) = (bench.server, bench.next_client_addr(), bench.now);
    bench.state.handle_datagram(server, from, &forged, now);
    assert_eq!(dropped(&mut bench, DropReason::Unauthenticated), 1);
    let bob = bench.join("room", "bob");
    bench.settle();
    let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
    bench.send(20);
    bench.run(5);
    assert!(
        bench.clients[bob].received_on(&audio) >= 15,
        "bob receives alice's audio"
    );
}

#[test]
fn spoofed_sources_leave_the_address_table_bounded() {
    let (mut bench, alice) = alice_publishing();
    let (ufrag, pwd) = credentials(&bench, alice);
    let before = bench.state.address_count();
    let (server, now) = (bench.server, bench.now);
    let spoofed = |i: u32| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9));
    let forged = signed_binding(&format!("{ufrag}:evil"), "not-the-password-of-alice");
    for i in 0..10_000 {
        bench
            .state
            .handle_datagram(server, spoofed(i), &forged, now);
    }
    assert_eq!(bench.state.address_count(), before, "nothing learned");
    assert_eq!(dropped(&mut bench, DropReason::Unauthenticated), 10_000);
    // A client that has its own password can sign; it still gets a bounded number of addresses.
    for i in 0..1_000 {
        let signed = signed_binding(&format!("{ufrag}:self"), &pwd);
        bench
            .state
            .handle_datagram(server, spoofed(100_000 + i), &signed, now);
    }
    let cap = crate::config::ShardLimits::default().addrs_per_peer;
    assert!(bench.state.address_count() <= cap);
    assert!(dropped(&mut bench, DropReason::AddressLimit) >= 1_000 - cap as u64);
    // The addresses that go silent are forgotten; alice's live one stays, and so does her media.
    let limit = crate::config::ShardLimits::default().addr_idle;
    let idle = limit + limit / 4 + Duration::from_secs(1);
    for _ in 0..(idle.as_millis() / TICK.as_millis() / 20) {
        bench.send(20);
    }
    assert_eq!(bench.state.address_count(), 1, "only alice's own address");
    assert!(bench.clients[alice].connected);
}

#[test]
fn a_leg_whose_dtls_never_completes_is_failed_and_nothing_is_sent_into_it() {
    let (mut bench, _alice) = alice_publishing();
    let bob = bench.join("room", "bob");
    bench.clients[bob].drop_dtls = true;
    let joined = bench.now;
    let failed = |b: &Bench| {
        b.clients[bob]
            .errors()
            .contains(&MediaErrorCode::MediaFailed)
    };
    let old_ufrag = credentials(&bench, bob).0;
    let limit = Duration::from_secs(30);
    while !failed(&bench) {
        assert!(
            bench.now - joined < limit,
            "bob is not told within {limit:?}"
        );
        bench.send(1);
        assert_eq!(
            bench.state.counters_mut().forwarded,
            0,
            "nothing is forwarded into a leg whose DTLS is not up"
        );
    }
    assert!(
        bench.now - joined >= Duration::from_secs(20),
        "not before the deadline"
    );
    assert!(dropped(&mut bench, DropReason::NotConnected) > 0);
    assert_eq!(bench.clients[bob].total_received(), 0);
    let (new_ufrag, _) = credentials(&bench, bob);
    assert_ne!(new_ufrag, old_ufrag, "the leg was torn down and rebuilt");
}

#[test]
fn the_server_sdp_has_no_rtcp_component_candidates() {
    let (mut bench, alice) = alice_publishing();
    let bob = bench.join("room", "bob");
    bench.settle();
    let mut seen = 0;
    for c in [alice, bob] {
        for event in &bench.clients[c].log {
            let (MediaEvent::Offer { sdp, .. } | MediaEvent::Answer { sdp }) = event else {
                continue;
            };
            seen += 1;
            let candidates: Vec<&str> = sdp
                .lines()
                .filter(|l| l.starts_with("a=candidate:"))
                .collect();
            assert!(!candidates.is_empty(), "{sdp}");
            for line in candidates {
                let component = line.split_whitespace().nth(1);
                assert_eq!(component, Some("1"), "{line}");
            }
        }
    }
    assert!(seen >= 2);
}

#[test]
fn a_client_that_closes_its_connection_is_noticed_within_two_seconds() {
    let (mut bench, alice) = alice_publishing();
    let bob = bench.join("room", "bob");
    bench.settle();
    let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
    let _ = rtc::sansio::Protocol::close(&mut bench.clients[alice].pc);
    let steps = (Duration::from_secs(2).as_millis() / TICK.as_millis()) as usize;
    bench.run_until(steps, "bob is told alice's audio left", |b| {
        b.clients[bob].log.iter().any(
            |e| matches!(e, MediaEvent::TrackUnpublished { track_id, .. } if *track_id == audio),
        )
    });
    assert!(bench.clients[alice]
        .errors()
        .contains(&MediaErrorCode::MediaFailed));
}

/// Resident memory of this process, bytes (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A measurement, run by hand (`-- --ignored --nocapture`): what one million forged STUN
/// requests from distinct sources leave behind in the shard.
#[test]
#[ignore]
fn measure_one_million_forged_sources() {
    let (mut bench, alice) = alice_publishing();
    let (ufrag, _) = credentials(&bench, alice);
    let forged = signed_binding(&format!("{ufrag}:evil"), "not-the-password-of-alice");
    let (server, now) = (bench.server, bench.now);
    let before = rss_bytes();
    for i in 0..1_000_000u32 {
        let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9));
        bench.state.handle_datagram(server, from, &forged, now);
        if i % 4096 == 0 {
            bench.state.finish_turn(now);
            bench.state.drain_transmits().for_each(drop);
        }
    }
    bench.state.finish_turn(now);
    eprintln!(
        "1M forged sources: {} addresses remembered, RSS +{} MB",
        bench.state.address_count(),
        rss_bytes().saturating_sub(before) / 1_000_000
    );
}

/// A measurement, run by hand (`-- --ignored --nocapture`, alone: it installs the global log
/// subscriber): the stack's warnings about a subscriber leg whose DTLS never comes up while its
/// publisher sends 50 audio packets per second, over 10 s of fake time, written to
/// `$DEAD_LEG_LOG` (default `/tmp/dead-leg.log`) for counting.
#[test]
#[ignore]
fn measure_dead_leg_warnings() {
    let path = std::env::var("DEAD_LEG_LOG").unwrap_or_else(|_| "/tmp/dead-leg.log".into());
    let file = std::fs::File::create(&path).expect("log file");
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    let (mut bench, alice) = alice_publishing();
    let bob = bench.join("room", "bob");
    bench.clients[bob].drop_dtls = true;
    bench.run(400);
    tracing::warn!("measurement starts");
    let start = bench.now;
    while bench.now - start < Duration::from_secs(10) {
        bench.send_from(alice, TrackKind::Audio, 1);
        bench.run(3);
    }
    tracing::warn!("measurement ends");
    eprintln!("log in {path}");
}
