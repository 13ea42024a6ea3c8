//! Entering the namespaces of a target (what `ns-exec` does before it runs the command).
//!
//! With a PID target everything goes through the pidfd: one `setns` enters all requested
//! namespaces at once, and the pidfd cannot point at a later process that reused the PID.
//!
//! Rootless by default: when entering the network namespace is refused (EPERM) and it belongs
//! to a user namespace other than the caller's, that user namespace is entered first, keeping
//! the caller's credentials: what `nsenter --net --user --preserve-credentials` spells out.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use crate::error::{Error, Result};
use crate::netns::{Target, TargetSpec};
use crate::sys;
use crate::vocab::NsType;

/// The namespace types `ns-exec` enters (`--all`: those of them that differ from the caller's).
/// Not the time namespace: entering it takes effect only for children, as with nsenter.
pub const ENTERABLE: [NsType; 7] =
    [NsType::User, NsType::Mnt, NsType::Uts, NsType::Ipc, NsType::Net, NsType::Pid, NsType::Cgroup];

/// What to enter.
#[derive(Debug, Clone)]
pub struct EnterSpec {
    /// The target.
    pub target: TargetSpec,
    /// Namespace types to enter.
    pub types: CloneFlags,
    /// Enter every namespace of the target that differs from the caller's (PID targets only).
    pub all: bool,
    /// With an explicit `--user`: keep the caller's UID and GID instead of becoming root there.
    pub preserve_credentials: bool,
}

/// What was entered.
#[derive(Debug)]
pub struct Entered {
    /// The namespace types entered (those that were already the caller's are not among them).
    pub types: CloneFlags,
    /// The user namespace was entered automatically (rootless).
    pub auto_user: bool,
    /// The target, still open: its network namespace and, for PID targets, its pidfd.
    pub target: Target,
}

impl Entered {
    /// A PID namespace was entered: only children of the caller are in it.
    pub fn needs_fork(&self) -> bool {
        self.types.contains(CloneFlags::CLONE_NEWPID)
    }
}

fn ns_inode(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// True if the caller is already in the target's namespace of type `t` (or the target has no
/// such namespace file: an older kernel).
fn already_in(target: &Target, t: NsType) -> bool {
    let theirs = match (target.pid, t) {
        (_, NsType::Net) => Some(target.netns.inode()),
        (Some(pid), _) => ns_inode(&t.proc_path(Some(pid))),
        (None, NsType::User) => {
            sys::ns_owner_userns(&target.netns).ok().and_then(|fd| nix::sys::stat::fstat(&fd).ok()).map(|st| st.st_ino)
        }
        (None, _) => None,
    };
    theirs.is_none() || theirs == ns_inode(&t.proc_path(None))
}

/// The names of the types in `flags` (`net, user`).
fn names(flags: CloneFlags) -> String {
    NsType::of(flags).iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

/// Enter the namespaces of `spec.target` (the calling thread; call while single-threaded,
/// since entering a user or mount namespace requires it).
pub fn enter(spec: &EnterSpec) -> Result<Entered> {
    let target = Target::open(&spec.target)?;
    let mut types = spec.types;
    if spec.all {
        if target.pid.is_none() {
            return Err(
                Error::usage("--all needs a PID target").detail("a namespace file holds only a network namespace")
            );
        }
        types = NsType::flags(ENTERABLE);
    }
    let others = types - (CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUSER);
    if target.pidfd.is_none() && !others.is_empty() {
        return Err(Error::usage(format!("cannot enter the {} namespace of {}", names(others), spec.target))
            .detail("a namespace file holds only a network namespace; give a PID"));
    }
    // Namespaces that are already ours are skipped, as nsenter skips its own user namespace:
    // entering them would change nothing, and costs a privilege the caller may not have.
    types = NsType::flags(NsType::of(types).into_iter().filter(|&t| !already_in(&target, t)));
    if types.is_empty() {
        return Ok(Entered { types, auto_user: false, target });
    }
    // Entering a mount namespace moves the working directory to its root: come back to the
    // caller's (by path) where it exists there, so that relative commands still work.
    let cwd = types.contains(CloneFlags::CLONE_NEWNS).then(std::env::current_dir).and_then(|d| d.ok());
    let explicit_user = types.contains(CloneFlags::CLONE_NEWUSER);
    let mut auto_user = false;
    match setns_all(&target, types) {
        Ok(()) => {}
        Err(Errno::EPERM) if !explicit_user && types.contains(CloneFlags::CLONE_NEWNET) => {
            // Refused: if the network namespace belongs to another user namespace, enter that
            // one first (keeping our credentials), then try again.
            let Some(owner) = foreign_owner(&target)? else {
                return Err(setns_error(Errno::EPERM, &spec.target, types));
            };
            enter_owner_userns(&target, owner)?;
            auto_user = true;
            setns_all(&target, types).map_err(|e| setns_error(e, &spec.target, types))?;
        }
        Err(e) => return Err(setns_error(e, &spec.target, types)),
    }
    if let TargetSpec::PidInode(_, want) = spec.target
        && types.contains(CloneFlags::CLONE_NEWNET)
        && sys::current_netns_inode().ok() != Some(want)
    {
        return Err(Error::new(format!("{} left network namespace {want} while it was being entered", spec.target)));
    }
    if explicit_user && !spec.preserve_credentials {
        become_root()?;
    }
    if let Some(dir) = cwd {
        // Where it does not exist, stay at the namespace's root, as nsenter does.
        let _ = std::env::set_current_dir(dir);
    }
    let types = if auto_user { types | CloneFlags::CLONE_NEWUSER } else { types };
    Ok(Entered { types, auto_user, target })
}

/// One `setns` on the pidfd for everything; without a pidfd, the network namespace file.
fn setns_all(target: &Target, types: CloneFlags) -> Result<(), Errno> {
    match &target.pidfd {
        Some(pidfd) => setns(pidfd, types),
        None => {
            if types.contains(CloneFlags::CLONE_NEWUSER) {
                let owner = sys::ns_owner_userns(&target.netns)?;
                setns(&owner, CloneFlags::CLONE_NEWUSER)?;
            }
            setns(&target.netns, CloneFlags::CLONE_NEWNET)
        }
    }
}

/// The user namespace that owns the target's network namespace, if it is not ours.
fn foreign_owner(target: &Target) -> Result<Option<OwnedFd>> {
    let owner = sys::ns_owner_userns(&target.netns)
        .map_err(|e| Error::sys("cannot find the user namespace of the target's network namespace", e))?;
    let owner_ino = nix::sys::stat::fstat(&owner).map(|st| st.st_ino).ok();
    Ok((owner_ino != ns_inode(&NsType::User.proc_path(None))).then_some(owner))
}

/// Enter `owner`, the user namespace of the target's network namespace, keeping our credentials.
fn enter_owner_userns(target: &Target, owner: OwnedFd) -> Result<()> {
    setns(owner.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| {
        Error::sys(format!("cannot enter the user namespace of {}", target.spec), e).hint(
            "its network namespace belongs to a user namespace this user does not own: run as its creator or as root",
        )
    })
}

fn setns_error(e: Errno, target: &TargetSpec, types: CloneFlags) -> Error {
    let err = Error::sys(format!("cannot enter the {} namespace of {target}", names(types)), e);
    match e {
        Errno::EPERM => {
            err.hint("needs CAP_SYS_ADMIN over those namespaces: run as root, or as the user that created them")
        }
        Errno::EINVAL if types.contains(CloneFlags::CLONE_NEWUSER) => {
            err.hint("already in that user namespace: drop --user")
        }
        _ => err,
    }
}

/// After an explicit `--user`: become root there, as nsenter does without
/// `--preserve-credentials`.
fn become_root() -> Result<()> {
    let _ = nix::unistd::setgroups(&[]); // refused where setgroups is denied; harmless
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .and_then(|()| setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)))
        .map_err(|e| {
            Error::sys("cannot become root in the user namespace", e)
                .hint("UID or GID 0 is not mapped there; use --preserve-credentials")
        })
}
