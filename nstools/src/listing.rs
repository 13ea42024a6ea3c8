//! `ns-ls`: what namespaces exist, who holds them, and (for network namespaces) their
//! interfaces, addresses, bridges and veth peers.
//!
//! Namespaces are found the way `lsns` finds them (every `/proc/PID/ns/TYPE`) plus the nsfs
//! bind mounts of `/proc/self/mountinfo` (`ip netns`, `ns-unshare --bind`). Interfaces are read
//! by one helper thread that joins each network namespace in turn; the caller's own namespace
//! never changes. A veth's peer is resolved through the kernel: its peer ifindex plus the
//! namespace id (`link-netnsid`) that its namespace uses for the peer's, matched with
//! `RTM_GETNSID` against the namespaces found.
//!
//! Impairments (a root tbf or netem qdisc: [`Impairment`]) come from one qdisc dump per
//! namespace, made only when the output shows them ([`Query::impairments`]); a dump that fails
//! is a warning ([`Listing::warnings`]), not a failed listing.
//!
//! The topology is made of links of a kind: a bridge's ports ([`Bridge`], [`Port`]) and veth
//! pairs that join namespaces directly ([`Pair`]).
//!
//! The types here are the JSON of `ns-ls --json` (documented in docs/tools.md); fields are only
//! ever added.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::holder::Identity;
use crate::impair::Impairment;
use crate::netlink::Netlink;
use crate::netlink::addr::Address;
use crate::netlink::link::Link;
use crate::vocab::{LinkKind, NsType, OperState, Scope};
use crate::vxlan::Tunnel;

/// The whole listing (`ns-ls --json`).
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Namespace type listed (`net`, `user`, `mnt`...).
    #[serde(rename = "type")]
    pub kind: NsType,
    /// The namespaces, by inode.
    pub namespaces: Vec<Namespace>,
    /// Bridges and their ports (network namespaces only).
    pub bridges: Vec<Bridge>,
    /// Veth pairs that join namespaces directly, neither end a bridge port (network namespaces
    /// only): `veth-pair v0 --netns lab` without `br-attach`.
    pub pairs: Vec<Pair>,
    /// Processes whose namespaces could not be read (other users' processes, rootless).
    pub hidden_processes: usize,
    /// What could not be read, for stderr (`ns-ls: warning: ...`); the listing is shown without it.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One namespace.
#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    /// Inode number (`readlink /proc/PID/ns/TYPE`).
    pub inode: u64,
    /// A process in it: the holder if there is one, else the oldest (the one that made it).
    pub pid: Option<i32>,
    /// Number of processes in it.
    pub nprocs: usize,
    /// PID of the ns-unshare holder, if held by one.
    pub holder: Option<i32>,
    /// Label of the holder (`ns-unshare --name`).
    pub label: Option<String>,
    /// The process the holder exits with (`ns-unshare --exit-with`).
    pub exit_with: Option<i32>,
    /// The process that claimed the holder (`ns-unshare | ns-exec CMD`): the holder exits with it.
    pub claimed_by: Option<i32>,
    /// Command line of `pid`.
    pub command: Option<String>,
    /// Paths where it is bind-mounted (`/run/netns/NAME`, `ns-unshare --bind`).
    pub binds: Vec<String>,
    /// The namespace ns-ls runs in.
    pub current: bool,
    /// Interfaces (network namespaces that could be inspected).
    pub interfaces: Option<Vec<Interface>>,
    /// Why the interfaces could not be read.
    pub error: Option<String>,
}

impl Namespace {
    /// The label, else the command.
    pub fn title(&self) -> String {
        self.label.clone().or_else(|| self.command.clone()).unwrap_or_else(|| "-".into())
    }
}

/// An interface.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// Index.
    pub index: u32,
    /// Kind (`veth`, `bridge`...).
    pub kind: Option<LinkKind>,
    /// Operational state (`UP`, `DOWN`, `UNKNOWN`...).
    pub state: OperState,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address.
    pub mac: Option<String>,
    /// Name of its master (bridge).
    pub master: Option<String>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// For a veth: the other end.
    pub peer: Option<Peer>,
    /// Its impairments (what it sends: a root tbf or netem), `null` for none.
    pub impairment: Option<Impairment>,
    /// For a VXLAN tunnel: its VNI, remotes, source address, port and learned MACs (the field
    /// is there for tunnels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<Tunnel>,
}

/// The other end of a veth.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Peer {
    /// Its name, if its namespace was found and read.
    pub name: Option<String>,
    /// Its index in its namespace.
    pub index: u32,
    /// Inode of its namespace, if found.
    pub netns: Option<u64>,
    /// A process in its namespace.
    pub pid: Option<i32>,
    /// The label of its namespace's holder.
    pub label: Option<String>,
    /// The command line of `pid`.
    pub command: Option<String>,
    /// The bridge it is a port of, if any (its `master`, when that is a bridge).
    pub master: Option<String>,
}

/// A bridge and its ports.
#[derive(Debug, Clone, Serialize)]
pub struct Bridge {
    /// Name.
    pub name: String,
    /// Its namespace.
    pub netns: u64,
    /// A process in that namespace.
    pub pid: Option<i32>,
    /// The label of that namespace.
    pub label: Option<String>,
    /// Operational state.
    pub state: OperState,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Ports.
    pub ports: Vec<Port>,
    /// The command line of `pid`.
    pub command: Option<String>,
}

/// A bridge port.
#[derive(Debug, Clone, Serialize)]
pub struct Port {
    /// Name.
    pub name: String,
    /// Operational state.
    pub state: OperState,
    /// For a veth port: the other end.
    pub peer: Option<Peer>,
    /// Addresses of the other end.
    pub peer_addresses: Vec<Address>,
    /// Impairments of the port (what it sends to the other end), `null` for none.
    pub impairment: Option<Impairment>,
    /// Impairments of the other end (what it sends to the port), `null` for none.
    pub peer_impairment: Option<Impairment>,
    /// For a VXLAN tunnel port (to other hosts): the tunnel (the field is there for tunnels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<Tunnel>,
}

/// A veth pair between two namespaces (or within one) whose ends are no bridge ports: the end
/// listed first (in the namespace ns-ls runs in if it is one of them, else in the namespace
/// whose label or command sorts first) and its peer.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// Name of this end.
    pub name: String,
    /// Its namespace.
    pub netns: u64,
    /// A process in that namespace.
    pub pid: Option<i32>,
    /// The label of that namespace.
    pub label: Option<String>,
    /// The command line of `pid`.
    pub command: Option<String>,
    /// Operational state of this end.
    pub state: OperState,
    /// Addresses of this end.
    pub addresses: Vec<Address>,
    /// Impairments of this end (what it sends to the other end), `null` for none.
    pub impairment: Option<Impairment>,
    /// The other end.
    pub peer: Peer,
    /// Addresses of the other end.
    pub peer_addresses: Vec<Address>,
    /// Impairments of the other end (what it sends to this end), `null` for none.
    pub peer_impairment: Option<Impairment>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Namespace type (`net` by default).
    pub kind: NsType,
    /// Only the namespace of this process.
    pub pid: Option<i32>,
    /// Only namespaces held by ns-unshare.
    pub owned: bool,
    /// Only namespaces whose holder has this label.
    pub label: Option<String>,
    /// Only namespaces that hold a bridge of this name (and only that bridge's topology).
    pub bridge: Option<String>,
    /// Read interfaces (network namespaces).
    pub interfaces: bool,
    /// Read impairments too (one qdisc dump per namespace), with `interfaces`: only what shows
    /// them needs them (interface lines, the topology, JSON).
    pub impairments: bool,
}

#[derive(Debug, Default)]
struct Found {
    pids: Vec<i32>,
    holder: Option<Identity>,
    binds: Vec<String>,
}

fn inode_of_link(target: &std::path::Path) -> Option<u64> {
    let text = target.to_str()?;
    text.rsplit_once('[')?.1.strip_suffix(']')?.parse().ok()
}

/// The command line of process `pid` (none for a kernel thread or a process gone).
pub(crate) fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> =
        raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    (!args.is_empty()).then_some(args)
}

/// Scan `/proc` for the namespaces of `kind`: inode → processes. Also counts unreadable ones.
fn scan_processes(kind: NsType) -> (BTreeMap<u64, Found>, usize) {
    let mut found: BTreeMap<u64, Found> = BTreeMap::new();
    let mut hidden = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else { return (found, 0) };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let link = match std::fs::read_link(kind.proc_path(Some(pid))) {
            Ok(link) => link,
            // Another user's process (rootless): counted, so that the user hears of it.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                hidden += 1;
                continue;
            }
            // Exited meanwhile, or a zombie (its namespaces are gone).
            Err(_) => continue,
        };
        let Some(inode) = inode_of_link(&link) else { continue };
        let ns = found.entry(inode).or_default();
        ns.pids.push(pid);
        if ns.holder.is_none() {
            // A holder holds the namespaces it made; the others it shares with its creator.
            ns.holder = Identity::of(pid).filter(|h| h.made.contains(&kind));
        }
    }
    (found, hidden)
}

/// The process of `pids` that started first (by start time, then PID), if any is still there.
fn oldest(pids: &[i32]) -> Option<i32> {
    pids.iter().filter_map(|&pid| Some((start_time(pid)?, pid))).min().map(|(_, pid)| pid)
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat` field 22).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "(comm)": state is field 3, so starttime (22) is the 20th after it.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// nsfs bind mounts of `kind`: (inode, path).
fn scan_binds(kind: NsType) -> Vec<(u64, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    crate::netns::nsfs_mounts(&text, kind)
}

/// Open a namespace found by [`scan_processes`] or [`scan_binds`].
fn open_ns(kind: NsType, found: &Found) -> Option<File> {
    found
        .pids
        .iter()
        .map(|pid| kind.proc_path(Some(*pid)))
        .chain(found.binds.iter().cloned())
        .find_map(|path| File::open(path).ok())
}

/// What one network namespace holds.
#[derive(Debug, Default)]
struct NetData {
    links: Vec<Link>,
    addrs: Vec<Address>,
    impairments: BTreeMap<u32, Impairment>,
    /// What could not be read of it, and what is not shown for that (its links and addresses
    /// were read): `cannot dump qdiscs: ...; its impairments are not shown`.
    problems: Vec<String>,
    tunnels: BTreeMap<u32, Tunnel>,
}

/// The impairments of the namespace `nl` is bound to. A kernel without packet scheduling
/// (CONFIG_NET_SCHED) has no qdiscs to show and refuses the dump (EOPNOTSUPP): none, no error.
fn read_impairments(nl: &mut Netlink) -> Result<BTreeMap<u32, Impairment>> {
    match nl.dump_impairments() {
        Err(e) if e.errno() == Some(nix::errno::Errno::EOPNOTSUPP) => Ok(BTreeMap::new()),
        other => other,
    }
}

/// Read links and addresses (and impairments, if `impairments`) of every namespace in `order`,
/// from one helper thread.
fn read_all(
    kind: NsType,
    found: &BTreeMap<u64, Found>,
    order: &[u64],
    impairments: bool,
) -> HashMap<u64, Result<NetData>> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut out = HashMap::new();
            for inode in order {
                let result = (|| {
                    let file = open_ns(kind, &found[inode]).ok_or_else(|| Error::new("its processes exited"))?;
                    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| Error::sys("cannot enter it", e))?;
                    let mut nl = Netlink::open()?;
                    let (links, addrs) = (nl.dump_links()?, nl.dump_addrs()?);
                    let mut problems = Vec::new();
                    let impairments = match impairments.then(|| read_impairments(&mut nl)) {
                        None => BTreeMap::new(),
                        Some(Ok(found)) => found,
                        Some(Err(e)) => {
                            problems.push(format!("{e}; its impairments are not shown"));
                            BTreeMap::new()
                        }
                    };
                    let mut tunnels = BTreeMap::new();
                    for link in &links {
                        let Some((tunnel, fdb_error)) = Tunnel::read(&mut nl, link) else { continue };
                        if let Some(e) = fdb_error {
                            problems.push(format!("{}: {e}; its remotes and learned MACs are not shown", link.name));
                        }
                        tunnels.insert(link.index, tunnel);
                    }
                    Ok(NetData { links, addrs, impairments, problems, tunnels })
                })();
                out.insert(*inode, result);
            }
            out
        })
        .join()
        .unwrap_or_default()
    })
}

/// Map each (namespace, nsid) of cross-namespace veths to the namespace it means.
fn resolve_nsids(kind: NsType, found: &BTreeMap<u64, Found>, data: &HashMap<u64, NetData>) -> HashMap<(u64, i32), u64> {
    // Namespaces with veths whose peer is elsewhere, the busiest (a selftest bridge) first.
    let mut hubs: Vec<(u64, usize)> = data
        .iter()
        .map(|(ino, d)| (*ino, d.links.iter().filter(|l| l.peer_netnsid.is_some()).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    hubs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let candidates: Vec<u64> = hubs.iter().map(|(ino, _)| *ino).collect();
    let mut map: HashMap<(u64, i32), u64> = HashMap::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            for (hub, _) in &hubs {
                // Peers already known from the other side need no look-up.
                let needed: Vec<i32> = data[hub]
                    .links
                    .iter()
                    .filter_map(|l| l.peer_netnsid)
                    .filter(|id| !map.contains_key(&(*hub, *id)))
                    .collect();
                if needed.is_empty() {
                    continue;
                }
                let Some(file) = open_ns(kind, &found[hub]) else { continue };
                if nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                    continue;
                }
                let Ok(mut nl) = Netlink::open() else { continue };
                for other in &candidates {
                    if other == hub {
                        continue;
                    }
                    let Some(f) = open_ns(kind, &found[other]) else { continue };
                    if let Ok(Some(id)) = nl.get_nsid(f.as_fd()) {
                        map.insert((*hub, id), *other);
                    }
                }
                // The other ends point back at the hub: note their ids too, so that the
                // namespaces at the other ends need no look-ups of their own.
                for link in &data[hub].links {
                    let (Some(id), Some(peer_index)) = (link.peer_netnsid, link.peer_index) else { continue };
                    let Some(other) = map.get(&(*hub, id)).copied() else { continue };
                    let back =
                        data[&other].links.iter().find(|l| l.index == peer_index && l.peer_index == Some(link.index));
                    if let Some(their_id) = back.and_then(|l| l.peer_netnsid) {
                        map.insert((other, their_id), *hub);
                    }
                }
            }
        });
    });
    map
}

/// List namespaces as `query` says.
pub fn list(query: &Query) -> Result<Listing> {
    let kind = query.kind;
    let (mut found, hidden) = scan_processes(kind);
    for (inode, path) in scan_binds(kind) {
        found.entry(inode).or_default().binds.push(path);
    }
    let current = std::fs::metadata(kind.proc_path(None)).map(|m| m.ino()).ok();
    // Filters apply to what is shown; all namespaces are read, so that peers resolve.
    let mut shown: Option<u64> = None;
    if let Some(pid) = query.pid {
        let link = std::fs::read_link(kind.proc_path(Some(pid))).map_err(|e| {
            let e = Error::io(format!("cannot read the {kind} namespace of process {pid}"), &e);
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                Error::sys(format!("no process with PID {pid}"), nix::errno::Errno::ESRCH)
            } else {
                e
            }
        })?;
        shown = inode_of_link(&link);
    }

    let order: Vec<u64> = found.keys().copied().collect();
    let inspect = query.interfaces && kind == NsType::Net;
    let mut data = if inspect { read_all(kind, &found, &order, query.impairments) } else { HashMap::new() };
    let ok: HashMap<u64, NetData> =
        data.iter_mut().filter_map(|(k, v)| v.as_mut().ok().map(|d| (*k, std::mem::take(d)))).collect();
    let nsids = if inspect { resolve_nsids(kind, &found, &ok) } else { HashMap::new() };

    // Namespaces without a holder that the filters drop, and no peer refers to (no interfaces
    // are read), need no process named: finding the oldest reads every one's /proc/PID/stat.
    let unnamed = !inspect && (query.owned || query.label.is_some());
    let mut namespaces: Vec<Namespace> = found
        .iter()
        .map(|(inode, f)| {
            // The holder, else the oldest process: the one that made the namespace (the lowest
            // PID is not, once PIDs have wrapped).
            let holder = f.holder.as_ref();
            let pid = holder.map(|h| h.pid).or_else(|| if unnamed { None } else { oldest(&f.pids) });
            let args = pid.and_then(cmdline);
            Namespace {
                inode: *inode,
                pid,
                nprocs: f.pids.len(),
                holder: holder.map(|h| h.pid),
                label: holder.and_then(|h| h.label.clone()),
                exit_with: holder.and_then(|h| h.exit_with),
                claimed_by: holder.and_then(|h| h.claimed_by),
                command: args.map(|a| a.join(" ")),
                binds: f.binds.clone(),
                current: current == Some(*inode),
                interfaces: None,
                error: match data.get(inode) {
                    Some(Err(e)) => Some(e.to_string()),
                    _ => None,
                },
            }
        })
        .collect();
    let by_inode: HashMap<u64, usize> = namespaces.iter().enumerate().map(|(i, n)| (n.inode, i)).collect();
    let peer_of = |inode: u64, link: &Link| -> Option<Peer> {
        let index = link.peer_index?;
        let peer_ns = match link.peer_netnsid {
            None => Some(inode),
            Some(id) => nsids.get(&(inode, id)).copied(),
        };
        let ns = peer_ns.and_then(|p| by_inode.get(&p)).map(|&i| &namespaces[i]);
        let data = peer_ns.and_then(|p| ok.get(&p));
        let peer = data.and_then(|d| d.links.iter().find(|l| l.index == index));
        let master = data
            .zip(peer.and_then(|l| l.master))
            .and_then(|(d, m)| d.links.iter().find(|l| l.index == m && l.is_bridge()))
            .map(|b| b.name.clone());
        Some(Peer {
            name: peer.map(|l| l.name.clone()),
            index,
            netns: peer_ns,
            pid: ns.and_then(|n| n.pid),
            label: ns.and_then(|n| n.label.clone()),
            command: ns.and_then(|n| n.command.clone()),
            master,
        })
    };
    let mut interfaces: HashMap<u64, Vec<Interface>> = HashMap::new();
    for (inode, d) in &ok {
        let list = d
            .links
            .iter()
            .map(|l| Interface {
                name: l.name.clone(),
                index: l.index,
                kind: l.kind.clone(),
                state: l.operstate,
                up: l.up,
                mtu: l.mtu,
                mac: l.mac.clone(),
                master: l.master.and_then(|m| d.links.iter().find(|x| x.index == m)).map(|m| m.name.clone()),
                addresses: d.addrs.iter().filter(|a| a.index == l.index).cloned().collect(),
                peer: peer_of(*inode, l),
                impairment: d.impairments.get(&l.index).copied(),
                vxlan: d.tunnels.get(&l.index).cloned(),
            })
            .collect();
        interfaces.insert(*inode, list);
    }
    for ns in &mut namespaces {
        ns.interfaces = interfaces.remove(&ns.inode);
    }
    let mut warnings = Vec::new();
    for ns in &namespaces {
        let Some(problems) = ok.get(&ns.inode).map(|d| &d.problems) else { continue };
        let whose = match (ns.pid, &ns.label) {
            (Some(pid), Some(label)) => format!(" (pid {pid}, {label})"),
            (Some(pid), None) => format!(" (pid {pid})"),
            (None, _) => String::new(),
        };
        warnings.extend(problems.iter().map(|p| format!("network namespace {}{whose}: {p}", ns.inode)));
    }
    let mut bridges = bridges(&namespaces);
    bridges.retain(|b| shown.is_none_or(|s| s == b.netns) && query.bridge.as_ref().is_none_or(|n| *n == b.name));
    let mut pairs = if query.bridge.is_some() { Vec::new() } else { pairs(&namespaces) };
    pairs.retain(|p| shown.is_none_or(|s| s == p.netns || Some(s) == p.peer.netns));
    namespaces.retain(|ns| {
        shown.is_none_or(|s| s == ns.inode)
            && (!query.owned || ns.holder.is_some())
            && query.label.as_ref().is_none_or(|l| ns.label.as_ref() == Some(l))
            && query.bridge.as_ref().is_none_or(|name| bridges.iter().any(|b| b.netns == ns.inode && b.name == *name))
    });
    Ok(Listing { kind, namespaces, bridges, pairs, hidden_processes: hidden, warnings })
}

/// The interface a veth `peer` names, if its namespace was read.
fn interface_of<'a>(namespaces: &'a [Namespace], peer: &Peer) -> Option<&'a Interface> {
    let ns = namespaces.iter().find(|n| Some(n.inode) == peer.netns);
    ns.and_then(|n| n.interfaces.as_ref()).and_then(|ifs| ifs.iter().find(|i| i.index == peer.index))
}

/// The addresses of `interface` that the topology shows (not link-local).
fn shown_addresses(interface: Option<&Interface>) -> Vec<Address> {
    interface.map(|i| i.addresses.iter().filter(|a| a.scope != Scope::Link).cloned().collect()).unwrap_or_default()
}

/// Veth pairs whose ends are no bridge ports, each once (from the end that sorts first: the
/// namespace ns-ls runs in, then by label or command, PID, inode; then by name).
fn pairs(namespaces: &[Namespace]) -> Vec<Pair> {
    let key =
        |ns: &Namespace, name: &str| (!ns.current, ns.title(), ns.pid.unwrap_or(i32::MAX), ns.inode, name.to_owned());
    let mut out: Vec<(_, Pair)> = Vec::new();
    for ns in namespaces {
        let Some(ifs) = &ns.interfaces else { continue };
        let bridged = |i: &Interface| {
            i.master.as_ref().is_some_and(|m| ifs.iter().any(|b| &b.name == m && b.kind == Some(LinkKind::Bridge)))
        };
        for i in ifs.iter().filter(|i| i.kind == Some(LinkKind::Veth) && !bridged(i)) {
            // The other end on a bridge: a port, shown with its bridge.
            let Some(peer) = i.peer.as_ref().filter(|p| p.master.is_none()) else { continue };
            let other = interface_of(namespaces, peer);
            let other_ns = namespaces.iter().find(|n| Some(n.inode) == peer.netns);
            // Seen from both ends: kept from the one that sorts first.
            if let (Some(o), Some(ons)) = (other, other_ns)
                && key(ons, &o.name) < key(ns, &i.name)
            {
                continue;
            }
            let pair = Pair {
                name: i.name.clone(),
                netns: ns.inode,
                pid: ns.pid,
                label: ns.label.clone(),
                command: ns.command.clone(),
                state: i.state,
                addresses: shown_addresses(Some(i)),
                impairment: i.impairment,
                peer: peer.clone(),
                peer_addresses: shown_addresses(other),
                peer_impairment: other.and_then(|o| o.impairment),
            };
            out.push((key(ns, &i.name), pair));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, p)| p).collect()
}

fn bridges(namespaces: &[Namespace]) -> Vec<Bridge> {
    let interface_of = |peer: &Peer| interface_of(namespaces, peer);
    let addresses_of = |peer: &Peer| shown_addresses(interface_of(peer));
    let mut out = Vec::new();
    for ns in namespaces {
        let Some(ifs) = &ns.interfaces else { continue };
        for br in ifs.iter().filter(|i| i.kind == Some(LinkKind::Bridge)) {
            let ports = ifs
                .iter()
                .filter(|p| p.master.as_deref() == Some(br.name.as_str()))
                .map(|p| Port {
                    name: p.name.clone(),
                    state: p.state,
                    peer_addresses: p.peer.as_ref().map(addresses_of).unwrap_or_default(),
                    impairment: p.impairment,
                    peer_impairment: p.peer.as_ref().and_then(interface_of).and_then(|i| i.impairment),
                    peer: p.peer.clone(),
                    vxlan: p.vxlan.clone(),
                })
                .collect();
            out.push(Bridge {
                name: br.name.clone(),
                netns: ns.inode,
                pid: ns.pid,
                label: ns.label.clone(),
                state: br.state,
                addresses: br.addresses.iter().filter(|a| a.scope != Scope::Link).cloned().collect(),
                ports,
                command: ns.command.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_namespace() {
        let l = list(&Query { kind: NsType::Net, pid: Some(std::process::id() as i32), ..Default::default() }).unwrap();
        assert_eq!(l.namespaces.len(), 1);
        assert!(l.namespaces[0].current);
        assert!(l.namespaces[0].nprocs >= 1);
    }
}
