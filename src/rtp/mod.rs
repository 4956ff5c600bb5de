//! RTP/RTCP building blocks shared by the SFU's media engine, the load generator and the test
//! client: the PeerConnection builder ([`connection`]), duplicate suppression ([`dedup`]), the
//! guard against repeated DTLS flights stalling a handshake ([`dtls_repeat`]), the
//! interceptor that hands chosen RTCP to the application ([`rtcp_tap`]), the one that gets TWCC
//! feedback naming an RTX SSRC delivered ([`twcc_route`]), and the fast path's
//! SRTP: the keys learned from the stack ([`key_tap`]) and in-place protection ([`leg_srtp`]:
//! AES-GCM in [`srtp_out`], AES-CM-HMAC-SHA1 in [`srtp_cm`]). Sans-IO: no
//! sockets, no threads.

pub mod connection;
pub mod dedup;
pub mod dtls_repeat;
pub mod key_tap;
pub mod leg_srtp;
pub mod pass_through;
pub mod rid_keeper;
pub mod rtcp_tap;
pub mod srtp_cm;
pub mod srtp_out;
pub mod twcc_route;
