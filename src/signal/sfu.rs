//! The SFU protocol v1 side of a session: `join` (with token checks), `chat`, `leave`, and the
//! hand-off of media requests to the participant's media leg. It must not route mesh frames.

use super::session::{Flow, Membership, Session, SfuMember};
use crate::auth::{AuthError, Claims, Grants};
use crate::protocol::{ClientMessage, ErrorCode, JoinRequest, RawFrame, ServerMessage};
use crate::room::chat::unix_millis;
use crate::room::ids::{is_valid_room_name, normalize_display_name};
use crate::room::{Admission, Frame, JoinError, MemberKind, PeerIdChoice};
use tokio::time::Instant;

/// Who an SFU join admits.
struct Joiner {
    /// Display name, normalised.
    name: String,
    grants: Grants,
    /// The token's identity, when there is a token.
    sub: Option<String>,
}

impl Session {
    /// `join {room, name, token?}`.
    pub(super) async fn sfu_join(
        &mut self,
        join: JoinRequest,
        started: Instant,
        frame: &Frame,
    ) -> Flow {
        if let Some(flow) = self.refuse_if_draining().await {
            return flow;
        }
        let Some(room) = join.room.as_deref() else {
            return self
                .send_error(ErrorCode::BadMessage, "an SFU join needs `room`")
                .await;
        };
        if !is_valid_room_name(room) {
            return self
                .send_error(ErrorCode::BadRoom, "room names are 1-64 of [A-Za-z0-9_.-]")
                .await;
        }
        let joiner = match self.joiner(room, &join) {
            Ok(joiner) => joiner,
            Err((code, message)) => return self.send_error(code, message).await,
        };
        if let Some(flow) = self.route_to_owner(room, Some(frame)).await {
            return flow;
        }
        let Joiner { name, grants, sub } = joiner;
        // A seed-000 client that was given an ID may still turn out to be an SFU client.
        self.leave_current();
        let admission = Admission {
            kind: MemberKind::Sfu,
            peer_id: PeerIdChoice::Generated,
            name,
            mailbox: self.mailbox.clone(),
        };
        let ctx = self.ctx.clone();
        let kept = match &ctx.cluster {
            Some(cluster) if ctx.rooms.get(room).is_none() => {
                cluster.chat_history(room, ctx.config.chat_history).await
            }
            _ => Vec::new(),
        };
        let (room_handle, welcome) = match ctx.rooms.join_with_chat(room, &admission, kept) {
            Ok(joined) => joined,
            Err(error) => return self.refuse_join(room, error).await,
        };
        let joined = ServerMessage::Joined {
            peer_id: welcome.peer_id.clone(),
            room: room.to_owned(),
            participants: welcome.others,
            chat: welcome.chat,
            ice_servers: ctx.ice_servers.clone(),
        };
        let media_grants = crate::media::MediaGrants {
            publish: grants.publish,
            subscribe: grants.subscribe,
        };
        let leg = ctx.media.join_with_grants(
            room,
            &welcome.peer_id,
            media_grants,
            join.receive.map(|r| r.codecs),
            self.media_events.clone(),
        );
        self.span.record("room", room);
        self.span.record("peer", welcome.peer_id.as_str());
        self.membership = Membership::Sfu(SfuMember {
            room: room_handle,
            peer_id: welcome.peer_id,
            grants,
            leg,
        });
        if let Some(sub) = &sub {
            self.hold_identity(room, sub);
        }
        let flow = self.reply(&joined).await;
        ctx.metrics
            .join_latency
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(kind = "sfu", "joined");
        flow
    }

    /// Who is joining: with a token, the token names the participant (its `sub` when it has no
    /// `name`) and the join's `name` is ignored; on an open server the join's `name` counts.
    fn joiner(&self, room: &str, join: &JoinRequest) -> Result<Joiner, (ErrorCode, String)> {
        let claims = self
            .authorize(room, join.token.as_deref())
            .map_err(|error| (error.code(), error.to_string()))?;
        let name = match &claims {
            Some(claims) => Some(claims.display_name().to_owned()),
            None => join.name.clone(),
        };
        let Some(name) = name else {
            return Err((ErrorCode::BadMessage, "an SFU join needs `name`".to_owned()));
        };
        let Some(name) = normalize_display_name(&name) else {
            let message = "names are 1-64 characters, without control or bidi characters, and \
                           not only invisible ones";
            return Err((ErrorCode::BadName, message.to_owned()));
        };
        Ok(Joiner {
            name,
            grants: claims.as_ref().map_or(Grants::ALL, |c| c.grants),
            sub: claims.map(|c| c.sub),
        })
    }

    /// Tells the client why it could not join.
    pub(super) async fn refuse_join(&mut self, room: &str, error: JoinError) -> Flow {
        match error {
            JoinError::RoomFull { max } => {
                self.ctx
                    .metrics
                    .errors
                    .with_label_values(&["room-full"])
                    .inc();
                let full = ServerMessage::RoomFull {
                    room: room.to_owned(),
                    max_participants: max,
                };
                self.reply(&full).await
            }
            JoinError::IdTaken(_) => self.send_error(ErrorCode::IdTaken, error.to_string()).await,
            JoinError::TooManyRooms { .. } => {
                self.send_error(ErrorCode::TooManyRooms, error.to_string())
                    .await
            }
        }
    }

    /// Checks the token for `room`: the join's own, else the URL's. `Ok(None)` on an open server.
    fn authorize(&self, room: &str, join_token: Option<&str>) -> Result<Option<Claims>, AuthError> {
        let Some(authority) = &self.ctx.auth else {
            return Ok(None);
        };
        match (join_token, &self.params.url_claims) {
            (Some(token), _) => authority.verify_for_room(token, room).map(Some),
            (None, Some(claims)) if claims.room == room => Ok(Some(claims.clone())),
            (None, Some(claims)) => Err(AuthError::WrongRoom {
                token_room: claims.room.clone(),
                room: room.to_owned(),
            }),
            (None, None) => Err(AuthError::Missing),
        }
    }

    /// A frame from a joined SFU participant.
    pub(super) async fn on_sfu_message(&mut self, raw: RawFrame) -> Flow {
        let message = match raw.into_message() {
            Ok(message) => message,
            Err(error) => return self.send_error(error.code(), error.to_string()).await,
        };
        let Membership::Sfu(member) = &self.membership else {
            return Flow::Continue;
        };
        match message {
            ClientMessage::Join(_) => {
                self.send_error(ErrorCode::AlreadyJoined, "already in a room; `leave` first")
                    .await
            }
            ClientMessage::Chat(chat) => self.sfu_chat(chat.text).await,
            ClientMessage::Leave => {
                let room = member.room.name().to_owned();
                self.leave_current();
                self.reply(&ServerMessage::Left { room }).await
            }
            ClientMessage::Media(request) => {
                member.leg.request(request);
                Flow::Continue
            }
        }
    }

    async fn sfu_chat(&mut self, text: String) -> Flow {
        let Membership::Sfu(member) = &self.membership else {
            return Flow::Continue;
        };
        if !member.grants.chat {
            return self
                .send_error(ErrorCode::Forbidden, "your token does not grant chat")
                .await;
        }
        let max = self.ctx.config.max_chat_bytes;
        if text.len() > max {
            let message = format!("chat text is limited to {max} bytes");
            return self.send_error(ErrorCode::TooLong, message).await;
        }
        if text.trim().is_empty() {
            return self
                .send_error(ErrorCode::BadMessage, "chat text is empty")
                .await;
        }
        match member.room.chat(&member.peer_id, text, unix_millis()) {
            Ok(message) => {
                self.ctx.metrics.chat_messages.inc();
                if let Some(cluster) = self.ctx.cluster.clone() {
                    // In the background: a slow Redis must not hold up this session (the
                    // history is put back in ID order when read).
                    let room = member.room.name().to_owned();
                    let capacity = self.ctx.config.chat_history;
                    tokio::spawn(async move {
                        cluster.record_chat(&room, &message, capacity).await;
                    });
                }
                Flow::Continue
            }
            Err(error) => {
                tracing::warn!(%error, "chat from a session its room does not know");
                Flow::Continue
            }
        }
    }
}
