//! Unit tests of the shard core ([`ShardState`](super::state::ShardState)) with in-memory
//! peers: real sans-IO PeerConnections as clients, datagrams moved between them in memory, and
//! a fake clock ([`harness`]). No sockets, no sleeps. Evidence is counted packets and events.

mod abuse;
mod backlog;
mod bwe;
mod client;
mod fast_path;
mod forwarding;
mod harness;
mod keyframes;
mod lifecycle;
mod lossy;
mod negotiation;
mod receive_only;
mod recycling;
mod simulcast;
mod speakers;
