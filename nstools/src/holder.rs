//! `ns-unshare`: new namespaces kept alive by a tiny holder process.
//!
//! The tool forks; the child makes the namespaces (a user namespace first when asked, so that
//! it owns the others), brings `lo` up, reports over a pipe, and becomes the holder: its own
//! session, `/dev/null` for stdio, every other descriptor closed, asleep in `poll` until a
//! termination signal, the exit of the `--exit-with` process (pidfd), or its parent dying before
//! committing. With `--pid` it forks once more so that the holder is PID 1 of the new PID
//! namespace.
//!
//! The parent prints the holder's PID only once everything is ready, then commits (one byte on
//! a second pipe). If anything fails, or a termination signal arrives before the commit, the
//! holder is killed and a `--bind` mount undone: nothing is left behind.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid, getegid, geteuid, pipe2, setsid};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::netns::RUN_NETNS;
use crate::signals::TERMINATING;
use crate::sys;

/// Hint when namespaces cannot be created for lack of privilege.
const HINT_PRIVILEGE: &str =
    "run as root, or add --map-root-user to create a user namespace too (rootless, as Samba's selftest does)";

/// What to create.
#[derive(Debug, Clone, Default)]
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
    /// Exit when this process exits.
    pub exit_with: Option<i32>,
    /// Persist the network namespace at this path (a bind mount).
    pub bind: Option<PathBuf>,
    /// Files bound over others in the new mount namespace (`SRC`, `DEST`).
    pub bind_files: Vec<(PathBuf, PathBuf)>,
}

impl HolderSpec {
    fn clone_flags(&self) -> CloneFlags {
        let mut flags = CloneFlags::CLONE_NEWNET;
        for (on, flag) in [
            (self.mount, CloneFlags::CLONE_NEWNS),
            (self.uts, CloneFlags::CLONE_NEWUTS),
            (self.ipc, CloneFlags::CLONE_NEWIPC),
            (self.pid, CloneFlags::CLONE_NEWPID),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }

    /// The namespace types created, as `/proc/PID/ns` names.
    pub fn types(&self) -> Vec<&'static str> {
        let mut t = vec!["net"];
        for (on, name) in
            [(self.user, "user"), (self.mount, "mnt"), (self.uts, "uts"), (self.ipc, "ipc"), (self.pid, "pid")]
        {
            if on {
                t.push(name);
            }
        }
        t
    }
}

/// A holder that is ready but not committed yet.
#[derive(Debug)]
pub struct Started {
    /// The holder's PID (in the caller's PID namespace).
    pub pid: i32,
    /// Inodes of its namespaces, by `/proc/PID/ns` name.
    pub namespaces: BTreeMap<&'static str, u64>,
    /// The bind mount made, if any.
    pub bind: Option<PathBuf>,
    commit: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    our_child: bool,
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
        self.namespaces.get("net").copied().unwrap_or(0)
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
    pub fn commit(mut self) -> Result<()> {
        let fd = self.commit.take().expect("not committed yet");
        nix::unistd::write(&fd, b"C").map_err(|e| Error::sys("cannot hand over to the holder process", e))?;
        Ok(())
    }

    /// Kill the holder and undo the bind mount.
    pub fn abort(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(pidfd) = &self.pidfd {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL as i32);
        }
        if self.our_child {
            let _ = waitpid(Pid::from_raw(self.pid), None);
        }
        if let Some(path) = self.bind.take() {
            undo_bind(&path);
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.commit.is_some() {
            self.kill();
        }
    }
}

/// Start a holder as `spec` says. Call while single-threaded, with termination signals
/// blocked (the holder inherits the mask and reads them from a signalfd).
pub fn start(spec: &HolderSpec) -> Result<Started> {
    if let Some(path) = &spec.bind {
        check_bind_target(path)?;
    }
    let exit_with = match spec.exit_with {
        Some(pid) => Some(crate::netns::open_pid(pid).map_err(|e| e.context("--exit-with"))?),
        None => None,
    };
    let pipe =
        |what| pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys(format!("cannot create the {what} pipe"), e));
    let (ready_r, ready_w) = pipe("ready")?;
    let (commit_r, commit_w) = pipe("commit")?;

    let child = match sys::fork().map_err(|e| Error::sys("cannot fork the holder process", e))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(commit_w);
            child_main(spec, ready_w, commit_r, exit_with)
        }
        ForkResult::Parent { child } => child,
    };
    drop(ready_w);
    drop(commit_r);
    drop(exit_with);

    let mut started = Started {
        pid: child.as_raw(),
        namespaces: BTreeMap::new(),
        bind: None,
        commit: Some(commit_w),
        pidfd: sys::pidfd_open(child.as_raw()).ok(),
        our_child: true,
    };
    let outcome = read_ready(ready_r, &mut started);
    if spec.pid && started.pid != child.as_raw() {
        // The intermediate process exits once it has reported the holder's PID.
        let _ = waitpid(child, None);
    }
    outcome?;
    for kind in spec.types() {
        let meta = std::fs::metadata(format!("/proc/{}/ns/{kind}", started.pid))
            .map_err(|e| Error::io(format!("cannot inspect the holder's {kind} namespace"), &e))?;
        started.namespaces.insert(kind, meta.ino());
    }
    if let Some(path) = &spec.bind {
        bind_netns(started.pid, path)?;
        started.bind = Some(path.clone());
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
            started.pid = pid;
            started.pidfd = sys::pidfd_open(pid).ok();
            started.our_child = false;
            continue;
        }
        let (code, text) = line.strip_prefix("ERR ").and_then(|r| r.split_once('\t')).unwrap_or(("1", &line));
        return Err(Error::new(text.to_owned()).code(code.parse().unwrap_or(1)));
    }
}

/// The child: make the namespaces, report, hold. Never returns.
fn child_main(spec: &HolderSpec, ready: OwnedFd, commit: OwnedFd, exit_with: Option<OwnedFd>) -> ! {
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
    report(&ready, "OK\n");
    drop(ready);
    hold(commit, exit_with, spec.pid)
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
    unshare(spec.clone_flags()).map_err(|e| {
        let err = Error::sys(format!("cannot create the namespaces ({})", spec.types().join(", ")), e);
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
        Netlink::open()?.set_up(1).map_err(|e| e.into_error("cannot bring lo up"))?;
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

/// The holder's life: asleep until told to go. Never returns.
fn hold(commit: OwnedFd, exit_with: Option<OwnedFd>, pid1: bool) -> ! {
    // No terminal, no pipes: `$(ns-unshare)` returns at once, and nothing keeps a pipe open.
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let _ = nix::unistd::chdir("/");
    let mut set: nix::sys::signal::SigSet = TERMINATING.into_iter().collect();
    if pid1 {
        set.add(Signal::SIGCHLD);
    }
    let _ = set.thread_block();
    let Ok(signals) = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) else {
        sys::exit_now(1)
    };
    let mut keep = vec![signals.as_fd().as_raw_fd(), commit.as_raw_fd()];
    keep.extend(exit_with.as_ref().map(|f| f.as_raw_fd()));
    sys::close_fds_except(3, &keep);

    let mut commit = Some(commit);
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &exit_with {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(fd) = &commit {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (signal_ready, exit_ready) = (ready(0), exit_with.is_some() && ready(1));
        let commit_ready = commit.is_some() && ready(fds.len() - 1);
        drop(fds);
        if exit_ready {
            shutdown(pid1);
        }
        if commit_ready {
            let mut byte = [0u8; 1];
            match nix::unistd::read(commit.as_ref().expect("polled"), &mut byte) {
                Ok(1) => commit = None, // committed: live on
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                _ => shutdown(pid1), // ns-unshare died before committing
            }
        }
        if signal_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo == Signal::SIGCHLD as u32 {
                    reap();
                } else {
                    shutdown(pid1);
                }
            }
        }
    }
}

/// Reap every exited child (PID 1 inherits the orphans of its namespace).
fn reap() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

/// Leave. As PID 1, first pass SIGTERM on to everything in the namespace and give it up to a
/// second to exit (the kernel kills what is left when PID 1 exits). Then, if no other process
/// uses the network namespace, delete its veth pairs: the kernel would remove them only later,
/// asynchronously, when it gets round to destroying the namespace; this way their peers in
/// other namespaces are gone by the time the holder has exited.
fn shutdown(pid1: bool) -> ! {
    stop_inside(pid1);
    release_veths();
    sys::exit_now(0)
}

fn release_veths() {
    let Ok(own) = crate::netns::Netns::current() else { return };
    if !own.processes().is_empty() {
        return;
    }
    if let Ok(mut nl) = Netlink::open() {
        nl.delete_veths();
    }
}

fn stop_inside(pid1: bool) {
    if pid1 && kill(Pid::from_raw(-1), Signal::SIGTERM).is_ok() {
        let end = Instant::now() + Duration::from_secs(1);
        let set: nix::sys::signal::SigSet = [Signal::SIGCHLD].into_iter().collect();
        // Children and orphans report by SIGCHLD; others are checked at each wake-up.
        while Instant::now() < end && kill(Pid::from_raw(-1), None).is_ok() {
            reap();
            let left = end.saturating_duration_since(Instant::now());
            let ts = nix::sys::time::TimeSpec::from_duration(left.min(Duration::from_millis(50)));
            sys::sigtimedwait(&set, &ts);
        }
    }
}

/// Refuse a `--bind` target that exists, or whose folder does not (except /run/netns).
fn check_bind_target(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.symlink_metadata().is_ok() {
        return Err(Error::sys(format!("cannot bind the namespace at {shown}"), Errno::EEXIST)
            .hint(format!("remove it first (umount {shown}; rm {shown}) or choose another path")));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() && parent != Path::new(RUN_NETNS) {
        return Err(Error::sys(format!("cannot bind the namespace at {shown}"), Errno::ENOENT)
            .detail(format!("{} is not a directory", parent.display())));
    }
    Ok(())
}

fn bind_netns(pid: i32, path: &Path) -> Result<()> {
    let shown = path.display();
    if path.parent() == Some(Path::new(RUN_NETNS)) {
        std::fs::create_dir_all(RUN_NETNS).map_err(|e| Error::io(format!("cannot create {RUN_NETNS}"), &e))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {shown}"), &e))?;
    let source = format!("/proc/{pid}/ns/net");
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

/// Stop holders: SIGTERM through a pidfd, then wait (poll on the pidfds, no polling loop)
/// until every one has exited, or `timeout` passes. Refuses processes that are not holders.
pub fn stop(targets: &[crate::netns::TargetSpec], timeout: Duration) -> Result<()> {
    use crate::netns::TargetSpec;
    let mut pidfds = Vec::new();
    for t in targets {
        let (TargetSpec::Pid(pid) | TargetSpec::PidInode(pid, _)) = *t else {
            return Err(Error::usage(format!("cannot stop {t}")).detail("give the PID (or PID:INODE) of a holder"));
        };
        let target = crate::netns::Target::open(t)?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !is_holder(&comm) {
            return Err(Error::new(format!("process {pid} is not an ns-unshare holder"))
                .detail(format!("it is {}", comm.trim_end()))
                .hint("ns-ls --owned lists the holders"));
        }
        pidfds.push((pid, target.pidfd.expect("PID targets have a pidfd")));
    }
    for (pid, fd) in &pidfds {
        sys::pidfd_send_signal(fd.as_fd(), Signal::SIGTERM as i32)
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

/// The label given with `--name` in a holder's command line, if any.
pub fn label_from_cmdline(args: &[String]) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--name" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--name=") {
            return Some(v.to_owned());
        }
    }
    None
}

/// True if `/proc/PID` is an ns-unshare holder (by its command name).
pub fn is_holder(comm: &str) -> bool {
    comm.trim_end() == "ns-unshare"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_parsing() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(label_from_cmdline(&args("ns-unshare --name ad_dc")), Some("ad_dc".into()));
        assert_eq!(label_from_cmdline(&args("ns-unshare --json --name=x")), Some("x".into()));
        assert_eq!(label_from_cmdline(&args("ns-unshare --json")), None);
        assert_eq!(label_from_cmdline(&args("ns-unshare --name")), None);
    }

    #[test]
    fn types_follow_flags() {
        let spec = HolderSpec { user: true, pid: true, mount: true, ..Default::default() };
        assert_eq!(spec.types(), ["net", "user", "mnt", "pid"]);
        assert!(spec.clone_flags().contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(!spec.clone_flags().contains(CloneFlags::CLONE_NEWUSER), "the user namespace is made first, alone");
    }
}
