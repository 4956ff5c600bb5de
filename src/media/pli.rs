//! Keyframe requests to a publisher: a PLI on the publisher's leg for one of its streams (a
//! plain track's SSRC, or one simulcast layer's), or for every layer of a track.

use super::peer::{Peers, Turn};
use super::publication::Publication;
use super::stats::DropReason;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::time::Instant;

/// Sends a PLI for `publication` to its publisher (every layer of a simulcast track).
pub fn send_pli(publication: &Publication, peers: &mut Peers, turn: &mut Turn, now: Instant) {
    if publication.is_simulcast() {
        let ssrcs: Vec<u32> = publication.layers.iter().map(|l| l.ssrc).collect();
        for ssrc in ssrcs {
            send_pli_to(publication, ssrc, peers, turn, now);
        }
        return;
    }
    send_pli_to(publication, publication.media_ssrc, peers, turn, now);
}

/// Sends a PLI for the publisher stream `media_ssrc` of `publication`.
pub fn send_pli_to(
    publication: &Publication,
    media_ssrc: u32,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    let Some(peer) = peers.get_mut(&publication.publisher) else {
        return;
    };
    if !peer.connected {
        turn.counters.drop(DropReason::NotConnected);
        return;
    }
    if let Some(mut receiver) = peer.pc.rtp_receiver(publication.receiver_id) {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if receiver.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
            turn.counters.keyframe_requests_out += 1;
        }
    }
    turn.touch(peer);
}
