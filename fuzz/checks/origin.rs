//! An independent model of origins, for the upgrade and cli checks: what `Origin` and
//! `--allowed-origin` values mean, and when an origin is the Host's own.

/// An origin `scheme://host[:port]` lower-cased, as (scheme, host, port), the port filled in
/// from the scheme when absent (http 80, https 443). `None` when not of that form: host is
/// `[IPv6]` or letters, digits, `-`, `.`, `_`; port is 1 to 5 digits up to 65535.
pub(super) fn model_origin(text: &[u8]) -> Option<(String, String, Option<u32>)> {
    let text = std::str::from_utf8(text).ok()?.to_ascii_lowercase();
    let (scheme, authority) = text.split_once("://")?;
    let first_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok = scheme
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if !first_ok || !rest_ok {
        return None;
    }
    let default = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let (host, port) = model_authority(authority)?;
    Some((scheme.to_string(), host, port.or(default)))
}

/// `host[:port]` lower-cased, with the grammar of [`model_origin`].
fn model_authority(text: &str) -> Option<(String, Option<u32>)> {
    let text = text.to_ascii_lowercase();
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{inner}]"), port)
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text.as_str(), None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        if !host_ok {
            return None;
        }
        (host.to_string(), port)
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u32>().ok().filter(|&n| n <= 65535)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Same origin: an http or https Origin whose host and port are the Host's; the scheme is not
/// compared, and a Host without a port has the Origin scheme's default port.
pub(super) fn model_same_origin(origin: &[u8], host: &[u8]) -> bool {
    let Some((scheme, origin_host, origin_port)) = model_origin(origin) else {
        return false;
    };
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let Some((host, port)) = std::str::from_utf8(host).ok().and_then(model_authority) else {
        return false;
    };
    host == origin_host && port.unwrap_or(default) == origin_port.unwrap_or(default)
}
