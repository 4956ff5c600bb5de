//! The floor's report: the figures of one run (forwarded packets/s, loss, forwarder CPU per
//! forwarded packet and of its core, load average), as text and as JSON.

use serde::Serialize;

/// Everything one `chorus bench-floor` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    pub subscribers: usize,
    pub rate_in_pps: u64,
    pub payload_bytes: usize,
    /// Bytes of each forwarded datagram: RTP header + payload + 16-byte GCM tag.
    pub datagram_bytes: usize,
    pub duration_s: f64,
    pub forwarder_cpu: usize,
    pub peers_cpu: usize,
    /// `--sink`: RTP dropped in the kernel at the subscriber sockets; `received` is then the
    /// datagrams `sendmmsg` accepted.
    pub sink: bool,
    /// Packets the publisher sent.
    pub published: u64,
    /// Packets the forwarder received.
    pub forwarder_received: u64,
    /// Sealed datagrams `sendmmsg` accepted.
    pub forwarded: u64,
    pub send_dropped: u64,
    /// The forwarder's `poll` calls (its turns, idle 10 ms timeouts included) and the
    /// `recvmmsg` batches that held packets: at low rates each packet is a turn of its own.
    pub polls: u64,
    pub batches: u64,
    pub packets_per_batch: f64,
    /// Forwarded datagrams per second over the forwarder's active window.
    pub forwarded_pps: f64,
    /// Datagrams the subscriber sockets received, and published × subscribers.
    pub received: u64,
    pub expected: u64,
    pub received_min_leg: u64,
    pub received_max_leg: u64,
    pub loss_pct: f64,
    /// The forwarder thread's CPU time (CLOCK_THREAD_CPUTIME_ID) per forwarded datagram.
    pub cpu_us_per_forwarded: f64,
    /// The forwarder thread's CPU time over its active window, % of its core.
    pub forwarder_core_pct: f64,
    pub forwarder_cpu_ms: f64,
    /// /proc/loadavg (1, 5, 15 min) before and after the run.
    pub loadavg_start: [f64; 3],
    pub loadavg_end: [f64; 3],
    /// `--verify`: leg 0's datagrams that opened with its key, and those that did not.
    pub verified: Option<u64>,
    pub verify_failed: Option<u64>,
}

impl FloorReport {
    /// The human-readable summary.
    pub fn text(&self) -> String {
        let mut s = format!(
            "bench-floor: 1→{} at {} pkt/s in for {:.1} s, {}-byte payloads ({}-byte SRTP datagrams)\n",
            self.subscribers, self.rate_in_pps, self.duration_s, self.payload_bytes, self.datagram_bytes
        );
        s += &format!(
            "  published      {} packets, forwarder received {}\n",
            self.published, self.forwarder_received
        );
        s += &format!(
            "  forwarded      {} datagrams ({:.0} /s), send drops {}\n",
            self.forwarded, self.forwarded_pps, self.send_dropped
        );
        s += &format!(
            "  turns          {} polls, {} receive batches ({:.1} packets each)\n",
            self.polls, self.batches, self.packets_per_batch
        );
        if self.sink {
            s += "  sink           RTP dropped in the kernel at the subscriber sockets\n";
        }
        s += &format!(
            "  received       {} of {} expected (loss {:.3} %, per leg {}..{})\n",
            self.received,
            self.expected,
            self.loss_pct,
            self.received_min_leg,
            self.received_max_leg
        );
        s += &format!(
            "  forwarder CPU  {:.3} µs per forwarded packet, {:.1} % of core {} ({:.1} ms)\n",
            self.cpu_us_per_forwarded,
            self.forwarder_core_pct,
            self.forwarder_cpu,
            self.forwarder_cpu_ms
        );
        s += &format!(
            "  load average   {} → {}\n",
            fmt_load(&self.loadavg_start),
            fmt_load(&self.loadavg_end)
        );
        if let (Some(ok), Some(bad)) = (self.verified, self.verify_failed) {
            s += &format!("  verify         leg 0: {ok} opened, {bad} failed\n");
        }
        s
    }
}

fn fmt_load(l: &[f64; 3]) -> String {
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg (zeros where unreadable).
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_reads_three_figures() {
        let l = loadavg();
        assert!(l.iter().all(|x| *x >= 0.0));
    }
}
