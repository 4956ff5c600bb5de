//! The HTTP accept loop: every accepted TCP connection is driven by hyper's HTTP/1 server with a
//! header-read timeout (`--header-timeout-secs`), so a client that never finishes its request
//! head (slowloris), or idles on a keep-alive connection, is closed. Upgrades (the WebSocket)
//! are supported; the peer address reaches handlers as axum's `ConnectInfo`. It must not know
//! any route.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long the loop pauses after an accept error that is not about one connection (e.g. out
/// of file descriptors), so it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` becomes true, then lets open HTTP exchanges
/// finish (upgraded WebSockets close by themselves on the same signal).
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let service = WithRemote {
            router: router.clone(),
            remote,
        };
        let stop = stop.clone();
        let open = open_rx.clone();
        tokio::spawn(serve_connection(
            stream,
            service,
            header_timeout,
            stop,
            open,
        ));
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// Drives one connection; `_open` is held until it ends so shutdown can wait for it.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    service: WithRemote,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let stopping = tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
            false
        }
        () = stopped(&mut stop) => true,
    };
    if stopping {
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Accept errors that concern only the connection being accepted.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The router, with the peer address put into every request as `ConnectInfo`.
#[derive(Clone)]
struct WithRemote {
    router: Router,
    remote: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for WithRemote {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        tower_service::Service::call(&mut self.router.clone(), request)
    }
}
