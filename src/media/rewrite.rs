//! Per-leg rewriting, free of sockets and clocks (time is an argument): one published track's
//! RTP made to look like the subscriber leg's own stream (SSRC, payload type, header-extension
//! ids, sequence numbers and timestamps kept continuous across pauses). The fan-out
//! (`forward.rs`) applies it; nothing else re-derives this state.

use crate::rtp::dedup::seq_newer;
use rtc::rtp::header::Extension;
use rtc::rtp::Packet;
use std::time::Instant;

/// Header-extension URIs whose value the SFU rewrites or drops rather than copies.
pub const URI_TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The simulcast stream ids (RFC 8852): they name the publisher's layers and are never
/// forwarded (a subscriber leg carries one stream without rids).
pub const URI_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const URI_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// How one extension of the publisher's leg maps onto a subscriber leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtensionRule {
    /// Copy the value under a new id.
    Copy { to: u8 },
    /// Replace the value with the subscriber leg's own (mid, abs-send-time).
    Replace { to: u8 },
}

/// Maps publisher extension ids to the subscriber leg's, per URI.
#[derive(Debug, Clone, Default)]
pub struct ExtensionMap {
    rules: [Option<ExtensionRule>; 16],
    mid: Option<(u8, bytes::Bytes)>,
    abs_send_time: Option<u8>,
    /// The leg's transport-wide sequence number id (stamped by the fast path, per leg).
    transport_cc: Option<u8>,
}

impl ExtensionMap {
    /// `publisher` and `subscriber` are the (uri, id) lists each leg negotiated for this kind;
    /// `mid` is the subscriber transceiver's mid.
    pub fn new(publisher: &[(String, u8)], subscriber: &[(String, u8)], mid: Option<&str>) -> Self {
        let mut map = Self::default();
        let find = |uri: &str| subscriber.iter().find(|(u, _)| u == uri).map(|(_, id)| *id);
        for (uri, from) in publisher {
            let from = *from as usize;
            // Transport-wide numbers belong to the publisher's transport; rids to its layers.
            if from == 0
                || from >= 15
                || [URI_TRANSPORT_CC, URI_RID, URI_REPAIRED_RID].contains(&uri.as_str())
            {
                continue;
            }
            if let Some(to) = find(uri) {
                map.rules[from] = Some(if uri == URI_MID || uri == URI_ABS_SEND_TIME {
                    ExtensionRule::Replace { to }
                } else {
                    ExtensionRule::Copy { to }
                });
            }
        }
        if let (Some(to), Some(mid)) = (find(URI_MID), mid) {
            map.mid = Some((to, bytes::Bytes::copy_from_slice(mid.as_bytes())));
        }
        map.abs_send_time = find(URI_ABS_SEND_TIME);
        map.transport_cc = find(URI_TRANSPORT_CC);
        map
    }

    /// The leg's transport-cc extension id, if it negotiated one.
    pub fn transport_cc(&self) -> Option<u8> {
        self.transport_cc
    }

    /// Calls `f` with each (id, value) the leg's packet carries for a publisher packet with
    /// `extensions`, in [`ExtensionMap::apply`]'s order, without allocating; `ast` is the
    /// abs-send-time value (3 bytes).
    pub fn for_each<'a>(
        &'a self,
        extensions: &'a [Extension],
        ast: &'a [u8; 3],
        mut f: impl FnMut(u8, &'a [u8]),
    ) {
        for ext in extensions {
            if let Some(ExtensionRule::Copy { to }) =
                self.rules.get(ext.id as usize).copied().flatten()
            {
                f(to, &ext.payload);
            }
        }
        if let Some((id, mid)) = &self.mid {
            f(*id, mid);
        }
        if let Some(id) = self.abs_send_time {
            f(id, ast);
        }
    }

    /// Rewrites `extensions` in place for the subscriber leg; `abs_send_time` is the 24-bit
    /// 6.18 fixed-point send time to stamp when the leg negotiated it.
    pub fn apply(&self, extensions: &mut Vec<Extension>, abs_send_time: u32) {
        extensions.retain_mut(
            |ext| match self.rules.get(ext.id as usize).copied().flatten() {
                Some(ExtensionRule::Copy { to }) => {
                    ext.id = to;
                    true
                }
                _ => false,
            },
        );
        if let Some((id, mid)) = &self.mid {
            extensions.push(Extension {
                id: *id,
                payload: mid.clone(),
            });
        }
        if let Some(id) = self.abs_send_time {
            let v = abs_send_time.to_be_bytes();
            extensions.push(Extension {
                id,
                payload: bytes::Bytes::copy_from_slice(&v[1..4]),
            });
        }
    }
}

/// 24-bit abs-send-time (6.18 fixed point seconds) for `now` relative to `epoch`.
pub fn abs_send_time(now: Instant, epoch: Instant) -> u32 {
    let micros = now.saturating_duration_since(epoch).as_micros() as u64;
    (((micros << 18) / 1_000_000) & 0x00FF_FFFF) as u32
}

/// Keeps a subscriber's sequence numbers and timestamps continuous while its source pauses,
/// resumes, or is replaced: `out = in + offset`, offsets recomputed at every (re)start so the
/// first packet after a gap follows the last one sent.
#[derive(Debug, Clone)]
pub struct SequenceRewriter {
    clock_rate: u32,
    seq_offset: u16,
    ts_offset: u32,
    last_out: Option<(u16, u32, Instant)>,
    highest_in_seq: Option<u16>,
    restart: bool,
}

impl SequenceRewriter {
    /// A rewriter whose first packet goes out as (`initial_seq`, `initial_ts`) at `now`.
    pub fn new(clock_rate: u32, initial_seq: u16, initial_ts: u32, now: Instant) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            seq_offset: 0,
            ts_offset: 0,
            last_out: Some((initial_seq.wrapping_sub(1), initial_ts, now)),
            highest_in_seq: None,
            restart: true,
        }
    }

    /// Marks a pause: the next forwarded packet re-anchors the offsets.
    pub fn pause(&mut self) {
        self.restart = true;
    }

    /// Returns the (sequence number, timestamp) to send for an incoming packet.
    pub fn rewrite(&mut self, in_seq: u16, in_ts: u32, now: Instant) -> (u16, u32) {
        if self.restart {
            self.restart = false;
            let (last_seq, last_ts, last_at) = self.last_out.unwrap_or((in_seq, in_ts, now));
            let elapsed = now.saturating_duration_since(last_at);
            let ticks = (elapsed.as_micros() as u64 * self.clock_rate as u64 / 1_000_000).max(1);
            let want_seq = last_seq.wrapping_add(1);
            let want_ts = last_ts.wrapping_add(ticks as u32);
            self.seq_offset = want_seq.wrapping_sub(in_seq);
            self.ts_offset = want_ts.wrapping_sub(in_ts);
            self.highest_in_seq = Some(in_seq);
        }
        let out_seq = in_seq.wrapping_add(self.seq_offset);
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        let newer = match self.highest_in_seq {
            Some(h) => seq_newer(in_seq, h),
            None => true,
        };
        if newer {
            self.highest_in_seq = Some(in_seq);
            self.last_out = Some((out_seq, out_ts, now));
        }
        (out_seq, out_ts)
    }

    /// The leg's timestamp for a publisher timestamp (retransmissions).
    pub fn out_ts(&self, in_ts: u32) -> u32 {
        in_ts.wrapping_add(self.ts_offset)
    }

    /// Maps an outgoing sequence number back to the publisher's (for NACK relays).
    pub fn original_seq(&self, out_seq: u16) -> u16 {
        out_seq.wrapping_sub(self.seq_offset)
    }
}

/// Rewrites `packet` in place for a subscriber leg.
pub fn rewrite_packet(
    packet: &mut Packet,
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    ts: u32,
    extensions: &ExtensionMap,
    abs_send_time: u32,
) {
    packet.header.ssrc = ssrc;
    packet.header.payload_type = payload_type;
    packet.header.sequence_number = seq;
    packet.header.timestamp = ts;
    extensions.apply(&mut packet.header.extensions, abs_send_time);
    // The publisher's padding belongs to its extension block; a stale value makes the marshalled
    // size disagree with the bytes written and the SRTP layer drops the packet.
    packet.header.extensions_padding = 0;
    packet.header.extension = !packet.header.extensions.is_empty();
    if packet.header.extension {
        let two_byte = packet
            .header
            .extensions
            .iter()
            .any(|e| e.id > 14 || e.payload.len() > 16 || e.payload.is_empty());
        packet.header.extension_profile = if two_byte { 0x1000 } else { 0xBEDE };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sequence_is_continuous_across_a_pause() {
        let t0 = Instant::now();
        let mut rw = SequenceRewriter::new(90_000, 1000, 5000, t0);
        assert_eq!(rw.rewrite(40_000, 900_000, t0), (1000, 5001));
        assert_eq!(rw.rewrite(40_001, 903_000, t0), (1001, 8001));
        rw.pause();
        // Publisher jumped far ahead while paused; output continues right after 1001.
        let later = t0 + Duration::from_secs(1);
        let (seq, ts) = rw.rewrite(50_000, 2_000_000, later);
        assert_eq!(seq, 1002);
        assert_eq!(ts, 8001 + 90_000);
        assert_eq!(rw.rewrite(50_001, 2_003_000, later), (1003, 8001 + 93_000));
    }

    #[test]
    fn sequence_wraps_and_reorders() {
        let t0 = Instant::now();
        let mut rw = SequenceRewriter::new(48_000, 65_534, 0, t0);
        let a = rw.rewrite(10, 0, t0).0;
        let c = rw.rewrite(12, 1920, t0).0;
        let b = rw.rewrite(11, 960, t0).0; // late packet keeps its place
        assert_eq!((a, b, c), (65_534, 65_535, 0));
        assert_eq!(rw.original_seq(0), 12);
    }

    #[test]
    fn extensions_are_remapped_replaced_or_dropped() {
        let publisher = vec![
            ("urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_string(), 1),
            (URI_TRANSPORT_CC.to_string(), 3),
            (URI_MID.to_string(), 4),
            ("urn:x-unknown".to_string(), 7),
        ];
        let subscriber = vec![
            (
                "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_string(),
                10,
            ),
            (URI_TRANSPORT_CC.to_string(), 5),
            (URI_MID.to_string(), 9),
            (URI_ABS_SEND_TIME.to_string(), 2),
        ];
        let map = ExtensionMap::new(&publisher, &subscriber, Some("3"));
        let mut exts = vec![
            Extension {
                id: 1,
                payload: bytes::Bytes::from_static(&[0x85]),
            },
            Extension {
                id: 3,
                payload: bytes::Bytes::from_static(&[0, 1]),
            },
            Extension {
                id: 4,
                payload: bytes::Bytes::from_static(b"0"),
            },
            Extension {
                id: 7,
                payload: bytes::Bytes::from_static(&[1]),
            },
        ];
        map.apply(&mut exts, 0x123456);
        let ids: Vec<u8> = exts.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![10, 9, 2]);
        assert_eq!(&exts[0].payload[..], &[0x85]);
        assert_eq!(&exts[1].payload[..], b"3");
        assert_eq!(&exts[2].payload[..], &[0x12, 0x34, 0x56]);
    }

    #[test]
    fn rewritten_packet_marshals_to_its_declared_size() {
        use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
        let publisher = vec![(URI_MID.to_string(), 1), (URI_TRANSPORT_CC.to_string(), 3)];
        let subscriber = vec![(URI_MID.to_string(), 4), (URI_ABS_SEND_TIME.to_string(), 2)];
        let map = ExtensionMap::new(&publisher, &subscriber, Some("12"));
        let mut original = Packet::default();
        original.header.version = 2;
        original
            .header
            .set_extension(1, bytes::Bytes::from_static(b"1"))
            .unwrap();
        original
            .header
            .set_extension(3, bytes::Bytes::from_static(&[0, 7]))
            .unwrap();
        original.payload = bytes::Bytes::from(vec![9u8; 1000]);
        let wire = original.marshal().unwrap();
        let mut packet = Packet::unmarshal(&mut &wire[..]).unwrap();
        rewrite_packet(&mut packet, 42, 96, 7, 9, &map, 0x010203);
        let out = packet.marshal().unwrap();
        assert_eq!(out.len(), packet.marshal_size());
        let back = Packet::unmarshal(&mut &out[..]).unwrap();
        assert_eq!(back.header.get_extension(4).as_deref(), Some(&b"12"[..]));
        assert_eq!(back.header.ssrc, 42);
        assert_eq!(back.payload, original.payload);
    }

    #[test]
    fn abs_send_time_is_6_18_fixed_point() {
        let e = Instant::now();
        assert_eq!(abs_send_time(e + Duration::from_millis(500), e), 1 << 17);
    }
}
