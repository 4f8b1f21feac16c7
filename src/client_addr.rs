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

use crate::http::Request;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address range such as `10.0.0.0/8` or `::1/128`; a bare address is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True when `ip` lies in this range. IPv4 addresses written as IPv6 (`::ffff:10.0.0.1`,
    /// what a dual-stack socket reports) count as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u32::from(ip).into(), 32, self.prefix) == u32::from(net).into()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(ip), 128, self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `bits` with all but the top `prefix` of its `width` bits cleared.
fn mask(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let keep = u128::MAX << (width - prefix);
        bits & keep & (u128::MAX >> (128 - width))
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `ADDRESS/PREFIX` or a bare `ADDRESS`. Host bits below the prefix are cleared
    /// (`10.1.2.3/8` is `10.0.0.0/8`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("expected an address range like 10.0.0.0/8, got {text:?}"))?;
        let addr = addr.to_canonical();
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            // Plain decimal digits only: `+8` and `08` are refused rather than read as 8.
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= width && n.to_string() == p => n,
                _ => return Err(format!("prefix length must be 0 to {width}, got {text:?}")),
            },
        };
        let network = match addr {
            IpAddr::V4(ip) => IpAddr::V4((mask(u32::from(ip).into(), 32, prefix) as u32).into()),
            IpAddr::V6(ip) => IpAddr::V6(mask(u128::from(ip), 128, prefix).into()),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// True when `ip` is inside any of the `trusted` ranges.
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|range| range.contains(ip))
}

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

/// Why a trusted proxy's forwarding header could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// An `X-Forwarded-For` entry that had to be read is not an IP address.
    XForwardedForNotAnAddress,
    /// A `Forwarded` header is not a list of `name=value` pairs (RFC 7239 section 4).
    ForwardedSyntax,
    /// A `Forwarded` element that had to be read has no `for=` (or more than one).
    ForwardedNoFor,
    /// A `for=` that had to be read is `unknown`, an obfuscated name or not an address.
    ForwardedForNotAnAddress,
}

impl Problem {
    /// A short description for the log.
    pub fn reason(self) -> &'static str {
        match self {
            Problem::XForwardedForNotAnAddress => "an X-Forwarded-For entry is not an IP address",
            Problem::ForwardedSyntax => "a Forwarded header is not a list of name=value pairs",
            Problem::ForwardedNoFor => "a Forwarded element has no single for= parameter",
            Problem::ForwardedForNotAnAddress => "a Forwarded for= value is not an IP address",
        }
    }
}

/// The client named by the `X-Forwarded-For` values (all lines, in order, read as one list).
///
/// `Ok(None)` when there is no such header. Otherwise the right-most entry that is not a
/// trusted proxy, or, when every entry is one, the left-most. Entries are addresses, optionally
/// with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`) or brackets (`[2001:db8::1]`), as some
/// proxies write them.
pub fn from_x_forwarded_for<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    trusted: &[Cidr],
) -> Result<Option<IpAddr>, Problem> {
    let mut entries = Vec::new();
    for value in values {
        let text = std::str::from_utf8(value).map_err(|_| Problem::XForwardedForNotAnAddress)?;
        entries.extend(text.split(',').map(str::trim));
    }
    walk(entries.into_iter().rev(), trusted, |entry| {
        parse_node(entry).ok_or(Problem::XForwardedForNotAnAddress)
    })
}

/// The client named by the `Forwarded` values (RFC 7239), read like `X-Forwarded-For`:
/// the `for=` of each element, right to left, past the trusted proxies.
///
/// Values may be quoted, with backslash escapes (section 4); an IPv6 address is written in
/// brackets, optionally with a port: `for="[2001:db8:cafe::17]:4711"`.
pub fn from_forwarded<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    trusted: &[Cidr],
) -> Result<Option<IpAddr>, Problem> {
    let mut elements = Vec::new();
    for value in values {
        let text = std::str::from_utf8(value).map_err(|_| Problem::ForwardedSyntax)?;
        elements.extend(split_forwarded(text)?);
    }
    walk(elements.into_iter().rev(), trusted, |pairs| {
        let mut fors = pairs
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("for"));
        match (fors.next(), fors.next()) {
            (Some((_, node)), None) => parse_node(node).ok_or(Problem::ForwardedForNotAnAddress),
            _ => Err(Problem::ForwardedNoFor),
        }
    })
}

/// Walks hops from the nearest (right-most) to the farthest, returning the first address that
/// is not a trusted proxy, or the farthest when all are. Hops past the answer are not parsed:
/// they were written by the client, which may put anything there.
fn walk<T>(
    hops: impl Iterator<Item = T>,
    trusted: &[Cidr],
    address: impl Fn(T) -> Result<IpAddr, Problem>,
) -> Result<Option<IpAddr>, Problem> {
    let mut farthest = None;
    for hop in hops {
        let ip = address(hop)?.to_canonical();
        if !is_trusted(ip, trusted) {
            return Ok(Some(ip));
        }
        farthest = Some(ip);
    }
    Ok(farthest)
}

/// An address with an optional port: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`,
/// `[2001:db8::1]:80`, or a bare `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Splits a `Forwarded` value into elements (separated by `,`), each a list of `name=value`
/// pairs (separated by `;`), with quoted values unquoted. Separators inside quotes are text.
/// Empty elements (`a=b,,c=d`) are skipped, as list syntax allows (RFC 9110 section 5.6.1).
fn split_forwarded(text: &str) -> Result<Vec<Vec<(String, String)>>, Problem> {
    let mut elements = Vec::new();
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        // One pair, or nothing before a separator.
        skip_spaces(&mut chars);
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if matches!(c, '=' | ';' | ',') || c.is_ascii_whitespace() {
                break;
            }
            if !is_tchar(c) {
                return Err(Problem::ForwardedSyntax);
            }
            name.push(c);
            chars.next();
        }
        skip_spaces(&mut chars);
        if !name.is_empty() {
            if chars.next() != Some('=') {
                return Err(Problem::ForwardedSyntax);
            }
            skip_spaces(&mut chars);
            let value = if chars.peek() == Some(&'"') {
                chars.next();
                quoted(&mut chars)?
            } else {
                let mut value = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, ';' | ',') || c.is_ascii_whitespace() {
                        break;
                    }
                    // Not a token character, but common unquoted in `for=192.0.2.1:80`.
                    if !is_tchar(c) && c != ':' {
                        return Err(Problem::ForwardedSyntax);
                    }
                    value.push(c);
                    chars.next();
                }
                value
            };
            if value.is_empty() {
                return Err(Problem::ForwardedSyntax);
            }
            pairs.push((name, value));
            skip_spaces(&mut chars);
        }
        match chars.next() {
            Some(';') => {}
            Some(',') => {
                if !pairs.is_empty() {
                    elements.push(std::mem::take(&mut pairs));
                }
            }
            None => {
                if !pairs.is_empty() {
                    elements.push(pairs);
                }
                return Ok(elements);
            }
            Some(_) => return Err(Problem::ForwardedSyntax),
        }
    }
}

/// The rest of a quoted-string after its opening quote, with `\x` read as `x`.
fn quoted(chars: &mut impl Iterator<Item = char>) -> Result<String, Problem> {
    let mut value = String::new();
    loop {
        match chars.next() {
            Some('"') => return Ok(value),
            Some('\\') => value.push(chars.next().ok_or(Problem::ForwardedSyntax)?),
            Some(c) if c.is_control() && c != '\t' => return Err(Problem::ForwardedSyntax),
            Some(c) => value.push(c),
            None => return Err(Problem::ForwardedSyntax),
        }
    }
}

fn skip_spaces(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) {
    while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
}

/// RFC 9110 section 5.6.2 token characters.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
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

    #[test]
    fn ranges_parse_and_contain() {
        let loopback: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(loopback.contains(ip("127.1.2.3")));
        assert!(!loopback.contains(ip("128.0.0.1")));
        assert!(loopback.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped");
        assert!(!loopback.contains(ip("::1")));
        let one: Cidr = "10.0.0.7".parse().unwrap();
        assert!(one.contains(ip("10.0.0.7")) && !one.contains(ip("10.0.0.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("::1")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::1")));
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "::ffff:10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8",
            "an IPv4-mapped range is the IPv4 range"
        );
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/-1",
            "10.0.0/8",
            "localhost",
            "10.0.0.0/8/8",
            "[::1]",
            " 10.0.0.1",
        ] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
    }

    fn xff(values: &[&str], trusted: &[&str]) -> Result<Option<IpAddr>, Problem> {
        from_x_forwarded_for(values.iter().map(|v| v.as_bytes()), &cidrs(trusted))
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted_entry() {
        let t = ["127.0.0.1", "10.0.0.0/8"];
        assert_eq!(xff(&["203.0.113.7"], &t), Ok(Some(ip("203.0.113.7"))));
        // The client forged the first entry; nginx appended what it saw.
        assert_eq!(
            xff(&["1.2.3.4, 203.0.113.7"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
        // A second trusted proxy in the chain is skipped.
        assert_eq!(
            xff(&["1.2.3.4, 203.0.113.7, 10.1.1.1"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
        // Repeated header lines form one list, in order.
        assert_eq!(
            xff(&["1.2.3.4", "203.0.113.7,10.0.0.2"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
        // All trusted: the farthest one.
        assert_eq!(xff(&["10.0.0.1, 127.0.0.1"], &t), Ok(Some(ip("10.0.0.1"))));
        assert_eq!(xff(&[], &t), Ok(None));
        // Ports and brackets, as some proxies write them.
        assert_eq!(xff(&["203.0.113.7:4711"], &t), Ok(Some(ip("203.0.113.7"))));
        assert_eq!(
            xff(&["[2001:db8::1]:4711"], &t),
            Ok(Some(ip("2001:db8::1")))
        );
        assert_eq!(xff(&["[2001:db8::1]"], &t), Ok(Some(ip("2001:db8::1"))));
        assert_eq!(xff(&["2001:DB8::1"], &t), Ok(Some(ip("2001:db8::1"))));
        assert_eq!(
            xff(&["::ffff:203.0.113.7"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
    }

    #[test]
    fn x_forwarded_for_garbage_is_a_problem_only_where_it_is_read() {
        let t = ["127.0.0.1"];
        // Garbage the client wrote on the left is never read.
        assert_eq!(
            xff(&["<script>, , unknown, 203.0.113.7"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
        let bad = Err(Problem::XForwardedForNotAnAddress);
        for value in [
            "",
            " ",
            ",",
            "203.0.113.7,",
            "unknown",
            "example.com",
            "203.0.113.7 203.0.113.8",
            "203.0.113",
            "203.0.113.256",
            "[203.0.113.7]",
            "[2001:db8::1",
            "2001:db8::1]",
            "[[2001:db8::1]]",
            "[2001:db8::1]:99999",
            "203.0.113.7:",
            "203.0.113.7:port",
            "\"203.0.113.7\"",
            "fe80::1%eth0",
            "127.0.0.1, junk",
        ] {
            assert_eq!(xff(&[value], &t), bad, "{value:?}");
        }
        let not_utf8: &[u8] = b"203.0.113.7\xff";
        assert_eq!(
            from_x_forwarded_for([not_utf8], &cidrs(&t)),
            Err(Problem::XForwardedForNotAnAddress)
        );
        // Long input: linear, no panic.
        let long = "1.1.1.1,".repeat(1000) + "junk";
        assert_eq!(xff(&[&long], &t), bad);
    }

    fn fwd(values: &[&str], trusted: &[&str]) -> Result<Option<IpAddr>, Problem> {
        from_forwarded(values.iter().map(|v| v.as_bytes()), &cidrs(trusted))
    }

    #[test]
    fn forwarded_follows_rfc_7239() {
        let t = ["127.0.0.1", "10.0.0.0/8"];
        // The examples of RFC 7239 section 4 and 7.
        assert_eq!(
            fwd(&["for=\"_gazonk\", for=192.0.2.60"], &t),
            Ok(Some(ip("192.0.2.60")))
        );
        assert_eq!(
            fwd(&["For=\"[2001:db8:cafe::17]:4711\""], &t),
            Ok(Some(ip("2001:db8:cafe::17")))
        );
        assert_eq!(
            fwd(&["for=192.0.2.60;proto=http;by=203.0.113.43"], &t),
            Ok(Some(ip("192.0.2.60")))
        );
        assert_eq!(
            fwd(&["for=192.0.2.43, for=198.51.100.17"], &t),
            Ok(Some(ip("198.51.100.17")))
        );
        assert_eq!(
            fwd(
                &[
                    "for=192.0.2.43",
                    "for=198.51.100.17;by=10.0.0.1, for=10.0.0.1"
                ],
                &t
            ),
            Ok(Some(ip("198.51.100.17")))
        );
        // Spaces around separators, an escaped character, a quoted IPv4 with a port.
        assert_eq!(
            fwd(
                &[" proto=https ; for = \"203.0.113.7:443\" ,for=\"10.0.0.\\2\""],
                &t
            ),
            Ok(Some(ip("203.0.113.7")))
        );
        assert_eq!(
            fwd(&["for=\"[2001:db8::1]\""], &t),
            Ok(Some(ip("2001:db8::1")))
        );
        // Without the brackets RFC 7239 asks for, but unambiguous: accepted.
        assert_eq!(
            fwd(&["for=\"2001:db8::1\""], &t),
            Ok(Some(ip("2001:db8::1")))
        );
        // Separators inside quotes are text; empty elements are skipped.
        assert_eq!(
            fwd(&["for=192.0.2.1;x=\"a,b;c=d\",,for=203.0.113.7"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
        // Garbage left of the answer is never read.
        assert_eq!(
            fwd(&["for=unknown, proto=http, for=203.0.113.7"], &t),
            Ok(Some(ip("203.0.113.7")))
        );
        assert_eq!(fwd(&[], &t), Ok(None));
        assert_eq!(fwd(&["for=127.0.0.1"], &t), Ok(Some(ip("127.0.0.1"))));
    }

    #[test]
    fn forwarded_garbage_is_a_problem() {
        let t = ["127.0.0.1"];
        for (value, problem) in [
            ("for=unknown", Problem::ForwardedForNotAnAddress),
            ("for=_hidden", Problem::ForwardedForNotAnAddress),
            ("for=\"[2001:db8::1]:x\"", Problem::ForwardedForNotAnAddress),
            ("for=example.com", Problem::ForwardedForNotAnAddress),
            ("proto=https", Problem::ForwardedNoFor),
            ("for=203.0.113.7;for=203.0.113.8", Problem::ForwardedNoFor),
            ("for=203.0.113.7, by=10.0.0.1", Problem::ForwardedNoFor),
            ("for", Problem::ForwardedSyntax),
            ("for=", Problem::ForwardedSyntax),
            ("for=\"\"", Problem::ForwardedSyntax),
            ("=203.0.113.7", Problem::ForwardedSyntax),
            ("for=\"203.0.113.7", Problem::ForwardedSyntax),
            ("for=\"203.0.113.7\\", Problem::ForwardedSyntax),
            ("for=\"203.0.113.7\"x", Problem::ForwardedSyntax),
            ("for=203.0.113.7 x", Problem::ForwardedSyntax),
            ("for=[2001:db8::1]", Problem::ForwardedSyntax),
            ("fo r=203.0.113.7", Problem::ForwardedSyntax),
            ("for==203.0.113.7", Problem::ForwardedSyntax),
            ("for=\"a\u{1}\"", Problem::ForwardedSyntax),
            ("f\u{e9}r=1.1.1.1", Problem::ForwardedSyntax),
        ] {
            assert_eq!(fwd(&[value], &t), Err(problem), "{value:?}");
        }
        // Empty after skipping empty elements: no hop at all.
        assert_eq!(fwd(&["", ",", " , "], &t), Ok(None));
        let not_utf8: &[u8] = b"for=\xff";
        assert_eq!(
            from_forwarded([not_utf8], &cidrs(&t)),
            Err(Problem::ForwardedSyntax)
        );
        let long = "for=\"".to_string() + &"\\\"".repeat(3000);
        assert_eq!(fwd(&[&long], &t), Err(Problem::ForwardedSyntax));
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
