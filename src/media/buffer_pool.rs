//! The fast path's datagram buffers, reused across turns: every buffer it hands out holds a
//! whole datagram ([`SLOT`] bytes), and emptied buffers come back after `sendmmsg`, so a
//! forwarded packet costs no allocation even after a burst (a turn that forwards many packets
//! at once). Without it a burst's surplus buffers were freed, the allocator gave the memory
//! back to the kernel, and the next burst paid page faults to get it again.

use bytes::BytesMut;

/// Capacity of every pooled buffer: the largest datagram accepted plus an SRTP tag and the
/// header extensions a leg may add.
pub const SLOT: usize = crate::net::udp::MAX_DATAGRAM + 128;

/// Most emptied buffers kept (about 3 MiB): a burst of 100 packets to 20 legs fits.
pub const MAX_KEPT: usize = 2048;

/// See the module documentation.
#[derive(Default)]
pub struct BufferPool {
    free: Vec<BytesMut>,
}

impl BufferPool {
    /// An empty buffer with room for a whole datagram.
    pub fn take(&mut self) -> BytesMut {
        self.free
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(SLOT))
    }

    /// Keeps the emptied buffers of `spare` that hold a whole datagram, up to [`MAX_KEPT`];
    /// `spare` is left empty (the rest, e.g. the stack's small RTCP buffers, are dropped).
    pub fn give_back(&mut self, spare: &mut Vec<BytesMut>) {
        for mut buf in spare.drain(..) {
            if self.free.len() >= MAX_KEPT {
                break;
            }
            if buf.capacity() >= SLOT {
                buf.clear();
                self.free.push(buf);
            }
        }
    }

    /// How many buffers wait for reuse.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bursts_buffers_all_come_back_and_small_ones_are_not_kept() {
        let mut pool = BufferPool::default();
        // A burst: 100 packets to 20 legs taken at once, then sent.
        let mut sent: Vec<BytesMut> = (0..2000).map(|_| pool.take()).collect();
        assert!(sent.iter().all(|b| b.capacity() >= SLOT));
        let ptrs: std::collections::HashSet<usize> =
            sent.iter().map(|b| b.as_ptr() as usize).collect();
        sent.push(BytesMut::with_capacity(100));
        pool.give_back(&mut sent);
        assert!(sent.is_empty());
        assert_eq!(pool.len(), 2000);
        // The next burst reuses every one of them: no allocation.
        let again: Vec<BytesMut> = (0..2000).map(|_| pool.take()).collect();
        assert!(again.iter().all(|b| ptrs.contains(&(b.as_ptr() as usize))));
        assert!(again.iter().all(|b| b.is_empty() && b.capacity() >= SLOT));
    }

    #[test]
    fn keeps_at_most_max_kept() {
        let mut pool = BufferPool::default();
        let mut spare: Vec<BytesMut> = (0..MAX_KEPT + 10)
            .map(|_| BytesMut::with_capacity(SLOT))
            .collect();
        pool.give_back(&mut spare);
        assert_eq!(pool.len(), MAX_KEPT);
        assert!(spare.is_empty());
    }
}
