//! Which peer a datagram belongs to: a STUN request names the server-side ICE ufrag of its
//! connection in USERNAME; anything else (DTLS, SRTP, SRTCP, STUN without USERNAME) is matched
//! on the remote address the connection was last seen at. Also remembers, per remote address,
//! the local candidate it arrived on, so replies leave from the same address.

use super::peer::PeerKey;
use super::stats::DropReason;
use std::collections::HashMap;
use std::net::SocketAddr;

/// The shard's demultiplexing tables.
#[derive(Default)]
pub struct Demux {
    by_ufrag: HashMap<String, PeerKey>,
    /// Remote address → (peer, local candidate it was seen on).
    by_addr: HashMap<SocketAddr, (PeerKey, SocketAddr)>,
}

impl Demux {
    /// A new connection answers STUN checks for `ufrag`.
    pub fn add_peer(&mut self, ufrag: &str, key: PeerKey) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Forgets a connection: its ufrag and the remote addresses it was seen at.
    pub fn remove_peer(&mut self, ufrag: &str, addrs: &[SocketAddr]) {
        self.by_ufrag.remove(ufrag);
        for addr in addrs {
            self.by_addr.remove(addr);
        }
    }

    /// The peer `datagram` from `from` is for, or why it is dropped.
    pub fn route(&self, datagram: &[u8], from: SocketAddr) -> Result<PeerKey, DropReason> {
        if !looks_like_webrtc(datagram) {
            return Err(DropReason::Garbage);
        }
        let key = match stun_username_ufrag(datagram) {
            Some(ufrag) => self.by_ufrag.get(ufrag).copied(),
            None => self.by_addr.get(&from).map(|(k, _)| *k),
        };
        key.ok_or(DropReason::UnknownSource)
    }

    /// Records that `key` was heard from `from` on `local`; true the first time for `from`
    /// (the peer should remember the address for cleanup).
    pub fn learn(&mut self, from: SocketAddr, key: PeerKey, local: SocketAddr) -> bool {
        match self.by_addr.entry(from) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((key, local));
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    /// The local candidate `to` was last heard on.
    pub fn local_for(&self, to: &SocketAddr) -> Option<SocketAddr> {
        self.by_addr.get(to).map(|(_, local)| *local)
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
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        demux.add_peer("srv1", 7);
        assert_eq!(demux.route(&stun_binding("srv1:cli"), a), Ok(7));
        assert_eq!(
            demux.route(&[0x80; 20], a),
            Err(DropReason::UnknownSource),
            "RTP from an address no connection was seen at"
        );
        assert!(demux.learn(a, 7, local));
        assert!(!demux.learn(a, 7, local));
        assert_eq!(demux.route(&[0x80; 20], a), Ok(7));
        assert_eq!(demux.local_for(&a), Some(local));
        assert_eq!(demux.route(&[0xff; 20], a), Err(DropReason::Garbage));
        demux.remove_peer("srv1", &[a]);
        assert_eq!(demux.route(&[0x80; 20], a), Err(DropReason::UnknownSource));
        assert_eq!(
            demux.route(&stun_binding("srv1:cli"), a),
            Err(DropReason::UnknownSource)
        );
    }
}
