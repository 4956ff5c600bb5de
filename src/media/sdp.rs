//! Reading SDP without a PeerConnection: the checks an incoming offer passes before it touches
//! one (parses, offers a codec we can forward), the direction of each m-line (to refuse an
//! answer that sends where the server offered send-only, and to see which tracks a re-offer
//! stopped), and the codecs a description declares per kind.

use super::codecs::is_forwardable;
use super::fault::MediaFault;
use crate::protocol::MediaErrorCode;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::sdp::description::session::SessionDescription;

/// `sdp` without its component-2 (RTCP) candidates: every leg multiplexes RTCP on the RTP
/// port (`a=rtcp-mux`, required by the bundle policy), so a second component only makes
/// clients gather and check a pair that is never used.
pub fn without_rtcp_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let component = line
            .strip_prefix("a=candidate:")
            .and_then(|rest| rest.split_whitespace().nth(1));
        if component != Some("2") {
            out.push_str(line);
        }
    }
    out
}

/// Why an offer was refused before it reached the PeerConnection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferProblem {
    /// The SDP does not parse.
    Unparseable(String),
    /// An audio/video section offers nothing we can forward.
    NoCommonCodec(String),
}

/// Parses an offer and checks that every audio/video section the client wants to send on
/// offers at least one forwardable codec.
pub fn check_offer(sdp: &str) -> Result<(), OfferProblem> {
    let mut reader = std::io::Cursor::new(sdp.as_bytes());
    let parsed = SessionDescription::unmarshal(&mut reader)
        .map_err(|e| OfferProblem::Unparseable(e.to_string()))?;
    if parsed.media_descriptions.is_empty() {
        return Err(OfferProblem::Unparseable("no media sections".into()));
    }
    for md in &parsed.media_descriptions {
        let kind = md.media_name.media.as_str();
        if kind != "audio" && kind != "video" {
            continue;
        }
        if md.media_name.port.value == 0 {
            continue; // rejected / stopped section
        }
        let forwardable = md.attributes.iter().any(|a| {
            a.key == "rtpmap"
                && a.value.as_deref().is_some_and(|v| {
                    v.split_whitespace()
                        .nth(1)
                        .and_then(|enc| enc.split('/').next())
                        .is_some_and(|name| is_forwardable(&format!("{kind}/{name}")))
                })
        });
        if !forwardable {
            return Err(OfferProblem::NoCommonCodec(format!(
                "the {kind} section offers no codec this server forwards (opus, VP8, VP9, H264, AV1)"
            )));
        }
    }
    Ok(())
}

/// The direction attribute and mid of each m-line of an SDP.
pub fn directions(sdp: &str) -> Result<Vec<(Option<String>, &'static str)>, String> {
    let mut reader = std::io::Cursor::new(sdp.as_bytes());
    let parsed = SessionDescription::unmarshal(&mut reader).map_err(|e| e.to_string())?;
    Ok(parsed
        .media_descriptions
        .iter()
        .map(|md| {
            let mid = md
                .attributes
                .iter()
                .find(|a| a.key == "mid")
                .and_then(|a| a.value.clone());
            let dir = ["sendonly", "recvonly", "sendrecv", "inactive"]
                .into_iter()
                .find(|d| md.attributes.iter().any(|a| a.key == *d))
                .unwrap_or("sendrecv");
            (mid, dir)
        })
        .collect())
}

/// JSEP: an answer to a send-only m-line must not send on it. Refusing such an answer keeps a
/// stray or forged SDP from replacing the connection's ICE and DTLS parameters.
pub fn check_answer_directions(offer: &str, answer: &str) -> Result<(), MediaFault> {
    let offered = directions(offer).map_err(|e| MediaFault::new(MediaErrorCode::Internal, e))?;
    let answered = directions(answer).map_err(|e| MediaFault::new(MediaErrorCode::BadSdp, e))?;
    for (mid, dir) in &answered {
        let ours = offered.iter().find(|(m, _)| m == mid).map(|(_, d)| *d);
        let Some(ours) = ours else {
            return Err(MediaFault::new(
                MediaErrorCode::BadSdp,
                format!("the answer has an m-line (mid {mid:?}) the offer did not"),
            ));
        };
        if ours == "sendonly" && (*dir == "sendonly" || *dir == "sendrecv") {
            return Err(MediaFault::new(
                MediaErrorCode::BadSdp,
                format!("the answer sends on m-line {mid:?}, which the server offered send-only"),
            ));
        }
    }
    Ok(())
}

/// The codecs of `kind` a parsed description declares; `None` when it has no section of that
/// kind (unknown, not "unsupported").
pub fn declared_codecs(
    parsed: &SessionDescription,
    kind: RtpCodecKind,
) -> Option<Vec<RTCRtpCodec>> {
    let kind_name = match kind {
        RtpCodecKind::Audio => "audio",
        RtpCodecKind::Video => "video",
        _ => return None,
    };
    // No section of this kind yet (first negotiation covered only the other kind, or is
    // still in flight): unknown, not "unsupported". The answer decides later.
    if !parsed
        .media_descriptions
        .iter()
        .any(|m| m.media_name.media == kind_name)
    {
        return None;
    }
    let mut out = Vec::new();
    for md in parsed
        .media_descriptions
        .iter()
        .filter(|m| m.media_name.media == kind_name)
    {
        for attr in md.attributes.iter().filter(|a| a.key == "rtpmap") {
            let Some(value) = attr.value.as_deref() else {
                continue;
            };
            let mut parts = value.split_whitespace();
            let (Some(pt), Some(enc)) = (parts.next(), parts.next()) else {
                continue;
            };
            let mut enc = enc.split('/');
            let name = enc.next().unwrap_or_default();
            let clock_rate = enc.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let fmtp = md
                .attributes
                .iter()
                .filter(|a| a.key == "fmtp")
                .filter_map(|a| a.value.as_deref())
                .find_map(|v| v.strip_prefix(pt).and_then(|r| r.strip_prefix(' ')))
                .unwrap_or_default();
            out.push(RTCRtpCodec {
                mime_type: format!("{kind_name}/{name}"),
                clock_rate,
                channels: 0,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: vec![],
            });
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::without_rtcp_candidates;

    #[test]
    fn rtcp_candidates_are_removed_and_the_rest_kept() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
            a=candidate:1 2 udp 2130706431 127.0.0.1 40000 typ host\r\n\
            a=rtcp-mux\r\n";
        let out = without_rtcp_candidates(sdp);
        assert!(out.contains("a=candidate:1 1 udp"));
        assert!(!out.contains("a=candidate:1 2 udp"));
        assert!(out.ends_with("a=rtcp-mux\r\n"));
        assert_eq!(out.lines().count(), sdp.lines().count() - 1);
    }

    use super::*;

    #[test]
    fn offers_are_checked() {
        assert!(matches!(
            check_offer("not sdp at all"),
            Err(OfferProblem::Unparseable(_))
        ));
        let pcmu_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert!(matches!(
            check_offer(pcmu_only),
            Err(OfferProblem::NoCommonCodec(_))
        ));
        let opus = pcmu_only
            .replace("SAVPF 0", "SAVPF 111")
            .replace("0 PCMU/8000", "111 opus/48000/2");
        assert_eq!(check_offer(&opus), Ok(()));
    }
}
