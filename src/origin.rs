//! Which web pages may open a WebSocket here: the `Origin` rule of an upgrade.
//!
//! A browser lets any page open a WebSocket to any server, sending the visitor's cookies and
//! HTTP authentication along; the only hint of who is asking is the `Origin` header (RFC 6455
//! section 10.2). A server that ignores it can be used by any site the visitor opens
//! (cross-site WebSocket hijacking). So by default an upgrade is accepted only from a page of
//! this very server: same origin.
//!
//! Same origin means the `Origin`'s host and port are the `Host` header's. The scheme is not
//! compared, because behind a TLS proxy the page is `https://` while wschat itself speaks plain
//! HTTP and cannot tell. Hosts are compared ignoring ASCII case. An `Origin` always has a port,
//! written or implied by its scheme (80 for `http`, 443 for `https`); a `Host` without a port
//! has the default port of the `Origin`'s scheme, exactly as a browser leaves the port out of
//! both when it is the default (`https://example.com` sends `Host: example.com`). A proxy must
//! therefore pass the browser's `Host` on unchanged, port included (nginx: `$http_host`, not
//! `$host`, which drops the port).
//!
//! Only `http` and `https` origins can be same-origin; `null` (sandboxed frames, `file:` pages)
//! and other schemes must be listed with `--allowed-origin`. Listed origins are compared whole:
//! scheme, host and port, with the same rules for case and default ports. `*` allows any.
//!
//! The grammar accepted, for `Origin`, `Host` and `--allowed-origin` alike, is what browsers
//! send: `scheme://host[:port]` and `host[:port]`, where host is letters, digits, `-`, `.` and
//! `_` (IDNA names arrive in their ASCII form), or an IPv6 address in brackets, and port is one
//! to five digits up to 65535. Anything else (a path, user information, spaces) is never a
//! match.

/// An origin, or the authority of a `Host` header, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority<'a> {
    host: &'a str,
    port: Option<u16>,
}

/// `scheme://host[:port]`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin<'a> {
    scheme: &'a str,
    authority: Authority<'a>,
}

impl Origin<'_> {
    /// The port, written or implied by the scheme.
    fn port(&self) -> Option<u16> {
        self.authority.port.or_else(|| default_port(self.scheme))
    }

    fn same_as(&self, other: &Origin<'_>) -> bool {
        self.scheme.eq_ignore_ascii_case(other.scheme)
            && self
                .authority
                .host
                .eq_ignore_ascii_case(other.authority.host)
            && self.port() == other.port()
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else {
        None
    }
}

fn parse_origin(text: &str) -> Option<Origin<'_>> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    Some(Origin {
        scheme,
        authority: parse_authority(rest)?,
    })
}

fn parse_authority(text: &str) -> Option<Authority<'_>> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        host[1..end].parse::<std::net::Ipv6Addr>().ok()?;
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some(Authority { host, port })
}

/// True when a request with this `Origin` and `Host` may upgrade: the origin is the host's
/// (same origin, see the module docs), or in `listed` (the `--allowed-origin` values), or
/// `listed` holds `*`.
pub fn allowed(origin: &[u8], host: &[u8], listed: &[String]) -> bool {
    if listed.iter().any(|a| a == "*") {
        return true;
    }
    let Some(origin) = std::str::from_utf8(origin).ok().and_then(parse_origin) else {
        return false;
    };
    same_origin(&origin, host)
        || listed
            .iter()
            .filter_map(|a| parse_origin(a))
            .any(|listed| listed.same_as(&origin))
}

fn same_origin(origin: &Origin<'_>, host: &[u8]) -> bool {
    let Some(port) = default_port(origin.scheme) else {
        return false;
    };
    let Some(host) = std::str::from_utf8(host).ok().and_then(parse_authority) else {
        return false;
    };
    host.host.eq_ignore_ascii_case(origin.authority.host)
        && host.port.unwrap_or(port) == origin.port().unwrap_or(port)
}

/// Checks one `--allowed-origin` value: `*` or an origin such as `https://chat.example`.
/// The error is one line for the command line.
pub fn check_allowed(value: &str) -> Result<String, String> {
    if value == "*" || parse_origin(value).is_some() {
        Ok(value.to_string())
    } else {
        Err(format!(
            "expects an origin like https://chat.example:8443 (no path) or '*', got {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(origin: &str, host: &str) -> bool {
        allowed(origin.as_bytes(), host.as_bytes(), &[])
    }

    #[test]
    fn same_origin_compares_host_and_port_not_scheme() {
        assert!(ok("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(ok("http://Chat.Example", "chat.example"));
        // A page over https through a TLS proxy, wschat on plain http behind it.
        assert!(ok("https://chat.example", "chat.example"));
        assert!(ok("https://chat.example:8443", "chat.example:8443"));
        // Default ports, written on one side only.
        assert!(ok("https://chat.example:443", "chat.example"));
        assert!(ok("https://chat.example", "chat.example:443"));
        assert!(ok("http://chat.example", "chat.example:80"));
        assert!(ok("http://[::1]:8080", "[::1]:8080"));
        assert!(ok("http://[2001:DB8::1]", "[2001:db8::1]"));

        assert!(!ok("https://evil.example", "chat.example"));
        assert!(!ok("https://chat.example.evil", "chat.example"));
        assert!(!ok("http://chat.example:8081", "chat.example:8080"));
        // A proxy that drops the port (nginx's $host) no longer matches a non-default port.
        assert!(!ok("https://chat.example:8443", "chat.example"));
        // The implied port is the Origin's scheme's: https is 443, not 80.
        assert!(!ok("https://chat.example", "chat.example:80"));
        assert!(!ok("http://127.0.0.1:8080", "localhost:8080"));
    }

    #[test]
    fn malformed_or_opaque_origins_never_match() {
        for origin in [
            "null",
            "",
            "chat.example",
            "//chat.example",
            "file://chat.example",
            "ws://chat.example",
            "https://chat.example/",
            "https://chat.example/path",
            "https://user@chat.example",
            "https://chat.example:",
            "https://chat.example:443x",
            "https://chat.example:65536",
            "https://chat.example:000443",
            "https://chat .example",
            "https://[::1",
            "https://[::1]x",
            "https://[not-v6]",
            "https://chat.example\u{0}",
            "https://ch\u{e4}t.example",
            "1https://chat.example",
            "https://chat.example:80:80",
        ] {
            let host = origin
                .split_once("://")
                .map_or("chat.example", |(_, rest)| rest);
            assert!(!ok(origin, host), "{origin:?}");
            assert!(!ok(origin, "chat.example"), "{origin:?}");
        }
        let not_utf8: &[u8] = b"https://chat.example\xff";
        assert!(!allowed(not_utf8, b"chat.example", &[]));
        // A bad Host matches nothing either.
        for host in [
            "",
            "chat.example:",
            "chat.example:x",
            "a b",
            "chat.example/",
        ] {
            assert!(!ok("https://chat.example", host), "{host:?}");
        }
    }

    #[test]
    fn listed_origins_and_the_wildcard() {
        let list = [
            "https://chat.example".to_string(),
            "app://desktop".to_string(),
        ];
        let from = |origin: &str| allowed(origin.as_bytes(), b"internal:8080", &list);
        assert!(from("https://chat.example"));
        assert!(from("https://CHAT.example:443"));
        assert!(from("app://desktop"));
        // A listed origin is compared whole, scheme included.
        assert!(!from("http://chat.example"));
        assert!(!from("https://chat.example:8443"));
        assert!(!from("https://evil.example"));
        assert!(!from("app://desktop:1"));
        // Same origin still works alongside the list.
        assert!(from("http://internal:8080"));
        let any = ["*".to_string()];
        assert!(allowed(b"null", b"chat.example", &any));
        assert!(allowed(b"https://evil.example", b"chat.example", &any));
    }

    #[test]
    fn the_command_line_checks_listed_origins() {
        for good in ["*", "https://chat.example", "http://[::1]:8080", "app://x"] {
            assert_eq!(check_allowed(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "chat.example",
            "https://chat.example/",
            "null",
            "**",
            "https://",
        ] {
            let err = check_allowed(bad).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
