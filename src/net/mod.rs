//! Shared I/O helpers of the threads that move media bytes (the media shards and the load
//! generator's workers): UDP sockets with batched syscalls ([`udp`]), the eventfd waker and
//! `poll(2)` wait ([`wake`]), and per-thread CPU pinning and accounting ([`thread`]). Nothing
//! here knows about WebRTC, rooms or the protocol.

pub mod thread;
pub mod udp;
pub mod wake;
