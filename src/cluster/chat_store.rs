//! Chat history in Redis, so a room's chat outlives the node it lives on: each accepted
//! message is appended to `chorus:chat:<room>` (JSON, trimmed to `--chat-history`), and a node
//! opening a room reads it back. The list goes when the room's owner closes the room (as the
//! in-memory history does on one node) and otherwise expires a day after the last message.

use super::{Cluster, KEY_PREFIX};
use crate::protocol::ChatMessage;
use redis::AsyncCommands;

/// A room's chat is forgotten this long after its last message if no owner deletes it.
const CHAT_TTL_SECS: i64 = 24 * 3600;

fn chat_key(room: &str) -> String {
    format!("{KEY_PREFIX}chat:{room}")
}

impl Cluster {
    /// Appends `message` to the room's history, keeping the newest `capacity`.
    pub async fn record_chat(&self, room: &str, message: &ChatMessage, capacity: usize) {
        if capacity == 0 {
            return;
        }
        let Ok(json) = serde_json::to_string(message) else {
            return;
        };
        let key = chat_key(room);
        let keep = -(capacity.min(i64::MAX as usize) as isize);
        let mut redis = self.redis();
        let pipe = redis::pipe()
            .rpush(&key, json)
            .ignore()
            .ltrim(&key, keep, -1)
            .ignore()
            .expire(&key, CHAT_TTL_SECS)
            .ignore()
            .clone();
        let result: redis::RedisResult<()> = super::bounded(pipe.query_async(&mut redis)).await;
        if let Err(error) = result {
            self.redis_failed("chat-record", &error);
        }
    }

    /// The room's kept history (empty if none, or if Redis cannot be read: logged).
    pub async fn chat_history(&self, room: &str, capacity: usize) -> Vec<ChatMessage> {
        if capacity == 0 {
            return Vec::new();
        }
        let keep = -(capacity.min(i64::MAX as usize) as isize);
        let mut redis = self.redis();
        let kept: redis::RedisResult<Vec<String>> =
            super::bounded(redis.lrange(chat_key(room), keep, -1)).await;
        match kept {
            Ok(kept) => kept
                .iter()
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect(),
            Err(error) => {
                self.redis_failed("chat-read", &error);
                Vec::new()
            }
        }
    }

    /// Deletes the room's history (its owner closed it).
    pub(super) async fn forget_chat(&self, room: &str) {
        let mut redis = self.redis();
        let result: redis::RedisResult<()> = redis.del(chat_key(room)).await;
        if let Err(error) = result {
            self.redis_failed("chat-forget", &error);
        }
    }
}
