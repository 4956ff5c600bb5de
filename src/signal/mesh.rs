//! The mesh-compatible side of a session (seeds 000, 002, 003): joining under a chosen or a
//! server-generated peer ID, and relaying frames unchanged (byte for byte) to one peer (`to`)
//! or to all other mesh peers of the room, as far as the URL token's grants allow (`chat` needs
//! the chat grant, call signaling publish or subscribe). It must not interpret what it relays
//! beyond its `type` and `to` (`from` is relayed as sent, never checked).

use super::session::{Flow, Membership, MeshMember, Session};
use crate::protocol::{ClientMessage, ErrorCode, JoinRequest, RawFrame, ServerMessage};

use crate::room::ids::is_valid_peer_id;
use crate::room::{Admission, Frame, MemberKind, PeerIdChoice, RouteError};
use tokio::time::Instant;

impl Session {
    /// Joins the connection's mesh room: `join {peerId}` (seed 002) with a chosen ID, or a
    /// seed-000 client with a generated one, which first gets `client-id`.
    pub(super) async fn mesh_join(
        &mut self,
        choice: PeerIdChoice,
        started: Instant,
        replay: Option<&Frame>,
    ) -> Flow {
        if let Some(flow) = self.refuse_if_draining().await {
            return flow;
        }
        if let PeerIdChoice::Chosen(id) = &choice {
            if !is_valid_peer_id(id) {
                return self
                    .send_error(ErrorCode::BadPeerId, "peer IDs are 1-64 of [A-Za-z0-9_-]")
                    .await;
            }
        }
        if self.ctx.auth.is_some() && self.params.url_claims.is_none() {
            return self
                .send_error(
                    ErrorCode::AuthRequired,
                    "mesh clients need ?token= on the WebSocket URL",
                )
                .await;
        }
        let room = self.params.mesh_room.clone();
        if let Some(flow) = self.route_to_owner(&room, replay).await {
            return flow;
        }
        let auto_assigned = choice == PeerIdChoice::Generated;
        let admission = Admission {
            kind: MemberKind::Mesh,
            peer_id: choice,
            name: String::new(),
            mailbox: self.mailbox.clone(),
        };
        let ctx = self.ctx.clone();
        let (room_handle, welcome) = match ctx.rooms.join(&room, &admission) {
            Ok(joined) => joined,
            Err(error) => return self.refuse_join(&room, error).await,
        };
        let peer_id = welcome.peer_id.clone();
        self.span.record("room", room.as_str());
        self.span.record("peer", peer_id.as_str());
        self.membership = Membership::Mesh(MeshMember {
            room: room_handle,
            peer_id: peer_id.clone(),
            auto_assigned,
        });
        if let Some(sub) = self.params.url_claims.as_ref().map(|c| c.sub.clone()) {
            self.hold_identity(&room, &sub);
        }
        if auto_assigned {
            let client_id = ServerMessage::ClientId {
                id: peer_id.clone(),
                peer_id,
            };
            if let flow @ (Flow::Close(..) | Flow::Gone) = self.reply(&client_id).await {
                return flow;
            }
        }
        let peers = welcome.others.into_iter().map(|p| p.peer_id).collect();
        let flow = self.reply(&ServerMessage::PeerList { peers }).await;
        ctx.metrics
            .join_latency
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(kind = "mesh", auto_assigned, "joined");
        flow
    }

    /// A frame from a mesh peer: relayed unchanged, or a late `join`.
    pub(super) async fn on_mesh_message(&mut self, raw: RawFrame, frame: Frame) -> Flow {
        let Membership::Mesh(member) = &self.membership else {
            return Flow::Continue;
        };
        if raw.kind == "join" {
            let auto_assigned = member.auto_assigned;
            return match raw.into_message() {
                Ok(ClientMessage::Join(join)) if auto_assigned => self.rejoin(join, &frame).await,
                Ok(_) => {
                    self.send_error(ErrorCode::AlreadyJoined, "this connection already joined")
                        .await
                }
                Err(error) => self.send_error(error.code(), error.to_string()).await,
            };
        }
        if let Some(refusal) = self.mesh_grant_refusal(&raw.kind) {
            return self.send_error(ErrorCode::Forbidden, refusal).await;
        }
        let Membership::Mesh(member) = &self.membership else {
            return Flow::Continue;
        };
        let to = match raw.to() {
            Ok(to) => to,
            Err(error) => return self.send_error(error.code(), error.to_string()).await,
        };
        match member.room.relay(&member.peer_id, to, frame) {
            Ok(_) => Flow::Continue,
            Err(error @ RouteError::UnknownPeer(_)) => {
                self.send_error(ErrorCode::UnknownPeer, error.to_string())
                    .await
            }
            Err(RouteError::NotMember) => Flow::Continue,
        }
    }

    /// Why the URL token's grants forbid relaying a frame of type `kind`, if they do: `chat`
    /// needs the `chat` grant, call signaling needs `publish` or `subscribe`. Other types are
    /// relayed whatever the grants; on an open server everything is.
    fn mesh_grant_refusal(&self, kind: &str) -> Option<&'static str> {
        let grants = self.params.url_claims.as_ref()?.grants;
        if kind == "chat" && !grants.chat {
            return Some("your token does not grant chat");
        }
        let call_signaling = matches!(kind, "offer" | "answer" | "candidate" | "ice-candidate")
            || kind.starts_with("call-");
        if call_signaling && !(grants.publish || grants.subscribe) {
            return Some("your token grants neither publish nor subscribe, so no calls");
        }
        None
    }

    /// A `join` from a client that was admitted as a seed-000 peer: it was a slow SFU or
    /// seed-002 client after all (its `join` came after the grace period). It leaves the mesh
    /// under its generated ID (`peer-left`) and joins as asked.
    async fn rejoin(&mut self, join: JoinRequest, frame: &Frame) -> Flow {
        let started = Instant::now();
        if join.is_sfu() {
            return self.sfu_join(join, started, frame).await;
        }
        let Some(id) = join.peer_id else {
            return self
                .send_error(
                    ErrorCode::BadMessage,
                    "join needs `room` and `name` (SFU) or `peerId` (mesh)",
                )
                .await;
        };
        if !is_valid_peer_id(&id) {
            return self
                .send_error(ErrorCode::BadPeerId, "peer IDs are 1-64 of [A-Za-z0-9_-]")
                .await;
        }
        self.leave_current();
        self.mesh_join(PeerIdChoice::Chosen(id), started, Some(frame))
            .await
    }
}
