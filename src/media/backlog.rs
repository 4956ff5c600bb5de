//! Media requests that wait for a later turn of the shard. Negotiation (offers, answers,
//! subscription changes) is the expensive work of a shard; each turn applies at most
//! [`NEGOTIATIONS_PER_TURN`] of it so forwarding is never starved, and what is left waits here:
//! one FIFO per participant (a participant's requests keep their order), served round-robin
//! (one participant's storm cannot hold back another's), at most one waiting offer per
//! participant (a newer offer supersedes it) and at most [`MAX_WAITING_PER_PEER`] requests each.

use super::peer::PeerKey;
use crate::protocol::MediaRequest;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Negotiation steps one shard turn applies at most.
pub const NEGOTIATIONS_PER_TURN: u32 = 2;
/// Requests one participant may have waiting; more are refused.
pub const MAX_WAITING_PER_PEER: usize = 64;

/// Whether `request` costs a negotiation step (a description applied or created).
pub fn is_negotiation(request: &MediaRequest) -> bool {
    !matches!(
        request,
        MediaRequest::Candidate { .. } | MediaRequest::Mute { .. } | MediaRequest::VideoSize { .. }
    )
}

/// What became of a request handed to [`Backlog::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    /// It waits behind the participant's earlier requests.
    Waiting,
    /// It replaced the participant's waiting offer, which will never be applied.
    Superseded,
    /// The participant already has [`MAX_WAITING_PER_PEER`] requests waiting.
    Refused,
}

/// See the module documentation.
#[derive(Default)]
pub struct Backlog {
    waiting: HashMap<PeerKey, VecDeque<MediaRequest>>,
    /// Participants with requests waiting, in serving order.
    order: VecDeque<PeerKey>,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether `key` has requests waiting (its next requests must wait behind them).
    pub fn holds(&self, key: PeerKey) -> bool {
        self.waiting.contains_key(&key)
    }

    /// Requests waiting, over all participants.
    pub fn len(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    /// Puts `request` of `key` behind its earlier ones.
    pub fn push(&mut self, key: PeerKey, request: MediaRequest) -> Queued {
        let queue = match self.waiting.get_mut(&key) {
            Some(queue) => queue,
            None => {
                self.order.push_back(key);
                self.waiting.entry(key).or_default()
            }
        };
        if matches!(request, MediaRequest::Offer { .. }) {
            if let Some(waiting) = queue
                .iter_mut()
                .find(|r| matches!(r, MediaRequest::Offer { .. }))
            {
                *waiting = request;
                return Queued::Superseded;
            }
        }
        if queue.len() >= MAX_WAITING_PER_PEER {
            return Queued::Refused;
        }
        queue.push_back(request);
        Queued::Waiting
    }

    /// The next request to apply: the oldest of the participant whose turn it is, who then
    /// goes to the back of the line if it has more.
    pub fn pop(&mut self) -> Option<(PeerKey, MediaRequest)> {
        let key = self.order.pop_front()?;
        let queue = self.waiting.get_mut(&key)?;
        let request = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&key);
        } else {
            self.order.push_back(key);
        }
        Some((key, request))
    }

    /// Forgets everything `key` had waiting (it left).
    pub fn remove(&mut self, key: PeerKey) {
        if self.waiting.remove(&key).is_some() {
            self.order.retain(|k| *k != key);
        }
    }
}

/// What [`Pacer::admit`] decided.
pub enum Admitted {
    /// Apply it now (its cost is counted against this turn's budget).
    Now(MediaRequest),
    /// It waits (or was superseded or refused).
    Later(Queued),
}

/// The per-turn negotiation budget and the backlog behind it.
pub struct Pacer {
    backlog: Backlog,
    spent: u32,
    /// When the last turn ended: a waiting backlog makes the next turn due from then.
    last_turn: Instant,
}

impl Pacer {
    pub fn new(epoch: Instant) -> Self {
        Self {
            backlog: Backlog::default(),
            spent: 0,
            last_turn: epoch,
        }
    }

    /// A new request of `key`: now, unless the participant already has requests waiting or it
    /// is a negotiation step and this turn's budget is spent.
    pub fn admit(&mut self, key: PeerKey, request: MediaRequest) -> Admitted {
        let costly = is_negotiation(&request);
        let over_budget = self.spent >= NEGOTIATIONS_PER_TURN;
        if self.backlog.holds(key) || (costly && over_budget) {
            return Admitted::Later(self.backlog.push(key, request));
        }
        self.spent += u32::from(costly);
        Admitted::Now(request)
    }

    /// The next waiting request to apply this turn, round-robin, while the budget lasts.
    pub fn next_due(&mut self) -> Option<(PeerKey, MediaRequest)> {
        if self.spent >= NEGOTIATIONS_PER_TURN {
            return None;
        }
        let (key, request) = self.backlog.pop()?;
        self.spent += u32::from(is_negotiation(&request));
        Some((key, request))
    }

    /// The turn ended at `now`: a fresh budget for the next.
    pub fn end_turn(&mut self, now: Instant) {
        self.spent = 0;
        self.last_turn = now;
    }

    /// When the next turn is due for the backlog (at once, if anything waits).
    pub fn due(&self) -> Option<Instant> {
        (!self.backlog.is_empty()).then_some(self.last_turn)
    }

    /// `key` left: what it had waiting is dropped.
    pub fn forget(&mut self, key: PeerKey) {
        self.backlog.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(sdp: &str) -> MediaRequest {
        MediaRequest::Offer {
            sdp: sdp.into(),
            tracks: Vec::new(),
        }
    }

    fn candidate() -> MediaRequest {
        MediaRequest::Candidate { candidate: None }
    }

    #[test]
    fn participants_are_served_in_turn_and_keep_their_order() {
        let mut b = Backlog::default();
        assert_eq!(b.push(1, offer("a1")), Queued::Waiting);
        assert_eq!(b.push(1, candidate()), Queued::Waiting);
        assert_eq!(b.push(1, candidate()), Queued::Waiting);
        assert_eq!(b.push(2, offer("b1")), Queued::Waiting);
        let served: Vec<PeerKey> = std::iter::from_fn(|| b.pop().map(|(k, _)| k)).collect();
        assert_eq!(served, vec![1, 2, 1, 1]);
        assert!(b.is_empty() && !b.holds(1) && !b.holds(2));
    }

    #[test]
    fn a_newer_offer_supersedes_the_waiting_one_in_its_place() {
        let mut b = Backlog::default();
        b.push(1, offer("first"));
        b.push(1, candidate());
        assert_eq!(b.push(1, offer("second")), Queued::Superseded);
        assert_eq!(b.len(), 2);
        match b.pop() {
            Some((1, MediaRequest::Offer { sdp, .. })) => assert_eq!(sdp, "second"),
            other => panic!("expected the newer offer first, got {other:?}"),
        }
    }

    #[test]
    fn a_participant_has_at_most_the_cap_waiting_and_leaving_clears_it() {
        let mut b = Backlog::default();
        for _ in 0..MAX_WAITING_PER_PEER {
            assert_eq!(b.push(7, candidate()), Queued::Waiting);
        }
        assert_eq!(b.push(7, candidate()), Queued::Refused);
        b.push(8, candidate());
        b.remove(7);
        assert_eq!(b.len(), 1);
        assert_eq!(b.pop().map(|(k, _)| k), Some(8));
        assert!(b.pop().is_none());
    }
}
