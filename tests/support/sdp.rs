//! Hand-written SDP for tests that speak the protocol without a WebRTC stack: a browser-shaped
//! send-only offer (one audio and one video m-line) the server answers.

/// A plausible browser-style sendonly offer whose codecs are `audio` and `video` (rtpmap
/// encodings such as `opus/48000/2` and `VP8/90000`, payload types 111 and 96).
pub fn sendonly_offer(audio: &str, video: &str) -> String {
    let fingerprint: Vec<String> = (0..32).map(|i| format!("{:02X}", i * 7 % 256)).collect();
    let media = |kind: &str, mid: u8, pt: u8, codec: &str, ssrc: u32| {
        format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\n\
             c=IN IP4 0.0.0.0\r\n\
             a=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:tEsT\r\n\
             a=ice-pwd:test0test0test0test0test0\r\n\
             a=ice-options:trickle\r\n\
             a=fingerprint:sha-256 {}\r\n\
             a=setup:actpass\r\n\
             a=mid:{mid}\r\n\
             a=sendonly\r\n\
             a=msid:test-stream test-{kind}\r\n\
             a=rtcp-mux\r\n\
             a=rtpmap:{pt} {codec}\r\n\
             a=ssrc:{ssrc} cname:test\r\n",
            fingerprint.join(":")
        )
    };
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0 1\r\na=msid-semantic: WMS *\r\n{}{}",
        media("audio", 0, 111, audio, 1111),
        media("video", 1, 96, video, 2222)
    )
}
