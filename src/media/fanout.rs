//! The per-packet path of a room: a publisher's RTP fanned out to every active subscriber leg
//! (rewritten per leg, duplicates and muted tracks dropped), and the RTCP that flows back —
//! subscribers' keyframe requests relayed to publishers at most once per throttle window, and
//! their receiver reports recorded as loss, jitter and RTT. Runs on the shard thread; it must
//! not allocate per subscriber beyond the packet copy.

use super::forward::{abs_send_time, rewrite_packet};
use super::peer::Peer;
use super::peer::{PeerKey, TrackKey};
use super::routing::PublishedTrack;
use super::shard::Shard;
use super::stats::{ntp_now, DropReason, ReportSample, ShardCounters};
use rtc::peer_connection::message::RTCMessage;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::HashMap;
use std::time::Instant;

impl Shard {
    pub fn on_pc_message(&mut self, key: PeerKey, message: RTCMessage, now: Instant) {
        match message {
            RTCMessage::RtpPacket(track_id, packet) => self.forward(key, &track_id, packet, now),
            RTCMessage::RtcpPacket(_, packets) => self.on_rtcp(key, &packets, now),
            _ => {}
        }
    }

    /// Fans one publisher packet out to every active subscriber leg of its track.
    fn forward(&mut self, key: PeerKey, track_id: &str, packet: rtc::rtp::Packet, now: Instant) {
        let Some(&(track_key, _)) = self.peers.get(&key).and_then(|p| p.published.get(track_id))
        else {
            return;
        };
        let epoch = self.epoch;
        let Shard {
            peers,
            tracks,
            counters,
            touched,
            ..
        } = self;
        let Some(track) = tracks.get_mut(&track_key) else {
            return;
        };
        counters.rtp_in += 1;
        counters.rtp_bytes_in += packet.payload.len() as u64;
        if !track.duplicates.first_time(packet.header.sequence_number) {
            counters.drop(DropReason::Duplicate);
            return;
        }
        if track.muted {
            counters.drop(DropReason::Muted);
            return;
        }
        let ast = abs_send_time(now, epoch);
        let (seq, ts) = (packet.header.sequence_number, packet.header.timestamp);
        for &sub_key in &track.subscribers {
            let Some(peer) = peers.get_mut(&sub_key) else {
                continue;
            };
            let Some(sub) = peer.subscriptions.get_mut(&track_key) else {
                continue;
            };
            let Some(pt) = sub.payload_type else {
                continue;
            };
            let (out_seq, out_ts) = sub.rewriter.rewrite(seq, ts, now);
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
            let sender_id = sub.sender_id;
            let written = peer
                .pc
                .rtp_sender(sender_id)
                .map(|mut s| s.write_rtp(now, out).is_ok())
                .unwrap_or(false);
            if written {
                counters.forwarded += 1;
                counters.forwarded_bytes += packet.payload.len() as u64;
            } else {
                counters.drop(DropReason::WriteFailed);
            }
            if !peer.touched {
                peer.touched = true;
                touched.push(sub_key);
            }
        }
    }

    /// RTCP from a client: keyframe requests for tracks it receives go to their publishers.
    fn on_rtcp(&mut self, key: PeerKey, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        let mut wanted = Vec::new();
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        for packet in packets {
            let any = packet.as_any();
            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                wanted.extend(peer.ssrc_to_track.get(&pli.media_ssrc).copied());
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                for entry in &fir.fir {
                    wanted.extend(peer.ssrc_to_track.get(&entry.ssrc).copied());
                }
            } else if any.downcast_ref::<TransportLayerNack>().is_some() {
                self.counters.nacks_in += 1;
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                record_reports(&rr.reports, peer, &self.tracks, &mut self.counters);
            } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                record_reports(&sr.reports, peer, &self.tracks, &mut self.counters);
            }
        }
        for track in wanted {
            self.counters.keyframe_requests_in += 1;
            self.request_keyframe(track, now);
        }
    }

    /// Asks the publisher of `track` for a keyframe, at most once per throttle window.
    pub fn request_keyframe(&mut self, track: TrackKey, now: Instant) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.kind != RtpCodecKind::Video || !t.keyframe.request(now) {
            return;
        }
        self.send_pli(track, now);
    }

    fn send_pli(&mut self, track: TrackKey, now: Instant) {
        let Some(t) = self.tracks.get(&track) else {
            return;
        };
        let (publisher, receiver_id, media_ssrc) = (t.publisher, t.receiver_id, t.media_ssrc);
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        if let Some(mut receiver) = peer.pc.rtp_receiver(receiver_id) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if receiver.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
                self.counters.keyframe_requests_out += 1;
            }
        }
        self.touch(publisher);
    }

    /// Sends keyframe requests that were deferred by the throttle and are now due.
    pub fn deferred_keyframes(&mut self, now: Instant) {
        let due: Vec<TrackKey> = self
            .tracks
            .values_mut()
            .filter_map(|t| t.keyframe.due(now).then_some(t.key))
            .collect();
        for track in due {
            self.send_pli(track, now);
        }
    }
}

/// Records the reception report blocks about tracks this server sends to `peer` (blocks about
/// other SSRCs, e.g. RTX, are skipped). Allocation-free; reads the wall clock at most once.
fn record_reports(
    blocks: &[ReceptionReport],
    peer: &Peer,
    tracks: &HashMap<TrackKey, PublishedTrack>,
    counters: &mut ShardCounters,
) {
    let mut now_ntp = None;
    for block in blocks {
        let Some(track) = peer
            .ssrc_to_track
            .get(&block.ssrc)
            .and_then(|key| tracks.get(key))
        else {
            continue;
        };
        let now_ntp = *now_ntp.get_or_insert_with(ntp_now);
        let sample = ReportSample::from_block(block, track.codec.clock_rate, now_ntp);
        counters.record_report(track.kind == RtpCodecKind::Video, sample);
    }
}
