//! One connection per identity and room: a token's `sub` is in a room at most once. When a
//! second connection joins a room with the same `sub`, it takes the identity over and the first
//! connection is told (`error replaced`) and closed (1000) — a reconnecting client replaces its
//! stale connection, and a copied token cannot be used twice at once. This table only records
//! who holds which identity; the sessions act on it.

use crate::room::{KickReason, Mailbox};
use parking_lot::Mutex;
use std::collections::HashMap;

/// Which connection holds each (room, identity).
#[derive(Debug, Default)]
pub struct IdentityTable {
    held: Mutex<HashMap<(String, String), Holder>>,
}

#[derive(Debug)]
struct Holder {
    connection: u64,
    mailbox: Mailbox,
}

/// An identity a session holds in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldIdentity {
    pub room: String,
    pub sub: String,
}

impl IdentityTable {
    /// `connection` (reachable at `mailbox`) now holds `sub` in `room`; an earlier holder is
    /// kicked with [`KickReason::Replaced`]. Returns whether someone was replaced.
    pub fn claim(&self, held: &HeldIdentity, connection: u64, mailbox: &Mailbox) -> bool {
        let key = (held.room.clone(), held.sub.clone());
        let holder = Holder {
            connection,
            mailbox: mailbox.clone(),
        };
        let previous = self.held.lock().insert(key, holder);
        match previous {
            Some(previous) if previous.connection != connection => {
                previous.mailbox.kick(KickReason::Replaced);
                true
            }
            _ => false,
        }
    }

    /// Gives `held` up, if `connection` still holds it.
    pub fn release(&self, held: &HeldIdentity, connection: u64) {
        let mut table = self.held.lock();
        let key = (held.room.clone(), held.sub.clone());
        if table.get(&key).is_some_and(|h| h.connection == connection) {
            table.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_replaces_the_first() {
        let table = IdentityTable::default();
        let (first, first_inbox) = Mailbox::new(4);
        let (second, _second_inbox) = Mailbox::new(4);
        let alice = HeldIdentity {
            room: "r".to_owned(),
            sub: "alice".to_owned(),
        };
        assert!(!table.claim(&alice, 1, &first));
        assert!(
            !table.claim(&alice, 1, &first),
            "claiming again is no replacement"
        );
        assert!(table.claim(&alice, 2, &second));
        let kicked = first_inbox.kick_signal();
        assert_eq!(kicked.kicked().await, KickReason::Replaced);
        // The replaced connection's release does not free the new holder's claim.
        table.release(&alice, 1);
        let (third, _third_inbox) = Mailbox::new(4);
        assert!(table.claim(&alice, 3, &third));
    }
}
