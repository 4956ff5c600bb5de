//! Chorus: a self-hosted SFU (Selective Forwarding Unit) for group video calls. One WebSocket
//! per client carries signaling, room membership and chat; media flows over one WebRTC
//! PeerConnection per client to the server, which forwards RTP between room members. Clients of
//! the older peer-to-peer mesh protocol share the same `/ws` endpoint and have their frames
//! relayed unchanged.
//!
//! The crate root only declares modules and re-exports what the binary and the tests share;
//! it must not hold logic.

pub mod auth;
#[cfg(feature = "test-client")]
pub mod client;
pub mod config;
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
