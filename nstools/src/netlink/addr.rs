//! Addresses: add one, remove one, dump all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, IfaF, RtAddrFamily, RtScope, Rtm};
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder};
use neli::types::{Buffer, RtBuffer};
use serde::Serialize;

use super::attr::{attr, find, u32_of};
use super::{KernelError, Netlink, NlResult};
use crate::cidr::Cidr;
use crate::error::Result;
use crate::vocab::Scope;

/// An address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// Index of the interface it is on.
    #[serde(skip)]
    pub index: u32,
    /// Address and prefix, e.g. `10.53.57.21/24`.
    pub cidr: String,
    /// Added without duplicate address detection (`nodad`).
    pub nodad: bool,
    /// Still tentative (duplicate address detection running): cannot be bound yet.
    pub tentative: bool,
    /// Duplicate address detection failed.
    pub dadfailed: bool,
    /// Scope (`global`, `link`, `host`).
    pub scope: Scope,
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
        _ => None,
    }
}

impl Address {
    fn from_msg(msg: &Ifaddrmsg) -> Option<Address> {
        let attrs = msg.rtattrs();
        // IFA_LOCAL is the interface's own address (differs from IFA_ADDRESS on point-to-point).
        let ip = find(attrs, Ifa::Local).or_else(|| find(attrs, Ifa::Address)).and_then(ip_of)?;
        // `IFA_FLAGS` (u32) when the kernel sends it, else the u8 `ifa_flags`: the same bits.
        let flags = find(attrs, Ifa::Flags).and_then(u32_of).unwrap_or(u32::from(msg.ifa_flags().bits()));
        let has = |flag: IfaF| flags & u32::from(flag.bits()) != 0;
        Some(Address {
            index: *msg.ifa_index(),
            cidr: format!("{ip}/{}", msg.ifa_prefixlen()),
            nodad: has(IfaF::NODAD),
            tentative: has(IfaF::TENTATIVE),
            dadfailed: has(IfaF::DADFAILED),
            scope: Scope::from_kernel(*msg.ifa_scope()),
        })
    }
}

fn family(ip: &IpAddr) -> RtAddrFamily {
    if ip.is_ipv4() { RtAddrFamily::Inet } else { RtAddrFamily::Inet6 }
}

fn ip_bytes(ip: &IpAddr) -> Buffer {
    match ip {
        IpAddr::V4(a) => Buffer::from(a.octets().to_vec()),
        IpAddr::V6(a) => Buffer::from(a.octets().to_vec()),
    }
}

/// The message naming `cidr` on interface `index` (`IFA_LOCAL` and `IFA_ADDRESS`, as `ip` sends).
fn addr_msg(index: u32, cidr: &Cidr, flags: IfaF) -> NlResult<Ifaddrmsg> {
    let ip = cidr.addr();
    let mut attrs = RtBuffer::new();
    attrs.push(attr(Ifa::Local, ip_bytes(&ip)));
    attrs.push(attr(Ifa::Address, ip_bytes(&ip)));
    IfaddrmsgBuilder::default()
        .ifa_family(family(&ip))
        .ifa_prefixlen(cidr.prefix())
        .ifa_flags(flags)
        .ifa_scope(RtScope::Universe)
        .ifa_index(index)
        .rtattrs(attrs)
        .build()
        .map_err(KernelError::unbuilt)
}

impl Netlink {
    /// Add `cidr` to interface `index`. IPv6 addresses skip duplicate address detection when
    /// `nodad` (so a server can bind at once). EEXIST if the address is already there.
    pub fn add_addr(&mut self, index: u32, cidr: &Cidr, nodad: bool) -> NlResult<()> {
        let flags = if nodad && cidr.is_ipv6() { IfaF::NODAD } else { IfaF::empty() };
        self.request(Rtm::Newaddr, NlmF::CREATE | NlmF::EXCL, addr_msg(index, cidr, flags)?)
    }

    /// Remove `cidr` from interface `index`.
    pub fn delete_addr(&mut self, index: u32, cidr: &Cidr) -> NlResult<()> {
        self.request(Rtm::Deladdr, NlmF::empty(), addr_msg(index, cidr, IfaF::empty())?)
    }

    /// Every address of the namespace.
    pub fn dump_addrs(&mut self) -> Result<Vec<Address>> {
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Unspecified)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(0)
            .build()
            .map_err(KernelError::unbuilt);
        let all = msg
            .and_then(|msg| self.dump(Rtm::Getaddr, msg, Address::from_msg))
            .map_err(|e| e.into_error("cannot list addresses"))?;
        Ok(all.into_iter().flatten().collect())
    }
}
