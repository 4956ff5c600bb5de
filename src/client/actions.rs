//! What a test can make a client do: publish and unpublish synthetic tracks, mute, choose
//! subscriptions, send raw messages, ask for retransmissions and keyframes, and leave — politely,
//! abruptly, or by vanishing without a word. Each action is bounded in time; negotiation itself
//! is delegated to the negotiator task.

use super::negotiator::Input;
use super::options::{ClientError, ClientResult, TrackSpec};
use super::publisher::PublishedTrack;
use super::signaling::Outgoing;
use super::SfuClient;
use crate::protocol::MediaRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot;

impl SfuClient {
    /// Adds one synthetic track per spec, starts sending on them once negotiated, and
    /// negotiates. Returns the tags of the new tracks once the server's answer is applied.
    pub async fn publish(&self, specs: &[TrackSpec]) -> ClientResult<Vec<u64>> {
        let pc = self.shared.pc()?;
        let mut tags = Vec::new();
        for spec in specs {
            let track =
                PublishedTrack::add(&pc, &self.shared.options, *spec, self.peer_id()).await?;
            track.start(&self.shared.options, Arc::downgrade(&self.shared));
            tags.push(track.tag);
            if let Ok(mut published) = self.shared.published.lock() {
                published.push(track);
            }
        }
        self.renegotiate().await?;
        Ok(tags)
    }

    /// Publishes a microphone and a camera track; returns `(audio tag, video tag)`.
    pub async fn publish_audio_video(&self) -> ClientResult<(u64, u64)> {
        let tags = self
            .publish(&[TrackSpec::microphone(), TrackSpec::camera()])
            .await?;
        match tags[..] {
            [audio, video] => Ok((audio, video)),
            _ => Err(ClientError::Protocol("publish returned no tags".into())),
        }
    }

    /// Sends an offer for the current tracks (queued behind a negotiation in progress) and
    /// waits until its answer is applied.
    pub async fn renegotiate(&self) -> ClientResult<()> {
        let (tx, rx) = oneshot::channel();
        self.negotiate
            .send(Input::Renegotiate(tx))
            .map_err(|_| ClientError::Closed)?;
        // Queued behind at most one negotiation, each bounded by the timeout.
        let wait = self.shared.options.timeout * 3;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout("renegotiation".into())),
        }
    }

    /// Holds back (`true`) or releases (`false`) the processing of server media messages, as
    /// if they were still on the wire. They are still recorded in the message log on arrival. Used to
    /// make a client offer cross a server offer (glare).
    pub fn hold_server_events(&self, hold: bool) -> ClientResult<()> {
        self.negotiate
            .send(Input::Hold(hold))
            .map_err(|_| ClientError::Closed)
    }

    fn track(&self, tag: u64) -> ClientResult<Arc<PublishedTrack>> {
        self.shared
            .live_tracks()
            .into_iter()
            .find(|t| t.tag == tag)
            .ok_or_else(|| ClientError::UnknownTrack(format!("{tag:016x}")))
    }

    /// The server-side id of one of our tracks, as announced so far (see
    /// [`SfuClient::published`]); the msid track id until the server has announced it.
    pub fn track_id_of(&self, tag: u64) -> ClientResult<String> {
        self.published_track(tag)
            .and_then(|s| s.track_id)
            .ok_or_else(|| ClientError::UnknownTrack(format!("{tag:016x}")))
    }

    /// The server-side id of one of our tracks, waiting (bounded by the client timeout) for the
    /// server's `track-published` about it; falls back to the msid track id.
    pub async fn server_track_id(&self, tag: u64) -> ClientResult<String> {
        let announced = |c: &Self| {
            c.published_track(tag)
                .is_some_and(|s| s.track_id.as_deref() != Some(s.local_track_id.as_str()))
        };
        let _ = self
            .wait_until("track-published", self.shared.options.timeout, announced)
            .await;
        self.track_id_of(tag)
    }

    /// Stops a track, removes it from the connection and renegotiates.
    pub async fn unpublish(&self, tag: u64) -> ClientResult<()> {
        let track = self.track(tag)?;
        track.stop();
        if let Ok(mut state) = track.state.lock() {
            state.unpublished = true;
        }
        let pc = self.shared.pc()?;
        if let Some(sender) = track.transceiver.sender().await? {
            pc.remove_track(&sender).await?;
        }
        self.renegotiate().await
    }

    /// Mutes or unmutes one of our tracks and tells the server (`mute {trackId, muted}`).
    pub async fn mute(&self, tag: u64, muted: bool) -> ClientResult<()> {
        let track = self.track(tag)?;
        track.muted.store(muted, Ordering::Release);
        if let Ok(mut state) = track.state.lock() {
            state.muted = muted;
        }
        let track_id = self.server_track_id(tag).await?;
        self.shared.send(&MediaRequest::Mute { track_id, muted });
        Ok(())
    }

    /// `subscribe {trackIds}`.
    pub fn subscribe(&self, track_ids: &[String]) {
        self.shared.send(&MediaRequest::Subscribe {
            track_ids: track_ids.to_vec(),
        });
    }

    /// `unsubscribe {trackIds}`.
    pub fn unsubscribe(&self, track_ids: &[String]) {
        self.shared.send(&MediaRequest::Unsubscribe {
            track_ids: track_ids.to_vec(),
        });
    }

    /// Sends any JSON value as a text frame.
    pub fn send_json(&self, value: &Value) -> ClientResult<()> {
        self.shared.send_text(value.to_string())
    }

    /// Sends a raw text frame (not necessarily JSON).
    pub fn send_text(&self, text: &str) -> ClientResult<()> {
        self.shared.send_text(text.to_owned())
    }

    fn received_track(&self, index: usize) -> ClientResult<Arc<super::peer::ReceivedTrack>> {
        self.shared
            .received
            .lock()
            .ok()
            .and_then(|r| r.get(index).cloned())
            .ok_or_else(|| ClientError::UnknownTrack(format!("received #{index}")))
    }

    /// Sends a generic NACK for `seqs` of received track `index` to the server.
    pub async fn send_nack(&self, index: usize, seqs: &[u16]) -> ClientResult<()> {
        let track = self.received_track(index)?;
        let media_ssrc = track.media_ssrc.load(Ordering::Acquire);
        let nack = TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        track.remote.write_rtcp(vec![Box::new(nack)]).await?;
        Ok(())
    }

    /// Sends a picture loss indication for received track `index` to the server.
    pub async fn send_pli(&self, index: usize) -> ClientResult<()> {
        let track = self.received_track(index)?;
        let media_ssrc = track.media_ssrc.load(Ordering::Acquire);
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        track.remote.write_rtcp(vec![Box::new(pli)]).await?;
        Ok(())
    }

    /// Sequence numbers of the most recent packets received on track `index` (up to `n`).
    pub fn recent_sequence_numbers(&self, index: usize, n: usize) -> Vec<u16> {
        self.received_track(index)
            .ok()
            .and_then(|t| t.recorder.lock().ok().map(|r| r.recent_seqs(n)))
            .unwrap_or_default()
    }

    /// Polite exit: `leave`, close the PeerConnection, close the WebSocket.
    pub async fn leave(&self) -> ClientResult<()> {
        self.shared.send_text(r#"{"type":"leave"}"#.to_owned())?;
        for track in self.shared.live_tracks() {
            track.stop();
        }
        if let Ok(pc) = self.shared.pc() {
            let _ = tokio::time::timeout(self.shared.options.timeout, pc.close()).await;
        }
        let _ = self.shared.send_outgoing(Outgoing::Close);
        Ok(())
    }

    /// Closes the PeerConnection only (its DTLS close_notify goes out); the WebSocket stays
    /// open and keeps answering pings, so only the media plane can notice.
    pub async fn close_media(&self) {
        for track in self.shared.live_tracks() {
            track.stop();
        }
        if let Ok(pc) = self.shared.pc() {
            let _ = tokio::time::timeout(self.shared.options.timeout, pc.close()).await;
        }
    }

    /// Silent disappearance: media stops in both directions without any goodbye (no DTLS
    /// alert, no RTCP BYE), and the WebSocket stays open but is never read or written again,
    /// so the server's pings go unanswered. Only the server's liveness checks can notice.
    pub fn vanish(&self) {
        self.shared.silence.engage();
        for track in self.shared.live_tracks() {
            track.stop();
        }
        self.park.send_replace(true);
    }

    /// Abrupt disappearance: like [`SfuClient::vanish`] for media, but the TCP connection is
    /// dropped without a WebSocket close frame.
    pub fn drop_connection(&self) {
        self.vanish();
        if let Ok(tasks) = self.tasks.lock() {
            tasks.iter().for_each(|t| t.abort());
        }
    }
}
