//! Authenticating a client's STUN request before anything is learned from it: the request's
//! MESSAGE-INTEGRITY (RFC 5389 §15.4, HMAC-SHA1 keyed with the server side's ICE password for
//! the ufrag its USERNAME names) must verify, or its source address is not trusted.

use ring::hmac;

const HEADER: usize = 20;
const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const INTEGRITY_LEN: usize = 20;

/// True if `datagram` is a STUN message whose MESSAGE-INTEGRITY verifies with `pwd` (the ICE
/// short-term credential). False for a missing, truncated or wrong MESSAGE-INTEGRITY.
pub fn integrity_ok(datagram: &[u8], pwd: &str) -> bool {
    let Some((at, mac)) = find_integrity(datagram) else {
        return false;
    };
    // The MAC covers the header, with the length field as if MESSAGE-INTEGRITY were the last
    // attribute, and every attribute before it.
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&datagram[..HEADER]);
    let covered_len = (at - HEADER + 4 + INTEGRITY_LEN) as u16;
    header[2..4].copy_from_slice(&covered_len.to_be_bytes());
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, pwd.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&header);
    ctx.update(&datagram[HEADER..at]);
    let tag = ctx.sign();
    // Constant-time comparison.
    tag.as_ref()
        .iter()
        .zip(mac)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The offset of the MESSAGE-INTEGRITY attribute and its 20-byte value.
fn find_integrity(datagram: &[u8]) -> Option<(usize, &[u8])> {
    if datagram.len() < HEADER || datagram[0] & 0xC0 != 0 || datagram[4..8] != MAGIC {
        return None;
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let end = HEADER.checked_add(body_len)?;
    if end > datagram.len() {
        return None;
    }
    let mut at = HEADER;
    while at + 4 <= end {
        let typ = u16::from_be_bytes([datagram[at], datagram[at + 1]]);
        let len = u16::from_be_bytes([datagram[at + 2], datagram[at + 3]]) as usize;
        let value = datagram
            .get(at + 4..at + 4 + len)
            .filter(|_| at + 4 + len <= end)?;
        if typ == ATTR_MESSAGE_INTEGRITY {
            return (len == INTEGRITY_LEN).then_some((at, value));
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A binding request with USERNAME `username`, signed with `pwd`, then a FINGERPRINT-like
    /// trailing attribute (which the MAC does not cover).
    pub fn signed_binding(username: &str, pwd: &str) -> Vec<u8> {
        let mut msg = vec![0x00, 0x01, 0, 0];
        msg.extend_from_slice(&MAGIC);
        msg.extend_from_slice(&rand::random::<[u8; 12]>());
        msg.extend_from_slice(&[0x00, 0x06]);
        msg.extend_from_slice(&(username.len() as u16).to_be_bytes());
        msg.extend_from_slice(username.as_bytes());
        while msg.len() % 4 != 0 {
            msg.push(0);
        }
        let covered = (msg.len() - HEADER + 4 + INTEGRITY_LEN) as u16;
        msg[2..4].copy_from_slice(&covered.to_be_bytes());
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, pwd.as_bytes());
        let tag = hmac::sign(&key, &msg);
        msg.extend_from_slice(&[0x00, 0x08, 0x00, INTEGRITY_LEN as u8]);
        msg.extend_from_slice(tag.as_ref());
        msg.extend_from_slice(&[0x80, 0x28, 0x00, 0x04, 1, 2, 3, 4]);
        let total = (msg.len() - HEADER) as u16;
        msg[2..4].copy_from_slice(&total.to_be_bytes());
        msg
    }

    #[test]
    fn the_right_password_verifies_and_a_wrong_one_does_not() {
        let msg = signed_binding("srv:cli", "the-server-password-24ch");
        assert!(integrity_ok(&msg, "the-server-password-24ch"));
        assert!(!integrity_ok(&msg, "another-password-of-24ch"));
        let mut tampered = msg.clone();
        tampered[25] ^= 1;
        assert!(!integrity_ok(&tampered, "the-server-password-24ch"));
    }

    #[test]
    fn missing_or_truncated_integrity_fails() {
        let msg = signed_binding("srv:cli", "pw");
        assert!(!integrity_ok(&msg[..msg.len() - 20], "pw"));
        assert!(!integrity_ok(&msg[..30], "pw"));
        assert!(!integrity_ok(&[0u8; 4], "pw"));
        let mut unsigned = msg[..HEADER + 12].to_vec();
        unsigned[2..4].copy_from_slice(&12u16.to_be_bytes());
        assert!(!integrity_ok(&unsigned, "pw"));
    }
}
