//! The tracks a peer's connection sends (its subscriptions): one send-only transceiver per
//! forwarded track, offered with every codec of its kind the leg can receive, and the payload
//! type and header extensions each one got once negotiated. The room decides what to subscribe
//! (`subscriptions.rs`); this applies it to one connection.

use super::codecs::codec_matches;
use super::fast::leg::{RtxStream, StreamSend};
use super::fault::MediaFault;
use super::peer::{Peer, TrackKey};
use super::rewrite::{ExtensionMap, SequenceRewriter};
use super::simulcast::SimulcastLeg;
use crate::protocol::MediaErrorCode;
use rand::Rng;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};
use std::collections::HashMap;
use std::time::Instant;

/// One forwarded track on this peer's connection.
pub struct Subscription {
    pub track: TrackKey,
    pub track_id: String,
    pub publisher_peer_id: String,
    pub sender_id: RTCRtpSenderId,
    pub ssrc: u32,
    /// Payload type on this leg; `None` until negotiated (nothing is forwarded before).
    pub payload_type: Option<u8>,
    pub extensions: ExtensionMap,
    pub rewriter: SequenceRewriter,
    pub mid: Option<String>,
    pub kind: RtpCodecKind,
    pub codec: RTCRtpCodec,
    /// Video that starts or resumes on this leg waits for a keyframe: nothing is forwarded
    /// until a packet that opens one (see `keyframe.rs`).
    pub awaiting_keyframe: bool,
    /// The fast path's numbering and report figures of this stream (`fast.rs`).
    pub send: StreamSend,
    /// The RTX stream retransmissions go on (video); its payload type once negotiated.
    pub rtx: Option<RtxStream>,
    /// Which layer of a simulcast track this leg receives, and its picture-id rewriting.
    pub simulcast: SimulcastLeg,
}

impl Subscription {
    /// The stream on this leg starts again (negotiated, unmuted): the next forwarded packet
    /// re-anchors the numbering and, for video, is the start of a keyframe.
    pub fn restart(&mut self) {
        self.rewriter.pause();
        self.awaiting_keyframe = self.kind == RtpCodecKind::Video;
        self.simulcast.reset();
    }
}

impl Peer {
    /// Starts sending `track` to this client: a new sender with our own SSRCs; the next
    /// server offer carries it.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &mut self,
        track: TrackKey,
        track_id: &str,
        publisher_peer_id: &str,
        kind: RtpCodecKind,
        codec: &RTCRtpCodec,
        now: Instant,
    ) -> Result<(), MediaFault> {
        let mut rng = rand::rng();
        let ssrc: u32 = rng.random();
        let rtx = (kind == RtpCodecKind::Video).then(|| RTCRtpRtxParameters { ssrc: rng.random() });
        let rtx_stream = rtx.as_ref().map(|r| RtxStream {
            ssrc: r.ssrc,
            payload_type: None,
            seq: rng.random(),
            rollover: Default::default(),
        });
        let media_track = MediaStreamTrack::new(
            publisher_peer_id.to_owned(),
            track_id.to_owned(),
            track_id.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rtx,
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            }],
        );
        // A transceiver of its own, send-only: `add_track` would reuse the receive transceiver
        // of one of the client's published tracks, and a send-recv transceiver could be
        // claimed by the client's next offer (JSEP matching), stealing the subscription. The
        // m-line of an ended subscription of the same codec is reused first (`recycle.rs`).
        let reused = self.recycler.reuse(&mut self.pc, &media_track, codec);
        let transceiver = match reused {
            Some(transceiver) => transceiver,
            None => self
                .pc
                .add_transceiver_from_track(
                    media_track,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![publisher_peer_id.to_owned()],
                        send_encodings: vec![],
                    }),
                )
                .map_err(|e| {
                    MediaFault::new(MediaErrorCode::Internal, format!("add transceiver: {e}"))
                })?,
        };
        self.offer_every_receivable_codec(transceiver, codec);
        let sender_id = self
            .pc
            .rtp_transceiver(transceiver)
            .and_then(|t| t.sender())
            .ok_or_else(|| {
                MediaFault::new(MediaErrorCode::Internal, "new transceiver has no sender")
            })?;
        let clock_rate = codec.clock_rate;
        self.ssrc_to_track.insert(ssrc, track);
        self.subscriptions.insert(
            track,
            Subscription {
                track,
                track_id: track_id.to_owned(),
                publisher_peer_id: publisher_peer_id.to_owned(),
                sender_id,
                ssrc,
                payload_type: None,
                extensions: ExtensionMap::default(),
                rewriter: SequenceRewriter::new(clock_rate, rng.random(), rng.random(), now),
                mid: None,
                kind,
                codec: codec.clone(),
                awaiting_keyframe: kind == RtpCodecKind::Video,
                send: StreamSend::default(),
                rtx: rtx_stream,
                simulcast: SimulcastLeg::default(),
            },
        );
        self.needs_offer = true;
        Ok(())
    }

    /// The transceiver's m-line lists the track's codec and then every other codec of its kind
    /// the leg can receive: a client's first answer then declares all it can take, and the
    /// stack, which fixes a connection's codecs from that first answer, keeps them all.
    fn offer_every_receivable_codec(
        &mut self,
        transceiver: RTCRtpTransceiverId,
        codec: &RTCRtpCodec,
    ) {
        let preferences = self.receive.preferences(codec);
        if preferences.is_empty() {
            return;
        }
        if let Some(mut t) = self.pc.rtp_transceiver(transceiver) {
            if let Err(e) = t.set_codec_preferences(preferences) {
                tracing::debug!(peer = %self.peer_id, error = %e, "codec preferences refused");
            }
        }
    }

    /// Creates the server offer. When the stack refuses (a sender it has no codec for), the
    /// subscriptions not negotiated yet are dropped one at a time — those the leg cannot
    /// receive first, then the newest — until it succeeds, so a bad one never wedges the leg;
    /// the dropped ones go to `dropped` for the room to settle.
    pub(super) fn create_offer_or_shed(&mut self) -> Option<RTCSessionDescription> {
        loop {
            let error = match self.pc.create_offer(None) {
                Ok(offer) => return Some(offer),
                Err(e) => e,
            };
            let Some(track) = self.next_to_shed() else {
                self.fault(MediaFault::new(
                    MediaErrorCode::Internal,
                    format!("create offer: {error}"),
                ));
                return None;
            };
            tracing::warn!(peer = %self.peer_id, track, %error, "server offer refused; dropping a pending subscription");
            self.unsubscribe(track);
            let reason =
                format!("the server could not offer this track on your connection: {error}");
            self.dropped.push((track, reason));
        }
    }

    fn next_to_shed(&self) -> Option<TrackKey> {
        self.subscriptions
            .values()
            .filter(|s| s.payload_type.is_none())
            .max_by_key(|s| (!self.receive.can_receive(&s.codec), s.track))
            .map(|s| s.track)
    }

    /// The subscriptions whose codec this leg cannot receive (any more): a negotiation locked
    /// the connection to other codecs.
    pub fn unreceivable(&self) -> Vec<TrackKey> {
        self.subscriptions
            .values()
            .filter(|s| !self.receive.can_receive(&s.codec))
            .map(|s| s.track)
            .collect()
    }

    /// Stops sending `track`; the next server offer removes it.
    pub fn unsubscribe(&mut self, track: TrackKey) -> bool {
        let Some(sub) = self.subscriptions.remove(&track) else {
            return false;
        };
        self.ssrc_to_track.remove(&sub.ssrc);
        if self.pc.remove_track(sub.sender_id).is_ok() {
            self.recycler.release(sub.sender_id, &sub.codec);
        }
        self.needs_offer = true;
        true
    }

    pub(super) fn refresh_mids(&mut self) {
        let mut mids = HashMap::new();
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            if let Some(t) = self.pc.rtp_transceiver(id) {
                if let (Some(sender), Some(mid)) = (t.sender(), t.mid().clone()) {
                    mids.insert(sender, mid);
                }
            }
        }
        for sub in self.subscriptions.values_mut() {
            sub.mid = mids.get(&sub.sender_id).cloned();
        }
    }

    /// After a negotiation completes: the payload type and extension ids each pending
    /// subscription got on this leg. `publisher_exts` gives the publisher's negotiated
    /// (uri, id) list for a track. Returns the tracks that became active (they need a
    /// keyframe) and those whose codec this leg did not accept.
    pub fn activate_subscriptions(
        &mut self,
        publisher_exts: impl Fn(TrackKey) -> Vec<(String, u8)>,
    ) -> (Vec<TrackKey>, Vec<TrackKey>) {
        if self.has_local_offer() || self.has_remote_offer() {
            return (Vec::new(), Vec::new());
        }
        self.refresh_mids();
        let mut activated = Vec::new();
        let mut refused = Vec::new();
        let keys: Vec<TrackKey> = self.subscriptions.keys().copied().collect();
        for key in keys {
            let (sender_id, pending) = match self.subscriptions.get(&key) {
                Some(s) => (s.sender_id, s.payload_type.is_none()),
                None => continue,
            };
            if !pending {
                continue;
            }
            let Some(mut sender) = self.pc.rtp_sender(sender_id) else {
                continue;
            };
            let params = sender.get_parameters();
            let Some(sub) = self.subscriptions.get(&key) else {
                continue;
            };
            if sub.mid.is_none() {
                continue; // not yet in a negotiated m-line
            }
            let pt = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| codec_matches(&sub.codec, &c.rtp_codec))
                .map(|c| c.payload_type);
            let leg_exts: Vec<(String, u8)> = params
                .rtp_parameters
                .header_extensions
                .iter()
                .map(|h| (h.uri.clone(), h.id as u8))
                .collect();
            match pt {
                Some(pt) => {
                    let exts = publisher_exts(key);
                    let rtx_pt = rtx_payload_type(&params.rtp_parameters.codecs, pt);
                    if let Some(sub) = self.subscriptions.get_mut(&key) {
                        sub.payload_type = Some(pt);
                        if let Some(rtx) = sub.rtx.as_mut() {
                            rtx.payload_type = rtx_pt;
                        }
                        sub.extensions = ExtensionMap::new(&exts, &leg_exts, sub.mid.as_deref());
                        sub.restart();
                    }
                    activated.push(key);
                }
                None => {
                    tracing::debug!(peer = %self.peer_id, codec = %sub.codec.mime_type, leg = ?params.rtp_parameters.codecs.iter().map(|c| c.rtp_codec.mime_type.clone()).collect::<Vec<_>>(), "subscription refused");
                    refused.push(key)
                }
            }
        }
        (activated, refused)
    }
}

/// The payload type of the RTX codec (`apt=pt`) negotiated for payload type `pt`.
fn rtx_payload_type(
    codecs: &[rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters],
    pt: u8,
) -> Option<u8> {
    let apt = format!("apt={pt}");
    codecs
        .iter()
        .find(|c| {
            c.rtp_codec.mime_type.eq_ignore_ascii_case("video/rtx")
                && c.rtp_codec
                    .sdp_fmtp_line
                    .split(';')
                    .any(|p| p.trim() == apt)
        })
        .map(|c| c.payload_type)
}
