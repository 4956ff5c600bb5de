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

    /// Takes over `kept` (a history kept elsewhere, e.g. in Redis) if nothing was recorded
    /// yet: the newest `capacity` by ID, numbering going on after the highest.
    pub fn restore(&mut self, mut kept: Vec<ChatMessage>) {
        if self.next_id != 1 || kept.is_empty() {
            return;
        }
        kept.sort_by_key(|m| m.id);
        kept.dedup_by_key(|m| m.id);
        let skip = kept.len().saturating_sub(self.capacity);
        self.next_id = kept.last().map_or(1, |m| m.id.saturating_add(1));
        self.entries = kept.into_iter().skip(skip).collect();
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
    fn a_restored_history_is_trimmed_sorted_and_numbered_on() {
        let message = |id: u64| ChatMessage {
            id,
            from: "a".into(),
            name: "A".into(),
            text: format!("m{id}"),
            ts: id,
        };
        let mut history = ChatHistory::new(2);
        history.restore(vec![message(7), message(5), message(6)]);
        let ids: Vec<u64> = history.snapshot().iter().map(|m| m.id).collect();
        assert_eq!(ids, [6, 7]);
        assert_eq!(history.record("b", "B", "next".into(), 9).id, 8);
        history.restore(vec![message(100)]);
        assert_eq!(
            history.snapshot().len(),
            2,
            "only a fresh history is restored"
        );
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_still_numbers() {
        let mut history = ChatHistory::new(0);
        assert_eq!(history.record("a", "A", "x".into(), 0).id, 1);
        assert_eq!(history.record("a", "A", "y".into(), 0).id, 2);
        assert!(history.snapshot().is_empty());
    }
}
