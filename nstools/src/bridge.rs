//! `br-attach`: make sure the bridge exists (creating it on request, idempotently), then attach
//! interfaces to it, waiting for those not there yet by link notification.
//!
//! Fully done or fully undone: on failure, timeout or a termination signal, the interfaces this
//! run attached are detached again (and brought down if they were down), addresses it added to
//! an existing bridge are removed, and a bridge this run created is deleted.
//!
//! [`run_with_tunnel`] adds a VXLAN tunnel port to other hosts ([`crate::vxlan`]) in the same run.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cidr::Cidr;
use crate::error::{Error, Result, exit};
use crate::ifname::IfName;
use crate::netlink::Netlink;
use crate::netlink::link::{Link, LinkId, LinkMessage};
use crate::netlink::undone;
use crate::netlink::watch::{LinkWatch, Wake};
use crate::netns::{Netns, Target, TargetSpec};
use crate::signals::{Deferred, interrupted};
use crate::undo::Undo;
use crate::vocab::{LOOPBACK, LinkKind};
use crate::vxlan::{TunnelReport, TunnelSpec};

/// What to do.
#[derive(Debug, Clone)]
pub struct AttachSpec {
    /// The bridge.
    pub bridge: IfName,
    /// Create the bridge if missing (and bring it and `lo` up, add `addrs`).
    pub create: bool,
    /// Addresses for the bridge (with `create`).
    pub addrs: Vec<Cidr>,
    /// Keep IPv6 duplicate address detection on the bridge's addresses.
    pub dad: bool,
    /// Interfaces to attach.
    pub ifaces: Vec<IfName>,
    /// How long to wait for missing interfaces (`None`: forever; zero: do not wait).
    pub timeout: Option<Duration>,
    /// Namespace to work in (`None`: the caller's).
    pub netns: Option<TargetSpec>,
}

/// What this run changed, with what undoes it, in a socket of the namespace it works in.
type Log = Undo<Netlink>;

/// Run `spec`.
pub fn run(spec: &AttachSpec, guard: &Deferred) -> Result<()> {
    run_with_tunnel(spec, None, guard).map(drop)
}

/// Run `spec`, and give the bridge the tunnel port `tunnel` (made, or completed, before the
/// interfaces are attached); returns what the tunnel is.
pub fn run_with_tunnel(
    spec: &AttachSpec,
    tunnel: Option<&TunnelSpec>,
    guard: &Deferred,
) -> Result<Option<TunnelReport>> {
    let ns = match &spec.netns {
        Some(t) => Target::open(t)?.netns,
        None => Netns::current()?,
    };
    let mut log = Undo::new(Netlink::open_in(&ns)?);
    let result = attach_all(spec, tunnel, &ns, &mut log, guard)
        .and_then(|report| guard.check("nothing was changed").map(|()| report));
    match result {
        Ok(report) => {
            log.commit();
            Ok(report)
        }
        Err(e) => Err(log.rollback(e)),
    }
}

fn attach_all(
    spec: &AttachSpec,
    tunnel: Option<&TunnelSpec>,
    ns: &Netns,
    log: &mut Log,
    guard: &Deferred,
) -> Result<Option<TunnelReport>> {
    let wait = spec.timeout != Some(Duration::ZERO) && !spec.ifaces.is_empty();
    // Subscribe before the first look-up, so that nothing slips between look and wait.
    let mut watch = if wait { Some(LinkWatch::open_in(ns)?) } else { None };
    let deadline = spec.timeout.map(|t| Instant::now() + t);

    let bridge = if spec.create { ensure_bridge(spec, log)? } else { find_bridge(&spec.bridge, log.ctx())? };
    let report = match tunnel {
        Some(t) => Some(crate::vxlan::attach(t, &bridge, ns, spec.netns.as_ref(), log)?),
        None => None,
    };

    let mut missing = Vec::new();
    for iface in &spec.ifaces {
        match log.ctx().get_link(LinkId::Name(iface.as_str()))? {
            Some(link) => attach(log, &link, &bridge)?,
            None => missing.push(iface.as_str()),
        }
    }
    let Some(watch) = watch.as_mut() else {
        return match missing.first() {
            None => Ok(report),
            Some(name) => Err(Error::sys(format!("cannot attach {name} to {}", bridge.name), Errno::ENODEV)
                .detail(format!("{name} does not exist"))
                .hint("with --timeout 0, br-attach does not wait for it")),
        };
    };
    while !missing.is_empty() {
        match watch.next(deadline, Some(guard.fd()))? {
            Wake::Event(ev) if ev.new => {
                if let Some(pos) = missing.iter().position(|m| *m == ev.link.name) {
                    missing.remove(pos);
                    attach(log, &ev.link, &bridge)?;
                }
            }
            Wake::Event(_) => {}
            Wake::Overrun => {
                // Notifications were lost: look each missing interface up again.
                let mut still = Vec::new();
                for name in missing {
                    match log.ctx().get_link(LinkId::Name(name))? {
                        Some(link) => attach(log, &link, &bridge)?,
                        None => still.push(name),
                    }
                }
                missing = still;
            }
            Wake::Timeout => {
                let secs = spec.timeout.map_or(0.0, |t| t.as_secs_f64());
                return Err(Error::sys(
                    format!("{} did not appear within {secs} s", missing.join(", ")),
                    Errno::ETIMEDOUT,
                )
                .detail(format!("no interface of that name was created in this network namespace ({})", ns.inode()))
                .hint("is the testenv running? its veth pair is created by start_in_ns.sh or veth-pair")
                .code(exit::TIMEOUT));
            }
            Wake::Interrupted => {
                let signal = guard.pending().unwrap_or(nix::sys::signal::Signal::SIGTERM);
                return Err(interrupted(signal, "what this run changed was undone"));
            }
        }
    }
    Ok(report)
}

fn find_bridge(name: &IfName, nl: &mut Netlink) -> Result<Link> {
    let link = nl.get_link(LinkId::Name(name.as_str()))?.ok_or_else(|| {
        Error::sys(format!("bridge {name} does not exist"), Errno::ENODEV)
            .hint(format!("create it with 'br-attach --create --bridge {name}' (or create_bridge.sh)"))
    })?;
    check_is_bridge(&link)?;
    Ok(link)
}

fn check_is_bridge(link: &Link) -> Result<()> {
    if link.is_bridge() {
        return Ok(());
    }
    let kind =
        link.kind.as_ref().map_or_else(|| "a device without a link kind".to_owned(), |k| format!("a {k} device"));
    Err(Error::new(format!("{} is not a bridge", link.name)).detail(format!("it is {kind}")))
}

fn ensure_bridge(spec: &AttachSpec, log: &mut Log) -> Result<Link> {
    let name = &spec.bridge;
    let nl = log.ctx();
    let created = match nl.create_link(LinkMessage::new().name(name.as_str()).kind(LinkKind::Bridge).up()) {
        Ok(()) => true,
        Err(e) if e.errno == Errno::EEXIST => false,
        Err(e) => return Err(e.into_error(format!("cannot create bridge {name}"))),
    };
    let bridge = nl
        .get_link(LinkId::Name(name.as_str()))?
        .ok_or_else(|| Error::sys(format!("bridge {name} vanished right after it was created"), Errno::ENODEV))?;
    if created {
        let index = bridge.index;
        log.push(format!("created bridge {name}"), move |nl| {
            undone(nl.delete_link(index), &[Errno::ENODEV], "cannot remove the bridge created by this run")
        });
    } else {
        check_is_bridge(&bridge)?;
        if !bridge.up {
            nl.set_up(bridge.index).map_err(|e| e.into_error(format!("cannot bring {name} up")))?;
        }
    }
    log.ctx().set_up(LOOPBACK).map_err(|e| e.into_error("cannot bring lo up"))?;
    for addr in &spec.addrs {
        match log.ctx().add_addr(bridge.index, addr, !spec.dad) {
            // Added to a bridge that was there before: removed again on failure (a bridge this
            // run created goes with its addresses).
            Ok(()) if !created => {
                let (index, addr) = (bridge.index, *addr);
                log.push(format!("added {addr} to {name}"), move |nl| {
                    let gone = [Errno::ENODEV, Errno::EADDRNOTAVAIL];
                    undone(nl.delete_addr(index, &addr), &gone, format!("cannot remove address {addr}"))
                });
            }
            Ok(()) => {}
            Err(e) if e.errno == Errno::EEXIST => {} // already there: idempotent
            Err(e) => return Err(e.into_error(format!("cannot add address {addr} to {name}"))),
        }
    }
    Ok(bridge)
}

/// Attach `link` to `bridge` (and bring it up), recorded in `log`.
pub(crate) fn attach(log: &mut Log, link: &Link, bridge: &Link) -> Result<()> {
    let what = || format!("cannot attach {} to {}", link.name, bridge.name);
    let nl = log.ctx();
    if link.index == bridge.index {
        return Err(Error::usage(what()).detail("an interface cannot be its own bridge port"));
    }
    match link.master {
        Some(m) if m == bridge.index => {
            if !link.up {
                nl.set_up(link.index).map_err(|e| e.into_error(format!("cannot bring {} up", link.name)))?;
            }
            return Ok(());
        }
        Some(other) => {
            let other = nl.get_link(LinkId::Index(other)).ok().flatten().map_or(format!("#{other}"), |l| l.name);
            return Err(Error::sys(what(), Errno::EBUSY)
                .detail(format!("it is already attached to {other}"))
                .hint(format!("detach it first: ip link set {} nomaster", link.name)));
        }
        None => {}
    }
    nl.set_link(LinkMessage::index(link.index).up().master(bridge.index)).map_err(|e| e.into_error(what()))?;
    // Undone by taking it off the bridge, and down again if it was down.
    let (index, name, was_down) = (link.index, link.name.clone(), !link.up);
    log.push(format!("attached {name} to {}", bridge.name), move |nl| {
        let detach = LinkMessage::index(index).nomaster().when(was_down, LinkMessage::down);
        // Gone already (its testenv ended) is fine.
        undone(nl.set_link(detach), &[Errno::ENODEV], format!("cannot detach {name}"))
    });
    Ok(())
}
