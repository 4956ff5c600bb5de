//! A published track: what a participant sends into its room (codec, source, mute state, the
//! publisher leg's header extensions), who receives it, the duplicate filter its packets pass
//! on ingress, and the throttle of the keyframe requests relayed to its publisher. A simulcast
//! track (rid streams on one m-line) is one publication with several layers.

use super::key_map::KeyMap;
use super::packet_cache::PacketCache;
use super::peer::{Peer, PeerKey, TrackKey};
use super::simulcast::{Layers, SizeSource};
use super::speakers::LevelMeter;
use crate::protocol::{TrackInfo, TrackKind, TrackSource};
use crate::rtp::dedup::DuplicateFilter;
use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use std::time::{Duration, Instant};

/// Minimum spacing of keyframe requests sent to a publisher for one track.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// The publications of one room, by track key.
pub type Publications = KeyMap<TrackKey, Publication>;

/// A track a participant publishes, and who receives it.
pub struct Publication {
    pub key: TrackKey,
    pub track_id: String,
    pub publisher: PeerKey,
    pub publisher_peer_id: String,
    pub receiver_id: RTCRtpReceiverId,
    pub media_ssrc: u32,
    pub kind: RtpCodecKind,
    pub codec: RTCRtpCodec,
    /// Whether the codec is VP8 (its simulcast packets' descriptors are rewritten per leg).
    pub vp8: bool,
    /// How its simulcast layers' sizes are read from their keyframes.
    pub sizes: SizeSource,
    pub source: TrackSource,
    pub muted: bool,
    /// The publisher leg's negotiated header extensions (uri, id).
    pub extensions: Vec<(String, u8)>,
    /// The members whose leg receives this track (each has a `Subscription` for it).
    pub subscribers: Vec<PeerKey>,
    pub duplicates: DuplicateFilter,
    pub keyframe: KeyframeThrottle,
    /// Its last packets, for the fast path's retransmissions (video only).
    pub cache: PacketCache,
    /// The publisher leg's id of the RFC 6464 audio-level extension (audio only).
    pub audio_level_id: Option<u8>,
    /// The audio levels its packets reported, for the room's speaker detector.
    pub levels: LevelMeter,
    /// Its simulcast layers (rid streams), low to high; empty for a track sent without rids.
    pub layers: Layers,
}

fn track_kind(kind: RtpCodecKind) -> TrackKind {
    if kind == RtpCodecKind::Audio {
        TrackKind::Audio
    } else {
        TrackKind::Video
    }
}

impl Publication {
    /// The publication a publisher's first packet on a new stream opens, read from its
    /// receiver (codec, extensions) and its declared sources; `None` if the stack has no
    /// codec for it yet. Returns the mid it was published on too.
    pub fn from_track_event(
        key: TrackKey,
        publisher: &mut Peer,
        init: &RTCTrackEventInit,
    ) -> Option<(Self, Option<String>)> {
        let mid = publisher.mid_of_receiver(init.receiver_id);
        let mut receiver = publisher.pc.rtp_receiver(init.receiver_id)?;
        let kind = receiver.track().kind();
        let codec = receiver.track().codec(init.ssrc).cloned()?;
        let extensions: Vec<(String, u8)> = receiver
            .get_parameters()
            .rtp_parameters
            .header_extensions
            .iter()
            .map(|h| (h.uri.clone(), h.id as u8))
            .collect();
        let audio_level_id = extensions
            .iter()
            .find(|(uri, _)| uri == AUDIO_LEVEL_URI)
            .map(|(_, id)| *id)
            .filter(|_| kind == RtpCodecKind::Audio);
        let declared = mid.as_ref().and_then(|m| publisher.sources.get(m));
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
            publisher.peer_id,
            mid.clone().unwrap_or_else(|| key.to_string())
        );
        let publication = Self {
            key,
            track_id,
            publisher: publisher.key,
            publisher_peer_id: publisher.peer_id.clone(),
            receiver_id: init.receiver_id,
            media_ssrc: init.ssrc,
            kind,
            vp8: codec.mime_type.eq_ignore_ascii_case("video/vp8"),
            sizes: SizeSource::of(&codec.mime_type),
            codec,
            source,
            muted,
            extensions,
            subscribers: Vec::new(),
            duplicates: DuplicateFilter::default(),
            keyframe: KeyframeThrottle::default(),
            cache: PacketCache::default(),
            audio_level_id,
            levels: LevelMeter::default(),
            layers: Layers::default(),
        };
        let mut publication = publication;
        if let Some(rid) = init.rid.as_deref().filter(|r| !r.is_empty()) {
            let order = rid_order(&receiver, rid);
            publication.layers.set_declared(declared_rids(&receiver));
            publication.layers.add(rid, init.ssrc, order);
        }
        Some((publication, mid))
    }

    /// Another rid stream of this (simulcast) track started: it becomes a layer. Returns its
    /// index and whether it is new (layers above it moved up).
    pub fn add_layer(
        &mut self,
        publisher: &mut Peer,
        init: &RTCTrackEventInit,
    ) -> Option<(usize, bool)> {
        let rid = init.rid.as_deref().filter(|r| !r.is_empty())?;
        let receiver = publisher.pc.rtp_receiver(init.receiver_id)?;
        let order = rid_order(&receiver, rid);
        self.layers.set_declared(declared_rids(&receiver));
        Some(self.layers.add(rid, init.ssrc, order))
    }

    /// Whether it is sent as rid streams (simulcast), even if only one layer arrived so far.
    pub fn is_simulcast(&self) -> bool {
        !self.layers.is_empty()
    }

    /// The announcement of this track to one member: `playable` says whether (and why not)
    /// that member's leg receives it.
    pub fn info(&self, playable: Result<(), String>, mid: Option<String>) -> TrackInfo {
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

    pub fn is_video(&self) -> bool {
        self.kind == RtpCodecKind::Video
    }

    /// Counts the audio level `header` carries, if the track has the extension: a scan of the
    /// packet's few extensions, no allocation.
    pub fn record_level(&mut self, header: &rtc::rtp::header::Header) {
        let Some(id) = self.audio_level_id else {
            return;
        };
        if let Some(byte) = header
            .extensions
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.payload.first())
        {
            self.levels.record(*byte);
        }
    }
}

/// The position of `rid` among the receiver's encodings: the order of the publisher's
/// `a=simulcast` list, which browsers write low to high (q;h;f).
fn rid_order(
    receiver: &rtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver<'_>,
    rid: &str,
) -> usize {
    receiver
        .track()
        .codings()
        .iter()
        .position(|c| c.rtp_coding_parameters.rid == rid)
        .unwrap_or(usize::MAX)
}

/// The rids of the receiver's encodings, in the order of the publisher's `a=simulcast` list.
fn declared_rids(receiver: &rtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver<'_>) -> Vec<String> {
    receiver
        .track()
        .codings()
        .iter()
        .map(|c| c.rtp_coding_parameters.rid.clone())
        .filter(|rid| !rid.is_empty())
        .collect()
}

/// Limits keyframe requests toward one publisher track to one per
/// [`KEYFRAME_REQUEST_INTERVAL`]; a request inside the window is remembered and sent when the
/// window ends, so the last subscriber to ask is never left without a keyframe.
#[derive(Debug, Clone, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// A subscriber asked for a keyframe; true if the request should go out now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(at) if now.saturating_duration_since(at) < KEYFRAME_REQUEST_INTERVAL => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// A deferred request whose window has passed; true if it should go out now.
    pub fn due(&mut self, now: Instant) -> bool {
        if self.pending && self.request(now) {
            return true;
        }
        false
    }

    /// When the deferred request (if any) becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(at)) => Some(at + KEYFRAME_REQUEST_INTERVAL),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_requests_are_throttled_and_deferred() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t0));
        assert!(!k.request(t0 + Duration::from_millis(100)));
        assert_eq!(k.next_due(), Some(t0 + KEYFRAME_REQUEST_INTERVAL));
        assert!(!k.due(t0 + Duration::from_millis(400)));
        assert!(k.due(t0 + Duration::from_millis(500)));
        assert!(!k.due(t0 + Duration::from_millis(600)));
    }
}
