//! Who receives what inside a media room: publishing a track when its first packet arrives,
//! subscribing every member by default (or as `subscribe`/`unsubscribe` say), muting,
//! unpublishing, and reacting to connection state. The per-packet path is in `fanout.rs`. Runs
//! on the shard thread.

use super::codecs::codec_matches;
use super::forward::{DuplicateFilter, KeyframeThrottle};
use super::peer::{MediaFault, PeerKey, TrackKey};
use super::shard::Shard;
use super::stats::ShardLevels;
use crate::protocol::{
    MediaErrorCode, MediaEvent, MediaRequest, TrackInfo, TrackKind, TrackSource, TrackSourceInfo,
};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use std::time::Instant;

/// The media members of one room on this shard.
#[derive(Default)]
pub struct MediaRoom {
    pub members: Vec<PeerKey>,
}

/// A track a participant publishes, and who receives it.
pub struct PublishedTrack {
    pub key: TrackKey,
    pub track_id: String,
    pub publisher: PeerKey,
    pub publisher_peer_id: String,
    pub room: String,
    pub receiver_id: RTCRtpReceiverId,
    pub media_ssrc: u32,
    pub kind: RtpCodecKind,
    pub codec: RTCRtpCodec,
    pub source: TrackSource,
    pub muted: bool,
    /// The publisher leg's negotiated header extensions (uri, id).
    pub extensions: Vec<(String, u8)>,
    pub subscribers: Vec<PeerKey>,
    pub duplicates: DuplicateFilter,
    pub keyframe: KeyframeThrottle,
}

fn track_kind(kind: RtpCodecKind) -> TrackKind {
    if kind == RtpCodecKind::Audio {
        TrackKind::Audio
    } else {
        TrackKind::Video
    }
}

impl PublishedTrack {
    fn info(&self, playable: Result<(), String>, mid: Option<String>) -> TrackInfo {
        TrackInfo {
            peer_id: self.publisher_peer_id.clone(),
            track_id: self.track_id.clone(),
            kind: track_kind(self.kind),
            source: self.source,
            muted: self.muted,
            playable: playable.is_ok(),
            reason: playable.err(),
            codec: Some(self.codec.mime_type.clone()),
            mid,
        }
    }
}

impl Shard {
    /// A new member: tell it about every track of the room and subscribe it.
    pub fn on_joined(&mut self, key: PeerKey, now: Instant) {
        let Some(room) = self.peers.get(&key).map(|p| p.room.clone()) else {
            return;
        };
        let tracks: Vec<TrackKey> = self
            .tracks
            .values()
            .filter(|t| t.room == room && t.publisher != key)
            .map(|t| t.key)
            .collect();
        for track in tracks {
            self.offer_track_to(track, key);
        }
        self.renegotiate(key, now);
    }

    /// Announces `track` to `member` and subscribes it if its leg can play the codec and it
    /// did not opt out.
    fn offer_track_to(&mut self, track: TrackKey, member: PeerKey) {
        let (Some(t), Some(peer)) = (self.tracks.get_mut(&track), self.peers.get_mut(&member))
        else {
            return;
        };
        let playable = match peer.remote_codecs(t.kind) {
            _ if !peer.grants.subscribe => Err("your access token has no subscribe grant".into()),
            Some(codecs) if !codecs.iter().any(|c| codec_matches(&t.codec, c)) => Err(format!(
                "this connection did not negotiate {}",
                t.codec.mime_type
            )),
            _ => Ok(()),
        };
        let wanted = !peer.opted_out.contains(&t.track_id);
        let mut result = playable.clone();
        if playable.is_ok() && wanted && !peer.subscriptions.contains_key(&track) {
            result = peer
                .subscribe(track, &t.track_id, &t.publisher_peer_id, t.kind, &t.codec)
                .map_err(|f| f.message);
            if result.is_ok() {
                t.subscribers.push(member);
            }
        }
        peer.send(MediaEvent::TrackPublished(t.info(result, None)));
    }

    fn renegotiate(&mut self, key: PeerKey, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.offer_if_needed(now);
        }
        self.touch(key);
    }

    /// Everything a leaving peer takes with it: its tracks and its subscriptions.
    pub fn before_remove(&mut self, key: PeerKey, now: Instant) {
        let published: Vec<TrackKey> = self
            .tracks
            .values()
            .filter(|t| t.publisher == key)
            .map(|t| t.key)
            .collect();
        for track in published {
            self.unpublish(track, now);
        }
        if let Some(peer) = self.peers.get(&key) {
            let subscribed: Vec<TrackKey> = peer.subscriptions.keys().copied().collect();
            for track in subscribed {
                if let Some(t) = self.tracks.get_mut(&track) {
                    t.subscribers.retain(|k| *k != key);
                }
            }
        }
    }

    /// A client media request from the WebSocket.
    pub fn handle_request(&mut self, key: PeerKey, request: MediaRequest, now: Instant) {
        let result = match request {
            MediaRequest::Offer { sdp, tracks } => self.client_offer(key, sdp, tracks, now),
            MediaRequest::Answer { sdp } => self.client_answer(key, sdp, now),
            MediaRequest::Candidate { candidate } => match (candidate, self.peers.get_mut(&key)) {
                (Some(c), Some(peer)) => peer.add_remote_candidate(c),
                _ => Ok(()),
            },
            MediaRequest::Mute { track_id, muted } => self.mute(key, &track_id, muted, now),
            MediaRequest::Subscribe { track_ids } => {
                self.set_subscribed(key, &track_ids, true, now)
            }
            MediaRequest::Unsubscribe { track_ids } => {
                self.set_subscribed(key, &track_ids, false, now)
            }
        };
        if let (Err(fault), Some(peer)) = (result, self.peers.get(&key)) {
            peer.fault(fault);
        }
        self.touch(key);
    }

    fn client_offer(
        &mut self,
        key: PeerKey,
        sdp: String,
        tracks: Vec<TrackSourceInfo>,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let peer = self.peers.get_mut(&key).ok_or_else(gone)?;
        let offered = super::peer::directions(&sdp).unwrap_or_default();
        let updates: Vec<TrackSourceInfo> = tracks.clone();
        peer.apply_offer(sdp, tracks, now)?;
        // A re-offer can change a published track's declared source or mute state.
        for info in updates {
            self.update_source(key, &info);
        }
        // Tracks whose m-line the client stopped sending on (removeTrack) leave the room.
        let stopped: Vec<TrackKey> = match self.peers.get_mut(&key) {
            Some(peer) => {
                let published: Vec<_> = peer.published.values().copied().collect();
                published
                    .into_iter()
                    .filter(|(_, receiver)| {
                        let mid = mid_of_receiver(peer, *receiver);
                        offered.iter().any(|(m, dir)| {
                            m.is_some() && *m == mid && matches!(*dir, "recvonly" | "inactive")
                        })
                    })
                    .map(|(track, _)| track)
                    .collect()
            }
            None => Vec::new(),
        };
        for track in stopped {
            self.unpublish(track, now);
        }
        self.after_negotiation(key, now);
        Ok(())
    }

    fn update_source(&mut self, key: PeerKey, info: &TrackSourceInfo) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let receivers: Vec<_> = peer.published.values().copied().collect();
        for (track, receiver) in receivers {
            if mid_of_receiver(peer, receiver).as_deref() == Some(info.mid.as_str()) {
                if let Some(t) = self.tracks.get_mut(&track) {
                    t.source = info.source;
                }
            }
        }
    }

    fn client_answer(&mut self, key: PeerKey, sdp: String, now: Instant) -> Result<(), MediaFault> {
        let peer = self.peers.get_mut(&key).ok_or_else(gone)?;
        peer.apply_answer(sdp, now)?;
        self.after_negotiation(key, now);
        Ok(())
    }

    /// After a completed offer/answer: activate new subscriptions (each gets a keyframe),
    /// refuse the ones whose codec the leg did not take, and send the next offer if needed.
    fn after_negotiation(&mut self, key: PeerKey, now: Instant) {
        let tracks = &self.tracks;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let (activated, refused) = peer.activate_subscriptions(|t| {
            tracks
                .get(&t)
                .map(|t| t.extensions.clone())
                .unwrap_or_default()
        });
        for track in refused {
            peer.unsubscribe(track);
            if let Some(t) = self.tracks.get_mut(&track) {
                t.subscribers.retain(|k| *k != key);
                let reason = format!("this connection did not negotiate {}", t.codec.mime_type);
                peer.send(MediaEvent::TrackPublished(t.info(Err(reason), None)));
            }
        }
        for track in activated {
            self.request_keyframe(track, now);
        }
        self.renegotiate(key, now);
    }

    fn mute(
        &mut self,
        key: PeerKey,
        track_id: &str,
        muted: bool,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let track = self
            .tracks
            .values()
            .find(|t| t.publisher == key && t.track_id == track_id)
            .map(|t| t.key)
            .ok_or_else(|| MediaFault {
                code: MediaErrorCode::UnknownTrack,
                message: format!("you publish no track {track_id}"),
            })?;
        self.set_muted(track, muted, now);
        Ok(())
    }

    /// An operator mutes (or unmutes) a track of `room`; false if there is no such track.
    pub fn admin_mute(&mut self, room: &str, track_id: &str, muted: bool, now: Instant) -> bool {
        let track = self
            .tracks
            .values()
            .find(|t| t.room == room && t.track_id == track_id)
            .map(|t| t.key);
        match track {
            Some(track) => {
                self.set_muted(track, muted, now);
                true
            }
            None => false,
        }
    }

    /// Mutes or unmutes a track: forwarding stops or resumes (continuous sequence numbers,
    /// a keyframe on resume) and the room is told.
    fn set_muted(&mut self, track: TrackKey, muted: bool, now: Instant) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.muted == muted {
            return;
        }
        t.muted = muted;
        let (room, peer_id, track_id) = (
            t.room.clone(),
            t.publisher_peer_id.clone(),
            t.track_id.clone(),
        );
        for sub in t.subscribers.clone() {
            if let Some(s) = self
                .peers
                .get_mut(&sub)
                .and_then(|p| p.subscriptions.get_mut(&track))
            {
                s.rewriter.pause();
            }
        }
        if !muted {
            self.request_keyframe(track, now);
        }
        self.broadcast(
            &room,
            None,
            &MediaEvent::Muted {
                peer_id,
                track_id,
                muted,
            },
        );
    }

    /// The tracks of `room`, as announced to a participant that can play them all.
    pub fn room_tracks(&self, room: &str) -> Vec<TrackInfo> {
        self.tracks
            .values()
            .filter(|t| t.room == room)
            .map(|t| t.info(Ok(()), None))
            .collect()
    }

    fn set_subscribed(
        &mut self,
        key: PeerKey,
        track_ids: &[String],
        subscribe: bool,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let room = self
            .peers
            .get(&key)
            .map(|p| p.room.clone())
            .ok_or_else(gone)?;
        if subscribe && self.peers.get(&key).is_some_and(|p| !p.grants.subscribe) {
            return Err(MediaFault {
                code: MediaErrorCode::Forbidden,
                message: "your access token has no subscribe grant".into(),
            });
        }
        let mut unknown = Vec::new();
        for id in track_ids {
            let Some(track) = self
                .tracks
                .values()
                .find(|t| t.room == room && &t.track_id == id && t.publisher != key)
                .map(|t| t.key)
            else {
                unknown.push(id.clone());
                continue;
            };
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if subscribe {
                peer.opted_out.remove(id);
                self.offer_track_to(track, key);
            } else {
                peer.opted_out.insert(id.clone());
                peer.unsubscribe(track);
                if let Some(t) = self.tracks.get_mut(&track) {
                    t.subscribers.retain(|k| *k != key);
                }
            }
        }
        self.renegotiate(key, now);
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(MediaFault {
                code: MediaErrorCode::UnknownTrack,
                message: format!("no such track in this room: {}", unknown.join(", ")),
            })
        }
    }

    /// Sends `event` to every media member of `room` except `except`.
    fn broadcast(&self, room: &str, except: Option<PeerKey>, event: &MediaEvent) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        for member in &r.members {
            if Some(*member) == except {
                continue;
            }
            if let Some(peer) = self.peers.get(member) {
                peer.send(event.clone());
            }
        }
    }

    /// Removes a track from the room: subscribers drop it and everyone is told.
    fn unpublish(&mut self, track: TrackKey, now: Instant) {
        let Some(t) = self.tracks.remove(&track) else {
            return;
        };
        for sub in &t.subscribers {
            if let Some(peer) = self.peers.get_mut(sub) {
                peer.unsubscribe(track);
            }
            self.renegotiate(*sub, now);
        }
        if let Some(publisher) = self.peers.get_mut(&t.publisher) {
            publisher.published.retain(|_, (k, _)| *k != track);
        }
        self.broadcast(
            &t.room,
            None,
            &MediaEvent::TrackUnpublished {
                peer_id: t.publisher_peer_id.clone(),
                track_id: t.track_id.clone(),
            },
        );
    }

    pub fn on_pc_event(&mut self, key: PeerKey, event: RTCPeerConnectionEvent, now: Instant) {
        match event {
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.publish(key, init, now)
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                let track = self
                    .peers
                    .get(&key)
                    .and_then(|p| p.published.get(&track_id))
                    .map(|(k, _)| *k);
                if let Some(track) = track {
                    self.unpublish(track, now);
                }
            }
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.on_connection_state(key, state, now)
            }
            _ => {}
        }
    }

    fn on_connection_state(&mut self, key: PeerKey, state: RTCPeerConnectionState, now: Instant) {
        match state {
            RTCPeerConnectionState::Connected => {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                peer.connected = true;
                // Keyframes requested while the subscriber's DTLS was still coming up were
                // lost to it: ask again now that it can receive.
                let active: Vec<TrackKey> = peer
                    .subscriptions
                    .values()
                    .filter(|s| s.payload_type.is_some())
                    .map(|s| s.track)
                    .collect();
                for track in active {
                    self.request_keyframe(track, now);
                }
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.media_failed(key, &state.to_string(), now)
            }
            _ => {}
        }
    }

    /// The client's media connection is gone (`why`): its tracks leave the room, the client is
    /// told, and a fresh connection waits for its next offer (same identity).
    pub fn media_failed(&mut self, key: PeerKey, why: &str, now: Instant) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        peer.fault(MediaFault {
            code: MediaErrorCode::MediaFailed,
            message: format!("the media connection is {why}; send a new offer to reconnect"),
        });
        let admission = peer.admission();
        tracing::info!(key, why, "media connection ended; rebuilding it");
        self.remove_peer(key, now);
        self.rejoin(key, admission, now);
    }

    /// A publisher's first packet on a new stream: the track enters the room.
    fn publish(&mut self, key: PeerKey, init: RTCTrackEventInit, now: Instant) {
        // The stack re-announces a receiver's track after renegotiations; publish it once.
        if self.peers.get(&key).is_none_or(|p| {
            p.published.contains_key(&init.track_id) || p.refused_tracks.contains(&init.track_id)
        }) {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&key).filter(|p| !p.grants.publish) {
            // Remember the refusal so later packets of this stream are not re-announced.
            peer.refused_tracks.insert(init.track_id.clone());
            if peer.refused_tracks.len() <= 4 {
                peer.fault(MediaFault {
                    code: MediaErrorCode::Forbidden,
                    message: "your access token has no publish grant; the track is not forwarded"
                        .into(),
                });
            }
            return;
        }
        let track_key = self.next_track;
        self.next_track += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let mid = mid_of_receiver(peer, init.receiver_id);
        let Some(mut receiver) = peer.pc.rtp_receiver(init.receiver_id) else {
            return;
        };
        let kind = receiver.track().kind();
        let codec = receiver.track().codec(init.ssrc).cloned();
        let extensions = receiver
            .get_parameters()
            .rtp_parameters
            .header_extensions
            .iter()
            .map(|h| (h.uri.clone(), h.id as u8))
            .collect();
        let Some(codec) = codec else {
            return;
        };
        let declared = mid.as_ref().and_then(|m| peer.sources.get(m));
        let source = declared
            .map(|d| d.source)
            .unwrap_or(if kind == RtpCodecKind::Audio {
                TrackSource::Microphone
            } else {
                TrackSource::Camera
            });
        let muted = declared.is_some_and(|d| d.muted);
        let track_id = format!(
            "{}-{}",
            peer.peer_id,
            mid.clone().unwrap_or_else(|| track_key.to_string())
        );
        peer.published
            .insert(init.track_id.clone(), (track_key, init.receiver_id));
        let track = PublishedTrack {
            key: track_key,
            track_id,
            publisher: key,
            publisher_peer_id: peer.peer_id.clone(),
            room: peer.room.clone(),
            receiver_id: init.receiver_id,
            media_ssrc: init.ssrc,
            kind,
            codec,
            source,
            muted,
            extensions,
            subscribers: Vec::new(),
            duplicates: DuplicateFilter::default(),
            keyframe: KeyframeThrottle::default(),
        };
        peer.send(MediaEvent::TrackPublished(track.info(Ok(()), mid)));
        let room = track.room.clone();
        self.tracks.insert(track_key, track);
        let members: Vec<PeerKey> = self
            .rooms
            .get(&room)
            .map(|r| r.members.iter().copied().filter(|m| *m != key).collect())
            .unwrap_or_default();
        for member in members {
            self.offer_track_to(track_key, member);
            self.renegotiate(member, now);
        }
    }

    /// Current absolute levels for the gauges.
    pub fn levels(&self) -> ShardLevels {
        ShardLevels {
            peer_connections: self.peers.len() as i64,
            published_audio: self
                .tracks
                .values()
                .filter(|t| t.kind == RtpCodecKind::Audio)
                .count() as i64,
            published_video: self
                .tracks
                .values()
                .filter(|t| t.kind != RtpCodecKind::Audio)
                .count() as i64,
            subscriptions: self
                .peers
                .values()
                .map(|p| p.subscriptions.len())
                .sum::<usize>() as i64,
            rooms: self.rooms.len() as i64,
            cpu_nanos: 0,
        }
    }
}

fn gone() -> MediaFault {
    MediaFault {
        code: MediaErrorCode::NotJoined,
        message: "no media session".into(),
    }
}

fn mid_of_receiver(peer: &mut super::peer::Peer, receiver: RTCRtpReceiverId) -> Option<String> {
    let ids: Vec<_> = peer.pc.get_transceivers().collect();
    ids.into_iter().find_map(|id| {
        let t = peer.pc.rtp_transceiver(id)?;
        (t.receiver() == Some(receiver))
            .then(|| t.mid().clone())
            .flatten()
    })
}
