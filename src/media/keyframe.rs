//! Whether an RTP payload opens a keyframe, per video codec (VP8, VP9, H264, AV1), read from the
//! payload format's own headers without decoding: the forwarder starts and resumes a subscriber
//! leg only there, so a receiver never gets delta frames it cannot decode.

/// Whether `payload` (of a track whose codec is `mime_type`) is the first packet of a keyframe,
/// or for H264 a packet carrying an IDR slice or a sequence parameter set. Unknown codecs and
/// truncated payloads are not keyframes.
pub fn starts_keyframe(mime_type: &str, payload: &[u8]) -> bool {
    let codec = mime_type.rsplit('/').next().unwrap_or(mime_type);
    if codec.eq_ignore_ascii_case("VP8") {
        vp8(payload)
    } else if codec.eq_ignore_ascii_case("VP9") {
        vp9(payload)
    } else if codec.eq_ignore_ascii_case("H264") {
        h264(payload)
    } else if codec.eq_ignore_ascii_case("AV1") {
        av1(payload)
    } else {
        false
    }
}

/// RFC 7741 §4.2: payload descriptor (X, S, PID; optional I/L/T/K extension bytes), then the
/// VP8 payload header whose P bit is 0 on a keyframe (RFC 6386 §9.1), only at the start of
/// partition 0.
fn vp8(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&ext) = p.get(1) else {
            return false;
        };
        at = 2;
        if ext & 0x80 != 0 {
            // Picture id: one byte, or two when its M bit is set.
            let Some(&pid) = p.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    p.get(at).is_some_and(|header| header & 0x01 == 0)
}

/// draft-ietf-payload-vp9 §4.2: the descriptor's first byte has P (inter-picture predicted)
/// and B (start of a frame); a frame that starts and is not predicted is a keyframe.
fn vp9(p: &[u8]) -> bool {
    p.first().is_some_and(|&b| b & 0x40 == 0 && b & 0x08 != 0)
}

/// RFC 6184: NAL unit type 5 (IDR slice) or 7 (SPS), alone, in a STAP-A (24) aggregate, or
/// at the start of an FU-A (28) fragment.
fn h264(p: &[u8]) -> bool {
    let is_key_nal = |header: u8| matches!(header & 0x1f, 5 | 7);
    let Some(&first) = p.first() else {
        return false;
    };
    match first & 0x1f {
        24 => {
            let mut at = 1;
            while at + 2 < p.len() {
                let size = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
                if size == 0 {
                    return false;
                }
                if is_key_nal(p[at + 2]) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|&fu| fu & 0x80 != 0 && is_key_nal(fu)),
        _ => is_key_nal(first),
    }
}

/// AV1 RTP payload format §4.4: the aggregation header's N bit marks the first packet of a
/// coded video sequence (a keyframe with its sequence header).
fn av1(p: &[u8]) -> bool {
    p.first().is_some_and(|&b| b & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::starts_keyframe;

    #[test]
    fn vp8_keyframe_with_and_without_extensions() {
        // Plain descriptor, start of partition 0, P=0.
        assert!(starts_keyframe(
            "video/VP8",
            &[0x10, 0x00, 0x9d, 0x01, 0x2a]
        ));
        // P=1: an interframe.
        assert!(!starts_keyframe("video/VP8", &[0x10, 0x01]));
        // X with a 15-bit picture id, TL0PICIDX and TID: the header byte comes after them.
        assert!(starts_keyframe(
            "video/vp8",
            &[0x90, 0xE0, 0x80, 0x05, 0x07, 0x20, 0x00]
        ));
        assert!(!starts_keyframe(
            "video/VP8",
            &[0x90, 0xE0, 0x80, 0x05, 0x07, 0x20, 0x01]
        ));
        // Not the start of a frame, or another partition.
        assert!(!starts_keyframe("video/VP8", &[0x00, 0x00]));
        assert!(!starts_keyframe("video/VP8", &[0x11, 0x00]));
        // Truncated.
        assert!(!starts_keyframe("video/VP8", &[0x90, 0x80]));
        assert!(!starts_keyframe("video/VP8", &[]));
    }

    #[test]
    fn h264_idr_sps_in_single_stap_a_and_fu_a() {
        assert!(starts_keyframe("video/H264", &[0x65, 0x88]));
        assert!(starts_keyframe("video/H264", &[0x67, 0x42]));
        assert!(!starts_keyframe("video/H264", &[0x41, 0x9a]));
        // STAP-A with SPS (size 2) then PPS.
        assert!(starts_keyframe(
            "video/H264",
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68]
        ));
        // STAP-A of two non-IDR slices.
        assert!(!starts_keyframe(
            "video/H264",
            &[0x78, 0x00, 0x01, 0x41, 0x00, 0x01, 0x41]
        ));
        // FU-A: start of an IDR, middle of an IDR, start of a non-IDR slice.
        assert!(starts_keyframe("video/H264", &[0x7c, 0x85, 0x00]));
        assert!(!starts_keyframe("video/H264", &[0x7c, 0x05, 0x00]));
        assert!(!starts_keyframe("video/H264", &[0x7c, 0x81, 0x00]));
        // A STAP-A whose sizes run past the end ends the walk.
        assert!(!starts_keyframe("video/H264", &[0x78, 0xff, 0xff, 0x41]));
    }

    #[test]
    fn vp9_av1_and_unknown_codecs() {
        assert!(starts_keyframe("video/VP9", &[0x08]));
        assert!(!starts_keyframe("video/VP9", &[0x48]));
        assert!(!starts_keyframe("video/VP9", &[0x00]));
        assert!(starts_keyframe("video/AV1", &[0x18]));
        assert!(!starts_keyframe("video/AV1", &[0x10]));
        assert!(!starts_keyframe("video/rtx", &[0x10, 0x00]));
        assert!(!starts_keyframe("audio/opus", &[0xfc]));
    }
}
