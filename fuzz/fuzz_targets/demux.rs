//! Fuzz target: the shard's datagram demux. Arbitrary bytes from an arbitrary source address go
//! through RFC 7983 classification (STUN/DTLS/RTP/RTCP), the STUN USERNAME parse and the
//! ufrag/address tables and the MESSAGE-INTEGRITY check; every datagram is routed to a known
//! peer or dropped with a reason.
#![no_main]

use chorus::media::demux::{looks_like_webrtc, stun_username_ufrag, Demux};
use chorus::media::stun_auth::integrity_ok;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    // The first bytes pick the source address; the rest is the datagram.
    let port = u16::from_be_bytes([data[0], data[1]]);
    let ip = if data[2] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, data[2]))
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    };
    let from = SocketAddr::new(ip, port);
    let local = SocketAddr::from(([127, 0, 0, 1], 50000));
    let datagram = &data[3..];

    let now = Instant::now();
    let mut demux = Demux::default();
    demux.add_peer("ufragA", 1);
    demux.add_peer("ufragB", 2);
    let _ = demux.learn(SocketAddr::from(([127, 0, 0, 2], 4000)), 2, local, now);

    let classified = looks_like_webrtc(datagram);
    let ufrag = stun_username_ufrag(datagram);
    if let Some(ufrag) = ufrag {
        assert!(!ufrag.contains(':'), "the ufrag is the part before ':'");
    }
    if let Ok(routed) = demux.route(datagram, from, now) {
        assert!(classified);
        let key = routed.key();
        assert!(key == 1 || key == 2);
        let _ = integrity_ok(datagram, "password-of-the-server-leg");
        if demux.learn(from, key, local, now).is_ok() {
            assert_eq!(demux.local_for(&from), Some(local));
        }
    }
    demux.remove_peer("ufragA", 1);
    demux.sweep(now);
});
