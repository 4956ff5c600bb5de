//! What subscribers' RTCP reception reports say about the streams we send: the fraction lost,
//! the interarrival jitter in seconds, and the round-trip time from LSR/DLSR against the NTP
//! clock of our own sender reports.

use rtc::rtcp::reception_report::ReceptionReport;
use std::time::Duration;

/// Round trips longer than this are taken for garbage (a bogus LSR, a clock step).
const MAX_PLAUSIBLE_RTT: Duration = Duration::from_secs(30);

/// What one RTCP reception report block says about a stream we send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportSample {
    /// Fraction of packets lost since the previous report, 0–1.
    pub loss: f64,
    /// Interarrival jitter in seconds (`None` without a known clock rate).
    pub jitter_seconds: Option<f64>,
    /// Round-trip time, when the block refers to one of our sender reports.
    pub rtt: Option<Duration>,
}

impl ReportSample {
    /// Reads `block`: `clock_rate` is the stream's RTP clock (Hz), `now_ntp` the 64-bit NTP
    /// time the block arrived at, on the clock our sender reports use (wall clock).
    pub fn from_block(block: &ReceptionReport, clock_rate: u32, now_ntp: u64) -> Self {
        let jitter_seconds =
            (clock_rate > 0).then(|| f64::from(block.jitter) / f64::from(clock_rate));
        Self {
            loss: f64::from(block.fraction_lost) / 256.0,
            jitter_seconds,
            rtt: round_trip(now_ntp, block.last_sender_report, block.delay),
        }
    }
}

/// RFC 3550 §6.4.1: RTT = A − LSR − DLSR, all in the middle 32 bits of NTP time (1/65536 s).
/// `None` when the receiver has seen no sender report yet (LSR 0) or the result is implausible.
pub fn round_trip(now_ntp: u64, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let arrival = (now_ntp >> 16) as u32;
    let units = arrival.wrapping_sub(lsr).wrapping_sub(dlsr);
    let rtt = Duration::from_secs_f64(f64::from(units) / 65536.0);
    (rtt <= MAX_PLAUSIBLE_RTT).then_some(rtt)
}

/// The current wall-clock time as a 64-bit NTP timestamp (the clock of our sender reports).
pub fn ntp_now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rtc::shared::time::SystemInstant::unix2ntp(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_from_lsr_and_dlsr() {
        // Our SR left at NTP middle-32 0x0001_0000 (1 s); the receiver held it 0.5 s (DLSR
        // 0x8000); its report arrives at 1.75 s: 250 ms round trip.
        let now_ntp = 0x0001_C000u64 << 16;
        let rtt = round_trip(now_ntp, 0x0001_0000, 0x0000_8000).expect("rtt");
        assert!((rtt.as_secs_f64() - 0.25).abs() < 1e-6, "{rtt:?}");
        assert_eq!(round_trip(now_ntp, 0, 0x8000), None, "no SR seen yet");
        // A DLSR larger than the elapsed time wraps around: garbage, not a 18-hour RTT.
        assert_eq!(round_trip(now_ntp, 0x0001_0000, 0x0001_0000), None);
    }
}
