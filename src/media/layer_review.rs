//! The layer side of a simulcast publication, reviewed twice a second from its fan-out and on
//! a subscriber's `video-size`: every leg's layer chosen again (hint, bandwidth budget, layers
//! that stopped), keyframes asked of the layers legs wait for, and the publisher told which
//! layers to pause because no leg wants them (dynacast) or to resume.

use super::peer::{Peers, Turn};
use super::pli::send_pli_to;
use super::publication::Publication;
use crate::protocol::MediaEvent;
use std::time::Instant;

/// Re-chooses every leg's layer of `publication` (hint, budget, layers that stopped) and asks
/// for the keyframes the legs that must switch wait for; pauses or resumes the layers at the
/// publisher (dynacast) by what the legs want. A muted track is left as it is: nothing of it
/// is forwarded, so its legs neither switch, nor ask for keyframes, nor probe for a layer (a
/// browser goes on sending black frames while its camera is off).
pub fn review_legs(
    publication: &mut Publication,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    if publication.muted {
        return;
    }
    let views = publication.layers.views(now);
    // Layers whose keyframe a leg waits for; layers some leg receives or wants.
    let (mut want, mut wanted) = (0u32, 0u32);
    for key in &publication.subscribers {
        let Some(peer) = peers.get_mut(key) else {
            continue;
        };
        let budget = peer.track_budget_bps(now);
        let Some(sub) = peer.subscriptions.get_mut(&publication.key) else {
            continue;
        };
        sub.simulcast.budget = budget;
        let before = sub.simulcast.selector.target();
        if let Some(layer) = sub.simulcast.review(&views, now) {
            want |= 1 << layer.min(31);
        }
        let selector = &sub.simulcast.selector;
        if selector.target() != before {
            tracing::debug!(
                leg = sub.ssrc,
                target = ?selector.target(),
                current = ?selector.current(),
                ?budget,
                want = ?sub.simulcast.want,
                ?views,
                "simulcast leg target"
            );
        }
        for layer in [selector.current(), selector.target()]
            .into_iter()
            .flatten()
        {
            wanted |= 1 << layer.min(31);
        }
        peer.probe_for_shortfall(now);
    }
    request_layers(publication, want, peers, turn, now);
    dynacast(publication, wanted, peers, now);
}

/// Asks the publisher of a simulcast `publication` for a keyframe of each layer in `mask` (a
/// bit per layer index), each at most once per throttle window.
pub fn request_layers(
    publication: &mut Publication,
    mask: u32,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    if mask == 0 {
        return;
    }
    let mut due = Vec::new();
    for (i, layer) in publication.layers.iter_mut().enumerate() {
        if i < 32 && mask & (1 << i) != 0 && layer.keyframe.request(now) {
            due.push(layer.ssrc);
        }
    }
    for ssrc in due {
        send_pli_to(publication, ssrc, peers, turn, now);
    }
}

/// Sends the deferred keyframe requests of a publication's layers that are due.
pub fn deferred_layer_keyframes(
    publication: &mut Publication,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    let due: Vec<u32> = publication
        .layers
        .iter_mut()
        .filter_map(|l| l.keyframe.due(now).then_some(l.ssrc))
        .collect();
    for ssrc in due {
        send_pli_to(publication, ssrc, peers, turn, now);
    }
}

/// Tells the publisher of `publication` which layers to send, when dynacast changed its mind
/// (`wanted`: the layers some leg receives or wants, a bit per index).
fn dynacast(publication: &mut Publication, wanted: u32, peers: &Peers, now: Instant) {
    let layers = &mut publication.layers;
    let Some(paused) = layers.dynacast.review(layers.len(), wanted, now) else {
        return;
    };
    let (mut active, mut stopped) = (Vec::new(), Vec::new());
    for (i, layer) in layers.iter().enumerate() {
        match i < 32 && paused & (1 << i) != 0 {
            true => stopped.push(layer.rid.clone()),
            false => active.push(layer.rid.clone()),
        }
    }
    stopped.extend(layers.unseen_paused(paused));
    tracing::debug!(track = %publication.track_id, ?active, paused = ?stopped, "dynacast");
    if let Some(publisher) = peers.get(&publication.publisher) {
        publisher.send(MediaEvent::PublishLayers {
            track_id: publication.track_id.clone(),
            active,
            paused: stopped,
        });
    }
}
