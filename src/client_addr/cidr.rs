//! Address ranges (`--trusted-proxy CIDR`).

use std::fmt;
use std::net::IpAddr;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
