//! Padding-only RTP for bandwidth probing (`media::bwe::probe`): packets on the RTX stream of
//! one of the leg's video subscriptions, with the RTP padding bit set, no payload and
//! [`PADDING_BYTES`] of padding, numbered on the RTX stream and with the leg's transport-wide
//! sequence number, protected with the leg's SRTP keys. A receiver counts them in its TWCC
//! feedback and discards them (libwebrtc sends its own padding the same way). A leg without a
//! negotiated RTX stream gets none: padding on the media SSRC would take sequence numbers from
//! the forwarded stream.

use super::leg::RtxStream;
use super::{Peer, Turn};
use crate::media::bwe::PADDING_BYTES;
use crate::media::datagram::Transmit;
use crate::media::leg_bandwidth::pads;
use crate::media::leg_packet::{write_packet, LegHeader};
use crate::media::peer::Peers;
use crate::media::rewrite::abs_send_time;
use crate::rtp::srtp_out::TAG_LEN;
use std::time::Instant;

/// The RTP padding bit in the first header byte.
const PADDING_BIT: u8 = 0x20;

/// Sends `count` padding packets on `peer`'s leg; returns how many left.
pub fn send_padding(peer: &mut Peer, count: usize, now: Instant, turn: &mut Turn) -> usize {
    let (Some(fast), Some(route)) = (peer.fast.as_mut(), peer.route) else {
        return 0;
    };
    let Some(sub) = peer.subscriptions.values_mut().find(|s| pads(s)) else {
        return 0;
    };
    let Some(mut rtx): Option<RtxStream> = sub.rtx else {
        return 0;
    };
    let ts = sub.send.last.map_or(0, |(ts, _)| ts);
    let ast = abs_send_time(now, turn.epoch);
    let mut padding = [0u8; PADDING_BYTES];
    padding[PADDING_BYTES - 1] = PADDING_BYTES as u8;
    let mut sent = 0;
    for _ in 0..count {
        let transport_seq = sub
            .extensions
            .transport_cc()
            .map(|_| peer.bwe.next_transport_seq());
        let header = LegHeader {
            marker: false,
            payload_type: rtx.payload_type.unwrap_or_default(),
            seq: rtx.seq,
            ts,
            ssrc: rtx.ssrc,
        };
        let mut buf = turn.buffers.take();
        buf.reserve(12 + 64 + PADDING_BYTES + TAG_LEN);
        let header_len = write_packet(
            &mut buf,
            &header,
            &sub.extensions,
            &[],
            ast,
            transport_seq,
            &[],
            &padding,
        );
        buf[0] |= PADDING_BIT;
        let roc = rtx.rollover.for_seq(rtx.seq);
        if fast
            .srtp
            .protect(&mut buf, header_len, rtx.ssrc, rtx.seq, roc)
            .is_err()
        {
            break;
        }
        rtx.seq = rtx.seq.wrapping_add(1);
        peer.bwe.on_sent(transport_seq, buf.len(), false, now);
        turn.transmits.push(Transmit {
            local: route.local,
            to: route.to,
            data: buf,
        });
        sent += 1;
    }
    sub.rtx = Some(rtx);
    sent
}

/// Sends the padding due on every probing leg; true while any leg still probes.
pub fn probe_tick(peers: &mut Peers, turn: &mut Turn, now: Instant) -> bool {
    let mut probing = false;
    for peer in peers.values_mut() {
        if !peer.bwe.probing(now) {
            continue;
        }
        probing = true;
        let due = peer.bwe.padding_due(now);
        if due > 0 {
            send_padding(peer, due, now, turn);
        }
    }
    probing
}
