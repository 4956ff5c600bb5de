//! A lossy link for tests: two network namespaces this test creates, joined by a veth pair whose
//! only addresses live inside them, with nftables dropping a share of the UDP datagrams to and
//! from a port range in the server's namespace (random, `numgen random mod 100 < loss`), or a
//! token-bucket cap (`tc qdisc ... tbf`) on what the server sends. Needs root and the `ip`,
//! `tc` and `nft` tools; [`LossyLink::create`] says why it cannot when they are
//! missing, and the namespaces (with the veth pair) go away when the link is dropped, even when
//! the test fails.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The server's side of the link.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The clients' side of the link.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The veth end in the server's namespace (where a rate cap shapes what the server sends).
pub const SERVER_DEV: &str = "lossy0";

/// Why a lossy-link test cannot run here (not root, or no `ip`/`nft`), `None` when it can.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root to create network namespaces".into());
    }
    for tool in ["ip", "tc", "nft"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("needs the `{tool}` tool"));
        }
    }
    None
}

/// Skips the calling test with `why`, or fails it when `CI=true` (CI must run it).
pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("lossy-link test cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED lossy-link test: {why}");
}

/// A child process killed (and reaped) on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two namespaces and the veth pair between them; deleted on drop.
pub struct LossyLink {
    pub server_ns: String,
    pub client_ns: String,
}

fn run(args: &[&str], stdin: Option<&str>) -> Result<Output, String> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("{args:?}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

impl LossyLink {
    /// Creates the namespaces and the link, and drops `loss_pct` % of the UDP datagrams to and
    /// from ports `udp_ports` (inclusive) of the server's namespace, each direction.
    pub fn create(loss_pct: u32, udp_ports: (u16, u16)) -> Result<Self, String> {
        let link = Self::clean()?;
        let (lo, hi) = udp_ports;
        let rules = format!(
            "table inet lossy {{\n\
             chain input {{ type filter hook input priority 0; policy accept; \
             udp dport {lo}-{hi} numgen random mod 100 < {loss_pct} counter drop; }}\n\
             chain output {{ type filter hook output priority 0; policy accept; \
             udp sport {lo}-{hi} numgen random mod 100 < {loss_pct} counter drop; }}\n\
             }}\n"
        );
        run(
            &["ip", "netns", "exec", &link.server_ns, "nft", "-f", "-"],
            Some(&rules),
        )?;
        Ok(link)
    }

    /// Creates the namespaces and a link that loses nothing (until [`Self::cap_rate`]).
    pub fn clean() -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let link = LossyLink {
            server_ns: format!("chorus-lossy-srv-{tag}"),
            client_ns: format!("chorus-lossy-cli-{tag}"),
        };
        // From here on, dropping `link` deletes whatever was created.
        run(&["ip", "netns", "add", &link.server_ns], None)?;
        run(&["ip", "netns", "add", &link.client_ns], None)?;
        run(
            &[
                "ip",
                "link",
                "add",
                "name",
                SERVER_DEV,
                "netns",
                &link.server_ns,
                "type",
                "veth",
                "peer",
                "name",
                "lossy1",
                "netns",
                &link.client_ns,
            ],
            None,
        )?;
        for (ns, dev, ip) in [
            (&link.server_ns, SERVER_DEV, SERVER_IP),
            (&link.client_ns, "lossy1", CLIENT_IP),
        ] {
            let addr = format!("{ip}/24");
            run(&["ip", "-n", ns, "addr", "add", &addr, "dev", dev], None)?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"], None)?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"], None)?;
        }
        Ok(link)
    }

    /// Caps what the server's namespace sends to the clients' at `kbit` kbit/s (a token bucket,
    /// `tc qdisc ... tbf`, with a 20 KB burst and 100 ms of queue); replaces any earlier cap.
    pub fn cap_rate(&self, kbit: u32) -> Result<(), String> {
        let rate = format!("{kbit}kbit");
        let tbf = ["tbf", "rate", &rate, "burst", "20kb", "latency", "100ms"];
        self.root_qdisc("replace", &tbf)
    }

    /// Removes the cap of [`Self::cap_rate`].
    pub fn uncap(&self) -> Result<(), String> {
        self.root_qdisc("del", &[])
    }

    /// `tc qdisc <verb> dev SERVER_DEV root <qdisc...>` in the server's namespace.
    fn root_qdisc(&self, verb: &str, qdisc: &[&str]) -> Result<(), String> {
        let mut args = vec!["ip", "netns", "exec", &self.server_ns, "tc", "qdisc", verb];
        args.extend(["dev", SERVER_DEV, "root"]);
        args.extend_from_slice(qdisc);
        run(&args, None).map(drop)
    }

    /// `chorus serve` inside the server's namespace on `signaling_port` and UDP `media_port`
    /// (plus `args`), once it says `listening`.
    pub fn serve(&self, signaling_port: u16, media_port: u16, args: &[&str]) -> Killed {
        let mut command = self.command(&self.server_ns, env!("CARGO_BIN_EXE_chorus"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHORUS_")) {
            command.env_remove(key);
        }
        let listen = format!("{SERVER_IP}:{signaling_port}");
        let (ip, port) = (SERVER_IP.to_string(), media_port.to_string());
        command
            .args(["serve", "--listen", &listen, "--udp-port", &port])
            .args([
                "--udp-threads",
                "2",
                "--udp-bind",
                &ip,
                "--advertise-ip",
                &ip,
            ])
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // `CHORUS_TEST_SERVER_LOG=<filter>` (the `--log` syntax) shows the server's log among
        // the test's.
        let echo = std::env::var("CHORUS_TEST_SERVER_LOG").ok();
        if let Some(filter) = &echo {
            command.args(["--log", filter]);
        }
        let echo = echo.is_some();
        let mut child = Killed(command.spawn().expect("start chorus serve"));
        let stdout = child.0.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("server: {line}");
                }
                if line.contains("listening") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(15))
            .expect("the server says it is listening within 15 s");
        child
    }

    /// `program` run inside namespace `ns` (one of this link's).
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }

    /// Datagrams the loss rules dropped so far (both directions).
    pub fn dropped(&self) -> u64 {
        let Ok(out) = run(
            &[
                "ip",
                "netns",
                "exec",
                &self.server_ns,
                "nft",
                "list",
                "ruleset",
            ],
            None,
        ) else {
            return 0;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        text.split("packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = run(&["ip", "netns", "del", ns], None);
        }
    }
}
