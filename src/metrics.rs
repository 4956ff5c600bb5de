//! Prometheus metrics: one [`Metrics`] value owns a private [`Registry`] and every collector,
//! and is passed explicitly to whoever records (no global registry). Adding a metric means one
//! field and one line in [`Metrics::new`]; other modules (e.g. media) may also register their own
//! collectors through [`Metrics::registry`]. Label values that are known in advance (message
//! types, error codes, close codes, member kinds) are created at start, so every series exists
//! from the first scrape and `rate()` starts from zero. It must not decide policy; it only counts.

pub mod histogram;
pub mod text;

use crate::protocol::CLIENT_MESSAGE_TYPES;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Mesh message types (seeds 002/003) counted under their own label, beside the SFU client
/// types of [`CLIENT_MESSAGE_TYPES`]; everything else counts as `other` so a client cannot blow
/// up label cardinality.
const MESH_COUNTED_TYPES: &[&str] = &[
    "ice-candidate",
    "call-request",
    "call-ack",
    "call-offer",
    "call-answer",
    "call-hangup",
];

fn counted_types() -> impl Iterator<Item = &'static str> {
    CLIENT_MESSAGE_TYPES
        .iter()
        .chain(MESH_COUNTED_TYPES)
        .copied()
}

/// All metrics of the signaling server.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub ws_connections: IntGauge,
    /// Client messages received, by `type`.
    pub messages_received: IntCounterVec,
    /// `error` messages sent, by code.
    pub errors: IntCounterVec,
    /// Open rooms.
    pub rooms: IntGauge,
    /// Room members, by kind (`sfu`, `mesh`).
    pub participants: IntGaugeVec,
    /// Chat messages accepted.
    pub chat_messages: IntCounter,
    /// Connections closed by the server, by WebSocket close code.
    pub closes: IntCounterVec,
    /// Time from a join request to the welcome message, seconds.
    pub join_latency: Histogram,
    /// 1 while the server drains (refuses joins, waits for rooms to empty), else 0.
    pub draining: IntGauge,
    /// Admin API actions carried out, by action.
    pub admin_actions: IntCounterVec,
}

/// Close codes the server sends (pre-created label values of `chorus_ws_server_closes_total`).
const CLOSE_CODES: &[&str] = &["1000", "1001", "1002", "1007", "1008", "1009", "4408"];
/// Admin API actions (label values of `chorus_admin_actions_total`).
pub const ADMIN_ACTIONS: &[&str] = &["kick", "close_room", "mute"];

impl Metrics {
    /// Creates the registry and registers every collector, including the process collector.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let ws_connections = IntGauge::new("chorus_ws_connections", "Open WebSocket connections")?;
        let messages_received = IntCounterVec::new(
            Opts::new(
                "chorus_ws_messages_received_total",
                "Client messages received, by type",
            ),
            &["type"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "chorus_errors_total",
                "Error messages sent to clients, by code",
            ),
            &["code"],
        )?;
        let rooms = IntGauge::new("chorus_rooms", "Open rooms")?;
        let participants = IntGaugeVec::new(
            Opts::new("chorus_participants", "Room members, by kind (sfu, mesh)"),
            &["kind"],
        )?;
        let chat_messages =
            IntCounter::new("chorus_chat_messages_total", "Chat messages accepted")?;
        let closes = IntCounterVec::new(
            Opts::new(
                "chorus_ws_server_closes_total",
                "Connections closed by the server, by close code",
            ),
            &["code"],
        )?;
        let join_latency = Histogram::with_opts(
            HistogramOpts::new(
                "chorus_join_latency_seconds",
                "Time from a join request to the welcome message",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
        )?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(messages_received.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(rooms.clone()))?;
        registry.register(Box::new(participants.clone()))?;
        registry.register(Box::new(chat_messages.clone()))?;
        registry.register(Box::new(closes.clone()))?;
        registry.register(Box::new(join_latency.clone()))?;
        let draining = IntGauge::new(
            "chorus_draining",
            "1 while the server drains: joins refused, waiting for rooms to empty",
        )?;
        let admin_actions = IntCounterVec::new(
            Opts::new(
                "chorus_admin_actions_total",
                "Admin API actions carried out, by action",
            ),
            &["action"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "chorus_build_info",
                "Always 1; the version of the running server",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(draining.clone()))?;
        registry.register(Box::new(admin_actions.clone()))?;
        registry.register(Box::new(build_info))?;
        register_process_collector(&registry)?;
        for kind in counted_types().chain(["other"]) {
            messages_received.with_label_values(&[kind]);
        }
        for code in crate::protocol::ErrorCode::ALL {
            errors.with_label_values(&[code.as_str()]);
        }
        errors.with_label_values(&["room-full"]);
        for code in CLOSE_CODES {
            closes.with_label_values(&[code]);
        }
        for kind in ["sfu", "mesh"] {
            participants.with_label_values(&[kind]);
        }
        for action in ADMIN_ACTIONS {
            admin_actions.with_label_values(&[action]);
        }
        Ok(Self {
            registry,
            ws_connections,
            messages_received,
            errors,
            rooms,
            participants,
            chat_messages,
            closes,
            join_latency,
            draining,
            admin_actions,
        })
    }

    /// The registry, for modules that bring their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one received client message of wire type `kind`.
    pub fn count_message(&self, kind: &str) {
        let label = if counted_types().any(|t| t == kind) {
            kind
        } else {
            "other"
        };
        self.messages_received.with_label_values(&[label]).inc();
    }

    /// Everything in the Prometheus text exposition format, followed by the metrics of
    /// `others` (registries owned by other parts of the server, e.g. the media engine).
    pub fn render(&self, others: &[&Registry]) -> String {
        let mut families = self.registry.gather();
        for registry in others {
            families.extend(registry.gather());
        }
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&families, &mut buffer) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(target_os = "linux")]
fn register_process_collector(registry: &Registry) -> Result<(), prometheus::Error> {
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    registry.register(Box::new(collector))
}

#[cfg(not(target_os = "linux"))]
fn register_process_collector(_registry: &Registry) -> Result<(), prometheus::Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_caps_label_cardinality() {
        let metrics = Metrics::new().expect("metrics");
        metrics.count_message("chat");
        metrics.count_message("some-client-invented-type");
        metrics.errors.with_label_values(&["bad-json"]).inc();
        let other = Registry::new();
        let extra = IntCounter::new("other_total", "from another registry").expect("counter");
        other.register(Box::new(extra.clone())).expect("register");
        extra.inc();
        let text = metrics.render(&[&other]);
        assert!(text.contains("other_total 1"));
        assert!(text.contains(r#"chorus_ws_messages_received_total{type="chat"} 1"#));
        assert!(text.contains(r#"chorus_ws_messages_received_total{type="other"} 1"#));
        assert!(!text.contains("some-client-invented-type"));
        assert!(text.contains(r#"chorus_errors_total{code="bad-json"} 1"#));
        #[cfg(target_os = "linux")]
        assert!(text.contains("\nprocess_resident_memory_bytes"));
    }
}
