//! The VP8 payload descriptor (RFC 7741 §4.2) of forwarded simulcast packets: read, and
//! rewritten so that a subscriber that is moved between layers sees one continuous picture id
//! (15-bit, or 7-bit when the publisher uses the short form), TL0PICIDX and KEYIDX. Offsets are
//! re-anchored at each layer switch (always at a keyframe); within a layer they are constant,
//! so a retransmission maps exactly as the original did. Pure: no clock, no allocation.

/// The longest descriptor written: byte 0, X byte, 2-byte picture id, TL0PICIDX, TID/KEYIDX.
pub const MAX_DESCRIPTOR: usize = 6;

/// The fields of one packet's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Its length in bytes (the VP8 payload follows).
    pub len: usize,
    first: u8,
    ext: Option<u8>,
    /// Picture id and whether it used the 15-bit form.
    pid: Option<(u16, bool)>,
    tl0: Option<u8>,
    tid_key: Option<u8>,
}

/// Reads the descriptor at the start of `p`; `None` when truncated.
pub fn parse(p: &[u8]) -> Option<Descriptor> {
    let first = *p.first()?;
    let mut d = Descriptor {
        len: 1,
        first,
        ext: None,
        pid: None,
        tl0: None,
        tid_key: None,
    };
    if first & 0x80 == 0 {
        return Some(d);
    }
    let ext = *p.get(1)?;
    d.ext = Some(ext);
    let mut at = 2;
    if ext & 0x80 != 0 {
        let b = *p.get(at)?;
        if b & 0x80 != 0 {
            let lo = *p.get(at + 1)?;
            d.pid = Some(((u16::from(b & 0x7f) << 8) | u16::from(lo), true));
            at += 2;
        } else {
            d.pid = Some((u16::from(b), false));
            at += 1;
        }
    }
    if ext & 0x40 != 0 {
        d.tl0 = Some(*p.get(at)?);
        at += 1;
    }
    if ext & 0x30 != 0 {
        d.tid_key = Some(*p.get(at)?);
        at += 1;
    }
    d.len = at;
    Some(d)
}

impl Descriptor {
    /// The picture id, if present.
    pub fn picture_id(&self) -> Option<u16> {
        self.pid.map(|(v, _)| v)
    }

    /// TL0PICIDX, if present.
    pub fn tl0_pic_idx(&self) -> Option<u8> {
        self.tl0
    }

    /// KEYIDX, if present (K bit set).
    pub fn key_idx(&self) -> Option<u8> {
        match (self.ext, self.tid_key) {
            (Some(ext), Some(b)) if ext & 0x10 != 0 => Some(b & 0x1f),
            _ => None,
        }
    }

    /// Whether this packet starts a frame (S bit, partition 0).
    pub fn starts_frame(&self) -> bool {
        self.first & 0x10 != 0 && self.first & 0x07 == 0
    }
}

/// The width and height a VP8 keyframe declares (RFC 6386 §9.1), read from the payload after
/// the descriptor of a packet that starts one; `None` for anything else.
pub fn keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    let d = parse(payload)?;
    if !d.starts_frame() {
        return None;
    }
    let f = payload.get(d.len..d.len + 10)?;
    if f[0] & 0x01 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([f[6], f[7]]) & 0x3fff;
    let h = u16::from_le_bytes([f[8], f[9]]) & 0x3fff;
    (w > 0 && h > 0).then_some((w, h))
}

/// A rewritten descriptor, on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub bytes: [u8; MAX_DESCRIPTOR],
    pub len: usize,
}

impl Written {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The newest values sent on the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    pid: u16,
    tl0: u8,
    key_idx: u8,
}

/// Keeps one subscriber leg's VP8 picture ids, TL0PICIDX and KEYIDX continuous across layer
/// switches: `out = in + offset`, offsets recomputed at [`Vp8Rewriter::restart`].
#[derive(Debug, Clone, Default)]
pub struct Vp8Rewriter {
    pid_offset: u16,
    tl0_offset: u8,
    key_offset: u8,
    last: Option<Sent>,
    restart: bool,
}

/// Whether 15-bit picture id `a` is newer than `b`.
fn pid_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b) & 0x7fff;
    d != 0 && d < 0x4000
}

impl Vp8Rewriter {
    /// The next packet rewritten (the first of a keyframe on a new layer) re-anchors the
    /// offsets so it follows the last picture sent.
    pub fn restart(&mut self) {
        self.restart = true;
    }

    /// Rewrites `d` (the descriptor at the start of `payload`) for the leg, remembering the
    /// newest values sent.
    pub fn rewrite(&mut self, d: &Descriptor, payload: &[u8]) -> Written {
        if std::mem::take(&mut self.restart) || self.last.is_none() {
            self.anchor(d);
        }
        let out = self.map(d, payload);
        if let Some((pid, _)) = out.1.pid {
            let newer = self
                .last
                .is_none_or(|l| pid == l.pid || pid_newer(pid, l.pid));
            if newer {
                self.last = Some(Sent {
                    pid,
                    tl0: out.1.tl0.unwrap_or(0),
                    key_idx: out.1.key_idx().unwrap_or(0),
                });
            }
        }
        out.0
    }

    fn anchor(&mut self, d: &Descriptor) {
        let Some(last) = self.last else {
            // The first picture on the leg goes out with the publisher's own values.
            self.last = d.pid.map(|(pid, _)| Sent {
                pid: pid.wrapping_sub(1) & 0x7fff,
                tl0: d.tl0.unwrap_or(0).wrapping_sub(1),
                key_idx: d.key_idx().unwrap_or(0).wrapping_sub(1) & 0x1f,
            });
            if self.last.is_some() {
                self.anchor(d);
            }
            return;
        };
        if let Some((pid, _)) = d.pid {
            self.pid_offset = last.pid.wrapping_add(1).wrapping_sub(pid);
        }
        if let Some(tl0) = d.tl0 {
            self.tl0_offset = last.tl0.wrapping_add(1).wrapping_sub(tl0);
        }
        if let Some(k) = d.key_idx() {
            self.key_offset = last.key_idx.wrapping_add(1).wrapping_sub(k);
        }
    }

    /// The leg's descriptor for `d` with the current offsets (no state change: also used for
    /// retransmissions), and its parsed form.
    pub fn map(&self, d: &Descriptor, payload: &[u8]) -> (Written, Descriptor) {
        let mut w = Written {
            bytes: [0; MAX_DESCRIPTOR],
            len: 0,
        };
        let mut out = *d;
        let mut push = |b: u8| {
            w.bytes[w.len] = b;
            w.len += 1;
        };
        push(d.first);
        if let Some(ext) = d.ext {
            push(ext);
        }
        if let Some((pid, long)) = d.pid {
            let mask = if long { 0x7fff } else { 0x7f };
            let v = pid.wrapping_add(self.pid_offset) & mask;
            out.pid = Some((v, long));
            if long {
                push(0x80 | (v >> 8) as u8);
                push(v as u8);
            } else {
                push(v as u8);
            }
        }
        if let Some(tl0) = d.tl0 {
            let v = tl0.wrapping_add(self.tl0_offset);
            out.tl0 = Some(v);
            push(v);
        }
        if let Some(b) = d.tid_key {
            let v = if d.key_idx().is_some() {
                (b & 0xe0) | (b.wrapping_add(self.key_offset) & 0x1f)
            } else {
                b
            };
            out.tid_key = Some(v);
            push(v);
        }
        debug_assert!(w.len == d.len && payload.len() >= d.len);
        (w, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with a 15-bit picture id, TL0PICIDX and KEYIDX; keyframe or delta.
    pub fn packet(pid: u16, tl0: u8, key_idx: u8, key: bool) -> Vec<u8> {
        let mut p = vec![0x90, 0xf0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, key_idx];
        p.extend_from_slice(&[
            u8::from(!key),
            0,
            0,
            0x9d,
            0x01,
            0x2a,
            0x80,
            0x02,
            0x68,
            0x01,
        ]);
        p
    }

    fn out(rw: &mut Vp8Rewriter, p: &[u8]) -> Descriptor {
        let d = parse(p).unwrap();
        let w = rw.rewrite(&d, p);
        parse(w.as_slice()).unwrap()
    }

    #[test]
    fn parses_fields_and_keyframe_size() {
        let p = packet(0x1234, 7, 3, true);
        let d = parse(&p).unwrap();
        assert_eq!(d.len, 6);
        assert_eq!(d.picture_id(), Some(0x1234));
        assert_eq!(d.tl0_pic_idx(), Some(7));
        assert_eq!(d.key_idx(), Some(3));
        assert_eq!(keyframe_size(&p), Some((640, 360)));
        assert_eq!(keyframe_size(&packet(1, 1, 1, false)), None);
        assert!(parse(&[0x90, 0x80]).is_none());
        assert_eq!(parse(&[0x10]).unwrap().len, 1);
    }

    #[test]
    fn values_continue_across_a_switch() {
        let mut rw = Vp8Rewriter::default();
        let a = out(&mut rw, &packet(100, 10, 5, true));
        assert_eq!(
            (a.picture_id(), a.tl0_pic_idx(), a.key_idx()),
            (Some(100), Some(10), Some(5))
        );
        let b = out(&mut rw, &packet(101, 11, 5, false));
        assert_eq!(b.picture_id(), Some(101));
        // Another layer, far away in every field, at its keyframe.
        rw.restart();
        let c = out(&mut rw, &packet(30_000, 200, 30, true));
        assert_eq!(
            (c.picture_id(), c.tl0_pic_idx(), c.key_idx()),
            (Some(102), Some(12), Some(6))
        );
        let d = out(&mut rw, &packet(30_001, 201, 30, false));
        assert_eq!((d.picture_id(), d.tl0_pic_idx()), (Some(103), Some(13)));
    }

    #[test]
    fn picture_id_wraps_at_15_bits_and_tl0_at_8() {
        let mut rw = Vp8Rewriter::default();
        out(&mut rw, &packet(0x7ffe, 254, 31, true));
        rw.restart();
        let a = out(&mut rw, &packet(5, 9, 0, true));
        assert_eq!(
            (a.picture_id(), a.tl0_pic_idx(), a.key_idx()),
            (Some(0x7fff), Some(255), Some(0))
        );
        let b = out(&mut rw, &packet(6, 10, 0, false));
        assert_eq!((b.picture_id(), b.tl0_pic_idx()), (Some(0), Some(0)));
        // A retransmission of the earlier packet maps as it did.
        let p = packet(5, 9, 0, true);
        let (w, _) = rw.map(&parse(&p).unwrap(), &p);
        assert_eq!(parse(w.as_slice()).unwrap().picture_id(), Some(0x7fff));
    }
}
