//! The cap on connections from one client address (`--max-connections-per-ip`).
//!
//! One address filling the server (up to `--max-connections`) would shut everyone else out.
//! Each connection from an address holds an [`IpSlot`]; past the cap that address is refused
//! with `429 Too Many Requests` while other addresses are served as before. Leaving is tied to
//! dropping the slot, so a connection that ends any way at all, a panic included, frees it.
//!
//! IPv6 addresses are counted by their /64 prefix: one household or one server gets a whole /64
//! and can pick any address in it, so counting single IPv6 addresses would be no cap at all.
//! IPv4 addresses written as IPv6 (`::ffff:198.51.100.7`) count as the IPv4 address.

use crate::http::Response;
use crate::sync::lock;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Seconds a refused client is asked to wait before trying again.
pub const RETRY_AFTER_SECS: u32 = 10;

/// Open connections per client address. Memory is bounded by the open connections: an address
/// is forgotten when its last slot is dropped.
#[derive(Debug)]
pub struct PerIpLimit {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count; dropping it frees the place.
#[derive(Debug)]
pub struct IpSlot {
    limit: Arc<PerIpLimit>,
    key: IpAddr,
}

/// What is counted for `ip`: the IPv4 address, or the /64 an IPv6 address lies in.
pub fn counted_as(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

impl PerIpLimit {
    /// A cap of `max` connections per address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerIpLimit {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more connection from `ip`, or `None` when that address already has
    /// [`max`](Self::max) open.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = counted_as(ip);
        let mut open = lock(&self.open);
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            limit: Arc::clone(self),
            key,
        })
    }

    /// The refusal past the cap: `429` with `Retry-After` and a one-line reason.
    pub fn refusal(&self) -> Response {
        Response::error(
            429,
            &format!(
                "too many connections from your address (at most {})",
                self.max
            ),
        )
        .header("Retry-After", RETRY_AFTER_SECS.to_string())
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.limit.open);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_has_its_own_cap_and_slots_free_on_drop() {
        let limit = PerIpLimit::new(2);
        let a1 = limit.acquire(ip("198.51.100.1")).unwrap();
        let a2 = limit.acquire(ip("198.51.100.1")).unwrap();
        assert!(limit.acquire(ip("198.51.100.1")).is_none());
        // Another address is not affected.
        let b = limit.acquire(ip("198.51.100.2")).unwrap();
        drop(a1);
        let a3 = limit.acquire(ip("198.51.100.1")).unwrap();
        assert_eq!(lock(&limit.open)[&ip("198.51.100.1")], 2);
        drop((a2, a3, b));
        assert!(
            lock(&limit.open).is_empty(),
            "forgotten when the last slot goes"
        );
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let limit = PerIpLimit::new(1);
        let _a = limit.acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(
            limit.acquire(ip("2001:db8:1:2:ffff::9")).is_none(),
            "same /64"
        );
        let _b = limit.acquire(ip("2001:db8:1:3::1")).unwrap();
        let _c = limit.acquire(ip("198.51.100.7")).unwrap();
        assert!(limit.acquire(ip("::ffff:198.51.100.7")).is_none());
    }

    #[test]
    fn the_refusal_is_429_with_retry_after() {
        let head = PerIpLimit::new(64).refusal().head();
        assert!(
            head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nRetry-After: 10\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    }
}
