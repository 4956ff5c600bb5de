//! The forwarding fast path: once a subscriber leg's DTLS is up with an AES-128-GCM profile,
//! forwarded RTP no longer goes through the leg's `rtc` connection. The shard writes each
//! packet for the leg (`leg_packet.rs`), protects it with the leg's own SRTP keys
//! (`rtp::srtp_out`, keys from `rtp::key_tap`) and queues the datagram for the shard's
//! `sendmmsg` batch, to the address the connection itself last sent media-plane traffic to.
//! The leg's transport-wide sequence numbers, its retransmissions (RTX, from the
//! publication's packet cache) and its sender reports are done here too; RTCP from the client,
//! signaling and everything before DTLS stay in `rtc`. A leg whose profile is not AES-GCM
//! keeps the slow path (`rtc`'s `write_rtp`), as does every leg when the fast path is off.

use super::leg_packet::{write_packet, LegHeader};
use super::peer::{Peer, Peers, Turn};
use super::sending::Subscription;
use super::transmit::Transmit;
use crate::rtp::key_tap::KeyTap;
use crate::rtp::srtp_out::{Rollover, SrtpOut, TAG_LEN};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp::Packet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often each fast-path stream sends an RTCP sender report.
pub const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A leg's fast-path state: its SRTP session and transport-wide sequence counter.
pub struct FastLeg {
    srtp: SrtpOut,
    transport_seq: u16,
}

impl FastLeg {
    /// The fast path of a leg whose DTLS just came up, if its keys were learned.
    pub fn from_tap(tap: &KeyTap) -> Option<Self> {
        let master = tap.local_master()?;
        let srtp = SrtpOut::new(&master).ok()?;
        Some(Self {
            srtp,
            transport_seq: 0,
        })
    }
}

/// Where a leg's media goes: the local candidate and remote address of the datagrams its
/// connection last sent other than STUN (DTLS, SRTP, SRTCP): the selected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub local: SocketAddr,
    pub to: SocketAddr,
}

/// The selected candidate pair of `peer`'s connection as a route, when the stack names one
/// (read through one of its senders' transport; `None` before negotiation).
pub fn selected_route(peer: &mut Peer, candidates: &[SocketAddr]) -> Option<Route> {
    let sender_id = peer.subscriptions.values().next()?.sender_id;
    let sender = peer.pc.rtp_sender(sender_id)?;
    let pair = sender
        .transport()?
        .ice_transport()
        .get_selected_candidate_pair()?;
    let remote: std::net::IpAddr = pair.remote().address.parse().ok()?;
    let local: std::net::IpAddr = pair.local().address.parse().ok()?;
    let local = SocketAddr::new(local, pair.local().port);
    candidates.contains(&local).then_some(Route {
        local,
        to: SocketAddr::new(remote, pair.remote().port),
    })
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

/// One packet to send on a leg: the publisher's packet and how it looks on the leg.
pub struct Outgoing<'a> {
    pub packet: &'a Packet,
    pub header: LegHeader,
    /// Two bytes of original sequence number for RTX, else empty.
    pub prefix: &'a [u8],
    pub abs_send_time: u32,
}

/// Writes, protects and queues one packet; false if it could not be protected.
pub fn send(
    fast: &mut FastLeg,
    route: Route,
    sub: &Subscription,
    out: Outgoing<'_>,
    rollover: &mut Rollover,
    turn: &mut Turn,
) -> bool {
    let transport_seq = sub.extensions.transport_cc().map(|_| {
        fast.transport_seq = fast.transport_seq.wrapping_add(1);
        fast.transport_seq
    });
    let payload = &out.packet.payload;
    let size = 12 + 64 + out.prefix.len() + payload.len() + TAG_LEN;
    let mut buf = turn.buffers.pop().unwrap_or_default();
    buf.reserve(size);
    let header_len = write_packet(
        &mut buf,
        &out.header,
        &sub.extensions,
        &out.packet.header.extensions,
        out.abs_send_time,
        transport_seq,
        out.prefix,
        payload,
    );
    let roc = rollover.for_seq(out.header.seq);
    if fast
        .srtp
        .protect(&mut buf, header_len, out.header.ssrc, out.header.seq, roc)
        .is_err()
    {
        return false;
    }
    turn.transmits.push(Transmit {
        local: route.local,
        to: route.to,
        data: buf,
    });
    true
}

/// Sends `packet` as `header` on the subscription's own stream (not its RTX stream), keeping
/// that stream's rollover counter.
pub fn send_media(
    fast: &mut FastLeg,
    route: Route,
    sub: &mut Subscription,
    packet: &Packet,
    header: LegHeader,
    abs_send_time: u32,
    turn: &mut Turn,
) -> bool {
    let out = Outgoing {
        packet,
        header,
        prefix: &[],
        abs_send_time,
    };
    let mut rollover = sub.send.rollover;
    let sent = send(fast, route, sub, out, &mut rollover, turn);
    sub.send.rollover = rollover;
    sent
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

/// Sends the sender reports due on every fast-path leg (through the leg's connection: RTCP
/// stays in the stack). Called about once per [`SENDER_REPORT_INTERVAL`].
pub fn sender_reports(peers: &mut Peers, turn: &mut Turn, now: Instant) {
    let ntp = turn.ntp(now);
    for peer in peers.values_mut() {
        if peer.fast.is_none() {
            continue;
        }
        let mut reports = Vec::new();
        for sub in peer.subscriptions.values_mut() {
            let clock_rate = sub.codec.clock_rate;
            if let Some(sr) = due_report(&mut sub.send, sub.ssrc, clock_rate, ntp, now) {
                reports.push((sub.sender_id, sr));
            }
        }
        if reports.is_empty() {
            continue;
        }
        for (sender_id, sr) in reports {
            if let Some(mut sender) = peer.pc.rtp_sender(sender_id) {
                let _ = sender.write_rtcp(now, vec![Box::new(sr)]);
            }
        }
        turn.touch(peer);
    }
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
