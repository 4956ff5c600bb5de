//! RTP/RTCP building blocks shared by the SFU's media engine, the load generator and the test
//! client: the PeerConnection builder ([`connection`]), duplicate suppression ([`dedup`]), the
//! guard against repeated DTLS flights stalling a handshake ([`dtls_repeat`]) and the
//! interceptor that hands chosen RTCP to the application ([`rtcp_tap`]). Sans-IO: no
//! sockets, no threads.

pub mod connection;
pub mod dedup;
pub mod dtls_repeat;
pub mod rtcp_tap;
