//! The fast path's per-leg and per-stream state (what a connection and a subscription carry):
//! the leg's SRTP session and transport-wide counter, its route, a subscription's RTX stream,
//! rollover counter and sender-report figures. Plain data and arithmetic; sending is in
//! [`super`].

use crate::rtp::key_tap::KeyTap;
use crate::rtp::leg_srtp::LegSrtp;
use crate::rtp::srtp_out::Rollover;
use rtc::rtcp::sender_report::SenderReport;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often each fast-path stream sends an RTCP sender report.
pub const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A leg's fast-path state: its SRTP session (its transport-wide numbering and send history
/// are the leg's bandwidth estimation's, `Peer::bwe`, shared with the stack path).
pub struct FastLeg {
    pub(super) srtp: LegSrtp,
}

impl FastLeg {
    /// The fast path of a leg whose DTLS just came up, if its keys were learned (AES-128-GCM
    /// or AES-CM-HMAC-SHA1 profiles).
    pub fn from_tap(tap: &KeyTap) -> Option<Self> {
        let keys = tap.local_keys()?;
        let srtp = LegSrtp::new(&keys).ok()?;
        Some(Self { srtp })
    }

    /// The leg's negotiated SRTP profile, for logs.
    pub fn profile_name(&self) -> &'static str {
        self.srtp.profile_name()
    }
}

/// Where a leg's media goes: the local candidate and remote address of the datagrams its
/// connection last sent other than STUN (DTLS, SRTP, SRTCP): the selected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub local: SocketAddr,
    pub to: SocketAddr,
}

/// The RTX stream of a video subscription: its SSRC, payload type (once negotiated) and
/// numbering.
#[derive(Debug, Clone, Copy)]
pub struct RtxStream {
    pub ssrc: u32,
    pub payload_type: Option<u8>,
    pub seq: u16,
    pub rollover: Rollover,
}

/// What the fast path keeps per subscription: rollover counter and the figures of its
/// sender reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamSend {
    pub rollover: Rollover,
    pub packets: u32,
    pub octets: u32,
    /// The newest timestamp sent and when.
    pub last: Option<(u32, Instant)>,
    pub next_report: Option<Instant>,
}

/// Counts a packet sent on `stream` for its sender reports.
pub fn record_sent(stream: &mut StreamSend, ts: u32, payload_len: usize, now: Instant) {
    stream.packets = stream.packets.wrapping_add(1);
    stream.octets = stream.octets.wrapping_add(payload_len as u32);
    stream.last = Some((ts, now));
    if stream.next_report.is_none() {
        stream.next_report = Some(now + SENDER_REPORT_INTERVAL);
    }
}

/// The sender report `stream` is due to send at `now`, if any (and schedules the next).
pub fn due_report(
    stream: &mut StreamSend,
    ssrc: u32,
    clock_rate: u32,
    ntp: u64,
    now: Instant,
) -> Option<SenderReport> {
    if stream.next_report.is_none_or(|t| t > now) {
        return None;
    }
    let (ts, at) = stream.last?;
    stream.next_report = Some(now + SENDER_REPORT_INTERVAL);
    let elapsed = now.saturating_duration_since(at);
    let ticks = (elapsed.as_micros() as u64 * clock_rate as u64 / 1_000_000) as u32;
    Some(SenderReport {
        ssrc,
        ntp_time: ntp,
        rtp_time: ts.wrapping_add(ticks),
        packet_count: stream.packets,
        octet_count: stream.octets,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_due_once_per_interval_and_extrapolate_the_timestamp() {
        let t0 = Instant::now();
        let mut s = StreamSend::default();
        record_sent(&mut s, 1000, 100, t0);
        assert!(due_report(&mut s, 1, 90_000, 0, t0).is_none());
        let t1 = t0 + SENDER_REPORT_INTERVAL;
        let sr = due_report(&mut s, 1, 90_000, 7, t1).unwrap();
        assert_eq!(sr.rtp_time, 1000 + 90_000);
        assert_eq!((sr.packet_count, sr.octet_count, sr.ntp_time), (1, 100, 7));
        assert!(due_report(&mut s, 1, 90_000, 0, t1).is_none());
    }
}
