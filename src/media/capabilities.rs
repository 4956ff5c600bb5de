//! What one leg can receive, known before the server creates a send transceiver on it: the codecs
//! the client declared at `join` (or the default every WebRTC browser decodes), narrowed to what
//! the WebRTC stack locked the connection to. The stack (rtc 0.21) fixes a connection's codecs of
//! a kind from the first m-line of that kind in the first remote description that has one, and
//! refuses any sender outside them afterwards; [`ReceiveCaps::learn`] mirrors that rule, so a
//! track is subscribed only when the leg can carry it, and `playable` does not flip later.

use super::codecs::{codec_matches, server_codecs};
use super::sdp::first_section_codecs;
use crate::protocol::CodecCapability;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sdp::description::session::SessionDescription;

/// The codecs assumed for a client that declares nothing: the ones RFC 7874 and RFC 7742 make
/// mandatory for WebRTC endpoints (Opus, VP8, H264 constrained baseline).
const DEFAULT_MIMES: [&str; 3] = ["audio/opus", "video/vp8", "video/h264"];

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct ReceiveCaps {
    /// The server's codecs the client declared at `join`; `None`: it declared nothing.
    declared: Option<Vec<RTCRtpCodecParameters>>,
    /// The server's codecs the stack locked the connection to, per kind, once it did.
    audio_lock: Option<Vec<RTCRtpCodecParameters>>,
    video_lock: Option<Vec<RTCRtpCodecParameters>>,
}

fn kind_of(codec: &RTCRtpCodec) -> RtpCodecKind {
    if codec.mime_type.to_ascii_lowercase().starts_with("audio/") {
        RtpCodecKind::Audio
    } else {
        RtpCodecKind::Video
    }
}

/// The server's codecs (at its payload types) that match one of `codecs`.
fn server_matching(codecs: &[RTCRtpCodec]) -> Vec<RTCRtpCodecParameters> {
    server_codecs()
        .into_iter()
        .map(|(c, _)| c)
        .filter(|s| codecs.iter().any(|c| codec_matches(&s.rtp_codec, c)))
        .collect()
}

impl ReceiveCaps {
    /// The capabilities of a new leg: `declared` at `join`, or the default.
    pub fn new(declared: Option<&[CodecCapability]>) -> Self {
        let declared = declared.map(|list| {
            let codecs: Vec<RTCRtpCodec> = list
                .iter()
                .map(|c| RTCRtpCodec {
                    mime_type: c.mime_type.clone(),
                    sdp_fmtp_line: c.sdp_fmtp_line.clone().unwrap_or_default(),
                    ..Default::default()
                })
                .collect();
            server_matching(&codecs)
        });
        Self {
            declared,
            audio_lock: None,
            video_lock: None,
        }
    }

    /// What the client declared (only the codecs the server knows), to rebuild the leg with.
    pub fn declared(&self) -> Option<Vec<CodecCapability>> {
        self.declared.as_ref().map(|list| {
            list.iter()
                .map(|c| CodecCapability {
                    mime_type: c.rtp_codec.mime_type.clone(),
                    sdp_fmtp_line: Some(c.rtp_codec.sdp_fmtp_line.clone())
                        .filter(|f| !f.is_empty()),
                })
                .collect()
        })
    }

    fn lock(&self, kind: RtpCodecKind) -> Option<&Vec<RTCRtpCodecParameters>> {
        match kind {
            RtpCodecKind::Audio => self.audio_lock.as_ref(),
            _ => self.video_lock.as_ref(),
        }
    }

    /// The codecs of `kind` this leg can be sent, at the server's payload types.
    pub fn codecs(&self, kind: RtpCodecKind) -> Vec<RTCRtpCodecParameters> {
        let of_kind = |c: &RTCRtpCodecParameters| kind_of(&c.rtp_codec) == kind;
        let in_lock = |c: &RTCRtpCodecParameters| {
            self.lock(kind)
                .is_none_or(|l| l.iter().any(|x| codec_matches(&x.rtp_codec, &c.rtp_codec)))
        };
        match (&self.declared, self.lock(kind)) {
            (Some(declared), _) => declared
                .iter()
                .filter(|c| of_kind(c) && in_lock(c))
                .cloned()
                .collect(),
            (None, Some(lock)) => lock.clone(),
            (None, None) => server_codecs()
                .into_iter()
                .map(|(c, _)| c)
                .filter(|c| of_kind(c))
                .filter(|c| {
                    let mime = c.rtp_codec.mime_type.to_ascii_lowercase();
                    DEFAULT_MIMES.contains(&mime.as_str())
                })
                .collect(),
        }
    }

    /// Whether a track encoded as `codec` can be sent on this leg.
    pub fn can_receive(&self, codec: &RTCRtpCodec) -> bool {
        self.codecs(kind_of(codec))
            .iter()
            .any(|c| codec_matches(codec, &c.rtp_codec))
    }

    /// The codec list of a send transceiver for a track encoded as `codec`: that codec first,
    /// then every other codec of its kind the leg can receive. Offering them all on every m-line
    /// makes the client's first answer declare them all, so the stack's lock keeps them.
    pub fn preferences(&self, codec: &RTCRtpCodec) -> Vec<RTCRtpCodecParameters> {
        let mut list = self.codecs(kind_of(codec));
        list.sort_by_key(|c| !codec_matches(codec, &c.rtp_codec));
        list
    }

    /// A remote description was applied: a kind seen for the first time is locked to the
    /// codecs of its first m-line (the stack's rule). Returns whether anything was locked.
    pub fn learn(&mut self, parsed: &SessionDescription) -> bool {
        let mut changed = false;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            if self.lock(kind).is_some() {
                continue;
            }
            let Some(codecs) = first_section_codecs(parsed, kind) else {
                continue;
            };
            let locked = Some(server_matching(&codecs));
            match kind {
                RtpCodecKind::Audio => self.audio_lock = locked,
                _ => self.video_lock = locked,
            }
            changed = true;
        }
        changed
    }

    /// The connection was replaced by a fresh one: nothing is locked any more.
    pub fn forget_locks(&mut self) {
        self.audio_lock = None;
        self.video_lock = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codecs::H264_FMTP;

    fn cap(mime: &str, fmtp: Option<&str>) -> CodecCapability {
        CodecCapability {
            mime_type: mime.into(),
            sdp_fmtp_line: fmtp.map(str::to_owned),
        }
    }

    fn codec(mime: &str, fmtp: &str) -> RTCRtpCodec {
        RTCRtpCodec {
            mime_type: mime.into(),
            sdp_fmtp_line: fmtp.into(),
            ..Default::default()
        }
    }

    fn parse(sdp: &str) -> SessionDescription {
        SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp.as_bytes())).expect("sdp")
    }

    #[test]
    fn the_default_is_opus_vp8_and_h264_constrained_baseline() {
        let caps = ReceiveCaps::new(None);
        assert!(caps.can_receive(&codec("audio/opus", "")));
        assert!(caps.can_receive(&codec("video/VP8", "")));
        assert!(caps.can_receive(&codec("video/H264", H264_FMTP)));
        assert!(!caps.can_receive(&codec("video/VP9", "profile-id=0")));
        assert!(!caps.can_receive(&codec("video/AV1", "")));
        assert_eq!(caps.declared(), None);
    }

    #[test]
    fn declared_codecs_are_kept_when_the_server_knows_them() {
        let h264 = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
        let caps = ReceiveCaps::new(Some(&[
            cap("audio/opus", None),
            cap("video/VP9", Some("profile-id=0")),
            cap(
                "video/H264",
                Some("packetization-mode=1;profile-level-id=640c1f"),
            ),
            cap("video/H265", None),
            cap("video/rtx", None),
        ]));
        assert!(caps.can_receive(&codec("video/VP9", "profile-id=0")));
        assert!(!caps.can_receive(&codec("video/VP8", "")));
        assert!(
            !caps.can_receive(&codec("video/H264", h264)),
            "another profile"
        );
        assert_eq!(caps.declared().map(|d| d.len()), Some(2));
        let prefs = caps.preferences(&codec("video/VP9", ""));
        assert_eq!(prefs.len(), 1);
    }

    #[test]
    fn the_first_section_of_a_kind_locks_it() {
        let mut caps = ReceiveCaps::new(None);
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n";
        assert!(caps.learn(&parse(sdp)));
        assert!(caps.can_receive(&codec("video/VP8", "")));
        assert!(!caps.can_receive(&codec("video/H264", H264_FMTP)));
        assert!(
            caps.can_receive(&codec("audio/opus", "")),
            "audio is not locked"
        );
        let prefs = caps.preferences(&codec("video/VP8", ""));
        assert_eq!(prefs.len(), 1);
        caps.forget_locks();
        assert!(caps.can_receive(&codec("video/H264", H264_FMTP)));
    }

    #[test]
    fn preferences_put_the_tracks_codec_first() {
        let caps = ReceiveCaps::new(None);
        let prefs = caps.preferences(&codec("video/H264", H264_FMTP));
        let mimes: Vec<_> = prefs
            .iter()
            .map(|c| c.rtp_codec.mime_type.as_str())
            .collect();
        assert_eq!(mimes, ["video/H264", "video/VP8"]);
    }
}
