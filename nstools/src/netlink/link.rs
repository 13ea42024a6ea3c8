//! Links: look up, dump, create (veth pairs, bridges, VXLAN tunnels), change (up, down,
//! master), delete; [`LinkMessage`] says what a request does.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Iff, Ifla, IflaInfo, RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder};
use neli::types::{Buffer, RtBuffer};
use nix::errno::Errno;
use serde::Serialize;

use super::attr::{attr, c_string, find, i32_of, nest, nested, string, u32_of};
use super::route::ip_bytes;
use super::{KernelError, Netlink, NlResult};
use crate::error::{Error, Result};
use crate::vocab::{
    IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6, IFLA_VXLAN_ID, IFLA_VXLAN_LEARNING, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6,
    IFLA_VXLAN_PORT, LinkKind, OperState, VETH_INFO_PEER,
};

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
    /// For a VXLAN tunnel: its settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanInfo>,
}

/// A VXLAN tunnel to create: what `ip link add NAME type vxlan id VNI [local IP] dstport PORT`
/// says. Its remotes are entries of its forwarding database ([`Netlink::append_fdb`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanConfig {
    /// The VXLAN network identifier (0..=16777215).
    pub vni: u32,
    /// The UDP port it sends to and listens on (IANA's is 4789).
    pub port: u16,
    /// The source address of what it sends (`None`: the route's).
    pub local: Option<IpAddr>,
}

/// A VXLAN tunnel's settings, as the kernel reports them (`ip -d link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VxlanInfo {
    /// The VXLAN network identifier.
    pub vni: u32,
    /// The UDP port.
    pub port: u16,
    /// The source address, if one was set.
    pub local: Option<IpAddr>,
    /// The default remote (`remote`/`group`), if one was set at creation.
    pub group: Option<IpAddr>,
    /// The id under which the device's namespace knows the one its UDP socket is in (the
    /// underlay), when that is another one.
    pub underlay_netnsid: Option<i32>,
}

impl VxlanInfo {
    fn from_data(data: &RtBuffer<u16, Buffer>, underlay_netnsid: Option<i32>) -> Option<VxlanInfo> {
        let ip = |v4: u16, v6: u16| find(data, v4).or_else(|| find(data, v6)).and_then(ip_of);
        Some(VxlanInfo {
            vni: find(data, IFLA_VXLAN_ID).and_then(u32_of)?,
            port: find(data, IFLA_VXLAN_PORT).and_then(|b| Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?)))?,
            local: ip(IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6),
            group: ip(IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6),
            underlay_netnsid,
        })
    }
}

/// An IPv4 or IPv6 address payload; `None` for the unspecified address (not set).
pub(crate) fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    (!ip.is_unspecified()).then_some(ip)
}

impl Link {
    pub(crate) fn from_msg(msg: &Ifinfomsg) -> Link {
        let attrs = msg.rtattrs();
        let flags = msg.ifi_flags();
        let info = find(attrs, Ifla::Linkinfo).and_then(nested::<IflaInfo>);
        let kind =
            info.as_ref().and_then(|info| find(info, IflaInfo::Kind).map(|k| LinkKind::from_kernel(&c_string(k))));
        let index = *msg.ifi_index() as u32;
        let link = find(attrs, Ifla::Link).and_then(u32_of);
        let is_veth = kind == Some(LinkKind::Veth);
        let link_netnsid = find(attrs, Ifla::LinkNetnsid).and_then(i32_of).filter(|&n| n >= 0);
        let vxlan = info
            .as_ref()
            .filter(|_| kind == Some(LinkKind::Vxlan))
            .and_then(|info| find(info, IflaInfo::Data))
            .and_then(nested::<u16>)
            .and_then(|data| VxlanInfo::from_data(&data, link_netnsid));
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
            peer_netnsid: link_netnsid.filter(|_| is_veth),
            mtu: find(attrs, Ifla::Mtu).and_then(u32_of),
            mac: find(attrs, Ifla::Address).filter(|b| b.len() == 6).map(format_mac),
            kind,
            vxlan,
        }
    }

    /// True for a bridge.
    pub fn is_bridge(&self) -> bool {
        self.kind == Some(LinkKind::Bridge)
    }
}

pub(crate) fn format_mac(b: &[u8]) -> String {
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

/// A link message (`ifinfomsg` and its attributes), said the way `ip link` says it, one step
/// at a time: `LinkMessage::index(port).up().master(bridge)`. What it does not say is left as
/// it is. Sent by [`Netlink::create_link`] or [`Netlink::set_link`].
#[derive(Debug, Default)]
#[must_use]
pub struct LinkMessage<'a> {
    index: u32,
    up: Option<bool>,
    skip_stats: bool,
    target_netnsid: Option<i32>,
    name: Option<&'a str>,
    netns: Option<BorrowedFd<'a>>,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    master: Option<u32>,
    kind: Option<LinkKind>,
    peer: Option<Box<LinkMessage<'a>>>,
    vxlan: Option<VxlanConfig>,
}

impl<'a> LinkMessage<'a> {
    /// A link to create (name it with [`name`](Self::name)), or no link in particular (a dump).
    pub fn new() -> Self {
        LinkMessage::default()
    }

    /// The link with interface index `index`.
    pub fn index(index: u32) -> Self {
        LinkMessage { index, ..LinkMessage::default() }
    }

    /// The link `id`, by index or by name.
    pub fn of(id: LinkId<'a>) -> Self {
        match id {
            LinkId::Index(index) => LinkMessage::index(index),
            LinkId::Name(name) => LinkMessage::new().name(name),
        }
    }

    /// Its name (`IFLA_IFNAME`): of the link to create, or of the link meant.
    pub fn name(self, name: &'a str) -> Self {
        LinkMessage { name: Some(name), ..self }
    }

    /// Bring it up (`IFF_UP`).
    pub fn up(self) -> Self {
        LinkMessage { up: Some(true), ..self }
    }

    /// Bring it down.
    pub fn down(self) -> Self {
        LinkMessage { up: Some(false), ..self }
    }

    /// Make `master` (a bridge) its master (`IFLA_MASTER`).
    pub fn master(self, master: u32) -> Self {
        LinkMessage { master: Some(master), ..self }
    }

    /// Take it off its master.
    pub fn nomaster(self) -> Self {
        self.master(0)
    }

    /// Put it in the network namespace `netns` (`IFLA_NET_NS_FD`).
    pub fn netns_fd(self, netns: BorrowedFd<'a>) -> Self {
        LinkMessage { netns: Some(netns), ..self }
    }

    /// Its MTU.
    pub fn mtu(self, mtu: u32) -> Self {
        LinkMessage { mtu: Some(mtu), ..self }
    }

    /// Its hardware address.
    pub fn mac(self, mac: [u8; 6]) -> Self {
        LinkMessage { mac: Some(mac), ..self }
    }

    /// Its kind (`IFLA_INFO_KIND`), for a link to create.
    pub fn kind(self, kind: LinkKind) -> Self {
        LinkMessage { kind: Some(kind), ..self }
    }

    /// A veth whose other end is `peer` (`IFLA_INFO_DATA { VETH_INFO_PEER }`): both are made in
    /// one request, each in its own namespace ([`netns_fd`](Self::netns_fd)).
    ///
    /// Only this end can be brought up at creation: the kernel opens `peer` before it links the
    /// two, and a veth without its peer refuses to open (ENOTCONN).
    pub fn veth(self, peer: LinkMessage<'a>) -> Self {
        LinkMessage { peer: Some(Box::new(peer)), ..self.kind(LinkKind::Veth) }
    }

    /// A VXLAN tunnel (`IFLA_INFO_DATA { IFLA_VXLAN_* }`) as `config` says, learning remote
    /// MACs from what arrives. Its UDP socket is made in the namespace of the socket that sends
    /// the request, wherever the device itself goes ([`netns_fd`](Self::netns_fd)).
    pub fn vxlan(self, config: VxlanConfig) -> Self {
        LinkMessage { vxlan: Some(config), ..self.kind(LinkKind::Vxlan) }
    }

    /// Answers without statistics (`IFLA_EXT_MASK`): smaller and faster.
    pub fn skip_stats(self) -> Self {
        LinkMessage { skip_stats: true, ..self }
    }

    /// About the namespace that the socket's own knows as `nsid` (`IFLA_TARGET_NETNSID`), not
    /// the socket's: a dump of another namespace's links without entering it.
    pub fn in_netnsid(self, nsid: i32) -> Self {
        LinkMessage { target_netnsid: Some(nsid), ..self }
    }

    /// `set` with `value`, if there is one: `.with(mtu, LinkMessage::mtu)`.
    pub fn with<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(value) => set(self, value),
            None => self,
        }
    }

    /// `set` if `condition` holds: `.when(up, LinkMessage::up)`.
    pub fn when(self, condition: bool, set: impl FnOnce(Self) -> Self) -> Self {
        if condition { set(self) } else { self }
    }

    /// The message.
    pub fn build(self) -> NlResult<Ifinfomsg> {
        let mut attrs = RtBuffer::new();
        if self.skip_stats {
            attrs.push(attr(Ifla::ExtMask, SKIP_STATS));
        }
        if let Some(name) = self.name {
            attrs.push(string(Ifla::Ifname, name));
        }
        if let Some(fd) = self.netns {
            attrs.push(attr(Ifla::NetNsFd, fd.as_raw_fd() as u32));
        }
        if let Some(nsid) = self.target_netnsid {
            attrs.push(attr(Ifla::IfNetnsid, nsid)); // IFLA_TARGET_NETNSID
        }
        if let Some(mtu) = self.mtu {
            attrs.push(attr(Ifla::Mtu, mtu));
        }
        if let Some(mac) = self.mac {
            attrs.push(attr(Ifla::Address, Buffer::from(mac.to_vec())));
        }
        if let Some(master) = self.master {
            attrs.push(attr(Ifla::Master, master));
        }
        if let Some(kind) = &self.kind {
            let mut info = vec![string(IflaInfo::Kind, kind.as_str())];
            if let Some(peer) = self.peer {
                info.push(nest(IflaInfo::Data, &[attr(VETH_INFO_PEER, peer.build()?)]));
            }
            if let Some(vxlan) = self.vxlan {
                let mut data = vec![
                    attr(IFLA_VXLAN_ID, vxlan.vni),
                    attr(IFLA_VXLAN_PORT, Buffer::from(vxlan.port.to_be_bytes().to_vec())),
                    attr(IFLA_VXLAN_LEARNING, 1u8),
                ];
                if let Some(local) = vxlan.local {
                    let ty = if local.is_ipv4() { IFLA_VXLAN_LOCAL } else { IFLA_VXLAN_LOCAL6 };
                    data.push(attr(ty, ip_bytes(&local)));
                }
                info.push(nest(IflaInfo::Data, &data));
            }
            attrs.push(nest(Ifla::Linkinfo, &info));
        }
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(self.index as i32)
            .rtattrs(attrs);
        let msg = match self.up {
            Some(true) => msg.up(),
            Some(false) => msg.down(),
            None => msg,
        };
        msg.build().map_err(KernelError::unbuilt)
    }
}

impl Netlink {
    /// Look a link up; `Ok(None)` if there is none (ENODEV).
    pub fn get_link(&mut self, id: LinkId<'_>) -> Result<Option<Link>> {
        let msg = LinkMessage::of(id).skip_stats().build();
        match msg.and_then(|msg| self.get(Rtm::Getlink, msg, Link::from_msg)) {
            Ok(link) => Ok(Some(link)),
            Err(KernelError { errno: Errno::ENODEV, .. }) => Ok(None),
            Err(e) => Err(e.into_error(format!("cannot look up {id}"))),
        }
    }

    /// Every link of the namespace this one knows as `nsid`, asked from here: the peers'
    /// `peer_netnsid` are then ids of this namespace's.
    pub fn dump_links_of(&mut self, nsid: i32) -> Result<Vec<Link>> {
        let msg = LinkMessage::new().skip_stats().in_netnsid(nsid).build();
        msg.and_then(|msg| self.dump(Rtm::Getlink, msg, Link::from_msg))
            .map_err(|e| e.into_error("cannot list the interfaces of another namespace"))
    }

    /// Every link of the namespace.
    pub fn dump_links(&mut self) -> Result<Vec<Link>> {
        let msg = LinkMessage::new().skip_stats().build();
        msg.and_then(|msg| self.dump(Rtm::Getlink, msg, Link::from_msg))
            .map_err(|e| e.into_error("cannot list interfaces"))
    }

    /// Create the link `msg` describes (`ip link add`), a veth pair in one request. Fails with
    /// EEXIST if a name is taken in its namespace (nothing is created then).
    pub fn create_link(&mut self, msg: LinkMessage<'_>) -> NlResult<()> {
        self.request(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, msg.build()?)
    }

    /// Change a link as `msg` says (`ip link set`), in one request.
    pub fn set_link(&mut self, msg: LinkMessage<'_>) -> NlResult<()> {
        self.request(Rtm::Newlink, NlmF::empty(), msg.build()?)
    }

    /// Bring a link up.
    pub fn set_up(&mut self, index: u32) -> NlResult<()> {
        self.set_link(LinkMessage::index(index).up())
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
        self.request(Rtm::Dellink, NlmF::empty(), LinkMessage::index(index).build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_messages_say_what_they_do() {
        let msg = LinkMessage::index(7).up().master(3).build().unwrap();
        assert_eq!((*msg.ifi_index(), *msg.ifi_flags(), *msg.ifi_change()), (7, Iff::UP, Iff::UP));
        assert_eq!(find(msg.rtattrs(), Ifla::Master).and_then(u32_of), Some(3));

        let msg = LinkMessage::index(7).nomaster().down().build().unwrap();
        assert_eq!((*msg.ifi_flags(), *msg.ifi_change()), (Iff::empty(), Iff::UP));
        assert_eq!(find(msg.rtattrs(), Ifla::Master).and_then(u32_of), Some(0));

        let msg = LinkMessage::of(LinkId::Name("eth0")).skip_stats().build().unwrap();
        assert_eq!((*msg.ifi_index(), *msg.ifi_change()), (0, Iff::empty()));
        assert_eq!(find(msg.rtattrs(), Ifla::Ifname).map(c_string).as_deref(), Some("eth0"));
        assert_eq!(find(msg.rtattrs(), Ifla::ExtMask).and_then(u32_of), Some(SKIP_STATS));
        assert_eq!(msg.rtattrs().len(), 2);
    }

    #[test]
    fn a_veth_carries_its_peer() {
        let msg = LinkMessage::new().name("v0-br").up().veth(LinkMessage::new().name("v0").mtu(1400)).build().unwrap();
        let info = find(msg.rtattrs(), Ifla::Linkinfo).and_then(nested::<IflaInfo>).unwrap();
        assert_eq!(find(&info, IflaInfo::Kind).map(c_string).as_deref(), Some("veth"));
        let data = find(&info, IflaInfo::Data).and_then(nested::<u16>).unwrap();
        let peer = find(&data, VETH_INFO_PEER).unwrap();
        // The peer's ifinfomsg (16 bytes), then its attributes.
        let attrs = nested::<Ifla>(&peer[16..]).unwrap();
        assert_eq!(find(&attrs, Ifla::Ifname).map(c_string).as_deref(), Some("v0"));
        assert_eq!(find(&attrs, Ifla::Mtu).and_then(u32_of), Some(1400));
    }

    #[test]
    fn a_vxlan_carries_its_settings() {
        let local = "198.51.100.1".parse().unwrap();
        let msg = LinkMessage::new()
            .name("vx42")
            .mtu(1500)
            .vxlan(VxlanConfig { vni: 42, port: 4789, local: Some(local) })
            .build()
            .unwrap();
        let info = find(msg.rtattrs(), Ifla::Linkinfo).and_then(nested::<IflaInfo>).unwrap();
        assert_eq!(find(&info, IflaInfo::Kind).map(c_string).as_deref(), Some("vxlan"));
        let data = find(&info, IflaInfo::Data).and_then(nested::<u16>).unwrap();
        assert_eq!(find(&data, IFLA_VXLAN_PORT), Some(&[0x12, 0xb5][..])); // 4789, big-endian
        assert_eq!(find(&data, IFLA_VXLAN_LEARNING), Some(&[1][..]));
        let read = VxlanInfo::from_data(&data, None).unwrap();
        assert_eq!(read, VxlanInfo { vni: 42, port: 4789, local: Some(local), group: None, underlay_netnsid: None });
        assert_eq!(ip_of(&[0; 4]), None);
        assert_eq!(ip_of(ip_bytes(&"fd00::1".parse().unwrap()).as_ref()), Some("fd00::1".parse().unwrap()));
    }

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
