//! Bandwidth estimation on a real subscriber leg (issue 13 item 2): a sans-IO `rtc` subscriber
//! that negotiated transport-cc sends TWCC feedback about what the fast path sent it, the leg's
//! estimate follows what it is forwarded, and a leg told it could take more probes with
//! padding the subscriber's stack accepts without any change to the media it receives.

use super::harness::Bench;
use crate::config::ShardLimits;
use crate::media::peer::PeerKey;
use crate::protocol::{MediaRequest, TrackKind};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;

/// alice publishes video to bob, whose client sends TWCC feedback; returns the bench, alice,
/// bob.
fn call() -> (Bench, usize, usize) {
    call_with(true)
}

fn call_with(fast_path: bool) -> (Bench, usize, usize) {
    call_offering(fast_path, Vec::new())
}

/// [`call_with`], the clients offering only `srtp_profiles` (empty: the stack's default).
fn call_offering(
    fast_path: bool,
    srtp_profiles: Vec<SrtpProtectionProfile>,
) -> (Bench, usize, usize) {
    let mut bench = Bench::with_limits(ShardLimits {
        fast_path,
        ..ShardLimits::default()
    });
    bench.twcc = true;
    bench.srtp_profiles = srtp_profiles;
    let alice = bench.join("room", "alice");
    let bob = bench.join("room", "bob");
    bench.publish(alice, &[TrackKind::Video]);
    bench.settle();
    (bench, alice, bob)
}

#[test]
fn the_subscribers_feedback_gives_its_leg_an_estimate_near_what_it_is_forwarded() {
    let (mut bench, alice, bob) = call();
    let key = bench.clients[bob].key;
    assert_eq!(bench.state.peer(key).unwrap().estimate_bps(), None);
    // Three seconds of video, one packet every 5 ms.
    bench.send_from(alice, TrackKind::Video, 600);
    let peer = bench.state.peer(key).unwrap();
    assert!(peer.fast.is_some(), "bob's leg is on the fast path");
    let sent = peer.bwe.sent_bps(bench.now);
    let estimate = peer
        .estimate_bps()
        .expect("an estimate from bob's feedback");
    assert!(sent > 100_000, "forwarded {sent} bit/s");
    assert!(
        (sent * 3 / 4..=sent * 2).contains(&estimate),
        "estimate {estimate} bit/s for {sent} bit/s forwarded"
    );
    let budget = peer.video_budget_bps(bench.now).unwrap();
    assert_eq!(budget, estimate, "no audio: all of it is video's");
}

#[test]
fn a_leg_on_the_stack_path_is_numbered_and_estimated_too() {
    let (mut bench, alice, bob) = call_with(false);
    let key = bench.clients[bob].key;
    bench.send_from(alice, TrackKind::Video, 600);
    let peer = bench.state.peer(key).unwrap();
    assert!(peer.fast.is_none(), "bob's leg is on the stack path");
    let sent = peer.bwe.sent_bps(bench.now);
    let estimate = peer
        .estimate_bps()
        .expect("an estimate from bob's feedback");
    assert!(
        (sent * 3 / 4..=sent * 2).contains(&estimate),
        "estimate {estimate} bit/s for {sent} bit/s sent"
    );
}

#[test]
fn a_leg_that_could_take_more_probes_and_its_estimate_climbs() {
    probes_and_climbs(call());
}

#[test]
fn a_leg_negotiating_aes_cm_like_chromium_probes_too() {
    let cm = vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80];
    let (bench, alice, bob) = call_offering(true, cm);
    let key = bench.clients[bob].key;
    assert!(
        bench.state.peer(key).unwrap().fast.is_some(),
        "on the fast path"
    );
    probes_and_climbs((bench, alice, bob));
}

/// bob's leg, told it could take 4 Mbit/s, probes: its estimate more than doubles and the
/// padding changes nothing of what bob's track receives.
fn probes_and_climbs((mut bench, alice, bob): (Bench, usize, usize)) {
    let key = bench.clients[bob].key;
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.send_from(alice, TrackKind::Video, 200);
    let start = bench.state.peer(key).unwrap().estimate_bps().unwrap();
    let received_before = bench.clients[bob].received[&video];
    could_take_4_mbits(&mut bench, key);
    bench.send_from(alice, TrackKind::Video, 2_000);
    let peer = bench.state.peer(key).unwrap();
    let sent_media = 2_000;
    let estimate = peer.estimate_bps().unwrap();
    assert!(
        estimate > start * 2,
        "probing left the estimate at {estimate} (from {start})"
    );
    // The padding reached bob's stack and changed nothing of what his track received.
    let received = bench.clients[bob].received[&video] - received_before;
    assert_eq!(received, sent_media, "bob's track got {received} packets");
}

/// bob's video is sparse (a packet every 50 ms) beside the padding of his leg's probes, so his
/// stack's TWCC feedback often names the RTX stream the padding rides on as its media source
/// (the SSRC of the last packet it recorded, as libwebrtc does too): the leg must still get
/// that feedback, and its estimate climbs.
#[test]
fn feedback_naming_the_padding_stream_reaches_the_leg_and_it_climbs() {
    let (mut bench, alice, bob) = call();
    let key = bench.clients[bob].key;
    let sparse = |bench: &mut Bench, packets: usize| {
        for _ in 0..packets {
            bench.send_from(alice, TrackKind::Video, 1);
            bench.run(9);
        }
    };
    sparse(&mut bench, 40);
    let start = bench.state.peer(key).unwrap().estimate_bps().unwrap();
    could_take_4_mbits(&mut bench, key);
    sparse(&mut bench, 300);
    let estimate = bench.state.peer(key).unwrap().estimate_bps().unwrap();
    assert!(
        estimate > start * 2,
        "probing left the estimate at {estimate} (from {start})"
    );
}

/// Tells the leg of `key` it could take 4 Mbit/s (as the layer selector does when a leg is
/// short of the layer it asked for).
fn could_take_4_mbits(bench: &mut Bench, key: PeerKey) {
    bench
        .state
        .peer_mut(key)
        .unwrap()
        .set_wanted_bps(Some(4_000_000));
}

/// `publisher` mutes or unmutes its track `track_id`.
fn mute(bench: &mut Bench, publisher: usize, track_id: &str, muted: bool) {
    let track_id = track_id.to_owned();
    bench.request(publisher, MediaRequest::Mute { track_id, muted });
}

/// A leg whose one video track is muted sends no probe padding, however much it could take:
/// the padding would ride on that track's RTX stream, and a browser counts it among the
/// track's received packets (the camera looks on while it is off).
#[test]
fn a_leg_whose_video_is_muted_does_not_probe() {
    let (mut bench, alice, bob) = call();
    let key = bench.clients[bob].key;
    let video = bench.clients[bob].track_id("alice", TrackKind::Video);
    bench.send_from(alice, TrackKind::Video, 200);
    let start = bench.state.peer(key).unwrap().estimate_bps().unwrap();
    mute(&mut bench, alice, &video, true);
    could_take_4_mbits(&mut bench, key);
    bench.send_from(alice, TrackKind::Video, 2_000);
    let estimate = bench.state.peer(key).unwrap().estimate_bps().unwrap();
    assert!(
        estimate < start * 3 / 2,
        "the muted leg probed: its estimate went from {start} to {estimate}"
    );
    // Unmuted, the same leg probes again.
    mute(&mut bench, alice, &video, false);
    bench.send_from(alice, TrackKind::Video, 2_000);
    let estimate = bench.state.peer(key).unwrap().estimate_bps().unwrap();
    assert!(
        estimate > start * 2,
        "unmuted, probing left the estimate at {estimate} (from {start})"
    );
}
