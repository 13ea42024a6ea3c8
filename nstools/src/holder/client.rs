//! What other processes do with holders: tell whether a process is one and what it is
//! ([`Identity`]: its label, and what it ends with), find one by its label, and stop holders
//! (`ns-unshare --stop`).
//!
//! A holder is a process named `ns-unshare` (its `comm`). Its label is the `--name` of its
//! command line; what it ends with is read from the pidfds at its fixed descriptor slots
//! (`/proc/PID/fdinfo/N` shows a pidfd's `Pid:` in the reader's PID namespace), so it is right
//! whatever PID namespace the holder or its watched process live in.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use serde::Serialize;

use super::args::Cmdline;
use super::slot;
use crate::error::{Error, Result};
use crate::netns::{Target, TargetSpec};
use crate::sys;
use crate::vocab::NsType;

/// What a holder is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Its PID.
    pub pid: i32,
    /// Its label (`ns-unshare --name`).
    pub label: Option<String>,
    /// The process it exits with (`--exit-with`), if it can be seen.
    pub exit_with: Option<i32>,
    /// The process that claimed it through the pipe idiom (`ns-unshare | ns-exec CMD`): ns-exec,
    /// or the command it became. The holder exits with it.
    pub claimed_by: Option<i32>,
    /// Its real user ID, as this process sees it.
    #[serde(skip)]
    pub uid: Option<u32>,
    /// The namespace types it made (`net` always; the others its flags asked for): it holds
    /// those, and shares the others with its creator.
    #[serde(skip)]
    pub made: Vec<NsType>,
}

impl Identity {
    /// The identity of process `pid`, if it is a holder.
    pub fn of(pid: i32) -> Option<Identity> {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        if !is_holder(&comm) {
            return None;
        }
        let args = Cmdline::read(&crate::listing::cmdline(pid).unwrap_or_default());
        Some(Identity {
            pid,
            label: args.value("name").map(str::to_owned),
            exit_with: pidfd_target(pid, slot::EXIT_WITH),
            claimed_by: pidfd_target(pid, slot::CLAIMED_BY),
            uid: uid_of(pid),
            made: args.made(),
        })
    }

    /// Every holder `/proc` shows.
    pub fn all() -> Vec<Identity> {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).filter_map(Identity::of).collect()
    }
}

/// The holder labelled `label` that the caller may use: one of its own user's. `Ok(None)` if
/// no holder has that label; an error (exit 2) if several of the caller's do, or only other
/// users' do (never picked silently).
pub fn resolve_label(label: &str) -> Result<Option<i32>> {
    let me = nix::unistd::getuid().as_raw();
    let (mine, others): (Vec<Identity>, Vec<Identity>) =
        Identity::all().into_iter().filter(|h| h.label.as_deref() == Some(label)).partition(|h| h.uid == Some(me));
    let pids = |hs: &[Identity]| hs.iter().map(|h| h.pid.to_string()).collect::<Vec<_>>().join(", ");
    let shown = crate::ifname::quote(label);
    match (mine.as_slice(), others.as_slice()) {
        ([one], _) => Ok(Some(one.pid)),
        ([], []) => Ok(None),
        ([], theirs) => Err(Error::usage(format!("the holder labelled {shown} is another user's"))
            .detail(format!("PID {}", pids(theirs)))
            .hint("give its PID to use it anyway")),
        (several, _) => Err(Error::usage(format!("several holders are labelled {shown}"))
            .detail(format!("PIDs {}", pids(several)))
            .hint("give the PID of the one you mean (ns-ls --label shows them)")),
    }
}

/// The process a holder's pidfd at `slot` refers to, as `/proc/PID/fdinfo` shows it.
fn pidfd_target(pid: i32, slot: i32) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{slot}")).ok()?;
    let value = info.lines().find_map(|l| l.strip_prefix("Pid:"))?.trim().parse().ok()?;
    (value > 0).then_some(value)
}

fn uid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()
}

/// True if a process of this `comm` is an ns-unshare holder.
pub fn is_holder(comm: &str) -> bool {
    comm.trim_end() == "ns-unshare"
}

/// Stop holders: SIGTERM through a pidfd, then wait (poll on the pidfds, no polling loop)
/// until every one has exited, or `timeout` passes. Refuses processes that are not holders.
pub fn stop(targets: &[TargetSpec], timeout: Duration) -> Result<()> {
    let mut pidfds = Vec::new();
    for t in targets {
        if let TargetSpec::Path(_) = t {
            return Err(
                Error::usage(format!("cannot stop {t}")).detail("give the PID (or PID:INODE, or label) of a holder")
            );
        }
        let target = Target::open(t)?;
        let (Some(pid), Some(pidfd)) = (target.pid, target.pidfd) else {
            return Err(
                Error::usage(format!("cannot stop {t}")).detail("give the PID (or PID:INODE, or label) of a holder")
            );
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !is_holder(&comm) {
            return Err(Error::new(format!("process {pid} is not an ns-unshare holder"))
                .detail(format!("it is {}", comm.trim_end()))
                .hint("ns-ls --owned lists the holders"));
        }
        pidfds.push((pid, pidfd));
    }
    for (pid, fd) in &pidfds {
        sys::pidfd_send_signal(fd, Signal::SIGTERM)
            .or_else(|e| if e == Errno::ESRCH { Ok(()) } else { Err(e) })
            .map_err(|e| Error::sys(format!("cannot stop process {pid}"), e))?;
    }
    let end = Instant::now() + timeout;
    for (pid, fd) in &pidfds {
        let left = end.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)), Ok(n) if n > 0) {
            return Err(Error::sys(
                format!("holder {pid} did not exit within {} s", timeout.as_secs_f64()),
                Errno::ETIMEDOUT,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_parsing() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let label_from_cmdline = |a: &[String]| Cmdline::read(a).value("name").map(str::to_owned);
        assert_eq!(label_from_cmdline(&args("ns-unshare --name ad_dc")), Some("ad_dc".into()));
        assert_eq!(label_from_cmdline(&args("ns-unshare --json --name=x")), Some("x".into()));
        assert_eq!(label_from_cmdline(&args("ns-unshare --json")), None);
        assert_eq!(label_from_cmdline(&args("ns-unshare --name")), None);
        assert_eq!(label_from_cmdline(&args("ns-unshare --named x")), None);
        assert_eq!(label_from_cmdline(&args("ns-unshare --exit-with 42 --name a")), Some("a".into()));
        use NsType::*;
        let made = |s: &str| Cmdline::read(&args(s)).made();
        assert_eq!(made("ns-unshare --name --pid -Urm --hostname=x"), [Net, User, Mnt, Uts]);
        assert_eq!(made("ns-unshare -p --bind-file a:b --ipc"), [Net, Mnt, Ipc, Pid]);
        assert_eq!(made("ns-unshare --exit-with 1 -mpJ --name=-U"), [Net, Mnt, Pid]);
    }

    #[test]
    fn this_process_is_no_holder() {
        assert_eq!(Identity::of(std::process::id() as i32), None);
    }
}
