//! Server configuration: the one [`Config`] struct, filled from command-line flags and
//! `CHORUS_*` environment variables by clap, and validated once at start. It owns defaults and
//! their documentation; it must not read files, open sockets or hold runtime state. The media
//! engine's part of it ([`MediaConfig`]) is defined here too, so configuration sits below the
//! engine it configures.

use clap::{Args, ValueEnum};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Default HTTP/WebSocket listen address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
/// Default first UDP media port.
pub const DEFAULT_UDP_PORT: u16 = 40000;
/// Default `--drain-timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// Bytes of an offer or answer allowed per room member when `--max-sdp-bytes` is 0: the
/// microphone and camera sections of a browser that lists every codec it has in each (Chrome:
/// about 5.4 KB), with room for a screen share here and there and for JSON escaping.
pub const SDP_BYTES_PER_PARTICIPANT: usize = 8 * 1024;
/// Bytes of an offer or answer besides its members' sections (session lines, data channel).
pub const SDP_BASE_BYTES: usize = 16 * 1024;

/// Settings of the media engine, taken from the command line.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// First UDP port; shard k listens on `udp_port + k` (0 = ephemeral ports, for tests).
    pub udp_port: u16,
    /// Number of shard threads (0 = one per core).
    pub udp_threads: usize,
    /// Address the UDP sockets bind to (unspecified = one socket per interface address).
    pub bind_ip: IpAddr,
    /// Addresses advertised as ICE host candidates (empty = every usable interface + 127.0.0.1).
    pub advertise_ips: Vec<IpAddr>,
    /// Pin shard k to CPU core k (modulo the core count), for benchmarks and dedicated hosts.
    pub pin_shards: bool,
    /// Per-connection limits of the shards.
    pub limits: ShardLimits,
}

/// Default of `--probe-max-bitrate`: 5 Mbit/s.
pub const DEFAULT_PROBE_MAX_BPS: u64 = 5_000_000;

/// Limits a shard applies to each media connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimits {
    /// A connection negotiated this long ago whose ICE and DTLS are not up is failed.
    pub dtls_timeout: Duration,
    /// Most remote addresses remembered per connection.
    pub addrs_per_peer: usize,
    /// A remote address silent this long is forgotten.
    pub addr_idle: Duration,
    /// Forward RTP on the fast path (own SRTP, straight to `sendmmsg`) once a leg is up.
    pub fast_path: bool,
    /// Most bits per second a leg's bandwidth probe aims at (media plus padding); 0: no
    /// probing.
    pub probe_max_bps: u64,
}

impl Default for ShardLimits {
    fn default() -> Self {
        Self {
            dtls_timeout: Duration::from_secs(20),
            addrs_per_peer: 8,
            addr_idle: Duration::from_secs(30),
            fast_path: true,
            probe_max_bps: DEFAULT_PROBE_MAX_BPS,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            udp_port: DEFAULT_UDP_PORT,
            udp_threads: 0,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            advertise_ips: Vec::new(),
            pin_shards: false,
            limits: ShardLimits::default(),
        }
    }
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    #[default]
    Pretty,
}

/// Everything `chorus serve` can be told. Every flag also reads `CHORUS_<FLAG>`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Config {
    /// HTTP/WebSocket listen address.
    #[arg(long, env = "CHORUS_LISTEN", default_value_t = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// HS256 secret for access tokens. Unset: the server is open to anyone.
    #[arg(long, env = "CHORUS_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// Most members (SFU participants and mesh peers together) in one room.
    #[arg(long, env = "CHORUS_MAX_PARTICIPANTS", default_value_t = 16)]
    pub max_participants: usize,

    /// Most rooms open at once.
    #[arg(long, env = "CHORUS_MAX_ROOMS", default_value_t = 1000)]
    pub max_rooms: usize,

    /// Chat messages kept per room and sent to every joiner.
    #[arg(long, env = "CHORUS_CHAT_HISTORY", default_value_t = 100)]
    pub chat_history: usize,

    /// Longest chat text, in bytes of UTF-8.
    #[arg(long, env = "CHORUS_MAX_CHAT_BYTES", default_value_t = 4096)]
    pub max_chat_bytes: usize,

    /// Largest WebSocket frame/message accepted, in bytes; larger closes with 1009.
    #[arg(long, env = "CHORUS_MAX_FRAME_BYTES", default_value_t = 65536)]
    pub max_frame_bytes: usize,

    /// Largest `offer`/`answer` message of an SFU participant, in bytes (its SDP grows with
    /// the room); 0 = sized from --max-participants. Never below --max-frame-bytes.
    #[arg(long, env = "CHORUS_MAX_SDP_BYTES", default_value_t = 0)]
    pub max_sdp_bytes: usize,

    /// Sustained messages per second allowed per connection (token bucket refill rate).
    #[arg(long, env = "CHORUS_RATE_LIMIT", default_value_t = 50.0)]
    pub rate_limit: f64,

    /// Burst of messages allowed per connection (token bucket size).
    #[arg(long, env = "CHORUS_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,

    /// Rate-limited messages tolerated within 10 s before the connection is closed with 1008.
    #[arg(long, env = "CHORUS_RATE_STRIKES", default_value_t = 50)]
    pub rate_strikes: u32,

    /// Seconds between WebSocket pings.
    #[arg(long, env = "CHORUS_PING_INTERVAL_SECS", default_value_t = 10)]
    pub ping_interval_secs: u64,

    /// Seconds without any frame from the client after which the connection is dropped.
    #[arg(long, env = "CHORUS_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub idle_timeout_secs: u64,

    /// Milliseconds a new connection has to send `join` before it is treated as a seed-000 mesh
    /// client (given a `client-id`).
    #[arg(long, env = "CHORUS_MESH_GRACE_MS", default_value_t = 400)]
    pub mesh_grace_ms: u64,

    /// Messages queued for one connection before it is dropped as too slow.
    #[arg(long, env = "CHORUS_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,

    /// ICE server URL handed to clients in `joined` (repeatable, e.g. stun:stun.example.org:3478).
    #[arg(long = "ice-server", env = "CHORUS_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Vec<String>,

    /// Log output format.
    #[arg(long, env = "CHORUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `chorus=debug,info`.
    #[arg(
        long,
        env = "CHORUS_LOG",
        default_value = "info,rtc=warn,rtc_ice=warn,rtc_dtls=error"
    )]
    pub log: String,

    /// First UDP port for media; shard k listens on port + k. 0 = ephemeral ports.
    #[arg(long, env = "CHORUS_UDP_PORT", default_value_t = DEFAULT_UDP_PORT)]
    pub udp_port: u16,

    /// Media shard threads (0 = one per core).
    #[arg(long, env = "CHORUS_UDP_THREADS", default_value_t = 0)]
    pub udp_threads: usize,

    /// Address the UDP media sockets bind to.
    #[arg(long, env = "CHORUS_UDP_BIND", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub udp_bind: IpAddr,

    /// Address advertised in ICE candidates (repeatable). None: every usable interface.
    #[arg(
        long = "advertise-ip",
        env = "CHORUS_ADVERTISE_IPS",
        value_delimiter = ','
    )]
    pub advertise_ips: Vec<IpAddr>,

    /// Pin media shard k to CPU core k (benchmarks, dedicated hosts).
    #[arg(long, env = "CHORUS_PIN_SHARDS", default_value_t = false)]
    pub pin_shards: bool,

    /// Seconds a media connection may stay without ICE and DTLS up after its first
    /// negotiation; then the client gets `error media-failed` and the leg is rebuilt.
    #[arg(long, env = "CHORUS_DTLS_TIMEOUT_SECS", default_value_t = 20)]
    pub dtls_timeout_secs: u64,

    /// Forward RTP on the fast path (the server's own SRTP and send batches) once a leg's
    /// DTLS is up (AES-128-GCM or AES-CM-HMAC-SHA1-80); `false` sends every packet through the WebRTC stack.
    #[arg(long, env = "CHORUS_FAST_PATH", default_value_t = true, action = clap::ArgAction::Set)]
    pub fast_path: bool,

    /// Most bits per second a subscriber leg's bandwidth probe aims at (its media plus
    /// padding, in bursts of half a second at most every 3 s); 0 turns probing off.
    #[arg(long, env = "CHORUS_PROBE_MAX_BITRATE", default_value_t = DEFAULT_PROBE_MAX_BPS)]
    pub probe_max_bitrate: u64,

    /// Most remote addresses remembered per media connection (authenticated STUN only).
    #[arg(long, env = "CHORUS_MEDIA_ADDRS_PER_PEER", default_value_t = 8)]
    pub media_addrs_per_peer: usize,

    /// Seconds after which a remote media address nothing arrived from is forgotten.
    #[arg(long, env = "CHORUS_MEDIA_ADDR_IDLE_SECS", default_value_t = 30)]
    pub media_addr_idle_secs: u64,

    /// On SIGTERM, how long calls in progress may go on (joins refused) before the process
    /// exits anyway, e.g. 90s, 15m.
    #[arg(long, env = "CHORUS_DRAIN_TIMEOUT", default_value = "300s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Bearer key (>= 16 bytes) of the admin API under /admin. Unset: the admin API is off (404).
    #[arg(long, env = "CHORUS_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// Extra listen address serving only /metrics and /healthz (e.g. a port only Prometheus
    /// reaches). /metrics stays on --listen too.
    #[arg(long, env = "CHORUS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Seconds a WebSocket may stay in no room (after connecting, or after leaving) before it
    /// gets `error join-timeout` and is closed with 4408.
    #[arg(long, env = "CHORUS_JOIN_TIMEOUT_SECS", default_value_t = 10)]
    pub join_timeout_secs: u64,

    /// Seconds a client has to send a complete HTTP request head (also the keep-alive idle
    /// limit); slower connections are closed.
    #[arg(long, env = "CHORUS_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Most WebSocket connections open at once; more are refused at the upgrade with 503
    /// `server-full`. Kept below the open-file limit.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS", default_value_t = 10000)]
    pub max_connections: usize,

    /// Most WebSocket connections from one IP address (IPv6: one /64); more are refused with
    /// 429 `too-many-connections`. 0 = unlimited.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Web origins (besides the server's own) whose pages may open /ws: exact origins like
    /// `https://app.example.org`, `http://localhost:*` for any port, or `*` for all. Clients that
    /// send no Origin are always allowed.
    #[arg(
        long = "allowed-origins",
        env = "CHORUS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Redis URL (e.g. redis://redis:6379/0) of a cluster of nodes sharing rooms. Unset: this
    /// process is the whole server.
    #[arg(long, env = "CHORUS_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// This node's name in the cluster (default: the host name and a random suffix).
    #[arg(long, env = "CHORUS_NODE_ID")]
    pub node_id: Option<String>,

    /// WebSocket base URL other nodes reach this node at (e.g. ws://10.0.0.5:8080). Default:
    /// ws:// + the listen address, or the first --advertise-ip when listening on all addresses.
    #[arg(long, env = "CHORUS_NODE_URL")]
    pub node_url: Option<String>,

    /// Seconds without a heartbeat after which a node counts as dead and its rooms are placed
    /// anew (heartbeats go every quarter of it).
    #[arg(long, env = "CHORUS_NODE_TIMEOUT_SECS", default_value_t = 6)]
    pub node_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            auth_secret: None,
            max_participants: 16,
            max_rooms: 1000,
            chat_history: 100,
            max_chat_bytes: 4096,
            max_frame_bytes: 65536,
            max_sdp_bytes: 0,
            rate_limit: 50.0,
            rate_burst: 100,
            rate_strikes: 50,
            ping_interval_secs: 10,
            idle_timeout_secs: 30,
            mesh_grace_ms: 400,
            send_queue: 1024,
            ice_servers: Vec::new(),
            log_format: LogFormat::Pretty,
            log: "info,rtc=warn,rtc_ice=warn,rtc_dtls=error".to_owned(),
            udp_port: DEFAULT_UDP_PORT,
            udp_threads: 0,
            udp_bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            advertise_ips: Vec::new(),
            pin_shards: false,
            dtls_timeout_secs: 20,
            fast_path: true,
            probe_max_bitrate: DEFAULT_PROBE_MAX_BPS,
            media_addrs_per_peer: 8,
            media_addr_idle_secs: 30,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            admin_key: None,
            metrics_addr: None,
            join_timeout_secs: 10,
            header_timeout_secs: 10,
            max_connections: 10000,
            max_connections_per_ip: 256,
            allowed_origins: Vec::new(),
            redis_url: None,
            node_id: None,
            node_url: None,
            node_timeout_secs: 6,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |what: &str| Err(ConfigError(what.to_owned()));
        if self.max_participants == 0 {
            return fail("--max-participants must be at least 1");
        }
        if self.max_rooms == 0 {
            return fail("--max-rooms must be at least 1");
        }
        if !(self.rate_limit.is_finite() && self.rate_limit > 0.0) {
            return fail("--rate-limit must be a positive number");
        }
        if self.rate_burst == 0 {
            return fail("--rate-burst must be at least 1");
        }
        if self.max_frame_bytes < 1024 {
            return fail("--max-frame-bytes must be at least 1024");
        }
        if self.ping_interval_secs == 0 || self.idle_timeout_secs <= self.ping_interval_secs {
            return fail("--idle-timeout-secs must exceed --ping-interval-secs (> 0)");
        }
        if self.join_timeout_secs == 0 {
            return fail("--join-timeout-secs must be at least 1");
        }
        if self.header_timeout_secs == 0 {
            return fail("--header-timeout-secs must be at least 1");
        }
        if self.max_connections == 0 {
            return fail("--max-connections must be at least 1");
        }
        if let Some(bad) = self.allowed_origins.iter().find(|o| !valid_origin_entry(o)) {
            return Err(ConfigError(format!(
                "--allowed-origins: `{bad}` is not `*` or an origin like https://app.example.org \
                 (or http://localhost:* for any port)"
            )));
        }
        if self.dtls_timeout_secs == 0 {
            return fail("--dtls-timeout-secs must be at least 1");
        }
        if self.media_addrs_per_peer == 0 {
            return fail("--media-addrs-per-peer must be at least 1");
        }
        if self.media_addr_idle_secs == 0 {
            return fail("--media-addr-idle-secs must be at least 1");
        }
        if self.send_queue == 0 {
            return fail("--send-queue must be at least 1");
        }
        if self.auth_secret.as_deref().is_some_and(|s| s.len() < 16) {
            return fail("--auth-secret must be at least 16 bytes");
        }
        if self.admin_key.as_deref().is_some_and(|s| s.len() < 16) {
            return fail("--admin-key must be at least 16 bytes");
        }
        self.validate_cluster()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let fail = |what: &str| Err(ConfigError(what.to_owned()));
        if self.node_timeout_secs < 2 {
            return fail("--node-timeout-secs must be at least 2");
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return fail("--redis-url must start with redis:// or rediss://");
            }
        }
        if let Some(id) = &self.node_id {
            let valid = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return fail("--node-id must be 1-64 of [A-Za-z0-9_-]");
            }
        }
        if let Some(url) = &self.node_url {
            if !url.starts_with("ws://") {
                return fail("--node-url must start with ws:// (nodes relay over plain WebSocket)");
            }
        }
        Ok(())
    }

    /// Seconds without a heartbeat after which a node is dead.
    pub fn node_timeout(&self) -> Duration {
        Duration::from_secs(self.node_timeout_secs)
    }

    /// The media engine's part of the settings.
    pub fn media(&self) -> MediaConfig {
        MediaConfig {
            udp_port: self.udp_port,
            udp_threads: self.udp_threads,
            bind_ip: self.udp_bind,
            advertise_ips: self.advertise_ips.clone(),
            pin_shards: self.pin_shards,
            limits: ShardLimits {
                dtls_timeout: Duration::from_secs(self.dtls_timeout_secs),
                addrs_per_peer: self.media_addrs_per_peer,
                addr_idle: Duration::from_secs(self.media_addr_idle_secs),
                fast_path: self.fast_path,
                probe_max_bps: self.probe_max_bitrate,
            },
        }
    }

    /// The largest `offer`/`answer` message an SFU participant may send: `--max-sdp-bytes`, or
    /// when 0 enough for a room of `--max-participants` members whose browser lists every
    /// codec in every section; never below `--max-frame-bytes`.
    pub fn sdp_limit(&self) -> usize {
        let sized = match self.max_sdp_bytes {
            0 => SDP_BASE_BYTES.saturating_add(
                self.max_participants
                    .saturating_mul(SDP_BYTES_PER_PARTICIPANT),
            ),
            n => n,
        };
        sized.max(self.max_frame_bytes)
    }

    /// The largest message the WebSocket layer reassembles (fragments included).
    pub fn message_limit(&self) -> usize {
        self.sdp_limit()
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn mesh_grace(&self) -> Duration {
        Duration::from_millis(self.mesh_grace_ms)
    }

    pub fn join_timeout(&self) -> Duration {
        Duration::from_secs(self.join_timeout_secs)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
}

/// Parses a duration like `90s`, `15m`, `1h`, `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 15m, 1h or 7d"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("unknown duration unit `{unit}` (use s, m, h or d)")),
    };
    number
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

/// Whether an `--allowed-origins` entry has a usable form: `*`, or `http(s)://host[:port]`
/// (the port may be `*`) without a path.
pub fn valid_origin_entry(entry: &str) -> bool {
    let entry = entry.trim();
    if entry == "*" {
        return true;
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.trim_end_matches('/').contains('/')
}

#[cfg(test)]
mod tests;
