//! The load test's findings: built once from the measured window, printed as a summary table,
//! serialized as JSON, and rendered as a self-contained HTML page with inline SVG charts
//! (bitrate, loss, latency and server CPU over time). Formatting only; it measures nothing.

use super::layers::{LayerTotals, LAYERS, RIDS};
use super::measure::Totals;
use super::scrape::ServerSample;
use super::signaling::SignalingStats;
use super::viewers::{self, SubscriberVideo};
use super::worker::WorkerSnapshot;
use super::LoadConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    pub t: f64,
    pub joined: u64,
    pub received_mbps: f64,
    pub received_pps: f64,
    pub loss_pct: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub server_cpu_pct: f64,
}

/// Three quantiles of a distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

fn quantiles(values: &[f64]) -> Quantiles {
    if values.is_empty() {
        return Quantiles::default();
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Quantiles {
        p50: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
    }
}

/// The server's side of the window, from its `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFigures {
    pub forwarded_pps: f64,
    /// Whole-process CPU per forwarded packet (signaling included).
    pub cpu_us_per_forwarded: f64,
    /// Media shard threads' CPU per forwarded packet.
    pub shard_cpu_us_per_forwarded: f64,
    pub rss_mb: f64,
    /// RSS growth from before the run, divided by the subscriber legs it carried.
    pub rss_kib_per_leg: f64,
    /// The mean of the legs' bandwidth estimates sampled in the window (`None`: none, e.g.
    /// `--no-twcc`), the probes started and the simulcast layer switches in it.
    pub mean_estimate_bps: Option<f64>,
    pub probes: f64,
    pub layer_switches: f64,
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub participants: usize,
    pub window_seconds: f64,
    pub tracks_expected: u64,
    pub tracks_receiving: u64,
    /// Media legs (one per participant) and those connected at the end of the window.
    pub legs: u64,
    pub legs_connected: u64,
    /// Reconnects by why the media leg was given up (failed, stuck, media-failed).
    pub reconnects: BTreeMap<String, u64>,
    pub join_ms: Quantiles,
    pub first_packet_ms: Quantiles,
    pub latency_ms: Quantiles,
    pub jitter_ms: Quantiles,
    pub loss_pct: f64,
    pub received_mbps: f64,
    pub received_pps: f64,
    pub loadgen_cpu_us_per_received: f64,
    pub errors: BTreeMap<String, u64>,
    pub server: Option<ServerFigures>,
    /// What the subscribers received of simulcast tracks (`--simulcast`).
    pub simulcast: Option<LayerTotals>,
    /// RTP packets the subscribers received without a probe payload (the server's padding).
    pub padding_received: u64,
    /// Each subscriber's view of each video track (layer, switches, frames/s, freezes).
    pub viewers: Vec<SubscriberVideo>,
    pub series: Vec<SeriesPoint>,
}

/// What [`Report::build`] needs.
pub struct Inputs<'a> {
    pub config: &'a LoadConfig,
    pub participants: usize,
    pub expected_tracks: usize,
    pub window: Duration,
    pub window_start: &'a WorkerSnapshot,
    pub window_end: &'a WorkerSnapshot,
    pub server_at_start: Option<ServerSample>,
    pub server_window_start: Option<ServerSample>,
    pub server_window_end: Option<ServerSample>,
    pub signaling: SignalingStats,
    pub series: Vec<SeriesPoint>,
    pub viewers: Vec<SubscriberVideo>,
}

impl Report {
    pub fn build(i: Inputs<'_>) -> Self {
        let secs = i.window.as_secs_f64().max(1e-3);
        let (a, b): (&Totals, &Totals) = (&i.window_start.totals, &i.window_end.totals);
        let received = b.packets_received.saturating_sub(a.packets_received) as f64;
        let mut window = b.clone();
        window.packets_expected = b.packets_expected.saturating_sub(a.packets_expected);
        window.packets_unique = b.packets_unique.saturating_sub(a.packets_unique);
        let latency = i.window_end.latency.since(&i.window_start.latency);
        let mut errors: BTreeMap<String, u64> = i.signaling.errors.into_iter().collect();
        for (k, v) in &i.window_end.failures {
            *errors.entry(format!("media:{k}")).or_default() += v;
        }
        let legs = (i.expected_tracks as f64).max(1.0);
        let server = match (
            i.server_at_start,
            i.server_window_start,
            i.server_window_end,
        ) {
            (Some(s0), Some(w0), Some(w1)) => {
                let fwd = (w1.forwarded_packets - w0.forwarded_packets).max(0.0);
                let per = |cpu: f64| if fwd > 0.0 { cpu * 1e6 / fwd } else { 0.0 };
                Some(ServerFigures {
                    forwarded_pps: fwd / secs,
                    cpu_us_per_forwarded: per(w1.process_cpu_seconds - w0.process_cpu_seconds),
                    shard_cpu_us_per_forwarded: per(w1.shard_cpu_seconds - w0.shard_cpu_seconds),
                    rss_mb: w1.resident_bytes / 1048576.0,
                    rss_kib_per_leg: (w1.resident_bytes - s0.resident_bytes).max(0.0)
                        / 1024.0
                        / legs,
                    mean_estimate_bps: {
                        let n = w1.estimate_count - w0.estimate_count;
                        (n > 0.0).then(|| (w1.estimate_sum - w0.estimate_sum) / n)
                    },
                    probes: w1.probes - w0.probes,
                    layer_switches: w1.layer_switches - w0.layer_switches,
                })
            }
            _ => None,
        };
        let lg_cpu = i.window_end.cpu_seconds - i.window_start.cpu_seconds;
        Report {
            scenario: i.config.scenario.clone().unwrap_or_else(|| {
                format!(
                    "{} room(s) × {} publisher(s) + {} subscriber(s)",
                    i.config.rooms, i.config.publishers, i.config.subscribers
                )
            }),
            participants: i.participants,
            window_seconds: secs,
            tracks_expected: i.expected_tracks as u64,
            tracks_receiving: b.tracks_receiving,
            legs: i.participants as u64,
            legs_connected: b.peers_connected,
            reconnects: i.signaling.reconnects.into_iter().collect(),
            join_ms: quantiles(&i.signaling.join_ms),
            first_packet_ms: quantiles(&i.window_end.first_packet_ms),
            latency_ms: Quantiles {
                p50: latency.quantile_us(0.5) as f64 / 1000.0,
                p95: latency.quantile_us(0.95) as f64 / 1000.0,
                p99: latency.quantile_us(0.99) as f64 / 1000.0,
            },
            jitter_ms: quantiles(&i.window_end.jitter_ms),
            loss_pct: window.loss() * 100.0,
            received_mbps: b.bytes_received.saturating_sub(a.bytes_received) as f64 * 8.0
                / secs
                / 1e6,
            received_pps: received / secs,
            loadgen_cpu_us_per_received: if received > 0.0 {
                lg_cpu * 1e6 / received
            } else {
                0.0
            },
            errors,
            server,
            simulcast: i.config.simulcast.then(|| b.layers.clone()),
            padding_received: b.padding_received.saturating_sub(a.padding_received),
            viewers: i.viewers,
            series: i.series,
        }
    }

    fn rows(&self) -> Vec<(String, String)> {
        let q = |q: &Quantiles| format!("{:.1} / {:.1} / {:.1}", q.p50, q.p95, q.p99);
        let mut rows = vec![
            ("scenario".into(), self.scenario.clone()),
            ("participants".into(), self.participants.to_string()),
            (
                "measured window".into(),
                format!("{:.1} s", self.window_seconds),
            ),
            (
                "tracks received / expected".into(),
                format!("{} / {}", self.tracks_receiving, self.tracks_expected),
            ),
            (
                "legs connected / total".into(),
                format!("{} / {}", self.legs_connected, self.legs),
            ),
            ("join ms p50/p95/p99".into(), q(&self.join_ms)),
            (
                "first packet ms p50/p95/p99".into(),
                q(&self.first_packet_ms),
            ),
            ("latency ms p50/p95/p99".into(), q(&self.latency_ms)),
            ("jitter ms p50/p95/p99".into(), q(&self.jitter_ms)),
            ("loss".into(), format!("{:.3} %", self.loss_pct)),
            (
                "received".into(),
                format!(
                    "{:.1} Mbit/s, {:.0} pkt/s",
                    self.received_mbps, self.received_pps
                ),
            ),
            (
                "load generator CPU / received pkt".into(),
                format!("{:.2} µs", self.loadgen_cpu_us_per_received),
            ),
        ];
        if let Some(s) = &self.server {
            rows.push((
                "server forwarded".into(),
                format!("{:.0} pkt/s", s.forwarded_pps),
            ));
            rows.push((
                "server CPU / forwarded pkt".into(),
                format!(
                    "{:.2} µs (media shards {:.2} µs)",
                    s.cpu_us_per_forwarded, s.shard_cpu_us_per_forwarded
                ),
            ));
            rows.push((
                "server RSS".into(),
                format!(
                    "{:.1} MiB ({:.0} KiB per subscriber leg)",
                    s.rss_mb, s.rss_kib_per_leg
                ),
            ));
        }
        if let Some(s) = &self.server {
            let estimate = s
                .mean_estimate_bps
                .map_or("none".to_owned(), |e| format!("{:.0} kbit/s", e / 1000.0));
            rows.push((
                "server leg estimate (mean)".into(),
                format!(
                    "{estimate}; {:.0} probes, {:.0} layer switches",
                    s.probes, s.layer_switches
                ),
            ));
        }
        if let Some(l) = &self.simulcast {
            rows.extend(simulcast_rows(l));
        }
        rows.extend(viewers::rows(&self.viewers));
        rows.push((
            "padding received (not media)".into(),
            format!("{} pkt", self.padding_received),
        ));
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(("errors".into(), errors));
        if !self.reconnects.is_empty() {
            let reconnects = self
                .reconnects
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            rows.push(("reconnects".into(), reconnects));
        }
        rows
    }

    /// Prints the summary table on stdout.
    pub fn print(&self) {
        let rows = self.rows();
        let w = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        println!();
        for (k, v) in rows {
            println!("{k:<w$}  {v}");
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A self-contained HTML page: the summary table and four charts.
    pub fn to_html(&self) -> String {
        let mut html = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Chorus load test</title>\
<style>body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#1d2330;background:#f6f7fb}\
h1{font-weight:650}table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px #0002;border-radius:8px;overflow:hidden}\
td{padding:.45rem .9rem;border-bottom:1px solid #eef}td:first-child{color:#556;white-space:nowrap}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:1rem;margin-top:1.5rem}\
figure{margin:0;background:#fff;border-radius:8px;padding:.8rem;box-shadow:0 1px 3px #0002}\
figcaption{font-weight:600;margin-bottom:.4rem}</style></head><body><h1>Chorus load test</h1><table>",
        );
        for (k, v) in self.rows() {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&k),
                escape(&v)
            );
        }
        html.push_str("</table><div class=\"charts\">");
        let t: Vec<f64> = self.series.iter().map(|p| p.t).collect();
        let series = |f: fn(&SeriesPoint) -> f64| self.series.iter().map(f).collect::<Vec<_>>();
        html.push_str(&chart(
            "Received bitrate (Mbit/s)",
            &t,
            &[("#3366cc", series(|p| p.received_mbps))],
        ));
        html.push_str(&chart("Loss (%)", &t, &[("#d33", series(|p| p.loss_pct))]));
        html.push_str(&chart(
            "One-way latency (ms): p50 blue, p99 orange",
            &t,
            &[
                ("#3366cc", series(|p| p.latency_p50_ms)),
                ("#f90", series(|p| p.latency_p99_ms)),
            ],
        ));
        html.push_str(&chart(
            "Server CPU (% of one core)",
            &t,
            &[("#393", series(|p| p.server_cpu_pct))],
        ));
        html.push_str("</div></body></html>");
        html
    }
}

/// The simulcast lines: per layer received, on the asked-for layer, continuity.
fn simulcast_rows(l: &LayerTotals) -> Vec<(String, String)> {
    let per_layer = (0..LAYERS)
        .map(|i| {
            let mb = l.bytes[i] as f64 / 1e6;
            format!("{}: {} pkt, {mb:.1} MB", RIDS[i], l.packets[i])
        })
        .collect::<Vec<_>>()
        .join("; ");
    let total = l.on_choice + l.off_choice;
    vec![
        ("simulcast received per layer".into(), per_layer),
        (
            "simulcast on the asked-for layer".into(),
            format!("{} of {total} pkt", l.on_choice),
        ),
        (
            "simulcast continuity".into(),
            format!(
                "{} sequence gaps, {} picture-id jumps",
                l.seq_gaps, l.picture_id_jumps
            ),
        ),
    ]
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG line chart of one or more series over time.
fn chart(title: &str, t: &[f64], lines: &[(&str, Vec<f64>)]) -> String {
    let (w, h, pad) = (440.0, 200.0, 36.0);
    let t_max = t.iter().cloned().fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|(_, v)| v.iter().cloned())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {h}\" width=\"100%\">\
<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#99a\"/>\
<line x1=\"{pad}\" y1=\"8\" x2=\"{pad}\" y2=\"{}\" stroke=\"#99a\"/>\
<text x=\"2\" y=\"14\" font-size=\"10\">{:.1}</text><text x=\"2\" y=\"{}\" font-size=\"10\">0</text>\
<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{:.0} s</text>",
        escape(title),
        h - pad,
        w - 8.0,
        h - pad,
        h - pad,
        y_max,
        h - pad,
        w - 8.0,
        h - 20.0,
        t_max
    );
    for (color, values) in lines {
        let points: Vec<String> = t
            .iter()
            .zip(values)
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    pad + x / t_max * (w - pad - 8.0),
                    (h - pad) - y / y_max * (h - pad - 8.0)
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_small_sample() {
        let q = quantiles(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((q.p50, q.p95, q.p99), (3.0, 5.0, 5.0));
        assert_eq!(quantiles(&[]).p50, 0.0);
    }

    #[test]
    fn chart_scales_points_into_the_box() {
        let svg = chart("x", &[0.0, 10.0], &[("#000", vec![0.0, 5.0])]);
        assert!(svg.contains("polyline"));
        assert!(svg.contains("36.0,164.0"));
    }
}
