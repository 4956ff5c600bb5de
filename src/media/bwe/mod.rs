//! Send-side bandwidth estimation per subscriber leg (issue 13 item 2): the leg's TWCC feedback
//! turned into an estimate of what the path to the subscriber carries, and probing to find out
//! whether it carries more.
//!
//! * `history.rs` — what the fast path sent on the leg (transport-wide number, when, size);
//! * `estimate.rs` — GCC's delay and loss halves (`rtc::interceptor`'s stages), held to what
//!   the receiver acknowledged or a probe proved;
//! * `probe.rs` — when to send a burst of padding and what it showed;
//! * `meter.rs` — what the leg is sent (all, and audio);
//! * `window.rs` — what the receiver acknowledged over a window, in fixed memory;
//! * `metrics.rs` — the estimate histogram and probe counter;
//! * `fast/padding.rs` writes the padding (RTX SSRC, padding-only RTP).
//!
//! **Where the layer selector reads it:** [`Peer::estimate_bps`] and [`Peer::video_budget_bps`]
//! (the estimate minus the audio the leg is sent: audio always first), both `None` until the
//! leg's feedback acknowledged packets. The selector tells the leg what it could take at its
//! best with [`Peer::set_wanted_bps`] (e.g. the sum of the top layers of what it subscribes);
//! a leg whose wanted rate is above its estimate probes, one that gets all it wants does not.
//!
//! Both paths number a leg's packets with the leg's own transport-wide sequence number and
//! record them: the fast path as it writes each datagram (AES-128-GCM and AES-CM-HMAC-SHA1-80
//! legs, Chromium's included), the stack path (`--fast-path false`, or a leg whose keys were not
//! learned) as it hands the rewritten packet to the leg's connection, which sends it in the
//! same turn. Padding (probing) is written by the fast path only. Runs on the shard
//! thread, time is an argument everywhere.

pub mod estimate;
pub mod history;
pub mod meter;
pub mod metrics;
pub mod probe;
pub mod window;

use super::rewrite::ExtensionMap;
use estimate::Estimator;
use history::SendHistory;
use meter::RateMeter;
use probe::{Outcome, Prober};
use rtc::interceptor::{convert_twcc, Acknowledgement};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::shared::marshal::MarshalSize;
use std::time::{Duration, Instant};

/// How often a probing leg's padding is sent (the shard wakes this often while any burst runs).
pub const PROBE_TICK: Duration = Duration::from_millis(20);
/// Padding bytes in one padding-only packet (RTP allows 255; libwebrtc sends 224).
pub const PADDING_BYTES: usize = 224;
/// The share of a leg's video budget kept for what layer bitrates (RTP payload) do not
/// count: headers, SRTP tags, header extensions and retransmissions.
pub const OVERHEAD_SHARE: f64 = 0.1;
/// Most padding packets one leg sends per tick.
const MAX_PADDING_PER_TICK: usize = 64;

/// The estimation state of one leg (`Peer::bwe`): also the leg's transport-wide numbering,
/// on the fast path and on the stack path alike.
#[derive(Default)]
pub struct LegBwe {
    transport_seq: u16,
    history: SendHistory,
    estimator: Estimator,
    prober: Prober,
    sent: RateMeter,
    audio: RateMeter,
    wanted: Option<u64>,
}

impl LegBwe {
    /// The transport-wide sequence number of the leg's next packet.
    pub fn next_transport_seq(&mut self) -> u16 {
        self.transport_seq = self.transport_seq.wrapping_add(1);
        self.transport_seq
    }

    /// A packet of `size` bytes left on the leg at `now`, with transport-wide number `seq` if
    /// the leg numbers its packets.
    pub fn on_sent(&mut self, seq: Option<u16>, size: usize, audio: bool, now: Instant) {
        if let Some(seq) = seq {
            self.history.on_sent(seq, size, now);
        }
        self.sent.add(now, size);
        if audio {
            self.audio.add(now, size);
        }
    }

    /// The leg's subscriber sent TWCC feedback, received at `now`.
    pub fn on_feedback(&mut self, feedback: &TransportLayerCc, now: Instant) {
        self.on_acks(&convert_twcc(feedback), now);
    }

    /// The packets one feedback (received at `now`) reports on.
    pub fn on_acks(&mut self, acks: &[Acknowledgement], now: Instant) {
        let reports = self.history.on_feedback(acks, now);
        self.estimator.on_reports(now, &reports);
        self.prober.on_reports(&reports);
    }

    /// The estimate, bits per second.
    pub fn estimate_bps(&self) -> Option<u64> {
        self.estimator.bps()
    }

    /// What is left of the estimate for video once the leg's audio is sent.
    pub fn video_budget_bps(&self, now: Instant) -> Option<u64> {
        Some(self.estimate_bps()?.saturating_sub(self.audio.bps(now)))
    }

    /// What the leg is sent, bits per second over the last second.
    pub fn sent_bps(&self, now: Instant) -> u64 {
        self.sent.bps(now)
    }

    /// What the leg could take at its best (`None`: unknown, no probing).
    pub fn set_wanted_bps(&mut self, wanted: Option<u64>) {
        self.wanted = wanted;
    }

    /// Looks at probing once a second: finishes a burst whose feedback is in, starts one if
    /// due (`cap`: most a burst aims at; 0 turns probing off). True if a burst started.
    pub fn review(&mut self, now: Instant, cap: u64) -> bool {
        if let Some(outcome) = self.prober.finish(now) {
            let before = self.estimate_bps();
            if let Outcome::Carried(bps) = outcome {
                self.estimator.on_probe(now, bps);
            }
            tracing::debug!(?outcome, ?before, after = ?self.estimate_bps(), "probe burst finished");
        }
        let unproven = self.wanted.map(|w| w as f64 * probe::ABOVE_WANTED);
        self.estimator
            .set_unproven_ceiling(unproven.filter(|_| cap == 0));
        let sent = self.sent.bps(now);
        let overusing = self.estimator.overusing();
        self.prober
            .maybe_start(now, self.estimate_bps(), self.wanted, sent, cap, overusing)
    }

    /// Whether a burst is sending at `now`.
    pub fn probing(&self, now: Instant) -> bool {
        self.prober.sending(now)
    }

    /// Padding packets of [`PADDING_BYTES`] due at `now`.
    pub fn padding_due(&mut self, now: Instant) -> usize {
        self.prober
            .padding_due(now, PADDING_BYTES)
            .min(MAX_PADDING_PER_TICK)
    }
}

/// Stamps the leg's next transport-wide sequence number on a packet the stack path is about to
/// send, when the leg negotiated transport-cc; returns it.
pub fn stamp(packet: &mut rtc::rtp::Packet, map: &ExtensionMap, bwe: &mut LegBwe) -> Option<u16> {
    let id = map.transport_cc()?;
    let seq = bwe.next_transport_seq();
    let value = bytes::Bytes::copy_from_slice(&seq.to_be_bytes());
    packet.header.set_extension(id, value).ok()?;
    Some(seq)
}

/// About what a packet the stack path sends takes on the wire: the RTP packet and an SRTP tag
/// (10 bytes for AES-CM-HMAC-SHA1-80, 16 for AES-GCM).
pub fn stack_wire_size(packet: &rtc::rtp::Packet) -> usize {
    packet.marshal_size() + 10
}

#[cfg(test)]
mod tests;
