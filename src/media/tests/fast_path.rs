//! The forwarding fast path (issue 12) must not change what subscribers receive: the same call
//! over the same lossy network, with the fast path on and off, delivers every payload once
//! recovered, with continuous sequence numbers and timestamps, and retransmissions answer the
//! subscriber's NACKs either way, whichever SRTP profile (AES-128-GCM, or AES-CM-HMAC-SHA1-80
//! as Chromium negotiates) the leg's DTLS chose.

use super::harness::{Bench, LossRule};
use crate::config::ShardLimits;
use crate::protocol::TrackKind;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;

/// Loses `percent` % of the SRTP (not SRTCP, DTLS or STUN) datagrams toward clients.
fn rtp_loss_toward_clients(percent: u32, seed: u64) -> LossRule {
    let mut rng = StdRng::seed_from_u64(seed);
    Box::new(move |toward_client, d| {
        let rtp = d.len() > 12 && (128..192).contains(&d[0]) && !(192..224).contains(&d[1]);
        toward_client && rtp && rng.random_range(0..100) < percent
    })
}

/// What bob's leg received of alice's video: the packets, the server's retransmissions and
/// whether bob's leg was on the fast path.
struct Received {
    packets: Vec<(u16, u32, Bytes)>,
    retransmitted: u64,
    fast: bool,
    sent: usize,
}

fn video_call(fast_path: bool) -> Received {
    video_call_offering(fast_path, Vec::new())
}

/// [`video_call`] with clients offering only `srtp_profiles` (empty: the stack's default).
fn video_call_offering(fast_path: bool, srtp_profiles: Vec<SrtpProtectionProfile>) -> Received {
    let mut bench = Bench::with_limits(ShardLimits {
        fast_path,
        ..ShardLimits::default()
    });
    bench.srtp_profiles = srtp_profiles;
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    bench.publish(alice, &[TrackKind::Video]);
    bench.settle();
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.send_from(alice, TrackKind::Video, 5);
    bench.run(20);
    let _ = crate::media::stats::wire::take();
    let before = bench.clients[bob].packets.get(&video).map_or(0, Vec::len);
    bench.loss = Some(rtp_loss_toward_clients(10, 7));
    bench.send_from(alice, TrackKind::Video, 200);
    bench.loss = None;
    bench.run(200);
    let packets = bench.clients[bob].packets[&video][before..].to_vec();
    Received {
        packets,
        retransmitted: crate::media::stats::wire::take().retransmitted_packets,
        fast: bench
            .state
            .peer(bench.clients[bob].key)
            .unwrap()
            .fast
            .is_some(),
        sent: 200,
    }
}

/// The packets in sequence order (first copy of each), checked continuous from the first:
/// one sequence number and 3000 ticks apart. Returns the payloads.
fn continuous_payloads(r: &Received) -> Vec<Bytes> {
    let mut by_seq = r.packets.clone();
    let (seq0, ts0) = (by_seq[0].0, by_seq[0].1);
    by_seq.sort_by_key(|(seq, _, _)| seq.wrapping_sub(seq0));
    by_seq.dedup_by_key(|(seq, _, _)| *seq);
    for (i, (seq, ts, _)) in by_seq.iter().enumerate() {
        let step = seq.wrapping_sub(seq0);
        assert_eq!(step as usize, i, "sequence numbers continuous");
        assert_eq!(
            ts.wrapping_sub(ts0),
            3000 * step as u32,
            "timestamps follow the sequence"
        );
    }
    // The payload names the publisher's packet: it advances with the leg's numbering.
    let origin = |p: &Bytes| u16::from_be_bytes([p[8], p[9]]);
    let first = origin(&by_seq[0].2);
    for (i, (_, _, p)) in by_seq.iter().enumerate() {
        assert_eq!(
            origin(p).wrapping_sub(first) as usize,
            i,
            "payloads in order"
        );
    }
    by_seq.into_iter().map(|(_, _, p)| p).collect()
}

/// The payloads with the publisher's packet number (random per run) blanked.
fn contents(payloads: Vec<Bytes>) -> Vec<Vec<u8>> {
    payloads
        .into_iter()
        .map(|p| {
            let mut v = p.to_vec();
            v[8..10].fill(0);
            v
        })
        .collect()
}

#[test]
fn the_fast_path_delivers_what_the_stack_delivers() {
    let fast = video_call(true);
    let slow = video_call(false);
    assert!(fast.fast, "bob's leg is on the fast path");
    assert!(!slow.fast, "with --fast-path false it is not");
    for r in [&fast, &slow] {
        assert!(
            r.retransmitted >= 5,
            "lost packets were resent ({})",
            r.retransmitted
        );
        assert_eq!(
            continuous_payloads(r).len(),
            r.sent,
            "every packet recovered"
        );
    }
    assert!(
        contents(continuous_payloads(&fast)) == contents(continuous_payloads(&slow)),
        "the same payloads in the same order"
    );
}

#[test]
fn a_leg_negotiating_aes_cm_takes_the_fast_path_and_receives_the_same() {
    let cm = || vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80];
    let fast = video_call_offering(true, cm());
    let slow = video_call_offering(false, cm());
    assert!(fast.fast, "bob's AES-CM leg is on the fast path");
    assert!(!slow.fast, "with --fast-path false it is not");
    for r in [&fast, &slow] {
        assert!(
            r.retransmitted >= 5,
            "lost packets resent ({})",
            r.retransmitted
        );
        assert_eq!(
            continuous_payloads(r).len(),
            r.sent,
            "every packet recovered"
        );
    }
    let gcm = video_call(true);
    assert!(
        contents(continuous_payloads(&fast)) == contents(continuous_payloads(&slow))
            && contents(continuous_payloads(&fast)) == contents(continuous_payloads(&gcm)),
        "the same payloads in the same order as on the stack path and with AES-GCM"
    );
}

#[test]
fn the_fast_path_sends_where_the_stack_sends_and_follows_the_selected_pair() {
    let (mut bench, _alice, bob) = Bench::call(&[TrackKind::Video]);
    let server = bench.server;
    let client = bench.clients[bob].addr;
    let key = bench.clients[bob].key;
    let peer = bench.state.peer_mut(key).expect("bob's leg");
    let learned = peer
        .route
        .expect("a route learned from the stack's own datagrams");
    assert_eq!((learned.local, learned.to), (server, client));
    let selected = crate::media::fast::selected_route(peer, &[server]).expect("selected pair");
    assert_eq!(selected, learned);
    assert!(
        crate::media::fast::selected_route(peer, &[]).is_none(),
        "a pair on no socket of ours is not followed"
    );
}
