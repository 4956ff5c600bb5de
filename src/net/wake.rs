//! Waking a media or load-generator thread: an eventfd other threads write to, and the
//! `poll(2)` wait over a set of sockets plus that eventfd. Nothing else.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Wakes a shard blocked in `poll` (an eventfd).
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, owned descriptor.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a live u64 to an eventfd.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            );
        }
    }

    pub fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a live u64 from a non-blocking eventfd.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            );
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Blocks in poll(2) until one of `fds` or `waker` is readable or `timeout` passes; returns,
/// per fd, whether it is readable (and clears the waker if it fired).
pub fn wait_readable(fds: &[RawFd], waker: &Waker, timeout: Duration) -> Vec<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .chain(std::iter::once(&waker.raw()))
        .map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_micros().div_ceil(1000) as libc::c_int;
    // SAFETY: polled is a live array of pollfd of the stated length.
    let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return vec![false; fds.len()];
    }
    if polled[fds.len()].revents != 0 {
        waker.clear();
    }
    polled[..fds.len()]
        .iter()
        .map(|f| f.revents & libc::POLLIN != 0)
        .collect()
}
