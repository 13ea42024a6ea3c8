//! Interface addresses in CIDR notation (`10.53.57.21/24`, `fd00::5357:5f15/112`), checked
//! before any request: malformed text, a prefix out of range, and addresses that cannot be a
//! host's address (network or broadcast address, unspecified, multicast, IPv4-mapped IPv6) are
//! refused with a message naming the problem.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::ifname::quote;

/// A host address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse and check `text`. Without `/PREFIX` the address is a host route (/32 or /128), as
    /// with `ip address add`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: String| Error::usage(format!("invalid address {}", quote(text))).detail(why);
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            bad(format!(
                "{} is not an IPv4 or IPv6 address; expected e.g. 10.53.57.21/24 or fd00::5357:5f15/112",
                quote(addr_text)
            ))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u16 = p.parse().map_err(|_| bad(format!("prefix length {} is not a number", quote(p))))?;
                if n > u16::from(max) {
                    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
                    return Err(bad(format!("prefix length /{n} is out of range for {family} (0-{max})")));
                }
                n as u8
            }
            Some(p) => return Err(bad(format!("prefix length {} is not a number from 0 to {max}", quote(p)))),
        };
        host_problem(addr, prefix).map_or(Ok(Cidr { addr, prefix }), |why| Err(bad(why)))
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

/// Why `addr/prefix` cannot be an interface's own address, if so.
fn host_problem(addr: IpAddr, prefix: u8) -> Option<String> {
    match addr {
        IpAddr::V4(a) => v4_problem(a, prefix),
        IpAddr::V6(a) => v6_problem(a, prefix),
    }
}

fn v4_problem(a: Ipv4Addr, prefix: u8) -> Option<String> {
    if a.is_unspecified() {
        return Some("0.0.0.0 is the unspecified address, not a host address".into());
    }
    if a.is_multicast() {
        return Some(format!("{a} is a multicast address, not a host address"));
    }
    if a.is_broadcast() {
        return Some("255.255.255.255 is the limited broadcast address".into());
    }
    if prefix <= 30 {
        let mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0); // the host bits
        let host = u32::from(a) & mask;
        let network = Ipv4Addr::from(u32::from(a) & !mask);
        if host == 0 {
            return Some(format!(
                "{a} is the network address of {network}/{prefix}; give a host address such as {}/{prefix}",
                Ipv4Addr::from(u32::from(network) + 1)
            ));
        }
        if host == mask {
            return Some(format!("{a} is the broadcast address of {network}/{prefix}; give a host address"));
        }
    }
    None
}

fn v6_problem(a: Ipv6Addr, prefix: u8) -> Option<String> {
    if a.is_unspecified() {
        return Some(":: is the unspecified address, not a host address".into());
    }
    if a.is_multicast() {
        return Some(format!("{a} is a multicast address, not a host address"));
    }
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(format!("{a} is an IPv4-mapped IPv6 address; use the IPv4 address {v4} instead"));
    }
    if prefix <= 126 {
        let mask = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0); // the host bits
        if u128::from(a) & mask == 0 {
            return Some(format!(
                "{a} is the subnet-router anycast address of {a}/{prefix} (all host bits zero); give a host address such as {}/{prefix}",
                Ipv6Addr::from(u128::from(a) + 1)
            ));
        }
    }
    None
}

impl FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(s: &str) -> String {
        Cidr::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_samba_addresses() {
        let c = Cidr::parse("10.53.57.21/24").unwrap();
        assert_eq!((c.addr(), c.prefix()), ("10.53.57.21".parse().unwrap(), 24));
        let c = Cidr::parse("fd00:0000:0000:0000:0000:0000:5357:5f15/112").unwrap();
        assert_eq!(c.to_string(), "fd00::5357:5f15/112");
        assert!(c.is_ipv6());
        assert_eq!(Cidr::parse("10.0.0.1").unwrap().prefix(), 32);
        assert_eq!(Cidr::parse("fd00::1").unwrap().prefix(), 128);
        assert_eq!(Cidr::parse("10.0.0.0/31").unwrap().prefix(), 31);
        assert_eq!(Cidr::parse("10.0.0.1/0").unwrap().prefix(), 0);
    }

    #[test]
    fn refuses_malformed() {
        assert!(why("10.0.0/24").contains("is not an IPv4 or IPv6 address"));
        assert!(why("").contains("is not an IPv4 or IPv6 address"));
        assert!(why("10.0.0.1/").contains("is not a number"));
        assert!(why("10.0.0.1/abc").contains("is not a number"));
        assert!(why("10.0.0.1/-1").contains("is not a number"));
        assert!(why("10.0.0.1/24/1").contains("is not a number"));
        assert!(why("10.0.0.1/99999999999").contains("is not a number"));
        assert!(why(" 10.0.0.1/24").contains("is not an IPv4"));
    }

    #[test]
    fn refuses_prefix_out_of_range() {
        assert!(why("10.0.0.1/33").contains("/33 is out of range for IPv4 (0-32)"));
        assert!(why("fd00::1/129").contains("/129 is out of range for IPv6 (0-128)"));
    }

    #[test]
    fn refuses_non_host_addresses() {
        assert!(why("10.53.57.0/24").contains("network address of 10.53.57.0/24"));
        assert!(why("10.53.57.255/24").contains("broadcast address"));
        assert!(why("0.0.0.0/0").contains("unspecified"));
        assert!(why("224.0.0.1/4").contains("multicast"));
        assert!(why("::/0").contains("unspecified"));
        assert!(why("ff02::1/64").contains("multicast"));
        assert!(why("::ffff:10.0.0.1/120").contains("use the IPv4 address 10.0.0.1"));
        assert!(why("fd00::5357:0/112").contains("anycast"));
        for s in ["10.53.57.0/24", "::ffff:1.2.3.4", "10.0.0.1/33", "x"] {
            let e = Cidr::parse(s).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            assert!(!e.to_string().contains('\n'));
        }
    }
}
