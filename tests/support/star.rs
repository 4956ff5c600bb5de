//! A star of network namespaces for tests of many links at once: one namespace for the server
//! and one per client link, each joined to the server's by its own veth pair (link k:
//! 10.79.k.0/24, the server end .1, the client end .2, the client's default route through the
//! server end). The server's address is link 0's server end; a token-bucket cap
//! (`tc qdisc ... tbf`) on a link's server end limits what the server sends down that link
//! alone. Needs root and `ip`/`tc` (see [`super::netns::unavailable`]); everything goes away
//! when the star is dropped, even when the test fails.

use super::netns::Killed;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A server namespace and `links` client namespaces around it.
pub struct Star {
    pub server_ns: String,
    pub client_ns: Vec<String>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{args:?} failed: {}", err.trim()));
    }
    Ok(())
}

impl Star {
    /// Creates the server namespace and `links` client namespaces, each with its link.
    pub fn create(links: usize) -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut star = Star {
            server_ns: format!("chorus-star-srv-{tag}"),
            client_ns: Vec::new(),
        };
        run(&["ip", "netns", "add", &star.server_ns])?;
        run(&["ip", "-n", &star.server_ns, "link", "set", "lo", "up"])?;
        for k in 0..links {
            let ns = format!("chorus-star-{k}-{tag}");
            run(&["ip", "netns", "add", &ns])?;
            star.client_ns.push(ns.clone());
            let (srv_dev, cli_dev) = (Self::server_dev(k), format!("star{k}c"));
            let srv = star.server_ns.as_str();
            run(&[
                "ip", "link", "add", "name", &srv_dev, "netns", srv, "type", "veth", "peer",
                "name", &cli_dev, "netns", &ns,
            ])?;
            let (srv_addr, cli_addr) = (format!("10.79.{k}.1/24"), format!("10.79.{k}.2/24"));
            for (ns, dev, addr) in [(srv, &srv_dev, srv_addr), (&ns, &cli_dev, cli_addr)] {
                run(&["ip", "-n", ns, "addr", "add", &addr, "dev", dev])?;
                run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
                run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            }
            let gateway = Self::server_side(k).to_string();
            run(&["ip", "-n", &ns, "route", "add", "default", "via", &gateway])?;
        }
        Ok(star)
    }

    /// The server's address (link 0's server end).
    pub fn server_ip() -> Ipv4Addr {
        Self::server_side(0)
    }

    fn server_side(k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 79, k as u8, 1)
    }

    /// The client end of link `k`.
    pub fn client_ip(k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 79, k as u8, 2)
    }

    fn server_dev(k: usize) -> String {
        format!("star{k}s")
    }

    /// Caps what the server sends down link `k` at `kbit` kbit/s (a token bucket with a 20 KB
    /// burst and 100 ms of queue, as `LossyLink::cap_rate`); replaces any earlier cap.
    pub fn cap(&self, k: usize, kbit: u32) -> Result<(), String> {
        let (dev, rate) = (Self::server_dev(k), format!("{kbit}kbit"));
        let (ns, tbf) = (&self.server_ns, ["tbf", "rate", &rate, "burst", "20kb"]);
        let mut args = vec!["ip", "netns", "exec", ns, "tc", "qdisc", "replace"];
        args.extend(["dev", &dev, "root"]);
        args.extend(tbf);
        args.extend(["latency", "100ms"]);
        run(&args)
    }

    /// Removes link `k`'s cap.
    pub fn uncap(&self, k: usize) -> Result<(), String> {
        let (dev, ns) = (Self::server_dev(k), &self.server_ns);
        run(&[
            "ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", &dev, "root",
        ])
    }

    /// `program` run inside namespace `ns`.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }

    /// `program args…` started inside namespace `ns`, killed on drop.
    pub fn spawn(&self, ns: &str, program: &str, args: &[String]) -> Killed {
        let mut command = self.command(ns, program);
        command.args(args).stdin(Stdio::null());
        Killed(command.spawn().expect("start a process in a namespace"))
    }
}

impl Drop for Star {
    fn drop(&mut self) {
        for ns in self.client_ns.iter().chain([&self.server_ns]) {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
