//! SRTP protection of outgoing RTP with AES_CM_128_HMAC_SHA1_80 and _32 (RFC 3711), done in
//! place in the caller's buffer: session key, salt and authentication key derived once from the
//! connection's master key and salt (AES-CM PRF, labels 0x00, 0x02 and 0x01, key derivation
//! rate 0), the payload encrypted with AES-128 in counter mode (IV = salt·2^16 ⊕ SSRC·2^64 ⊕
//! index·2^16), then HMAC-SHA1 over header, encrypted payload and rollover counter, truncated to
//! 10 or 4 bytes and appended. No allocation per packet. Headless Chromium negotiates the _80
//! profile (see `rtp::key_tap`).

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use aes::Aes128;
use bytes::BytesMut;
use ctr::{flavors::Ctr128BE, CtrCore};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Master key and salt of an AES-CM SRTP context (RFC 3711: 16 and 14 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CmMaster {
    pub key: [u8; 16],
    pub salt: [u8; 14],
}

impl std::fmt::Debug for CmMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CmMaster(..)")
    }
}

/// The two AES-CM-HMAC-SHA1 profiles: how much of the HMAC-SHA1 tag each packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80: 10-byte tag.
    Sha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32: 4-byte tag.
    Sha1_32,
}

impl CmProfile {
    /// Bytes of tag appended to each RTP packet.
    pub fn tag_len(self) -> usize {
        match self {
            CmProfile::Sha1_80 => 10,
            CmProfile::Sha1_32 => 4,
        }
    }
}

const LABEL_SRTP_ENCRYPTION: u8 = 0x00;
const LABEL_SRTP_AUTHENTICATION: u8 = 0x01;
const LABEL_SRTP_SALT: u8 = 0x02;

/// Length of the session authentication key (RFC 3711 §8.2: 160 bits).
const AUTH_KEY_LEN: usize = 20;

/// One connection's outgoing SRTP (AES-CM-HMAC-SHA1) session.
#[derive(Clone)]
pub struct CmOut {
    /// AES-128 keyed with the session key (the key schedule done once).
    cipher: Aes128,
    salt: [u8; 14],
    /// HMAC-SHA1 keyed with the session authentication key (cloned per packet, no allocation).
    auth: Hmac<Sha1>,
    profile: CmProfile,
}

impl std::fmt::Debug for CmOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CmOut({:?})", self.profile)
    }
}

/// Block `index` of the AES-CM PRF for `label` (RFC 3711 §4.3.3, key derivation rate 0).
fn prf(master: &Aes128, salt: &[u8; 14], label: u8, index: u16) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..14].copy_from_slice(salt);
    block[7] ^= label;
    block[14..].copy_from_slice(&index.to_be_bytes());
    let mut b = block.into();
    master.encrypt_block(&mut b);
    b.into()
}

impl CmOut {
    /// The session of a connection whose sending context has `master` and `profile`.
    pub fn new(master: &CmMaster, profile: CmProfile) -> Self {
        let prf_cipher = Aes128::new(&master.key.into());
        let session_key = prf(&prf_cipher, &master.salt, LABEL_SRTP_ENCRYPTION, 0);
        let salt_block = prf(&prf_cipher, &master.salt, LABEL_SRTP_SALT, 0);
        let mut auth_key = [0u8; 32];
        auth_key[..16].copy_from_slice(&prf(
            &prf_cipher,
            &master.salt,
            LABEL_SRTP_AUTHENTICATION,
            0,
        ));
        auth_key[16..].copy_from_slice(&prf(
            &prf_cipher,
            &master.salt,
            LABEL_SRTP_AUTHENTICATION,
            1,
        ));
        let mut salt = [0u8; 14];
        salt.copy_from_slice(&salt_block[..14]);
        Self {
            cipher: Aes128::new(&session_key.into()),
            salt,
            auth: <Hmac<Sha1> as KeyInit>::new_from_slice(&auth_key[..AUTH_KEY_LEN])
                .expect("HMAC takes keys of any length"),
            profile,
        }
    }

    /// The profile this session protects with.
    pub fn profile(&self) -> CmProfile {
        self.profile
    }

    /// Protects the RTP packet in `buf` (a header of `header_len` bytes, then the payload) in
    /// place and appends the tag. `roc` is the stream's rollover counter for this packet.
    pub fn protect(&self, buf: &mut BytesMut, header_len: usize, ssrc: u32, seq: u16, roc: u32) {
        let tag = self.seal(buf, header_len, ssrc, seq, roc);
        buf.extend_from_slice(&tag[..self.profile.tag_len()]);
    }

    /// Encrypts the payload of `packet` (after `header_len` bytes of header) in place and
    /// returns the full HMAC-SHA1 tag over the packet and `roc` (the caller appends the
    /// profile's [`CmProfile::tag_len`] first bytes).
    pub fn seal(
        &self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        seq: u16,
        roc: u32,
    ) -> [u8; 20] {
        let header_len = header_len.min(packet.len());
        let iv = self.counter(ssrc, roc, seq);
        let core = CtrCore::<Aes128, Ctr128BE>::inner_iv_init(self.cipher.clone(), &iv.into());
        let mut ctr = StreamCipherCoreWrapper::from_core(core);
        ctr.apply_keystream(&mut packet[header_len..]);
        let mut mac = self.auth.clone();
        mac.update(packet);
        mac.update(&roc.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// RFC 3711 §4.1.1: IV = (salt·2^16) ⊕ (SSRC·2^64) ⊕ (index·2^16), index = ROC·2^16 + SEQ.
    fn counter(&self, ssrc: u32, roc: u32, seq: u16) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..12].copy_from_slice(&roc.to_be_bytes());
        iv[12..14].copy_from_slice(&seq.to_be_bytes());
        for (v, s) in iv.iter_mut().zip(self.salt) {
            *v ^= s;
        }
        iv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::srtp_out::tests::{packet, stack_context};
    use crate::rtp::srtp_out::Rollover;
    use rtc::shared::marshal::Unmarshal;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    fn stack_profile(profile: CmProfile) -> ProtectionProfile {
        match profile {
            CmProfile::Sha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            CmProfile::Sha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }

    /// The stack's own AES-CM SRTP context for `master`.
    fn context(master: &CmMaster, profile: CmProfile) -> Context {
        stack_context(&master.key, &master.salt, stack_profile(profile))
    }

    #[test]
    fn protects_exactly_as_the_stacks_srtp_context_does() {
        let master = CmMaster {
            key: [5; 16],
            salt: [6; 14],
        };
        for profile in [CmProfile::Sha1_80, CmProfile::Sha1_32] {
            let mut reference = context(&master, profile);
            let ours = CmOut::new(&master, profile);
            let mut roc = Rollover::default();
            // Across a sequence-number wrap, so the rollover counter matters.
            for seq in [65533u16, 65534, 65535, 0, 1, 2] {
                let plain = packet(0x1234_5678, seq);
                let expected = reference.encrypt_rtp(&plain).unwrap();
                let mut buf = BytesMut::from(&plain[..]);
                ours.protect(&mut buf, 12, 0x1234_5678, seq, roc.for_seq(seq));
                assert_eq!(&buf[..], &expected[..], "{profile:?} seq {seq}");
                assert_eq!(buf.len(), plain.len() + profile.tag_len());
            }
            // And the stack's receiving side opens what we protect, after a wrap too.
            let mut receiver = context(&master, profile);
            let mut roc = Rollover::default();
            for seq in [65534u16, 65535, 0, 1] {
                let mut buf = BytesMut::from(&packet(9, seq)[..]);
                ours.protect(&mut buf, 12, 9, seq, roc.for_seq(seq));
                let opened = receiver.decrypt_rtp(&buf).unwrap();
                let p = rtc::rtp::Packet::unmarshal(&mut &opened[..]).unwrap();
                assert_eq!(p.payload.len(), 300, "{profile:?} seq {seq}");
                assert!(p.payload.iter().all(|b| *b == 0xab));
            }
        }
    }

    #[test]
    fn rfc_3711_appendix_b3_session_keys() {
        // RFC 3711 B.3 key derivation test vectors.
        let master = CmMaster {
            key: [
                0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE,
                0x41, 0x39,
            ],
            salt: [
                0x0E, 0xC6, 0x75, 0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6,
            ],
        };
        let out = CmOut::new(&master, CmProfile::Sha1_80);
        assert_eq!(
            out.salt,
            [0x30, 0xCB, 0xBC, 0x08, 0x86, 0x3D, 0x8C, 0x85, 0xD4, 0x9D, 0xB3, 0x4A, 0x9A, 0xE1]
        );
    }
}
