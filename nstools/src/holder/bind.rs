//! `ns-unshare --bind PATH`: the network namespace persisted by a bind mount, as `ip netns add`
//! does, and its end: when the mount goes (`ip netns delete NAME`, `umount PATH`), the holder
//! exits, so the namespace and its interfaces go with it. The holder learns of it from the
//! mount table's change notification (`poll` on `/proc/self/mountinfo` gives `POLLPRI`), never
//! by polling. Killing the holder leaves the mount in place (it holds the namespace by itself).

use std::fs::{File, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::error::{Error, Result};
use crate::netns::RUN_NETNS;

/// The mount table of the caller's mount namespace, and the bind mount to look for in it.
///
/// Every change to the mount table wakes every watcher (1,000 bound testenvs: 1,000 wakeups per
/// `ip netns add`), so each wakeup costs one `fstatat` of the mount point, never a read of the
/// table (which grows with the number of mounts: that made 1,000 holders quadratic in wakeups
/// and cubic in bytes read).
#[derive(Debug)]
pub(super) struct MountWatch {
    /// `/proc/self/mountinfo`, opened in the caller's mount namespace: `poll` gives `POLLPRI`
    /// when it changes (no read needed to re-arm it).
    pub fd: OwnedFd,
    /// The mount point's folder, opened (`O_PATH`) in the caller's mount namespace: a lookup
    /// from it sees that namespace's mounts, even after the holder makes a mount namespace of
    /// its own.
    pub dir: OwnedFd,
    /// Where the network namespace is bound (absolute).
    pub path: PathBuf,
}

impl MountWatch {
    /// Open the caller's mount table and the folder of `path`, to watch the bind mount there
    /// (making /run/netns first if that is the folder, as `ip netns add` does).
    pub fn open(path: &Path) -> Result<MountWatch> {
        if path.parent() == Some(Path::new(RUN_NETNS)) {
            std::fs::create_dir_all(RUN_NETNS).map_err(|e| Error::io(format!("cannot create {RUN_NETNS}"), &e))?;
        }
        let file = File::open("/proc/self/mountinfo")
            .map_err(|e| Error::io("cannot open /proc/self/mountinfo (to watch the --bind mount)", &e))?;
        let folder = folder(path);
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(folder)
            .map_err(|e| Error::io(format!("cannot open {} (to watch the --bind mount)", folder.display()), &e))?;
        Ok(MountWatch { fd: file.into(), dir: dir.into(), path: path.to_owned() })
    }

    /// True while the holder's network namespace is still bound at the path: the path is the
    /// namespace's own nsfs inode (once unmounted, it is the empty file under the mount, or
    /// nothing).
    pub fn still_bound(&self) -> bool {
        let Some(name) = self.path.file_name() else { return true };
        let Ok(own) = crate::sys::current_netns_id() else { return true };
        match rustix::fs::statat(&self.dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => (st.st_dev, st.st_ino) == own,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => false,
            Err(_) => true, // unreadable: do not end on a guess
        }
    }
}

/// The folder of `path` (`.` for a bare name).
fn folder(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The absolute form of a `--bind` path (its folder resolved), as the mount table shows it.
pub(super) fn absolute(path: &Path) -> PathBuf {
    match (std::fs::canonicalize(folder(path)), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// Refuse a `--bind` target that exists, or whose folder does not (except /run/netns).
pub(super) fn check_target(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.symlink_metadata().is_ok() {
        return Err(Error::sys(format!("cannot bind the namespace at {shown}"), Errno::EEXIST)
            .hint(format!("remove it first (umount {shown}; rm {shown}) or choose another path")));
    }
    let parent = folder(path);
    if !parent.is_dir() && parent != Path::new(RUN_NETNS) {
        return Err(Error::sys(format!("cannot bind the namespace at {shown}"), Errno::ENOENT)
            .detail(format!("{} is not a directory", parent.display())));
    }
    Ok(())
}

/// Bind the network namespace of `pid` at `path` (a new, empty file is the mount point).
pub(super) fn bind_netns(pid: i32, path: &Path) -> Result<()> {
    let shown = path.display();
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {shown}"), &e))?;
    let source = crate::vocab::NsType::Net.proc_path(Some(pid));
    mount(Some(source.as_str()), path, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| {
        let _ = std::fs::remove_file(path);
        let err = Error::sys(format!("cannot bind the network namespace at {shown}"), e);
        if e == Errno::EPERM {
            err.hint("bind mounts need CAP_SYS_ADMIN over the mount namespace: not possible rootless from inside 'unshare --user' without '--mount'")
        } else {
            err
        }
    })
}

/// Remove a `--bind` mount and its file (what `umount PATH && rm PATH` does).
pub fn undo_bind(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
