//! Ending a network namespace with the command it was made for (`ns-exec --end-netns`, what
//! Samba's testenvs do through `start_in_ns.sh`): once the command has ended, the namespace, its
//! addresses and the other ends of its veth pairs (a bridge port) are gone by the time the
//! caller exits - even when the command left helpers behind.
//!
//! The caller stays in the namespace while the command runs (it is the PID that names the
//! testenv: selftest starts more daemons with `nsenter -t PID --net`). Meanwhile it gets ready:
//! it finds the other ends of the namespace's pairs in its parent process's namespace (where a
//! testenv's pairs have theirs: selftest's), so that the moment the command ends costs as little
//! as it can. It subscribes to their removal (the kernel's uevents, filtered in the kernel: see
//! [`crate::netlink::uevent`] for why not rtnetlink) only once the command has ended: every
//! uevent of that namespace costs the kernel a turn at every socket subscribed there, and sixty
//! testenvs listening all along would pay it for every interface that comes or goes while they
//! run. Once the command has ended:
//!
//! - the caller moves to its parent's namespace, subscribes to the removal of the pairs the
//!   namespace has then (those found before if they are all still there; nothing of it can go
//!   before, the caller holds it), and lets go of it. Unless processes are left in it, the
//!   kernel destroys it, asynchronously and in batches, removing its interfaces and their
//!   peers - far cheaper than deleting each pair ourselves, which costs an RCU grace period,
//!   about 28 ms here, per testenv. The caller waits for the peers to go;
//! - if the peers are not gone promptly, the caller asks whether the kernel has begun to destroy
//!   the namespace (it removes the namespace's id first: the peers no longer name it). If it
//!   has, there is nothing to look for: many testenvs ending at once make batches that take
//!   longer than the prompt wait, and a look at every process per testenv would slow the
//!   kernel's work down. If not, the caller looks for processes left in it (a daemon's helpers
//!   in sessions of their own): they get SIGTERM, and its pairs are deleted at once, whatever the
//!   leftovers take to exit.
//!
//! Where it cannot leave (no privilege over its parent's namespace), or something else still
//! holds the namespace when the wait is over, the caller deletes the pairs itself. A namespace
//! the parent is in too is not the command's own: it is left as it is.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::netlink::Netlink;
use crate::netlink::link::LinkId;
use crate::netlink::uevent::{Removal, RemovalWatch};
use crate::netns::Netns;
use crate::vocab::LinkKind;

/// How long the kernel may take to begin destroying the namespace, once nothing holds it, before
/// the caller looks for processes left in it (a look at every process in `/proc`). The kernel
/// destroys namespaces in batches, one at a time: a batch begins once the one before it, an RCU
/// grace period or two, about 30-70 ms here, is over; a look that finds nothing is harmless.
const DESTROYED_PROMPTLY: Duration = Duration::from_millis(150);

/// How long to wait for the kernel to destroy the namespace before deleting the pairs ourselves
/// (something else holds it: a bind mount, an open handle).
const DESTROYED_WITHIN: Duration = Duration::from_secs(2);

/// A namespace to end with a command (see the module documentation): the calling thread's.
#[derive(Debug)]
pub struct Ending {
    netns: Netns,
    home: Home,
}

/// How [`Parent::listen`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listened {
    /// Subscribed, and every peer is still there.
    AllThere,
    /// None to listen for, or some went or were made again: look for them again.
    Changed,
    /// It cannot subscribe.
    Failed,
}

/// Where the caller goes once the command has ended.
#[derive(Debug)]
enum Home {
    /// The parent process is in the namespace too (the command was not given one of its own):
    /// it is not the command's to end, and nothing is done.
    Shared,
    /// The parent's namespace cannot be entered: the caller ends it from inside.
    Closed,
    Open(Box<Parent>),
}

impl Ending {
    /// Get ready to end `netns`, the calling thread's, while the command runs.
    pub fn new(netns: Netns) -> Ending {
        let home = Parent::open(&netns);
        Ending { netns, home }
    }

    /// End it, now that the command has ended.
    pub fn finish(self) {
        self.end(false, |_| {}, || {});
    }

    /// [`Ending::finish`] with something of the caller's that holds the namespace (a capture's
    /// socket): `leftovers` is called with the processes left in it once they got SIGTERM (the
    /// capture records them as they end), `release` before the caller is done with it.
    pub fn finish_held(self, leftovers: impl FnOnce(&[i32]), release: impl FnOnce()) {
        self.end(true, leftovers, release);
    }

    fn end(self, held: bool, leftovers: impl FnOnce(&[i32]), release: impl FnOnce()) {
        let inode = self.netns.inode();
        let mut home = match self.leave() {
            Ok(Some(home)) => home,
            Ok(None) => return release(),
            Err(netns) => return end_from_inside(netns, leftovers, release),
        };
        // Unless something of ours holds it, the kernel is destroying it now - if nothing else
        // is left in it, which is looked for only when destruction does not begin promptly.
        if !held && home.wait_until_peers_gone(Instant::now() + DESTROYED_PROMPTLY) {
            return;
        }
        if !held && home.destroying() {
            if !home.wait_until_peers_gone(Instant::now() + DESTROYED_WITHIN) {
                home.delete_peers(); // destroyed, yet they stayed: something else holds them
            }
            return;
        }
        let left = crate::netns::processes_in(inode);
        if left.is_empty() {
            release();
            home.wait_until_peers_gone(Instant::now() + DESTROYED_WITHIN);
        } else {
            terminate(&left);
            leftovers(&left);
            release();
            home.delete_pairs_of(inode, &left);
        }
        home.delete_peers(); // still there: something else holds it
    }

    /// Move to the parent's namespace, listening for the removal of the pairs' ends there, and
    /// let go of the namespace (None: it is not ours to end); give it back (the caller inside it
    /// again) where that fails.
    fn leave(self) -> Result<Option<Parent>, Netns> {
        let Ending { netns, home } = self;
        let mut home = match home {
            Home::Shared => return Ok(None),
            Home::Closed => return Err(netns),
            Home::Open(home) => *home,
        };
        if home.netns.enter().is_err() {
            return Err(netns);
        }
        home.subscribe(&netns);
        if home.watch.is_none() {
            let _ = netns.enter();
            return Err(netns);
        }
        drop(netns); // the caller's last hold on it
        Ok(Some(home))
    }
}

fn terminate(pids: &[i32]) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
}

/// Whether the peer `(index, name)` is still here: that index, with that name (not another
/// interface given the index since).
fn still_here(here: &mut Netlink, (index, name): &(u32, String)) -> bool {
    matches!(here.get_link(LinkId::Index(*index)), Ok(Some(l)) if l.name == *name)
}

/// Where the caller cannot leave: everything from inside, the pairs deleted by the caller.
fn end_from_inside(netns: Netns, leftovers: impl FnOnce(&[i32]), release: impl FnOnce()) {
    let left = crate::netns::processes_in(netns.inode());
    terminate(&left);
    if !left.is_empty() {
        leftovers(&left);
    }
    release();
    delete_pairs(&netns);
}

fn delete_pairs(netns: &Netns) {
    if let Ok(mut nl) = Netlink::open_in(netns) {
        nl.delete_veths();
    }
}

/// The parent process's namespace, where a testenv's pairs have their other ends; a socket
/// there to ask, one to hear of the removal of those ends; those ends.
#[derive(Debug)]
struct Parent {
    netns: Netns,
    here: Netlink,
    /// Told of the peers' removal, once subscribed.
    watch: Option<RemovalWatch>,
    /// The namespace's id here, once its peers are found.
    id: i32,
    /// The peers' indexes and names.
    peers: Vec<(u32, String)>,
}

impl Parent {
    /// Open them from `netns`, the calling thread's: through a socket made by a helper thread,
    /// so that the caller never leaves `netns` while the command runs - its PID names the
    /// testenv, and a `nsenter -t PID --net` meanwhile must find the testenv's namespace.
    fn open(netns: &Netns) -> Home {
        let Ok(home) = Netns::of_pid(nix::unistd::getppid().as_raw()) else { return Home::Closed };
        if home.inode() == netns.inode() {
            return Home::Shared;
        }
        let Ok(here) = Netlink::open_in(&home) else { return Home::Closed };
        let mut parent = Parent { netns: home, here, watch: None, id: -1, peers: Vec::new() };
        parent.find_peers(netns);
        Home::Open(Box::new(parent))
    }

    /// Find the other ends of the pairs of `netns` here (asked through `here`): `id` and `peers`,
    /// left as they were where there are none or they cannot be looked up.
    fn find_peers(&mut self, netns: &Netns) {
        let here = &mut self.here;
        // No id: it shares no pair with this namespace.
        let Ok(Some(id)) = here.get_nsid(netns.as_fd()) else { return };
        // Its veths, asked from here, and their peers here.
        let Ok(theirs) = here.dump_links_of(id) else { return };
        self.peers = theirs
            .iter()
            .filter(|l| l.kind == Some(LinkKind::Veth))
            .filter_map(|veth| {
                let peer = here.get_link(LinkId::Index(veth.peer_index?)).ok()??;
                (peer.peer_index == Some(veth.index) && peer.peer_netnsid == Some(id))
                    .then_some((peer.index, peer.name))
            })
            .collect();
        self.id = id;
    }

    /// Subscribe, here, to the removal of the other ends of the pairs `netns` has now: those
    /// found when the command started (a testenv's) if they are all still there, else those
    /// found now. Leaves `watch` empty where there is nothing to wait for, or it cannot subscribe.
    fn subscribe(&mut self, netns: &Netns) {
        if self.listen() == Listened::Changed {
            self.find_peers(netns);
            self.listen();
        }
    }

    /// Subscribe to the removal of `peers`, then look at them again: a removal before is not
    /// waited for, nor one of a pair that a command deleted and made again (its index is another).
    fn listen(&mut self) -> Listened {
        self.watch = None;
        if self.peers.is_empty() {
            return Listened::Changed;
        }
        let Ok(watch) = RemovalWatch::open(self.peers.iter().map(|(i, name)| (*i, name.as_str()))) else {
            return Listened::Failed;
        };
        let (here, before) = (&mut self.here, self.peers.len());
        self.peers.retain(|peer| still_here(here, peer));
        self.watch = Some(watch);
        if self.peers.len() == before { Listened::AllThere } else { Listened::Changed }
    }

    /// Wait until the kernel, destroying the namespace, has removed the peers, or until
    /// `deadline`; whether they are gone.
    fn wait_until_peers_gone(&mut self, deadline: Instant) -> bool {
        let Some(watch) = self.watch.as_mut() else { return self.peers.is_empty() };
        while !self.peers.is_empty() {
            match watch.next(deadline) {
                Ok(Removal::Removed(index)) => self.peers.retain(|(i, _)| *i != index),
                Ok(Removal::Overrun) => {
                    watch.drain();
                    let here = &mut self.here;
                    self.peers.retain(|peer| still_here(here, peer));
                }
                Ok(Removal::Timeout) | Err(_) => return false,
            }
        }
        true
    }

    /// Whether the kernel has begun to destroy the namespace: it removes the namespace's id here
    /// first, so the peers that are left no longer name it (`IFLA_LINK_NETNSID`). Until a batch
    /// of the kernel's begins, a namespace released but queued still has its id.
    fn destroying(&mut self) -> bool {
        let (here, id) = (&mut self.here, self.id);
        let mut named = false;
        self.peers.retain(|(i, _)| match here.get_link(LinkId::Index(*i)) {
            Ok(None) => false,
            Ok(Some(peer)) => {
                named |= peer.peer_netnsid == Some(id);
                true
            }
            Err(_) => {
                named = true; // cannot tell: as if not
                true
            }
        });
        !named
    }

    /// Delete the pairs of the namespace `inode` now, whatever the processes `left` in it take to
    /// exit: through a handle from one of them (its pairs elsewhere too), else by their ends here.
    fn delete_pairs_of(&mut self, inode: u64, left: &[i32]) {
        match left.iter().find_map(|pid| Netns::of_pid(*pid).ok()) {
            Some(netns) if netns.inode() == inode => {
                delete_pairs(&netns);
                self.peers.clear();
            }
            _ => self.delete_peers(),
        }
    }

    /// Deleting one end of a pair deletes both.
    fn delete_peers(&mut self) {
        for (index, _) in std::mem::take(&mut self.peers) {
            let _ = self.here.delete_link(index);
        }
    }
}
