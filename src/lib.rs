//! Chorus: a self-hosted SFU (Selective Forwarding Unit) for group video calls. One WebSocket
//! per client carries signaling, room membership and chat; media flows over one WebRTC
//! PeerConnection per client to the server, which forwards RTP between room members. Clients of
//! the older peer-to-peer mesh protocol share the same `/ws` endpoint and have their frames
//! relayed unchanged.
//!
//! # Layers
//!
//! A module imports only from the layers below it; nothing runs back up and there are no
//! import cycles. From the ground up:
//!
//! 1. [`protocol`]: the wire vocabulary (messages, error codes, media events), no logic.
//! 2. [`net`] and [`rtp`]: shared I/O (UDP sockets, wake-ups, thread pinning and CPU time)
//!    and RTP/RTCP building blocks; [`rlimit`] (the open-file limit) and [`log_limit`]
//!    (per-peer limiting of repeated log lines) sit here too.
//! 3. [`metrics`]: the Prometheus registry, the crate's one histogram and the metrics-text
//!    reader. It only counts and depends on nothing but the protocol, so every layer above
//!    may record into it without an import running back up.
//! 4. [`auth`] (access tokens) and [`config`] (every flag and default, including the media
//!    engine's [`config::MediaConfig`]).
//! 5. [`room`]: rooms, membership, chat history, mesh routing.
//! 6. [`media`]: the SFU engine (shard threads, PeerConnections, forwarding).
//! 7. [`cluster`] (several nodes sharing rooms through Redis: registry, placement, the
//!    signaling relay) and [`signal`]: the per-connection session that speaks `/ws`.
//! 8. [`http`]: the axum server and [`spawn`] for in-process use.
//!
//! Beside them, [`loadtest`] (`chorus loadtest`) speaks the protocol and uses the lower layers,
//! never the engine; [`floor`] (`chorus bench-floor`) is a bare rewrite + AES-GCM + `sendmmsg`
//! forwarder on [`net`] alone, the floor the engine's per-packet cost is measured against; the async Rust test client (`client`) exists only with the `test-client`
//! cargo feature, which the tests and the bench turn on, so the shipped binary does not link
//! the async `webrtc` stack.
//!
//! # One packet's path
//!
//! An RTP packet from a publisher arrives on a shard's UDP socket ([`net::udp`], read in
//! batches) and is handled by the shard thread that owns it ([`media::shard`]). The shard
//! demultiplexes it to the publishing peer ([`media::demux`]), whose PeerConnection decrypts it
//! ([`media::peer`]). Its publication in the room ([`media::room`], [`media::publication`])
//! names the subscribers; the fan-out ([`media::forward`]) hands one copy to each subscriber's
//! leg, where the per-leg rewrite ([`media::rewrite`]) sets the SSRC, sequence number,
//! timestamp and payload type that subscriber negotiated. Each subscriber's PeerConnection
//! encrypts its copy and the shard sends it from the same socket. A room lives on one shard, so the path takes no lock
//! and no cross-thread hop.
//!
//! The crate root only declares modules and re-exports what the binary and the tests share;
//! it must not hold logic.

pub mod auth;
#[cfg(feature = "test-client")]
pub mod client;
pub mod cluster;
pub mod config;
pub mod floor;
pub mod http;
pub mod loadtest;
pub mod log_limit;
pub mod media;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod rlimit;
pub mod room;
pub mod rtp;
pub mod signal;

pub use config::Config;
pub use http::{spawn, DrainOutcome, RunningServer, ServerError};
