//! The picture size of an H264 simulcast layer, read from the sequence parameter set its
//! keyframes carry (RFC 6184 packets: a single SPS NAL unit or one inside a STAP-A; ITU-T H.264
//! §7.3.2.1.1), so a layer's size is known as VP8's is, whatever scale factors the publisher
//! chose. Pure: a bounded bit reader over the packet, no allocation, `None` for anything
//! malformed or truncated.

/// NAL unit types (H.264 Table 7-1, RFC 6184 §5.4).
const NAL_SPS: u8 = 7;
const NAL_STAP_A: u8 = 24;

/// The largest dimension a level allows (level 6.2: 8192×4320); anything beyond is malformed.
const MAX_SIDE: u32 = 16_384;

/// Width and height of the SPS in RTP payload `p` (a single NAL unit packet or a STAP-A), when
/// it carries one.
pub fn sps_size(p: &[u8]) -> Option<(u16, u16)> {
    let first = *p.first()?;
    match first & 0x1f {
        NAL_SPS => parse_sps(&p[1..]),
        NAL_STAP_A => {
            let mut at = 1;
            while at + 2 < p.len() {
                let size = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
                let nal = p.get(at + 2..at + 2 + size)?;
                if nal.first().is_some_and(|h| h & 0x1f == NAL_SPS) {
                    return parse_sps(&nal[1..]);
                }
                at += 2 + size.max(1);
            }
            None
        }
        _ => None,
    }
}

/// Reads the RBSP bits of a NAL unit, skipping emulation prevention bytes (`00 00 03`).
struct Bits<'a> {
    bytes: &'a [u8],
    /// The next byte to load.
    at: usize,
    /// Zero bytes just before `at` (an `03` after two of them is skipped).
    zeros: u8,
    current: u8,
    /// Bits of `current` not read yet.
    left: u8,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            zeros: 0,
            current: 0,
            left: 0,
        }
    }

    fn bit(&mut self) -> Option<u32> {
        if self.left == 0 {
            let mut byte = *self.bytes.get(self.at)?;
            self.at += 1;
            if self.zeros >= 2 && byte == 3 {
                byte = *self.bytes.get(self.at)?;
                self.at += 1;
                self.zeros = 0;
            }
            self.zeros = if byte == 0 { self.zeros + 1 } else { 0 };
            self.current = byte;
            self.left = 8;
        }
        self.left -= 1;
        Some(u32::from((self.current >> self.left) & 1))
    }

    fn bits(&mut self, n: u8) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some((v << 1) | self.bit()?))
    }

    /// Unsigned Exp-Golomb (`ue(v)`), at most 31 leading zeros.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// Signed Exp-Golomb (`se(v)`); only skipped here.
    fn se(&mut self) -> Option<()> {
        self.ue().map(drop)
    }
}

/// Profiles whose SPS carries the chroma format and scaling lists (H.264 §7.3.2.1.1).
fn has_chroma_info(profile_idc: u32) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skips one `scaling_list()` of `size` coefficients (H.264 §7.3.2.1.1.1).
fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let code = i64::from(r.ue()?);
            let delta = if code % 2 == 1 {
                (code + 1) / 2
            } else {
                -(code / 2)
            };
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Width and height from an SPS's RBSP (after its NAL header byte), cropping applied.
fn parse_sps(rbsp: &[u8]) -> Option<(u16, u16)> {
    let r = &mut Bits::new(rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, reserved bits, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if has_chroma_info(profile_idc) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 && r.bit()? == 1 {
            chroma_format_idc = 0; // separate colour planes: cropped as monochrome
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_x, mut crop_y) = (0u64, 0u64);
    if r.bit()? == 1 {
        let (left, right) = (u64::from(r.ue()?), u64::from(r.ue()?));
        let (top, bottom) = (u64::from(r.ue()?), u64::from(r.ue()?));
        // CropUnitX/Y (H.264 (7-19)–(7-22)): SubWidthC and SubHeightC of the chroma format.
        let (unit_x, unit_y) = match chroma_format_idc {
            0 => (1, 1),
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        crop_x = (left + right) * unit_x;
        crop_y = (top + bottom) * unit_y * (2 - frame_mbs_only);
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    let fits = |v: u64| (1..=u64::from(MAX_SIDE)).contains(&v);
    (fits(width) && fits(height)).then_some((width as u16, height as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes RBSP bits the way an encoder does, with emulation prevention.
    #[derive(Default)]
    struct Writer {
        bits: Vec<u8>,
    }

    impl Writer {
        fn bits(&mut self, value: u32, n: u8) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(((value >> i) & 1) as u8);
            }
            self
        }

        fn ue(&mut self, value: u32) -> &mut Self {
            let v = u64::from(value) + 1;
            let len = 64 - v.leading_zeros() as u8;
            self.bits(0, len - 1);
            for i in (0..len).rev() {
                self.bits.push(((v >> i) & 1) as u8);
            }
            self
        }

        /// The NAL unit: header byte, then the bits with stop bit and emulation prevention.
        fn nal(&mut self) -> Vec<u8> {
            self.bits.push(1);
            while !self.bits.len().is_multiple_of(8) {
                self.bits.push(0);
            }
            let mut out = vec![0x67];
            let mut zeros = 0;
            for chunk in self.bits.chunks(8) {
                let byte = chunk.iter().fold(0u8, |b, &bit| (b << 1) | bit);
                if zeros >= 2 && byte <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if byte == 0 { zeros + 1 } else { 0 };
                out.push(byte);
            }
            out
        }
    }

    /// A constrained-baseline SPS (profile 66) of `mbs` macroblocks and cropping `crop`
    /// (left, right, top, bottom), frame MBs only.
    fn baseline(mbs: (u32, u32), crop: Option<[u32; 4]>) -> Vec<u8> {
        let mut w = Writer::default();
        w.bits(66, 8).bits(0xc0, 8).bits(31, 8).ue(0);
        w.ue(0).ue(0).ue(0); // frame_num, poc type 0, poc lsb
        w.ue(1).bits(0, 1); // max_num_ref_frames, gaps
        w.ue(mbs.0 - 1).ue(mbs.1 - 1).bits(1, 1).bits(1, 1);
        match crop {
            Some(c) => {
                w.bits(1, 1);
                for v in c {
                    w.ue(v);
                }
            }
            None => {
                w.bits(0, 1);
            }
        }
        w.bits(0, 1); // vui_parameters_present_flag
        w.nal()
    }

    #[test]
    fn a_single_sps_gives_its_cropped_size() {
        // 1280×720 is 80×45 macroblocks: no cropping.
        assert_eq!(sps_size(&baseline((80, 45), None)), Some((1280, 720)));
        // 640×360 is 40×23 macroblocks (368 rows) cropped by 4 chroma rows at the bottom.
        let sps = baseline((40, 23), Some([0, 0, 0, 4]));
        assert_eq!(sps_size(&sps), Some((640, 360)));
        // 1920×1080: 68 rows of macroblocks, 4 chroma rows cropped.
        let sps = baseline((120, 68), Some([0, 0, 0, 4]));
        assert_eq!(sps_size(&sps), Some((1920, 1080)));
    }

    #[test]
    fn a_high_profile_sps_with_scaling_lists_and_fields() {
        let mut w = Writer::default();
        w.bits(100, 8).bits(0, 8).bits(40, 8).ue(0);
        w.ue(1).ue(0).ue(0).bits(0, 1); // 4:2:0, 8 bits, no bypass
        w.bits(1, 1); // scaling matrix present
        for i in 0..8 {
            if i == 0 {
                w.bits(1, 1).ue(16); // delta -8: next is 0, the list repeats 8
            } else {
                w.bits(0, 1);
            }
        }
        w.ue(0).ue(1); // log2_max_frame_num, poc type 1
        w.bits(0, 1).ue(0).ue(0).ue(2).ue(3).ue(4); // cycle of two offsets
        w.ue(4).bits(0, 1);
        w.ue(59).ue(16).bits(0, 1).bits(0, 1).bits(1, 1); // 960 wide, 17 map-unit pairs
        w.bits(1, 1).ue(0).ue(0).ue(0).ue(2); // crop 2 × 4 rows (fields)
        w.bits(0, 1);
        let sps = w.nal();
        assert_eq!(sps_size(&sps), Some((960, 2 * 17 * 16 - 8)));
    }

    #[test]
    fn an_sps_inside_a_stap_a_is_found() {
        let sps = baseline((20, 12), Some([0, 0, 0, 6]));
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let mut stap = vec![0x78];
        for nal in [&pps[..], &sps[..]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        assert_eq!(sps_size(&stap), Some((320, 180)));
    }

    /// The STAP-A packets (SPS and PPS) of Chromium 148's H264 simulcast layers, as captured
    /// from `tests/browser_layers.rs`.
    #[test]
    fn chromiums_layers_read_as_sent() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        for (packet, size) in [
            (
                "78000f6742c0158c8d40a0cbcf00f08846a0000468ce3c80",
                (320, 180),
            ),
            (
                "78000f6742c01f8c8d405017fcb00f08846a000468ce3c80",
                (640, 360),
            ),
            (
                "78000f6742c0208c8d402802dd00f08846a0000468ce3c80",
                (1280, 720),
            ),
        ] {
            assert_eq!(sps_size(&hex(packet)), Some(size), "{packet}");
        }
    }

    #[test]
    fn other_packets_and_malformed_ones_give_nothing() {
        assert_eq!(sps_size(&[]), None);
        assert_eq!(sps_size(&[0x65, 0x88, 0x84]), None, "an IDR slice");
        assert_eq!(sps_size(&[0x7c, 0x85, 0x88]), None, "an FU-A");
        let sps = baseline((80, 45), None);
        for len in 0..sps.len() - 1 {
            assert_eq!(sps_size(&sps[..len]), None, "cut at {len}");
        }
        assert_eq!(
            sps_size(&[0x78, 0xff, 0xff, 0x67]),
            None,
            "a STAP-A that overruns"
        );
        assert_eq!(sps_size(&[0x67, 0, 0, 0, 0, 0, 0, 0]), None, "zeros");
    }
}
