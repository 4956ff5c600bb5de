//! Learns a connection's outgoing SRTP keys from the stack's own key derivation, so the
//! forwarding fast path can protect packets itself. `rtc` 0.21.1 keeps its SRTP contexts
//! private, but builds them through the crypto provider a connection is given: this provider
//! wraps the default one, changes nothing it computes, and watches for the shapes an SRTP
//! context leaves (RFC 3711 §4.3.3): an AES-128 block encryption of `master_salt ‖ 0 ‖
//! counter 0` under the master key (the AES-CM PRF, label 0), whose output is then keyed as the
//! SRTP session cipher:
//! - AES-128-GCM (RFC 7714 §11): 12-byte salt, the output keyed at once as an AES-128-GCM AEAD;
//! - AES_CM_128_HMAC_SHA1_80/_32: 14-byte salt, the output keyed as an AES-128-CTR stream
//!   cipher (after the SRTCP key's derivation, label 3; `rtc-srtp`'s `CipherAesCmHmacSha1::new`
//!   derives SRTP and SRTCP keys, then keys both ciphers, then salts and HMAC keys).
//!
//! The first such master key of a connection is its local (sending) context's: `rtc` derives
//! the local context before the remote one. The two CM profiles differ only in how much of the
//! HMAC-SHA1 tag is sent, which no crypto call shows: the server offers one CM profile
//! (`media::codecs::SERVER_SRTP_PROFILES`: AES-128-GCM and AES-CM-80), and the tap is told which.
//! AES-256 contexts (AES-256-GCM, AES-256-CM) are not recognised; the server does not offer them.
//!
//! Chromium's DTLS use_srtp list (libwebrtc `GetSupportedDtlsSrtpCryptoSuites`) is
//! AES128_CM_SHA1_80 first, then AEAD_AES_256_GCM and AEAD_AES_128_GCM ("GCM is not the top
//! choice since it increases the packet size"; _32 only when enabled). `rtc` as DTLS server
//! takes the client's first profile it supports, so Chromium legs negotiate AES-CM-80, and
//! would negotiate AES-256-GCM if the server offered no CM. webrtc-rs and aiortc clients list
//! AES-128-GCM first.
//!
//! What upstream would need instead: a public accessor for the negotiated SRTP profile and
//! local master key/salt (or a `protect_rtp(&mut [u8])` on the connection).

use parking_lot::Mutex;
use rtc::crypto::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac,
    PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher,
    StreamCipherAlgorithm,
};
use std::sync::Arc;

use super::srtp_cm::{CmMaster, CmProfile};

/// Master key and salt of an AES-128-GCM SRTP context (RFC 7714).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpMaster {
    pub key: [u8; 16],
    pub salt: [u8; 12],
}

impl SrtpMaster {
    /// Fresh random keys (what DTLS-SRTP would export; the floor benchmark's legs).
    pub fn random() -> Self {
        Self {
            key: rand::random(),
            salt: rand::random(),
        }
    }
}

impl std::fmt::Debug for SrtpMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpMaster(..)")
    }
}

/// The keys of a connection's sending SRTP context, by profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKeys {
    /// SRTP_AEAD_AES_128_GCM.
    Gcm(SrtpMaster),
    /// SRTP_AES128_CM_HMAC_SHA1_80 or _32.
    Cm(CmMaster, CmProfile),
}

/// One candidate derivation: (master key, input block, output block).
type Candidate = ([u8; 16], [u8; 16], [u8; 16]);

/// What the tap has seen so far.
#[derive(Default)]
struct Seen {
    /// The last two candidate derivations, newest last (AES-CM keys its SRTP cipher after
    /// deriving the SRTCP key too).
    recent: [Option<Candidate>; 2],
    /// Confirmed masters, in the order the stack built their contexts.
    masters: Vec<LocalKeys>,
}

impl Seen {
    fn remember(&mut self, candidate: Candidate) {
        self.recent = [self.recent[1], Some(candidate)];
    }

    /// The candidate whose output is `session_key`, if any.
    fn deriving(&self, session_key: &[u8]) -> Option<Candidate> {
        self.recent
            .iter()
            .flatten()
            .find(|(_, _, output)| output[..] == *session_key)
            .copied()
    }

    fn knows(&self, master: &[u8; 16]) -> bool {
        self.masters.iter().any(|m| match m {
            LocalKeys::Gcm(g) => g.key == *master,
            LocalKeys::Cm(c, _) => c.key == *master,
        })
    }
}

/// The crypto operations of the default provider, watched (see the module documentation).
pub struct KeyTapCrypto {
    inner: Arc<dyn RTCCryptoProvider>,
    seen: Mutex<Seen>,
    /// The profile a CM context of this connection has (see the module documentation).
    cm_profile: CmProfile,
}

/// A crypto provider for one connection; see the module documentation.
pub struct KeyTap {
    crypto: KeyTapCrypto,
}

impl KeyTap {
    /// Wraps the stack's default provider, for a connection whose one CM profile is
    /// AES-CM-HMAC-SHA1-80 (the server's).
    pub fn new() -> Result<Arc<Self>, CryptoError> {
        Ok(Self::wrapping(
            rtc::crypto::default_provider()?,
            CmProfile::Sha1_80,
        ))
    }

    /// Wraps `inner`; a CM context seen is taken for `cm_profile`.
    pub fn wrapping(inner: Arc<dyn RTCCryptoProvider>, cm_profile: CmProfile) -> Arc<Self> {
        Arc::new(Self {
            crypto: KeyTapCrypto {
                inner,
                seen: Mutex::new(Seen::default()),
                cm_profile,
            },
        })
    }

    /// The keys and profile of the connection's sending SRTP context, once DTLS is up with
    /// AES-128-GCM or AES-CM-HMAC-SHA1; `None` otherwise (the slow path then stays in use).
    pub fn local_keys(&self) -> Option<LocalKeys> {
        self.crypto.seen.lock().masters.first().copied()
    }

    /// The master key and salt of the sending context when its profile is AES-128-GCM.
    pub fn local_master(&self) -> Option<SrtpMaster> {
        match self.local_keys()? {
            LocalKeys::Gcm(master) => Some(master),
            LocalKeys::Cm(..) => None,
        }
    }
}

impl RTCCryptoProvider for KeyTap {
    fn name(&self) -> &'static str {
        "chorus-key-tap"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }

    fn random(&self) -> &dyn RTCRandom {
        self.crypto.inner.random()
    }
}

impl KeyTapCrypto {
    fn inner(&self) -> &dyn RTCCrypto {
        self.inner.crypto()
    }
}

/// A block that may open an AES-128 SRTP key derivation: its counter (bytes 14..16) is zero.
/// (With a 12-byte GCM salt, bytes 12..14 are zero too; checked when the key is used.)
fn opens_derivation(key: &[u8], block: &[u8]) -> bool {
    key.len() == 16 && block.len() == 16 && block[14..16] == [0, 0]
}

impl RTCCrypto for KeyTapCrypto {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        let watched = algorithm == BlockCipherAlgorithm::Aes128 && opens_derivation(key, block);
        let input: Option<[u8; 16]> = block.try_into().ok();
        self.inner().block_encrypt(algorithm, key, block)?;
        if watched {
            if let (Some(input), Ok(key), Ok(output)) = (input, key.try_into(), block.try_into()) {
                self.seen.lock().remember((key, input, output));
            }
        }
        Ok(())
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        if algorithm == StreamCipherAlgorithm::Aes128Ctr {
            let mut seen = self.seen.lock();
            // The SRTP session key of an AES-CM context: label 0, so the input is the salt.
            if let Some((master, input, _)) = seen.deriving(key) {
                if !seen.knows(&master) {
                    let mut salt = [0u8; 14];
                    salt.copy_from_slice(&input[..14]);
                    let cm = CmMaster { key: master, salt };
                    seen.masters.push(LocalKeys::Cm(cm, self.cm_profile));
                }
            }
        }
        self.inner().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        if algorithm == AeadAlgorithm::Aes128Gcm {
            let mut seen = self.seen.lock();
            // The session key of label 0 is the derivation's output: a GCM SRTP context.
            if let Some((master, input, _)) = seen.deriving(key) {
                if input[12..14] == [0, 0] && !seen.knows(&master) {
                    let mut salt = [0u8; 12];
                    salt.copy_from_slice(&input[..12]);
                    seen.masters
                        .push(LocalKeys::Gcm(SrtpMaster { key: master, salt }));
                }
            }
        }
        self.inner().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner()
            .verify_signature(scheme, public_key, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    #[test]
    fn learns_the_master_of_the_first_gcm_context_built_through_it() {
        let tap = KeyTap::new().unwrap();
        let local = SrtpMaster {
            key: [7; 16],
            salt: [9; 12],
        };
        let remote = SrtpMaster {
            key: [1; 16],
            salt: [2; 12],
        };
        for m in [&local, &remote] {
            Context::new(
                &m.key,
                &m.salt,
                ProtectionProfile::AeadAes128Gcm,
                None,
                None,
                tap.crypto(),
            )
            .unwrap();
        }
        assert_eq!(tap.local_master(), Some(local));
    }

    #[test]
    fn learns_the_master_and_profile_of_the_first_cm_context_built_through_it() {
        for (profile, stack) in [
            (CmProfile::Sha1_80, ProtectionProfile::Aes128CmHmacSha1_80),
            (CmProfile::Sha1_32, ProtectionProfile::Aes128CmHmacSha1_32),
        ] {
            let tap = KeyTap::wrapping(rtc::crypto::default_provider().unwrap(), profile);
            let local = CmMaster {
                key: [3; 16],
                salt: [4; 14],
            };
            let remote = CmMaster {
                key: [5; 16],
                salt: [6; 14],
            };
            for m in [&local, &remote] {
                Context::new(&m.key, &m.salt, stack, None, None, tap.crypto()).unwrap();
            }
            assert_eq!(tap.local_keys(), Some(LocalKeys::Cm(local, profile)));
            assert_eq!(tap.local_master(), None, "not a GCM master");
        }
    }

    #[test]
    fn an_aes_256_context_is_not_taken() {
        let tap = KeyTap::new().unwrap();
        Context::new(
            &[3; 32],
            &[4; 12],
            ProtectionProfile::AeadAes256Gcm,
            None,
            None,
            tap.crypto(),
        )
        .unwrap();
        assert_eq!(tap.local_keys(), None);
    }
}
