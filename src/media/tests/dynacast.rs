//! Dynacast through the shard with real `rtc` peers: when every subscriber renders alice's
//! simulcast camera small, the server tells her (`publish-layers`) to pause the two upper
//! layers after a few seconds, and she stops sending them; when one subscriber renders it
//! large again, the server resumes the top layer at once and that subscriber moves up to it.

use super::harness::Bench;
use super::simulcast::{assert_continuous, hint, received, run_frames, simulcast_call};
use crate::media::simulcast::dynacast::PAUSE_AFTER;
use crate::protocol::MediaEvent;

/// The `publish-layers` messages alice got: (active, paused) rids.
fn told(bench: &Bench, alice: usize) -> Vec<(Vec<String>, Vec<String>)> {
    bench.clients[alice]
        .log
        .iter()
        .filter_map(|e| match e {
            MediaEvent::PublishLayers { active, paused, .. } => {
                Some((active.clone(), paused.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn layers_nobody_wants_are_paused_and_resumed_on_demand() {
    let mut bench = Bench::new();
    let (alice, bob, carol, mut track) = simulcast_call(&mut bench, None);
    hint(&mut bench, bob, 320, 180);
    hint(&mut bench, carol, 320, 180);
    // A frame per 5 ms step: 200 frames are 1 s, not yet long enough to pause anything.
    run_frames(&mut bench, alice, &mut track, 200);
    assert!(told(&bench, alice).is_empty(), "{:?}", told(&bench, alice));
    let frames = (PAUSE_AFTER.as_millis() / 5) as usize;
    run_frames(&mut bench, alice, &mut track, frames);
    let q = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // h (nobody's layer since the start) may have gone first; now both upper layers are.
    let told_then = told(&bench, alice);
    assert_eq!(told_then.last(), Some(&(q(&["q"]), q(&["h", "f"]))));
    assert!(told_then
        .iter()
        .all(|(active, _)| active.contains(&"q".to_owned())));
    assert_eq!(track.paused, [false, true, true], "alice follows it");
    assert_eq!(bench.state.levels().simulcast_paused_layers, 2);
    let bob_before = received(&bench, bob).len();
    run_frames(&mut bench, alice, &mut track, 100);
    assert!(
        received(&bench, bob).len() > bob_before + 100,
        "q still flows"
    );
    // Bob renders it large: the top layer is resumed at once (h stays paused) and bob moves
    // up at its first keyframe.
    hint(&mut bench, bob, 1280, 720);
    run_frames(&mut bench, alice, &mut track, 1); // alice reads her messages
    let told_now = told(&bench, alice);
    assert_eq!(told_now.last(), Some(&(q(&["q", "f"]), q(&["h"]))));
    run_frames(&mut bench, alice, &mut track, 100);
    let b = received(&bench, bob);
    assert_eq!(b.last().unwrap().0, 2, "bob is on the top layer");
    assert_continuous(&b);
    let c = received(&bench, carol);
    assert!(c.iter().all(|g| g.0 == 0), "carol stays low");
    assert_continuous(&c);
}
