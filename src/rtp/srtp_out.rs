//! SRTP protection of outgoing RTP with AES-128-GCM (RFC 7714), done in place in the caller's
//! buffer: the session key and salt derived from a connection's master key and salt
//! (RFC 3711 §4.3, AES-CM PRF), a nonce per packet from SSRC, rollover counter and sequence
//! number, the RTP header as associated data and the 16-byte tag appended. No allocation per
//! packet. The fast path and the floor benchmark (`bench-floor`) both protect with it. The rollover counter of each stream is the caller's ([`Rollover`]).

use super::key_tap::SrtpMaster;
use bytes::BytesMut;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use rtc::crypto::{BlockCipherAlgorithm, CryptoError};

/// Length of the authentication tag appended to each packet.
pub const TAG_LEN: usize = 16;

const LABEL_SRTP_ENCRYPTION: u8 = 0x00;
const LABEL_SRTP_SALT: u8 = 0x02;

/// One connection's outgoing SRTP (AES-128-GCM) session.
pub struct SrtpOut {
    key: LessSafeKey,
    salt: [u8; 12],
}

impl std::fmt::Debug for SrtpOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpOut(..)")
    }
}

/// One block of the AES-CM key derivation (RFC 3711 §4.3.3, key derivation rate 0).
fn derive(master: &SrtpMaster, label: u8) -> Result<[u8; 16], CryptoError> {
    let mut block = [0u8; 16];
    block[..12].copy_from_slice(&master.salt);
    block[7] ^= label;
    let provider = rtc::crypto::default_provider()?;
    provider
        .crypto()
        .block_encrypt(BlockCipherAlgorithm::Aes128, &master.key, &mut block)?;
    Ok(block)
}

impl SrtpOut {
    /// The session of a connection whose sending context has `master`.
    pub fn new(master: &SrtpMaster) -> Result<Self, CryptoError> {
        let session_key = derive(master, LABEL_SRTP_ENCRYPTION)?;
        let salt_block = derive(master, LABEL_SRTP_SALT)?;
        let mut salt = [0u8; 12];
        salt.copy_from_slice(&salt_block[..12]);
        let key = UnboundKey::new(&AES_128_GCM, &session_key)
            .map_err(|_| CryptoError::Provider("AES-128-GCM key refused".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    /// Protects the RTP packet in `buf` (a header of `header_len` bytes, then the payload) in
    /// place and appends the tag. `roc` is the stream's rollover counter for this packet.
    pub fn protect(
        &self,
        buf: &mut BytesMut,
        header_len: usize,
        ssrc: u32,
        seq: u16,
        roc: u32,
    ) -> Result<(), ring::error::Unspecified> {
        let tag = self.seal(buf, header_len, ssrc, seq, roc)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Encrypts the payload of the RTP packet in `packet` (after `header_len` bytes of
    /// header, which are authenticated) in place and returns the tag to append.
    pub fn seal(
        &self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        seq: u16,
        roc: u32,
    ) -> Result<[u8; TAG_LEN], ring::error::Unspecified> {
        let (header, payload) = packet.split_at_mut(header_len);
        let tag = self.key.seal_in_place_separate_tag(
            self.nonce(ssrc, roc, seq),
            Aad::from(&*header),
            payload,
        )?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Authenticates and decrypts a packet this session protected (header, payload, tag) in
    /// place: the plaintext payload, or `None`. For checking what was sent (`bench-floor
    /// --verify`, tests); the server never opens its own packets.
    pub fn open<'a>(
        &self,
        packet: &'a mut [u8],
        header_len: usize,
        ssrc: u32,
        seq: u16,
        roc: u32,
    ) -> Option<&'a [u8]> {
        if packet.len() < header_len + TAG_LEN {
            return None;
        }
        let (header, body) = packet.split_at_mut(header_len);
        let nonce = self.nonce(ssrc, roc, seq);
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(&*header), body)
            .ok()?;
        Some(plain)
    }

    /// RFC 7714 §8.1: IV = (0x0000 ‖ SSRC ‖ ROC ‖ SEQ) XOR session salt.
    fn nonce(&self, ssrc: u32, roc: u32, seq: u16) -> Nonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..12].copy_from_slice(&seq.to_be_bytes());
        for (v, s) in iv.iter_mut().zip(self.salt) {
            *v ^= s;
        }
        Nonce::assume_unique_for_key(iv)
    }
}

/// The rollover counter of one outgoing stream (RFC 3711 §3.3.1), followed from the
/// sequence numbers it sends; a retransmission of a packet from before the last wrap gets the
/// previous counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rollover {
    started: bool,
    highest: u16,
    roc: u32,
}

impl Rollover {
    /// The rollover counter for sending `seq` (and the new state when it is the newest).
    pub fn for_seq(&mut self, seq: u16) -> u32 {
        if !self.started {
            self.started = true;
            self.highest = seq;
            return self.roc;
        }
        let ahead = seq.wrapping_sub(self.highest) as i16;
        if ahead > 0 {
            if seq < self.highest {
                self.roc = self.roc.wrapping_add(1);
            }
            self.highest = seq;
            self.roc
        } else if seq > self.highest {
            // Older than the newest, but from before the last wrap.
            self.roc.wrapping_sub(1)
        } else {
            self.roc
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rtc::shared::marshal::{Marshal, Unmarshal};
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    /// A marshalled RTP packet of 300 payload bytes (the SRTP tests of both profiles).
    pub(crate) fn packet(ssrc: u32, seq: u16) -> Vec<u8> {
        let p = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: 1234,
                ssrc,
                ..Default::default()
            },
            payload: bytes::Bytes::from(vec![0xab; 300]),
        };
        p.marshal().unwrap().to_vec()
    }

    /// The stack's own SRTP context for a master key and salt under `profile`: the reference
    /// the fast path's protection is checked against (shared with `srtp_cm`'s tests).
    pub(crate) fn stack_context(key: &[u8], salt: &[u8], profile: ProtectionProfile) -> Context {
        let provider = rtc::crypto::default_provider().unwrap();
        Context::new(key, salt, profile, None, None, provider.crypto()).unwrap()
    }

    /// The stack's own AES-128-GCM SRTP context for `master`.
    fn gcm_context(master: &SrtpMaster) -> Context {
        stack_context(&master.key, &master.salt, ProtectionProfile::AeadAes128Gcm)
    }

    #[test]
    fn protects_exactly_as_the_stacks_srtp_context_does() {
        let master = SrtpMaster {
            key: [5; 16],
            salt: [6; 12],
        };
        let mut reference = gcm_context(&master);
        let ours = SrtpOut::new(&master).unwrap();
        let mut roc = Rollover::default();
        // Across a sequence-number wrap, so the rollover counter matters.
        for seq in [65533u16, 65534, 65535, 0, 1, 2] {
            let plain = packet(0x1234_5678, seq);
            let expected = reference.encrypt_rtp(&plain).unwrap();
            let mut buf = BytesMut::from(&plain[..]);
            ours.protect(&mut buf, 12, 0x1234_5678, seq, roc.for_seq(seq))
                .unwrap();
            assert_eq!(&buf[..], &expected[..], "seq {seq}");
        }
        // And the stack's receiving side opens what we protect.
        let mut receiver = gcm_context(&master);
        let mut buf = BytesMut::from(&packet(9, 7)[..]);
        ours.protect(&mut buf, 12, 9, 7, 0).unwrap();
        let opened = receiver.decrypt_rtp(&buf).unwrap();
        let p = rtc::rtp::Packet::unmarshal(&mut &opened[..]).unwrap();
        assert_eq!(p.payload.len(), 300);
    }

    #[test]
    fn rollover_follows_wraps_and_late_retransmissions() {
        let mut r = Rollover::default();
        assert_eq!(r.for_seq(65534), 0);
        assert_eq!(r.for_seq(65535), 0);
        assert_eq!(r.for_seq(1), 1);
        assert_eq!(r.for_seq(65535), 0, "a retransmission from before the wrap");
        assert_eq!(r.for_seq(2), 1);
    }
}
