//! One synthetic participant on the load generator's side: its own UDP socket and a sans-IO
//! `rtc` PeerConnection (full ICE, DTLS client), the Chorus negotiation rules (ignore a server
//! offer while our own is outstanding), paced synthetic VP8/Opus publishing with a keyframe on
//! every PLI, and receive measurement. Driven by a worker thread; it never blocks or sleeps.

use super::frames::FrameWatch;
use super::health::{LegView, Watchdog};
use super::layers::{layer_of_tag, layer_size, picture_id, Continuity, LayerTotals, RIDS};
use super::measure::{Totals, TrackReceive};
pub use super::out_track::PublishSpec;
use super::out_track::{self, OutTrack, AUDIO_PAYLOAD};
use super::payload::{self, PayloadCodec};
use super::recipe::{build_pc, PcShape};
use super::rid::layer_stamp;
use crate::net::udp::{self, SendQueue};
use crate::protocol::TrackKind;
use crate::protocol::{IceCandidate, MediaEvent, TrackSource, TrackSourceInfo};
use crate::rtp::dtls_repeat::RepeatFilter;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What a synthetic participant asks of its signaling task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A protocol message to send as is.
    Json(String),
    /// The media leg is beyond saving (why): leave and join again with a fresh connection.
    Reconnect(&'static str),
}

/// How a synthetic participant receives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiveSpec {
    /// Its name in the room (the report's per-subscriber lines).
    pub name: String,
    /// The simulcast layer it asks for (`--subscriber-layers`).
    pub want_layer: Option<u8>,
    /// It negotiates transport-cc and sends TWCC feedback (on unless `--no-twcc`).
    pub twcc: bool,
}

const KEYFRAME_INTERVAL: Duration = Duration::from_secs(3);
/// Most packets one track may send in one loop turn when it is behind schedule.
const MAX_BURST: usize = 16;

/// A synthetic participant.
pub struct SynthPeer {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub pc: RTCPeerConnection,
    pub queue: SendQueue,
    signal: UnboundedSender<Outbound>,
    peer_id: String,
    out: Vec<OutTrack>,
    publish: Option<PublishSpec>,
    pub incoming: HashMap<String, TrackReceive>,
    pending_candidates: Vec<IceCandidate>,
    /// Playable tracks of other participants announced to us.
    announced: std::collections::HashSet<String>,
    /// Track announcements and withdrawals so far (the watchdog restarts its clock on each).
    announcements: u64,
    pub next_timeout: Option<Instant>,
    /// When the next paced packet is due.
    pub next_pace: Option<Instant>,
    pub connected: bool,
    /// DTLS/SRTP came up and the connection has not failed or closed since: media is sent,
    /// also while ICE calls the link `disconnected` (a browser keeps sending then too).
    pub media_up: bool,
    /// The connection state reached `failed`.
    pub failed: bool,
    /// The last ICE or connection state change, for the give-up log line.
    pub last_state: String,
    watchdog: Watchdog,
    /// Holds back the server's repeated DTLS flight 4 so our flight 5 is retransmitted.
    pub dtls_repeats: RepeatFilter,
    joined_at: Instant,
    pub first_packet_ms: Option<f64>,
    pub packets_sent: u64,
    pub keyframes_sent: u64,
    pub plis_received: u64,
    pub failures: Vec<String>,
    /// The simulcast layer this subscriber asks for (`--subscriber-layers`).
    pub want_layer: Option<u8>,
    /// Its name in the room.
    pub name: String,
    /// What it saw of each received video track as a viewer (by track id).
    pub frames: HashMap<String, FrameWatch>,
    /// Received RTP packets that carry no probe payload (padding the server probes with).
    pub padding_packets: u64,
    /// Simulcast layers the server asked this publisher to pause (dynacast), a bit per layer.
    paused_layers: u32,
    continuity: HashMap<String, Continuity>,
    layer_totals: LayerTotals,
}

impl SynthPeer {
    /// A participant bound to a fresh UDP socket on `bind`.
    pub fn new(
        bind: std::net::IpAddr,
        peer_id: String,
        publish: Option<PublishSpec>,
        signal: UnboundedSender<Outbound>,
        joined_at: Instant,
        receive: ReceiveSpec,
    ) -> Result<Self, String> {
        let socket = udp::bind(SocketAddr::new(bind, 0)).map_err(|e| e.to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let now = Instant::now();
        let shape = PcShape {
            simulcast: publish.is_some_and(|p| p.simulcast && p.video),
            publisher: publish.is_some(),
            twcc: receive.twcc,
        };
        let pc = build_pc(local, shape, now).map_err(|e| e.to_string())?;
        let mut peer = Self {
            socket,
            local,
            pc,
            queue: SendQueue::default(),
            signal,
            peer_id,
            out: Vec::new(),
            publish,
            incoming: HashMap::new(),
            pending_candidates: Vec::new(),
            announced: Default::default(),
            announcements: 0,
            next_timeout: Some(now),
            next_pace: None,
            connected: false,
            media_up: false,
            failed: false,
            last_state: "new".into(),
            watchdog: Watchdog::default(),
            dtls_repeats: RepeatFilter::for_client(),
            joined_at,
            first_packet_ms: None,
            packets_sent: 0,
            keyframes_sent: 0,
            paused_layers: 0,
            plis_received: 0,
            failures: Vec::new(),
            want_layer: receive.want_layer,
            name: receive.name,
            frames: HashMap::new(),
            padding_packets: 0,
            continuity: HashMap::new(),
            layer_totals: LayerTotals::default(),
        };
        if let Some(spec) = publish {
            peer.start_publishing(spec, now)?;
        }
        Ok(peer)
    }

    fn send_json(&self, value: serde_json::Value) {
        let _ = self.signal.send(Outbound::Json(value.to_string()));
    }

    fn add_out_track(
        &mut self,
        video: bool,
        spec: &PublishSpec,
        now: Instant,
    ) -> Result<(), String> {
        let tracks = out_track::add(&mut self.pc, &self.peer_id, video, spec, now)?;
        self.out.extend(tracks);
        Ok(())
    }

    fn start_publishing(&mut self, spec: PublishSpec, now: Instant) -> Result<(), String> {
        if spec.audio {
            self.add_out_track(false, &spec, now)?;
        }
        if spec.video {
            self.add_out_track(true, &spec, now)?;
        }
        let offer = self.pc.create_offer(None).map_err(|e| e.to_string())?;
        self.pc
            .set_local_description(now, offer)
            .map_err(|e| e.to_string())?;
        let mut tracks = Vec::new();
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            if let Some(t) = self.pc.rtp_transceiver(id) {
                if let (Some(mid), Some(sender)) = (t.mid().clone(), t.sender()) {
                    let video = self.out.iter().any(|o| o.sender == sender && o.video);
                    tracks.push(TrackSourceInfo {
                        mid,
                        source: if video {
                            TrackSource::Camera
                        } else {
                            TrackSource::Microphone
                        },
                        muted: false,
                    });
                }
            }
        }
        let sdp = self
            .pc
            .local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        self.send_json(serde_json::json!({"type": "offer", "sdp": sdp, "tracks": tracks}));
        Ok(())
    }

    /// A media event from the server.
    pub fn on_event(&mut self, event: MediaEvent, now: Instant) {
        let result = match event {
            MediaEvent::Offer { sdp, .. } => self.on_offer(sdp, now),
            MediaEvent::Answer { sdp } => RTCSessionDescription::answer(sdp)
                .and_then(|a| self.pc.set_remote_description(now, a))
                .map_err(|e| e.to_string())
                .map(|_| self.flush_candidates()),
            MediaEvent::Candidate { candidate } => {
                self.pending_candidates.push(candidate);
                self.flush_candidates();
                Ok(())
            }
            MediaEvent::TrackPublished(info) => {
                if info.peer_id != self.peer_id && info.playable {
                    self.announcements += 1;
                    if let (Some(layer), TrackKind::Video) = (self.want_layer, info.kind) {
                        self.send_json(serde_json::json!({
                            "type": "video-size", "trackId": info.track_id, "layer": layer,
                        }));
                    }
                    self.announced.insert(info.track_id);
                }
                Ok(())
            }
            MediaEvent::TrackUnpublished { track_id, .. } => {
                self.announcements += 1;
                self.announced.remove(&track_id);
                self.incoming.remove(&track_id);
                Ok(())
            }
            MediaEvent::Error { code, .. } => Err(code.as_str().to_owned()),
            MediaEvent::PublishLayers { paused, .. } => {
                self.pause_layers(&paused);
                Ok(())
            }
            MediaEvent::Muted { .. } | MediaEvent::ActiveSpeakers { .. } => Ok(()),
        };
        if let Err(e) = result {
            self.failures.push(e);
        }
    }

    fn on_offer(&mut self, sdp: String, now: Instant) -> Result<(), String> {
        if self.pc.pending_local_description().is_some() {
            return Ok(()); // glare: the server is polite and re-offers
        }
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(|e| e.to_string())?;
        let answer = self.pc.create_answer(None).map_err(|e| e.to_string())?;
        self.pc
            .set_local_description(now, answer)
            .map_err(|e| e.to_string())?;
        let sdp = self
            .pc
            .local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        self.send_json(serde_json::json!({"type": "answer", "sdp": sdp}));
        self.flush_candidates();
        Ok(())
    }

    fn flush_candidates(&mut self) {
        if self.pc.remote_description().is_none() {
            return;
        }
        for c in std::mem::take(&mut self.pending_candidates) {
            let _ = self.pc.add_remote_candidate(RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_m_line_index,
                username_fragment: c.username_fragment,
                url: None,
            });
        }
    }

    /// Received media and feedback.
    pub fn on_message(&mut self, message: rtc::peer_connection::message::RTCMessage, now: Instant) {
        use rtc::peer_connection::message::RTCMessage;
        match message {
            RTCMessage::RtpPacket(track_id, packet) => {
                let arrival = payload::unix_micros();
                let probe = payload::parse(&packet.payload, true)
                    .or_else(|| payload::parse(&packet.payload, false));
                let Some(probe) = probe else {
                    self.padding_packets += 1; // padding (probing) or unknown: not media
                    return;
                };
                if self.first_packet_ms.is_none() {
                    self.first_packet_ms =
                        Some(now.saturating_duration_since(self.joined_at).as_secs_f64() * 1000.0);
                }
                let video = packet.payload.len() > AUDIO_PAYLOAD + 8;
                let layer = layer_of_tag(probe.tag);
                if video {
                    let (marker, ts) = (packet.header.marker, packet.header.timestamp);
                    let watch = self.frames.entry(track_id.clone()).or_default();
                    watch.on_packet(layer, marker, ts, packet.payload.len(), arrival);
                }
                let key = match layer {
                    Some(l) => {
                        let seq = packet.header.sequence_number;
                        let (size, pid) = (packet.payload.len(), picture_id(&packet.payload));
                        let totals = &mut self.layer_totals;
                        totals.record(l, size, self.want_layer);
                        let continuity = self.continuity.entry(track_id.clone()).or_default();
                        continuity.record(seq, pid, totals);
                        // Each layer numbers its probes: measured per layer.
                        format!("{track_id}/{l}")
                    }
                    None => track_id,
                };
                self.incoming
                    .entry(key)
                    .or_insert_with(|| TrackReceive::new(video))
                    .record(
                        probe.counter,
                        probe.sent_unix_us,
                        packet.header.timestamp,
                        arrival,
                        packet.payload.len(),
                    );
            }
            RTCMessage::RtcpPacket(_, packets) => {
                for p in &packets {
                    let any = p.as_any();
                    let ssrc = if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                        Some(pli.media_ssrc)
                    } else {
                        any.downcast_ref::<FullIntraRequest>()
                            .and_then(|f| f.fir.first().map(|e| e.ssrc))
                    };
                    if let Some(ssrc) = ssrc {
                        self.plis_received += 1;
                        for t in self.out.iter_mut().filter(|t| t.ssrc == ssrc) {
                            t.keyframe_pending = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Sends the packets that are due; returns when the next one is.
    pub fn pace(&mut self, now: Instant) -> Option<Instant> {
        if !self.media_up {
            return None;
        }
        let unix_now = payload::unix_micros();
        let mut next: Option<Instant> = None;
        for i in 0..self.out.len() {
            if self.out[i].payload_type.is_none() {
                let sender = self.out[i].sender;
                let pt = self.pc.rtp_sender(sender).and_then(|mut s| {
                    s.get_parameters()
                        .rtp_parameters
                        .codecs
                        .first()
                        .map(|c| c.payload_type)
                });
                self.out[i].payload_type = pt;
                if self.out[i].layer.is_some() {
                    self.out[i].stamp = layer_stamp(&mut self.pc, sender);
                }
            }
            let mut burst = 0;
            while self.out[i].next_send <= now && burst < MAX_BURST {
                burst += 1;
                self.send_one(i, now, unix_now);
            }
            if self.out[i].next_send < now {
                self.out[i].next_send = now; // too far behind: skip rather than flood
            }
            let due = self.out[i].next_send;
            next = Some(next.map_or(due, |n: Instant| n.min(due)));
        }
        next
    }

    /// Dynacast: stops sending the layers named in `paused`; a layer that resumes starts
    /// with a keyframe, as a browser's encoder does.
    fn pause_layers(&mut self, paused: &[String]) {
        let mask = RIDS
            .iter()
            .enumerate()
            .filter(|(_, rid)| paused.iter().any(|p| p == *rid))
            .fold(0u32, |m, (i, _)| m | 1 << i);
        let resumed = self.paused_layers & !mask;
        for t in &mut self.out {
            if t.layer.is_some_and(|l| l < 32 && resumed & (1 << l) != 0) {
                t.keyframe_pending = true;
            }
        }
        self.paused_layers = mask;
    }

    fn send_one(&mut self, i: usize, now: Instant, unix_now: u64) {
        let paused = self.paused_layers;
        let t = &mut self.out[i];
        t.next_send += t.interval;
        let Some(pt) = t.payload_type else {
            return;
        };
        if t.layer.is_some_and(|l| l < 32 && paused & (1 << l) != 0) {
            return; // dynacast: nobody receives this layer
        }
        let codec = if t.video {
            let keyframe = t.keyframe_pending
                || now.saturating_duration_since(t.last_keyframe) >= KEYFRAME_INTERVAL;
            if keyframe {
                t.keyframe_pending = false;
                t.last_keyframe = now;
                self.keyframes_sent += 1;
            }
            t.picture_id = t.picture_id.wrapping_add(1) & 0x7FFF;
            t.tl0 = t.tl0.wrapping_add(1);
            match t.layer {
                Some(layer) => PayloadCodec::Vp8Layer {
                    picture_id: t.picture_id,
                    tl0: t.tl0,
                    keyframe,
                    size: layer_size(layer),
                },
                None => PayloadCodec::Vp8 {
                    picture_id: t.picture_id,
                    keyframe,
                },
            }
        } else {
            PayloadCodec::Opus
        };
        let body = payload::build(codec, t.tag, t.counter, unix_now, t.size);
        let mut packet = rtc::rtp::Packet::default();
        packet.header.version = 2;
        packet.header.marker = true;
        packet.header.payload_type = pt;
        packet.header.sequence_number = t.seq;
        packet.header.timestamp = t.ts;
        packet.header.ssrc = t.ssrc;
        packet.payload = body;
        if let (Some(layer), Some((mid_id, rid_id, mid))) = (t.layer, &t.stamp) {
            let rid = bytes::Bytes::from_static(RIDS[layer].as_bytes());
            let _ = packet.header.set_extension(*mid_id, mid.clone());
            let _ = packet.header.set_extension(*rid_id, rid);
        }
        t.seq = t.seq.wrapping_add(1);
        t.ts = t.ts.wrapping_add(t.ts_step);
        t.counter = t.counter.wrapping_add(1);
        let sender = t.sender;
        if let Some(mut s) = self.pc.rtp_sender(sender) {
            if s.write_rtp(now, packet).is_ok() {
                self.packets_sent += 1;
            }
        }
    }

    /// The earliest moment this peer needs servicing without new input.
    pub fn next_wake(&self) -> Option<Instant> {
        [
            self.next_timeout,
            self.next_pace,
            self.watchdog.next_check(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Announced tracks of others that deliver media here.
    fn tracks_receiving(&self) -> usize {
        let receiving = |id: &String| {
            self.incoming.iter().any(|(k, t)| {
                t.packets > 0
                    && k.strip_prefix(id.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        };
        self.announced.iter().filter(|id| receiving(id)).count()
    }

    /// Runs the watchdog: asks the signaling task to reconnect once the leg failed or stayed
    /// unhealthy too long.
    pub fn watch(&mut self, now: Instant) {
        let leg = LegView {
            publisher: self.publish.is_some(),
            connected: self.connected,
            failed: self.failed,
            tracks_announced: self.announced.len(),
            tracks_receiving: self.tracks_receiving(),
            announcements: self.announcements,
        };
        if let Some(why) = self.watchdog.check(leg, now) {
            tracing::info!(
                peer = %self.peer_id,
                why = why.as_str(),
                state = %self.last_state,
                remote_description = self.pc.remote_description().is_some(),
                announced = leg.tracks_announced,
                receiving = leg.tracks_receiving,
                "media leg given up; reconnecting"
            );
            let _ = self.signal.send(Outbound::Reconnect(why.as_str()));
        }
    }

    /// This participant's contribution to the run totals.
    pub fn totals(&self) -> Totals {
        let receiving = self.tracks_receiving() as u64;
        Totals {
            peers_joined: 1,
            peers_connected: self.connected as u64,
            tracks_expected: self.announced.len() as u64,
            tracks_receiving: receiving,
            packets_sent: self.packets_sent,
            packets_received: self.incoming.values().map(|t| t.packets).sum(),
            bytes_received: self.incoming.values().map(|t| t.bytes).sum(),
            packets_expected: self.incoming.values().map(|t| t.expected()).sum(),
            packets_unique: self.incoming.values().map(|t| t.unique()).sum(),
            keyframes_sent: self.keyframes_sent,
            plis_received: self.plis_received,
            padding_received: self.padding_packets,
            layers: self.layer_totals.clone(),
        }
    }

    pub fn is_publisher(&self) -> bool {
        self.publish.is_some()
    }
}
