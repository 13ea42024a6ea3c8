//! Routes: a default route via a gateway, added and removed, IPv4 and IPv6.
//!
//! The requests are the ones iproute2's `ip` 6.1 sends, byte for byte (the unit tests pin them,
//! captured with strace), for `ip route add default via GW` (`ip -6 ...` for IPv6, which also
//! names the destination `::/0`) and `ip route del default via GW`: the main table, protocol
//! `boot`, scope universe, `NLM_F_CREATE | NLM_F_EXCL`. No output device is named: the kernel
//! finds it from the gateway, which must be reachable through a connected route (an address in
//! its subnet on some interface, e.g. the bridge the peer is attached to).
//!
//! A request is all or nothing. Privileges: `CAP_NET_ADMIN` over the socket's namespace.
//!
//! Errors: EEXIST when the namespace has a default route of that family already; for a
//! gateway with no connected route EINVAL ("Nexthop has invalid gateway", IPv4) or
//! EHOSTUNREACH (IPv6); ESRCH when removing a route that is not there.

use std::net::IpAddr;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot};
use neli::rtnl::{Rtmsg, RtmsgBuilder};
use neli::types::{Buffer, RtBuffer};

use super::attr::attr;
use super::{KernelError, Netlink, NlResult};

/// The payload of an address: 4 bytes for IPv4, 16 for IPv6.
pub(crate) fn ip_bytes(ip: &IpAddr) -> Buffer {
    match ip {
        IpAddr::V4(a) => Buffer::from(a.octets().to_vec()),
        IpAddr::V6(a) => Buffer::from(a.octets().to_vec()),
    }
}

/// The message for the default route via `gateway`: to add it (`add`), or to remove it.
fn default_route_msg(gateway: &IpAddr, add: bool) -> NlResult<Rtmsg> {
    let mut attrs = RtBuffer::new();
    let family = match gateway {
        IpAddr::V4(_) => RtAddrFamily::Inet,
        IpAddr::V6(_) => {
            // `ip -6` names the destination "default" as ::/0; `ip -4` leaves it out.
            attrs.push(attr(Rta::Dst, ip_bytes(&IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))));
            RtAddrFamily::Inet6
        }
    };
    attrs.push(attr(Rta::Gateway, ip_bytes(gateway)));
    // What ip sends: a new route is a unicast boot route of universe scope; a delete leaves
    // protocol and type open and names the scope "nowhere" (any).
    let (protocol, scope, kind) = if add {
        (Rtprot::Boot, RtScope::Universe, Rtn::Unicast)
    } else {
        (Rtprot::Unspec, RtScope::Nowhere, Rtn::Unspec)
    };
    RtmsgBuilder::default()
        .rtm_family(family)
        .rtm_dst_len(0)
        .rtm_src_len(0)
        .rtm_tos(0)
        .rtm_table(RtTable::Main)
        .rtm_protocol(protocol)
        .rtm_scope(scope)
        .rtm_type(kind)
        .rtattrs(attrs)
        .build()
        .map_err(KernelError::unbuilt)
}

impl Netlink {
    /// The source address the kernel picks to reach `dst` (`ip route get DST`'s `src`); ENETUNREACH
    /// or EHOSTUNREACH when there is no route to it.
    pub fn source_for(&mut self, dst: &IpAddr) -> NlResult<Option<IpAddr>> {
        let (family, len) = if dst.is_ipv4() { (RtAddrFamily::Inet, 32) } else { (RtAddrFamily::Inet6, 128) };
        let mut attrs = RtBuffer::new();
        attrs.push(attr(Rta::Dst, ip_bytes(dst)));
        let msg = RtmsgBuilder::default()
            .rtm_family(family)
            .rtm_dst_len(len)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(RtTable::Unspec)
            .rtm_protocol(Rtprot::Unspec)
            .rtm_scope(RtScope::Universe)
            .rtm_type(Rtn::Unspec)
            .rtattrs(attrs)
            .build()
            .map_err(KernelError::unbuilt)?;
        self.get(Rtm::Getroute, msg, |answer: &Rtmsg| {
            super::attr::find(answer.rtattrs(), Rta::Prefsrc).and_then(super::link::ip_of)
        })
    }

    /// Add a default route via `gateway` (IPv4 or IPv6) to the main table of the socket's
    /// namespace, as `ip route add default via GATEWAY` does. EEXIST if there is one of that
    /// family already; see the module documentation for the others.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> NlResult<()> {
        self.request(Rtm::Newroute, NlmF::CREATE | NlmF::EXCL, default_route_msg(&gateway, true)?)
    }

    /// Remove the default route via `gateway`, as `ip route del default via GATEWAY` does: only
    /// that one (a default route via another gateway is left alone). ESRCH if there is none.
    pub fn delete_default_route(&mut self, gateway: IpAddr) -> NlResult<()> {
        self.request(Rtm::Delroute, NlmF::empty(), default_route_msg(&gateway, false)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What iproute2 6.1's `ip` sent (strace), sequence number zeroed.
    const IP_ADD_V4: &str = "24000000180005060000000000000000 02000000fe030001 0000000008000500 0a000001";
    const IP_ADD_V6: &str = "44000000180005060000000000000000 0a000000fe030001 0000000014000100 00000000000000000000000000000000 14000500fd000000000000000000000000000001";
    const IP_DEL_V4: &str = "24000000190005000000000000000000 02000000fe00ff00 0000000008000500 0a000001";

    fn bytes(gateway: &str, add: bool) -> String {
        let gw: IpAddr = gateway.parse().unwrap();
        let (ty, flags) = if add { (Rtm::Newroute, NlmF::CREATE | NlmF::EXCL) } else { (Rtm::Delroute, NlmF::empty()) };
        hex(&crate::netlink::request_bytes(ty, flags, default_route_msg(&gw, add).unwrap()).unwrap())
    }

    #[test]
    fn requests_are_ips() {
        let unspaced = |s: &str| s.replace(' ', "");
        assert_eq!(bytes("10.0.0.1", true), unspaced(IP_ADD_V4));
        assert_eq!(bytes("fd00::1", true), unspaced(IP_ADD_V6));
        assert_eq!(bytes("10.0.0.1", false), unspaced(IP_DEL_V4));
    }
}
