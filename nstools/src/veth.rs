//! `veth-pair`: a veth pair created in one request with each end directly in its namespace,
//! then addressed and brought up, impaired ([`Impairment`]) and given default routes in the
//! peer's namespace as asked; any failure after creation deletes the pair again (an [`Undo`]
//! log, which the caller commits once it has reported the pair). And [`shape`]: the
//! impairments of an existing interface.

use std::net::IpAddr;
use std::os::fd::AsFd;

use nix::errno::Errno;
use serde::Serialize;

use crate::cidr::Cidr;
use crate::error::{Error, Result};
use crate::ifname::IfName;
use crate::impair::Impairment;
use crate::netlink::link::{LinkId, LinkMessage};
use crate::netlink::undone;
use crate::netlink::{KernelError, Netlink};
use crate::netns::{Netns, Target, TargetSpec};
use crate::signals::Deferred;
use crate::undo::Undo;
use crate::vocab::{LOOPBACK, LinkKind};

/// One end of the pair to create.
#[derive(Debug, Clone)]
pub struct EndSpec {
    /// Interface name.
    pub name: IfName,
    /// Its namespace (`None`: the caller's).
    pub netns: Option<TargetSpec>,
    /// Addresses to add.
    pub addrs: Vec<Cidr>,
    /// Hardware address.
    pub mac: Option<[u8; 6]>,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// The testenv end (`vethN`).
    pub end: EndSpec,
    /// The peer (`vethN-br`).
    pub peer: EndSpec,
    /// Bring both ends and the loopback of the end's namespace up.
    pub up: bool,
    /// Keep IPv6 duplicate address detection.
    pub dad: bool,
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// Impairments of what the end (NAME) sends; empty for none.
    pub impair: Impairment,
    /// In the peer's namespace, a default route via the end's first address of each family
    /// (`--peer-default-route`).
    pub peer_default_route: bool,
}

/// One end as created.
#[derive(Debug, Clone, Serialize)]
pub struct EndReport {
    /// Interface name.
    pub name: String,
    /// Interface index in its namespace.
    pub ifindex: u32,
    /// Inode of its network namespace.
    pub netns: u64,
    /// Addresses added.
    pub addresses: Vec<String>,
    /// Impairments set on it (what it sends), `null` for none.
    pub impairment: Option<Impairment>,
    /// Default routes added in its namespace, by gateway (the other end's addresses).
    pub gateways: Vec<String>,
}

/// What `veth-pair --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct VethReport {
    /// The end.
    #[serde(flatten)]
    pub end: EndReport,
    /// Whether both ends were brought up.
    pub up: bool,
    /// The peer.
    pub peer: EndReport,
}

fn open_ns(spec: &Option<TargetSpec>) -> Result<Netns> {
    match spec {
        Some(t) => Ok(Target::open(t)?.netns),
        None => Netns::current(),
    }
}

/// One end to create: its name, MTU and MAC.
fn end_message(end: &EndSpec, mtu: Option<u32>) -> LinkMessage<'_> {
    LinkMessage::new().name(end.name.as_str()).with(mtu, LinkMessage::mtu).with(end.mac, LinkMessage::mac)
}

fn index_of(nl: &mut Netlink, name: &IfName) -> Result<u32> {
    match nl.get_link(LinkId::Name(name.as_str()))? {
        Some(link) => Ok(link.index),
        None => Err(Error::sys(format!("{name} vanished right after it was created"), Errno::ENODEV)),
    }
}

fn add_addrs(nl: &mut Netlink, index: u32, name: &IfName, addrs: &[Cidr], nodad: bool) -> Result<Vec<String>> {
    addrs
        .iter()
        .map(|a| {
            nl.add_addr(index, a, nodad)
                .map(|()| a.to_string())
                .map_err(|e| e.into_error(format!("cannot add address {a} to {name}")))
        })
        .collect()
}

/// Create the pair as `spec` says; returns what was made and the log that removes the pair
/// again: [`Undo::commit`] it once the report is out, drop or roll it back otherwise. `guard`
/// holds termination signals back: one that arrives before the end undoes everything.
pub fn create(spec: &VethSpec, guard: &Deferred, report: bool) -> Result<(VethReport, Undo<Netlink>)> {
    spec.impair.check()?;
    let gateways = if spec.peer_default_route { gateways(&spec.end.addrs)? } else { Vec::new() };
    let end_ns = open_ns(&spec.end.netns)?;
    let peer_ns = open_ns(&spec.peer.netns)?;
    let same_ns = peer_ns.inode() == end_ns.inode();
    if same_ns && !gateways.is_empty() {
        return Err(Error::usage("--peer-default-route needs the peer in another network namespace")
            .hint("name one with --peer-netns (or NAME's with --netns)"));
    }

    // The request goes out from the end's namespace (where the end's addresses are added next)
    // and names the peer first: only that device can come up at creation (LinkMessage::veth).
    let mut nl = Netlink::open_in(&end_ns)?;
    let created = nl.create_link(
        end_message(&spec.peer, spec.mtu)
            .with((!same_ns).then(|| peer_ns.as_fd()), LinkMessage::netns_fd)
            .when(spec.up, LinkMessage::up)
            .veth(end_message(&spec.end, spec.mtu)),
    );
    if let Err(e) = created {
        return Err(explain_create_error(e, spec, &mut nl, same_ns));
    }

    // The pair exists: from here on every failure removes it again (by its index once known).
    let mut log = Undo::new(nl);
    let end_index = index_of(log.ctx(), &spec.end.name);
    let (name, index) = (spec.end.name.clone(), end_index.as_ref().ok().copied());
    log.push(format!("created {name}"), move |nl| remove_pair(nl, index, &name));

    let outcome = end_index
        .and_then(|index| configure(spec, log.ctx(), index, (&end_ns, &peer_ns), report))
        .and_then(|r| impair(spec, log.ctx(), r))
        .and_then(|r| add_gateways(&gateways, &peer_ns, &mut log, r))
        .and_then(|r| guard.check(&format!("{} was removed", spec.end.name)).map(|()| r));
    match outcome {
        Ok(report) => Ok((report, log)),
        Err(e) => Err(log.rollback(e)),
    }
}

/// Everything after creation: up, addresses, the peer's index. `nl` is in the end's namespace.
fn configure(
    spec: &VethSpec,
    nl: &mut Netlink,
    end_index: u32,
    (end_ns, peer_ns): (&Netns, &Netns),
    report: bool,
) -> Result<VethReport> {
    let nodad = !spec.dad;
    if spec.up {
        nl.set_up(end_index).map_err(|e| e.into_error(format!("cannot bring {} up", spec.end.name)))?;
        nl.set_up(LOOPBACK).map_err(|e| e.into_error("cannot bring lo up"))?;
    }
    let end_addrs = add_addrs(nl, end_index, &spec.end.name, &spec.end.addrs, nodad)?;

    let (peer_index, peer_addrs) = if report || !spec.peer.addrs.is_empty() {
        let mut own = None;
        let pnl = if peer_ns.inode() == end_ns.inode() { nl } else { own.insert(Netlink::open_in(peer_ns)?) };
        let index = index_of(pnl, &spec.peer.name)?;
        (index, add_addrs(pnl, index, &spec.peer.name, &spec.peer.addrs, nodad)?)
    } else {
        (0, Vec::new())
    };
    Ok(VethReport {
        end: EndReport {
            name: spec.end.name.to_string(),
            ifindex: end_index,
            netns: end_ns.inode(),
            addresses: end_addrs,
            impairment: None,
            gateways: Vec::new(),
        },
        up: spec.up,
        peer: EndReport {
            name: spec.peer.name.to_string(),
            ifindex: peer_index,
            netns: peer_ns.inode(),
            addresses: peer_addrs,
            impairment: None,
            gateways: Vec::new(),
        },
    })
}

/// Set the end's impairments, if any. (No undo of its own: deleting the pair removes them.)
fn impair(spec: &VethSpec, nl: &mut Netlink, mut report: VethReport) -> Result<VethReport> {
    if !spec.impair.is_empty() {
        nl.set_impairment(LinkId::Name(spec.end.name.as_str()), &spec.impair)?;
        report.end.impairment = Some(spec.impair);
    }
    Ok(report)
}

/// The gateways of `--peer-default-route`: the first address of each family in `addrs`
/// (IPv4 first; not an IPv6 link-local one, which needs a device). A usage error if there is
/// none.
pub fn gateways(addrs: &[Cidr]) -> Result<Vec<IpAddr>> {
    let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    let first = |v6: bool| addrs.iter().map(Cidr::addr).find(|a| a.is_ipv6() == v6 && !link_local(a));
    let found: Vec<IpAddr> = [first(false), first(true)].into_iter().flatten().collect();
    if found.is_empty() {
        return Err(Error::usage("--peer-default-route needs an address on NAME to route through")
            .hint("give NAME one with --addr (not a link-local one)"));
    }
    Ok(found)
}

/// In the peer's namespace, a default route via each gateway, each recorded in `log` with its
/// own socket there to remove it again (the route goes through whatever device the kernel
/// finds for the gateway - a bridge, say - so deleting the pair would not remove it).
fn add_gateways(
    gateways: &[IpAddr],
    peer_ns: &Netns,
    log: &mut Undo<Netlink>,
    mut report: VethReport,
) -> Result<VethReport> {
    for &gw in gateways {
        let mut pnl = Netlink::open_in(peer_ns)?;
        pnl.add_default_route(gw).map_err(|e| route_error(e, gw))?;
        report.peer.gateways.push(gw.to_string());
        log.push(format!("default route via {gw}"), move |_| {
            let what = format!("cannot remove the default route via {gw} in the peer's namespace");
            undone(pnl.delete_default_route(gw), &[Errno::ESRCH], what)
        });
    }
    Ok(report)
}

/// Say why a default route was refused, when the kernel's words leave it open.
fn route_error(e: KernelError, gw: IpAddr) -> Error {
    let what = format!("cannot add a default route via {gw} in the peer's namespace");
    match e.errno {
        Errno::EEXIST => Error::sys(what, Errno::EEXIST).detail("it has a default route already"),
        Errno::EINVAL | Errno::ENETUNREACH | Errno::EHOSTUNREACH => e.into_error(what).hint(format!(
            "{gw} must be reachable there: give the peer an address in its subnet (--peer-addr), or have a bridge \
             with one there"
        )),
        _ => e.into_error(what),
    }
}

/// Set the impairments of the existing interface `name` in `netns` (`None`: the caller's) to
/// `imp`, replacing whatever it had; an empty `imp` removes them (see
/// [`Netlink::set_impairment`]). Any kind of interface.
pub fn shape(name: &IfName, netns: Option<&TargetSpec>, imp: &Impairment) -> Result<()> {
    imp.check()?;
    let ns = open_ns(&netns.cloned())?;
    let mut nl = Netlink::open_in(&ns)?;
    nl.set_impairment(LinkId::Name(name.as_str()), imp)
}

/// Delete the pair (its end `index`, else the one called `name`): the undo of its creation.
fn remove_pair(nl: &mut Netlink, index: Option<u32>, name: &IfName) -> Result<()> {
    let index = match index {
        Some(i) => Some(i),
        None => nl.get_link(LinkId::Name(name.as_str())).ok().flatten().map(|l| l.index),
    };
    match index {
        Some(i) => undone(nl.delete_link(i), &[Errno::ENODEV], format!("cannot remove {name}")),
        None => Ok(()),
    }
}

/// Say which name is taken when the kernel answers EEXIST.
fn explain_create_error(e: KernelError, spec: &VethSpec, nl: &mut Netlink, same_ns: bool) -> Error {
    let name = &spec.end.name;
    let peer = &spec.peer.name;
    let what = format!("cannot create {name}");
    if e.errno != Errno::EEXIST {
        return e.into_error(what);
    }
    let err = Error::sys(what, Errno::EEXIST);
    if matches!(nl.get_link(LinkId::Name(name.as_str())), Ok(Some(_))) {
        return err; // "cannot create veth21: File exists (EEXIST)" says it all
    }
    if same_ns && matches!(nl.get_link(LinkId::Name(peer.as_str())), Ok(Some(_))) {
        return err.detail(format!("its peer {peer} already exists"));
    }
    err.detail(format!("its peer {peer} already exists in the peer's network namespace"))
}

/// Delete the veth `name` (and so its peer) in `netns` (`None`: the caller's). With
/// `missing_ok`, a missing interface is success. Refuses interfaces that are not veths.
pub fn delete(name: &IfName, netns: Option<&TargetSpec>, missing_ok: bool) -> Result<()> {
    let ns = open_ns(&netns.cloned())?;
    let mut nl = Netlink::open_in(&ns)?;
    let Some(link) = nl.get_link(LinkId::Name(name.as_str()))? else {
        return if missing_ok {
            Ok(())
        } else {
            Err(Error::sys(format!("cannot delete {name}"), Errno::ENODEV).detail(format!("{name} does not exist")))
        };
    };
    if link.kind != Some(LinkKind::Veth) {
        let kind = link.kind.as_ref().map_or("a device without a link kind", LinkKind::as_str);
        return Err(Error::new(format!("cannot delete {name}")).detail(format!("it is {kind}, not a veth")));
    }
    // A default route in the peer's namespace via NAME's address (`--peer-default-route`) may
    // run through a bridge there, not the pair: it would outlive the pair, pointing nowhere,
    // and refuse the next one.
    let routes = match link.peer_netnsid {
        Some(nsid) => {
            let addrs = nl.dump_addrs()?;
            let cidrs: Vec<Cidr> =
                addrs.iter().filter(|a| a.index == link.index).filter_map(|a| Cidr::parse(&a.cidr).ok()).collect();
            let gws = gateways(&cidrs).unwrap_or_default();
            if gws.is_empty() { None } else { netns_with_nsid(&mut nl, nsid).map(|ns| (ns, gws)) }
        }
        None => None,
    };
    match nl.delete_link(link.index) {
        Ok(()) => {}
        Err(e) if e.errno == Errno::ENODEV && missing_ok => return Ok(()),
        Err(e) => return Err(e.into_error(format!("cannot delete {name}"))),
    }
    if let Some((ns, gws)) = routes {
        let mut pnl = Netlink::open_in(&ns)?;
        for gw in gws {
            let what = format!("cannot remove the default route via {gw} in the peer's namespace");
            undone(pnl.delete_default_route(gw), &[Errno::ESRCH], what)?;
        }
    }
    Ok(())
}

/// The network namespace that `nl`'s namespace knows as `nsid`: looked for among those of the
/// processes `/proc` shows and those bind-mounted (the kernel names no namespace by its id).
fn netns_with_nsid(nl: &mut Netlink, nsid: i32) -> Option<Netns> {
    let mut seen = std::collections::HashSet::new();
    let procs = std::fs::read_dir("/proc").ok()?.flatten();
    let from_procs = procs.filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = crate::netns::nsfs_mounts(&mountinfo, crate::vocab::NsType::Net).into_iter().map(|(_, p)| p.into());
    let paths = from_procs.map(|e| e.path().join("ns/net")).chain(mounts);
    for path in paths {
        let path: std::path::PathBuf = path;
        let Ok(ns) = Netns::open_path(&path) else { continue };
        if !seen.insert(ns.inode()) {
            continue;
        }
        if nl.get_nsid(ns.as_fd()).ok().flatten() == Some(nsid) {
            return Some(ns);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    #[test]
    fn gateways_are_the_first_address_of_each_family() {
        let gw = |list: &[&str]| gateways(&cidrs(list)).map(|v| v.iter().map(IpAddr::to_string).collect::<Vec<_>>());
        assert_eq!(gw(&["fd00::1/64", "10.0.0.1/24", "10.0.0.2/24", "fd00::2/64"]).unwrap(), ["10.0.0.1", "fd00::1"]);
        assert_eq!(gw(&["fe80::1/64", "fd00::5357:5ffe/112"]).unwrap(), ["fd00::5357:5ffe"]);
        assert_eq!(gw(&["10.53.57.254/24"]).unwrap(), ["10.53.57.254"]);
        for none in [&[][..], &["fe80::1/64"][..]] {
            let e = gw(none).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE);
            assert_eq!(
                e.to_string(),
                "--peer-default-route needs an address on NAME to route through; give NAME one with --addr (not a \
                 link-local one)"
            );
        }
    }
}
