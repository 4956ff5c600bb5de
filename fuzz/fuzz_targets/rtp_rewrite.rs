//! Fuzz target: the RTP rewrite path of one forwarded packet. A publisher's datagram is parsed as
//! RTP, its sequence number and timestamp are mapped onto a subscriber leg's numbering, its
//! header extensions remapped, and the result marshalled: it must parse back with the leg's
//! SSRC and payload type and the publisher's payload, whatever the input. The payload is also
//! read as a simulcast layer's keyframe (VP8 header, H264 SPS) for the size it declares.
#![no_main]

use chorus::media::rewrite::{rewrite_packet, ExtensionMap, SequenceRewriter};
use chorus::media::simulcast::SizeSource;
use libfuzzer_sys::fuzz_target;
use rtc::rtp::Packet;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (knobs, wire) = data.split_at(4);
    let Ok(mut packet) = Packet::unmarshal(&mut &wire[..]) else {
        return;
    };
    let publisher = [
        ("urn:ietf:params:rtp-hdrext:sdes:mid".to_owned(), knobs[0] % 16),
        (
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time".to_owned(),
            knobs[1] % 16,
        ),
        (
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01".to_owned(),
            3,
        ),
    ];
    let subscriber = [
        ("urn:ietf:params:rtp-hdrext:sdes:mid".to_owned(), 1),
        (
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time".to_owned(),
            knobs[2] % 16,
        ),
    ];
    let map = ExtensionMap::new(&publisher, &subscriber, Some("7"));
    let t0 = Instant::now();
    let mut sequence = SequenceRewriter::new(90_000, 1000, 5000, t0);
    if knobs[3] & 1 == 1 {
        sequence.pause();
    }
    let now = t0 + Duration::from_millis(u64::from(knobs[3]));
    let payload = packet.payload.clone();
    for sizes in [SizeSource::Vp8, SizeSource::H264] {
        if let Some((w, h)) = sizes.read(&payload) {
            assert!(w > 0 && h > 0 && w <= 16_384 && h <= 16_384, "{w}x{h}");
        }
    }
    let (seq, ts) = sequence.rewrite(packet.header.sequence_number, packet.header.timestamp, now);
    assert_eq!(sequence.original_seq(seq), packet.header.sequence_number);
    rewrite_packet(&mut packet, 0xC0FFEE, 96, seq, ts, &map, 0x01_0203);
    let Ok(out) = packet.marshal() else {
        return;
    };
    assert_eq!(out.len(), packet.marshal_size());
    let back = Packet::unmarshal(&mut &out[..]).expect("a rewritten packet parses back");
    assert_eq!(back.header.ssrc, 0xC0FFEE);
    assert_eq!(back.header.payload_type, 96);
    assert_eq!(back.header.sequence_number, seq);
    assert_eq!(back.payload, payload);
});
