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
    let mut poller = Poller::new(fds, waker);
    poller.wait(waker, timeout);
    (0..fds.len()).map(|i| poller.readable(i)).collect()
}

/// [`wait_readable`] for a fixed set of fds, without allocating per wait (a loop's turn).
pub struct Poller {
    polled: Vec<libc::pollfd>,
}

impl Poller {
    /// Polls `fds` and then `waker`.
    pub fn new(fds: &[RawFd], waker: &Waker) -> Self {
        let polled = fds
            .iter()
            .chain(std::iter::once(&waker.raw()))
            .map(|fd| libc::pollfd {
                fd: *fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Self { polled }
    }

    /// Blocks until an fd or the waker is readable or `timeout` passes (clears the waker if
    /// it fired); then [`Poller::readable`] tells which fds are.
    pub fn wait(&mut self, waker: &Waker, timeout: Duration) {
        for p in &mut self.polled {
            p.revents = 0;
        }
        let ms = timeout.as_micros().div_ceil(1000) as libc::c_int;
        let len = self.polled.len() as libc::nfds_t;
        // SAFETY: polled is a live array of pollfd of the stated length.
        let n = unsafe { libc::poll(self.polled.as_mut_ptr(), len, ms) };
        if n <= 0 {
            for p in &mut self.polled {
                p.revents = 0;
            }
            return;
        }
        if self.polled.last().is_some_and(|w| w.revents != 0) {
            waker.clear();
        }
    }

    /// Whether the `i`-th fd was readable at the last wait.
    pub fn readable(&self, i: usize) -> bool {
        i + 1 < self.polled.len() && self.polled[i].revents & libc::POLLIN != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_poller_reports_each_wait_afresh() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let waker = Waker::new().unwrap();
        let mut poller = Poller::new(&[a.as_raw_fd(), b.as_raw_fd()], &waker);
        b.send_to(b"x", a.local_addr().unwrap()).unwrap();
        poller.wait(&waker, Duration::from_secs(5));
        assert!(poller.readable(0) && !poller.readable(1) && !poller.readable(2));
        let mut buf = [0u8; 8];
        a.recv_from(&mut buf).unwrap();
        waker.wake();
        poller.wait(&waker, Duration::from_secs(5));
        assert!(!poller.readable(0) && !poller.readable(1));
        // The waker was cleared: nothing is readable now, the wait times out.
        let started = std::time::Instant::now();
        poller.wait(&waker, Duration::from_millis(20));
        assert!(started.elapsed() >= Duration::from_millis(15));
        assert!(!poller.readable(0));
    }
}
