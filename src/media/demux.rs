//! Which peer a datagram belongs to: a STUN request names the server-side ICE ufrag of its
//! connection in USERNAME; anything else (DTLS, SRTP, SRTCP, STUN without USERNAME) is matched
//! on the remote address the connection was last seen at. Also remembers, per remote address,
//! the local candidate it arrived on, so replies leave from the same address.
//!
//! An address is learned only from a STUN request the shard has authenticated
//! ([`Demux::learn`]); the table is bounded per connection and forgets addresses silent for
//! longer than the idle limit ([`Demux::sweep`]).

use super::peer::PeerKey;
use super::stats::DropReason;
use crate::config::ShardLimits;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where datagrams from one remote address go.
struct Route {
    key: PeerKey,
    /// The local candidate it was last heard on.
    local: SocketAddr,
    last_heard: Instant,
}

/// How a datagram was matched to its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// A STUN message naming the peer's ufrag: authenticate it before trusting its source.
    Stun(PeerKey),
    /// Anything from an address the peer was seen at.
    Address(PeerKey),
}

impl Routed {
    pub fn key(self) -> PeerKey {
        match self {
            Routed::Stun(k) | Routed::Address(k) => k,
        }
    }
}

/// The shard's demultiplexing tables.
pub struct Demux {
    by_ufrag: HashMap<String, PeerKey>,
    by_addr: HashMap<SocketAddr, Route>,
    /// The addresses each peer owns in `by_addr`.
    by_peer: HashMap<PeerKey, Vec<SocketAddr>>,
    addrs_per_peer: usize,
    addr_idle: Duration,
    next_sweep: Option<Instant>,
}

impl Default for Demux {
    fn default() -> Self {
        Self::new(ShardLimits::default())
    }
}

impl Demux {
    pub fn new(limits: ShardLimits) -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            by_peer: HashMap::new(),
            addrs_per_peer: limits.addrs_per_peer.max(1),
            addr_idle: limits.addr_idle,
            next_sweep: None,
        }
    }

    /// A new connection answers STUN checks for `ufrag`.
    pub fn add_peer(&mut self, ufrag: &str, key: PeerKey) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Forgets a connection: its ufrag and the remote addresses it was seen at.
    pub fn remove_peer(&mut self, ufrag: &str, key: PeerKey) {
        if self.by_ufrag.get(ufrag) == Some(&key) {
            self.by_ufrag.remove(ufrag);
        }
        for addr in self.by_peer.remove(&key).unwrap_or_default() {
            if self.by_addr.get(&addr).is_some_and(|r| r.key == key) {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// The peer `datagram` from `from` is for, or why it is dropped. A datagram matched on its
    /// address keeps that address alive.
    pub fn route(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Routed, DropReason> {
        if !looks_like_webrtc(datagram) {
            return Err(DropReason::Garbage);
        }
        match stun_username_ufrag(datagram) {
            Some(ufrag) => self.by_ufrag.get(ufrag).map(|k| Routed::Stun(*k)),
            None => self.by_addr.get_mut(&from).map(|route| {
                route.last_heard = now;
                Routed::Address(route.key)
            }),
        }
        .ok_or(DropReason::UnknownSource)
    }

    /// Records that `key` was heard from `from` on `local`, by an authenticated STUN request
    /// (it takes the address over from another peer). Refused when `key` already owns as many
    /// live addresses as the limit allows.
    pub fn learn(
        &mut self,
        from: SocketAddr,
        key: PeerKey,
        local: SocketAddr,
        now: Instant,
    ) -> Result<(), DropReason> {
        if let Some(route) = self.by_addr.get_mut(&from) {
            if route.key == key {
                route.local = local;
                route.last_heard = now;
                return Ok(());
            }
        }
        self.expire_peer(key, now);
        let owned = self.by_peer.get(&key).map_or(0, Vec::len);
        if owned >= self.addrs_per_peer {
            return Err(DropReason::AddressLimit);
        }
        let route = Route {
            key,
            local,
            last_heard: now,
        };
        if let Some(old) = self.by_addr.insert(from, route) {
            if let Some(list) = self.by_peer.get_mut(&old.key) {
                list.retain(|a| *a != from);
            }
        }
        self.by_peer.entry(key).or_default().push(from);
        self.next_sweep.get_or_insert(now + self.sweep_interval());
        Ok(())
    }

    /// Forgets the addresses of `key` silent for longer than the idle limit.
    fn expire_peer(&mut self, key: PeerKey, now: Instant) {
        let Some(list) = self.by_peer.get_mut(&key) else {
            return;
        };
        let (by_addr, idle) = (&mut self.by_addr, self.addr_idle);
        list.retain(|addr| {
            let live = by_addr
                .get(addr)
                .is_some_and(|r| now.saturating_duration_since(r.last_heard) <= idle);
            if !live {
                by_addr.remove(addr);
            }
            live
        });
    }

    /// How often idle addresses are looked for: an address is forgotten between one and one
    /// and a quarter idle limits after it was last heard.
    fn sweep_interval(&self) -> Duration {
        self.addr_idle / 4
    }

    /// When [`Demux::sweep`] next has work.
    pub fn next_sweep(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Forgets every address silent for longer than the idle limit (at most once per sweep
    /// interval).
    pub fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none_or(|t| t > now) {
            return;
        }
        let idle = self.addr_idle;
        self.by_addr
            .retain(|_, r| now.saturating_duration_since(r.last_heard) <= idle);
        let by_addr = &self.by_addr;
        self.by_peer.retain(|key, list| {
            list.retain(|a| by_addr.get(a).is_some_and(|r| r.key == *key));
            !list.is_empty()
        });
        self.next_sweep = (!self.by_addr.is_empty()).then(|| now + self.sweep_interval());
    }

    /// The local candidate `to` was last heard on.
    pub fn local_for(&self, to: &SocketAddr) -> Option<SocketAddr> {
        self.by_addr.get(to).map(|r| r.local)
    }

    /// How many remote addresses are remembered.
    pub fn address_count(&self) -> usize {
        self.by_addr.len()
    }
}

/// If `datagram` is a STUN message carrying a USERNAME attribute, returns its first part
/// (the ufrag of the server side, before the ':').
pub fn stun_username_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 || datagram[4..8] != MAGIC {
        return None;
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(20..20 + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if typ == 0x0006 {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// True if the first byte says DTLS (20..=63) or RTP/RTCP (128..=191) or STUN (0..=3), i.e.
/// something a WebRTC peer could have sent (RFC 7983).
pub fn looks_like_webrtc(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(0..=3 | 20..=63 | 128..=191))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_binding(username: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        msg.extend_from_slice(&[7u8; 12]);
        msg.extend_from_slice(&attr);
        msg
    }

    #[test]
    fn stun_username_is_split_at_colon() {
        assert_eq!(
            stun_username_ufrag(&stun_binding("srv1:cli2")),
            Some("srv1")
        );
    }

    #[test]
    fn garbage_is_not_stun() {
        assert_eq!(stun_username_ufrag(&[0xff; 40]), None);
        assert_eq!(stun_username_ufrag(&[0; 10]), None);
        let mut truncated = stun_binding("a:b");
        truncated.truncate(26);
        assert_eq!(stun_username_ufrag(&truncated), None);
    }

    #[test]
    fn stun_goes_by_ufrag_and_the_rest_by_address() {
        let mut demux = Demux::default();
        let now = Instant::now();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        demux.add_peer("srv1", 7);
        assert_eq!(
            demux.route(&stun_binding("srv1:cli"), a, now),
            Ok(Routed::Stun(7))
        );
        assert_eq!(
            demux.route(&[0x80; 20], a, now),
            Err(DropReason::UnknownSource),
            "RTP from an address no connection was seen at"
        );
        assert_eq!(demux.learn(a, 7, local, now), Ok(()));
        assert_eq!(demux.learn(a, 7, local, now), Ok(()));
        assert_eq!(demux.address_count(), 1);
        assert_eq!(demux.route(&[0x80; 20], a, now), Ok(Routed::Address(7)));
        assert_eq!(demux.local_for(&a), Some(local));
        assert_eq!(demux.route(&[0xff; 20], a, now), Err(DropReason::Garbage));
        demux.remove_peer("srv1", 7);
        assert_eq!(
            demux.route(&[0x80; 20], a, now),
            Err(DropReason::UnknownSource)
        );
        assert_eq!(
            demux.route(&stun_binding("srv1:cli"), a, now),
            Err(DropReason::UnknownSource)
        );
        assert_eq!(demux.address_count(), 0);
    }

    #[test]
    fn addresses_are_bounded_per_peer_and_expire_when_idle() {
        let limits = ShardLimits {
            addrs_per_peer: 2,
            addr_idle: Duration::from_secs(30),
            ..ShardLimits::default()
        };
        let mut demux = Demux::new(limits);
        let t0 = Instant::now();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let addr = |port: u16| SocketAddr::from(([10, 0, 0, 1], port));
        demux.add_peer("srv1", 7);
        assert_eq!(demux.learn(addr(1), 7, local, t0), Ok(()));
        assert_eq!(demux.learn(addr(2), 7, local, t0), Ok(()));
        assert_eq!(
            demux.learn(addr(3), 7, local, t0),
            Err(DropReason::AddressLimit)
        );
        // Another peer takes over an address (authenticated): the first one loses it.
        assert_eq!(demux.learn(addr(2), 8, local, t0), Ok(()));
        assert_eq!(
            demux.route(&[0x80; 20], addr(2), t0),
            Ok(Routed::Address(8))
        );
        assert_eq!(demux.learn(addr(3), 7, local, t0), Ok(()));
        // addr(1) stays alive through traffic; addr(3) and peer 8's address go silent.
        let later = t0 + Duration::from_secs(20);
        assert!(demux.route(&[0x80; 20], addr(1), later).is_ok());
        demux.sweep(t0 + Duration::from_secs(31));
        assert_eq!(demux.address_count(), 1);
        assert!(demux.route(&[0x80; 20], addr(3), later).is_err());
        assert_eq!(demux.learn(addr(4), 7, local, later), Ok(()));
        // Removing peer 8 (whose address already went) leaves peer 7's alone.
        demux.remove_peer("srv8", 8);
        assert_eq!(demux.address_count(), 2);
    }
}
