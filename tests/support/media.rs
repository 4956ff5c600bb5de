//! Helpers of the media integration tests (`tests/media_*.rs`, the ops tests with media): start
//! the real server in-process on 127.0.0.1 (HTTP port 0, UDP port 0), connect `SfuClient`s,
//! read `/metrics`, look into SDP, and wait for conditions — every wait bounded in time.

use super::{init_tracing, test_config};
use anyhow::{anyhow, bail, ensure, Context, Result};
use chorus::client::{ClientOptions, ReceivedTrackSnapshot, SfuClient};
use chorus::metrics::text as metrics_text;
use chorus::{Config, RunningServer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The server under test.
pub struct TestServer {
    pub server: RunningServer,
    pub ws_url: String,
    pub http: SocketAddr,
}

pub async fn start_server() -> Result<TestServer> {
    start_server_with(test_config()).await
}

pub async fn start_server_with(config: Config) -> Result<TestServer> {
    init_tracing();
    let server = chorus::spawn(config).await.context("starting the server")?;
    let http = server.addr();
    Ok(TestServer {
        ws_url: format!("ws://{http}/ws"),
        http,
        server,
    })
}

impl TestServer {
    pub async fn client(&self, room: &str, name: &str) -> Result<SfuClient> {
        self.client_with(room, name, ClientOptions::default()).await
    }

    pub async fn client_with(
        &self,
        room: &str,
        name: &str,
        options: ClientOptions,
    ) -> Result<SfuClient> {
        SfuClient::connect_with(&self.ws_url, room, name, None, options)
            .await
            .with_context(|| format!("{name} joining {room}"))
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> Result<String> {
        let (status, body) = super::http_get(self.http, "/metrics").await;
        ensure!(status == 200, "/metrics answered {status}: {body}");
        Ok(body)
    }

    /// Value of a metric (summed over its label sets); an error if it is not exported.
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let text = self.metrics_text().await?;
        metric_value(&text, name).ok_or_else(|| anyhow!("metric {name} is not exported"))
    }

    /// Waits until every named metric reads `value`.
    pub async fn wait_metrics(&self, names: &[&str], value: f64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.metrics_text().await?;
            let values: Vec<Option<f64>> = names.iter().map(|n| metric_value(&text, n)).collect();
            if values.iter().all(|v| *v == Some(value)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("metrics {names:?} are {values:?}, expected {value}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Sum of the samples of `name` in Prometheus text format (`None` if absent).
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    metrics_text::sum(text, name)
}

/// What an m-section of an SDP says about payload types and SSRCs.
#[derive(Debug, Default, Clone)]
pub struct SdpSection {
    pub mid: String,
    pub kind: String,
    /// Codec name (upper case, e.g. `VP8`, `OPUS`) → payload type.
    pub payload_types: HashMap<String, u8>,
    pub ssrcs: Vec<u32>,
    pub direction: String,
}

/// Every m-section of `sdp`.
pub fn sdp_sections(sdp: &str) -> Vec<SdpSection> {
    let mut sections: Vec<SdpSection> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("m=") {
            sections.push(SdpSection {
                kind: rest.split(' ').next().unwrap_or("").to_owned(),
                ..SdpSection::default()
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            section.mid = mid.to_owned();
        } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
            let mut parts = rtpmap.splitn(2, ' ');
            let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
            let codec = parts.next().and_then(|c| c.split('/').next());
            if let (Some(pt), Some(codec)) = (pt, codec) {
                section.payload_types.insert(codec.to_ascii_uppercase(), pt);
            }
        } else if let Some(ssrc) = line.strip_prefix("a=ssrc:") {
            let ssrc = ssrc.split(' ').next().and_then(|s| s.parse::<u32>().ok());
            if let Some(ssrc) = ssrc.filter(|s| !section.ssrcs.contains(s)) {
                section.ssrcs.push(ssrc);
            }
        } else if matches!(
            line,
            "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
        ) {
            section.direction = line[2..].to_owned();
        }
    }
    sections
}

/// The m-section with `mid`.
pub fn sdp_section(sdp: &str, mid: &str) -> Option<SdpSection> {
    sdp_sections(sdp).into_iter().find(|s| s.mid == mid)
}

/// UDP ports of the server's 127.0.0.1 candidates as seen by `client` (remote SDP + trickle).
pub async fn server_udp_ports(client: &SfuClient) -> Vec<u16> {
    let mut lines: Vec<String> = client
        .remote_sdp()
        .await
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=").map(str::to_owned))
        .collect();
    for msg in client.messages_of_type("candidate") {
        if let Some(c) = msg["candidate"]["candidate"].as_str() {
            lines.push(c.to_owned());
        }
    }
    let mut ports = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with("candidate:")) {
        // candidate:<foundation> <component> <proto> <prio> <ip> <port> typ <type> ...
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 5 && f[2].eq_ignore_ascii_case("udp") && f[4] == "127.0.0.1" {
            if let Ok(port) = f[5].parse::<u16>() {
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

/// The track received by `client` whose payloads carry `tag`.
pub fn received_by_tag(client: &SfuClient, tag: u64) -> Option<ReceivedTrackSnapshot> {
    client.received().into_iter().find(|t| t.tag == Some(tag))
}

/// Packets `client` received from the track tagged `tag` (0 if none).
pub fn packets_from(client: &SfuClient, tag: u64) -> u64 {
    received_by_tag(client, tag).map_or(0, |t| t.packets)
}

/// Waits until `client` receives packets from every track in `tags`.
pub async fn wait_receiving(client: &SfuClient, tags: &[u64], timeout: Duration) -> Result<()> {
    client
        .wait_until("tracks flowing", timeout, |c| {
            tags.iter().all(|t| packets_from(c, *t) > 0)
        })
        .await
        .with_context(|| describe(client, tags))
}

/// What `client` has, for failure messages.
pub fn describe(client: &SfuClient, wanted: &[u64]) -> String {
    let got: Vec<_> = client
        .received()
        .iter()
        .map(|t| {
            let tag = t.tag.map(|t| format!("{t:016x}"));
            (t.mid.clone(), tag, t.packets)
        })
        .collect();
    let want: Vec<_> = wanted.iter().map(|t| format!("{t:016x}")).collect();
    let types: Vec<String> = client
        .messages()
        .all()
        .iter()
        .map(|m| m.message["type"].as_str().unwrap_or("?").to_owned())
        .collect();
    let unplayable: Vec<String> = client
        .messages_of_type("track-published")
        .iter()
        .filter(|m| m["playable"] == false)
        .map(|m| format!("{} {}", m["trackId"], m["reason"]))
        .collect();
    format!(
        "{} ({:?}) waiting for {want:?}; has (mid, tag, packets) {got:?}; negotiation {:?}; \
         messages {types:?}; unplayable {unplayable:?}",
        client.peer_id(),
        client.connection_state(),
        client.negotiation()
    )
}

/// Waits until the packet count from `tag` at `client` stays the same for `quiet`; returns it.
pub async fn wait_stopped(
    client: &SfuClient,
    tag: u64,
    quiet: Duration,
    timeout: Duration,
) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut last = packets_from(client, tag);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = packets_from(client, tag);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(now);
        }
        if Instant::now() >= deadline {
            bail!(
                "packets from {tag:016x} at {} kept flowing",
                client.peer_id()
            );
        }
    }
}
