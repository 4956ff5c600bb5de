//! One subscriber leg of the floor benchmark: the per-leg RTP header rewrite (its own SSRC,
//! sequence and timestamp offsets) and SRTP AES-128-GCM sealing per RFC 7714 with the server's
//! own SRTP code (`rtp::srtp_out`, session key and salt derived once from the leg's master key
//! and salt), plus the opener `--verify` and the tests use to prove the sealing is real.

use crate::rtp::srtp_out::SrtpOut;
use bytes::{BufMut, BytesMut};

/// Master key and salt of one leg (what DTLS-SRTP would export for SRTP_AEAD_AES_128_GCM).
pub use crate::rtp::key_tap::SrtpMaster as LegSecret;

/// Fixed RTP header length (no CSRC, no extension).
pub const RTP_HEADER: usize = 12;
/// AES-GCM authentication tag appended to each SRTP packet (RFC 7714 §7.2).
pub const TAG: usize = crate::rtp::srtp_out::TAG_LEN;

/// The leg's SRTP session (session key and salt derived once, not per packet).
fn session(secret: &LegSecret) -> SrtpOut {
    SrtpOut::new(secret).expect("rtc is built with its ring provider")
}

/// The rewrite and cipher of one leg.
pub struct Leg {
    ssrc: u32,
    seq_start: u16,
    ts_offset: u32,
    srtp: SrtpOut,
}

impl Leg {
    /// A leg sending as `ssrc`, its first packet numbered `seq_start` (ROC 0), timestamps
    /// shifted by `ts_offset`.
    pub fn new(ssrc: u32, seq_start: u16, ts_offset: u32, secret: LegSecret) -> Self {
        Self {
            ssrc,
            seq_start,
            ts_offset,
            srtp: session(&secret),
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Appends this leg's SRTP copy of `packet` (plaintext RTP, `header_len` bytes of header)
    /// to `buf`: header rewritten (SSRC, seq = seq_start + `count`, ts + offset), payload
    /// sealed with the header as AAD, tag appended. `count` is the packet's index in the
    /// incoming stream (extended, from 0), so the leg's ROC is `(seq_start + count) >> 16`.
    pub fn seal_into(&self, packet: &[u8], header_len: usize, count: u64, buf: &mut BytesMut) {
        let start = buf.len();
        buf.put_slice(packet);
        let index = u64::from(self.seq_start) + count;
        let (seq, roc) = (index as u16, (index >> 16) as u32);
        let out = &mut buf[start..];
        let ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]).wrapping_add(self.ts_offset);
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        out[4..8].copy_from_slice(&ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        // AES-GCM sealing only fails for inputs beyond 2^36 bytes; a datagram never is.
        let tag = self
            .srtp
            .seal(out, header_len, self.ssrc, seq, roc)
            .expect("AES-GCM seals a datagram");
        buf.put_slice(&tag);
    }
}

/// Opens one leg's SRTP packets in arrival order, tracking its ROC from the sequence numbers.
pub struct Opener {
    srtp: SrtpOut,
    roc: u32,
    last_seq: Option<u16>,
}

impl Opener {
    pub fn new(secret: LegSecret) -> Self {
        Self {
            srtp: session(&secret),
            roc: 0,
            last_seq: None,
        }
    }

    /// Authenticates and decrypts `datagram` in place; the plaintext payload, or `None` if
    /// it is too short or does not authenticate.
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Option<&'a [u8]> {
        let header_len = header_len(datagram)?;
        let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
        let roc = match self.last_seq {
            Some(last) if seq < last && last - seq > 0x8000 => self.roc.wrapping_add(1),
            _ => self.roc,
        };
        let plain = self.srtp.open(datagram, header_len, ssrc, seq, roc)?;
        if roc != self.roc || self.last_seq.is_none_or(|last| seq > last) {
            self.last_seq = Some(seq);
        }
        self.roc = roc;
        Some(plain)
    }
}

/// Length of an RTP packet's header (fixed part, CSRCs, extension); `None` if it is not
/// RTP version 2 or is truncated.
pub fn header_len(packet: &[u8]) -> Option<usize> {
    if packet.len() < RTP_HEADER || packet[0] >> 6 != 2 {
        return None;
    }
    let mut len = RTP_HEADER + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (len <= packet.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1111_1111u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn rewrite_seal_and_open_round_trip() {
        let secret = LegSecret::random();
        let leg = Leg::new(0xABCD_0001, 65_534, 1_000, secret);
        let mut opener = Opener::new(secret);
        let payload: Vec<u8> = (0..1200u32).map(|i| i as u8).collect();
        let mut buf = BytesMut::with_capacity(4096);
        // count 0, 1, 2: seq 65534, 65535, then 0 with the ROC rolled over to 1.
        for (count, want_seq) in [(0u64, 65_534u16), (1, 65_535), (2, 0)] {
            let input = plain_rtp(7 + count as u16, 90_000 + count as u32, &payload);
            leg.seal_into(&input, RTP_HEADER, count, &mut buf);
            let mut datagram = buf.split();
            assert_eq!(datagram.len(), RTP_HEADER + payload.len() + TAG);
            assert_eq!(&datagram[2..4], &want_seq.to_be_bytes());
            assert_eq!(&datagram[4..8], &(91_000 + count as u32).to_be_bytes());
            assert_eq!(&datagram[8..12], &leg.ssrc().to_be_bytes());
            assert_ne!(&datagram[RTP_HEADER..RTP_HEADER + 64], &payload[..64]);
            let plain = opener.open(&mut datagram).expect("opens");
            assert_eq!(plain, &payload[..]);
        }
        assert_eq!(opener.roc, 1);
    }

    /// The webrtc-rs SRTP context (the one the server's PeerConnections use), given the same
    /// master key and salt, opens the floor's packets: the sealing is standard SRTP.
    #[test]
    fn rtc_srtp_opens_what_the_floor_seals() {
        use rtc::srtp::{context::Context, protection_profile::ProtectionProfile};
        let secret = LegSecret::random();
        let provider = rtc::crypto::default_provider().unwrap();
        let profile = ProtectionProfile::AeadAes128Gcm;
        let mut ctx = Context::new(
            &secret.key,
            &secret.salt,
            profile,
            None,
            None,
            provider.crypto(),
        )
        .unwrap();
        let leg = Leg::new(0x0BAD_CAFE, 65_535, 7, secret);
        let payload: Vec<u8> = (0..1200u32).map(|i| (i * 7) as u8).collect();
        let mut buf = BytesMut::with_capacity(4096);
        // seq 65535 (ROC 0), then 0 and 1 (ROC 1): the ROC goes into the nonce.
        for count in 0..3u64 {
            leg.seal_into(
                &plain_rtp(count as u16, 0, &payload),
                RTP_HEADER,
                count,
                &mut buf,
            );
            let sealed = buf.split();
            let opened = ctx
                .decrypt_rtp(&sealed)
                .expect("rtc's SRTP opens the packet");
            assert_eq!(&opened[..RTP_HEADER], &sealed[..RTP_HEADER]);
            assert_eq!(&opened[RTP_HEADER..], &payload[..]);
        }
    }

    #[test]
    fn a_tampered_packet_or_another_legs_key_does_not_open() {
        let secret = LegSecret::random();
        let leg = Leg::new(5, 100, 0, secret);
        let mut buf = BytesMut::with_capacity(2048);
        leg.seal_into(&plain_rtp(1, 2, &[9u8; 300]), RTP_HEADER, 0, &mut buf);
        let sealed = buf.split();
        let mut tampered = sealed.clone();
        tampered[3] ^= 1; // the header is authenticated (AAD)
        assert!(Opener::new(secret).open(&mut tampered).is_none());
        let mut other = sealed.clone();
        assert!(Opener::new(LegSecret::random()).open(&mut other).is_none());
        let mut good = sealed.clone();
        assert!(Opener::new(secret).open(&mut good).is_some());
    }

    #[test]
    fn header_len_counts_csrcs_and_extension() {
        assert_eq!(header_len(&plain_rtp(1, 1, &[0; 4])), Some(12));
        let mut p = plain_rtp(1, 1, &[0; 16]);
        p[0] |= 0x10 | 0x01; // X=1, CC=1: 4 bytes CSRC, then the extension header
        p[16..20].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x01]);
        assert_eq!(header_len(&p), Some(12 + 4 + 4 + 4));
        assert_eq!(header_len(&[0x80; 8]), None);
        assert_eq!(header_len(&[0x40; 20]), None);
    }
}
