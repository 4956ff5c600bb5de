//! A media room on one shard: its members, the tracks they publish ([`Publication`]) and who
//! receives which (`subscriptions.rs`). The room owns its publications; the peers live in the
//! shard's map and are lent to each call, so the shard calls a room with disjoint borrows
//! (`rooms` and `peers`). Every lookup is inside one room: nothing here scans
//! the tracks of other rooms. [`Rooms`] is the shard's map of rooms by name.

use super::fault::MediaFault;
use super::forward;
use super::layer_review;
use super::leg_bandwidth;
use super::peer::{PeerKey, Peers, RoomKey, TrackKey, Turn};
use super::pli;
use super::publication::{Publication, Publications};
use super::speakers::{LevelMeter, Speaker, SpeakerDetector};
use super::subscriptions;
use crate::protocol::{ActiveSpeaker, MediaErrorCode, MediaEvent, TrackInfo, TrackSourceInfo};
use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::peer_connection::message::RTCMessage;
use std::collections::HashMap;
use std::time::Instant;

mod simulcast;

/// The media members of one room on this shard and everything they publish.
pub struct MediaRoom {
    pub key: RoomKey,
    pub name: String,
    pub members: Vec<PeerKey>,
    pub publications: Publications,
    /// Who speaks, from the audio levels of its publications.
    pub speakers: SpeakerDetector<PeerKey>,
}

/// The rooms of a shard, by key and by name.
#[derive(Default)]
pub struct Rooms {
    rooms: HashMap<RoomKey, MediaRoom>,
    by_name: HashMap<String, RoomKey>,
    next_key: RoomKey,
}

impl Rooms {
    /// The key of room `name`, creating the room if it does not exist.
    pub fn open(&mut self, name: &str) -> RoomKey {
        if let Some(key) = self.by_name.get(name) {
            return *key;
        }
        self.next_key += 1;
        let key = self.next_key;
        self.by_name.insert(name.to_owned(), key);
        self.rooms.insert(
            key,
            MediaRoom {
                key,
                name: name.to_owned(),
                members: Vec::new(),
                publications: Publications::default(),
                speakers: SpeakerDetector::default(),
            },
        );
        key
    }

    /// Drops room `key` if nobody is left in it.
    pub fn close_if_empty(&mut self, key: RoomKey) {
        if self.rooms.get(&key).is_some_and(|r| r.members.is_empty()) {
            if let Some(room) = self.rooms.remove(&key) {
                self.by_name.remove(&room.name);
            }
        }
    }

    pub fn get(&self, key: RoomKey) -> Option<&MediaRoom> {
        self.rooms.get(&key)
    }

    pub fn get_mut(&mut self, key: RoomKey) -> Option<&mut MediaRoom> {
        self.rooms.get_mut(&key)
    }

    pub fn by_name(&self, name: &str) -> Option<&MediaRoom> {
        self.by_name.get(name).and_then(|k| self.rooms.get(k))
    }

    pub fn by_name_mut(&mut self, name: &str) -> Option<&mut MediaRoom> {
        let key = *self.by_name.get(name)?;
        self.rooms.get_mut(&key)
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &MediaRoom> {
        self.rooms.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut MediaRoom> {
        self.rooms.values_mut()
    }
}

impl MediaRoom {
    /// A new member: it is told about every track of the room and subscribed to them.
    pub fn add_member(&mut self, key: PeerKey, peers: &mut Peers, turn: &mut Turn, now: Instant) {
        self.members.push(key);
        let speaking = self.speakers.reported();
        let told = (!speaking.is_empty()).then(|| active_speakers(speaking, peers));
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        if let Some(event) = told {
            peer.send(event);
        }
        for publication in self.publications.values_mut() {
            if publication.publisher != key {
                subscriptions::offer(publication, peer, now);
            }
        }
        peer.renegotiate(turn, now);
    }

    /// A member leaves: its tracks leave the room and its subscriptions end.
    pub fn remove_member(
        &mut self,
        key: PeerKey,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        let published: Vec<TrackKey> = self
            .publications
            .values()
            .filter(|p| p.publisher == key)
            .map(|p| p.key)
            .collect();
        for track in published {
            self.unpublish(track, peers, turn, now);
        }
        if let Some(peer) = peers.get(&key) {
            for track in peer.subscriptions.keys() {
                if let Some(p) = self.publications.get_mut(track) {
                    p.subscribers.retain(|k| *k != key);
                }
            }
        }
        self.members.retain(|k| *k != key);
    }

    /// A publisher's first packet on a new stream: the track enters the room as `track` and
    /// every other member is offered it.
    pub fn publish(
        &mut self,
        key: PeerKey,
        init: RTCTrackEventInit,
        track: TrackKey,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        let Some((mut publication, mid)) = Publication::from_track_event(track, peer, &init) else {
            return;
        };
        peer.published
            .insert(init.track_id.clone(), (track, init.receiver_id));
        peer.send(MediaEvent::TrackPublished(publication.info(Ok(()), mid)));
        for member in &self.members {
            if *member == key {
                continue;
            }
            if let Some(peer) = peers.get_mut(member) {
                subscriptions::offer(&mut publication, peer, now);
                peer.renegotiate(turn, now);
            }
        }
        self.publications.insert(track, publication);
    }

    /// Removes a track from the room: subscribers drop it and everyone is told.
    pub fn unpublish(&mut self, track: TrackKey, peers: &mut Peers, turn: &mut Turn, now: Instant) {
        let Some(publication) = self.publications.remove(&track) else {
            return;
        };
        for sub in &publication.subscribers {
            if let Some(peer) = peers.get_mut(sub) {
                peer.unsubscribe(track);
                peer.renegotiate(turn, now);
            }
        }
        if let Some(publisher) = peers.get_mut(&publication.publisher) {
            publisher.published.retain(|_, (k, _)| *k != track);
        }
        self.broadcast(
            None,
            &MediaEvent::TrackUnpublished {
                peer_id: publication.publisher_peer_id.clone(),
                track_id: publication.track_id.clone(),
            },
            peers,
        );
    }

    /// A client's re-offer declared `info` for one of its m-lines: the track published on it
    /// takes the declared source.
    pub fn update_source(&mut self, key: PeerKey, info: &TrackSourceInfo, peers: &mut Peers) {
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        let receivers: Vec<_> = peer.published.values().copied().collect();
        for (track, receiver) in receivers {
            if peer.mid_of_receiver(receiver).as_deref() == Some(info.mid.as_str()) {
                if let Some(p) = self.publications.get_mut(&track) {
                    p.source = info.source;
                }
            }
        }
    }

    /// Tracks whose m-line the client's new offer stopped sending on (removeTrack) leave the
    /// room. `offered` is the (mid, direction) list of that offer.
    pub fn unpublish_stopped(
        &mut self,
        key: PeerKey,
        offered: &[(Option<String>, &str)],
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        let published: Vec<_> = peer.published.values().copied().collect();
        let stopped: Vec<TrackKey> = published
            .into_iter()
            .filter(|(_, receiver)| {
                let mid = peer.mid_of_receiver(*receiver);
                offered.iter().any(|(m, dir)| {
                    m.is_some() && *m == mid && matches!(*dir, "recvonly" | "inactive")
                })
            })
            .map(|(track, _)| track)
            .collect();
        for track in stopped {
            self.unpublish(track, peers, turn, now);
        }
    }

    /// After a completed offer/answer on `key`'s leg: activate its new subscriptions (each
    /// gets a keyframe), refuse the ones whose codec the leg did not take, and send the next
    /// offer if needed.
    pub fn after_negotiation(
        &mut self,
        key: PeerKey,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        // This negotiation may have locked the connection's codecs: what the leg can no longer
        // receive is dropped before the next offer (the stack would refuse to offer it).
        for track in peer.unreceivable() {
            match self.publications.get_mut(&track) {
                Some(p) => subscriptions::refuse(p, peer),
                None => {
                    peer.unsubscribe(track);
                }
            }
        }
        let publications = &self.publications;
        let (activated, refused) = peer.activate_subscriptions(|t| {
            publications
                .get(&t)
                .map(|p| p.extensions.clone())
                .unwrap_or_default()
        });
        for track in refused {
            match self.publications.get_mut(&track) {
                Some(p) => subscriptions::refuse(p, peer),
                None => {
                    peer.unsubscribe(track);
                }
            }
        }
        peer.renegotiate(turn, now);
        for track in activated {
            self.request_keyframe(track, peers, turn, now);
        }
    }

    /// Subscriptions member `key`'s leg dropped by itself (a refused server offer): the
    /// publications forget it as a subscriber and the member is told why.
    pub fn settle_dropped(&mut self, key: PeerKey, peers: &mut Peers) {
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        for (track, reason) in std::mem::take(&mut peer.dropped) {
            if let Some(p) = self.publications.get_mut(&track) {
                subscriptions::dropped(p, peer, reason);
            }
        }
    }

    /// The member `key` mutes or unmutes one of its own tracks.
    pub fn mute_own(
        &mut self,
        key: PeerKey,
        track_id: &str,
        muted: bool,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let track = self
            .publications
            .values()
            .find(|p| p.publisher == key && p.track_id == track_id)
            .map(|p| p.key)
            .ok_or_else(|| {
                MediaFault::new(
                    MediaErrorCode::UnknownTrack,
                    format!("you publish no track {track_id}"),
                )
            })?;
        self.set_muted(track, muted, peers, turn, now);
        Ok(())
    }

    /// An operator mutes (or unmutes) a track; false if the room has no such track.
    pub fn admin_mute(
        &mut self,
        track_id: &str,
        muted: bool,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) -> bool {
        let track = self.find(track_id).map(|p| p.key);
        match track {
            Some(track) => {
                self.set_muted(track, muted, peers, turn, now);
                true
            }
            None => false,
        }
    }

    fn find(&self, track_id: &str) -> Option<&Publication> {
        self.publications.values().find(|p| p.track_id == track_id)
    }

    /// Mutes or unmutes a track: forwarding stops or resumes (continuous sequence numbers,
    /// a keyframe on resume) and the room is told.
    fn set_muted(
        &mut self,
        track: TrackKey,
        muted: bool,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        let Some(p) = self
            .publications
            .get_mut(&track)
            .filter(|p| p.muted != muted)
        else {
            return;
        };
        p.muted = muted;
        for sub in &p.subscribers {
            if let Some(s) = peers
                .get_mut(sub)
                .and_then(|peer| peer.subscriptions.get_mut(&track))
            {
                s.restart();
            }
        }
        let event = MediaEvent::Muted {
            peer_id: p.publisher_peer_id.clone(),
            track_id: p.track_id.clone(),
            muted,
        };
        if !muted {
            self.request_keyframe(track, peers, turn, now);
        }
        self.broadcast(None, &event, peers);
    }

    /// The member `key` subscribes to (or unsubscribes from) `track_ids`; an unsubscribed track
    /// is never re-subscribed automatically.
    pub fn set_subscribed(
        &mut self,
        key: PeerKey,
        track_ids: &[String],
        subscribe: bool,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let peer = peers.get_mut(&key).ok_or_else(MediaFault::not_joined)?;
        if subscribe && !peer.grants.subscribe {
            return Err(MediaFault::new(
                MediaErrorCode::Forbidden,
                "your access token has no subscribe grant",
            ));
        }
        let mut unknown = Vec::new();
        for id in track_ids {
            let Some(publication) = self
                .publications
                .values_mut()
                .find(|p| &p.track_id == id && p.publisher != key)
            else {
                unknown.push(id.clone());
                continue;
            };
            if subscribe {
                peer.opted_out.remove(id);
                subscriptions::offer(publication, peer, now);
            } else {
                peer.opted_out.insert(id.clone());
                subscriptions::drop_subscriber(publication, peer);
            }
        }
        peer.renegotiate(turn, now);
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(MediaFault::new(
                MediaErrorCode::UnknownTrack,
                format!("no such track in this room: {}", unknown.join(", ")),
            ))
        }
    }

    /// Media or feedback that member `key`'s connection delivered.
    pub fn on_message(
        &mut self,
        key: PeerKey,
        message: RTCMessage,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        match message {
            RTCMessage::RtpPacket(track_id, packet) => {
                let Some(&(track, _)) = peers.get(&key).and_then(|p| p.published.get(&track_id))
                else {
                    return;
                };
                if let Some(publication) = self.publications.get_mut(&track) {
                    forward::fan_out(publication, packet, peers, turn, now);
                }
            }
            RTCMessage::RtcpPacket(_, packets) => {
                let Some(peer) = peers.get_mut(&key) else {
                    return;
                };
                leg_bandwidth::on_rtcp(peer, &packets, now);
                let feedback =
                    forward::read_feedback(peer, &packets, &self.publications, turn, now);
                for track in feedback.keyframes {
                    self.request_keyframe_for(track, key, peers, turn, now);
                }
                for (track, seq) in feedback.nacks {
                    if let Some(publication) = self.publications.get(&track) {
                        forward::retransmit(publication, key, seq, peers, turn, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// Asks the publisher of `track` for a keyframe, at most once per throttle window.
    pub fn request_keyframe(
        &mut self,
        track: TrackKey,
        peers: &mut Peers,
        turn: &mut Turn,
        now: Instant,
    ) {
        if let Some(p) = self.publications.get_mut(&track) {
            forward::request_keyframe(p, peers, turn, now);
        }
    }

    /// Sends the keyframe requests the throttle deferred and that are now due.
    pub fn deferred_keyframes(&mut self, peers: &mut Peers, turn: &mut Turn, now: Instant) {
        for p in self.publications.values_mut() {
            if p.keyframe.due(now) {
                pli::send_pli(p, peers, turn, now);
            }
            layer_review::deferred_layer_keyframes(p, peers, turn, now);
        }
    }

    /// When the next deferred keyframe request of this room is due.
    pub fn next_keyframe_due(&self) -> Option<Instant> {
        self.publications
            .values()
            .flat_map(|p| {
                let layers = p.layers.iter().filter_map(|l| l.keyframe.next_due());
                p.keyframe.next_due().into_iter().chain(layers)
            })
            .min()
    }

    /// Runs the speaker detector when its tick is due; tells every member when the list of
    /// speakers changed.
    pub fn tick_speakers(&mut self, peers: &Peers, turn: &mut Turn, now: Instant) {
        // A muted track stops counting at once, and starts afresh when unmuted.
        for p in self.publications.values_mut().filter(|p| p.muted) {
            p.levels = LevelMeter::default();
        }
        let meters = self
            .publications
            .values_mut()
            .filter(|p| p.audio_level_id.is_some() && !p.muted)
            .map(|p| (p.publisher, &mut p.levels));
        if let Some(list) = self.speakers.tick(now, meters) {
            turn.counters.active_speaker_changes += 1;
            self.broadcast(None, &active_speakers(&list, peers), peers);
        }
    }

    /// Sends `event` to every member except `except`.
    pub fn broadcast(&self, except: Option<PeerKey>, event: &MediaEvent, peers: &Peers) {
        for member in &self.members {
            if Some(*member) == except {
                continue;
            }
            if let Some(peer) = peers.get(member) {
                peer.send(event.clone());
            }
        }
    }

    /// The tracks of the room, as announced to a participant that can play them all.
    pub fn tracks(&self) -> Vec<TrackInfo> {
        self.publications
            .values()
            .map(|p| p.info(Ok(()), None))
            .collect()
    }
}

/// The `active-speakers` message for `list` (speakers whose peer is gone are left out).
fn active_speakers(list: &[Speaker<PeerKey>], peers: &Peers) -> MediaEvent {
    let speakers = list
        .iter()
        .filter_map(|s| {
            peers.get(&s.key).map(|p| ActiveSpeaker {
                peer_id: p.peer_id.clone(),
                level: s.level,
            })
        })
        .collect();
    MediaEvent::ActiveSpeakers { speakers }
}
