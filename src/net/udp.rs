//! UDP sockets of one shard: binding (large buffers, non-blocking), batched receive with
//! `recvmmsg` and batched send with `sendmmsg`, and the interface addresses a server advertises
//! by default. Knows nothing about WebRTC beyond the bytes it moves.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Socket buffer size requested for every media socket (bursty video overflows the default).
pub const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Largest datagram we accept; anything bigger is truncated and dropped.
pub const MAX_DATAGRAM: usize = 1500;
/// Datagrams moved per `recvmmsg` / `sendmmsg` call.
pub const BATCH: usize = 64;

/// Binds a non-blocking UDP socket with large send/receive buffers.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR: with it, Linux may hand the same ephemeral UDP port to two sockets,
    // and datagrams meant for one connection reach the other.
    // Best effort: the kernel caps these at net.core.{r,w}mem_max unless we are privileged.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    force_buffer_size(&socket);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// As root, SO_RCVBUFFORCE/SO_SNDBUFFORCE lift the sysctl cap; silently ignored otherwise.
fn force_buffer_size(socket: &Socket) {
    let size = SOCKET_BUFFER_BYTES as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: valid fd, pointer to a live c_int of the stated length.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &size as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// IPv4 addresses of the machine's interfaces that are up, loopback included.
pub fn interface_ipv4s() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we free below; we only read it.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
            if up && !ifa.ifa_addr.is_null() && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_unspecified() && !out.contains(&IpAddr::V4(ip)) {
                    out.push(IpAddr::V4(ip));
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    if !out.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    out
}

/// Receive buffers for one `recvmmsg` batch, reused across calls.
pub struct RecvBatch {
    bufs: Vec<[u8; MAX_DATAGRAM]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    lens: Vec<usize>,
    count: usize,
}

// SAFETY: the raw pointers in `iovecs`/`headers` only ever point into this struct's own
// buffers and are rebuilt at the start of every `recv`; moving the batch to another thread
// (once, when the shard starts) cannot leave them dangling in a way that is ever dereferenced.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        // SAFETY: sockaddr_storage and mmsghdr are plain C structs for which all-zero is valid.
        let zero_addr: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        let zero_hdr: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        Self {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH],
            addrs: vec![zero_addr; BATCH],
            iovecs: Vec::with_capacity(BATCH),
            headers: vec![zero_hdr; BATCH],
            lens: vec![0; BATCH],
            count: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; returns how many arrived.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.recv_up_to(socket, BATCH)
    }

    /// Receives up to `max` (1 to [`BATCH`]) datagrams without blocking.
    pub fn recv_up_to(&mut self, socket: &UdpSocket, max: usize) -> io::Result<usize> {
        let max = max.clamp(1, BATCH);
        self.iovecs.clear();
        for buf in self.bufs.iter_mut() {
            self.iovecs.push(libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: MAX_DATAGRAM,
            });
        }
        for i in 0..BATCH {
            let hdr = &mut self.headers[i].msg_hdr;
            hdr.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iovecs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers owned by self for the call's duration.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                max as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.count = n as usize;
        for i in 0..self.count {
            let truncated = self.headers[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = if truncated {
                0
            } else {
                self.headers[i].msg_len as usize
            };
        }
        Ok(self.count)
    }

    /// The i-th datagram of the last batch and its source; `None` for a truncated or
    /// unparseable one.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count || self.lens[i] == 0 {
            return None;
        }
        let addr = sockaddr_to_std(&self.addrs[i])?;
        Some((&self.bufs[i][..self.lens[i]], addr))
    }
}

fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero sockaddr_storage is valid; we fill the variant matching the family.
    let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Outgoing datagrams queued for one socket, flushed with `sendmmsg`.
#[derive(Default)]
pub struct SendQueue {
    datagrams: Vec<(SocketAddr, bytes::BytesMut)>,
    /// The `sendmmsg` call's arrays, kept so a flush allocates nothing once warm.
    scratch: MmsgScratch,
}

/// The address, iovec and header arrays of one `sendmmsg` call. Their capacity is kept between
/// calls; they are emptied at the end of each, so no pointer outlives the call that set it.
#[derive(Default)]
struct MmsgScratch {
    addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the vectors hold raw pointers only during `send_batch` (they are cleared before it
// returns), so moving an idle queue to another thread moves no live pointer.
unsafe impl Send for MmsgScratch {}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlushStats {
    pub sent: usize,
    pub dropped: usize,
}

impl SendQueue {
    pub fn push(&mut self, to: SocketAddr, datagram: bytes::BytesMut) {
        self.datagrams.push((to, datagram));
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Sends everything queued, [`BATCH`] datagrams per syscall. A full socket buffer drops
    /// the rest of the queue (counted) rather than blocking the shard.
    pub fn flush(&mut self, socket: &UdpSocket) -> FlushStats {
        let mut stats = FlushStats::default();
        let mut start = 0;
        while start < self.datagrams.len() {
            let end = (start + BATCH).min(self.datagrams.len());
            match send_batch(socket, &self.datagrams[start..end], &mut self.scratch) {
                Ok(0) | Err(_) => {
                    // Would block or failed: skip the head datagram so we never spin.
                    stats.dropped += 1;
                    start += 1;
                }
                Ok(n) => {
                    stats.sent += n;
                    start += n;
                }
            }
        }
        // Sent datagrams are windows of their writer's arena (`media::buffer_pool`, the
        // floor's pool buffer): dropping them lets the arena be reclaimed whole.
        self.datagrams.clear();
        stats
    }
}

fn send_batch(
    socket: &UdpSocket,
    batch: &[(SocketAddr, bytes::BytesMut)],
    scratch: &mut MmsgScratch,
) -> io::Result<usize> {
    let MmsgScratch {
        addrs,
        iovecs,
        headers,
    } = scratch;
    addrs.clear();
    iovecs.clear();
    headers.clear();
    for (to, data) in batch {
        addrs.push(std_to_sockaddr(to));
        iovecs.push(libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        });
    }
    for (addr, iov) in addrs.iter_mut().zip(iovecs.iter_mut()) {
        // SAFETY: a zeroed mmsghdr is valid; the pointers set reference `addrs` and `iovecs`,
        // which are not touched again until the call below returns.
        let mut hdr: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        hdr.msg_hdr.msg_name = &mut addr.0 as *mut _ as *mut libc::c_void;
        hdr.msg_hdr.msg_namelen = addr.1;
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
        headers.push(hdr);
    }
    // SAFETY: headers, addresses and iovecs are valid for the duration of the call.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            headers.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    headers.clear();
    iovecs.clear();
    addrs.clear();
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two loopback sockets, and ten 100-byte datagrams (byte `i` repeated) sent from the first
    /// to the second in one batch.
    fn ten_datagrams_sent() -> (UdpSocket, UdpSocket) {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut q = SendQueue::default();
        for i in 0..10u8 {
            q.push(
                b.local_addr().unwrap(),
                bytes::BytesMut::from(&[i; 100][..]),
            );
        }
        assert_eq!(q.flush(&a).sent, 10);
        (a, b)
    }

    #[test]
    fn batch_roundtrip_over_loopback() {
        let (a, b) = ten_datagrams_sent();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut batch = RecvBatch::new();
        let n = batch.recv(&b).unwrap();
        assert_eq!(n, 10);
        let (data, from) = batch.get(3).unwrap();
        assert_eq!(data, &[3u8; 100][..]);
        assert_eq!(from, a.local_addr().unwrap());
    }

    #[test]
    fn recv_up_to_reads_no_more_than_asked() {
        let (_a, b) = ten_datagrams_sent();
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 10 && std::time::Instant::now() < deadline {
            let n = batch.recv_up_to(&b, 3).unwrap_or(0);
            assert!(n <= 3, "{n}");
            got.extend((0..n).map(|i| batch.get(i).unwrap().0[0]));
        }
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
    }
}
