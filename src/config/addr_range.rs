//! Allow-lists of source addresses (`[[listeners]] allow`): an address or a
//! network in CIDR form.
use std::fmt;
use std::net::IpAddr;

/// An address or network (`10.0.0.0/24`, `::1`) in an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    pub net: IpAddr,
    pub prefix: u8,
}

impl AddrRange {
    pub const LOOPBACK_V4: AddrRange = AddrRange { net: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), prefix: 8 };
    pub const LOOPBACK_V6: AddrRange = AddrRange { net: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), prefix: 128 };
    pub const ANY_V4: AddrRange = AddrRange { net: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), prefix: 0 };
    pub const ANY_V6: AddrRange = AddrRange { net: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), prefix: 0 };

    /// Whether `ip` is in the range (an IPv4 peer on an IPv6 socket counts
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_matches(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_matches(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if net[..whole] != ip[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ ip[whole]) & (0xffu8 << (8 - rest)) == 0
}

impl std::str::FromStr for AddrRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an address or network like 10.0.0.20 or 10.0.0.0/24");
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(AddrRange { net, prefix })
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}
