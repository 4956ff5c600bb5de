//! Connections other nodes of the cluster relay here over Redis (`--redis-url`): each passes
//! the same admission as a WebSocket upgrade (the connection budget counts the client's own
//! address, the URL token and mesh room are checked) and is then served by a normal session
//! whose transport is the relay link. A refusal reaches the client as an `error` and a close.

use super::routes::{admit, WsQuery};
use super::AppState;
use crate::cluster::bus::{Opened, POLICY_VIOLATION};
use crate::cluster::envelope::Body;
use crate::protocol::{ErrorCode, ServerMessage};
use crate::signal::session;
use crate::signal::transport::{Relayed, Transport};
use axum::extract::Query;
use axum::http::Uri;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::sync::{mpsc, watch};

/// Serves the connections other nodes relay here until shutdown.
pub(super) fn spawn(
    state: AppState,
    mut opened: mpsc::Receiver<Opened>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                open = opened.recv() => match open {
                    Some(open) => {
                        tokio::spawn(serve(state.clone(), open));
                    }
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Counts one relayed connection served here while it lives.
struct Served(prometheus::IntGauge);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve(state: AppState, open: Opened) {
    let Some(cluster) = state.signal.cluster.clone() else {
        return;
    };
    let Opened {
        link,
        query,
        client,
    } = open;
    let ip = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let remote = SocketAddr::new(ip, 0);
    let parsed = format!("/ws?{query}")
        .parse::<Uri>()
        .ok()
        .and_then(|uri| Query::<WsQuery>::try_from_uri(&uri).ok());
    let Some(Query(ws_query)) = parsed else {
        let message = "the /ws query string cannot be read".to_owned();
        return refuse(link, ErrorCode::BadMessage, message).await;
    };
    let (params, permit) = match admit(&state, &ws_query, query, remote, true) {
        Ok(admitted) => admitted,
        Err(refused) => {
            let body = refused.body.trim_end();
            let message = body
                .strip_prefix(&format!("{}: ", refused.code.as_str()))
                .unwrap_or(body)
                .to_owned();
            return refuse(link, refused.code, message).await;
        }
    };
    tracing::debug!(edge = link.peer(), %ip, "serving a relayed connection");
    let gauge = cluster.metrics.relayed.with_label_values(&["in"]);
    gauge.inc();
    let _served = Served(gauge);
    let transport = Transport::Relayed(Relayed::new(link, cluster));
    session::run(transport, state.signal.clone(), params).await;
    drop(permit);
}

/// Tells the client (through its edge) why it was not admitted, then closes.
async fn refuse(mut link: crate::cluster::bus::Link, code: ErrorCode, message: String) {
    let text = ServerMessage::error(code, message).to_json();
    if link.send(Body::Text { text }).await.is_ok() {
        let code = Some(POLICY_VIOLATION);
        let _ = link.send(Body::Close { code }).await;
    }
}
