//! Rooms: the registry of open rooms (created on first join, removed when the last member
//! leaves), membership of SFU participants and mesh peers, chat history, and routing between
//! members. Rooms never exchange messages with each other. This module must not touch sockets,
//! tokens or media; sessions call it with already-validated input.

pub mod chat;
pub mod ids;
mod membership;

pub use membership::{
    Admission, AdmitError, Frame, Inbox, KickReason, KickSignal, Mailbox, MemberInfo, MemberKind,
    PeerIdChoice, Room, RouteError, Welcome,
};

use crate::metrics::Metrics;
use crate::protocol::ChatMessage;
use dashmap::{mapref::entry::Entry, DashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Room used by mesh clients whose URL names none.
pub const DEFAULT_MESH_ROOM: &str = "lobby";

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("the room is full ({max} members)")]
    RoomFull { max: usize },
    #[error("peer ID `{0}` is taken in this room")]
    IdTaken(String),
    #[error("the server is at its limit of {max} rooms")]
    TooManyRooms { max: usize },
}

/// Limits the registry enforces.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    pub max_rooms: usize,
    pub max_members: usize,
    pub chat_history: usize,
}

/// All open rooms, by name.
#[derive(Debug)]
pub struct RoomRegistry {
    rooms: DashMap<String, Arc<Room>>,
    /// Rooms created and not yet removed; reserved before insertion so `max_rooms` holds
    /// under concurrent creation.
    open_rooms: AtomicUsize,
    limits: RoomLimits,
    metrics: Metrics,
}

impl RoomRegistry {
    pub fn new(limits: RoomLimits, metrics: Metrics) -> Self {
        Self {
            rooms: DashMap::new(),
            open_rooms: AtomicUsize::new(0),
            limits,
            metrics,
        }
    }

    /// Number of open rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The room called `name`, if open.
    pub fn get(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms.get(name).map(|r| r.value().clone())
    }

    /// Every open room, sorted by name.
    pub fn list(&self) -> Vec<Arc<Room>> {
        let mut rooms: Vec<Arc<Room>> = self.rooms.iter().map(|r| r.value().clone()).collect();
        rooms.sort_by(|a, b| a.name().cmp(b.name()));
        rooms
    }

    /// Closes room `name` (admin API): every member is kicked with `room-closed`, and the room
    /// leaves the registry at once, so a later join opens a fresh one. Returns how many members
    /// were told, or `None` if no such room is open.
    pub fn close(&self, name: &str) -> Option<usize> {
        let room = self.get(name)?;
        let told = room.close();
        self.remove_if_same(&room);
        Some(told)
    }

    /// Joins room `name` (creating it if needed) and returns it with the welcome for the new
    /// member. Announcements to the others have been queued when this returns.
    pub fn join(
        &self,
        name: &str,
        admission: &Admission,
    ) -> Result<(Arc<Room>, Welcome), JoinError> {
        self.join_with_chat(name, admission, Vec::new())
    }

    /// [`Self::join`]; a room created by this join takes over the chat history `kept` (kept
    /// elsewhere, e.g. in Redis for a cluster).
    pub fn join_with_chat(
        &self,
        name: &str,
        admission: &Admission,
        kept: Vec<ChatMessage>,
    ) -> Result<(Arc<Room>, Welcome), JoinError> {
        loop {
            let room = self.get_or_create(name)?;
            if !kept.is_empty() {
                room.restore_chat(kept.clone());
            }
            match room.admit(admission, self.limits.max_members) {
                Ok(welcome) => {
                    self.metrics
                        .participants
                        .with_label_values(&[admission.kind.as_str()])
                        .inc();
                    return Ok((room, welcome));
                }
                Err(AdmitError::RoomFull { max }) => return Err(JoinError::RoomFull { max }),
                Err(AdmitError::IdTaken(id)) => return Err(JoinError::IdTaken(id)),
                // The last member just left and the room is on its way out: finish removing it
                // and start over with a fresh one.
                Err(AdmitError::Closed) => self.remove_if_same(&room),
            }
        }
    }

    /// Removes `peer_id` from `room`, announcing its departure; removes the room if it is now
    /// empty.
    pub fn leave(&self, room: &Arc<Room>, peer_id: &str) {
        let (kind, now_empty) = room.remove(peer_id);
        if let Some(kind) = kind {
            self.metrics
                .participants
                .with_label_values(&[kind.as_str()])
                .dec();
        }
        if now_empty {
            self.remove_if_same(room);
        }
    }

    fn get_or_create(&self, name: &str) -> Result<Arc<Room>, JoinError> {
        if let Some(room) = self.rooms.get(name) {
            return Ok(room.value().clone());
        }
        match self.rooms.entry(name.to_owned()) {
            Entry::Occupied(entry) => Ok(entry.get().clone()),
            Entry::Vacant(entry) => {
                let max = self.limits.max_rooms;
                self.open_rooms
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                        (open < max).then_some(open + 1)
                    })
                    .map_err(|_| JoinError::TooManyRooms { max })?;
                let room = Arc::new(Room::new(name, self.limits.chat_history));
                entry.insert(room.clone());
                self.metrics.rooms.inc();
                tracing::debug!(room = name, "room created");
                Ok(room)
            }
        }
    }

    /// Removes `room` from the map if the map still holds this very room.
    fn remove_if_same(&self, room: &Arc<Room>) {
        if self
            .rooms
            .remove_if(room.name(), |_, current| Arc::ptr_eq(current, room))
            .is_some()
        {
            self.open_rooms.fetch_sub(1, Ordering::AcqRel);
            self.metrics.rooms.dec();
            tracing::debug!(room = room.name(), "room removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max_rooms: usize) -> RoomRegistry {
        let limits = RoomLimits {
            max_rooms,
            max_members: 4,
            chat_history: 10,
        };
        RoomRegistry::new(limits, Metrics::new().expect("metrics"))
    }

    fn sfu(name: &str) -> (Admission, Inbox) {
        let (mailbox, inbox) = Mailbox::new(8);
        let admission = Admission {
            kind: MemberKind::Sfu,
            peer_id: PeerIdChoice::Generated,
            name: name.to_owned(),
            mailbox,
        };
        (admission, inbox)
    }

    #[test]
    fn rooms_are_created_on_join_and_removed_when_empty() {
        let rooms = registry(1);
        let (alice, _inbox) = sfu("Alice");
        let (room, welcome) = rooms.join("standup", &alice).expect("join");
        assert_eq!(rooms.len(), 1);
        assert_eq!(
            rooms.join("other", &alice).map(|_| ()),
            Err(JoinError::TooManyRooms { max: 1 })
        );
        rooms.leave(&room, &welcome.peer_id);
        assert!(rooms.is_empty());
        assert!(rooms.get("standup").is_none());
        rooms
            .join("other", &alice)
            .expect("a room slot is free again");
    }

    #[test]
    fn a_closed_room_is_replaced_not_rejoined() {
        let rooms = registry(2);
        let (alice, _inbox) = sfu("Alice");
        let (room, welcome) = rooms.join("r", &alice).expect("join");
        // Simulate the race: the member leaves the room, but the registry has not yet removed it.
        let (_, empty) = room.remove(&welcome.peer_id);
        assert!(empty);
        let (fresh, _) = rooms.join("r", &alice).expect("join after close");
        assert!(!Arc::ptr_eq(&room, &fresh));
        assert_eq!(rooms.len(), 1);
    }
}
