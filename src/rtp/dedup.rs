//! Duplicate suppression for one RTP stream: which of the last 1024 sequence numbers arrived,
//! and RFC 1982 serial comparison of sequence numbers. Used by the SFU on ingress and by the
//! load generator's receive measurement.

/// RFC 1982 serial comparison: is `a` after `b`?
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Remembers which of the last 1024 sequence numbers of a stream arrived, so duplicates (a
/// publisher's retransmission of a packet we already forwarded) are dropped on ingress.
#[derive(Debug, Clone, Default)]
pub struct DuplicateFilter {
    seen: [u64; 16],
    highest: Option<u16>,
}

impl DuplicateFilter {
    const WINDOW: u16 = 1024;

    /// Records `seq`; returns false if it was already seen (or is too old to tell).
    pub fn first_time(&mut self, seq: u16) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.set(seq);
            return true;
        };
        if seq_newer(seq, highest) {
            let advance = seq.wrapping_sub(highest);
            if advance >= Self::WINDOW {
                self.seen = [0; 16];
            } else {
                let mut s = highest.wrapping_add(1);
                while s != seq {
                    self.clear(s);
                    s = s.wrapping_add(1);
                }
            }
            self.highest = Some(seq);
            self.set(seq);
            return true;
        }
        if highest.wrapping_sub(seq) >= Self::WINDOW {
            return false;
        }
        if self.is_set(seq) {
            return false;
        }
        self.set(seq);
        true
    }

    fn slot(seq: u16) -> (usize, u64) {
        let i = (seq % Self::WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }
    fn set(&mut self, seq: u16) {
        let (w, b) = Self::slot(seq);
        self.seen[w] |= b;
    }
    fn clear(&mut self, seq: u16) {
        let (w, b) = Self::slot(seq);
        self.seen[w] &= !b;
    }
    fn is_set(&self, seq: u16) -> bool {
        let (w, b) = Self::slot(seq);
        self.seen[w] & b != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_once_seen() {
        let mut f = DuplicateFilter::default();
        assert!(f.first_time(100));
        assert!(f.first_time(102));
        assert!(!f.first_time(100));
        assert!(f.first_time(101)); // a retransmission that fills a gap is new
        assert!(!f.first_time(101));
        assert!(f.first_time(65_535u16.wrapping_add(200)));
        assert!(!f.first_time(100u16.wrapping_sub(2000))); // too old to tell
    }

    #[test]
    fn duplicate_window_clears_skipped_slots() {
        let mut f = DuplicateFilter::default();
        assert!(f.first_time(5));
        assert!(f.first_time(5 + 1024 + 3)); // 5's slot region is reused
        assert!(f.first_time(5 + 1024)); // not confused with 5
    }
}
