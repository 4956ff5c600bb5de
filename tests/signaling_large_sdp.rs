//! Issue 10 item 3: large rooms with stock browsers. Chrome repeats its whole codec list in
//! every m-line of its offers, so an SFU participant's offer grows by about 5.4 KB per room
//! member and passes `--max-frame-bytes` long before `--max-participants`. Offers and answers of
//! SFU participants are allowed up to a limit sized from the room (`Config::sdp_limit`); every
//! other message still stops at `--max-frame-bytes`.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::start_with;
use support::ws::WsClient;

/// Header extensions Chrome offers on audio and video sections, with its ids (one id per URI
/// across the bundle).
const AUDIO_EXTMAPS: &[(u8, &str)] = &[
    (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    (
        2,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    ),
    (
        3,
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    ),
    (4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
];
const VIDEO_EXTMAPS: &[(u8, &str)] = &[
    (14, "urn:ietf:params:rtp-hdrext:toffset"),
    (
        2,
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    ),
    (13, "urn:3gpp:video-orientation"),
    (
        3,
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    ),
    (
        5,
        "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    ),
    (
        6,
        "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    ),
    (
        7,
        "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    ),
    (
        8,
        "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    ),
    (4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
    (10, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
    (11, "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"),
];

/// Chrome's video codecs: (payload type, rtpmap, fmtp), each followed by its RTX.
const VIDEO_CODECS: &[(u8, &str, &str)] = &[
    (96, "VP8/90000", ""),
    (98, "VP9/90000", "profile-id=0"),
    (100, "VP9/90000", "profile-id=2"),
    (
        102,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    ),
    (
        104,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
    ),
    (
        106,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    ),
    (
        108,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
    ),
    (
        127,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
    ),
    (
        39,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f",
    ),
    (45, "AV1/90000", "level-idx=5;profile=0;tier=0"),
    (
        112,
        "H264/90000",
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
    ),
];

fn extmaps(list: &[(u8, &str)], attrs: &mut String) {
    for (id, uri) in list {
        attrs.push_str(&format!("a=extmap:{id} {uri}\r\n"));
    }
}

/// One Chrome-like m-line: every codec Chrome has, its feedback and extensions.
fn m_line(kind: &str, mid: usize, fingerprint: &str) -> String {
    let mut pts = Vec::new();
    let mut attrs = String::new();
    if kind == "audio" {
        extmaps(AUDIO_EXTMAPS, &mut attrs);
        for (pt, map, fmtp) in [
            (111, "opus/48000/2", "minptime=10;useinbandfec=1"),
            (63, "red/48000/2", "111/111"),
            (9, "G722/8000", ""),
            (0, "PCMU/8000", ""),
            (8, "PCMA/8000", ""),
            (13, "CN/8000", ""),
            (110, "telephone-event/48000", ""),
            (126, "telephone-event/8000", ""),
        ] {
            pts.push(pt.to_string());
            attrs.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
            if pt == 111 {
                attrs.push_str("a=rtcp-fb:111 transport-cc\r\n");
            }
            if !fmtp.is_empty() {
                attrs.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
            }
        }
    } else {
        extmaps(VIDEO_EXTMAPS, &mut attrs);
        for (pt, map, fmtp) in VIDEO_CODECS {
            let rtx = pt + 1;
            pts.push(pt.to_string());
            pts.push(rtx.to_string());
            attrs.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
            for fb in ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"] {
                attrs.push_str(&format!("a=rtcp-fb:{pt} {fb}\r\n"));
            }
            if !fmtp.is_empty() {
                attrs.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
            }
            attrs.push_str(&format!(
                "a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={pt}\r\n"
            ));
        }
        for (pt, map) in [(116, "red/90000"), (118, "ulpfec/90000")] {
            pts.push(pt.to_string());
            attrs.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        }
    }
    // Its own microphone and camera first, then a receiving section per other member's track.
    let direction = if mid < 2 {
        format!("a=sendonly\r\na=msid:own own-{kind}\r\n")
    } else {
        "a=recvonly\r\n".to_owned()
    };
    let ssrc = if mid < 2 {
        format!("a=ssrc:{} cname:chromelike\r\n", 1000 + mid)
    } else {
        String::new()
    };
    format!(
        "m={kind} 9 UDP/TLS/RTP/SAVPF {}\r\n\
         c=IN IP4 0.0.0.0\r\n\
         a=rtcp:9 IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:Chr0\r\n\
         a=ice-pwd:chromelikechromelikechr0\r\n\
         a=ice-options:trickle\r\n\
         a=fingerprint:sha-256 {fingerprint}\r\n\
         a=setup:actpass\r\n\
         a=mid:{mid}\r\n\
         {attrs}{direction}a=rtcp-mux\r\na=rtcp-rsize\r\n{ssrc}",
        pts.join(" ")
    )
}

/// A Chrome-like offer of a participant in a room of `members`: audio and video sections for
/// each, every one listing the full codec list.
fn chrome_like_offer(members: usize) -> String {
    let fingerprint: Vec<String> = (0..32).map(|i| format!("{:02X}", i * 7 % 256)).collect();
    let fingerprint = fingerprint.join(":");
    let mids: Vec<String> = (0..members * 2).map(|m| m.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE {}\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS own\r\n",
        mids.join(" ")
    );
    for mid in 0..members * 2 {
        let kind = if mid % 2 == 0 { "audio" } else { "video" };
        sdp.push_str(&m_line(kind, mid, &fingerprint));
    }
    sdp
}

/// Reads frames until one of `kind` arrives; panics on a close or after 20 frames.
async fn recv_until(client: &mut WsClient, kind: &str) -> Value {
    for _ in 0..20 {
        let message = client.recv_json().await;
        if message["type"] == kind {
            return message;
        }
        assert_ne!(message["type"], "error", "expected {kind}, got {message}");
    }
    panic!("no {kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_browser_offer_of_a_full_room_is_answered_and_other_big_frames_are_not() {
    let server = start_with(|c| c.max_participants = 16).await;
    let addr = server.addr();
    let (mut chrome, _) = WsClient::sfu_join(addr, "big", "chrome").await;

    // 16 members, 32 m-lines: well past the 64 KiB frame limit.
    let offer = json!({"type": "offer", "sdp": chrome_like_offer(16)}).to_string();
    let old_limit = 65536;
    assert!(offer.len() > old_limit, "offer is {} bytes", offer.len());
    eprintln!("Chrome-like offer, 32 m-lines: {} bytes", offer.len());
    chrome.send_text(&offer).await;
    let answer = recv_until(&mut chrome, "answer").await;
    let sdp = answer["sdp"].as_str().expect("answer sdp");
    let sections = sdp.lines().filter(|l| l.starts_with("m=")).count();
    assert_eq!(sections, 32, "the answer covers every m-line");

    // A message of the same size that carries no SDP is still refused.
    let padding = offer.len() - r#"{"type":"chat","text":""}"#.len();
    let chat = json!({"type": "chat", "text": "x".repeat(padding)}).to_string();
    assert_eq!(chat.len(), offer.len());
    chrome.send_text(&chat).await;
    let close = chrome
        .expect_close(Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_offer_past_the_room_sized_limit_closes_with_1009() {
    // Two members allow 16 KiB + 2 × 8 KiB, below the frame limit: the frame limit applies.
    let server = start_with(|c| c.max_participants = 2).await;
    let (mut client, _) = WsClient::sfu_join(server.addr(), "small", "chrome").await;
    let offer = json!({"type": "offer", "sdp": chrome_like_offer(16)}).to_string();
    client.send_text(&offer).await;
    let close = client
        .expect_close(Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    server.shutdown().await.expect("shutdown");
}
