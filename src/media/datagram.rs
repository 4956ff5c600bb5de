//! A datagram a shard sends: its bytes, the local candidate (socket) it leaves from and where
//! it goes. Produced by connections (`transmit.rs`) and the fast path (`fast/`), sent by the
//! shard in `sendmmsg` batches.

use bytes::BytesMut;
use std::net::SocketAddr;

/// A datagram to send from local candidate `local` to `to`.
#[derive(Debug)]
pub struct Transmit {
    pub local: SocketAddr,
    pub to: SocketAddr,
    pub data: BytesMut,
}
