//! The room's side of simulcast: a publisher's further rid streams become layers of its
//! track, a subscriber's `video-size` hint re-chooses its leg's layer, and a subscriber's
//! keyframe request reaches only the layer its leg is on. Part of [`MediaRoom`].

use super::MediaRoom;
use crate::media::fault::MediaFault;
use crate::media::peer::{PeerKey, Peers, TrackKey, Turn};
use crate::media::simulcast::Want;
use crate::media::{forward, layer_review};
use rtc::peer_connection::event::RTCTrackEventInit;
use std::time::Instant;

impl MediaRoom {
    /// Another rid stream of `publisher`'s simulcast track `track` started: it becomes a
    /// layer, and the legs' choices are reviewed at its next packet.
    pub fn add_layer(
        &mut self,
        publisher: PeerKey,
        track: TrackKey,
        init: &RTCTrackEventInit,
        peers: &mut Peers,
    ) {
        let (Some(p), Some(peer)) = (self.publications.get_mut(&track), peers.get_mut(&publisher))
        else {
            return;
        };
        let Some((layer, new)) = p.add_layer(peer, init) else {
            return;
        };
        tracing::debug!(track, layer, rid = ?init.rid, "simulcast layer");
        p.layers.next_review = None;
        if !new {
            return;
        }
        // Layers start in any order: the legs' layer indices follow an insertion below them.
        for key in &p.subscribers {
            if let Some(sub) = peers
                .get_mut(key)
                .and_then(|peer| peer.subscriptions.get_mut(&track))
            {
                sub.simulcast.selector.layer_inserted(layer);
            }
        }
    }

    /// Member `key` renders `track_id` as `want` (the `video-size` message): its leg's layer
    /// of that track is chosen again (the switch happens at the next keyframe).
    pub fn set_video_size(
        &mut self,
        key: PeerKey,
        track_id: &str,
        want: Want,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) -> Result<(), MediaFault> {
        // A hint is advisory: one about a track that just left (or never was) is ignored.
        let Some(publication) = self
            .publications
            .values_mut()
            .find(|p| p.track_id == track_id && p.publisher != key)
        else {
            return Ok(());
        };
        let peer = peers.get_mut(&key).ok_or_else(MediaFault::not_joined)?;
        let Some(sub) = peer.subscriptions.get_mut(&publication.key) else {
            return Ok(()); // not received: nothing to choose
        };
        sub.simulcast.want = want;
        if publication.is_simulcast() {
            // Every leg, so a paused layer this one now wants is resumed at once.
            layer_review::review_legs(publication, peers, turn, now);
        }
        Ok(())
    }

    /// Subscriber `key` asked for a keyframe of `track`: of a simulcast track, only the
    /// layer its leg is on (or moving to) is asked for.
    pub(super) fn request_keyframe_for(
        &mut self,
        track: TrackKey,
        key: PeerKey,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        let Some(p) = self.publications.get_mut(&track) else {
            return;
        };
        if !p.is_simulcast() {
            return forward::request_keyframe(p, peers, turn, now);
        }
        let layer = peers
            .get(&key)
            .and_then(|peer| peer.subscriptions.get(&track))
            .and_then(|s| {
                s.simulcast
                    .selector
                    .current()
                    .or(s.simulcast.selector.target())
            });
        if let Some(layer) = layer {
            layer_review::request_layers(p, 1 << layer.min(31), peers, turn, now);
        }
    }
}
