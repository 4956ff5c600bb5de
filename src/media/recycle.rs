//! Reusing the m-lines of departed tracks. The stack never drops an m-line: a removed sender
//! leaves its transceiver, and an `a=inactive` section, in every later offer and answer, so a
//! long meeting's SDP would grow with its history. A transceiver whose sender was removed is
//! kept here; the next subscription of the same codec takes it over once the client has
//! negotiated it inactive, so a leg's SDP holds the tracks present plus those released since
//! its last negotiation.
//!
//! The stack's only way to put a sender on an existing transceiver is `add_track`, which takes
//! the first sender-less transceiver of the kind; that may be one of the client's own receive
//! transceivers. Those are detours: their sender is removed again at once and their direction
//! and codecs put back, and `add_track` is called again until it lands on a released one.

use super::codecs::codec_matches;
use super::sdp::directions;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId,
};

/// A transceiver of ours whose sender was removed, and the codec it was negotiated for.
struct Released {
    transceiver: RTCRtpTransceiverId,
    codec: RTCRtpCodec,
}

/// The released send transceivers of one connection.
#[derive(Default)]
pub struct Recycler {
    released: Vec<Released>,
}

/// A transceiver's direction and receive codecs before a detour.
struct Before {
    direction: RTCRtpTransceiverDirection,
    codecs: Vec<RTCRtpCodecParameters>,
}

impl Recycler {
    /// Remembers the transceiver of a sender that was just removed.
    pub fn release(&mut self, sender: RTCRtpSenderId, codec: &RTCRtpCodec) {
        self.released.push(Released {
            transceiver: sender.into(),
            codec: codec.clone(),
        });
    }

    /// Forgets everything (the connection was replaced).
    pub fn clear(&mut self) {
        self.released.clear();
    }

    /// Puts `track` (of `codec`) on a released transceiver that is ready for it, made
    /// send-only. `None` when none is ready: the caller adds a new transceiver.
    pub fn reuse(
        &mut self,
        pc: &mut RTCPeerConnection,
        track: &MediaStreamTrack,
        codec: &RTCRtpCodec,
    ) -> Option<RTCRtpTransceiverId> {
        let negotiated = pc
            .current_local_description()
            .and_then(|d| directions(&d.sdp).ok())
            .unwrap_or_default();
        let ready: Vec<RTCRtpTransceiverId> = self
            .released
            .iter()
            .filter(|r| codec_matches(codec, &r.codec) && codec_matches(&r.codec, codec))
            .map(|r| r.transceiver)
            .filter(|t| is_ready(pc, *t, &negotiated))
            .collect();
        if ready.is_empty() {
            return None;
        }
        let count = pc.get_transceivers().count();
        let before: Vec<Option<Before>> = (0..count).map(|t| snapshot(pc, t)).collect();
        let mut detours = Vec::new();
        let picked = loop {
            let Ok(sender) = pc.add_track(track.clone()) else {
                break None;
            };
            let id: RTCRtpTransceiverId = sender.into();
            if id >= count {
                // None of them could take a sender (the client's offer stopped them): keep
                // the new transceiver, send-only as any subscription's.
                self.released.retain(|r| !ready.contains(&r.transceiver));
                set_direction(pc, id, RTCRtpTransceiverDirection::Sendonly);
                break Some(id);
            }
            if ready.contains(&id) {
                self.released.retain(|r| r.transceiver != id);
                set_direction(pc, id, RTCRtpTransceiverDirection::Sendonly);
                break Some(id);
            }
            detours.push(id);
        };
        for id in detours {
            if let Some(before) = before.get(id).and_then(Option::as_ref) {
                undo_detour(pc, id, before);
            }
        }
        picked
    }
}

/// Whether the transceiver is free and the client has negotiated it inactive (our last
/// applied description, offer or answer, says so), or never saw it: a new track on it then
/// starts a fresh stream rather than replacing one mid-flight. Our own description is the
/// judge, not the client's answer: some stacks answer `recvonly` to an inactive offer.
fn is_ready(
    pc: &mut RTCPeerConnection,
    id: RTCRtpTransceiverId,
    negotiated: &[(Option<String>, &'static str)],
) -> bool {
    let Some(t) = pc.rtp_transceiver(id) else {
        return false;
    };
    if t.sender().is_some() {
        return false;
    }
    match t.mid() {
        None => true,
        Some(mid) => negotiated
            .iter()
            .any(|(m, dir)| m.as_deref() == Some(mid.as_str()) && *dir == "inactive"),
    }
}

fn snapshot(pc: &mut RTCPeerConnection, id: RTCRtpTransceiverId) -> Option<Before> {
    let direction = {
        let t = pc.rtp_transceiver(id)?;
        if t.sender().is_some() {
            return None; // add_track never picks it
        }
        t.direction()
    };
    let codecs = pc
        .rtp_receiver(RTCRtpReceiverId::from(id))
        .map(|mut r| r.get_parameters().rtp_parameters.codecs.clone())
        .unwrap_or_default();
    Some(Before { direction, codecs })
}

fn set_direction(
    pc: &mut RTCPeerConnection,
    id: RTCRtpTransceiverId,
    direction: RTCRtpTransceiverDirection,
) {
    if let Some(mut t) = pc.rtp_transceiver(id) {
        t.set_direction(direction);
    }
}

/// Takes the sender `add_track` put on a transceiver that was not ours back off, and restores
/// its direction and (when `add_track` set them) its codec preferences.
fn undo_detour(pc: &mut RTCPeerConnection, id: RTCRtpTransceiverId, before: &Before) {
    let _ = pc.remove_track(RTCRtpSenderId::from(id));
    set_direction(pc, id, before.direction);
    let changed = pc
        .rtp_receiver(RTCRtpReceiverId::from(id))
        .is_some_and(|mut r| r.get_parameters().rtp_parameters.codecs != before.codecs);
    if changed {
        if let Some(mut t) = pc.rtp_transceiver(id) {
            let _ = t.set_codec_preferences(before.codecs.clone());
        }
    }
}
