//! RTP/RTCP building blocks shared by the SFU's media engine, the load generator and the test
//! client: duplicate suppression ([`dedup`]) and the interceptor that hands chosen RTCP to the
//! application ([`rtcp_tap`]). Sans-IO: no sockets, no threads.

pub mod dedup;
pub mod rtcp_tap;
