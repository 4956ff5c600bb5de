//! Fan-out benchmark of the media engine (issue: one publisher → N subscribers, server media on
//! one shard pinned to core 0, the synthetic peers on core 1). For each publisher packet rate it
//! reports forwarded packets per second, loss, and server CPU µs per forwarded packet, measured
//! from the shard thread's own CPU clock (`chorus_shard_cpu_seconds_total`) over the same window
//! as the forwarded-packet counter. Run: `cargo bench --bench fanout -- [subscribers] [rates]
//! [seconds] [payload bytes]`, e.g. `cargo bench --bench fanout -- 20 500,1000,2000 5 1200`.

use chorus::client::{ClientOptions, SfuClient, TrackSpec};
use chorus::protocol::{TrackKind, TrackSource};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Sample {
    forwarded: f64,
    cpu_seconds: f64,
}

async fn scrape(addr: &str) -> anyhow::Result<Sample> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(Sample {
        forwarded: value("chorus_forwarded_packets_total"),
        cpu_seconds: value("chorus_shard_cpu_seconds_total"),
    })
}

/// Waits for the next once-a-second publish of the shard counters, so that both counters of
/// a sample belong to the same instant.
async fn aligned_scrape(addr: &str) -> anyhow::Result<(Instant, Sample)> {
    let first = scrape(addr).await?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = scrape(addr).await?;
        if s.cpu_seconds != first.cpu_seconds || Instant::now() > deadline {
            return Ok((Instant::now(), s));
        }
    }
}

fn received_total(subscribers: &[SfuClient]) -> u64 {
    subscribers
        .iter()
        .flat_map(|s| s.received())
        .map(|r| r.packets)
        .sum()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let subscribers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let rates: Vec<u32> = args
        .get(1)
        .map(|r| r.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![500, 1000, 2000]);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| chorus::net::thread::pin_to_core(1))
        .enable_all()
        .build()?;
    chorus::net::thread::pin_to_core(1);
    runtime.block_on(run(subscribers, rates, seconds, size))
}

async fn run(subscribers: usize, rates: Vec<u32>, seconds: u64, size: usize) -> anyhow::Result<()> {
    let config = chorus::Config {
        listen: "127.0.0.1:0".parse()?,
        udp_port: 0,
        udp_threads: 1,
        pin_shards: true,
        advertise_ips: vec!["127.0.0.1".parse()?],
        udp_bind: "127.0.0.1".parse()?,
        max_participants: 1000,
        ..chorus::Config::default()
    };
    let server = chorus::spawn(config).await?;
    let addr = server.addr().to_string();
    let url = format!("ws://{addr}/ws");
    let quiet = ClientOptions {
        record_hashes: false,
        ..ClientOptions::default()
    };
    let mut subs = Vec::new();
    for i in 0..subscribers {
        subs.push(
            SfuClient::connect_with(&url, "bench", &format!("sub{i}"), None, quiet.clone()).await?,
        );
    }
    println!(
        "fan-out 1 → {subscribers}, {size}-byte payloads, {seconds} s per rate, shard pinned to core 0, peers on core 1"
    );
    println!(
        "| publisher pkt/s | forwarded pkt/s | loss | server CPU µs / forwarded pkt | shard CPU |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for rate in rates {
        let options = ClientOptions {
            video_packet_rate: rate,
            video_payload_size: size,
            keyframe_interval: Duration::from_secs(3600),
            ..quiet.clone()
        };
        let publisher = SfuClient::connect_with(&url, "bench", "pub", None, options).await?;
        publisher
            .publish(&[TrackSpec {
                kind: TrackKind::Video,
                source: TrackSource::Camera,
                muted: false,
            }])
            .await?;
        tokio::time::sleep(Duration::from_secs(3)).await; // negotiation + warm-up
        let sent0 = publisher.published().iter().map(|p| p.sent).sum::<u64>();
        let recv0 = received_total(&subs);
        let (t0, s0) = aligned_scrape(&addr).await?;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (t1, s1) = aligned_scrape(&addr).await?;
        let sent1 = publisher.published().iter().map(|p| p.sent).sum::<u64>();
        tokio::time::sleep(Duration::from_millis(300)).await; // let in-flight packets land
        let recv1 = received_total(&subs);
        let elapsed = t1.duration_since(t0).as_secs_f64();
        let forwarded = s1.forwarded - s0.forwarded;
        let cpu = s1.cpu_seconds - s0.cpu_seconds;
        let expected = (sent1 - sent0) as f64 * subscribers as f64;
        let received = (recv1 - recv0) as f64;
        let loss = if expected > 0.0 {
            (1.0 - received / expected).max(0.0)
        } else {
            0.0
        };
        println!(
            "| {rate} | {:.0} | {:.2} % | {:.2} | {:.0} % |",
            forwarded / elapsed,
            loss * 100.0,
            if forwarded > 0.0 {
                cpu * 1e6 / forwarded
            } else {
                0.0
            },
            cpu / elapsed * 100.0
        );
        publisher.leave().await.ok();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}
