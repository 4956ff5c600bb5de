//! Simulcast through the shard with real `rtc` peers: a publisher sends one video track as
//! three rid streams (q, h, f: 320×180, 640×360, 1280×720 keyframes, each with its own
//! sequence numbers, timestamps and VP8 picture ids); a subscriber that hints a small size gets
//! the low layer, one without a hint the top layer, both as one continuous stream, and a new
//! hint moves a leg at the next keyframe of the layer it asks for (requested by PLI on that
//! layer's SSRC).

use super::client::Client;
use super::harness::Bench;
use crate::config::ShardLimits;
use crate::media::simulcast::vp8::{keyframe_size, parse};
use crate::protocol::{MediaRequest, TrackKind};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sdp::extmap::{SDES_MID_URI, SDES_REPAIR_RTP_STREAM_ID_URI, SDES_RTP_STREAM_ID_URI};

const RIDS: [&str; 3] = ["q", "h", "f"];
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];
/// Frames between a layer's periodic keyframes.
const GOP: u32 = 200;

/// The publisher's simulcast track: one sender, three SSRCs.
struct Layered {
    sender: RTCRtpSenderId,
    ssrc: [u32; 3],
    seq: [u16; 3],
    ts: [u32; 3],
    pid: [u16; 3],
    frame: u32,
    /// PLIs of the client already answered.
    plis_seen: usize,
    key_due: [bool; 3],
}

fn add_simulcast_track(client: &mut Client) -> Layered {
    let ssrc: [u32; 3] = [rand::random(), rand::random(), rand::random()];
    let codec = RTCRtpCodec {
        mime_type: "video/VP8".into(),
        clock_rate: 90_000,
        ..Default::default()
    };
    let codings = (0..3)
        .map(|i| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: RIDS[i].into(),
                ssrc: Some(ssrc[i]),
                ..Default::default()
            },
            codec: codec.clone(),
            ..Default::default()
        })
        .collect();
    let track = MediaStreamTrack::new(
        "stream-alice".into(),
        "alice-camera".into(),
        "camera".into(),
        RtpCodecKind::Video,
        codings,
    );
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![],
        send_encodings: vec![],
    };
    let id = client
        .pc
        .add_transceiver_from_track(track, Some(init))
        .expect("simulcast transceiver");
    let sender = client
        .pc
        .rtp_transceiver(id)
        .and_then(|t| t.sender())
        .expect("sender");
    Layered {
        sender,
        ssrc,
        seq: [1000, 30_000, 65_500],
        ts: [10, 1_000_000, 4_294_000_000],
        pid: [100, 20_000, 32_760],
        frame: 0,
        plis_seen: 0,
        key_due: [true; 3],
    }
}

/// One frame of every layer (two packets each), stamped with mid and rid.
fn send_frame(client: &mut Client, l: &mut Layered, now: std::time::Instant) {
    for ssrc in &client.pli_ssrcs[l.plis_seen..] {
        if let Some(i) = l.ssrc.iter().position(|s| s == ssrc) {
            l.key_due[i] = true;
        }
    }
    l.plis_seen = client.pli_ssrcs.len();
    let Some(mut sender) = client.pc.rtp_sender(l.sender) else {
        return;
    };
    let params = sender.get_parameters();
    let Some(pt) = params.rtp_parameters.codecs.first().map(|c| c.payload_type) else {
        return;
    };
    let ext = |uri: &str| {
        params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|h| h.uri == uri)
            .map(|h| h.id as u8)
    };
    let (Some(mid_id), Some(rid_id)) = (ext(SDES_MID_URI), ext(SDES_RTP_STREAM_ID_URI)) else {
        return;
    };
    let ids: Vec<_> = client.pc.get_transceivers().collect();
    let mid = ids
        .into_iter()
        .filter_map(|t| client.pc.rtp_transceiver(t).and_then(|t| t.mid().clone()))
        .next()
        .unwrap_or_default();
    for i in 0..3 {
        let key = l.key_due[i] || l.frame.is_multiple_of(GOP);
        l.key_due[i] = false;
        let pid = l.pid[i];
        let (w, h) = SIZES[i];
        let mut first = vec![0x90, 0xc0, 0x80 | (pid >> 8) as u8, pid as u8, pid as u8];
        first.extend_from_slice(&[u8::from(!key), 0, 0, 0x9d, 0x01, 0x2a]);
        first.extend_from_slice(&w.to_le_bytes());
        first.extend_from_slice(&h.to_le_bytes());
        let mut second = vec![0x80, 0xc0, 0x80 | (pid >> 8) as u8, pid as u8, pid as u8];
        second.extend_from_slice(&[0; 10]);
        for (n, mut payload) in [first, second].into_iter().enumerate() {
            payload.push(i as u8); // the layer, for the receiver's checks
            payload.resize(200, 0xab);
            let mut p = rtc::rtp::Packet::default();
            p.header.version = 2;
            p.header.marker = n == 1;
            p.header.payload_type = pt;
            p.header.sequence_number = l.seq[i];
            p.header.timestamp = l.ts[i];
            p.header.ssrc = l.ssrc[i];
            p.header
                .set_extension(mid_id, bytes::Bytes::from(mid.clone().into_bytes()))
                .expect("mid");
            p.header
                .set_extension(rid_id, bytes::Bytes::from_static(RIDS[i].as_bytes()))
                .expect("rid");
            p.payload = bytes::Bytes::from(payload);
            l.seq[i] = l.seq[i].wrapping_add(1);
            let _ = client
                .pc
                .rtp_sender(l.sender)
                .map(|mut s| s.write_rtp(now, p));
        }
        l.ts[i] = l.ts[i].wrapping_add(3000);
        l.pid[i] = l.pid[i].wrapping_add(1) & 0x7fff;
    }
    l.frame += 1;
}

/// What a subscriber received on its video track: (layer, seq, picture id, opens a keyframe).
fn received(bench: &Bench, c: usize) -> Vec<(u8, u16, u16, bool)> {
    let client = &bench.clients[c];
    let Some(track) = client
        .announced("alice", TrackKind::Video)
        .last()
        .map(|i| i.track_id.clone())
    else {
        return Vec::new();
    };
    let Some(packets) = client.packets.get(&track) else {
        return Vec::new();
    };
    packets
        .iter()
        .map(|(seq, _, payload)| {
            let d = parse(payload).expect("descriptor");
            let key = keyframe_size(payload).is_some();
            let layer = payload[d.len + 10];
            (layer, *seq, d.picture_id().expect("picture id"), key)
        })
        .collect()
}

/// One continuous stream: consecutive sequence numbers, picture ids that step by 0 or 1,
/// every layer entered at a keyframe.
fn assert_continuous(got: &[(u8, u16, u16, bool)]) {
    assert!(got.first().is_some_and(|g| g.3), "starts with a keyframe");
    for w in got.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!(b.1, a.1.wrapping_add(1), "sequence gap {a:?} -> {b:?}");
        assert!(
            (b.2.wrapping_sub(a.2) & 0x7fff) <= 1,
            "picture id jump {a:?} -> {b:?}"
        );
        if a.0 != b.0 {
            assert!(b.3, "layer {} entered on a delta frame", b.0);
        }
    }
}

fn hint(bench: &mut Bench, c: usize, width: u32, height: u32) {
    let track_id = bench.clients[c].track_id("alice", TrackKind::Video);
    bench.request(
        c,
        MediaRequest::VideoSize {
            track_id,
            width: Some(width),
            height: Some(height),
            layer: None,
        },
    );
}

fn run_frames(bench: &mut Bench, alice: usize, track: &mut Layered, frames: usize) {
    for _ in 0..frames {
        let now = bench.now;
        send_frame(&mut bench.clients[alice], track, now);
        bench.step();
    }
}

#[test]
fn each_subscriber_gets_its_layer_as_one_continuous_stream() {
    layers_per_subscriber(Bench::new());
}

#[test]
fn the_stack_path_rewrites_the_same_way() {
    let limits = ShardLimits {
        fast_path: false,
        ..Default::default()
    };
    layers_per_subscriber(Bench::with_limits(limits));
}

fn layers_per_subscriber(mut bench: Bench) {
    bench.extensions = vec![
        (SDES_MID_URI, RtpCodecKind::Video),
        (SDES_RTP_STREAM_ID_URI, RtpCodecKind::Video),
        (SDES_REPAIR_RTP_STREAM_ID_URI, RtpCodecKind::Video),
    ];
    let alice = bench.join("room", "alice");
    bench.extensions.clear();
    let bob = bench.join("room", "bob");
    let carol = bench.join("room", "carol");
    let mut track = add_simulcast_track(&mut bench.clients[alice]);
    let now = bench.now;
    let sdp = bench.clients[alice].offer(now);
    assert!(sdp.contains("a=simulcast:send q;h;f"), "{sdp}");
    bench.request(
        alice,
        MediaRequest::Offer {
            sdp,
            tracks: vec![],
        },
    );
    bench.stabilize();
    // The track enters the room with its first packets; the legs negotiate.
    run_frames(&mut bench, alice, &mut track, 5);
    bench.stabilize();
    let announced = bench.clients[bob]
        .announced("alice", TrackKind::Video)
        .len();
    assert_eq!(announced, 1, "one publication for the three rid streams");
    hint(&mut bench, bob, 320, 180);
    // A frame per 5 ms step: 300 frames are 1.5 s, three keyframe-request windows.
    run_frames(&mut bench, alice, &mut track, 300);
    let (b, c) = (received(&bench, bob), received(&bench, carol));
    assert!(
        b.len() > 100 && c.len() > 100,
        "bob {} carol {}",
        b.len(),
        c.len()
    );
    assert_eq!(b.last().unwrap().0, 0, "bob hinted 320x180: the low layer");
    assert!(
        c.iter().all(|g| g.0 == 2),
        "carol, no hint: the top layer only"
    );
    assert_continuous(&b);
    assert_continuous(&c);
    // Bob now renders it large: he moves up at the top layer's next keyframe, which the
    // server asks the publisher for on that layer's SSRC.
    let plis_before = bench.clients[alice].pli_ssrcs.len();
    let bob_before = b.len();
    hint(&mut bench, bob, 1280, 720);
    run_frames(&mut bench, alice, &mut track, 150);
    let plis = &bench.clients[alice].pli_ssrcs[plis_before..];
    assert!(
        plis.contains(&track.ssrc[2]),
        "a PLI for the top layer: {plis:?}"
    );
    let b = received(&bench, bob);
    assert_eq!(b.last().unwrap().0, 2, "bob moved to the top layer");
    assert!(b.len() > bob_before + 100);
    assert_continuous(&b);
    let c = received(&bench, carol);
    assert!(c.iter().all(|g| g.0 == 2));
    assert_continuous(&c);
    // The metrics' figures: both legs on the top layer, bob's moves counted.
    assert_eq!(bench.state.levels().simulcast_legs, [0, 0, 2, 0]);
    assert!(bench.state.counters_mut().layer_switches >= 3);
}
