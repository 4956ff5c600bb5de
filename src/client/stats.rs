//! Counters of the test client and the plain snapshot structs tests assert on: what each
//! published track sent (and the RTCP it got back), what each received track delivered, and how
//! negotiation went. Recorders are updated by the client's tasks under short std mutexes; this
//! module does no I/O and never blocks on anything but those mutexes.

use crate::loadtest::payload::{self, Probe};
use crate::protocol::{TrackKind, TrackSource};
use std::collections::BTreeMap;
use std::time::Instant;

/// What one published track has done so far.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedTrackSnapshot {
    /// Random tag carried in every payload of this track.
    pub tag: u64,
    pub kind: TrackKind,
    pub source: TrackSource,
    /// msid track id of the local track.
    pub local_track_id: String,
    /// The server's id of this track, once announced (falls back to the msid track id).
    pub track_id: Option<String>,
    /// m-line of the sending transceiver, once negotiated.
    pub mid: Option<String>,
    pub ssrc: u32,
    /// Payload type in use (the negotiated one once known).
    pub payload_type: u8,
    /// Packets handed to the WebRTC stack after negotiation.
    pub sent: u64,
    pub bytes_sent: u64,
    pub keyframes_sent: u64,
    /// Picture loss indications received from the server.
    pub plis: u64,
    /// Full intra requests received from the server.
    pub firs: u64,
    /// Generic NACKs received from the server.
    pub nacks: u64,
    pub write_errors: u64,
    pub muted: bool,
    pub unpublished: bool,
    /// Hash of each payload sent, by counter (empty when hashes are not recorded).
    pub hashes: BTreeMap<u32, u64>,
}

/// Latency summary in microseconds (now − send time carried in the payload).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p95_us: u64,
}

/// What one received track delivered so far.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedTrackSnapshot {
    /// Index of this received track in the client (stable; use it for NACK/PLI requests).
    pub index: usize,
    pub kind: Option<TrackKind>,
    /// m-line of the receiving transceiver, once known.
    pub mid: Option<String>,
    /// msid stream id (the server sets it to the publisher's peer id).
    pub msid_stream_id: String,
    /// msid track id (the server sets it to the track id).
    pub msid_track_id: String,
    /// Publisher peer id: from the server's mid mapping when known, else the msid stream id.
    pub peer_id: Option<String>,
    /// Track id: from the server's mid mapping when known, else the msid track id.
    pub track_id: Option<String>,
    /// Tag found in the payloads (identifies the publishing track).
    pub tag: Option<u64>,
    pub ssrcs: Vec<u32>,
    pub payload_types: Vec<u8>,
    pub packets: u64,
    pub bytes: u64,
    /// Distinct payload counters seen.
    pub unique_counters: u64,
    /// Packets whose RTP sequence number had been seen before (retransmissions).
    pub retransmissions: u64,
    /// Packets whose payload did not parse as a probe.
    pub bad_payloads: u64,
    /// Payloads whose tag differs from the first one seen on this track.
    pub foreign_tags: u64,
    pub keyframes: u64,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    pub latency: LatencySummary,
    pub ended: bool,
    /// Hash of each payload received, by counter (first copy; empty when not recorded).
    pub hashes: BTreeMap<u32, u64>,
}

/// How negotiation went, from the client's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NegotiationSnapshot {
    pub offers_sent: u64,
    pub answers_received: u64,
    pub server_offers_applied: u64,
    /// Server offers ignored because the client had its own offer outstanding (glare).
    pub server_offers_ignored: u64,
    pub answers_sent: u64,
    pub unexpected_answers: u64,
    pub rollbacks: u64,
    pub failures: u64,
    pub local_candidates_sent: u64,
    pub remote_candidates_added: u64,
    pub remote_candidate_errors: u64,
}

/// How many recent sequence numbers a received track remembers.
const RECENT: usize = 256;

/// Per received track accumulator.
#[derive(Debug)]
pub(crate) struct ReceiveRecorder {
    pub snap: ReceivedTrackSnapshot,
    record_hashes: bool,
    seen_seq: Box<[u64; 1024]>,
    highest_seq: Option<u16>,
    seen_counters: std::collections::HashSet<u32>,
    latencies: Vec<u64>,
    recent: std::collections::VecDeque<u16>,
}

impl ReceiveRecorder {
    pub fn new(index: usize, record_hashes: bool) -> Self {
        Self {
            snap: ReceivedTrackSnapshot {
                index,
                kind: None,
                mid: None,
                msid_stream_id: String::new(),
                msid_track_id: String::new(),
                peer_id: None,
                track_id: None,
                tag: None,
                ssrcs: Vec::new(),
                payload_types: Vec::new(),
                packets: 0,
                bytes: 0,
                unique_counters: 0,
                retransmissions: 0,
                bad_payloads: 0,
                foreign_tags: 0,
                keyframes: 0,
                first_packet_at: None,
                last_packet_at: None,
                latency: LatencySummary::default(),
                ended: false,
                hashes: BTreeMap::new(),
            },
            record_hashes,
            seen_seq: Box::new([0u64; 1024]),
            highest_seq: None,
            seen_counters: std::collections::HashSet::new(),
            latencies: Vec::new(),
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Accounts one RTP packet.
    pub fn record(&mut self, pkt: &rtc::rtp::Packet, now: Instant) {
        let s = &mut self.snap;
        s.packets += 1;
        s.bytes += pkt.payload.len() as u64;
        s.first_packet_at.get_or_insert(now);
        s.last_packet_at = Some(now);
        if !s.ssrcs.contains(&pkt.header.ssrc) {
            s.ssrcs.push(pkt.header.ssrc);
        }
        if !s.payload_types.contains(&pkt.header.payload_type) {
            s.payload_types.push(pkt.header.payload_type);
        }
        if self.mark_seq(pkt.header.sequence_number) {
            self.snap.retransmissions += 1;
        } else {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(pkt.header.sequence_number);
        }
        let video = self.snap.kind == Some(TrackKind::Video);
        match payload::parse(&pkt.payload, video) {
            Some(probe) => self.record_probe(probe, &pkt.payload),
            None => self.snap.bad_payloads += 1,
        }
    }

    fn record_probe(&mut self, probe: Probe, bytes: &[u8]) {
        let s = &mut self.snap;
        match s.tag {
            None => s.tag = Some(probe.tag),
            Some(t) if t != probe.tag => {
                s.foreign_tags += 1;
                return;
            }
            Some(_) => {}
        }
        if probe.keyframe {
            s.keyframes += 1;
        }
        if self.seen_counters.insert(probe.counter) {
            s.unique_counters += 1;
            if self.record_hashes {
                s.hashes.insert(probe.counter, payload::hash(bytes));
            }
        }
        let now = payload::unix_micros();
        if self.latencies.len() < 200_000 {
            self.latencies.push(now.saturating_sub(probe.sent_unix_us));
        }
    }

    /// Marks `seq` seen in a sliding window of 32768 numbers; true when it was already seen.
    fn mark_seq(&mut self, seq: u16) -> bool {
        let ahead = match self.highest_seq {
            None => true,
            Some(h) => {
                let d = seq.wrapping_sub(h);
                d != 0 && d < 0x8000
            }
        };
        if ahead {
            // Forget the numbers that fall out of the window behind the new highest one.
            let mut clear = self.highest_seq.map_or(seq, |h| h.wrapping_add(1));
            while clear != seq.wrapping_add(1) {
                self.set_bit(clear.wrapping_add(0x8000), false);
                clear = clear.wrapping_add(1);
            }
            self.highest_seq = Some(seq);
        }
        let was = self.bit(seq);
        self.set_bit(seq, true);
        was
    }

    fn bit(&self, seq: u16) -> bool {
        self.seen_seq[(seq >> 6) as usize] & (1u64 << (seq & 63)) != 0
    }

    fn set_bit(&mut self, seq: u16, on: bool) {
        let word = &mut self.seen_seq[(seq >> 6) as usize];
        if on {
            *word |= 1u64 << (seq & 63);
        } else {
            *word &= !(1u64 << (seq & 63));
        }
    }

    /// The last `n` (at most [`RECENT`]) first-time sequence numbers, oldest first.
    pub fn recent_seqs(&self, n: usize) -> Vec<u16> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).copied().collect()
    }

    /// Snapshot with the latency summary computed now.
    pub fn snapshot(&self) -> ReceivedTrackSnapshot {
        let mut snap = self.snap.clone();
        snap.latency = summarize(&self.latencies);
        snap
    }
}

fn summarize(samples: &[u64]) -> LatencySummary {
    if samples.is_empty() {
        return LatencySummary::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    LatencySummary {
        count: sorted.len() as u64,
        min_us: sorted[0],
        max_us: sorted[sorted.len() - 1],
        mean_us: sorted.iter().sum::<u64>() / sorted.len() as u64,
        p50_us: pick(0.5),
        p95_us: pick(0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_sequence_numbers_count_as_retransmissions() {
        let mut r = ReceiveRecorder::new(0, true);
        assert!(!r.mark_seq(65_530));
        for s in 65_531..=65_535u16 {
            assert!(!r.mark_seq(s));
        }
        assert!(!r.mark_seq(0));
        assert!(r.mark_seq(65_533));
        assert!(!r.mark_seq(5));
        assert!(r.mark_seq(5));
        // Moving far ahead: the old numbers leave the window and count as new again.
        assert!(!r.mark_seq(20_000));
        assert!(!r.mark_seq(40_000));
        assert!(!r.mark_seq(65_533));
    }

    #[test]
    fn latency_summary_picks_quantiles() {
        let s = summarize(&[5, 1, 3, 2, 4]);
        assert_eq!((s.min_us, s.max_us, s.p50_us, s.mean_us), (1, 5, 3, 3));
    }
}
