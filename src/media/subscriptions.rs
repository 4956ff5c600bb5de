//! Who receives which track: the decisions that tie a [`Publication`] to one member's leg, kept
//! in step on both sides (the publication's `subscribers` index and the leg's `Subscription`).
//! A member is subscribed when it is told about a track if its leg can receive the codec
//! (`capabilities.rs`), it holds the subscribe grant and it did not opt out; it is dropped when
//! it unsubscribes, its negotiation refuses the codec, or the leg could not offer it. The room calls these with one publication and one peer.

use super::peer::Peer;
use super::publication::Publication;
use crate::protocol::MediaEvent;
use std::time::Instant;

/// The reason a leg does not receive a track whose codec it cannot take.
pub fn not_negotiated(publication: &Publication) -> String {
    format!(
        "this connection cannot receive {} (not among the codecs it declared or negotiated)",
        publication.codec.mime_type
    )
}

/// Whether `peer`'s leg can play `publication`: it needs the subscribe grant and the track's
/// codec among those the leg can receive (declared at `join` or the default, narrowed by what
/// its negotiations locked the connection to) — known before any transceiver is made.
pub fn playability(publication: &Publication, peer: &Peer) -> Result<(), String> {
    if !peer.grants.subscribe {
        return Err("your access token has no subscribe grant".into());
    }
    if !peer.receive.can_receive(&publication.codec) {
        return Err(not_negotiated(publication));
    }
    Ok(())
}

/// Announces `publication` to `peer` and subscribes it if its leg can play the codec and it
/// did not opt out. The next server offer carries the new leg.
pub fn offer(publication: &mut Publication, peer: &mut Peer, now: Instant) {
    let playable = playability(publication, peer);
    let wanted = !peer.opted_out.contains(&publication.track_id);
    let mut result = playable.clone();
    if playable.is_ok() && wanted && !peer.subscriptions.contains_key(&publication.key) {
        result = peer
            .subscribe(
                publication.key,
                &publication.track_id,
                &publication.publisher_peer_id,
                publication.kind,
                &publication.codec,
                now,
            )
            .map_err(|f| f.message);
        if result.is_ok() {
            publication.subscribers.push(peer.key);
        }
    }
    peer.send(MediaEvent::TrackPublished(publication.info(result, None)));
}

/// Stops forwarding `publication` to `peer`, on both sides of the index.
pub fn drop_subscriber(publication: &mut Publication, peer: &mut Peer) {
    peer.unsubscribe(publication.key);
    publication.subscribers.retain(|k| *k != peer.key);
}

/// The leg's negotiation did not take the track's codec: drop it and tell the member why.
pub fn refuse(publication: &mut Publication, peer: &mut Peer) {
    drop_subscriber(publication, peer);
    let reason = not_negotiated(publication);
    peer.send(MediaEvent::TrackPublished(
        publication.info(Err(reason), None),
    ));
}

/// The leg dropped its subscription to `publication` by itself (`reason`): the publication
/// forgets the subscriber and the member is told.
pub fn dropped(publication: &mut Publication, peer: &mut Peer, reason: String) {
    publication.subscribers.retain(|k| *k != peer.key);
    peer.send(MediaEvent::TrackPublished(
        publication.info(Err(reason), None),
    ));
}
