//! Learns a connection's outgoing SRTP keys from the stack's own key derivation, so the
//! forwarding fast path can protect packets itself. `rtc` 0.21.1 keeps its SRTP contexts
//! private, but builds them through the crypto provider a connection is given: this provider
//! wraps the default one, changes nothing it computes, and watches for the one shape an
//! AES-128-GCM SRTP context leaves (RFC 3711 §4.3.3 / RFC 7714 §11): an AES-128 block encryption
//! of `master_salt ‖ 0 ‖ counter 0` under the master key, whose output is then keyed as an
//! AES-128-GCM cipher (the SRTP session key). The first such master key of a connection is its
//! local (sending) context's: `rtc` derives the local context before the remote one.
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

/// What the tap has seen so far.
#[derive(Default)]
struct Seen {
    /// The last candidate derivation: (master key, input block, output block).
    candidate: Option<([u8; 16], [u8; 16], [u8; 16])>,
    /// Confirmed AES-128-GCM masters, in the order the stack built their contexts.
    masters: Vec<SrtpMaster>,
}

/// The crypto operations of the default provider, watched (see the module documentation).
pub struct KeyTapCrypto {
    inner: Arc<dyn RTCCryptoProvider>,
    seen: Mutex<Seen>,
}

/// A crypto provider for one connection; see the module documentation.
pub struct KeyTap {
    crypto: KeyTapCrypto,
}

impl KeyTap {
    /// Wraps the stack's default provider.
    pub fn new() -> Result<Arc<Self>, CryptoError> {
        Ok(Self::wrapping(rtc::crypto::default_provider()?))
    }

    /// Wraps `inner`.
    pub fn wrapping(inner: Arc<dyn RTCCryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            crypto: KeyTapCrypto {
                inner,
                seen: Mutex::new(Seen::default()),
            },
        })
    }

    /// The master key and salt of the connection's sending SRTP context, once DTLS is up and
    /// the profile is AES-128-GCM; `None` otherwise (the slow path then stays in use).
    pub fn local_master(&self) -> Option<SrtpMaster> {
        self.crypto.seen.lock().masters.first().cloned()
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

/// A block that opens an SRTP key derivation with a 12-byte salt: bytes 12..16 are zero
/// (salt padding and a zero counter).
fn opens_gcm_derivation(key: &[u8], block: &[u8]) -> bool {
    key.len() == 16 && block.len() == 16 && block[12..16] == [0, 0, 0, 0]
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
        let watched = algorithm == BlockCipherAlgorithm::Aes128 && opens_gcm_derivation(key, block);
        let input: Option<[u8; 16]> = block.try_into().ok();
        self.inner().block_encrypt(algorithm, key, block)?;
        if watched {
            if let (Some(input), Ok(key), Ok(output)) = (input, key.try_into(), block.try_into()) {
                self.seen.lock().candidate = Some((key, input, output));
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
        self.inner().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        if algorithm == AeadAlgorithm::Aes128Gcm {
            let mut seen = self.seen.lock();
            if let Some((master, input, output)) = seen.candidate.take() {
                // The session key of label 0 is the derivation's output: a GCM SRTP context.
                if output[..] == *key {
                    let mut salt = [0u8; 12];
                    salt.copy_from_slice(&input[..12]);
                    if !seen.masters.iter().any(|m| m.key == master) {
                        seen.masters.push(SrtpMaster { key: master, salt });
                    }
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
    fn an_hmac_sha1_context_is_not_taken_for_gcm() {
        let tap = KeyTap::new().unwrap();
        Context::new(
            &[3; 16],
            &[4; 14],
            ProtectionProfile::Aes128CmHmacSha1_80,
            None,
            None,
            tap.crypto(),
        )
        .unwrap();
        assert_eq!(tap.local_master(), None);
    }
}
