//! When each connection next needs its timers run, in a min-heap, so a shard turn does not
//! scan every connection: an entry is pushed whenever a connection's deadline is set, and
//! entries whose connection has gone or whose deadline has since changed are skipped (and
//! dropped) when they come up. The heap is rebuilt if such stale entries pile up.

use super::peer::{PeerKey, Peers};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// See the module documentation.
#[derive(Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<(Instant, PeerKey)>>,
}

impl TimerHeap {
    /// Connection `key`'s timers are next due at `at` (its `next_timeout`).
    pub fn schedule(&mut self, key: PeerKey, at: Instant) {
        self.heap.push(Reverse((at, key)));
    }

    /// Rebuilds the heap from `peers` when stale entries outnumber live ones.
    pub fn compact(&mut self, peers: &Peers) {
        if self.heap.len() > 4 * peers.len() + 64 {
            self.heap = peers
                .values()
                .filter_map(|p| p.next_timeout.map(|t| Reverse((t, p.key))))
                .collect();
        }
    }

    /// The earliest deadline (possibly of a stale entry: the wake-up then finds nothing due).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the connections whose timers are due at `now`.
    pub fn due(&mut self, now: Instant, peers: &Peers) -> Vec<PeerKey> {
        let mut due = Vec::new();
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let current = peers.get(&key).and_then(|p| p.next_timeout);
            if current == Some(at) && !due.contains(&key) {
                due.push(key);
            }
        }
        due
    }
}
