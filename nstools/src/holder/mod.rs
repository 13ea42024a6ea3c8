//! `ns-unshare`'s holder: new namespaces kept alive by a tiny process.
//!
//! Three processes take part, each role in its own file:
//!
//! - [`spawn`]: the parent (`ns-unshare`) forks, waits until the namespaces are ready, prints
//!   the holder's PID, and commits; if anything fails, or a termination signal arrives before
//!   the commit, the holder is killed and a `--bind` mount undone: nothing is left behind.
//! - [`setup`]: the child makes the namespaces (a user namespace first when asked, so that it
//!   owns the others), brings `lo` up and reports over a pipe. With `--pid` it forks once more,
//!   so that the holder is PID 1 of the new PID namespace.
//! - [`hold`]: the holder's life, an event loop asleep in `poll` until it is told to go.
//!
//! and the holder's lifetimes, each in its own file too:
//!
//! - [`bind`]: `--bind PATH` mounts; the holder ends when its mount goes (`ip netns delete`).
//! - [`claim`]: the pipe idiom `ns-unshare | ns-exec CMD`: the holder ends when CMD does.
//! - [`args`]: the command line that makes a holder ([`HolderArgs`]), defined once for
//!   `ns-unshare` and for reading what a running holder made.
//! - [`client`]: what other processes do with holders: [`Identity`] (is this PID a holder, its
//!   label, what it ends with) and `ns-unshare --stop`.
//!
//! A holder also ends on SIGTERM, SIGINT or SIGHUP, and when its `--exit-with` process exits.

mod args;
mod bind;
mod claim;
mod client;
mod hold;
mod setup;
mod spawn;

use std::path::PathBuf;

use std::os::fd::OwnedFd;

use crate::vocab::NsType;

pub use args::{HolderArgs, Print};
pub use bind::undo_bind;
pub use claim::{PipeId, claim};
pub use client::{Identity, resolve_label, stop};
pub use spawn::{Started, StartedReport, start};

/// What to create.
#[derive(Debug, Default)]
pub struct HolderSpec {
    /// New user namespace (owner of the others).
    pub user: bool,
    /// Map the caller to root in the new user namespace.
    pub map_root: bool,
    /// New mount namespace (private propagation, fresh /sys).
    pub mount: bool,
    /// New UTS namespace.
    pub uts: bool,
    /// Hostname in the new UTS namespace.
    pub hostname: Option<String>,
    /// New IPC namespace.
    pub ipc: bool,
    /// New PID namespace, the holder as its PID 1 (fresh /proc with `mount`).
    pub pid: bool,
    /// Bring `lo` up.
    pub lo_up: bool,
    /// Exit when this process exits (a pidfd: [`crate::netns::open_process`]).
    pub exit_with: Option<OwnedFd>,
    /// Persist the network namespace at this path (a bind mount); exit when it is unmounted.
    pub bind: Option<PathBuf>,
    /// Files bound over others in the new mount namespace (`SRC`, `DEST`).
    pub bind_files: Vec<(PathBuf, PathBuf)>,
}

impl HolderSpec {
    /// The namespace types created: the network namespace, and those asked for.
    pub fn types(&self) -> Vec<NsType> {
        let asked = [
            (self.user, NsType::User),
            (self.mount, NsType::Mnt),
            (self.uts, NsType::Uts),
            (self.ipc, NsType::Ipc),
            (self.pid, NsType::Pid),
        ];
        std::iter::once(NsType::Net).chain(asked.into_iter().filter(|(on, _)| *on).map(|(_, t)| t)).collect()
    }
}

/// The descriptors of a holder sit at fixed numbers, so that other processes can read what it
/// ends with from `/proc/PID/fdinfo/N` (the `Pid:` of a pidfd): see [`Identity`].
///
/// Slot 3 holds the signalfd (termination signals, and SIGCHLD as PID 1): made last, it takes
/// the lowest free number.
pub(crate) mod slot {
    /// The commit pipe from `ns-unshare`, until it commits.
    pub const COMMIT: i32 = 4;
    /// A pidfd on the `--exit-with` process.
    pub const EXIT_WITH: i32 = 5;
    /// The listening socket for a claim through the pipe `ns-unshare` printed to, until claimed.
    pub const CLAIM_LISTENER: i32 = 6;
    /// A pidfd on the process that claimed the holder (`ns-exec`, then the command it became).
    pub const CLAIMED_BY: i32 = 7;
    /// `/proc/self/mountinfo` of the caller's mount namespace, to see a `--bind` mount go.
    pub const MOUNTS: i32 = 8;
    /// The folder of the `--bind` mount point, opened in the caller's mount namespace.
    pub const MOUNT_DIR: i32 = 9;
    /// The ready pipe to `ns-unshare`, until the holder has reported.
    pub const READY: i32 = 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_flags() {
        let spec = HolderSpec { user: true, pid: true, mount: true, ..Default::default() };
        assert_eq!(spec.types(), [NsType::Net, NsType::User, NsType::Mnt, NsType::Pid]);
    }
}
