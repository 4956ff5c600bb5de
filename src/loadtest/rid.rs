//! How a synthetic simulcast publisher marks its layers on the wire: the header extensions
//! its connection negotiates (mid, rid, repaired rid) and the ids and mid it stamps on each
//! layer's packets once negotiated.

use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpSenderId;

/// The header extensions a simulcast publisher stamps (mid, rid) and offers (repaired rid).
pub const SIMULCAST_EXTENSIONS: [&str; 3] = [
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
];

/// A simulcast sender's negotiated mid and rid extension ids and its mid.
pub fn layer_stamp(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
) -> Option<(u8, u8, bytes::Bytes)> {
    let exts: Vec<(String, u8)> = {
        let mut s = pc.rtp_sender(sender)?;
        let params = s.get_parameters();
        let list = params.rtp_parameters.header_extensions.iter();
        list.map(|h| (h.uri.clone(), h.id as u8)).collect()
    };
    let id = |uri: &str| exts.iter().find(|(u, _)| u == uri).map(|(_, id)| *id);
    let (mid_id, rid_id) = (id(SIMULCAST_EXTENSIONS[0])?, id(SIMULCAST_EXTENSIONS[1])?);
    let ids: Vec<_> = pc.get_transceivers().collect();
    let mid = ids.into_iter().find_map(|t| {
        let t = pc.rtp_transceiver(t)?;
        (t.sender() == Some(sender))
            .then(|| t.mid().clone())
            .flatten()
    })?;
    Some((mid_id, rid_id, bytes::Bytes::from(mid.into_bytes())))
}
