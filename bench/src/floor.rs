//! The variants that run in one process (E, the floor, and L, the library's own functions),
//! and the listing fixture.
//!
//! E makes, per testenv, exactly the kernel requests that D's three processes make
//! (`ns-unshare`, `veth-pair --netns`, `br-attach`), without starting any process but the
//! holder itself (the testenv's long-lived process, as every variant has one):
//! - a holder forked by `nstools::holder` (new network namespace, `lo` brought up inside, the
//!   ready/commit pipes), then its namespace opened (`/proc/PID/ns/net`);
//! - a netlink socket opened inside it (setns there and back, on this thread: no thread);
//! - the requests of veth-pair: the pair in one request (`vethN-br` up, in the selftest
//!   namespace), look up `vethN`, set it up, set `lo` up, add the IPv4 and IPv6 addresses;
//! - the requests of br-attach: look up `selftest0` and `vethN-br`, set master and up.
//!
//! Teardown: SIGTERM to every holder, then wait for each (each deletes its veth pair as it
//! exits, as in D).
//!
//! L calls the library functions the binaries call (`holder::start`, `veth::create`,
//! `bridge::run`, `holder::stop`) in one process: D minus the process starts and argument
//! parsing, E plus the library's own conveniences (target checks, a helper thread per foreign
//! namespace, notification sockets).

use std::io::BufRead;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use nstools::bridge::AttachSpec;
use nstools::holder::{self, HolderSpec};
use nstools::netlink::link::{LinkId, LinkMessage};
use nstools::netlink::{KernelError, Netlink};
use nstools::signals::Deferred;
use nstools::veth::{EndSpec, VethSpec};
use nstools::vocab::{LOOPBACK, LinkKind};
use nstools::{Cidr, IfName, Netns, TargetSpec};

fn mark(what: &str) {
    println!("@bench {what}");
}

fn kernel(what: impl Into<String>) -> impl FnOnce(KernelError) -> anyhow::Error {
    move |e| anyhow::Error::new(e.into_error(what))
}

fn index(nl: &mut Netlink, name: &str) -> Result<u32> {
    Ok(nl.get_link(LinkId::Name(name))?.with_context(|| format!("{name} does not exist"))?.index)
}

/// A netlink socket in `ns`, opened by entering it on this thread and coming back to `home`.
fn socket_in(ns: &Netns, home: &Netns) -> Result<Netlink> {
    ns.enter()?;
    let nl = Netlink::open();
    home.enter()?;
    Ok(nl?)
}

fn addresses(x: u32) -> Result<[Cidr; 2]> {
    Ok([Cidr::parse(&format!("10.53.57.{x}/24"))?, Cidr::parse(&format!("fd00::5357:5f{x:02x}/112"))?])
}

/// A holder for a testenv, committed; its PID.
fn start_holder(bind: Option<PathBuf>) -> Result<i32> {
    let started = holder::start(&HolderSpec { lo_up: true, bind, ..Default::default() })?;
    let pid = started.pid;
    started.commit()?;
    Ok(pid)
}

/// Variant E or L (see the module documentation).
pub fn variant(lib: bool, ids: &[u32]) -> Result<u8> {
    let guard = Deferred::block()?; // holders expect the termination signals blocked
    if lib {
        // holder::stop (what `ns-unshare --stop` calls) stops only processes named ns-unshare;
        // the holders are forks of this process and inherit the name.
        nix::sys::prctl::set_name(c"ns-unshare")?;
    }
    unshare(CloneFlags::CLONE_NEWNET).context("cannot create the selftest namespace")?;
    mark(&format!("selftest {}", std::process::id()));
    let selftest = Netns::current()?;
    let mut nl = Netlink::open()?;
    nl.set_up(LOOPBACK).map_err(kernel("cannot bring lo up"))?;
    nl.create_link(LinkMessage::new().name("selftest0").kind(LinkKind::Bridge).up())
        .map_err(kernel("cannot create selftest0"))?;
    let bridge = index(&mut nl, "selftest0")?;
    for cidr in ["10.53.57.11/24", "fd00::5357:5f0b/112"] {
        nl.add_addr(bridge, &Cidr::parse(cidr)?, true).map_err(kernel(format!("cannot add {cidr}")))?;
    }
    mark("base");

    let mut pids = Vec::new();
    for &x in ids {
        let pid = start_holder(None)?;
        pids.push(pid);
        if lib {
            library_testenv(x, pid, &guard)?;
        } else {
            floor_testenv(x, pid, &selftest, &mut nl)?;
        }
    }
    mark("setup");

    let last = ids.last().context("no testenvs")?;
    let ping = Command::new("ping")
        .args(["-c", "1", "-W", "5", &format!("10.53.57.{last}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    mark(if ping.success() { "ping ok" } else { "ping failed" });
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go)?;

    if lib {
        let targets: Vec<TargetSpec> = pids.iter().map(|&p| TargetSpec::Pid(p)).collect();
        holder::stop(&targets, Duration::from_secs(60))?;
    } else {
        for &pid in &pids {
            kill(Pid::from_raw(pid), Signal::SIGTERM)?;
        }
    }
    for &pid in &pids {
        waitpid(Pid::from_raw(pid), None)?;
    }
    mark("teardown");
    Ok(0)
}

/// E: the requests veth-pair and br-attach make, on sockets this process keeps.
fn floor_testenv(x: u32, pid: i32, selftest: &Netns, nl: &mut Netlink) -> Result<()> {
    let testenv = Netns::open_path(Path::new(&format!("/proc/{pid}/ns/net")))?;
    let mut tnl = socket_in(&testenv, selftest)?;
    let (end, peer) = (format!("veth{x}"), format!("veth{x}-br"));
    tnl.create_link(LinkMessage::new().name(&peer).netns_fd(selftest.as_fd()).up().veth(LinkMessage::new().name(&end)))
        .map_err(kernel(format!("cannot create {end}")))?;
    let end_index = index(&mut tnl, &end)?;
    tnl.set_up(end_index).map_err(kernel(format!("cannot bring {end} up")))?;
    tnl.set_up(LOOPBACK).map_err(kernel("cannot bring lo up"))?;
    for cidr in addresses(x)? {
        tnl.add_addr(end_index, &cidr, true).map_err(kernel(format!("cannot add {cidr}")))?;
    }
    let bridge = index(nl, "selftest0")?;
    let port = index(nl, &peer)?;
    nl.set_link(LinkMessage::index(port).up().master(bridge)).map_err(kernel(format!("cannot attach {peer}")))?;
    Ok(())
}

/// L: what veth-pair and br-attach call.
fn library_testenv(x: u32, pid: i32, guard: &Deferred) -> Result<()> {
    let end = IfName::new(&format!("veth{x}"))?;
    let peer = end.peer_of()?;
    let spec = VethSpec {
        end: EndSpec { name: end, netns: Some(TargetSpec::Pid(pid)), addrs: addresses(x)?.to_vec(), mac: None },
        peer: EndSpec { name: peer.clone(), netns: None, addrs: Vec::new(), mac: None },
        up: true,
        dad: false,
        mtu: None,
        impair: nstools::impair::Impairment::default(),
        peer_default_route: false,
    };
    let (_, pair) = nstools::veth::create(&spec, guard, false)?;
    pair.commit();
    let attach = AttachSpec {
        bridge: IfName::new("selftest0")?,
        create: false,
        addrs: Vec::new(),
        dad: false,
        ifaces: vec![peer],
        timeout: Some(Duration::ZERO),
        netns: None,
    };
    nstools::bridge::run(&attach, guard)?;
    Ok(())
}

/// The listing fixture: `count` namespaces, each held by a holder, bound at
/// `/run/netns/benchI`, with a veth pair `fxCOUNT-I` (two addresses) / `fxCOUNT-I-br` (here). Prints
/// "ready"; when stdin closes, stops the holders and removes the bind mounts.
pub fn fixture(count: usize) -> Result<u8> {
    let _guard = Deferred::block()?;
    std::fs::create_dir_all("/run/netns")?;
    let here = Netns::current()?;
    let mut holders = Vec::new();
    let result = (|| -> Result<()> {
        for i in 0..count {
            let path = PathBuf::from(format!("/run/netns/bench{i}"));
            let pid = start_holder(Some(path.clone()))?;
            holders.push((pid, path));
            let ns = Netns::open_path(Path::new(&format!("/proc/{pid}/ns/net")))?;
            let mut nl = socket_in(&ns, &here)?;
            // Named after the fixture's size too: the pairs of the one before go with its
            // namespaces, which the kernel destroys asynchronously (their bind mounts kept them).
            let (end, peer) = (format!("fx{count}-{i}"), format!("fx{count}-{i}-br"));
            nl.create_link(
                LinkMessage::new().name(&peer).netns_fd(here.as_fd()).up().veth(LinkMessage::new().name(&end)),
            )
            .map_err(kernel(format!("cannot create {end}")))?;
            let index = index(&mut nl, &end)?;
            nl.set_up(index).map_err(kernel(format!("cannot bring {end} up")))?;
            let v4 = Cidr::parse(&format!("10.{}.{}.1/24", 100 + i / 250, i % 250))?;
            let v6 = Cidr::parse(&format!("fd00:0:0:{i:x}::1/64"))?;
            for cidr in [v4, v6] {
                nl.add_addr(index, &cidr, true).map_err(kernel(format!("cannot add {cidr}")))?;
            }
        }
        Ok(())
    })();
    if result.is_ok() {
        println!("ready");
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line)? > 0 {
            line.clear();
        }
    }
    for (pid, _) in &holders {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    for (pid, path) in &holders {
        let _ = waitpid(Pid::from_raw(*pid), None);
        holder::undo_bind(path);
    }
    result?;
    if holders.len() != count {
        bail!("the fixture is incomplete");
    }
    Ok(0)
}
