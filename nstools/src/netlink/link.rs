//! Links: look up, dump, create (veth pairs and bridges), bring up, set master, delete.

use std::os::fd::{AsRawFd, BorrowedFd};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Iff, Ifla, IflaInfo, RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder, Rtattr};
use neli::types::{Buffer, RtBuffer};
use nix::errno::Errno;
use serde::Serialize;

use super::attr::{attr, c_string, find, i32_of, nest, nested, string, u32_of};
use super::{KernelError, Netlink, NlResult};
use crate::error::{Error, Result};
use crate::vocab::{LinkKind, OperState, VETH_INFO_PEER};

/// `IFLA_EXT_MASK` for link answers without statistics (smaller, faster).
const SKIP_STATS: u32 = libc::RTEXT_FILTER_SKIP_STATS as u32;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Link kind (`veth`, `bridge`...), absent for physical devices and loopback.
    pub kind: Option<LinkKind>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`).
    pub lower_up: bool,
    /// Operational state, as `ip` prints it (`UP`, `DOWN`, `UNKNOWN`...).
    pub operstate: OperState,
    /// Index of the master (bridge) device, if enslaved.
    pub master: Option<u32>,
    /// For a veth: the index of the peer, in the peer's namespace.
    pub peer_index: Option<u32>,
    /// For a veth whose peer is in another namespace: that namespace's id as seen from here.
    pub peer_netnsid: Option<i32>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address (`aa:bb:cc:dd:ee:ff`).
    pub mac: Option<String>,
}

impl Link {
    pub(crate) fn from_msg(msg: &Ifinfomsg) -> Link {
        let attrs = msg.rtattrs();
        let flags = msg.ifi_flags();
        let kind = find(attrs, Ifla::Linkinfo)
            .and_then(nested::<IflaInfo>)
            .and_then(|info| find(&info, IflaInfo::Kind).map(|k| LinkKind::from_kernel(&c_string(k))));
        let index = *msg.ifi_index() as u32;
        let link = find(attrs, Ifla::Link).and_then(u32_of);
        let is_veth = kind == Some(LinkKind::Veth);
        Link {
            index,
            name: find(attrs, Ifla::Ifname).map(c_string).unwrap_or_default(),
            up: flags.contains(Iff::UP),
            lower_up: flags.contains(Iff::LOWERUP),
            operstate: find(attrs, Ifla::Operstate)
                .and_then(|b| b.first().copied())
                .map_or(OperState::Unknown, OperState::from_kernel),
            master: find(attrs, Ifla::Master).and_then(u32_of).filter(|&m| m != 0),
            peer_index: link.filter(|&l| is_veth && l != 0),
            peer_netnsid: find(attrs, Ifla::LinkNetnsid).and_then(i32_of).filter(|&n| is_veth && n >= 0),
            mtu: find(attrs, Ifla::Mtu).and_then(u32_of),
            mac: find(attrs, Ifla::Address).filter(|b| b.len() == 6).map(format_mac),
            kind,
        }
    }

    /// True for a bridge.
    pub fn is_bridge(&self) -> bool {
        self.kind == Some(LinkKind::Bridge)
    }
}

fn format_mac(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = || {
        Error::usage(format!("invalid MAC address {}", crate::ifname::quote(text)))
            .detail("expected six hexadecimal bytes such as 02:00:00:00:00:15")
    };
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 == 1 {
        return Err(Error::usage(format!("invalid MAC address {}", crate::ifname::quote(text)))
            .detail("it is a multicast address (lowest bit of the first byte set)"));
    }
    Ok(mac)
}

/// A link named by index or by name.
#[derive(Debug, Clone, Copy)]
pub enum LinkId<'a> {
    /// By interface index.
    Index(u32),
    /// By interface name.
    Name(&'a str),
}

impl std::fmt::Display for LinkId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkId::Index(i) => write!(f, "interface #{i}"),
            LinkId::Name(n) => f.write_str(n),
        }
    }
}

/// One end of a veth pair to create.
#[derive(Debug, Clone, Default)]
pub struct VethEnd<'a> {
    /// Interface name.
    pub name: &'a str,
    /// Namespace to create it in (`None`: the socket's own namespace).
    pub netns: Option<BorrowedFd<'a>>,
    /// Bring it up at creation.
    pub up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address.
    pub mac: Option<[u8; 6]>,
}

fn ifinfomsg(index: u32, up: bool, attrs: Vec<Rtattr<Ifla, Buffer>>) -> Ifinfomsg {
    let builder = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_index(index as i32)
        .rtattrs(attrs.into_iter().collect::<RtBuffer<_, _>>());
    let builder = if up { builder.up() } else { builder };
    builder.build().expect("all fields of an Ifinfomsg have defaults")
}

fn end_attrs(end: &VethEnd<'_>) -> Vec<Rtattr<Ifla, Buffer>> {
    let mut attrs = vec![string(Ifla::Ifname, end.name)];
    if let Some(fd) = end.netns {
        attrs.push(attr(Ifla::NetNsFd, fd.as_raw_fd() as u32));
    }
    if let Some(mtu) = end.mtu {
        attrs.push(attr(Ifla::Mtu, mtu));
    }
    if let Some(mac) = end.mac {
        attrs.push(attr(Ifla::Address, Buffer::from(mac.to_vec())));
    }
    attrs
}

impl Netlink {
    /// Look a link up; `Ok(None)` if there is none (ENODEV).
    pub fn get_link(&mut self, id: LinkId<'_>) -> Result<Option<Link>> {
        let mut attrs = vec![attr(Ifla::ExtMask, SKIP_STATS)];
        let index = match id {
            LinkId::Index(i) => i,
            LinkId::Name(name) => {
                attrs.push(string(Ifla::Ifname, name));
                0
            }
        };
        match self.get(Rtm::Getlink, ifinfomsg(index, false, attrs), Link::from_msg) {
            Ok(link) => Ok(Some(link)),
            Err(KernelError { errno: Errno::ENODEV, .. }) => Ok(None),
            Err(e) => Err(e.into_error(format!("cannot look up {id}"))),
        }
    }

    /// Every link of the namespace.
    pub fn dump_links(&mut self) -> Result<Vec<Link>> {
        let msg = ifinfomsg(0, false, vec![attr(Ifla::ExtMask, SKIP_STATS)]);
        self.dump(Rtm::Getlink, msg, Link::from_msg).map_err(|e| e.into_error("cannot list interfaces"))
    }

    /// Create a veth pair in one request, each end directly in its own namespace.
    /// Fails with EEXIST if either name is taken in its namespace (nothing is created then).
    ///
    /// Only `end` can be brought up at creation: the kernel opens `peer` before it links the
    /// two, and a veth without its peer refuses to open (ENOTCONN). `peer.up` is ignored.
    pub fn create_veth(&mut self, end: &VethEnd<'_>, peer: &VethEnd<'_>) -> NlResult<()> {
        let peer_msg = ifinfomsg(0, false, end_attrs(peer));
        let info = nest(
            Ifla::Linkinfo,
            &[string(IflaInfo::Kind, LinkKind::Veth.as_str()), nest(IflaInfo::Data, &[attr(VETH_INFO_PEER, peer_msg)])],
        );
        let mut attrs = end_attrs(end);
        attrs.push(info);
        self.request(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, ifinfomsg(0, end.up, attrs))
    }

    /// Create a bridge (brought up at creation if `up`). EEXIST if the name is taken.
    pub fn create_bridge(&mut self, name: &str, up: bool) -> NlResult<()> {
        let attrs = vec![
            string(Ifla::Ifname, name),
            nest(Ifla::Linkinfo, &[string(IflaInfo::Kind, LinkKind::Bridge.as_str())]),
        ];
        self.request(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, ifinfomsg(0, up, attrs))
    }

    /// Bring a link up.
    pub fn set_up(&mut self, index: u32) -> NlResult<()> {
        self.request(Rtm::Newlink, NlmF::empty(), ifinfomsg(index, true, vec![]))
    }

    /// Make `master` the master of `index` (0: no master), bringing it up too if `up`, in one
    /// request.
    pub fn set_master(&mut self, index: u32, master: u32, up: bool) -> NlResult<()> {
        self.request(Rtm::Newlink, NlmF::empty(), ifinfomsg(index, up, vec![attr(Ifla::Master, master)]))
    }

    /// Take `index` off its master, and bring it down too if `down` (one request).
    pub fn detach(&mut self, index: u32, down: bool) -> NlResult<()> {
        let attrs = vec![attr(Ifla::Master, 0u32)];
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(index as i32)
            .rtattrs(attrs.into_iter().collect::<RtBuffer<_, _>>());
        let msg = if down { msg.down() } else { msg };
        self.request(Rtm::Newlink, NlmF::empty(), msg.build().expect("all fields of an Ifinfomsg have defaults"))
    }

    /// Delete every veth pair of this namespace (both ends of each); best effort.
    pub fn delete_veths(&mut self) {
        let Ok(links) = self.dump_links() else { return };
        for link in links.iter().filter(|l| l.kind == Some(LinkKind::Veth)) {
            let _ = self.delete_link(link.index);
        }
    }

    /// Delete a link (for a veth: both ends).
    pub fn delete_link(&mut self, index: u32) -> NlResult<()> {
        self.request(Rtm::Dellink, NlmF::empty(), ifinfomsg(index, false, vec![]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:00:00:00:15").unwrap(), [2, 0, 0, 0, 0, 0x15]);
        assert_eq!(parse_mac("aA:bb:cc:dd:ee:f0").unwrap()[0], 0xaa);
        for bad in
            ["", "02:00:00:00:00", "02:00:00:00:00:15:00", "2:0:0:0:0:15", "zz:00:00:00:00:00", "01:00:00:00:00:00"]
        {
            assert_eq!(parse_mac(bad).unwrap_err().exit_code(), crate::error::exit::USAGE, "{bad}");
        }
        assert_eq!(format_mac(&[2, 0, 0, 0, 0, 0x15]), "02:00:00:00:00:15");
    }
}
