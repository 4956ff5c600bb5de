//! The client's negotiation task: the only code that sets local and remote descriptions. It
//! applies the glare rule of the SFU protocol ("the server is polite"): the client offers only
//! from stable, one negotiation at a time, queuing further requests; a server offer that
//! arrives while the client's own offer is outstanding is ignored (the server rolls its offer
//! back, answers ours and re-offers); any other server offer is applied and answered. It also
//! buffers remote candidates until a remote description exists and keeps the mid → track map
//! from `track-published` and server offers. It must not send media or touch the tracks' tasks.

use super::options::{ClientError, ClientResult};
use super::Shared;
use crate::protocol::{IceCandidate, MediaEvent, MediaRequest, OfferedTrack, TrackSourceInfo};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

/// What the negotiator reacts to.
pub(crate) enum Input {
    /// A media message from the server.
    Event(MediaEvent),
    /// The client wants to (re)offer; the reply comes once the answer is applied.
    Renegotiate(oneshot::Sender<ClientResult<()>>),
    /// While held, server media messages are queued unprocessed, as if still on the wire
    /// (lets a test cross a client offer with a server offer); releasing processes them in
    /// order.
    Hold(bool),
}

type Waiter = oneshot::Sender<ClientResult<()>>;

/// Error codes by which the server rejects an offer.
const REJECTIONS: [&str; 3] = ["bad-sdp", "no-common-codec", "wrong-state"];

struct Negotiator {
    shared: Arc<Shared>,
    /// Waiters of the offer in flight; `Some` while in have-local-offer.
    in_flight: Option<InFlight>,
    /// Requests that arrived while an offer was in flight.
    queued: Vec<Waiter>,
    remote_set: bool,
    pending_candidates: Vec<IceCandidate>,
    /// Server messages held back by [`Input::Hold`].
    held: Option<Vec<MediaEvent>>,
}

struct InFlight {
    waiters: Vec<Waiter>,
    /// Tags of the published tracks the offer covers.
    tags: Vec<u64>,
    deadline: tokio::time::Instant,
}

/// Runs until the input channel closes.
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Input>) {
    let mut n = Negotiator {
        shared,
        in_flight: None,
        queued: Vec::new(),
        remote_set: false,
        pending_candidates: Vec::new(),
        held: None,
    };
    loop {
        let input = match n.in_flight.as_ref().map(|f| f.deadline) {
            Some(deadline) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(input) => input,
                Err(_) => {
                    n.abandon_offer(ClientError::Timeout("answer to our offer".into()))
                        .await;
                    n.offer_queued().await;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(input) = input else { break };
        match input {
            Input::Renegotiate(waiter) => {
                n.queued.push(waiter);
                if n.in_flight.is_none() {
                    n.offer_queued().await;
                }
            }
            Input::Event(event) => match n.held.as_mut() {
                Some(held) => held.push(event),
                None => n.on_event(event).await,
            },
            Input::Hold(true) => {
                n.held.get_or_insert_with(Vec::new);
            }
            Input::Hold(false) => {
                for event in n.held.take().unwrap_or_default() {
                    n.on_event(event).await;
                }
            }
        }
    }
}

impl Negotiator {
    fn count(&self, f: impl FnOnce(&mut super::stats::NegotiationSnapshot)) {
        if let Ok(mut s) = self.shared.negotiation.lock() {
            f(&mut s);
        }
    }

    async fn on_event(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Offer { sdp, tracks } => {
                self.remember_offered(&tracks);
                if self.in_flight.is_some() {
                    // Glare: the server is polite and will re-offer after answering ours.
                    self.count(|s| s.server_offers_ignored += 1);
                    return;
                }
                if let Err(e) = self.answer(sdp).await {
                    tracing::warn!(error = %e, "client: answering the server offer failed");
                    self.count(|s| s.failures += 1);
                    self.rollback_remote().await;
                }
                self.offer_queued().await;
            }
            MediaEvent::Answer { sdp } => self.on_answer(sdp).await,
            MediaEvent::Candidate { candidate } => {
                if self.remote_set {
                    self.add_candidate(candidate).await;
                } else {
                    self.pending_candidates.push(candidate);
                }
            }
            // About our own tracks the mid is the one we send on, not a receiving m-line.
            MediaEvent::TrackPublished(info) if info.peer_id != self.shared.peer_id => {
                if let (Some(mid), Ok(mut map)) = (info.mid, self.shared.mid_map.lock()) {
                    map.insert(mid, (info.peer_id, info.track_id));
                }
            }
            MediaEvent::Error { code, message }
                if self.in_flight.is_some() && REJECTIONS.contains(&code.as_str()) =>
            {
                self.abandon_offer(ClientError::Refused {
                    code: code.as_str().to_owned(),
                    message,
                })
                .await;
                self.offer_queued().await;
            }
            _ => {}
        }
    }

    fn remember_offered(&self, tracks: &[OfferedTrack]) {
        if let Ok(mut map) = self.shared.mid_map.lock() {
            for t in tracks {
                map.insert(t.mid.clone(), (t.peer_id.clone(), t.track_id.clone()));
            }
        }
    }

    /// Applies a server offer and sends our answer.
    async fn answer(&mut self, sdp: String) -> ClientResult<()> {
        let pc = self.shared.pc()?;
        pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        self.remote_set = true;
        self.count(|s| s.server_offers_applied += 1);
        self.flush_candidates().await;
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer.clone()).await?;
        self.shared.note_first_mid(&answer.sdp);
        self.shared.send(&MediaRequest::Answer { sdp: answer.sdp });
        self.shared.release_local_candidates();
        self.count(|s| s.answers_sent += 1);
        Ok(())
    }

    /// Sends one offer for every queued request, if any.
    async fn offer_queued(&mut self) {
        if self.in_flight.is_some() || self.queued.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.queued);
        match self.offer().await {
            Ok(tags) => {
                let deadline = tokio::time::Instant::now() + self.shared.options.timeout;
                self.in_flight = Some(InFlight {
                    waiters,
                    tags,
                    deadline,
                });
            }
            Err(e) => {
                self.count(|s| s.failures += 1);
                let text = e.to_string();
                for w in waiters {
                    let _ = w.send(Err(ClientError::Protocol(text.clone())));
                }
            }
        }
    }

    /// Creates, applies and sends an offer; returns the tags of the tracks it covers.
    async fn offer(&mut self) -> ClientResult<Vec<u64>> {
        let pc = self.shared.pc()?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        self.shared.note_first_mid(&offer.sdp);
        let mut tracks = Vec::new();
        let mut tags = Vec::new();
        for track in self.shared.live_tracks() {
            let Ok(Some(mid)) = track.transceiver.mid().await else {
                continue;
            };
            tracks.push(TrackSourceInfo {
                mid,
                source: track.spec.source,
                muted: track.muted.load(std::sync::atomic::Ordering::Acquire),
            });
            tags.push(track.tag);
        }
        self.shared.send(&MediaRequest::Offer {
            sdp: offer.sdp,
            tracks,
        });
        self.shared.release_local_candidates();
        self.count(|s| s.offers_sent += 1);
        Ok(tags)
    }

    async fn on_answer(&mut self, sdp: String) {
        let Some(flight) = self.in_flight.take() else {
            self.count(|s| s.unexpected_answers += 1);
            return;
        };
        let result = self.apply_answer(sdp, &flight.tags).await;
        if result.is_err() {
            self.count(|s| s.failures += 1);
            self.rollback().await;
        }
        let text = result.as_ref().err().map(|e| e.to_string());
        for w in flight.waiters {
            let _ = w.send(match &text {
                None => Ok(()),
                Some(t) => Err(ClientError::Protocol(t.clone())),
            });
        }
        self.offer_queued().await;
    }

    async fn apply_answer(&mut self, sdp: String, tags: &[u64]) -> ClientResult<()> {
        let pc = self.shared.pc()?;
        pc.set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        self.remote_set = true;
        self.count(|s| s.answers_received += 1);
        self.flush_candidates().await;
        for track in self.shared.live_tracks() {
            if tags.contains(&track.tag) {
                track.mark_negotiated().await;
            }
        }
        Ok(())
    }

    /// Gives up the offer in flight (rejected or unanswered) and returns to stable.
    async fn abandon_offer(&mut self, error: ClientError) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        self.rollback().await;
        let text = error.to_string();
        let mut error = Some(error);
        for w in flight.waiters {
            let e = error
                .take()
                .unwrap_or_else(|| ClientError::Protocol(text.clone()));
            let _ = w.send(Err(e));
        }
    }

    async fn rollback(&mut self) {
        let Ok(pc) = self.shared.pc() else { return };
        let Ok(rollback) = RTCSessionDescription::rollback(None) else {
            return;
        };
        if pc.set_local_description(rollback).await.is_ok() {
            self.count(|s| s.rollbacks += 1);
        }
    }

    /// Leaves have-remote-offer after a server offer could not be answered.
    async fn rollback_remote(&mut self) {
        let Ok(pc) = self.shared.pc() else { return };
        if let Ok(rollback) = RTCSessionDescription::rollback(None) {
            if pc.set_remote_description(rollback).await.is_ok() {
                self.count(|s| s.rollbacks += 1);
            }
        }
    }

    async fn flush_candidates(&mut self) {
        for c in std::mem::take(&mut self.pending_candidates) {
            self.add_candidate(c).await;
        }
    }

    async fn add_candidate(&mut self, c: IceCandidate) {
        let Ok(pc) = self.shared.pc() else { return };
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: c.username_fragment,
            url: None,
        };
        match pc.add_ice_candidate(init).await {
            Ok(()) => self.count(|s| s.remote_candidates_added += 1),
            Err(e) => {
                tracing::debug!(error = %e, "client: remote candidate rejected");
                self.count(|s| s.remote_candidate_errors += 1);
            }
        }
    }
}
