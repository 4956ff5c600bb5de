//! A webrtc [`Runtime`] that is tokio with a switch on every UDP socket it wraps: once the
//! client "vanishes", datagrams in both directions are silently discarded, so the server sees a
//! peer that stopped answering — no DTLS close alert, no ICE goodbye, no ICMP. This module owns
//! only that switch; it must not change timing, batching or anything else of the sockets.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// Shared "the network is gone" flag.
#[derive(Debug, Clone, Default)]
pub struct Silence(Arc<AtomicBool>);

impl Silence {
    /// From now on every datagram of this client's sockets is dropped.
    pub fn engage(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the client's network is silenced.
    pub fn is_engaged(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Tokio, with gated UDP sockets.
#[derive(Debug)]
pub struct GatedRuntime {
    inner: TokioRuntime,
    silence: Silence,
}

impl GatedRuntime {
    pub fn new(silence: Silence) -> Self {
        Self {
            inner: TokioRuntime,
            silence,
        }
    }
}

impl Runtime for GatedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = self.inner.wrap_udp_socket(socket)?;
        Ok(Arc::new(GatedSocket {
            inner,
            silence: self.silence.clone(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio-gated"
    }
}

/// A UDP socket that swallows everything once silenced.
struct GatedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    silence: Silence,
}

impl fmt::Debug for GatedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatedSocket")
            .field("inner", &self.inner)
            .field("silenced", &self.silence.is_engaged())
            .finish()
    }
}

impl AsyncUdpSocket for GatedSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if self.silence.is_engaged() {
            return Poll::Ready(Ok(transmit.contents.len()));
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                // Read and discard: keeps the kernel buffer drained and the waker armed.
                Poll::Ready(Ok(_)) if self.silence.is_engaged() => continue,
                other => return other,
            }
        }
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}
