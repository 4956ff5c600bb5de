//! What a shard sends: each datagram a connection produced, with the local candidate (socket)
//! it must leave from, collected at the end of a turn for the shard's `sendmmsg` batches, and
//! the route (selected pair) the fast path follows, learned from those datagrams.

pub use super::datagram::Transmit;
use super::demux::Demux;
use super::fast::leg::Route;
use super::peer::Peer;
use rtc::sansio::Protocol;
use std::net::SocketAddr;

/// Moves a peer's outgoing datagrams to `transmits`, each from the local candidate it leaves
/// on (the one its destination was heard on when the stack names none of ours). True if one of
/// them is a DTLS alert.
pub fn collect_writes(
    candidates: &[SocketAddr],
    demux: &Demux,
    transmits: &mut Vec<Transmit>,
    peer: &mut Peer,
) -> bool {
    let mut alert = false;
    while let Some(msg) = peer.pc.poll_write() {
        alert |= msg.message.first() == Some(&21);
        let to = msg.transport.peer_addr;
        let stated = msg.transport.local_addr;
        let local = if candidates.contains(&stated) {
            stated
        } else {
            demux
                .local_for(&to)
                .or_else(|| candidates.first().copied())
                .unwrap_or(stated)
        };
        // Not STUN (RFC 7983: 0–3): DTLS or SRTP/SRTCP goes over the selected pair.
        if msg.message.first().is_some_and(|b| *b >= 20) {
            peer.route = Some(Route { local, to });
        }
        transmits.push(Transmit {
            local,
            to,
            data: msg.message,
        });
    }
    alert
}
