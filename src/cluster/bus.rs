//! The relay bus: signaling between nodes over Redis pub/sub. Each node reads one channel, its
//! inbox (`chorus:node:<id>:relay`, on a dedicated subscriber connection), and publishes
//! [`Envelope`]s to the other nodes' inboxes on its shared command connection. A relayed
//! connection is a [`Link`] on each side: the edge (the node the client's WebSocket reached)
//! opens it with the cluster's relay key; the room's node gets it as an [`Opened`] to serve.
//! Envelopes of one connection are published by one task, awaited one by one, so they arrive
//! in order. Losing the subscription ends every link (the reader reconnects). It must not
//! know about sessions or rooms.

use super::envelope::{self, Body, Envelope};
use futures::StreamExt;
use parking_lot::Mutex;
use prometheus::IntCounterVec;
use redis::aio::{ConnectionManager, PubSubStream};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;

/// How long the reader waits before subscribing again after losing Redis.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// Relayed connections opened by other nodes not yet taken up by the server.
const PENDING_OPENS: usize = 256;
/// Close code for an `open` without the cluster's relay key.
pub const POLICY_VIOLATION: u16 = 1008;

/// Why an envelope could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("node {0} does not read its relay inbox")]
    NoReader(String),
    #[error("this node lost its Redis subscription")]
    Unsubscribed,
}

/// Where the envelopes of one connection go on this node.
struct Route {
    tx: mpsc::Sender<Body>,
    /// Set when the reader of the link fell `capacity` envelopes behind (the link is cut).
    overflow: Arc<AtomicBool>,
}

#[derive(Default)]
struct Routes {
    /// Connections this node relays (it is the edge), by number.
    edge: HashMap<u64, Route>,
    /// Connections this node serves for other nodes, by (edge, number).
    owner: HashMap<(String, u64), Route>,
}

/// This node's end of the relay.
pub struct RelayBus {
    node_id: String,
    relay_key: String,
    redis: ConnectionManager,
    routes: Mutex<Routes>,
    subscribed: AtomicBool,
    opens: mpsc::Sender<Opened>,
    /// Envelopes published and received (`direction` label).
    envelopes: IntCounterVec,
    /// Failed Redis commands (`op` label).
    redis_errors: IntCounterVec,
    /// Envelopes a link may have waiting before it is cut.
    capacity: usize,
}

/// A connection another node relays here, for the server to serve.
pub struct Opened {
    pub link: Link,
    /// The raw query string of the client's `/ws` URL.
    pub query: String,
    pub client: Option<IpAddr>,
}

/// One relayed connection, seen from one side.
pub struct Link {
    bus: Arc<RelayBus>,
    /// The node envelopes go to.
    peer: String,
    edge: String,
    conn: u64,
    /// This side publishes `up` envelopes (it is the edge).
    up: bool,
    rx: mpsc::Receiver<Body>,
    overflow: Arc<AtomicBool>,
    /// A close was sent or received (no close is owed on drop).
    ended: bool,
}

impl RelayBus {
    /// Subscribes to this node's inbox (on a connection of its own) and returns the bus, the
    /// subscription to hand to [`Self::spawn`], and where relayed connections arrive.
    pub(super) async fn connect(
        client: &redis::Client,
        redis: ConnectionManager,
        node_id: &str,
        relay_key: &str,
        metrics: &super::ClusterMetrics,
        capacity: usize,
    ) -> redis::RedisResult<(Arc<Self>, PubSubStream, mpsc::Receiver<Opened>)> {
        let stream = super::bounded(subscribe(client, node_id)).await?;
        let (opens, opened) = mpsc::channel(PENDING_OPENS);
        let bus = Arc::new(Self {
            node_id: node_id.to_owned(),
            relay_key: relay_key.to_owned(),
            redis,
            routes: Mutex::new(Routes::default()),
            subscribed: AtomicBool::new(true),
            opens,
            envelopes: metrics.relay_envelopes.clone(),
            redis_errors: metrics.redis_errors.clone(),
            capacity: capacity.max(1),
        });
        Ok((bus, stream, opened))
    }

    /// Reads the inbox until shutdown; on losing Redis ends every link and subscribes again.
    pub(super) fn spawn(
        self: &Arc<Self>,
        client: redis::Client,
        first: PubSubStream,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut stream = Some(first);
            loop {
                if let Some(current) = stream.take() {
                    bus.subscribed.store(true, Ordering::SeqCst);
                    tokio::select! {
                        _ = bus.read(current) => {}
                        _ = shutdown.changed() => return,
                    }
                    bus.subscribed.store(false, Ordering::SeqCst);
                    bus.cut_all();
                    tracing::warn!("relay inbox: Redis subscription lost; relayed connections end");
                }
                tokio::select! {
                    _ = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
                    _ = shutdown.changed() => return,
                }
                match super::bounded(subscribe(&client, &bus.node_id)).await {
                    Ok(again) => {
                        tracing::info!("relay inbox: subscribed again");
                        stream = Some(again);
                    }
                    Err(error) => tracing::warn!(%error, "relay inbox: cannot subscribe"),
                }
            }
        });
    }

    /// Opens a relayed connection to node `owner` for a client that connected with `query`
    /// from `client`.
    pub async fn open(
        self: &Arc<Self>,
        owner: &str,
        query: &str,
        client: Option<IpAddr>,
    ) -> Result<Link, LinkError> {
        if !self.subscribed.load(Ordering::SeqCst) {
            return Err(LinkError::Unsubscribed);
        }
        let conn = rand::random();
        let mut link = self.link(owner, &self.node_id, conn, true);
        let open = Body::Open {
            key: self.relay_key.clone(),
            query: query.to_owned(),
            client,
        };
        link.send(open).await?;
        Ok(link)
    }

    async fn read(self: &Arc<Self>, mut stream: PubSubStream) {
        while let Some(message) = stream.next().await {
            let Ok(payload) = message.get_payload::<Vec<u8>>() else {
                continue;
            };
            self.envelopes.with_label_values(&["received"]).inc();
            match Envelope::decode(&payload) {
                Some(envelope) => self.dispatch(envelope),
                None => tracing::debug!("relay inbox: a message that is not an envelope"),
            }
        }
    }

    /// Hands an envelope to its link, or opens one.
    fn dispatch(self: &Arc<Self>, envelope: Envelope) {
        let Envelope {
            edge,
            conn,
            up,
            body,
        } = envelope;
        if !up {
            if edge == self.node_id {
                deliver(&mut self.routes.lock().edge, conn, body);
            }
            return;
        }
        if let Body::Open { key, query, client } = body {
            return self.accept(edge, conn, &key, query, client);
        }
        let closing = matches!(body, Body::Close { .. });
        let known = deliver(&mut self.routes.lock().owner, (edge.clone(), conn), body);
        if !known && !closing {
            // The edge relays to a connection this node no longer serves: end it there (no
            // code: the edge tells its client the room's node was lost).
            self.reply_close(edge, conn, None);
        }
    }

    /// An `open` from node `edge`: refused without the relay key, else handed to the server.
    fn accept(
        self: &Arc<Self>,
        edge: String,
        conn: u64,
        key: &str,
        query: String,
        client: Option<IpAddr>,
    ) {
        if !envelope::key_matches(key, &self.relay_key) {
            tracing::warn!(%edge, "relayed connection without the cluster's relay key refused");
            return self.reply_close(edge, conn, Some(POLICY_VIOLATION));
        }
        if self.routes.lock().owner.contains_key(&(edge.clone(), conn)) {
            return;
        }
        let link = self.link(&edge, &edge, conn, false);
        let opened = Opened {
            link,
            query,
            client,
        };
        if self.opens.try_send(opened).is_err() {
            // Dropping the link tells the edge.
            tracing::warn!(%edge, "relayed connection refused: too many waiting");
        }
    }

    /// A link to `peer` for connection (`edge`, `conn`), routed here.
    fn link(self: &Arc<Self>, peer: &str, edge: &str, conn: u64, up: bool) -> Link {
        let (tx, rx) = mpsc::channel(self.capacity);
        let overflow = Arc::new(AtomicBool::new(false));
        let route = Route {
            tx,
            overflow: overflow.clone(),
        };
        let mut routes = self.routes.lock();
        match up {
            true => routes.edge.insert(conn, route),
            false => routes.owner.insert((edge.to_owned(), conn), route),
        };
        Link {
            bus: self.clone(),
            peer: peer.to_owned(),
            edge: edge.to_owned(),
            conn,
            up,
            rx,
            overflow,
            ended: false,
        }
    }

    fn reply_close(self: &Arc<Self>, edge: String, conn: u64, code: Option<u16>) {
        let bus = self.clone();
        let envelope = Envelope {
            edge: edge.clone(),
            conn,
            up: false,
            body: Body::Close { code },
        };
        tokio::spawn(async move { bus.publish(&edge, &envelope).await });
    }

    /// Publishes one envelope to node `node`'s inbox.
    async fn publish(&self, node: &str, envelope: &Envelope) -> Result<(), LinkError> {
        let mut redis = self.redis.clone();
        let publish = redis.publish::<_, _, usize>(envelope::inbox(node), envelope.encode());
        let readers = match super::bounded(publish).await {
            Ok(readers) => readers,
            Err(error) => {
                self.redis_errors.with_label_values(&["relay"]).inc();
                tracing::debug!(%error, node, "relay envelope not published");
                return Err(error.into());
            }
        };
        self.envelopes.with_label_values(&["published"]).inc();
        match readers {
            0 => Err(LinkError::NoReader(node.to_owned())),
            _ => Ok(()),
        }
    }

    /// Ends every link (the subscription is gone: nothing would reach them).
    fn cut_all(&self) {
        let mut routes = self.routes.lock();
        routes.edge.clear();
        routes.owner.clear();
    }

    fn forget(&self, up: bool, edge: &str, conn: u64) {
        let mut routes = self.routes.lock();
        match up {
            true => routes.edge.remove(&conn),
            false => routes.owner.remove(&(edge.to_owned(), conn)),
        };
    }
}

/// Queues `body` on the route `key`; `false` when there is none. A route whose reader fell
/// behind is cut (its link sees the end and [`Link::overflowed`]).
fn deliver<K: Hash + Eq>(routes: &mut HashMap<K, Route>, key: K, body: Body) -> bool {
    let Some(route) = routes.get(&key) else {
        return false;
    };
    let closing = matches!(body, Body::Close { .. });
    match route.tx.try_send(body) {
        Ok(()) if !closing => {}
        Err(TrySendError::Full(_)) => {
            route.overflow.store(true, Ordering::SeqCst);
            routes.remove(&key);
        }
        _ => {
            routes.remove(&key);
        }
    }
    true
}

async fn subscribe(client: &redis::Client, node_id: &str) -> redis::RedisResult<PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(envelope::inbox(node_id)).await?;
    Ok(pubsub.into_on_message())
}

impl Link {
    /// The other node of the connection.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Publishes one event to the other side; an error means the link is broken.
    pub async fn send(&mut self, body: Body) -> Result<(), LinkError> {
        let closing = matches!(body, Body::Close { .. });
        let envelope = Envelope {
            edge: self.edge.clone(),
            conn: self.conn,
            up: self.up,
            body,
        };
        let result = self.bus.publish(&self.peer, &envelope).await;
        self.ended |= closing || result.is_err();
        result
    }

    /// The next event from the other side; `None` once the link is cut (this node lost its
    /// subscription, or fell behind: see [`Self::overflowed`]).
    pub async fn recv(&mut self) -> Option<Body> {
        let body = self.rx.recv().await;
        self.ended |= matches!(body, Some(Body::Close { .. }));
        body
    }

    /// Whether the link was cut because this side did not take its envelopes fast enough.
    pub fn overflowed(&self) -> bool {
        self.overflow.load(Ordering::SeqCst)
    }
}

impl Drop for Link {
    /// Stops routing envelopes here; tells the other side if it was not told.
    fn drop(&mut self) {
        self.bus.forget(self.up, &self.edge, self.conn);
        if self.ended {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bus = self.bus.clone();
        let peer = self.peer.clone();
        let envelope = Envelope {
            edge: self.edge.clone(),
            conn: self.conn,
            up: self.up,
            body: Body::Close { code: None },
        };
        runtime.spawn(async move { bus.publish(&peer, &envelope).await });
    }
}
