//! The holder's life: asleep in `poll` until something tells it to go. It goes on a termination
//! signal, when `ns-unshare` dies before committing (its commit pipe closes), when the
//! `--exit-with` process or the process that claimed it exits (pidfds), and when its `--bind`
//! mount goes (the mount table's change notification). Nothing is polled on a timer.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::bind::MountWatch;
use super::claim::Listener;
use super::slot;
use crate::netlink::Netlink;
use crate::netns::Netns;
use crate::signals::TERMINATING;
use crate::sys;

/// What the holder lives with, besides its signals.
#[derive(Debug)]
pub(super) struct Held {
    /// The commit pipe from `ns-unshare`: one byte commits, EOF means it died before.
    pub commit: OwnedFd,
    /// A pidfd on the `--exit-with` process.
    pub exit_with: Option<OwnedFd>,
    /// The claim listener, when `ns-unshare` printed to a pipe.
    pub listener: Option<Listener>,
    /// The mount table to watch, with `--bind`.
    pub mounts: Option<MountWatch>,
}

/// The holder's state in its event loop.
struct Holder {
    signals: SignalFd,
    commit: Option<OwnedFd>,
    exit_with: Option<OwnedFd>,
    listener: Option<Listener>,
    /// Claim connections accepted, their message not read yet, each with its deadline.
    pending: Vec<(OwnedFd, Instant)>,
    claimed_by: Option<OwnedFd>,
    mounts: Option<MountWatch>,
    pid1: bool,
}

/// What woke the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Signals,
    Commit,
    ExitWith,
    Listener,
    /// The pending connection at this index.
    Pending(usize),
    ClaimedBy,
    Mounts,
}

/// How long a claim connection may take to present the pipe (a claimant sends it at once).
const CLAIM_DEADLINE: Duration = Duration::from_millis(500);
/// Claim connections read at the same time at most (the oldest is dropped for a new one).
const MAX_PENDING: usize = 16;

/// Become the holder, report `OK` on `ready`, and live. Never returns.
pub(super) fn hold(held: Held, ready: OwnedFd, pid1: bool) -> ! {
    // No terminal, no pipes: `$(ns-unshare)` returns at once, and nothing keeps a pipe open.
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let _ = nix::unistd::chdir("/");
    let mut set: SigSet = TERMINATING.into_iter().collect();
    if pid1 {
        set.add(Signal::SIGCHLD);
    }
    let _ = set.thread_block();
    // Each descriptor at its slot (see `slot`); everything else inherited is closed.
    let mut keep = vec![(held.commit, slot::COMMIT), (ready, slot::READY)];
    let has_exit_with = held.exit_with.is_some();
    keep.extend(held.exit_with.map(|fd| (fd, slot::EXIT_WITH)));
    let listener_id = held.listener.as_ref().map(|l| l.pipe);
    keep.extend(held.listener.map(|l| (l.fd, slot::CLAIM_LISTENER)));
    let mounts_path = held.mounts.as_ref().map(|m| m.path.clone());
    keep.extend(held.mounts.into_iter().flat_map(|m| [(m.fd, slot::MOUNTS), (m.dir, slot::MOUNT_DIR)]));
    sys::keep_fds_then(keep, |fds| {
        // In slot order (see `slot`).
        let mut fds = fds.into_iter();
        let mut next = || fds.next().unwrap_or_else(|| sys::exit_now(1));
        // Signals that arrived since they were blocked stay pending: the signalfd reports them.
        // Slot 3 is the lowest free descriptor now: that is where it lands.
        let Ok(signals) = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) else {
            sys::exit_now(1)
        };
        let commit = Some(next());
        let exit_with = has_exit_with.then(&mut next);
        let listener = listener_id.map(|pipe| Listener { fd: next(), pipe });
        let mounts = mounts_path.map(|path| MountWatch { fd: next(), dir: next(), path });
        let _ = nix::unistd::write(next(), b"OK\n"); // the ready pipe (last slot), closed here
        Holder { signals, commit, exit_with, listener, pending: Vec::new(), claimed_by: None, mounts, pid1 }.run()
    })
}

impl Holder {
    fn run(mut self) -> std::convert::Infallible {
        loop {
            let mut sources = vec![(Source::Signals, self.signals.as_fd(), PollFlags::POLLIN)];
            let more = [
                (Source::Commit, self.commit.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
                (Source::ExitWith, self.exit_with.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
                (Source::Listener, self.listener.as_ref().map(|l| l.fd.as_fd()), PollFlags::POLLIN),
                (Source::ClaimedBy, self.claimed_by.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
                // Before the commit the bind mount may not be made yet: watched from then on.
                (
                    Source::Mounts,
                    self.mounts.as_ref().filter(|_| self.commit.is_none()).map(|m| m.fd.as_fd()),
                    PollFlags::POLLPRI,
                ),
            ];
            sources.extend(more.into_iter().filter_map(|(s, fd, ev)| fd.map(|fd| (s, fd, ev))));
            let pending = self.pending.iter().enumerate();
            sources.extend(pending.map(|(i, (fd, _))| (Source::Pending(i), fd.as_fd(), PollFlags::POLLIN)));
            let mut fds: Vec<PollFd<'_>> = sources.iter().map(|(_, fd, ev)| PollFd::new(*fd, *ev)).collect();
            // The one timer: the deadline of the oldest connection that has not said its claim.
            let timeout = match self.pending.iter().map(|(_, end)| *end).min() {
                Some(end) => {
                    let ms = end.saturating_duration_since(Instant::now()).as_millis() + 1;
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            if poll(&mut fds, timeout).is_err() {
                continue;
            }
            let ready: Vec<Source> = sources
                .iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|((s, _, _), _)| *s)
                .collect();
            drop(fds);
            drop(sources);
            // Pending connections first, from the highest index down (handling one removes it),
            // before the listener's new ones shift them.
            let (conns, others): (Vec<Source>, Vec<Source>) =
                ready.into_iter().partition(|s| matches!(s, Source::Pending(_)));
            for source in conns.into_iter().rev().chain(others) {
                self.handle(source);
            }
            let now = Instant::now();
            self.pending.retain(|(_, end)| *end > now);
        }
    }

    fn handle(&mut self, source: Source) {
        match source {
            Source::Signals => {
                while let Ok(Some(info)) = self.signals.read_signal() {
                    if info.ssi_signo == Signal::SIGCHLD as u32 {
                        reap();
                    } else {
                        shutdown(self.pid1, self.mounts.as_ref());
                    }
                }
            }
            Source::Commit => {
                let mut byte = [0u8; 1];
                match self.commit.as_ref().map(|fd| nix::unistd::read(fd, &mut byte)) {
                    Some(Ok(1)) => {
                        // Committed: live on; a --bind mount, made by now, is watched from here.
                        self.commit = None;
                        if self.mounts.as_ref().is_some_and(|m| !m.still_bound()) {
                            shutdown(self.pid1, self.mounts.as_ref());
                        }
                    }
                    Some(Err(Errno::EINTR | Errno::EAGAIN)) => {}
                    _ => shutdown(self.pid1, self.mounts.as_ref()), // ns-unshare died before committing
                }
            }
            Source::ExitWith | Source::ClaimedBy => shutdown(self.pid1, self.mounts.as_ref()),
            Source::Listener => {
                // Every connection waiting, each read as soon as its message is there: one that
                // says nothing (a stranger's) cannot hold up the claimant's.
                while let Some(conn) = self.listener.as_ref().and_then(Listener::accept) {
                    if self.pending.len() == MAX_PENDING {
                        self.pending.remove(0);
                    }
                    self.pending.push((conn, Instant::now() + CLAIM_DEADLINE));
                }
            }
            Source::Pending(i) => {
                if i >= self.pending.len() {
                    return;
                }
                let (conn, _) = self.pending.remove(i);
                let Some(l) = &self.listener else { return };
                if let Some(pidfd) = l.receive(conn) {
                    // One claim, once: the listener goes, the claimant's pidfd takes its place.
                    self.listener = None;
                    self.pending.clear();
                    self.claimed_by = sys::move_fd(pidfd, slot::CLAIMED_BY).ok();
                    if self.claimed_by.is_none() {
                        shutdown(self.pid1, self.mounts.as_ref());
                    }
                }
            }
            Source::Mounts => {
                if self.mounts.as_ref().is_some_and(|m| !m.still_bound()) {
                    shutdown(self.pid1, self.mounts.as_ref());
                }
            }
        }
    }
}

/// Reap every exited child (PID 1 inherits the orphans of its namespace).
fn reap() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Leave. As PID 1, first pass SIGTERM on to everything in the namespace and give it up to a
/// second to exit (the kernel kills what is left when PID 1 exits). Then, if no other process
/// uses the network namespace, delete its veth pairs: the kernel would remove them only later,
/// asynchronously, when it gets round to destroying the namespace; this way their peers in
/// other namespaces are gone by the time the holder has exited. Not while its `--bind` mount
/// keeps it: then it lives on, pairs and all (as after SIGKILL).
fn shutdown(pid1: bool, mounts: Option<&MountWatch>) -> ! {
    stop_inside(pid1);
    if !mounts.is_some_and(MountWatch::still_bound)
        && let Ok(own) = Netns::current()
        && own.processes().is_empty()
        && let Ok(mut nl) = Netlink::open()
    {
        nl.delete_veths();
    }
    sys::exit_now(0)
}

/// How long PID 1 gives the processes of its namespace to exit after SIGTERM.
const GRACE: Duration = Duration::from_secs(1);

fn stop_inside(pid1: bool) {
    if !pid1 || kill(Pid::from_raw(-1), Signal::SIGTERM).is_err() {
        return;
    }
    let end = Instant::now() + GRACE;
    // Each process is waited for through a pidfd: most are not our children (what `ns-exec
    // --all` runs is ns-exec's, outside), so SIGCHLD would not tell. Once those known have
    // exited, a new look finds any forked meanwhile.
    let mut live: Vec<OwnedFd> = Vec::new();
    loop {
        reap();
        live.retain(|fd| !sys::pidfd_exited(fd));
        if live.is_empty() {
            live = namespace_pidfds();
            live.retain(|fd| !sys::pidfd_exited(fd));
        }
        let left = end.saturating_duration_since(Instant::now());
        if live.is_empty() || left.is_zero() {
            return;
        }
        let mut fds: Vec<PollFd<'_>> = live.iter().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
        let ms = u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, ms);
    }
}

/// pidfds on the other processes of PID 1's namespace (and of namespaces nested in it). `/proc`
/// may be the caller's (`--pid` without `--mount`): its `NSpid` line gives each process's PID
/// at every level, ours at the same level as our own `1`; a pidfd opened on that number is
/// checked to be that very process (its `Pid` in `/proc`'s numbering), which leaves out a
/// process of another namespace that happens to have the same number.
fn namespace_pidfds() -> Vec<OwnedFd> {
    let nspid = |proc: &str| -> Option<Vec<i32>> {
        let status = std::fs::read_to_string(format!("/proc/{proc}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|l| l.split_whitespace().flat_map(str::parse).collect())
    };
    let Some(level) = nspid("self").and_then(|own| own.len().checked_sub(1)) else { return Vec::new() };
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pidfds = Vec::new();
    for shown in dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        let Some(&pid) = nspid(&shown.to_string()).as_ref().and_then(|ids| ids.get(level)) else { continue };
        if pid == 1 {
            continue;
        }
        let Ok(fd) = sys::pidfd_open(pid) else { continue };
        if level == 0 || pidfd_shown_as(&fd) == Some(shown) {
            pidfds.push(fd);
        }
    }
    pidfds
}

/// The PID of a pidfd's process as `/proc` numbers it (its `fdinfo`).
fn pidfd_shown_as(fd: &OwnedFd) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines().find_map(|l| l.strip_prefix("Pid:"))?.trim().parse().ok()
}
