//! A fast-path leg's outgoing SRTP, whichever profile its DTLS negotiated: AES-128-GCM
//! ([`SrtpOut`]) or AES-CM-HMAC-SHA1-80/32 ([`CmOut`]), built from the keys the connection's
//! key tap learned (`rtp::key_tap`). One `protect` for media, RTX and padding alike.

use super::key_tap::LocalKeys;
use super::srtp_cm::CmOut;
use super::srtp_out::SrtpOut;
use bytes::BytesMut;
use rtc::crypto::CryptoError;

/// The most bytes of tag any profile appends (AES-GCM's 16).
pub const MAX_TAG_LEN: usize = super::srtp_out::TAG_LEN;

/// One connection's outgoing SRTP session (one per leg, kept inline: no indirection per packet).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum LegSrtp {
    Gcm(SrtpOut),
    Cm(CmOut),
}

impl LegSrtp {
    /// The session for a connection whose sending context has `keys`.
    pub fn new(keys: &LocalKeys) -> Result<Self, CryptoError> {
        Ok(match keys {
            LocalKeys::Gcm(master) => LegSrtp::Gcm(SrtpOut::new(master)?),
            LocalKeys::Cm(master, profile) => LegSrtp::Cm(CmOut::new(master, *profile)),
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
        match self {
            LegSrtp::Gcm(gcm) => gcm.protect(buf, header_len, ssrc, seq, roc),
            LegSrtp::Cm(cm) => {
                cm.protect(buf, header_len, ssrc, seq, roc);
                Ok(())
            }
        }
    }

    /// The negotiated profile's name (RFC 5764 / RFC 7714), for logs.
    pub fn profile_name(&self) -> &'static str {
        match self {
            LegSrtp::Gcm(_) => "SRTP_AEAD_AES_128_GCM",
            LegSrtp::Cm(cm) => match cm.profile() {
                super::srtp_cm::CmProfile::Sha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
                super::srtp_cm::CmProfile::Sha1_32 => "SRTP_AES128_CM_HMAC_SHA1_32",
            },
        }
    }
}
