//! The load generator's simulcast (`--simulcast`, `--subscriber-layers`): a synthetic
//! publisher's three layers (rids q, h, f at 1/4, 1/2 and 1 of `--video-bitrate`, keyframes
//! sized 320×180, 640×360 and 1280×720), the probe tags that tell a receiver which layer a
//! packet came from, and what the subscribers measure of the layers they get: packets and
//! bytes per layer, whether each is the layer they asked for, and the continuity of the one
//! stream their leg carries (sequence-number gaps; picture-id jumps between consecutive
//! sequence numbers, which only a wrong rewrite makes). Pure data.

use crate::rtp::dedup::seq_newer;
use serde::Serialize;

/// Layers a simulcast publisher sends, low to high.
pub const LAYERS: usize = 3;
/// Their rids.
pub const RIDS: [&str; LAYERS] = ["q", "h", "f"];
/// The top byte of a layer's probe tag (plain tracks never use it).
const TAG_MARK: u64 = 0x5C;

/// The bitrate of `layer` when the top layer has `top` bits/s.
pub fn layer_bitrate(top: u64, layer: usize) -> u64 {
    top >> (LAYERS - 1 - layer.min(LAYERS - 1))
}

/// The keyframe size of `layer`.
pub fn layer_size(layer: usize) -> (u16, u16) {
    let shift = layer.min(LAYERS - 1);
    (320 << shift, 180 << shift)
}

/// The probe tag of a layer's packets, from a random `base`.
pub fn layer_tag(base: u64, layer: usize) -> u64 {
    (TAG_MARK << 56) | (base & 0x00FF_FFFF_FFFF_FF00) | layer as u64
}

/// A plain track's probe tag from a random `base`: never mistaken for a layer's.
pub fn plain_tag(base: u64) -> u64 {
    if base >> 56 == TAG_MARK {
        base ^ (1 << 56)
    } else {
        base
    }
}

/// The layer a probe tag names, if it is a layer's.
pub fn layer_of_tag(tag: u64) -> Option<usize> {
    let layer = (tag & 0xff) as usize;
    (tag >> 56 == TAG_MARK && layer < LAYERS).then_some(layer)
}

/// The 15-bit (or 7-bit) VP8 picture id of a payload, if its descriptor has one.
pub fn picture_id(p: &[u8]) -> Option<u16> {
    if p.first()? & 0x80 == 0 || p.get(1)? & 0x80 == 0 {
        return None;
    }
    let b = *p.get(2)?;
    if b & 0x80 != 0 {
        Some((u16::from(b & 0x7f) << 8) | u16::from(*p.get(3)?))
    } else {
        Some(u16::from(b))
    }
}

/// What subscribers received of simulcast tracks.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LayerTotals {
    /// Packets and payload bytes received, by the layer they came from.
    pub packets: [u64; LAYERS],
    pub bytes: [u64; LAYERS],
    /// Packets on the layer the subscriber asked for (`--subscriber-layers`), and on another.
    pub on_choice: u64,
    pub off_choice: u64,
    /// Sequence numbers skipped on a leg (lost, or a broken rewrite).
    pub seq_gaps: u64,
    /// Picture ids that jumped by more than one between consecutive sequence numbers.
    pub picture_id_jumps: u64,
}

impl LayerTotals {
    pub fn add(&mut self, o: &LayerTotals) {
        for l in 0..LAYERS {
            self.packets[l] += o.packets[l];
            self.bytes[l] += o.bytes[l];
        }
        self.on_choice += o.on_choice;
        self.off_choice += o.off_choice;
        self.seq_gaps += o.seq_gaps;
        self.picture_id_jumps += o.picture_id_jumps;
    }

    /// One packet of `layer` (`size` payload bytes) at a subscriber that chose `choice`.
    pub fn record(&mut self, layer: usize, size: usize, choice: Option<u8>) {
        let l = layer.min(LAYERS - 1);
        self.packets[l] += 1;
        self.bytes[l] += size as u64;
        if choice.is_none_or(|c| usize::from(c).min(LAYERS - 1) == l) {
            self.on_choice += 1;
        } else {
            self.off_choice += 1;
        }
    }
}

/// The continuity of one received video stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Continuity {
    last: Option<(u16, Option<u16>)>,
}

impl Continuity {
    /// A packet with sequence number `seq` and picture id `pid`; late packets are skipped.
    pub fn record(&mut self, seq: u16, pid: Option<u16>, totals: &mut LayerTotals) {
        let Some((last_seq, last_pid)) = self.last else {
            self.last = Some((seq, pid));
            return;
        };
        if !seq_newer(seq, last_seq) {
            return;
        }
        let gap = seq.wrapping_sub(last_seq) - 1;
        totals.seq_gaps += u64::from(gap);
        if let (0, Some(a), Some(b)) = (gap, last_pid, pid) {
            if (b.wrapping_sub(a) & 0x7fff) > 1 {
                totals.picture_id_jumps += 1;
            }
        }
        self.last = Some((seq, pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_layers_and_plain_tracks_never_do() {
        for l in 0..LAYERS {
            assert_eq!(layer_of_tag(layer_tag(u64::MAX, l)), Some(l));
        }
        assert_eq!(layer_of_tag(plain_tag(0x5C00_0000_0000_0001)), None);
        assert_eq!(layer_bitrate(1_000_000, 0), 250_000);
        assert_eq!(layer_size(2), (1280, 720));
    }

    #[test]
    fn continuity_counts_gaps_and_picture_id_jumps() {
        let mut t = LayerTotals::default();
        let mut c = Continuity::default();
        for (seq, pid) in [(65534, 7), (65535, 7), (0, 8), (2, 9), (1, 8), (3, 12)] {
            c.record(seq, Some(pid), &mut t);
        }
        assert_eq!((t.seq_gaps, t.picture_id_jumps), (1, 1));
        assert_eq!(picture_id(&[0x90, 0x80, 0x81, 0x02]), Some(0x102));
        t.record(2, 100, Some(2));
        t.record(0, 100, Some(2));
        assert_eq!((t.on_choice, t.off_choice, t.packets[2]), (1, 1, 1));
    }
}
