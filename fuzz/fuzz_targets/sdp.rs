//! Fuzz target: SDP offer/answer handling as the media leg does it before the WebRTC stack sees
//! a description: parse, the forwardable-codec check of an offer, the per-m-line directions, the
//! component-2 candidate filter, the codecs that lock each kind and what the leg can then
//! receive, and the answer-against-offer direction check. The input is an offer, optionally
//! followed by a NUL byte and an answer.
#![no_main]

use chorus::media::capabilities::ReceiveCaps;
use chorus::media::sdp::{
    check_answer_directions, check_offer, directions, first_section_codecs,
    without_rtcp_candidates,
};
use libfuzzer_sys::fuzz_target;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sdp::description::session::SessionDescription;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (offer, answer) = text.split_once('\0').unwrap_or((text, ""));
    let _ = check_offer(offer);
    let _ = directions(offer);
    let _ = without_rtcp_candidates(offer);
    if let Ok(parsed) = SessionDescription::unmarshal(&mut std::io::Cursor::new(offer.as_bytes())) {
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            if let Some(codecs) = first_section_codecs(&parsed, kind) {
                let _ = codecs.len();
            }
        }
        // The codecs a leg can receive, narrowed by this description (the stack's lock).
        let mut caps = ReceiveCaps::new(None);
        caps.learn(&parsed);
        // What the server writes back must parse again.
        let written = parsed.marshal();
        let _ = SessionDescription::unmarshal(&mut std::io::Cursor::new(written.as_bytes()));
    }
    if !answer.is_empty() {
        if let Err(fault) = check_answer_directions(offer, answer) {
            let _ = fault.code.as_str();
        }
    }
});
