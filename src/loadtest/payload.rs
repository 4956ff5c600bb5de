//! The synthetic media payloads the load tester and the test client send and check: a
//! codec-shaped prefix (an Opus TOC byte, or a VP8 payload descriptor plus VP8 payload header
//! with a real keyframe flag), then a fixed probe header (magic, publisher track tag,
//! per-track counter, send time in unix microseconds), then filler up to the configured size. This module is pure bytes: it owns the
//! layout, its parser and the payload hash, and knows nothing of sockets, RTP or time sources.

use bytes::{BufMut, Bytes, BytesMut};

/// Four bytes that open every probe header.
pub const MAGIC: [u8; 4] = *b"CHR1";
/// Length of the probe header: magic, tag (u64), counter (u32), send time (u64).
pub const PROBE_LEN: usize = 4 + 8 + 4 + 8;
/// Opus TOC byte used for audio: config 31 (CELT fullband 20 ms), mono, one frame.
const OPUS_TOC: u8 = 0xFC;
/// Dimensions written into VP8 keyframe headers.
const VP8_WIDTH: u16 = 320;
const VP8_HEIGHT: u16 = 240;

/// What the receiver learns from one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Tag of the publishing track (random per published track).
    pub tag: u64,
    /// Per-track counter, starting at 0.
    pub counter: u32,
    /// Send time, microseconds since the unix epoch.
    pub sent_unix_us: u64,
    /// VP8 keyframe flag (always false for audio).
    pub keyframe: bool,
}

/// The codec shape of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadCodec {
    /// Opus: one TOC byte, then the probe.
    Opus,
    /// VP8: payload descriptor with a 15-bit picture id, VP8 payload header, then the probe.
    Vp8 { picture_id: u16, keyframe: bool },
    /// VP8 of a simulcast layer: the descriptor also carries TL0PICIDX, and a keyframe
    /// declares `size`.
    Vp8Layer {
        picture_id: u16,
        tl0: u8,
        keyframe: bool,
        size: (u16, u16),
    },
}

/// Builds one payload of `size` bytes (or the minimum that fits the prefix and probe).
pub fn build(
    codec: PayloadCodec,
    probe_tag: u64,
    counter: u32,
    sent_unix_us: u64,
    size: usize,
) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(PROBE_LEN + 16));
    match codec {
        PayloadCodec::Opus => buf.put_u8(OPUS_TOC),
        PayloadCodec::Vp8 {
            picture_id,
            keyframe,
        } => put_vp8_prefix(&mut buf, picture_id, keyframe),
        PayloadCodec::Vp8Layer {
            picture_id,
            tl0,
            keyframe,
            size,
        } => put_vp8_layer_prefix(&mut buf, picture_id, tl0, keyframe, size),
    }
    buf.put_slice(&MAGIC);
    buf.put_u64(probe_tag);
    buf.put_u32(counter);
    buf.put_u64(sent_unix_us);
    let mut filler = counter as u8;
    while buf.len() < size {
        buf.put_u8(filler);
        filler = filler.wrapping_add(31);
    }
    buf.freeze()
}

/// VP8 payload descriptor (RFC 7741 §4.2: X=1, S=1, PID=0, I=1, M=1) then the VP8 payload
/// header (RFC 7741 §4.3, RFC 6386 §9.1): P=0 with start code and size for a keyframe.
fn put_vp8_prefix(buf: &mut BytesMut, picture_id: u16, keyframe: bool) {
    let pid = picture_id & 0x7FFF;
    buf.put_u8(0x90);
    buf.put_u8(0x80);
    buf.put_u8(0x80 | (pid >> 8) as u8);
    buf.put_u8(pid as u8);
    if keyframe {
        // frame tag: P=0 (key frame), version 0, show_frame=1, first partition size 0.
        buf.put_slice(&[0x10, 0x00, 0x00, 0x9D, 0x01, 0x2A]);
        buf.put_u16_le(VP8_WIDTH);
        buf.put_u16_le(VP8_HEIGHT);
    } else {
        // frame tag: P=1 (inter frame), show_frame=1.
        buf.put_slice(&[0x11, 0x00, 0x00]);
    }
}

/// A simulcast layer's VP8 prefix: descriptor with picture id and TL0PICIDX (I=1, L=1), then
/// the payload header as in [`put_vp8_prefix`] with the layer's keyframe size.
fn put_vp8_layer_prefix(
    buf: &mut BytesMut,
    picture_id: u16,
    tl0: u8,
    keyframe: bool,
    (width, height): (u16, u16),
) {
    let pid = picture_id & 0x7FFF;
    buf.put_slice(&[0x90, 0xC0, 0x80 | (pid >> 8) as u8, pid as u8, tl0]);
    if keyframe {
        buf.put_slice(&[0x10, 0x00, 0x00, 0x9D, 0x01, 0x2A]);
        buf.put_u16_le(width);
        buf.put_u16_le(height);
    } else {
        buf.put_slice(&[0x11, 0x00, 0x00]);
    }
}

/// Where the probe header starts in a VP8 payload, and whether the frame is a keyframe.
/// `None` when the descriptor is truncated or the packet does not start a frame.
pub fn parse_vp8(payload: &[u8]) -> Option<(usize, bool)> {
    let b0 = *payload.first()?;
    let mut idx = 1;
    if b0 & 0x80 != 0 {
        let b1 = *payload.get(1)?;
        idx = 2;
        if b1 & 0x80 != 0 {
            idx += if *payload.get(idx)? & 0x80 != 0 { 2 } else { 1 };
        }
        if b1 & 0x40 != 0 {
            idx += 1;
        }
        if b1 & 0x30 != 0 {
            idx += 1;
        }
    }
    let starts_frame = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !starts_frame {
        return None;
    }
    let keyframe = *payload.get(idx)? & 0x01 == 0;
    let header = if keyframe { 10 } else { 3 };
    Some((idx + header, keyframe))
}

/// Reads the probe of a payload of the given kind (`video` = VP8, else Opus). Falls back to a
/// search for the magic in the first 64 bytes, so a prefix this parser does not know still
/// yields the probe.
pub fn parse(payload: &[u8], video: bool) -> Option<Probe> {
    let (offset, keyframe) = if video {
        parse_vp8(payload).map_or((None, false), |(o, k)| (Some(o), k))
    } else {
        (Some(1), false)
    };
    let at_magic = |o: usize| payload.get(o..o.saturating_add(4)) == Some(&MAGIC[..]);
    let offset = match offset.filter(|&o| at_magic(o)) {
        Some(o) => o,
        None => {
            let window = &payload[..payload.len().min(64)];
            window.windows(4).position(|w| w == MAGIC)?
        }
    };
    let probe = payload.get(offset..offset + PROBE_LEN)?;
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&probe[4..12]);
    let mut counter = [0u8; 4];
    counter.copy_from_slice(&probe[12..16]);
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&probe[16..24]);
    Some(Probe {
        tag: u64::from_be_bytes(tag),
        counter: u32::from_be_bytes(counter),
        sent_unix_us: u64::from_be_bytes(sent),
        keyframe,
    })
}

/// FNV-1a 64 of a payload: cheap, stable across processes, good enough to tell payloads apart.
pub fn hash(payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in payload {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Microseconds since the unix epoch, 0 if the clock is before it.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_round_trip() {
        let codec = PayloadCodec::Vp8 {
            picture_id: 0x1234,
            keyframe: true,
        };
        let p = build(codec, 7, 42, 1_000, 300);
        assert_eq!(p.len(), 300);
        assert_eq!(parse_vp8(&p), Some((14, true)));
        let probe = parse(&p, true).unwrap();
        assert_eq!(
            (probe.tag, probe.counter, probe.sent_unix_us),
            (7, 42, 1_000)
        );
        assert!(probe.keyframe);
    }

    #[test]
    fn vp8_interframe_and_opus_round_trip() {
        let codec = PayloadCodec::Vp8 {
            picture_id: 3,
            keyframe: false,
        };
        let p = build(codec, 9, 1, 5, 10);
        assert_eq!(parse_vp8(&p), Some((7, false)));
        assert!(!parse(&p, true).unwrap().keyframe);
        let a = build(PayloadCodec::Opus, 11, 2, 6, 100);
        let probe = parse(&a, false).unwrap();
        assert_eq!((probe.tag, probe.counter), (11, 2));
    }

    #[test]
    fn garbage_is_not_a_probe() {
        assert_eq!(parse(&[0u8; 40], true), None);
        assert_eq!(parse(&[], false), None);
        assert_ne!(hash(b"a"), hash(b"b"));
    }
}
