//! How the shard reacts to what a connection reports: a track opening (the publication enters
//! the room, unless the client may not publish) or closing, and the connection coming up (the
//! fast path starts, keyframes are requested), failing or closing (the leg is rebuilt and the
//! client told). Part of [`ShardState`]; the packet path and the turn are in `state.rs`.

use super::ShardState;
use crate::media::fast::FastLeg;
use crate::media::fault::MediaFault;
use crate::media::peer::{PeerKey, TrackKey};
use crate::protocol::MediaErrorCode;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::state::RTCPeerConnectionState;
use std::time::Instant;

impl ShardState {
    pub(super) fn on_pc_event(
        &mut self,
        key: PeerKey,
        event: RTCPeerConnectionEvent,
        now: Instant,
    ) {
        match event {
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.on_track_open(key, init, now)
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                let track = self
                    .peers
                    .get(&key)
                    .and_then(|p| p.published.get(&track_id))
                    .map(|(k, _)| *k);
                if let Some(track) = track {
                    self.with_room(key, |room, peers, turn| {
                        room.unpublish(track, peers, turn, now)
                    });
                }
            }
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.on_connection_state(key, state, now)
            }
            _ => {}
        }
    }

    /// A publisher's first packet on a new stream: the track enters the room, unless the
    /// publisher may not publish.
    fn on_track_open(&mut self, key: PeerKey, init: RTCTrackEventInit, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if init.rid.as_deref().is_some_and(|r| !r.is_empty()) {
            // Keep the browser stamping this stream's rid (`rtp::rid_keeper`).
            peer.rid_ssrcs.insert(init.ssrc);
        }
        // Another rid stream of a simulcast track already published: a new layer of it.
        if let (Some(&(track, _)), Some(_)) = (peer.published.get(&init.track_id), &init.rid) {
            self.with_room(key, |room, peers, _| {
                room.add_layer(key, track, &init, peers)
            });
            return;
        }
        // The stack re-announces a receiver's track after renegotiations; publish it once.
        if peer.published.contains_key(&init.track_id)
            || peer.refused_tracks.contains(&init.track_id)
        {
            return;
        }
        if !peer.grants.publish {
            // Remember the refusal so later packets of this stream are not re-announced.
            peer.refused_tracks.insert(init.track_id.clone());
            if peer.refused_tracks.len() <= 4 {
                peer.fault(MediaFault::new(
                    MediaErrorCode::Forbidden,
                    "your access token has no publish grant; the track is not forwarded",
                ));
            }
            return;
        }
        let track = self.next_track;
        self.next_track += 1;
        self.with_room(key, |room, peers, turn| {
            room.publish(key, init, track, peers, turn, now)
        });
    }

    fn on_connection_state(&mut self, key: PeerKey, state: RTCPeerConnectionState, now: Instant) {
        match state {
            RTCPeerConnectionState::Connected => {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                peer.connected = true;
                if peer.fast_path && peer.fast.is_none() {
                    peer.fast = FastLeg::from_tap(&peer.key_tap);
                    if let Some(fast) = &peer.fast {
                        tracing::debug!(peer = ?key, profile = fast.profile_name(), "fast path");
                    }
                }
                // Keyframes requested while the subscriber's DTLS was still coming up were
                // lost to it: ask again now that it can receive. A publisher (re)connecting
                // (first time, or after an ICE restart that lost packets on the way in) has
                // its own video refreshed for everyone receiving it.
                let active: Vec<TrackKey> = peer
                    .subscriptions
                    .values()
                    .filter(|s| s.payload_type.is_some())
                    .map(|s| s.track)
                    .chain(peer.published.values().map(|(track, _)| *track))
                    .collect();
                self.with_room(key, |room, peers, turn| {
                    for track in active {
                        room.request_keyframe(track, peers, turn, now);
                    }
                });
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.media_failed(key, &state.to_string(), now)
            }
            _ => {}
        }
    }

    /// The client's media connection is gone (`why`): its tracks leave the room, the client is
    /// told, and a fresh connection waits for its next offer (same identity).
    pub(super) fn media_failed(&mut self, key: PeerKey, why: &str, now: Instant) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        peer.fault(MediaFault::new(
            MediaErrorCode::MediaFailed,
            format!("the media connection is {why}; send a new offer to reconnect"),
        ));
        let member = peer.member();
        tracing::info!(key, why, "media connection ended; rebuilding it");
        self.leave(key, now);
        self.join(key, member, now);
    }
}
