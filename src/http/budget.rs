//! The connection budget: how many WebSockets may be open at once, in all (`--max-connections`)
//! and from one client address (`--max-connections-per-ip`; IPv6 addresses count per /64, since
//! one host usually holds a whole /64). The upgrade handler takes a [`ConnectionPermit`] before
//! upgrading; dropping the permit gives the slot back. It must not know about HTTP.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `--max-connections` are open.
    ServerFull,
    /// `--max-connections-per-ip` are open from this address (or /64).
    TooManyFromAddress,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Open WebSocket connections, counted against the limits.
#[derive(Debug)]
pub(crate) struct ConnectionBudget {
    max_total: usize,
    /// 0 = unlimited.
    max_per_address: usize,
    counts: Mutex<Counts>,
}

impl ConnectionBudget {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The global limit in force.
    pub(crate) fn max_total(&self) -> usize {
        self.max_total
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let key = address_key(ip);
        let mut counts = self.counts.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        let from_here = counts.per_address.entry(key).or_insert(0);
        if self.max_per_address > 0 && *from_here >= self.max_per_address {
            return Err(Refusal::TooManyFromAddress);
        }
        *from_here += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            budget: self.clone(),
            key,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(from_here) = counts.per_address.get_mut(&key) {
            *from_here -= 1;
            if *from_here == 0 {
                counts.per_address.remove(&key);
            }
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.counts.lock().total
    }
}

/// One slot of the budget, held for the life of a connection.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    budget: Arc<ConnectionBudget>,
    key: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.budget.release(self.key);
    }
}

/// What an address is counted as: IPv4 (and IPv4-mapped IPv6) per address, IPv6 per /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn global_and_per_address_limits() {
        let budget = ConnectionBudget::new(3, 2);
        let a1 = budget.acquire(ip("192.0.2.1")).expect("first");
        let _a2 = budget.acquire(ip("192.0.2.1")).expect("second");
        assert_eq!(
            budget.acquire(ip("192.0.2.1")).unwrap_err(),
            Refusal::TooManyFromAddress
        );
        let _b = budget.acquire(ip("192.0.2.2")).expect("other address");
        assert_eq!(
            budget.acquire(ip("192.0.2.3")).unwrap_err(),
            Refusal::ServerFull
        );
        drop(a1);
        assert_eq!(budget.open(), 2);
        let _a3 = budget.acquire(ip("192.0.2.1")).expect("slot given back");
    }

    #[test]
    fn ipv6_counts_per_64_and_zero_means_unlimited() {
        let budget = ConnectionBudget::new(100, 1);
        let _a = budget.acquire(ip("2001:db8:1:2::1")).expect("first");
        assert_eq!(
            budget.acquire(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            Refusal::TooManyFromAddress,
            "same /64"
        );
        let _b = budget.acquire(ip("2001:db8:1:3::1")).expect("other /64");
        let _c = budget.acquire(ip("::ffff:192.0.2.1")).expect("mapped v4");
        assert_eq!(
            budget.acquire(ip("192.0.2.1")).unwrap_err(),
            Refusal::TooManyFromAddress,
            "mapped and plain IPv4 are one address"
        );
        let unlimited = ConnectionBudget::new(100, 0);
        let permits: Vec<_> = (0..50)
            .map(|_| unlimited.acquire(ip("192.0.2.1")).expect("unlimited"))
            .collect();
        assert_eq!(unlimited.open(), permits.len());
    }
}
