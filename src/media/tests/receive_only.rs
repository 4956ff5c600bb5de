//! Receive-only participants (issue 10, item 1): a viewer that never offers, in a room with an
//! H264 and a VP8 publisher, receives every track whose codec it can decode, whatever the order
//! of joins and publications; what it declared at `join` decides, before any transceiver
//! exists, and `playable` never flips.

use super::harness::{Bench, Codecs};
use crate::media::capabilities::ReceiveCaps;
use crate::media::codecs::H264_FMTP;
use crate::media::peer::MediaGrants;
use crate::protocol::{CodecCapability, MediaEvent, MediaRequest, TrackKind};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};

const KINDS: [TrackKind; 2] = [TrackKind::Audio, TrackKind::Video];

/// When the viewer joins and the publishers publish.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Both publishers publish at once; the viewer was there before.
    Together,
    /// The viewer first, then the H264 publisher, then (once settled) the VP8 one.
    ViewerThenH264ThenVp8,
    /// The viewer first, then the VP8 publisher, then (once settled) the H264 one.
    ViewerThenVp8ThenH264,
    /// Both publishers are live before the viewer joins.
    PublishersThenViewer,
}

struct Room {
    bench: Bench,
    h264: usize,
    vp8: usize,
    viewer: usize,
}

/// An H264 publisher and a VP8 publisher (audio and video each) and a viewer that never offers
/// (a browser: it decodes Opus, VP8, VP9 and H264), which declares `receive` at `join`.
fn room(order: Order, receive: Option<Vec<CodecCapability>>) -> Room {
    let mut bench = Bench::new();
    let all = MediaGrants::default();
    let mut viewer = None;
    if !matches!(order, Order::PublishersThenViewer) {
        viewer = Some(bench.join_declaring("room", "viewer", all, Codecs::All, receive.clone()));
    }
    let h264 = bench.join_with("room", "h264", all, Codecs::All);
    bench.clients[h264].video_mime = "video/H264";
    let vp8 = bench.join_with("room", "vp8", all, Codecs::All);
    match order {
        Order::Together | Order::PublishersThenViewer => {
            bench.publish(h264, &KINDS);
            bench.publish(vp8, &KINDS);
            bench.settle();
        }
        Order::ViewerThenH264ThenVp8 => {
            bench.publish(h264, &KINDS);
            bench.settle();
            bench.publish(vp8, &KINDS);
            bench.settle();
        }
        Order::ViewerThenVp8ThenH264 => {
            bench.publish(vp8, &KINDS);
            bench.settle();
            bench.publish(h264, &KINDS);
            bench.settle();
        }
    }
    let viewer = match viewer {
        Some(v) => v,
        None => {
            let v = bench.join_declaring("room", "viewer", all, Codecs::All, receive);
            bench.settle();
            v
        }
    };
    Room {
        bench,
        h264,
        vp8,
        viewer,
    }
}

/// Packets the viewer got of `peer_id`'s track of `kind` (0 if it was never told of it).
fn received(bench: &Bench, viewer: usize, peer_id: &str, kind: TrackKind) -> u64 {
    let client = &bench.clients[viewer];
    match client.announced(peer_id, kind).last() {
        Some(info) => client.received_on(&info.track_id),
        None => 0,
    }
}

fn summary(bench: &Bench, viewer: usize) -> String {
    let mut out = Vec::new();
    for peer in ["h264", "vp8"] {
        for kind in KINDS {
            let playable: Vec<bool> = bench.clients[viewer]
                .announced(peer, kind)
                .iter()
                .map(|i| i.playable)
                .collect();
            let got = received(bench, viewer, peer, kind);
            out.push(format!(
                "{peer} {kind:?}: playable {playable:?}, {got} packets"
            ));
        }
    }
    out.push(format!("errors {:?}", bench.clients[viewer].errors()));
    out.join("; ")
}

/// The viewer receives every one of the four tracks (`wanted`), nothing else, and no error.
fn assert_receives(r: &mut Room, wanted: &[(&str, TrackKind)], order: Order) {
    // Video starts at a keyframe, asked of the publisher at most every 500 ms (100 steps):
    // first every wanted track flows (bounded), then 30 packets are counted.
    for _ in 0..200 {
        if wanted
            .iter()
            .all(|(p, k)| received(&r.bench, r.viewer, p, *k) > 0)
        {
            break;
        }
        r.bench.send(1);
    }
    let before: Vec<u64> = EVERYTHING
        .iter()
        .map(|(p, k)| received(&r.bench, r.viewer, p, *k))
        .collect();
    r.bench.send(30);
    r.bench.run(5);
    for (i, (peer, kind)) in EVERYTHING.iter().enumerate() {
        let got = received(&r.bench, r.viewer, peer, *kind) - before[i];
        if wanted.contains(&(*peer, *kind)) {
            assert!(
                got >= 25,
                "{order:?}: the viewer got {got} of 30 packets of {peer}'s {kind:?} ({})",
                summary(&r.bench, r.viewer)
            );
        } else {
            assert_eq!(got, 0, "{order:?}: {peer}'s {kind:?} is not for the viewer");
        }
    }
    assert!(
        r.bench.clients[r.viewer].errors().is_empty(),
        "{order:?}: {}",
        summary(&r.bench, r.viewer)
    );
    for publisher in [r.h264, r.vp8] {
        assert!(
            r.bench.clients[publisher].errors().is_empty(),
            "{order:?}: publisher errors {:?}",
            r.bench.clients[publisher].errors()
        );
    }
}

/// Every announcement of `peer_id`'s track of `kind` to the viewer said `playable`.
fn assert_announced(r: &Room, peer_id: &str, kind: TrackKind, playable: bool) {
    let announced = r.bench.clients[r.viewer].announced(peer_id, kind);
    assert!(
        !announced.is_empty(),
        "the viewer was told of {peer_id}'s {kind:?}"
    );
    assert!(
        announced.iter().all(|i| i.playable == playable),
        "{peer_id}'s {kind:?} announced {:?}, never anything but playable:{playable}",
        announced
            .iter()
            .map(|i| (i.playable, i.reason.clone()))
            .collect::<Vec<_>>()
    );
}

const EVERYTHING: [(&str, TrackKind); 4] = [
    ("h264", TrackKind::Audio),
    ("h264", TrackKind::Video),
    ("vp8", TrackKind::Audio),
    ("vp8", TrackKind::Video),
];

#[test]
fn a_viewer_that_never_offers_receives_an_h264_and_a_vp8_publisher() {
    // It declares nothing: the default (Opus, VP8, H264) covers both publishers.
    let mut r = room(Order::Together, None);
    assert_receives(&mut r, &EVERYTHING, Order::Together);
    for (peer, kind) in EVERYTHING {
        assert_announced(&r, peer, kind, true);
    }
}

#[test]
fn a_viewer_receives_everything_whatever_the_order_of_joins_and_publications() {
    for order in [
        Order::Together,
        Order::ViewerThenH264ThenVp8,
        Order::ViewerThenVp8ThenH264,
        Order::PublishersThenViewer,
    ] {
        let mut r = room(order, None);
        assert_receives(&mut r, &EVERYTHING, order);
    }
}

fn declared(codecs: &[(&str, Option<&str>)]) -> Option<Vec<CodecCapability>> {
    Some(
        codecs
            .iter()
            .map(|(mime, fmtp)| CodecCapability {
                mime_type: (*mime).to_owned(),
                sdp_fmtp_line: fmtp.map(str::to_owned),
            })
            .collect(),
    )
}

#[test]
fn a_viewer_that_declares_only_vp8_gets_vp8_and_both_audios_and_h264_is_not_playable() {
    let receive = declared(&[("audio/opus", None), ("video/VP8", None)]);
    for order in [
        Order::Together,
        Order::ViewerThenH264ThenVp8,
        Order::ViewerThenVp8ThenH264,
        Order::PublishersThenViewer,
    ] {
        let mut r = room(order, receive.clone());
        let wanted = [
            ("h264", TrackKind::Audio),
            ("vp8", TrackKind::Audio),
            ("vp8", TrackKind::Video),
        ];
        assert_receives(&mut r, &wanted, order);
        assert_announced(&r, "h264", TrackKind::Video, false);
        let reason = r.bench.clients[r.viewer].announced("h264", TrackKind::Video)[0]
            .reason
            .clone()
            .unwrap_or_default();
        assert!(reason.contains("H264"), "{reason}");
        for (peer, kind) in wanted {
            assert_announced(&r, peer, kind, true);
        }
    }
}

#[test]
fn a_viewer_that_declares_h264_with_browser_style_entries_receives_it() {
    // What RTCRtpReceiver.getCapabilities() lists: several H264 profiles, RTX, RED, and
    // codecs the server does not forward.
    let receive = declared(&[
        ("audio/opus", Some("minptime=10;useinbandfec=1")),
        ("audio/red", Some("111/111")),
        (
            "video/H264",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
        ),
        (
            "video/H264",
            Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
        ),
        ("video/rtx", None),
        ("video/H265", None),
    ]);
    let mut r = room(Order::Together, receive);
    let wanted = [
        ("h264", TrackKind::Audio),
        ("h264", TrackKind::Video),
        ("vp8", TrackKind::Audio),
    ];
    assert_receives(&mut r, &wanted, Order::Together);
    assert_announced(&r, "vp8", TrackKind::Video, false);
}

#[test]
fn a_viewer_that_declares_nothing_and_cannot_decode_h264_still_gets_the_rest() {
    // The default assumes H264; the viewer's first answer shows it cannot take it.
    let mut bench = Bench::new();
    let all = MediaGrants::default();
    let viewer = bench.join_with("room", "viewer", all, Codecs::OpusAndVp8);
    let h264 = bench.join_with("room", "h264", all, Codecs::All);
    bench.clients[h264].video_mime = "video/H264";
    let vp8 = bench.join_with("room", "vp8", all, Codecs::All);
    bench.publish(h264, &KINDS);
    bench.publish(vp8, &KINDS);
    bench.settle();
    let mut r = Room {
        bench,
        h264,
        vp8,
        viewer,
    };
    let wanted = [
        ("h264", TrackKind::Audio),
        ("vp8", TrackKind::Audio),
        ("vp8", TrackKind::Video),
    ];
    assert_receives(&mut r, &wanted, Order::Together);
    let last = r.bench.clients[viewer].announced("h264", TrackKind::Video);
    assert!(
        last.last().is_some_and(|i| !i.playable),
        "{}",
        summary(&r.bench, viewer)
    );
}

fn video(mime: &str, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate: 90_000,
        sdp_fmtp_line: fmtp.into(),
        ..Default::default()
    }
}

/// The client applies the server offer it holds and answers it; the answer is applied to the
/// server leg directly (the room, which would drop what the leg cannot receive, is bypassed).
fn answer_directly(bench: &mut Bench, viewer: usize) {
    let now = bench.now;
    let requests = bench.clients[viewer].handle_events(now);
    let key = bench.clients[viewer].key;
    let peer = bench.state.peer_mut(key).expect("server leg");
    for request in requests {
        if let MediaRequest::Answer { sdp } = request {
            peer.apply_answer(sdp, now).expect("answer applies");
            peer.activate_subscriptions(|_| Vec::new());
        }
    }
}

#[test]
fn a_server_offer_the_stack_refuses_sheds_the_track_it_cannot_carry_and_the_leg_goes_on() {
    // The shape of the original failure: a send transceiver made before the connection's
    // codecs were locked, whose codecs the lock then excluded ("RTPSender created with no
    // codecs"). Capabilities known up front prevent it; this stages it on the leg directly.
    let mut bench = Bench::new();
    let receive = declared(&[
        ("audio/opus", None),
        ("video/VP8", None),
        ("video/H264", Some(H264_FMTP)),
    ]);
    let all = MediaGrants::default();
    let viewer = bench.join_declaring("room", "viewer", all, Codecs::All, receive);
    let key = bench.clients[viewer].key;
    let now = bench.now;
    let peer = bench.state.peer_mut(key).expect("server leg");
    let declared_caps = peer.receive.clone();
    // A VP8 track whose m-line lists VP8 only is offered; while that offer is out, an H264
    // track whose m-line lists H264 only joins the leg.
    let vp8 = video("video/VP8", "");
    let h264 = video("video/H264", H264_FMTP);
    peer.receive = ReceiveCaps::new(declared(&[("video/VP8", None)]).as_deref());
    peer.subscribe(1001, "a-1", "a", RtpCodecKind::Video, &vp8, now)
        .expect("subscribes");
    peer.offer_if_needed(now);
    peer.receive = ReceiveCaps::new(declared(&[("video/H264", Some(H264_FMTP))]).as_deref());
    peer.subscribe(1002, "b-1", "b", RtpCodecKind::Video, &h264, now)
        .expect("subscribes");
    peer.receive = declared_caps;
    // The answer's first video m-line (VP8 only) locks the connection's video codecs.
    answer_directly(&mut bench, viewer);
    let peer = bench.state.peer_mut(key).expect("server leg");
    assert!(!peer.receive.can_receive(&h264), "the lock is mirrored");
    // The next change: the stack refuses an offer with the H264 sender in it.
    peer.subscribe(1003, "c-1", "c", RtpCodecKind::Video, &vp8, now)
        .expect("subscribes");
    peer.offer_if_needed(now);
    let dropped: Vec<_> = std::mem::take(&mut peer.dropped);
    assert!(peer.subscriptions.contains_key(&1003));
    let client = &mut bench.clients[viewer];
    while let Ok(event) = client.events.try_recv() {
        client.log.push(event.clone());
        client.held.push(event);
    }
    let errors: Vec<_> = client
        .log
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(client.offers(), 2, "the leg offered again");
    assert_eq!(
        dropped.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![1002],
        "only the track the leg cannot carry is shed"
    );
    answer_directly(&mut bench, viewer);
    let peer = bench.state.peer(key).expect("server leg");
    assert_eq!(
        peer.subscriptions[&1003].payload_type,
        Some(96),
        "c-1 is negotiated"
    );
}
