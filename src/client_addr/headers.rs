//! The two headers a proxy names its client in: `X-Forwarded-For` and `Forwarded` (RFC
//! 7239), read from the right as the module docs of [`super`] explain. Pure functions over
//! header values.

use super::cidr::{is_trusted, Cidr};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
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
}
