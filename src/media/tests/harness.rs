//! The in-memory test bench of the shard core: one [`ShardState`], its clients (`client.rs`:
//! real sans-IO `rtc` PeerConnections built from the load generator's kind of recipe — full
//! ICE, DTLS client, Opus/VP8/VP9, NACK, the RTCP tap), datagrams moved between them in memory,
//! and a fake clock that only moves when [`Bench::step`] says so. No sockets, no sleeps, no
//! threads.

use super::client::Client;
use crate::config::ShardLimits;
use crate::media::codecs::H264_FMTP;
use crate::media::peer::{MediaGrants, MediaMember, PeerKey};
use crate::media::state::ShardState;
use crate::protocol::{CodecCapability, MediaRequest, TrackKind};
use crate::rtp::connection::{codec, opus, vp8, Ice, Recipe};
use crate::rtp::rtcp_tap::{feedback, RtcpTap, RTCP_TAP_SLOT};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{Registry, Slot};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::unbounded_channel;

/// The fake clock's step per [`Bench::step`].
pub const TICK: Duration = Duration::from_millis(5);
/// The shard's one host candidate.
pub const SERVER: &str = "127.0.0.1:40000";

/// What a client's connection can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codecs {
    /// Opus, VP8 and VP9.
    OpusAndVp8,
    /// Opus and VP9 only: it cannot play VP8.
    OpusAndVp9,
    /// Opus, VP8, VP9 and H264 (packetization-mode 1, 42e01f), like a browser.
    All,
}

/// Which datagrams the network loses: called with `true` for a datagram toward a client,
/// `false` toward the server.
pub type LossRule = Box<dyn FnMut(bool, &[u8]) -> bool>;

/// A rule that loses `percent` % of the datagrams each way, decided by a generator seeded
/// with `seed` so that a failing seed replays exactly (xorshift64*).
pub fn random_loss(percent: u64, seed: u64) -> LossRule {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Box::new(move |_, _| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % 100 < percent
    })
}

/// The shard core, its clients and the fake clock.
pub struct Bench {
    pub now: Instant,
    pub state: ShardState,
    pub server: SocketAddr,
    pub clients: Vec<Client>,
    /// Datagrams the network loses, both ways (none by default).
    pub loss: Option<LossRule>,
    /// Clients that join from now on negotiate the RFC 6464 audio-level extension.
    pub audio_levels: bool,
    /// Clients that join from now on negotiate RTX and transport-cc, and send TWCC feedback
    /// for what they receive, like browsers (off by default).
    pub twcc: bool,
    /// Header extensions the next clients to join register (none by default).
    pub extensions: Vec<(&'static str, RtpCodecKind)>,
    /// The DTLS-SRTP profiles the next clients to join offer (empty: the stack's default,
    /// AES-128-GCM first; Chromium offers AES-CM-80 first).
    pub srtp_profiles: Vec<SrtpProtectionProfile>,
    next_key: PeerKey,
}

fn client_addr(key: PeerKey) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50_000 + key as u16))
}

fn unix_epoch() -> Duration {
    Duration::from_secs(1_800_000_000)
}

impl Bench {
    pub fn new() -> Self {
        Self::with_limits(ShardLimits::default())
    }

    /// A bench whose shard has `limits`.
    pub fn with_limits(limits: ShardLimits) -> Self {
        let now = Instant::now();
        let server: SocketAddr = SERVER.parse().expect("address");
        Self {
            now,
            state: ShardState::with_limits(vec![server], now, unix_epoch(), limits),
            server,
            clients: Vec::new(),
            loss: None,
            audio_levels: false,
            twcc: false,
            extensions: Vec::new(),
            srtp_profiles: Vec::new(),
            next_key: 1,
        }
    }

    /// The address the next client to join will send from.
    pub fn next_client_addr(&self) -> SocketAddr {
        client_addr(self.next_key)
    }

    /// A settled two-party call in "room": alice publishes `kinds` to bob; returns the bench
    /// and both indices.
    pub fn call(kinds: &[TrackKind]) -> (Self, usize, usize) {
        let mut bench = Self::new();
        let alice = bench.join("room", "alice");
        let bob = bench.join("room", "bob");
        bench.publish(alice, kinds);
        bench.settle();
        (bench, alice, bob)
    }

    /// [`Bench::call`] with audio only, and the id of alice's track as bob knows it.
    pub fn audio_call() -> (Self, usize, usize, String) {
        let (bench, alice, bob) = Self::call(&[TrackKind::Audio]);
        let audio = bench.clients[bob].track_id("alice", TrackKind::Audio);
        (bench, alice, bob, audio)
    }

    /// The server-side ICE ufrag of client `c`'s current connection.
    pub fn server_ufrag(&self, c: usize) -> String {
        let peer = self.state.peer(self.clients[c].key).expect("peer");
        peer.ufrag.clone()
    }

    /// A client joins `room` with all grants and both codecs; returns its index.
    pub fn join(&mut self, room: &str, peer_id: &str) -> usize {
        self.join_with(room, peer_id, MediaGrants::default(), Codecs::OpusAndVp8)
    }

    /// A client joins `room` with `grants`, able to receive `codecs`; returns its index.
    pub fn join_with(
        &mut self,
        room: &str,
        peer_id: &str,
        grants: MediaGrants,
        codecs: Codecs,
    ) -> usize {
        self.join_declaring(room, peer_id, grants, codecs, None)
    }

    /// [`Bench::join_with`], the join declaring `receive` (`join.receive.codecs`).
    pub fn join_declaring(
        &mut self,
        room: &str,
        peer_id: &str,
        grants: MediaGrants,
        codecs: Codecs,
        receive: Option<Vec<CodecCapability>>,
    ) -> usize {
        let key = self.next_key;
        self.next_key += 1;
        let addr = client_addr(key);
        let vp9 = (
            codec("video/VP9", 90_000, 0, "profile-id=0", 98),
            RtpCodecKind::Video,
        );
        let h264 = (
            codec("video/H264", 90_000, 0, H264_FMTP, 102),
            RtpCodecKind::Video,
        );
        let codec_list = match codecs {
            Codecs::OpusAndVp8 => vec![opus(""), vp8(), vp9],
            Codecs::OpusAndVp9 => vec![opus(""), vp9],
            Codecs::All => vec![opus(""), vp8(), vp9, h264],
        };

        let mut recipe = Recipe::new(codec_list, Ice::Full, vec![addr]);
        recipe.nack_history = Some(1024);
        recipe.extensions = self.extensions.clone();
        recipe.srtp_profiles = self.srtp_profiles.clone();
        if self.audio_levels {
            recipe
                .extensions
                .push((AUDIO_LEVEL_URI, RtpCodecKind::Audio));
        }
        if self.twcc {
            recipe.rtx = true;
            recipe.twcc_receiver = true;
            recipe.extensions.extend([
                (TRANSPORT_CC_URI, RtpCodecKind::Audio),
                (TRANSPORT_CC_URI, RtpCodecKind::Video),
            ]);
        }
        recipe.interceptors =
            Registry::new().with(Slot::from(RTCP_TAP_SLOT), RtcpTap::new(feedback));
        let (pc, _) = recipe.build(self.now).expect("client connection");
        let (tx, rx) = unbounded_channel();
        let member = MediaMember {
            room: room.to_owned(),
            peer_id: peer_id.to_owned(),
            grants,
            events: tx,
            receive,
        };
        self.state.join(key, member, self.now);
        let client = Client::new(key, peer_id, addr, pc, rx, self.now);
        self.clients.push(client);
        self.turn();
        self.clients.len() - 1
    }

    /// Client `c` sends a media request.
    pub fn request(&mut self, c: usize, request: MediaRequest) {
        let key = self.clients[c].key;
        self.state.handle_request(key, request, self.now);
        self.turn();
    }

    /// Client `c` leaves (its signaling session ended).
    pub fn leave(&mut self, c: usize) {
        let key = self.clients[c].key;
        self.state.leave(key, self.now);
        self.turn();
    }

    /// Client `c` stops sending its track of `kind` (removeTrack) and re-offers.
    pub fn unpublish(&mut self, c: usize, kind: TrackKind) {
        let now = self.now;
        let client = &mut self.clients[c];
        for t in client.out.iter().filter(|t| t.kind == kind) {
            client.pc.remove_track(t.sender).expect("remove track");
        }
        client.out.retain(|t| t.kind != kind);
        let sdp = client.offer(now);
        let tracks = client.declared_sources();
        self.request(c, MediaRequest::Offer { sdp, tracks });
    }

    /// Client `c` offers a receive-only video section: its leg declares its video codecs.
    pub fn declare_video(&mut self, c: usize) {
        let now = self.now;
        let client = &mut self.clients[c];
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            streams: vec![],
            send_encodings: vec![],
        };
        client
            .pc
            .add_transceiver_from_kind(RtpCodecKind::Video, Some(init))
            .expect("transceiver");
        let sdp = client.offer(now);
        self.request(
            c,
            MediaRequest::Offer {
                sdp,
                tracks: vec![],
            },
        );
    }

    /// Client `c` adds send-only tracks (`kinds`) and offers them.
    pub fn publish(&mut self, c: usize, kinds: &[TrackKind]) {
        let now = self.now;
        let client = &mut self.clients[c];
        for kind in kinds {
            client.add_track(*kind);
        }
        let sdp = client.offer(now);
        let tracks = client.declared_sources();
        self.request(c, MediaRequest::Offer { sdp, tracks });
    }

    /// Ends a shard turn: the state processes what it got and its datagrams reach the clients.
    fn turn(&mut self) {
        self.state.finish_turn(self.now);
        let transmits: Vec<_> = self.state.drain_transmits().collect();
        for t in transmits {
            if self.loss.as_mut().is_some_and(|lose| lose(true, &t.data)) {
                continue;
            }
            let Some(client) = self
                .clients
                .iter_mut()
                .find(|c| c.addr == t.to && !c.offline)
            else {
                continue;
            };
            if client.dtls_repeats.is_repeat(&t.data) {
                continue;
            }
            if client.drop_rtp > 0 && t.data.len() > 100 && matches!(t.data[0], 128..=191) {
                client.drop_rtp -= 1;
                continue;
            }
            let msg = TaggedBytesMut {
                now: self.now,
                transport: TransportContext {
                    local_addr: t.to,
                    peer_addr: t.local,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: t.data,
            };
            let _ = client.pc.handle_read(msg);
        }
    }

    /// One tick of the fake clock: clients act on server events and timers, their datagrams
    /// reach the state, the state's timers run, and its datagrams reach the clients.
    pub fn step(&mut self) {
        self.now += TICK;
        let now = self.now;
        let mut requests = Vec::new();
        for client in &mut self.clients {
            for request in client.handle_events(now) {
                requests.push((client.key, request));
            }
        }
        for (key, request) in requests {
            self.state.handle_request(key, request, now);
        }
        for client in &mut self.clients {
            client.drive(now);
            while let Some(msg) = client.pc.poll_write() {
                if client.offline
                    || (client.drop_dtls && matches!(msg.message[..], [20..=63, ..]))
                    || self
                        .loss
                        .as_mut()
                        .is_some_and(|lose| lose(false, &msg.message))
                {
                    continue;
                }
                client.last_sent = now;
                self.state
                    .handle_datagram(msg.transport.peer_addr, client.addr, &msg.message, now);
            }
            client.next_timeout = client.pc.poll_timeout();
        }
        if self.state.poll_timeout().is_some_and(|t| t <= now) {
            self.state.handle_timeout(now);
        }
        self.turn();
        for client in &mut self.clients {
            client.drain(now);
        }
    }

    /// Steps until `done` holds; panics after `max` steps (fake time: `max * TICK`).
    pub fn run_until(&mut self, max: usize, what: &str, done: impl Fn(&Bench) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        if !done(self) {
            for c in &self.clients {
                let server = self.state.peer(c.key);
                eprintln!(
                    "{}: connected {} local offer {} remote offer {} | server: needs offer {:?} local offer {:?} errors {:?}",
                    c.peer_id,
                    c.connected,
                    c.pc.pending_local_description().is_some(),
                    c.pc.pending_remote_description().is_some(),
                    server.map(|p| p.needs_offer),
                    server.map(|p| p.pc.pending_local_description().is_some()),
                    c.errors(),
                );
            }
            panic!("not reached after {max} steps: {what}");
        }
    }

    /// Steps `n` times.
    pub fn run(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Every connected client that publishes sends `n` packets per track, one step apart.
    pub fn send(&mut self, n: usize) {
        for _ in 0..n {
            let now = self.now;
            for client in &mut self.clients {
                client.send_packet(now, None);
            }
            self.step();
        }
    }

    /// Client `c` sends `n` packets on its track of `kind`, one step apart.
    pub fn send_from(&mut self, c: usize, kind: TrackKind, n: usize) {
        for _ in 0..n {
            let now = self.now;
            self.clients[c].send_packet(now, Some(kind));
            self.step();
        }
    }

    /// Runs until every client's connection is up and no offer is outstanding anywhere, then
    /// has every publisher send two packets per track (a track enters the room with its first
    /// packet) and runs until that negotiation settles too.
    pub fn settle(&mut self) {
        self.stabilize();
        self.send(2);
        self.stabilize();
    }

    fn stable(&self) -> bool {
        self.clients.iter().all(|c| {
            (c.connected || c.pc.remote_description().is_none())
                && c.pc.pending_local_description().is_none()
                && c.pc.pending_remote_description().is_none()
                && self
                    .state
                    .peer(c.key)
                    .is_none_or(|p| !p.needs_offer && p.pc.pending_local_description().is_none())
        })
    }

    /// Runs until every client is connected and no offer is outstanding anywhere.
    pub fn stabilize(&mut self) {
        self.run_until(600, "every client connected and negotiated", Bench::stable);
        self.run(4);
    }
}
