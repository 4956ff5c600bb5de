//! The bandwidth estimate as the rest of the shard uses it, per subscriber leg (`Peer::bwe`,
//! [`crate::media::bwe`]): the budget its video tracks may use, the probing it is asked for,
//! the TWCC feedback handed to it, the once-a-second review of every leg, and which legs can
//! carry padding.

use super::bwe::{metrics, OVERHEAD_SHARE};
use super::peer::{Peer, Peers};
use super::sending::Subscription;
use super::simulcast::UP_HEADROOM;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::time::Instant;

impl Peer {
    /// This leg's bandwidth estimate in bits per second (`None`: no feedback yet, or the
    /// subscriber does not send TWCC feedback).
    pub fn estimate_bps(&self) -> Option<u64> {
        self.bwe.estimate_bps()
    }

    /// The estimate minus the audio this leg is sent: what its video may use.
    pub fn video_budget_bps(&self, now: Instant) -> Option<u64> {
        self.bwe.video_budget_bps(now)
    }

    /// What one video track may use on this leg: the video budget less [`OVERHEAD_SHARE`]
    /// (packet headers and retransmissions, which layer bitrates do not count), shared
    /// evenly by the leg's video tracks (`None`: no estimate, no limit).
    pub fn track_budget_bps(&self, now: Instant) -> Option<u64> {
        let budget = self.video_budget_bps(now)?;
        let budget = (budget as f64 * (1.0 - OVERHEAD_SHARE)) as u64;
        let videos = self
            .subscriptions
            .values()
            .filter(|s| s.kind == RtpCodecKind::Video)
            .count()
            .max(1);
        Some(budget / videos as u64)
    }

    /// Simulcast tracks of this leg held below the layer their subscriber asked for (by the
    /// budget, as of their last review): the leg could take that much more, so it probes.
    pub fn probe_for_shortfall(&mut self, now: Instant) {
        let shortfall: u64 = self
            .subscriptions
            .values()
            .map(|s| s.simulcast.shortfall(now))
            .sum();
        let wanted =
            (shortfall > 0).then(|| estimate_to_move_up(self.bwe.sent_bps(now) + shortfall));
        self.bwe.set_wanted_bps(wanted);
    }

    /// Tells the leg what it could take at its best (the layer selector's business); a leg
    /// whose estimate is below it probes.
    pub fn set_wanted_bps(&mut self, wanted: Option<u64>) {
        self.bwe.set_wanted_bps(wanted);
    }
}

/// The estimate at which a leg sent `bps` (its layers moved up) gets a track budget that lets
/// the selector move up: the budget is the estimate less [`OVERHEAD_SHARE`], and a layer must
/// fit it with [`UP_HEADROOM`] to spare; and 5 % more, as the estimate wavers. Asking for less,
/// the leg's probes would prove just short of what the move needs.
pub fn estimate_to_move_up(bps: u64) -> u64 {
    (bps as f64 * UP_HEADROOM * 1.05 / (1.0 - OVERHEAD_SHARE)) as u64
}

/// Hands TWCC feedback among a client's RTCP to its leg's estimator.
pub fn on_rtcp(peer: &mut Peer, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
    for packet in packets {
        if let Some(tcc) = packet.as_any().downcast_ref::<TransportLayerCc>() {
            peer.bwe.on_feedback(tcc, now);
        }
    }
}

/// The once-a-second look at every leg: samples the estimates for the histogram, finishes and
/// starts probes. True if any leg is probing (the shard then ticks [`PROBE_TICK`]).
pub fn review(peers: &mut Peers, cap: u64, now: Instant) -> bool {
    let mut probing = false;
    for peer in peers.values_mut() {
        let Some(bps) = peer.bwe.estimate_bps() else {
            continue;
        };
        metrics::observe_estimate(bps);
        // Padding goes on the fast path; a leg without an RTX stream to pad on (or on the
        // stack path) starts no burst it could not send.
        let cap = if can_pad(peer) { cap } else { 0 };
        if peer.bwe.review(now, cap) {
            metrics::count_probe();
            tracing::debug!(
                peer = peer.key,
                estimate = bps,
                sent = peer.bwe.sent_bps(now),
                "probe burst"
            );
        }
        probing |= peer.bwe.probing(now);
    }
    probing
}

/// Whether `sub` can carry padding: video that has sent media and flows now (not muted, not
/// waiting for a keyframe), with a negotiated RTX stream. A receiver counts RTX padding among
/// the track's received packets (Chromium's `packetsReceived`), so a stopped track must not
/// seem to go on.
pub fn pads(sub: &Subscription) -> bool {
    sub.kind == RtpCodecKind::Video
        && sub.send.last.is_some()
        && !sub.awaiting_keyframe
        && sub.rtx.is_some_and(|r| r.payload_type.is_some())
}

/// Whether `peer`'s leg can be sent padding now.
pub fn can_pad(peer: &Peer) -> bool {
    peer.fast.is_some() && peer.route.is_some() && peer.subscriptions.values().any(pads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::simulcast::{LayerView, SimulcastLeg};
    use std::time::Instant;

    #[test]
    fn an_estimate_of_what_the_leg_asks_for_moves_it_up() {
        let layers: Vec<LayerView> = [150_000, 350_000]
            .map(|bitrate| LayerView {
                active: true,
                bitrate,
                size: None,
                below_top: None,
            })
            .to_vec();
        let mut leg = SimulcastLeg::default();
        leg.budget = Some(200_000);
        let now = Instant::now();
        leg.review(&layers, now);
        leg.on_packet(0, 1, true);
        // The leg is sent the low layer and is 200k short of the high one.
        let estimate = estimate_to_move_up(150_000 + leg.shortfall_bps);
        leg.budget = Some((estimate as f64 * (1.0 - OVERHEAD_SHARE)) as u64);
        assert_eq!(leg.review(&layers, now), Some(1), "estimate {estimate}");
    }
}
