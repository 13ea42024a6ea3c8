//! The child's side of [`start`](super::start): make the namespaces, report over the ready
//! pipe (`PID n` when a PID namespace made it fork again, then `OK` or `ERR code<TAB>message`),
//! and become the holder.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{ForkResult, getegid, geteuid, setsid};

use super::HolderSpec;
use super::hold::{Held, hold};
use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::sys;
use crate::vocab::NsType;

/// Hint when namespaces cannot be created for lack of privilege.
const HINT_PRIVILEGE: &str =
    "run as root, or add --map-root-user to create a user namespace too (rootless, as Samba's selftest does)";

/// The `CLONE_NEW*` flags of the namespaces made after the user namespace.
fn clone_flags(spec: &HolderSpec) -> CloneFlags {
    NsType::flags(spec.types().into_iter().filter(|t| *t != NsType::User))
}

/// The child: make the namespaces, report, hold. Never returns.
pub(super) fn child_main(spec: &HolderSpec, ready: OwnedFd, held: Held) -> ! {
    let report = |ready: &OwnedFd, msg: &str| {
        let _ = nix::unistd::write(ready, msg.as_bytes());
    };
    match setup(spec) {
        Ok(Role::Intermediate(holder)) => {
            report(&ready, &format!("PID {holder}\n"));
            sys::exit_now(0);
        }
        Ok(Role::Holder) => {}
        Err(e) => {
            report(&ready, &format!("ERR {}\t{e}\n", e.exit_code()));
            sys::exit_now(1);
        }
    }
    if let Err(e) = setup_inside(spec) {
        report(&ready, &format!("ERR {}\t{e}\n", e.exit_code()));
        sys::exit_now(1);
    }
    // `hold` reports OK on `ready` once its descriptors sit at their slots: from the moment its
    // PID is printed, others can read what it is (see `Identity`).
    hold(held, ready, spec.pid)
}

enum Role {
    /// This process is the holder.
    Holder,
    /// This process made a PID namespace and forked the holder (PID 1 there) with this PID.
    Intermediate(i32),
}

fn setup(spec: &HolderSpec) -> Result<Role> {
    setsid().map_err(|e| Error::sys("cannot start a new session", e))?;
    if spec.user {
        let (uid, gid) = (geteuid(), getegid());
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
            let err = Error::sys("cannot create a user namespace", e);
            match e {
                Errno::EPERM => err.hint("user namespaces are disabled for this user (kernel.unprivileged_userns_clone, AppArmor, or a seccomp filter); run as root"),
                Errno::ENOSPC | Errno::EUSERS if max_user_namespaces() == Some(0) => err.hint("user namespaces are disabled here (user.max_user_namespaces is 0): run as root, or have the administrator raise it"),
                Errno::ENOSPC | Errno::EUSERS => err.hint("the limit of user namespaces is reached (user.max_user_namespaces, or 32 levels of nesting)"),
                _ => err,
            }
        })?;
        if spec.map_root {
            write_proc("/proc/self/setgroups", "deny")?;
            write_proc("/proc/self/uid_map", &format!("0 {uid} 1"))?;
            write_proc("/proc/self/gid_map", &format!("0 {gid} 1"))?;
        }
    }
    unshare(clone_flags(spec)).map_err(|e| {
        let types: Vec<&str> = spec.types().iter().map(|t| t.as_str()).collect();
        let err = Error::sys(format!("cannot create the namespaces ({})", types.join(", ")), e);
        match e {
            Errno::EPERM => err.hint(HINT_PRIVILEGE),
            Errno::ENOSPC => err.hint("a namespace limit is reached (see /proc/sys/user/max_*_namespaces)"),
            _ => err,
        }
    })?;
    if spec.mount {
        // Private: nothing mounted in the testenv propagates back to the caller.
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| Error::sys("cannot make the new mount namespace private", e))?;
    }
    if let Some(name) = &spec.hostname {
        nix::unistd::sethostname(name).map_err(|e| Error::sys(format!("cannot set the hostname to {name}"), e))?;
    }
    if spec.pid {
        // The first child after unshare(CLONE_NEWPID) is PID 1 of the new namespace.
        return match sys::fork().map_err(|e| Error::sys("cannot fork the holder process", e))? {
            ForkResult::Child => Ok(Role::Holder),
            ForkResult::Parent { child } => Ok(Role::Intermediate(child.as_raw())),
        };
    }
    Ok(Role::Holder)
}

/// What is set up from inside all the namespaces (by the holder itself).
fn setup_inside(spec: &HolderSpec) -> Result<()> {
    if spec.mount {
        // sysfs shows the interfaces of the network namespace of whoever mounts it; proc the
        // processes of the PID namespace of whoever mounts it.
        mount_fresh("sysfs", "/sys")?;
        if spec.pid {
            mount_fresh("proc", "/proc")?;
        }
        for (src, dest) in &spec.bind_files {
            mount(Some(src.as_path()), dest.as_path(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| Error::sys(format!("cannot bind {} over {}", src.display(), dest.display()), e))?;
        }
    }
    if spec.lo_up {
        Netlink::open()?.set_up(crate::vocab::LOOPBACK).map_err(|e| e.into_error("cannot bring lo up"))?;
    }
    Ok(())
}

/// Mount a fresh instance of the file system `fs` over `path` (nosuid, nodev, noexec).
fn mount_fresh(fs: &str, path: &str) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(fs), path, Some(fs), flags, None::<&str>)
        .map_err(|e| Error::sys(format!("cannot mount a fresh {path}"), e))
}

/// The `user.max_user_namespaces` limit of this user namespace, if readable.
fn max_user_namespaces() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces").ok()?.trim().parse().ok()
}

fn write_proc(path: &str, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| {
        Error::io(format!("cannot write '{text}' to {path}"), &e)
            .hint("the user mapping was refused; --map-root-user maps only the caller's own UID and GID")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_flags_follow_the_spec() {
        let spec = HolderSpec { user: true, pid: true, mount: true, ..Default::default() };
        assert!(clone_flags(&spec).contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(!clone_flags(&spec).contains(CloneFlags::CLONE_NEWUSER), "the user namespace is made first, alone");
    }
}
