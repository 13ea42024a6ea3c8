//! The parent's side (`ns-unshare`): fork the holder, wait until it reports its namespaces
//! ready, then - once the caller has printed its PID - commit (one byte on a pipe). Until the
//! commit, the holder exits by itself if the parent dies (its commit pipe closes); a
//! [`Started`] dropped or aborted before it kills the holder and undoes the `--bind` mount.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, pipe2};
use serde::Serialize;

use super::HolderSpec;
use super::bind::{self, MountWatch};
use super::claim::{Listener, PipeId};
use super::hold::Held;
use super::setup::child_main;
use crate::error::{Error, Result};
use crate::sys;
use crate::undo::Undo;
use crate::vocab::NsType;

/// A holder that is ready but not committed yet: what was done so far (the process forked,
/// the bind mount made) is on its undo log, undone if it is dropped or aborted.
#[derive(Debug)]
pub struct Started {
    /// The holder's PID (in the caller's PID namespace).
    pub pid: i32,
    /// Inodes of its namespaces, by `/proc/PID/ns` name.
    pub namespaces: BTreeMap<&'static str, u64>,
    /// The bind mount made, if any.
    pub bind: Option<PathBuf>,
    commit: OwnedFd,
    undo: Undo<()>,
}

/// What `ns-unshare --json` prints.
#[derive(Debug, Serialize)]
pub struct StartedReport<'a> {
    /// The holder's PID.
    pub pid: i32,
    /// Inode of the network namespace.
    pub netns: u64,
    /// `PID:INODE`, a target that survives PID reuse.
    pub target: String,
    /// Label (`--name`).
    pub name: Option<&'a str>,
    /// Inodes of all namespaces created.
    pub namespaces: &'a BTreeMap<&'static str, u64>,
    /// Bind mount of the network namespace.
    pub bind: Option<&'a Path>,
}

impl Started {
    /// Inode of the network namespace.
    pub fn netns(&self) -> u64 {
        self.namespaces.get(NsType::Net.as_str()).copied().unwrap_or(0)
    }

    /// The JSON report.
    pub fn report<'a>(&'a self, name: Option<&'a str>) -> StartedReport<'a> {
        StartedReport {
            pid: self.pid,
            netns: self.netns(),
            target: format!("{}:{}", self.pid, self.netns()),
            name,
            namespaces: &self.namespaces,
            bind: self.bind.as_deref(),
        }
    }

    /// Let the holder live on: from now on it no longer exits when this process does.
    pub fn commit(self) -> Result<()> {
        let Started { commit, undo, .. } = self;
        match nix::unistd::write(&commit, b"C") {
            Ok(_) => {
                undo.commit();
                Ok(())
            }
            Err(e) => Err(undo.rollback(Error::sys("cannot hand over to the holder process", e))),
        }
    }

    /// Kill the holder and undo the bind mount.
    pub fn abort(self) {
        drop(self.undo);
    }
}

/// The undo step for a process forked to become (or make) the holder: SIGKILL through its pidfd,
/// and reap it if it is our child.
fn kill_step(pid: i32, our_child: bool) -> impl FnOnce(&mut ()) -> Result<()> + 'static {
    let pidfd = sys::pidfd_open(pid).ok();
    move |_| {
        if let Some(fd) = &pidfd {
            let _ = sys::pidfd_send_signal(fd, Signal::SIGKILL);
        }
        if our_child {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        Ok(())
    }
}

/// Start a holder as `spec` says. Call while single-threaded, with termination signals
/// blocked (the holder inherits the mask and reads them from a signalfd).
pub fn start(spec: &HolderSpec) -> Result<Started> {
    let bind_path = spec.bind.as_deref().map(bind::absolute);
    if let Some(path) = &bind_path {
        bind::check_target(path)?;
    }
    // The holder's own copy of the caller's pidfd.
    let exit_with = match &spec.exit_with {
        Some(fd) => Some(fd.try_clone().map_err(|e| Error::io("--exit-with: cannot duplicate the pidfd", &e))?),
        None => None,
    };
    // Made here, in the caller's namespaces, before the child leaves them.
    let mounts = bind_path.as_deref().map(MountWatch::open).transpose()?;
    let listener = PipeId::of(std::io::stdout()).and_then(Listener::bind);
    let pipe =
        |what| pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys(format!("cannot create the {what} pipe"), e));
    let (ready_r, ready_w) = pipe("ready")?;
    let (commit_r, commit_w) = pipe("commit")?;

    let child = match sys::fork().map_err(|e| Error::sys("cannot fork the holder process", e))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(commit_w);
            child_main(spec, ready_w, Held { commit: commit_r, exit_with, listener, mounts })
        }
        ForkResult::Parent { child } => child,
    };
    drop((ready_w, commit_r, exit_with, listener, mounts));

    let mut undo = Undo::new(());
    undo.push("fork the holder", kill_step(child.as_raw(), true));
    let mut started = Started { pid: child.as_raw(), namespaces: BTreeMap::new(), bind: None, commit: commit_w, undo };
    let outcome = read_ready(ready_r, &mut started);
    if spec.pid && started.pid != child.as_raw() {
        // The intermediate process exits once it has reported the holder's PID.
        let _ = waitpid(child, None);
    }
    outcome?;
    for kind in spec.types() {
        let meta = std::fs::metadata(kind.proc_path(Some(started.pid)))
            .map_err(|e| Error::io(format!("cannot inspect the holder's {kind} namespace"), &e))?;
        started.namespaces.insert(kind.as_str(), meta.ino());
    }
    if let (Some(path), Some(shown)) = (&bind_path, &spec.bind) {
        bind::bind_netns(started.pid, path)?;
        let undone = path.clone();
        started.undo.push(format!("bind the namespace at {}", shown.display()), move |_| {
            bind::undo_bind(&undone);
            Ok(())
        });
        started.bind = Some(shown.clone());
    }
    Ok(started)
}

/// Read the child's report: `PID n` (with --pid), then `OK` or `ERR code<TAB>message`.
fn read_ready(ready: OwnedFd, started: &mut Started) -> Result<()> {
    let mut lines = BufReader::new(File::from(ready)).lines();
    loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) => return Err(Error::io("cannot read from the holder process", &e)),
            None => return Err(Error::new("the holder process died while setting up the namespaces")),
        };
        if line == "OK" {
            return Ok(());
        }
        if let Some(pid) = line.strip_prefix("PID ").and_then(|p| p.parse().ok()) {
            // The holder proper, PID 1 of the PID namespace the intermediate process made.
            started.pid = pid;
            started.undo.push("fork the holder in its PID namespace", kill_step(pid, false));
            continue;
        }
        let (code, text) = line.strip_prefix("ERR ").and_then(|r| r.split_once('\t')).unwrap_or(("1", &line));
        return Err(Error::new(text.to_owned()).code(code.parse().unwrap_or(1)));
    }
}
