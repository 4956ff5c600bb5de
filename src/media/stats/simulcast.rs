//! The simulcast metrics: layer switches of subscriber legs, and how many legs receive each
//! layer (index 0 is the lowest; layers above 2 share the label `3+`).

use prometheus::{IntCounter, IntGaugeVec, Opts, Registry};

/// Labels of the per-layer gauge.
pub const LAYER_LABELS: [&str; 4] = ["0", "1", "2", "3+"];

/// The Prometheus side of the simulcast figures.
#[derive(Clone)]
pub struct SimulcastMetrics {
    switches: IntCounter,
    legs: IntGaugeVec,
}

impl SimulcastMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            switches: IntCounter::new(
                "chorus_simulcast_layer_switches_total",
                "Subscriber legs moved to another simulcast layer (at a keyframe)",
            )?,
            legs: IntGaugeVec::new(
                Opts::new(
                    "chorus_simulcast_legs",
                    "Subscriber legs receiving a simulcast track, by the layer they are on",
                ),
                &["layer"],
            )?,
        };
        registry.register(Box::new(m.switches.clone()))?;
        registry.register(Box::new(m.legs.clone()))?;
        for label in LAYER_LABELS {
            m.legs.with_label_values(&[label]);
        }
        Ok(m)
    }

    /// Adds a shard's switches and its change in legs per layer.
    pub fn publish(&self, switches: u64, legs: [i64; 4], last: [i64; 4]) {
        self.switches.inc_by(switches);
        for (i, label) in LAYER_LABELS.iter().enumerate() {
            self.legs.with_label_values(&[label]).add(legs[i] - last[i]);
        }
    }
}

/// The label index of layer `layer`.
pub fn label_index(layer: usize) -> usize {
    layer.min(LAYER_LABELS.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_add_up_and_legs_follow_the_levels() {
        let registry = Registry::new();
        let m = SimulcastMetrics::new(&registry).unwrap();
        m.publish(3, [1, 0, 2, 0], [0; 4]);
        m.publish(1, [0, 1, 2, 0], [1, 0, 2, 0]);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .unwrap();
        assert!(
            text.contains("chorus_simulcast_layer_switches_total 4"),
            "{text}"
        );
        assert!(
            text.contains("chorus_simulcast_legs{layer=\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("chorus_simulcast_legs{layer=\"0\"} 0"),
            "{text}"
        );
    }
}
