//! The envelopes of the signaling relay: what one node publishes to another's Redis inbox
//! (`chorus:node:<id>:relay`) about one relayed connection. An envelope names the connection
//! (the edge node, the node the client's WebSocket reached, and the edge's random number for
//! it), its direction, and one event: `open` (with the cluster's relay key, the client's query
//! string and address), a text or binary frame, a keepalive, or a close. JSON, one envelope per
//! Redis message. It must not know about Redis or sessions.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One event of one relayed connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The node the client is connected to.
    pub edge: String,
    /// The edge's number for this connection (random, so not guessable).
    pub conn: u64,
    /// `true` from the edge to the room's node, `false` back.
    pub up: bool,
    #[serde(flatten)]
    pub body: Body,
}

/// What happened on the connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Body {
    /// A client connected to the edge asks the room's node to serve it (edge → room's node).
    Open {
        /// The cluster's relay key: only nodes of the cluster open relayed connections.
        key: String,
        /// The raw query string of the client's `/ws` URL.
        query: String,
        /// The client's own address (the per-address limit counts it).
        client: Option<IpAddr>,
    },
    /// A text frame, unchanged.
    Text { text: String },
    /// A binary frame (its content is never used: the protocol refuses binary frames).
    Binary,
    /// The sender is alive (sent every ping interval by both sides).
    Keepalive,
    /// The connection ended on the sender's side (with the WebSocket close code, if any).
    Close { code: Option<u16> },
}

impl Envelope {
    /// The JSON text of the envelope.
    pub fn encode(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a published message; `None` when it is not an envelope.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The Redis channel node `id` reads its relay envelopes from.
pub fn inbox(id: &str) -> String {
    format!("{}node:{id}:relay", super::KEY_PREFIX)
}

/// Whether `given` is the cluster's relay key (compared in constant time).
pub fn key_matches(given: &str, key: &str) -> bool {
    let (given, key) = (given.as_bytes(), key.as_bytes());
    if given.len() != key.len() || key.is_empty() {
        return false;
    }
    given.iter().zip(key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: Body) -> Envelope {
        Envelope {
            edge: "node-b".into(),
            conn: u64::MAX - 7,
            up: true,
            body,
        }
    }

    #[test]
    fn every_kind_of_envelope_survives_encoding() {
        let bodies = [
            Body::Open {
                key: "k".repeat(32),
                query: "room=m&token=a.b%20c".into(),
                client: Some("2001:db8::1".parse().unwrap()),
            },
            Body::Open {
                key: "k".into(),
                query: String::new(),
                client: None,
            },
            Body::Text {
                text: "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\u{e9}\"}".into(),
            },
            Body::Binary,
            Body::Keepalive,
            Body::Close { code: Some(1013) },
            Body::Close { code: None },
        ];
        for body in bodies {
            let sent = envelope(body);
            let text = sent.encode();
            assert_eq!(Envelope::decode(text.as_bytes()), Some(sent), "{text}");
        }
    }

    #[test]
    fn the_wire_form_names_the_connection_and_the_kind() {
        let text = envelope(Body::Keepalive).encode();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "keepalive");
        assert_eq!(value["edge"], "node-b");
        assert_eq!(value["up"], true);
        assert_eq!(inbox("a"), "chorus:node:a:relay");
    }

    #[test]
    fn anything_else_is_not_an_envelope() {
        for junk in [
            &b""[..],
            b"null",
            b"{\"edge\":\"b\",\"conn\":1,\"up\":true}",
            b"{\"edge\":\"b\",\"conn\":1,\"up\":true,\"kind\":\"bogus\"}",
            b"{\"edge\":\"b\",\"conn\":-1,\"up\":true,\"kind\":\"keepalive\"}",
            b"\xff\xfe",
        ] {
            assert_eq!(Envelope::decode(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn only_the_cluster_key_matches() {
        let key = "0123456789abcdef0123456789abcdef";
        assert!(key_matches(key, key));
        assert!(!key_matches("0123456789abcdef0123456789abcdeF", key));
        assert!(!key_matches("0123456789abcdef", key));
        assert!(!key_matches("", key));
        assert!(!key_matches("", ""));
    }
}
