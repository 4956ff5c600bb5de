//! The forwarding fast path: once a subscriber leg's DTLS is up (AES-128-GCM or
//! AES-CM-HMAC-SHA1-80, the profiles the server offers),
//! forwarded RTP no longer goes through the leg's `rtc` connection. The shard writes each
//! packet for the leg (`leg_packet.rs`), protects it with the leg's own SRTP keys
//! (`rtp::leg_srtp`, keys from `rtp::key_tap`) and queues the datagram for the shard's
//! `sendmmsg` batch, to the address the connection itself last sent media-plane traffic to.
//! The leg's transport-wide sequence numbers, its retransmissions (RTX, from the
//! publication's packet cache) and its sender reports are done here too; RTCP from the client,
//! signaling and everything before DTLS stay in `rtc`. A leg whose keys were not learned
//! keeps the slow path (`rtc`'s `write_rtp`), as does every leg when the fast path is off.

pub mod leg;
pub mod padding;

pub use leg::{
    due_report, record_sent, FastLeg, Route, RtxStream, StreamSend, SENDER_REPORT_INTERVAL,
};

use super::bwe::LegBwe;
use super::datagram::Transmit;
use super::leg_packet::{write_packet, LegHeader};
use super::peer::{Peer, Peers, Turn};
use super::sending::Subscription;
use crate::rtp::srtp_out::{Rollover, TAG_LEN};
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::net::SocketAddr;
use std::time::Instant;

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

/// The payload of a packet on a leg: the publisher's payload with its first `skip` bytes
/// replaced by `prefix` (a simulcast leg's rewritten VP8 descriptor); by default unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<'a> {
    pub prefix: &'a [u8],
    pub skip: usize,
}

impl Body<'_> {
    /// The leg's payload as one buffer (the stack path).
    pub fn apply(&self, payload: &bytes::Bytes) -> bytes::Bytes {
        let rest = payload.get(self.skip..).unwrap_or_default();
        let mut out = bytes::BytesMut::with_capacity(self.prefix.len() + rest.len());
        out.extend_from_slice(self.prefix);
        out.extend_from_slice(rest);
        out.freeze()
    }
}

/// The most bytes written before the payload: an RTX original sequence number and a VP8
/// descriptor.
const MAX_PREFIX: usize = 2 + crate::media::simulcast::vp8::MAX_DESCRIPTOR;

/// One packet to send on a leg: the publisher's packet and how it looks on the leg.
pub struct Outgoing<'a> {
    pub packet: &'a Packet,
    pub header: LegHeader,
    /// Two bytes of original sequence number for RTX, else empty.
    pub prefix: &'a [u8],
    /// Its payload on the leg.
    pub body: Body<'a>,
    pub abs_send_time: u32,
    /// When it leaves (the leg's send history for bandwidth estimation records it).
    pub now: Instant,
}

/// Writes, protects and queues one packet (recorded in the leg's send history `bwe`); false
/// if it could not be protected.
#[allow(clippy::too_many_arguments)]
pub fn send(
    fast: &mut FastLeg,
    bwe: &mut LegBwe,
    route: Route,
    sub: &Subscription,
    out: Outgoing<'_>,
    rollover: &mut Rollover,
    turn: &mut Turn,
) -> bool {
    let transport_seq = sub
        .extensions
        .transport_cc()
        .map(|_| bwe.next_transport_seq());
    let payload = out.packet.payload.get(out.body.skip..).unwrap_or_default();
    let mut prefix = [0u8; MAX_PREFIX];
    let prefix_len = (out.prefix.len() + out.body.prefix.len()).min(MAX_PREFIX);
    for (to, from) in prefix
        .iter_mut()
        .zip(out.prefix.iter().chain(out.body.prefix))
    {
        *to = *from;
    }
    let prefix = &prefix[..prefix_len];
    let size = 12 + 64 + prefix.len() + payload.len() + TAG_LEN;
    let mut buf = turn.buffers.take();
    buf.reserve(size);
    let header_len = write_packet(
        &mut buf,
        &out.header,
        &sub.extensions,
        &out.packet.header.extensions,
        out.abs_send_time,
        transport_seq,
        prefix,
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
    let audio = sub.kind == RtpCodecKind::Audio;
    bwe.on_sent(transport_seq, buf.len(), audio, out.now);
    turn.transmits.push(Transmit {
        local: route.local,
        to: route.to,
        data: buf,
    });
    true
}

/// Sends `packet` as `header` with `body` on the subscription's own stream (not its RTX
/// stream), keeping that stream's rollover counter.
#[allow(clippy::too_many_arguments)]
pub fn send_media(
    fast: &mut FastLeg,
    bwe: &mut LegBwe,
    route: Route,
    sub: &mut Subscription,
    packet: &Packet,
    header: LegHeader,
    body: Body<'_>,
    abs_send_time: u32,
    turn: &mut Turn,
    now: Instant,
) -> bool {
    let out = Outgoing {
        packet,
        header,
        prefix: &[],
        body,
        abs_send_time,
        now,
    };
    let mut rollover = sub.send.rollover;
    let sent = send(fast, bwe, route, sub, out, &mut rollover, turn);
    sub.send.rollover = rollover;
    sent
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
