//! Chat history of one room: a bounded, ordered log of [`ChatMessage`]s with per-room IDs. It
//! owns ordering and eviction; it must not deliver messages or check limits on the text.

use crate::protocol::ChatMessage;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// The last `capacity` chat messages of a room, oldest first.
#[derive(Debug)]
pub struct ChatHistory {
    capacity: usize,
    entries: VecDeque<ChatMessage>,
    next_id: u64,
}

impl ChatHistory {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: VecDeque::with_capacity(capacity.min(1024)),
            next_id: 1,
        }
    }

    /// Records a message from `from`/`name` at `ts` (Unix ms) and returns it with its ID.
    pub fn record(&mut self, from: &str, name: &str, text: String, ts: u64) -> ChatMessage {
        let message = ChatMessage {
            id: self.next_id,
            from: from.to_owned(),
            name: name.to_owned(),
            text,
            ts,
        };
        self.next_id += 1;
        if self.capacity > 0 {
            if self.entries.len() == self.capacity {
                self.entries.pop_front();
            }
            self.entries.push_back(message.clone());
        }
        message
    }

    /// The kept messages, oldest first.
    pub fn snapshot(&self) -> Vec<ChatMessage> {
        self.entries.iter().cloned().collect()
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order_with_increasing_ids() {
        let mut history = ChatHistory::new(2);
        let first = history.record("a", "A", "one".into(), 1);
        history.record("b", "B", "two".into(), 2);
        history.record("a", "A", "three".into(), 3);
        assert_eq!(first.id, 1);
        let kept: Vec<_> = history
            .snapshot()
            .into_iter()
            .map(|m| (m.id, m.text))
            .collect();
        assert_eq!(kept, vec![(2, "two".to_owned()), (3, "three".to_owned())]);
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_still_numbers() {
        let mut history = ChatHistory::new(0);
        assert_eq!(history.record("a", "A", "x".into(), 0).id, 1);
        assert_eq!(history.record("a", "A", "y".into(), 0).id, 2);
        assert!(history.snapshot().is_empty());
    }
}
