//! The per-packet path of a room: a publisher's RTP fanned out to every active subscriber leg
//! (rewritten per leg by `rewrite.rs`, duplicates and muted tracks dropped), and the RTCP that
//! flows back — subscribers' keyframe requests relayed to publishers at most once per throttle
//! window, and their receiver reports recorded as loss, jitter and RTT. Runs on the shard
//! thread; it must not allocate per subscriber beyond the packet copy.

use super::bwe;
use super::fast::{self, record_sent, Outgoing};
use super::keyframe::starts_keyframe;
use super::leg_packet::LegHeader;
use super::peer::{Peer, PeerKey, Peers, TrackKey, Turn};
use super::publication::{Publication, Publications};
use super::rewrite::{abs_send_time, rewrite_packet};
use super::stats::wire::count_retransmission;
use super::stats::{DropReason, ReportSample};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use std::time::Instant;

/// Fans one publisher packet out to every active subscriber leg of `publication`.
pub fn fan_out(
    publication: &mut Publication,
    packet: rtc::rtp::Packet,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    let counters = &mut turn.counters;
    counters.rtp_in += 1;
    counters.rtp_bytes_in += packet.payload.len() as u64;
    if !publication
        .duplicates
        .first_time(packet.header.sequence_number)
    {
        counters.drop(DropReason::Duplicate);
        return;
    }
    if publication.muted {
        counters.drop(DropReason::Muted);
        return;
    }
    publication.record_level(&packet.header);
    let ast = abs_send_time(now, turn.epoch);
    let (seq, ts) = (packet.header.sequence_number, packet.header.timestamp);
    let track_key = publication.key;
    // Read once per packet, and only when a leg waits for a keyframe.
    let mut opens_keyframe = None;
    let mut legs_waiting = false;
    for &sub_key in &publication.subscribers {
        let Some(peer) = peers.get_mut(&sub_key) else {
            continue;
        };
        // A leg whose DTLS is not up has no SRTP keys: the stack would refuse the packet
        // (with a warning per packet). It gets a keyframe request when it connects.
        if !peer.connected {
            turn.counters.drop(DropReason::NotConnected);
            continue;
        }
        let Some(sub) = peer.subscriptions.get_mut(&track_key) else {
            continue;
        };
        let Some(pt) = sub.payload_type else {
            continue;
        };
        if sub.awaiting_keyframe {
            let key = *opens_keyframe
                .get_or_insert_with(|| starts_keyframe(&sub.codec.mime_type, &packet.payload));
            if !key {
                legs_waiting = true;
                turn.counters.drop(DropReason::AwaitingKeyframe);
                continue;
            }
            sub.awaiting_keyframe = false;
        }
        let (out_seq, out_ts) = sub.rewriter.rewrite(seq, ts, now);
        let header = LegHeader {
            marker: packet.header.marker,
            payload_type: pt,
            seq: out_seq,
            ts: out_ts,
            ssrc: sub.ssrc,
        };
        let written = match (peer.fast.as_mut(), peer.route) {
            (Some(fast), Some(route)) => {
                let bwe = &mut peer.bwe;
                let sent = fast::send_media(fast, bwe, route, sub, &packet, header, ast, turn, now);
                if sent {
                    record_sent(&mut sub.send, out_ts, packet.payload.len(), now);
                }
                sent
            }
            _ => {
                let mut out = packet.clone();
                rewrite_packet(
                    &mut out,
                    sub.ssrc,
                    pt,
                    out_seq,
                    out_ts,
                    &sub.extensions,
                    ast,
                );
                let transport_seq = bwe::stamp(&mut out, &sub.extensions, &mut peer.bwe);
                let size = bwe::stack_wire_size(&out);
                let audio = !publication.is_video();
                let sender_id = sub.sender_id;
                let written = peer
                    .pc
                    .rtp_sender(sender_id)
                    .map(|mut s| s.write_rtp(now, out).is_ok())
                    .unwrap_or(false);
                if written {
                    peer.bwe.on_sent(transport_seq, size, audio, now);
                }
                turn.touch(peer);
                written
            }
        };
        if written {
            turn.counters.forwarded += 1;
            turn.counters.forwarded_bytes += packet.payload.len() as u64;
        } else {
            turn.counters.drop(DropReason::WriteFailed);
        }
    }
    if legs_waiting {
        // The request that started the wait may have been lost: ask again (throttled).
        request_keyframe(publication, peers, turn, now);
    }
    if publication.is_video() {
        publication.cache.put(packet, ast);
    }
}

/// Answers a subscriber's NACK for `seq` (its leg's numbering) of `publication` from the
/// publication's cache, on legs on the fast path (the stack's NACK responder answers the
/// others): on the leg's RTX stream when it negotiated one; otherwise the very packet again,
/// byte for byte (same header, extensions and abs-send-time, so the same SRTP nonce protects
/// the same bytes). A leg with transport-wide numbering but no RTX gets none: its packet
/// cannot be rebuilt identically.
pub fn retransmit(
    publication: &Publication,
    key: PeerKey,
    seq: u16,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    let Some(peer) = peers.get_mut(&key) else {
        return;
    };
    let (Some(fast), Some(route)) = (peer.fast.as_mut(), peer.route) else {
        return;
    };
    let Some(sub) = peer.subscriptions.get_mut(&publication.key) else {
        return;
    };
    let (Some(pt), Some((packet, ast))) = (
        sub.payload_type,
        publication.cache.get(sub.rewriter.original_seq(seq)),
    ) else {
        return;
    };
    let ts = sub.rewriter.out_ts(packet.header.timestamp);
    let sent = match sub.rtx.filter(|r| r.payload_type.is_some()) {
        Some(mut rtx) => {
            let header = LegHeader {
                marker: packet.header.marker,
                payload_type: rtx.payload_type.unwrap_or_default(),
                seq: rtx.seq,
                ts,
                ssrc: rtx.ssrc,
            };
            let prefix = seq.to_be_bytes();
            let out = Outgoing {
                packet,
                header,
                prefix: &prefix,
                abs_send_time: abs_send_time(now, turn.epoch),
                now,
            };
            let bwe = &mut peer.bwe;
            let sent = fast::send(fast, bwe, route, sub, out, &mut rtx.rollover, turn);
            rtx.seq = rtx.seq.wrapping_add(sent as u16);
            sub.rtx = Some(rtx);
            sent
        }
        None if sub.extensions.transport_cc().is_none() => {
            let header = LegHeader {
                marker: packet.header.marker,
                payload_type: pt,
                seq,
                ts,
                ssrc: sub.ssrc,
            };
            fast::send_media(
                fast,
                &mut peer.bwe,
                route,
                sub,
                packet,
                header,
                ast,
                turn,
                now,
            )
        }
        None => false,
    };
    if sent {
        count_retransmission(packet.payload.len() as u64);
    }
}

/// What a client's RTCP asks of the server.
#[derive(Debug, Default)]
pub struct Feedback {
    /// Tracks it wants a keyframe of (PLI/FIR).
    pub keyframes: Vec<TrackKey>,
    /// Packets it lost: (track, sequence number on its leg).
    pub nacks: Vec<(TrackKey, u16)>,
}

/// Reads RTCP from a client: its NACKs, the reception reports about tracks it receives
/// (recorded), and the tracks it asks a keyframe of.
pub fn read_feedback(
    peer: &Peer,
    packets: &[Box<dyn rtc::rtcp::Packet>],
    publications: &Publications,
    turn: &mut Turn,
    now: Instant,
) -> Feedback {
    let mut wanted = Vec::new();
    let mut nacks = Vec::new();
    for packet in packets {
        let any = packet.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            wanted.extend(peer.ssrc_to_track.get(&pli.media_ssrc).copied());
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            for entry in &fir.fir {
                wanted.extend(peer.ssrc_to_track.get(&entry.ssrc).copied());
            }
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            turn.counters.nacks_in += 1;
            if let Some(track) = peer.ssrc_to_track.get(&nack.media_ssrc) {
                for pair in &nack.nacks {
                    nacks.extend(pair.packet_list().into_iter().map(|seq| (*track, seq)));
                }
            }
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            record_reports(&rr.reports, peer, publications, turn, now);
        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
            record_reports(&sr.reports, peer, publications, turn, now);
        }
    }
    turn.counters.keyframe_requests_in += wanted.len() as u64;
    Feedback {
        keyframes: wanted,
        nacks,
    }
}

/// Asks the publisher of `publication` for a keyframe, at most once per throttle window
/// (a request inside the window is sent when it ends).
pub fn request_keyframe(
    publication: &mut Publication,
    peers: &mut Peers,
    turn: &mut Turn,
    now: Instant,
) {
    if publication.is_video() && publication.keyframe.request(now) {
        send_pli(publication, peers, turn, now);
    }
}

/// Sends a PLI for `publication` to its publisher.
pub fn send_pli(publication: &Publication, peers: &mut Peers, turn: &mut Turn, now: Instant) {
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
            media_ssrc: publication.media_ssrc,
        };
        if receiver.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
            turn.counters.keyframe_requests_out += 1;
        }
    }
    turn.touch(peer);
}

/// Records the reception report blocks about tracks this server sends to `peer` (blocks about
/// other SSRCs, e.g. RTX, are skipped). Allocation-free.
fn record_reports(
    blocks: &[ReceptionReport],
    peer: &Peer,
    publications: &Publications,
    turn: &mut Turn,
    now: Instant,
) {
    let mut now_ntp = None;
    for block in blocks {
        let Some(track) = peer
            .ssrc_to_track
            .get(&block.ssrc)
            .and_then(|key| publications.get(key))
        else {
            continue;
        };
        let now_ntp = *now_ntp.get_or_insert_with(|| turn.ntp(now));
        let sample = ReportSample::from_block(block, track.codec.clock_rate, now_ntp);
        turn.counters.record_report(track.is_video(), sample);
    }
}
