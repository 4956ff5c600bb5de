//! Several `chorus serve` processes sharing one `redis-server` on loopback, for the cluster
//! tests (`tests/cluster_*.rs`). Redis is started in a fresh directory on a free port without
//! persistence; every process is killed (and reaped) on drop. Without `redis-server` the tests
//! are skipped with a message, and fail under `CI=true`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Node timeout of the test nodes (heartbeat every 0.5 s).
pub const NODE_TIMEOUT_SECS: u64 = 2;

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` of its own.
pub struct Redis {
    _process: Killed,
    _dir: TempDir,
    pub url: String,
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback TCP port (free when this returns; good enough for a test).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl Redis {
    /// Starts `redis-server`; `None` (after saying why) when it is not installed, a panic then
    /// under `CI=true`.
    pub fn start() -> Option<Redis> {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "redis-server is missing (apt-get install redis-server)"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        };
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chorus-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let process = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis {
            _process: Killed(process),
            _dir: TempDir(dir),
            url: format!("redis://127.0.0.1:{port}/"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }
}

/// One `chorus serve --redis-url` process.
pub struct Node {
    process: Option<Killed>,
    pub id: String,
    pub addr: SocketAddr,
    /// Its log lines so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts node `id` with `extra` flags and waits until it listens.
    pub fn start(redis: &Redis, id: &str, extra: &[&str]) -> Node {
        let mut command: Command = super::serve_command();
        command
            .args(["--redis-url", &redis.url, "--node-id", id])
            .args(["--node-timeout-secs", &NODE_TIMEOUT_SECS.to_string()])
            .args(["--log", "info,rtc=warn,rtc_ice=warn,rtc_dtls=error"])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = Killed(command.spawn().expect("start chorus serve"));
        let stdout = child.0.stdout.take().expect("stdout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening addr=").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("node {id} did not listen"));
        Node {
            process: Some(child),
            id: id.to_owned(),
            addr: addr.parse().expect("listen address"),
            log,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.process.take();
    }

    /// SIGTERM (graceful drain).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` (e.g. SIGSTOP: the node hangs, its sockets stay open).
    pub fn signal(&self, signal: libc::c_int) {
        if let Some(process) = &self.process {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(process.0.id() as libc::pid_t, signal) };
        }
    }

    /// Value of a metric (summed over its label sets), or of one series `name{labels}`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (status, text) = super::http_get(self.addr, "/metrics").await;
        assert_eq!(status, 200, "/metrics of {}", self.id);
        let value = match name.contains('{') {
            true => chorus::metrics::text::series(&text, name),
            false => super::media::metric_value(&text, name),
        };
        value.unwrap_or(0.0)
    }

    /// Waits (up to 5 s) until a log line contains `text`: the lines are collected by a reader
    /// thread, so a line the node has written may not have been read yet.
    pub async fn logged(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen = self
                .log
                .lock()
                .expect("log lock")
                .iter()
                .any(|l| l.contains(text));
            if seen || Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits (up to 10 s) until every node sees `count` live nodes, `draining` of them draining.
pub async fn wait_nodes(nodes: &[&Node], count: usize, draining: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut ok = true;
        for node in nodes {
            let seen = node.metric("chorus_cluster_nodes").await as usize;
            let text = super::http_get(node.addr, "/metrics").await.1;
            let drains = text
                .lines()
                .find(|l| l.starts_with("chorus_cluster_nodes{state=\"draining\"}"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(-1.0) as usize;
            ok &= seen == count && drains == draining;
        }
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes never saw {count} nodes ({draining} draining)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Tracing, a Redis and nodes "a" and "b" on it (b started with `b_args`); `None` when there is
/// no redis-server (the test then passes as skipped; under `CI=true` `Redis::start` fails it).
pub fn redis_and_two_nodes(b_args: &[&str]) -> Option<(Redis, Node, Node)> {
    super::init_tracing();
    let redis = Redis::start()?;
    let a = Node::start(&redis, "a", &[]);
    let b = Node::start(&redis, "b", b_args);
    Some((redis, a, b))
}
