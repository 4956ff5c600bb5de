//! One room: its members (SFU participants and mesh peers), its chat history, and the routing of
//! frames between members. All state sits behind one short-held lock per room, so a join, a leave
//! and the announcements they cause are atomic: everyone sees the same order of events, and no
//! one is ever told about a member that is not there. Delivery never blocks: each member has a
//! bounded [`Mailbox`]; a full one flags its owner as too slow. This module must not touch sockets
//! or parse client frames beyond what it is handed.

use super::chat::ChatHistory;
use super::ids::generate_peer_id;
use crate::protocol::{ChatMessage, ParticipantInfo, ServerMessage};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// A text frame as it goes out on a WebSocket; cheap to clone (shared bytes), so one serialized
/// or relayed frame is shared by all its receivers.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// Which protocol a member speaks. Members only ever see members of their own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// SFU protocol v1 participant.
    Sfu,
    /// Mesh (seed 000/002/003) peer.
    Mesh,
}

impl MemberKind {
    /// Metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Sfu => "sfu",
            MemberKind::Mesh => "mesh",
        }
    }
}

/// Why an operator removed a member (admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// The member alone was kicked.
    Kicked,
    /// The whole room was closed.
    RoomClosed,
    /// Another connection joined the room with the same token identity (`sub`).
    Replaced,
}

/// Tells a session that an operator removed it; the reason is kept, so a kick is never lost
/// even if the session was busy when it came.
#[derive(Debug, Default)]
pub struct KickSignal {
    reason: Mutex<Option<KickReason>>,
    notify: Notify,
}

impl KickSignal {
    fn kick(&self, reason: KickReason) {
        self.reason.lock().get_or_insert(reason);
        self.notify.notify_one();
    }

    /// Resolves once the member has been kicked (cancel-safe).
    pub async fn kicked(&self) -> KickReason {
        loop {
            if let Some(reason) = *self.reason.lock() {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// The sending half of a connection's outgoing queue, held by the rooms it is in.
#[derive(Debug, Clone)]
pub struct Mailbox {
    frames: mpsc::Sender<Frame>,
    overflowed: Arc<Notify>,
    kick: Arc<KickSignal>,
}

/// The receiving half, held by the connection's session.
#[derive(Debug)]
pub struct Inbox {
    frames: mpsc::Receiver<Frame>,
    overflowed: Arc<Notify>,
    kick: Arc<KickSignal>,
}

impl Mailbox {
    /// A queue of at most `capacity` frames.
    pub fn new(capacity: usize) -> (Mailbox, Inbox) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflowed = Arc::new(Notify::new());
        let kick = Arc::new(KickSignal::default());
        (
            Mailbox {
                frames: tx,
                overflowed: overflowed.clone(),
                kick: kick.clone(),
            },
            Inbox {
                frames: rx,
                overflowed,
                kick,
            },
        )
    }

    /// Tells the owner's session it was removed by an operator; the session then says so to
    /// its client and closes the connection.
    pub fn kick(&self, reason: KickReason) {
        self.kick.kick(reason);
    }

    /// Queues `frame` without waiting. A full queue drops the frame and flags the owner, whose
    /// session then closes the connection: a slow client never stalls the others.
    pub fn deliver(&self, frame: Frame) {
        match self.frames.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.overflowed.notify_one(),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Inbox {
    /// Next queued frame (cancel-safe).
    pub async fn recv(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }

    /// Drops every frame still queued (the member left its room: nothing of it may follow);
    /// returns how many.
    pub fn discard_queued(&mut self) -> usize {
        let mut dropped = 0;
        while self.frames.try_recv().is_ok() {
            dropped += 1;
        }
        dropped
    }

    /// Notified once a frame had to be dropped because the queue was full.
    pub fn overflow_signal(&self) -> Arc<Notify> {
        self.overflowed.clone()
    }

    /// Resolves when an operator kicks this connection out of its room.
    pub fn kick_signal(&self) -> Arc<KickSignal> {
        self.kick.clone()
    }
}

/// How a new member gets its peer ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdChoice {
    /// The client chose it (mesh `join {peerId}`); already validated.
    Chosen(String),
    /// The server generates a random one.
    Generated,
}

/// A request to become a member.
#[derive(Debug, Clone)]
pub struct Admission {
    pub kind: MemberKind,
    pub peer_id: PeerIdChoice,
    /// Display name (SFU); empty for mesh peers.
    pub name: String,
    pub mailbox: Mailbox,
}

/// What a new member is told: its ID, the others of its kind (join order) and the chat history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub peer_id: String,
    pub others: Vec<ParticipantInfo>,
    /// Chat history (SFU members only; empty for mesh peers).
    pub chat: Vec<ChatMessage>,
}

/// A member as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub peer_id: String,
    pub name: String,
    pub kind: MemberKind,
}

/// Why a member could not be admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("the room is full ({max} members)")]
    RoomFull { max: usize },
    #[error("peer ID `{0}` is taken in this room")]
    IdTaken(String),
    #[error("the room is closing")]
    Closed,
}

/// Why a frame could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no peer `{0}` in this room")]
    UnknownPeer(String),
    #[error("not a member of this room")]
    NotMember,
}

#[derive(Debug)]
struct Member {
    peer_id: String,
    kind: MemberKind,
    name: String,
    mailbox: Mailbox,
}

#[derive(Debug)]
struct RoomState {
    /// In join order.
    members: Vec<Member>,
    chat: ChatHistory,
    /// Set when the last member left; a closed room admits no one and is being removed.
    closed: bool,
}

impl RoomState {
    fn position(&self, peer_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.peer_id == peer_id)
    }

    fn deliver_to_kind(&self, kind: MemberKind, except: Option<&str>, frame: &Frame) {
        for member in &self.members {
            if member.kind == kind && except != Some(member.peer_id.as_str()) {
                member.mailbox.deliver(frame.clone());
            }
        }
    }
}

/// One room. Shared by the registry and the sessions of its members.
#[derive(Debug)]
pub struct Room {
    name: String,
    state: Mutex<RoomState>,
}

impl Room {
    pub fn new(name: &str, chat_history: usize) -> Self {
        Self {
            name: name.to_owned(),
            state: Mutex::new(RoomState {
                members: Vec::new(),
                chat: ChatHistory::new(chat_history),
                closed: false,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of members of both kinds.
    pub fn len(&self) -> usize {
        self.state.lock().members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members of both kinds, in join order (for the admin API).
    pub fn members(&self) -> Vec<MemberInfo> {
        self.state
            .lock()
            .members
            .iter()
            .map(|m| MemberInfo {
                peer_id: m.peer_id.clone(),
                name: m.name.clone(),
                kind: m.kind,
            })
            .collect()
    }

    /// Tells member `peer_id`'s session it was kicked (it then leaves and disconnects). False if
    /// there is no such member.
    pub fn kick(&self, peer_id: &str, reason: KickReason) -> bool {
        let state = self.state.lock();
        let Some(index) = state.position(peer_id) else {
            return false;
        };
        state.members[index].mailbox.kick(reason);
        true
    }

    /// Closes the room: it admits no one from now on, and every member is kicked with
    /// [`KickReason::RoomClosed`]. Returns how many members were told.
    pub fn close(&self) -> usize {
        let mut state = self.state.lock();
        state.closed = true;
        for member in &state.members {
            member.mailbox.kick(KickReason::RoomClosed);
        }
        state.members.len()
    }

    /// Adds a member and announces it to the members of its kind, atomically.
    pub fn admit(&self, admission: &Admission, max_members: usize) -> Result<Welcome, AdmitError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(AdmitError::Closed);
        }
        if state.members.len() >= max_members {
            return Err(AdmitError::RoomFull { max: max_members });
        }
        let peer_id = match &admission.peer_id {
            PeerIdChoice::Chosen(id) if state.position(id).is_some() => {
                return Err(AdmitError::IdTaken(id.clone()))
            }
            PeerIdChoice::Chosen(id) => id.clone(),
            PeerIdChoice::Generated => loop {
                let id = generate_peer_id();
                if state.position(&id).is_none() {
                    break id;
                }
            },
        };
        let others = state
            .members
            .iter()
            .filter(|m| m.kind == admission.kind)
            .map(|m| ParticipantInfo {
                peer_id: m.peer_id.clone(),
                name: m.name.clone(),
            })
            .collect();
        let (chat, announcement) = match admission.kind {
            MemberKind::Sfu => (
                state.chat.snapshot(),
                ServerMessage::ParticipantJoined {
                    peer_id: peer_id.clone(),
                    name: admission.name.clone(),
                },
            ),
            MemberKind::Mesh => (
                Vec::new(),
                ServerMessage::PeerJoined {
                    peer_id: peer_id.clone(),
                },
            ),
        };
        state.deliver_to_kind(admission.kind, None, &Frame::from(announcement.to_json()));
        state.members.push(Member {
            peer_id: peer_id.clone(),
            kind: admission.kind,
            name: admission.name.clone(),
            mailbox: admission.mailbox.clone(),
        });
        Ok(Welcome {
            peer_id,
            others,
            chat,
        })
    }

    /// Removes a member and announces its departure to the members of its kind. Returns the
    /// kind of the removed member (None if it was not here) and whether the room is now empty
    /// (and therefore closed).
    pub fn remove(&self, peer_id: &str) -> (Option<MemberKind>, bool) {
        let mut state = self.state.lock();
        let Some(index) = state.position(peer_id) else {
            return (None, state.members.is_empty());
        };
        let member = state.members.remove(index);
        let announcement = match member.kind {
            MemberKind::Sfu => ServerMessage::ParticipantLeft {
                peer_id: member.peer_id,
            },
            MemberKind::Mesh => ServerMessage::PeerLeft {
                peer_id: member.peer_id,
            },
        };
        state.deliver_to_kind(member.kind, None, &Frame::from(announcement.to_json()));
        let empty = state.members.is_empty();
        if empty {
            state.closed = true;
        }
        (Some(member.kind), empty)
    }

    /// Takes over a chat history kept elsewhere (see [`ChatHistory::restore`]).
    pub fn restore_chat(&self, kept: Vec<ChatMessage>) {
        self.state.lock().chat.restore(kept);
    }

    /// Records a chat message from SFU member `from` and delivers it to every SFU member,
    /// the sender included.
    pub fn chat(&self, from: &str, text: String, ts: u64) -> Result<ChatMessage, RouteError> {
        let mut state = self.state.lock();
        let index = state.position(from).ok_or(RouteError::NotMember)?;
        let name = state.members[index].name.clone();
        let message = state.chat.record(from, &name, text, ts);
        let frame = Frame::from(ServerMessage::Chat(message.clone()).to_json());
        state.deliver_to_kind(MemberKind::Sfu, None, &frame);
        Ok(message)
    }

    /// Relays a mesh frame unchanged: to mesh peer `to` if given, else to every other mesh peer.
    /// Returns how many peers it was queued for.
    pub fn relay(&self, from: &str, to: Option<&str>, frame: Frame) -> Result<usize, RouteError> {
        let state = self.state.lock();
        let Some(to) = to else {
            let count = state
                .members
                .iter()
                .filter(|m| m.kind == MemberKind::Mesh && m.peer_id != from)
                .count();
            state.deliver_to_kind(MemberKind::Mesh, Some(from), &frame);
            return Ok(count);
        };
        let target = state
            .members
            .iter()
            .find(|m| m.kind == MemberKind::Mesh && m.peer_id == to)
            .ok_or_else(|| RouteError::UnknownPeer(to.to_owned()))?;
        target.mailbox.deliver(frame);
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(kind: MemberKind, id: Option<&str>, name: &str) -> (Admission, Inbox) {
        let (mailbox, inbox) = Mailbox::new(16);
        let peer_id = id.map_or(PeerIdChoice::Generated, |id| {
            PeerIdChoice::Chosen(id.to_owned())
        });
        let admission = Admission {
            kind,
            peer_id,
            name: name.to_owned(),
            mailbox,
        };
        (admission, inbox)
    }

    fn next(inbox: &mut Inbox) -> Option<String> {
        inbox.frames.try_recv().ok().map(|f| f.as_str().to_owned())
    }

    #[test]
    fn kinds_see_only_their_own_kind() {
        let room = Room::new("r", 10);
        let (a, mut a_inbox) = admission(MemberKind::Mesh, Some("A"), "");
        let (s, mut s_inbox) = admission(MemberKind::Sfu, None, "Sam");
        room.admit(&a, 10).expect("A admitted");
        let sam = room.admit(&s, 10).expect("Sam admitted");
        assert!(
            sam.others.is_empty(),
            "SFU participant must not see mesh peer"
        );
        assert_eq!(next(&mut a_inbox), None, "mesh peer must not see SFU join");
        let (b, _b_inbox) = admission(MemberKind::Mesh, Some("B"), "");
        let welcome_b = room.admit(&b, 10).expect("B admitted");
        assert_eq!(welcome_b.others.len(), 1);
        assert_eq!(welcome_b.others[0].peer_id, "A");
        assert_eq!(
            next(&mut a_inbox).as_deref(),
            Some(r#"{"type":"peer-joined","peerId":"B"}"#)
        );
        assert_eq!(next(&mut s_inbox), None);
    }

    #[test]
    fn full_room_taken_id_and_closing() {
        let room = Room::new("r", 10);
        let (a, _ia) = admission(MemberKind::Mesh, Some("A"), "");
        room.admit(&a, 2).expect("A");
        assert_eq!(room.admit(&a, 2), Err(AdmitError::IdTaken("A".into())));
        let (b, _ib) = admission(MemberKind::Sfu, None, "B");
        room.admit(&b, 2).expect("B");
        let (c, _ic) = admission(MemberKind::Sfu, None, "C");
        assert_eq!(room.admit(&c, 2), Err(AdmitError::RoomFull { max: 2 }));
        assert_eq!(room.remove("A"), (Some(MemberKind::Mesh), false));
        assert_eq!(room.remove("A"), (None, false));
        let b_id = room.state.lock().members[0].peer_id.clone();
        assert_eq!(room.remove(&b_id), (Some(MemberKind::Sfu), true));
        assert_eq!(room.admit(&c, 2), Err(AdmitError::Closed));
    }

    #[test]
    fn relay_targets_and_broadcasts_mesh_only() {
        let room = Room::new("r", 10);
        let (a, mut ia) = admission(MemberKind::Mesh, Some("A"), "");
        let (b, mut ib) = admission(MemberKind::Mesh, Some("B"), "");
        room.admit(&a, 10).expect("A");
        room.admit(&b, 10).expect("B");
        while next(&mut ia).is_some() {}
        let frame = Frame::from(r#"{"type":"offer","to":"B"}"#);
        assert_eq!(room.relay("A", Some("B"), frame.clone()), Ok(1));
        assert_eq!(next(&mut ib).as_deref(), Some(frame.as_str()));
        assert_eq!(
            room.relay("A", Some("Z"), frame),
            Err(RouteError::UnknownPeer("Z".into()))
        );
        assert_eq!(room.relay("A", None, Frame::from("{}")), Ok(1));
        assert_eq!(next(&mut ia), None);
        assert_eq!(next(&mut ib).as_deref(), Some("{}"));
    }

    #[test]
    fn kick_and_close_reach_the_members_sessions() {
        let room = Room::new("r", 10);
        let (a, a_inbox) = admission(MemberKind::Sfu, None, "A");
        let (b, b_inbox) = admission(MemberKind::Mesh, Some("B"), "");
        let a_id = room.admit(&a, 10).expect("A").peer_id;
        room.admit(&b, 10).expect("B");
        assert_eq!(room.members().len(), 2);
        assert!(!room.kick("nobody", KickReason::Kicked));
        assert!(room.kick(&a_id, KickReason::Kicked));
        assert_eq!(room.close(), 2);
        assert_eq!(room.admit(&a, 10), Err(AdmitError::Closed));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let (a_reason, b_reason) = rt.block_on(async {
            let a = a_inbox.kick_signal();
            let b = b_inbox.kick_signal();
            (a.kicked().await, b.kicked().await)
        });
        assert_eq!(a_reason, KickReason::Kicked, "the first reason stands");
        assert_eq!(b_reason, KickReason::RoomClosed);
    }

    #[test]
    fn full_mailbox_flags_overflow_instead_of_blocking() {
        let (mailbox, inbox) = Mailbox::new(1);
        mailbox.deliver(Frame::from("1"));
        mailbox.deliver(Frame::from("2"));
        let flagged = inbox.overflowed.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let result = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), flagged.notified()).await
        });
        assert!(result.is_ok(), "overflow must be flagged");
    }
}
