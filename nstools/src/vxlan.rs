//! A bridge's port to other hosts: a VXLAN tunnel (`br-attach --vxlan VNI --remote IP`), the
//! kernel's Ethernet-over-UDP, so that `selftest0` on two machines is one Ethernet segment.
//!
//! - Where it lives: the device is a port of the bridge, in the bridge's namespace; its UDP
//!   socket is in the underlay namespace (the one with a route to the other hosts: the
//!   machine's own for real hosts), where the request that creates it is sent from. The kernel
//!   keeps the socket there when the device goes elsewhere (`ip -d link` shows its
//!   `link-netnsid`), and removes the device when either namespace ends.
//! - Several remotes: one device, one default destination per remote in its forwarding
//!   database (the all-zeros MAC, as `bridge fdb append 00:00:00:00:00:00 dst IP`): head-end
//!   replication. A broadcast goes to every remote, a learned MAC to its one host, and what
//!   arrives through the tunnel is never sent back into it (one bridge port), so a full mesh of
//!   hosts has no loop, which one device per remote on the same bridge would have.
//! - MTU: the device gets the bridge's MTU (1500), not the kernel's default 1450, so the
//!   testenvs (and a VM on the far side) keep theirs. What would not fit in one underlay packet
//!   (1500 - 50 bytes over IPv4, - 70 over IPv6): sent with don't-fragment (TCP, IPv6, `ping -M
//!   do`), the kernel answers the sender with "fragmentation needed" / "packet too big" for
//!   1450 and drops it, and the sender's path MTU adapts (the kernel's PMTU discovery for
//!   bridged tunnels); without it, the outer UDP packet is fragmented on the underlay.
//! - No handshake: a wrong VNI or port on one side is silence. The device learns each remote
//!   MAC that arrives ([`Tunnel::learned`]): none learned while traffic is sent means nothing
//!   comes back (`ns-ls --topology` shows them).
//!
//! Fully done or fully undone: on failure the device this run created is deleted, and remotes
//! it added to an existing one are removed again.

use std::fmt;
use std::net::IpAddr;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::netlink::fdb::FdbEntry;
use crate::netlink::link::{Link, LinkId, LinkMessage, VxlanConfig};
use crate::netlink::undone;
use crate::netns::{Netns, Target, TargetSpec};
use crate::undo::Undo;
use crate::vocab::LinkKind;

/// The largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// IANA's VXLAN port (Linux's own default, 8472, predates it).
pub const DEFAULT_PORT: u16 = 4789;

/// The tunnel to make.
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    /// The VXLAN network identifier; the device is `vxVNI`.
    pub vni: u32,
    /// The other hosts' underlay addresses.
    pub remotes: Vec<IpAddr>,
    /// The source address (`None`: the route's).
    pub local: Option<IpAddr>,
    /// The UDP port.
    pub port: u16,
    /// The namespace of its UDP socket (`None`: the caller's).
    pub underlay: Option<TargetSpec>,
}

/// The device name of the tunnel with identifier `vni`.
pub fn device_name(vni: u32) -> String {
    format!("vx{vni}")
}

impl TunnelSpec {
    /// Its device's name.
    pub fn name(&self) -> String {
        device_name(self.vni)
    }

    /// Check what the kernel would refuse or silently never deliver.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Error::usage(format!("invalid tunnel {}", self.name())).detail(what);
        if self.vni > VNI_MAX {
            return Err(bad(format!("the VNI is 24 bits: 0 to {VNI_MAX}")));
        }
        if self.port == 0 {
            return Err(bad("the UDP port cannot be 0".into()));
        }
        let Some(first) = self.remotes.first() else {
            return Err(bad("no --remote: give the other host's address".into()));
        };
        for ip in self.remotes.iter().chain(&self.local) {
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                return Err(bad(format!("{ip} is not a host's unicast address")));
            }
            if ip.is_ipv4() != first.is_ipv4() {
                return Err(bad(format!("{ip} and {first} are not of one family (IPv4 or IPv6)")));
            }
        }
        Ok(())
    }
}

/// The tunnel as made: what `br-attach --vxlan` prints, in `ip -d link`'s words.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelReport {
    /// Device name.
    pub name: String,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Source address: the one set, else the one the underlay's route to the first remote picks.
    pub local: Option<IpAddr>,
    /// The remotes (default destinations).
    pub remotes: Vec<IpAddr>,
    /// UDP port.
    pub port: u16,
    /// Its MTU.
    pub mtu: u32,
    /// The bridge it is a port of.
    pub bridge: String,
}

impl fmt::Display for TunnelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} vni {}", self.name, self.vni)?;
        if let Some(local) = self.local {
            write!(f, " local {local}")?;
        }
        for remote in &self.remotes {
            write!(f, " remote {remote}")?;
        }
        write!(f, " dstport {} mtu {} master {}", self.port, self.mtu, self.bridge)
    }
}

/// How `target` is written on a command line (for hints).
fn target_arg(target: Option<&TargetSpec>) -> String {
    match target {
        Some(TargetSpec::Pid(pid) | TargetSpec::PidInode(pid, _)) => pid.to_string(),
        Some(TargetSpec::Path(path)) => path.display().to_string(),
        Some(TargetSpec::Name(name)) => name.clone(),
        None => "PID".into(),
    }
}

/// Make the tunnel `spec` says (or complete the one there is) in the bridge's namespace
/// `bridge_ns` (given as `bridge_target`), and attach it to `bridge`; each step recorded in
/// `log`, whose socket is in that namespace.
pub(crate) fn attach(
    spec: &TunnelSpec,
    bridge: &Link,
    bridge_ns: &Netns,
    bridge_target: Option<&TargetSpec>,
    log: &mut Undo<Netlink>,
) -> Result<TunnelReport> {
    spec.check()?;
    let name = spec.name();
    let what = || format!("cannot create tunnel {name}");
    let mtu = bridge.mtu.unwrap_or(1500);
    let existing = log.ctx().get_link(LinkId::Name(&name))?;
    if let Some(link) = &existing {
        let vxlan = link.vxlan.as_ref().filter(|_| link.kind == Some(LinkKind::Vxlan));
        if !vxlan.is_some_and(|v| v.vni == spec.vni && v.port == spec.port) {
            return Err(Error::sys(what(), Errno::EEXIST)
                .detail(format!("{name} exists and is not a tunnel with VNI {} on port {}", spec.vni, spec.port))
                .hint(format!("remove it first: br-attach --vxlan {} --delete", spec.vni)));
        }
    }
    let underlay = match &spec.underlay {
        Some(t) => Target::open(t)?.netns,
        None => Netns::current()?,
    };
    let mut nl = Netlink::open_in(&underlay)?;
    // Checked first: no route to a remote is a clear error here, and would be silence later.
    let mut source = None;
    for remote in &spec.remotes {
        let found = nl.source_for(remote).map_err(|e| {
            e.into_error(format!("cannot reach {remote} from the underlay namespace")).hint(
                "the tunnel's UDP socket lives in the underlay namespace (--underlay-netns, default: this one), which needs a route to the other host",
            )
        })?;
        source = source.or(found);
    }
    let local = spec.local.or(existing.as_ref().and_then(|l| l.vxlan.as_ref()?.local)).or(source);
    if existing.is_none() {
        create(&mut nl, spec, mtu, bridge_ns, bridge_target)?;
    }
    let link = log
        .ctx()
        .get_link(LinkId::Name(&name))?
        .ok_or_else(|| Error::sys(format!("{name} vanished right after it was created"), Errno::ENODEV))?;
    if existing.is_none() {
        let index = link.index;
        log.push(format!("created tunnel {name}"), move |nl| {
            undone(nl.delete_link(index), &[Errno::ENODEV], "cannot remove the tunnel created by this run")
        });
    }
    let known: Vec<IpAddr> = if existing.is_some() { remotes(log.ctx(), link.index)? } else { Vec::new() };
    for remote in &spec.remotes {
        if known.contains(remote) {
            continue;
        }
        log.ctx()
            .append_fdb(link.index, remote)
            .map_err(|e| e.into_error(format!("cannot add remote {remote} to {name}")))?;
        if existing.is_some() {
            let (index, remote) = (link.index, *remote);
            log.push(format!("added remote {remote} to {name}"), move |nl| {
                undone(
                    nl.delete_fdb(index, &remote),
                    &[Errno::ENODEV, Errno::ENOENT],
                    format!("cannot remove remote {remote}"),
                )
            });
        }
    }
    crate::bridge::attach(log, &link, bridge)?;
    Ok(TunnelReport {
        name,
        vni: spec.vni,
        local,
        remotes: remotes(log.ctx(), link.index)?,
        port: spec.port,
        mtu: link.mtu.unwrap_or(mtu),
        bridge: bridge.name.clone(),
    })
}

/// Create the device from `nl`, a socket in the underlay namespace (where its UDP socket is
/// made), directly in the bridge's namespace `bridge_ns`.
fn create(
    nl: &mut Netlink,
    spec: &TunnelSpec,
    mtu: u32,
    bridge_ns: &Netns,
    bridge_target: Option<&TargetSpec>,
) -> Result<()> {
    let name = spec.name();
    let config = VxlanConfig { vni: spec.vni, port: spec.port, local: spec.local };
    let msg = LinkMessage::new().name(&name).netns_fd(bridge_ns.as_fd()).mtu(mtu).vxlan(config);
    nl.create_link(msg).map_err(|e| {
        let errno = e.errno;
        let err = e.into_error(format!("cannot create tunnel {name}"));
        match errno {
            Errno::EPERM => err.hint(format!(
                "its UDP socket is made in the underlay namespace, which needs CAP_NET_ADMIN there (for the machine's own: root); as root, once: br-attach --netns {} --vxlan {} --remote {}",
                target_arg(bridge_target),
                spec.vni,
                spec.remotes[0]
            )),
            Errno::EEXIST => err.or_hint(format!(
                "another tunnel of the underlay namespace has VNI {} on port {} (ip -d link show type vxlan)",
                spec.vni, spec.port
            )),
            Errno::EADDRINUSE => err.or_hint(format!("UDP port {} is taken in the underlay namespace", spec.port)),
            _ => err,
        }
    })
}

/// A tunnel as `ns-ls` shows it (the `vxlan` of a port or interface in `ns-ls --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    /// VXLAN network identifier.
    pub vni: u32,
    /// The remote hosts (default destinations), in the order they were added.
    pub remotes: Vec<IpAddr>,
    /// Source address, if one was set.
    pub local: Option<IpAddr>,
    /// UDP port.
    pub port: u16,
    /// The remote MACs it learned from what arrived, each with its host: none while traffic is
    /// sent means nothing comes back (a wrong VNI or port on the other side, a firewall).
    pub learned: Vec<FdbEntry>,
}

impl Tunnel {
    /// The tunnel `link` is, read with `nl` (a socket in its namespace); `None` for any other
    /// link. Where its forwarding entries cannot be read, it has none (no remotes but a
    /// multicast group, nothing learned), and the error comes with it (for a warning).
    pub fn read(nl: &mut Netlink, link: &Link) -> Option<(Tunnel, Option<Error>)> {
        let info = link.vxlan.as_ref()?;
        let (fdb, error) = match nl.dump_fdb(link.index) {
            Ok(fdb) => (fdb, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (remotes, learned): (Vec<FdbEntry>, Vec<FdbEntry>) = fdb.into_iter().partition(FdbEntry::is_default);
        let mut remotes: Vec<IpAddr> = remotes.into_iter().filter_map(|e| e.dst).collect();
        remotes.extend(info.group.filter(|g| !remotes.contains(g)));
        let tunnel = Tunnel {
            vni: info.vni,
            remotes,
            local: info.local,
            port: info.port,
            learned: learned.into_iter().filter(|e| !e.permanent).collect(),
        };
        Some((tunnel, error))
    }
}

impl fmt::Display for Tunnel {
    /// `VXLAN 42 to 198.51.100.2 (UDP 4789, 2 remote MACs learned)`, as the topology shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remotes: Vec<String> = self.remotes.iter().map(IpAddr::to_string).collect();
        let remotes = if remotes.is_empty() { "no remote".to_owned() } else { remotes.join(", ") };
        write!(f, "VXLAN {} to {remotes} (UDP {}", self.vni, self.port)?;
        if let Some(local) = self.local {
            write!(f, " from {local}")?;
        }
        match self.learned.len() {
            0 => write!(f, ", no remote MAC learned)"),
            1 => write!(f, ", 1 remote MAC learned)"),
            n => write!(f, ", {n} remote MACs learned)"),
        }
    }
}

/// The remote hosts of tunnel `index` (its default destinations), in the order they were added.
pub fn remotes(nl: &mut Netlink, index: u32) -> Result<Vec<IpAddr>> {
    Ok(nl.dump_fdb(index)?.into_iter().filter(FdbEntry::is_default).filter_map(|e| e.dst).collect())
}

/// Delete the tunnel with identifier `vni` from the namespace `netns` (`None`: the caller's):
/// its forwarding entries go with it, and its UDP socket with the last tunnel using it.
pub fn delete(vni: u32, netns: Option<&TargetSpec>) -> Result<()> {
    let ns = match netns {
        Some(t) => Target::open(t)?.netns,
        None => Netns::current()?,
    };
    let mut nl = Netlink::open_in(&ns)?;
    let name = device_name(vni);
    let what = || format!("cannot delete tunnel {name}");
    let link = nl.get_link(LinkId::Name(&name))?.ok_or_else(|| {
        Error::sys(what(), Errno::ENODEV)
            .detail(format!("there is no {name} in this network namespace ({})", ns.inode()))
            .hint("ns-ls --topology shows the tunnels (with --netns: of that namespace)")
    })?;
    if link.kind != Some(LinkKind::Vxlan) {
        let kind = link.kind.as_ref().map_or("a device without a link kind", LinkKind::as_str);
        return Err(Error::new(what()).detail(format!("{name} is not a VXLAN tunnel but {kind}")));
    }
    match nl.delete_link(link.index) {
        Ok(()) => Ok(()),
        Err(e) if e.errno == Errno::ENODEV => Ok(()), // gone meanwhile: done
        Err(e) => Err(e.into_error(what())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(remotes: &[&str], local: Option<&str>) -> TunnelSpec {
        TunnelSpec {
            vni: 42,
            remotes: remotes.iter().map(|r| r.parse().unwrap()).collect(),
            local: local.map(|l| l.parse().unwrap()),
            port: DEFAULT_PORT,
            underlay: None,
        }
    }

    #[test]
    fn what_is_checked() {
        assert!(spec(&["198.51.100.2", "198.51.100.3"], Some("198.51.100.1")).check().is_ok());
        assert!(spec(&["2001:db8::2"], None).check().is_ok());
        let msg = |s: TunnelSpec| s.check().unwrap_err().to_string();
        assert!(msg(spec(&[], None)).contains("no --remote"));
        assert!(msg(spec(&["198.51.100.2"], Some("2001:db8::1"))).contains("not of one family"));
        assert!(msg(spec(&["239.1.1.1"], None)).contains("not a host's unicast address"));
        assert!(msg(TunnelSpec { vni: VNI_MAX + 1, ..spec(&["198.51.100.2"], None) }).contains("24 bits"));
    }

    #[test]
    fn report_in_ip_words() {
        let report = TunnelReport {
            name: "vx42".into(),
            vni: 42,
            local: Some("198.51.100.1".parse().unwrap()),
            remotes: vec!["198.51.100.2".parse().unwrap(), "198.51.100.3".parse().unwrap()],
            port: 4789,
            mtu: 1500,
            bridge: "selftest0".into(),
        };
        assert_eq!(
            report.to_string(),
            "vx42 vni 42 local 198.51.100.1 remote 198.51.100.2 remote 198.51.100.3 dstport 4789 mtu 1500 master selftest0"
        );
        assert_eq!(target_arg(Some(&TargetSpec::Pid(7))), "7");
        let mut tunnel =
            Tunnel { vni: 42, remotes: report.remotes.clone(), local: None, port: 4789, learned: Vec::new() };
        assert_eq!(tunnel.to_string(), "VXLAN 42 to 198.51.100.2, 198.51.100.3 (UDP 4789, no remote MAC learned)");
        tunnel.local = report.local;
        tunnel.learned.push(FdbEntry { mac: "02:00:00:00:00:15".into(), dst: report.local, permanent: false });
        assert_eq!(
            tunnel.to_string(),
            "VXLAN 42 to 198.51.100.2, 198.51.100.3 (UDP 4789 from 198.51.100.1, 1 remote MAC learned)"
        );
    }
}
