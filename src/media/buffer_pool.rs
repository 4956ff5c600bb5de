//! The fast path's datagram buffers: windows of [`SLOT`] bytes cut one after another from one
//! arena allocation, so the datagrams of a turn sit next to each other in memory, as in the
//! floor benchmark. Once every window of the arena has been sent and dropped (`SendQueue::flush`
//! drops them), the arena is reclaimed from its start: a forwarded packet costs no allocation,
//! and the writes of a turn run through memory the core has just used.

use bytes::BytesMut;

/// Capacity of every buffer handed out: the largest datagram accepted plus an SRTP tag and
/// the header extensions a leg may add.
pub const SLOT: usize = crate::net::udp::MAX_DATAGRAM + 128;

/// Bytes of one arena: 160 windows (a turn at 1→20 with 8 packets in).
pub const ARENA: usize = 160 * SLOT;

/// See the module documentation.
pub struct BufferPool {
    arena: BytesMut,
}

impl Default for BufferPool {
    fn default() -> Self {
        Self {
            arena: BytesMut::with_capacity(ARENA),
        }
    }
}

impl BufferPool {
    /// An empty buffer with room for a whole datagram.
    pub fn take(&mut self) -> BytesMut {
        if self.arena.capacity() < SLOT && !self.arena.try_reclaim(ARENA) {
            // Windows of the old arena are still queued: they keep it alive until sent.
            self.arena = BytesMut::with_capacity(ARENA);
        }
        let rest = self.arena.split_off(SLOT);
        std::mem::replace(&mut self.arena, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_each_other_and_the_arena_comes_back_once_they_are_sent() {
        let mut pool = BufferPool::default();
        let first: Vec<BytesMut> = (0..ARENA / SLOT).map(|_| pool.take()).collect();
        assert!(first.iter().all(|b| b.is_empty() && b.capacity() >= SLOT));
        for pair in first.windows(2) {
            assert_eq!(pair[1].as_ptr() as usize - pair[0].as_ptr() as usize, SLOT);
        }
        let start = first[0].as_ptr() as usize;
        // Sent: the queue drops them.
        drop(first);
        // The next turn's first window is the arena's start again: no allocation.
        assert_eq!(pool.take().as_ptr() as usize, start);
    }

    #[test]
    fn a_window_still_queued_makes_a_new_arena() {
        let mut pool = BufferPool::default();
        let held = pool.take();
        let _rest: Vec<BytesMut> = (1..ARENA / SLOT).map(|_| pool.take()).collect();
        let next = pool.take();
        // Not a window of the held arena: a new one.
        let old = held.as_ptr() as usize..held.as_ptr() as usize + ARENA;
        assert!(!old.contains(&(next.as_ptr() as usize)));
        assert!(next.capacity() >= SLOT);
        drop(held);
    }
}
