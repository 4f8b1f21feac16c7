//! Who a request really comes from when wschat sits behind a reverse proxy (`--trusted-proxy`).
//!
//! Behind nginx or Caddy every TCP peer is the proxy. The proxy names its own client in
//! `X-Forwarded-For` (the de facto standard) or `Forwarded` (RFC 7239). Anyone can send those
//! headers, so they are read only on connections from a peer inside a `--trusted-proxy` range,
//! and only the part that trusted proxies wrote: each proxy appends the address it saw, so the
//! list is walked from the right, skipping addresses that are themselves trusted proxies, and
//! the first one that is not is the client. Whatever the client wrote into the header itself
//! lies further left and is never read, so it cannot choose its own address.
//!
//! When both headers are present, `X-Forwarded-For` wins: it is what nginx, Caddy, HAProxy
//! (`option forwardfor`) and most load balancers set, while they pass a client's `Forwarded`
//! through untouched (a forgery). A proxy that sets only `Forwarded` must therefore drop any
//! `X-Forwarded-For` its clients send.
//!
//! The parsers are pure functions over header values ([`from_x_forwarded_for`],
//! [`from_forwarded`]); a malformed header yields a [`Problem`], never a panic, and the caller
//! falls back to the peer's own address.

mod cidr;
mod headers;

pub use cidr::{is_trusted, Cidr};
pub use headers::{from_forwarded, from_x_forwarded_for, Problem};

use crate::http::Request;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Who a request comes from: the TCP peer, and the address a trusted proxy named, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The other end of the TCP connection (the proxy, when there is one).
    pub peer: SocketAddr,
    /// The client address a trusted proxy reported; `None` when the peer is the client.
    pub forwarded: Option<IpAddr>,
}

impl Client {
    /// The client's address: the one the proxy reported, else the peer's. This is what
    /// per-address limits count.
    pub fn ip(&self) -> IpAddr {
        self.forwarded.unwrap_or(self.peer.ip()).to_canonical()
    }
}

impl From<SocketAddr> for Client {
    /// A client that is its own TCP peer.
    fn from(peer: SocketAddr) -> Self {
        Client {
            peer,
            forwarded: None,
        }
    }
}

impl fmt::Display for Client {
    /// `203.0.113.7 via 127.0.0.1:5555` behind a proxy, the peer `127.0.0.1:5555` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.forwarded {
            Some(ip) => write!(f, "{ip} via {}", self.peer),
            None => write!(f, "{}", self.peer),
        }
    }
}

/// What [`resolve`] found for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The client to log and to count.
    pub client: Client,
    /// Set when a trusted proxy sent a header that could not be used; the client is then the
    /// peer itself.
    pub problem: Option<Problem>,
}

/// The client of `request`, received from `peer`. Forwarding headers count only when the peer
/// is in `trusted`; `X-Forwarded-For` is read when present, else `Forwarded`.
pub fn resolve(peer: SocketAddr, request: &Request, trusted: &[Cidr]) -> Resolved {
    let direct = Client {
        peer,
        forwarded: None,
    };
    if !is_trusted(peer.ip(), trusted) {
        return Resolved {
            client: direct,
            problem: None,
        };
    }
    let found = match request.headers_named("x-forwarded-for").next() {
        Some(_) => from_x_forwarded_for(request.headers_named("x-forwarded-for"), trusted),
        None => from_forwarded(request.headers_named("forwarded"), trusted),
    };
    match found {
        Ok(forwarded) => Resolved {
            client: Client { peer, forwarded },
            problem: None,
        },
        Err(problem) => Resolved {
            client: direct,
            problem: Some(problem),
        },
    }
}

/// One connection's requests: resolves each one's client (a proxy's connection may carry many
/// clients in turn) and logs a malformed forwarding header once per connection, not once per
/// request.
#[derive(Debug)]
pub struct Forwarding<'a> {
    peer: SocketAddr,
    trusted: &'a [Cidr],
    warned: bool,
}

impl<'a> Forwarding<'a> {
    /// For a connection from `peer`.
    pub fn new(peer: SocketAddr, trusted: &'a [Cidr]) -> Self {
        Forwarding {
            peer,
            trusted,
            warned: false,
        }
    }

    /// True when the peer is a trusted proxy, whose requests name their own clients.
    pub fn peer_is_trusted(&self) -> bool {
        is_trusted(self.peer.ip(), self.trusted)
    }

    /// The client of `request`.
    pub fn client(&mut self, request: &Request) -> Client {
        let resolved = resolve(self.peer, request, self.trusted);
        if let Some(problem) = resolved.problem {
            if !std::mem::replace(&mut self.warned, true) {
                crate::log!(
                    "{} trusted proxy sent a malformed forwarding header ({}): using the proxy's address",
                    self.peer,
                    problem.reason()
                );
            }
        }
        resolved.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::{parse_head, Parsed};

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn request(headers: &str) -> Request {
        let head = format!("GET /chat HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        match parse_head(head.as_bytes()).unwrap() {
            Parsed::Complete { request, .. } => request,
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let trusted = cidrs(&["127.0.0.1"]);
        let proxy: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:6666".parse().unwrap();
        let forged = request("X-Forwarded-For: 203.0.113.7\r\n");
        let from_stranger = resolve(stranger, &forged, &trusted);
        assert_eq!(from_stranger.client.ip(), ip("198.51.100.1"));
        assert_eq!(from_stranger.client.to_string(), "198.51.100.1:6666");
        let from_proxy = resolve(proxy, &forged, &trusted);
        assert_eq!(from_proxy.client.ip(), ip("203.0.113.7"));
        assert_eq!(
            from_proxy.client.to_string(),
            "203.0.113.7 via 127.0.0.1:5555"
        );
        // No header from the proxy: the proxy itself is the client.
        let plain = resolve(proxy, &request(""), &trusted);
        assert_eq!(plain.client.forwarded, None);
        // X-Forwarded-For wins over Forwarded (which a proxy passes through untouched).
        let both = request("Forwarded: for=192.0.2.1\r\nX-Forwarded-For: 203.0.113.7\r\n");
        assert_eq!(
            resolve(proxy, &both, &trusted).client.ip(),
            ip("203.0.113.7")
        );
        let only = request("Forwarded: for=\"[2001:db8::1]:4711\"\r\n");
        let resolved = resolve(proxy, &only, &trusted);
        assert_eq!(
            resolved.client.to_string(),
            "2001:db8::1 via 127.0.0.1:5555"
        );
        // Malformed: the proxy's address, and the problem for the log.
        let bad = resolve(proxy, &request("X-Forwarded-For: nonsense\r\n"), &trusted);
        assert_eq!(bad.client.ip(), proxy.ip());
        assert_eq!(bad.problem, Some(Problem::XForwardedForNotAnAddress));
        // Nothing trusted: headers never count.
        assert_eq!(resolve(proxy, &forged, &[]).client.forwarded, None);
    }
}
