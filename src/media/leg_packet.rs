//! The bytes of one forwarded RTP packet on one subscriber leg, written straight into the
//! datagram buffer by the fast path: the fixed header with the leg's SSRC, payload type,
//! sequence number and timestamp, the leg's header extensions (one-byte form when every
//! element allows it, RFC 8285 two-byte form otherwise), an optional prefix (the RTX original
//! sequence number) and the payload. No allocation beyond the buffer's own growth.

use super::rewrite::ExtensionMap;
use bytes::BytesMut;
use rtc::rtp::header::Extension;

/// The fixed-header fields of a packet on a leg.
#[derive(Debug, Clone, Copy)]
pub struct LegHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

/// At most this many extension elements are written (ids 1..=14 in the one-byte form).
const MAX_ELEMENTS: usize = 16;

/// The leg's extension elements of one packet, gathered on the stack.
struct Elements<'a> {
    items: [(u8, &'a [u8]); MAX_ELEMENTS],
    len: usize,
}

impl<'a> Elements<'a> {
    fn push(&mut self, id: u8, value: &'a [u8]) {
        if self.len < MAX_ELEMENTS && id != 0 {
            self.items[self.len] = (id, value);
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[(u8, &'a [u8])] {
        &self.items[..self.len]
    }
}

/// Writes the packet into `buf` (appended) and returns the header length (the part SRTP
/// authenticates but does not encrypt).
#[allow(clippy::too_many_arguments)]
pub fn write_packet(
    buf: &mut BytesMut,
    header: &LegHeader,
    map: &ExtensionMap,
    extensions: &[Extension],
    abs_send_time: u32,
    transport_seq: Option<u16>,
    prefix: &[u8],
    payload: &[u8],
) -> usize {
    let ast = abs_send_time.to_be_bytes();
    let ast: [u8; 3] = [ast[1], ast[2], ast[3]];
    let twcc = transport_seq.map(u16::to_be_bytes);
    let mut elements = Elements {
        items: [(0, &[][..]); MAX_ELEMENTS],
        len: 0,
    };
    collect(&mut elements, map, extensions, &ast, twcc.as_ref());
    let items = elements.as_slice();
    let one_byte = items
        .iter()
        .all(|(id, v)| *id <= 14 && !v.is_empty() && v.len() <= 16);
    let body: usize = items
        .iter()
        .map(|(_, v)| v.len().min(255) + if one_byte { 1 } else { 2 })
        .sum();
    let words = body.div_ceil(4);
    let header_len = 12 + if items.is_empty() { 0 } else { 4 + words * 4 };
    let start = buf.len();
    buf.reserve(header_len + prefix.len() + payload.len() + 16);
    // One zero-filled header written in place, then two copies: a few wide writes instead of
    // a buffer call per field.
    buf.resize(start + header_len, 0);
    let out = &mut buf[start..];
    out[0] = (2u8 << 6) | if items.is_empty() { 0 } else { 0x10 };
    out[1] = ((header.marker as u8) << 7) | (header.payload_type & 0x7f);
    out[2..4].copy_from_slice(&header.seq.to_be_bytes());
    out[4..8].copy_from_slice(&header.ts.to_be_bytes());
    out[8..12].copy_from_slice(&header.ssrc.to_be_bytes());
    if !items.is_empty() {
        write_extensions(&mut out[12..], items, one_byte, words);
    }
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(payload);
    header_len
}

fn collect<'a>(
    elements: &mut Elements<'a>,
    map: &'a ExtensionMap,
    extensions: &'a [Extension],
    ast: &'a [u8; 3],
    twcc: Option<&'a [u8; 2]>,
) {
    map.for_each(extensions, ast, |id, value| elements.push(id, value));
    if let (Some(id), Some(value)) = (map.transport_cc(), twcc) {
        elements.push(id, value);
    }
}

/// The extension block (RFC 8285) into `out` (zeroed, `4 + words * 4` bytes): profile,
/// length in words, elements; the zero padding is already there.
fn write_extensions(out: &mut [u8], items: &[(u8, &[u8])], one_byte: bool, words: usize) {
    let profile: u16 = if one_byte { 0xBEDE } else { 0x1000 };
    out[0..2].copy_from_slice(&profile.to_be_bytes());
    out[2..4].copy_from_slice(&(words as u16).to_be_bytes());
    let mut at = 4;
    for (id, value) in items {
        let len = value.len().min(255);
        if one_byte {
            out[at] = (id << 4) | (len as u8 - 1);
            at += 1;
        } else {
            out[at] = *id;
            out[at + 1] = len as u8;
            at += 2;
        }
        out[at..at + len].copy_from_slice(&value[..len]);
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rewrite::{rewrite_packet, URI_ABS_SEND_TIME, URI_MID, URI_TRANSPORT_CC};
    use rtc::rtp::Packet;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    fn publisher_packet() -> Packet {
        let mut p = Packet::default();
        p.header.version = 2;
        p.header.marker = true;
        p.header.sequence_number = 100;
        p.header.timestamp = 5000;
        p.header
            .set_extension(1, bytes::Bytes::from_static(b"0"))
            .unwrap();
        p.header
            .set_extension(2, bytes::Bytes::from_static(&[0x85]))
            .unwrap();
        p.header
            .set_extension(3, bytes::Bytes::from_static(&[0, 9]))
            .unwrap();
        p.payload = bytes::Bytes::from(vec![7u8; 900]);
        p
    }

    fn map() -> ExtensionMap {
        let publisher = vec![
            (URI_MID.to_string(), 1),
            ("urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_string(), 2),
            (URI_TRANSPORT_CC.to_string(), 3),
        ];
        let subscriber = vec![
            (URI_MID.to_string(), 4),
            ("urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_string(), 6),
            (URI_ABS_SEND_TIME.to_string(), 2),
            (URI_TRANSPORT_CC.to_string(), 5),
        ];
        ExtensionMap::new(&publisher, &subscriber, Some("12"))
    }

    #[test]
    fn writes_what_the_slow_path_marshals_plus_the_legs_transport_sequence() {
        let map = map();
        let original = publisher_packet();
        let mut slow = original.clone();
        rewrite_packet(&mut slow, 42, 96, 7, 9, &map, 0x010203);
        let header = LegHeader {
            marker: true,
            payload_type: 96,
            seq: 7,
            ts: 9,
            ssrc: 42,
        };
        let mut buf = BytesMut::new();
        let hl = write_packet(
            &mut buf,
            &header,
            &map,
            &original.header.extensions,
            0x010203,
            Some(77),
            &[],
            &original.payload,
        );
        let fast = Packet::unmarshal(&mut &buf[..]).unwrap();
        assert_eq!(fast.header.ssrc, 42);
        assert_eq!(fast.header.sequence_number, 7);
        assert_eq!(fast.header.timestamp, 9);
        assert!(fast.header.marker);
        assert_eq!(fast.payload, original.payload);
        for ext in &slow.header.extensions {
            assert_eq!(fast.header.get_extension(ext.id), Some(ext.payload.clone()));
        }
        assert_eq!(
            fast.header.get_extension(5).as_deref(),
            Some(&[0u8, 77][..])
        );
        assert_eq!(hl, buf.len() - original.payload.len());
        // Without a transport sequence number it is byte for byte the slow path's packet.
        let mut plain = BytesMut::new();
        write_packet(
            &mut plain,
            &header,
            &map,
            &original.header.extensions,
            0x010203,
            None,
            &[],
            &original.payload,
        );
        assert_eq!(&plain[..], &slow.marshal().unwrap()[..]);
    }

    #[test]
    fn long_values_use_the_two_byte_form() {
        let publisher = vec![("urn:x-long".to_string(), 1)];
        let subscriber = vec![("urn:x-long".to_string(), 3)];
        let map = ExtensionMap::new(&publisher, &subscriber, None);
        let mut p = Packet::default();
        p.header.version = 2;
        p.header.extension_profile = 0x1000;
        p.header
            .set_extension(1, bytes::Bytes::from(vec![1u8; 20]))
            .unwrap();
        let header = LegHeader {
            marker: false,
            payload_type: 100,
            seq: 1,
            ts: 2,
            ssrc: 3,
        };
        let mut buf = BytesMut::new();
        write_packet(
            &mut buf,
            &header,
            &map,
            &p.header.extensions,
            0,
            None,
            &[],
            b"xy",
        );
        let back = Packet::unmarshal(&mut &buf[..]).unwrap();
        assert_eq!(back.header.extension_profile, 0x1000);
        assert_eq!(back.header.get_extension(3).map(|v| v.len()), Some(20));
        assert_eq!(&back.payload[..], b"xy");
    }
}
