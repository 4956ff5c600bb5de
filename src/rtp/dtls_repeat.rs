//! Keeps a peer's repeated DTLS handshake flight from stalling our own handshake on a lossy
//! link. `rtc-dtls` (0.21.1) cancels its retransmit timer whenever a handshake record arrives
//! while it waits for the peer's next flight, and re-arms it only when it sends a flight. So
//! when our flight is lost, the peer's retransmission of its *previous* flight (exactly what
//! RFC 6347 §4.2.4 has it do) silences our timer: neither side sends again and the handshake
//! dies (`Flight 4 … HandshakeState::Errored` on the server, `Flight 3 …` on the client).
//! Dropping such a pure repeat — a datagram of nothing but epoch-0 handshake records of the
//! watched types whose message sequence numbers were all seen before — leaves our timer
//! running, and our flight goes out again within a second. Sans-IO, per connection. A
//! handshake that still fails (every transmission of a flight lost) is told apart by
//! [`is_handshake_give_up`], so the leg can be rebuilt instead of left silent.

/// Whether `error`, from a connection's `handle_timeout`, says its DTLS handshake gave up
/// (a flight retransmitted the most times allowed): the stack reports nothing else and the
/// connection never leaves `connecting` by itself.
pub fn is_handshake_give_up(error: &rtc::shared::error::Error) -> bool {
    matches!(error, rtc::shared::error::Error::ErrInvalidFsmTransition)
}

/// DTLS content type of handshake records.
const HANDSHAKE: u8 = 22;
const RECORD_HEADER: usize = 13;
const HANDSHAKE_HEADER: usize = 12;

/// Handshake message types.
pub mod message {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
}

/// One handshake message fragment: type, message sequence, fragment offset.
pub type Fragment = (u8, u16, u32);

/// The handshake fragments of a datagram made only of epoch-0 handshake records; `None` for
/// anything else (RTP, STUN, encrypted or other records, malformed input).
pub fn plain_handshake(datagram: &[u8]) -> Option<Vec<Fragment>> {
    let mut messages = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let header = rest.get(..RECORD_HEADER)?;
        let epoch = u16::from_be_bytes([header[3], header[4]]);
        if header[0] != HANDSHAKE || epoch != 0 {
            return None;
        }
        let len = u16::from_be_bytes([header[11], header[12]]) as usize;
        let body = rest.get(RECORD_HEADER..RECORD_HEADER + len)?;
        let hs = body.get(..HANDSHAKE_HEADER)?;
        let offset = u32::from_be_bytes([0, hs[6], hs[7], hs[8]]);
        messages.push((hs[0], u16::from_be_bytes([hs[4], hs[5]]), offset));
        rest = &rest[RECORD_HEADER + len..];
    }
    (!messages.is_empty()).then_some(messages)
}

/// One connection's view of the peer's plain handshake messages of the watched types.
#[derive(Debug, Clone)]
pub struct RepeatFilter {
    watched: &'static [u8],
    /// Lowest message sequence number that counts (a server must see a repeated first
    /// ClientHello: it answers with HelloVerifyRequest again, which it never retransmits).
    min_seq: u16,
    seen: Vec<Fragment>,
}

/// At most this many fragments are remembered (a handshake has a dozen messages).
const MAX_SEEN: usize = 32;

impl RepeatFilter {
    /// For the DTLS server: the client's repeated ClientHello with cookie (flight 3), which
    /// means our flight 4 was lost.
    pub fn for_server() -> Self {
        Self {
            watched: &[message::CLIENT_HELLO],
            min_seq: 1,
            seen: Vec::new(),
        }
    }

    /// For the DTLS client: the server's repeated flight 4, which means our flight 5 was lost.
    pub fn for_client() -> Self {
        use message::*;
        Self {
            watched: &[
                SERVER_HELLO,
                CERTIFICATE,
                SERVER_KEY_EXCHANGE,
                CERTIFICATE_REQUEST,
                SERVER_HELLO_DONE,
            ],
            min_seq: 0,
            seen: Vec::new(),
        }
    }

    /// Whether `datagram` only repeats watched handshake messages already passed on (drop
    /// it); records the new ones of a datagram that is passed on.
    pub fn is_repeat(&mut self, datagram: &[u8]) -> bool {
        let Some(messages) = plain_handshake(datagram) else {
            return false;
        };
        let watched = |(typ, seq, _): &Fragment| self.watched.contains(typ) && *seq >= self.min_seq;
        if messages.iter().all(|m| watched(m) && self.seen.contains(m)) {
            return true;
        }
        for m in messages.into_iter().filter(watched) {
            if !self.seen.contains(&m) && self.seen.len() < MAX_SEEN {
                self.seen.push(m);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `epoch` holding one handshake message.
    fn record(content: u8, epoch: u16, typ: u8, seq: u16, body: usize) -> Vec<u8> {
        let len = (HANDSHAKE_HEADER + body) as u16;
        let mut r = vec![content, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0, 0, 7]);
        r.extend_from_slice(&len.to_be_bytes());
        r.push(typ);
        r.extend_from_slice(&(body as u32).to_be_bytes()[1..]);
        r.extend_from_slice(&seq.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0]);
        r.extend_from_slice(&(body as u32).to_be_bytes()[1..]);
        r.extend(std::iter::repeat_n(0xab, body));
        r
    }

    #[test]
    fn parses_the_messages_of_a_plain_handshake_datagram() {
        let mut d = record(HANDSHAKE, 0, message::SERVER_HELLO, 1, 70);
        d.extend(record(HANDSHAKE, 0, message::CERTIFICATE, 2, 300));
        assert_eq!(
            plain_handshake(&d),
            Some(vec![
                (message::SERVER_HELLO, 1, 0),
                (message::CERTIFICATE, 2, 0)
            ])
        );
        // Encrypted (epoch 1), other content, truncated, RTP: not a plain handshake.
        assert_eq!(plain_handshake(&record(HANDSHAKE, 1, 20, 5, 12)), None);
        assert_eq!(plain_handshake(&record(20, 0, 1, 0, 1)), None);
        assert_eq!(plain_handshake(&d[..d.len() - 1]), None);
        assert_eq!(plain_handshake(&[0x80, 96, 0, 1]), None);
        assert_eq!(plain_handshake(&[]), None);
    }

    #[test]
    fn a_server_drops_a_repeated_client_hello_with_cookie_only() {
        let mut f = RepeatFilter::for_server();
        let hello = record(HANDSHAKE, 0, message::CLIENT_HELLO, 0, 100);
        let with_cookie = record(HANDSHAKE, 0, message::CLIENT_HELLO, 1, 120);
        // The first ClientHello repeated: the server must answer it again.
        assert!(!f.is_repeat(&hello));
        assert!(!f.is_repeat(&hello));
        assert!(!f.is_repeat(&with_cookie));
        assert!(
            f.is_repeat(&with_cookie),
            "flight 3 again: our flight 4 was lost"
        );
        // Flight 5 (certificate, key exchange) is never held back.
        let flight5 = record(HANDSHAKE, 0, message::CERTIFICATE, 2, 300);
        assert!(!f.is_repeat(&flight5));
        assert!(!f.is_repeat(&flight5));
    }

    #[test]
    fn a_client_drops_a_repeated_flight_4_but_not_new_parts_of_it() {
        let mut f = RepeatFilter::for_client();
        let mut first = record(HANDSHAKE, 0, message::SERVER_HELLO, 1, 70);
        first.extend(record(HANDSHAKE, 0, message::CERTIFICATE, 2, 300));
        let mut second = record(HANDSHAKE, 0, message::SERVER_KEY_EXCHANGE, 3, 100);
        second.extend(record(HANDSHAKE, 0, message::SERVER_HELLO_DONE, 4, 0));
        assert!(!f.is_repeat(&first));
        assert!(f.is_repeat(&first));
        assert!(!f.is_repeat(&second), "the part not seen yet passes");
        assert!(f.is_repeat(&second));
        let verify = record(HANDSHAKE, 0, 3, 0, 20); // HelloVerifyRequest: not watched
        assert!(!f.is_repeat(&verify));
        assert!(!f.is_repeat(&verify));
    }
}
