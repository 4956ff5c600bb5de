//! `--sink`: receive-only synthetic participants whose socket drops media in the kernel. A
//! classic-BPF socket filter drops every RTP datagram (RFC 7983: first byte 128–191, payload
//! type outside RTCP's 200–206) before it is queued, so a forwarded packet costs the load
//! generator nothing (on loopback the drop runs in the sending server's context, the same in
//! every configuration compared); STUN, DTLS and RTCP still reach the peer, which completes
//! ICE and DTLS and keeps its consent checks going. For measuring a server's forwarding
//! capacity from its own counters: the client-side reception figures of such a run are void.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// A UDP socket's filter sees the datagram from its UDP header on: the payload starts here.
const UDP: u32 = 8;

/// Accept the datagram whole.
const ACCEPT: u32 = 0xFFFF_FFFF;

fn op(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The filter program: see the module documentation.
fn program() -> [libc::sock_filter; 8] {
    let ldb = libc::BPF_LD | libc::BPF_B | libc::BPF_ABS;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let jgt = libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    [
        op(ldb, 0, 0, UDP),     // 0: A = first byte
        op(jge, 0, 4, 128),     // 1: < 128 (STUN, DTLS, ...): accept
        op(jge, 3, 0, 192),     // 2: >= 192: not RTP/RTCP, accept
        op(ldb, 0, 0, UDP + 1), // 3: A = second byte (marker, payload type)
        op(jge, 0, 2, 200),     // 4: < 200: RTP, drop
        op(jgt, 1, 0, 206),     // 5: > 206: RTP, drop; else RTCP
        op(ret, 0, 0, ACCEPT),
        op(ret, 0, 0, 0),
    ]
}

/// Attaches the media-dropping filter to `socket`.
pub fn drop_media(socket: &UdpSocket) -> io::Result<()> {
    let mut filter = program();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prog points at a live filter array of the stated length for the call; the
    // kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rtp_is_dropped_and_stun_dtls_and_rtcp_pass() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        drop_media(&rx).unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let to = rx.local_addr().unwrap();
        let sent: [&[u8]; 7] = [
            &[0x80, 96, 0, 1],    // RTP
            &[0x00, 0x01, 0, 0],  // STUN binding request
            &[0x80, 0xE0, 0, 2],  // RTP with the marker bit (payload type 96)
            &[22, 0xFE, 0xFD, 0], // DTLS handshake
            &[0x81, 200, 0, 6],   // RTCP sender report
            &[0x8F, 205, 0, 4],   // RTCP transport feedback
            &[0x90, 111, 0, 3],   // RTP with an extension (Opus)
        ];
        for d in sent {
            tx.send_to(d, to).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
            if got.len() == 4 {
                break;
            }
        }
        let firsts: Vec<(u8, u8)> = got.iter().map(|d| (d[0], d[1])).collect();
        assert_eq!(
            firsts,
            vec![(0x00, 0x01), (22, 0xFE), (0x81, 200), (0x8F, 205)]
        );
        // Nothing else is queued: the three RTP datagrams were dropped.
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert!(rx.recv_from(&mut buf).is_err());
    }
}
