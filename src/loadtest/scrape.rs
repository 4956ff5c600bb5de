//! Reads the server's `/metrics` (plain HTTP/1.0 over TCP, no client library) for the figures
//! the report needs: process CPU seconds and RSS, forwarded packets, shard CPU seconds, and the
//! bandwidth estimation's own figures (the per-leg estimate histogram, probes, layer switches).

use crate::metrics::text as metrics_text;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server figures at one moment.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ServerSample {
    pub process_cpu_seconds: f64,
    pub resident_bytes: f64,
    pub forwarded_packets: f64,
    pub shard_cpu_seconds: f64,
    pub media_peer_connections: f64,
    /// Sum and count of the legs' sampled estimates (`chorus_leg_estimated_bitrate_bps`).
    pub estimate_sum: f64,
    pub estimate_count: f64,
    pub probes: f64,
    pub layer_switches: f64,
}

/// `http://host:port/metrics` from a `ws://host:port/ws` URL.
pub fn metrics_url_for(ws_url: &str) -> Option<(String, String)> {
    let rest = ws_url
        .strip_prefix("ws://")
        .or_else(|| ws_url.strip_prefix("http://"))?;
    let host = rest.split('/').next()?.to_owned();
    Some((host, "/metrics".to_owned()))
}

fn sum(text: &str, name: &str) -> f64 {
    metrics_text::sum(text, name).unwrap_or(0.0)
}

/// Scrapes every target and sums the figures (a cluster's nodes); `None` if none answered.
pub async fn scrape_all(targets: &[(String, String)]) -> Option<ServerSample> {
    let mut total: Option<ServerSample> = None;
    for (host, path) in targets {
        if let Some(s) = scrape(host, path).await {
            let t = total.get_or_insert_with(ServerSample::default);
            t.process_cpu_seconds += s.process_cpu_seconds;
            t.resident_bytes += s.resident_bytes;
            t.forwarded_packets += s.forwarded_packets;
            t.shard_cpu_seconds += s.shard_cpu_seconds;
            t.media_peer_connections += s.media_peer_connections;
            t.estimate_sum += s.estimate_sum;
            t.estimate_count += s.estimate_count;
            t.probes += s.probes;
            t.layer_switches += s.layer_switches;
        }
    }
    total
}

/// Scrapes `host` (host:port) once; `None` if it cannot be reached.
pub async fn scrape(host: &str, path: &str) -> Option<ServerSample> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        Some(text)
    };
    let text = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()??;
    Some(ServerSample {
        process_cpu_seconds: sum(&text, "process_cpu_seconds_total"),
        resident_bytes: sum(&text, "process_resident_memory_bytes"),
        forwarded_packets: sum(&text, "chorus_forwarded_packets_total"),
        shard_cpu_seconds: sum(&text, "chorus_shard_cpu_seconds_total"),
        media_peer_connections: sum(&text, "chorus_media_peer_connections"),
        estimate_sum: sum(&text, "chorus_leg_estimated_bitrate_bps_sum"),
        estimate_count: sum(&text, "chorus_leg_estimated_bitrate_bps_count"),
        probes: sum(&text, "chorus_bwe_probes_total"),
        layer_switches: sum(&text, "chorus_simulcast_layer_switches_total"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_metrics_read_zero_and_the_url_is_derived() {
        let text = "chorus_shard_cpu_seconds_total{shard=\"0\"} 1.5\n";
        assert_eq!(sum(text, "chorus_shard_cpu_seconds_total"), 1.5);
        assert_eq!(sum(text, "chorus_forwarded_packets_total"), 0.0);
        assert_eq!(
            metrics_url_for("ws://127.0.0.1:8080/ws"),
            Some(("127.0.0.1:8080".into(), "/metrics".into()))
        );
    }
}
