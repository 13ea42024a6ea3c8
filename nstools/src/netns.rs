//! Network namespace handles and targets.
//!
//! A target names a network namespace the way users and scripts do: a PID (`4242`), a PID
//! with the namespace's inode (`4242:4026532841`, refused if the PID has since moved to another
//! namespace, which catches PID reuse), an nsfs path (`/proc/4242/ns/net`, a bind mount), or a
//! name under `/run/netns` (`ip netns` style). Opening one yields an owned file descriptor, so
//! the namespace cannot vanish or change while a tool uses it.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result};
use crate::ifname::quote;
use crate::sys;
use crate::vocab::NsType;

/// Where `ip netns` keeps named network namespaces.
pub const RUN_NETNS: &str = "/run/netns";

/// A handle on a network namespace: an open nsfs file and its inode number.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    inode: u64,
}

impl Netns {
    /// The network namespace of the calling thread.
    pub fn current() -> Result<Netns> {
        let file = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("cannot open the current network namespace (/proc/thread-self/ns/net)", &e))?;
        let inode = file.metadata().map_err(|e| Error::io("cannot stat the current network namespace", &e))?.ino();
        Ok(Netns { fd: file.into(), inode })
    }

    /// Open `path`, which must be a network namespace file.
    pub fn open_path(path: &Path) -> Result<Netns> {
        let shown = quote(&path.to_string_lossy());
        let file = File::open(path).map_err(|e| Error::io(format!("cannot open network namespace {shown}"), &e))?;
        Netns::from_file(file, &shown)
    }

    fn from_file(file: File, shown: &str) -> Result<Netns> {
        let not_ns = || {
            Error::new(format!("{shown} is not a namespace file"))
                .hint("give a PID, PID:INODE, /proc/PID/ns/net, a bind mount of one, or a name in /run/netns")
        };
        if !sys::is_nsfs(&file).map_err(|e| Error::sys(format!("cannot inspect {shown}"), e))? {
            return Err(not_ns());
        }
        let kind = sys::ns_type(&file).map_err(|_| not_ns())?;
        if kind != CloneFlags::CLONE_NEWNET.bits() {
            return Err(Error::new(format!(
                "{shown} is a {} namespace, not a network namespace",
                NsType::from_flag(kind).map_or("unknown", NsType::as_str)
            )));
        }
        let inode = file.metadata().map_err(|e| Error::io(format!("cannot stat {shown}"), &e))?.ino();
        Ok(Netns { fd: file.into(), inode })
    }

    /// The inode number that identifies the namespace (as in `readlink /proc/PID/ns/net`).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// True if the calling thread is in this namespace.
    pub fn is_current(&self) -> Result<bool> {
        let meta = std::fs::metadata("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("cannot stat the current network namespace", &e))?;
        Ok(meta.ino() == self.inode)
    }

    /// Move the calling thread into this namespace.
    pub fn enter(&self) -> Result<()> {
        setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(|e| {
            let err = Error::sys(format!("cannot enter network namespace {}", self.inode), e);
            if e == Errno::EPERM {
                err.hint("needs CAP_SYS_ADMIN over that namespace: run as root, or through 'ns-exec' which enters its user namespace first")
            } else {
                err
            }
        })
    }

    /// Run `f` in this namespace: directly if the calling thread is already there, else on a
    /// short-lived thread that joins it, so the caller's own namespace never changes. What `f`
    /// opens there (a netlink socket) stays bound to this namespace.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        if self.is_current()? {
            return f();
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(Error::new("a helper thread panicked")))
        })
    }
}

impl Netns {
    /// The processes in this namespace that `/proc` shows, but the calling process.
    pub fn processes(&self) -> Vec<i32> {
        processes_in(self.inode)
    }

    /// The network namespace of process `pid`.
    pub fn of_pid(pid: i32) -> Result<Netns> {
        Netns::open_path(Path::new(&NsType::Net.proc_path(Some(pid))))
    }
}

/// The processes in the network namespace `inode` that `/proc` shows, but the calling process.
pub fn processes_in(inode: u64) -> Vec<i32> {
    // As /proc numbers it: with a PID namespace of our own, getpid() is not what it shows.
    let me = std::fs::read_link("/proc/self").ok().and_then(|p| p.to_str()?.parse::<i32>().ok());
    let want = format!("net:[{inode}]");
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| Some(pid) != me)
        .filter(|pid| {
            std::fs::read_link(NsType::Net.proc_path(Some(*pid))).is_ok_and(|l| l.as_os_str() == want.as_str())
        })
        .collect()
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The nsfs mounts of namespaces of type `kind` (`net`...) in a mountinfo text (what
/// `/proc/self/mountinfo` holds): (namespace inode, mount point). These are the namespaces
/// persisted by bind mounts: `ip netns add`, `ns-unshare --bind`.
pub fn nsfs_mounts(mountinfo: &str, kind: NsType) -> Vec<(u64, String)> {
    let prefix = format!("{kind}:[");
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next() != Some("nsfs") {
                return None;
            }
            let mut fields = left.split_whitespace();
            let root = fields.nth(3)?;
            let point = fields.next()?;
            let inode = root.strip_prefix(&prefix)?.strip_suffix(']')?.parse().ok()?;
            Some((inode, unescape_mountinfo(point)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push(((bytes[i + 1] - b'0') << 6) | ((bytes[i + 2] - b'0') << 3) | (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A target as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A process ID.
    Pid(i32),
    /// A process ID and the inode its network namespace must have.
    PidInode(i32, u64),
    /// A namespace file (an nsfs path).
    Path(PathBuf),
    /// A bare name: `/run/netns/NAME` if it exists (`ip netns`), else the holder labelled so.
    Name(String),
}

fn parse_pid(text: &str, whole: &str) -> Result<i32> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(Error::usage(format!("invalid target {}", quote(whole))).detail(format!(
            "{} is not a valid PID (1 to {})",
            quote(text),
            i32::MAX
        ))),
    }
}

impl FromStr for TargetSpec {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        let invalid = |why: &str| Error::usage(format!("invalid target {}", quote(text))).detail(why);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.is_empty() {
            return Err(invalid("expected a PID, PID:INODE, an nsfs path or a name in /run/netns"));
        }
        if digits(text) || text.strip_prefix('-').is_some_and(digits) {
            return parse_pid(text, text).map(TargetSpec::Pid);
        }
        if let Some((pid, inode)) = text.split_once(':')
            && digits(pid)
        {
            let pid = parse_pid(pid, text)?;
            let inode = match inode.parse::<u64>() {
                Ok(n) if digits(inode) && n > 0 => n,
                _ => return Err(invalid("in PID:INODE, INODE must be a namespace inode number such as 4026532841")),
            };
            return Ok(TargetSpec::PidInode(pid, inode));
        }
        if text.contains('/') {
            return Ok(TargetSpec::Path(PathBuf::from(text)));
        }
        if text == "." || text == ".." || text.contains('\0') {
            return Err(invalid("not a valid namespace name"));
        }
        Ok(TargetSpec::Name(text.to_owned()))
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Pid(pid) => write!(f, "process {pid}"),
            TargetSpec::PidInode(pid, inode) => write!(f, "process {pid} (netns {inode})"),
            TargetSpec::Path(p) => write!(f, "{}", p.display()),
            TargetSpec::Name(name) => write!(f, "{}", Path::new(RUN_NETNS).join(name).display()),
        }
    }
}

/// An opened target: its network namespace, and for PID targets a pidfd on the process.
#[derive(Debug)]
pub struct Target {
    /// The target as given.
    pub spec: TargetSpec,
    /// The process, for PID targets.
    pub pid: Option<i32>,
    /// A pidfd on the process, for PID targets: refers to it and no other, even after reuse.
    pub pidfd: Option<OwnedFd>,
    /// The network namespace.
    pub netns: Netns,
}

/// `PF_KTHREAD` in `/proc/PID/stat`'s flags field.
const PF_KTHREAD: u64 = 0x0020_0000;

/// True if `pid` is a kernel thread.
fn is_kernel_thread(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // Fields after "(comm)": state ppid pgrp session tty_nr tpgid flags ...
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { return false };
    rest.split_whitespace().nth(6).and_then(|f| f.parse::<u64>().ok()).is_some_and(|f| f & PF_KTHREAD != 0)
}

/// The process `target` names, as its PID and a pidfd (None: a namespace file names none). A
/// bare PID needs no more than the pidfd - no access to the process's namespaces, so another
/// user's process can be watched; `PID:INODE` and labels are checked as targets are.
pub fn open_process(target: &TargetSpec) -> Result<Option<(i32, OwnedFd)>> {
    match target {
        TargetSpec::Path(_) => Ok(None),
        TargetSpec::Pid(pid) => Ok(Some((*pid, open_pid(*pid)?))),
        _ => {
            let t = Target::open(target)?;
            Ok(t.pid.zip(t.pidfd))
        }
    }
}

/// Open the process `pid`: a pidfd, checked not to be a kernel thread.
pub fn open_pid(pid: i32) -> Result<OwnedFd> {
    let pidfd = sys::pidfd_open(pid).map_err(|e| match e {
        Errno::ESRCH => Error::sys(format!("no process with PID {pid}"), e),
        _ => Error::sys(format!("cannot open process {pid}"), e),
    })?;
    if is_kernel_thread(pid) {
        return Err(Error::new(format!("process {pid} is a kernel thread"))
            .detail("kernel threads have no namespaces of their own; give the PID of a user process"));
    }
    Ok(pidfd)
}

/// The namespace file `/proc/PID/ns/KIND` of a process opened by [`open_pid`], checked to
/// belong to that very process (not to a later process that reused its PID).
pub fn open_pid_ns(pid: i32, pidfd: &OwnedFd, kind: NsType) -> Result<File> {
    let path = kind.proc_path(Some(pid));
    let file = File::open(&path).map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOENT) | Some(Errno::ESRCH) => Error::sys(format!("process {pid} has exited"), Errno::ESRCH)
            .detail("it is a zombie or gone, and its namespaces with it"),
        Some(Errno::EACCES) | Some(Errno::EPERM) => Error::io(format!("cannot open {path}"), &e)
            .hint("the process belongs to another user (or user namespace): run as that user or as root"),
        _ => Error::io(format!("cannot open {path}"), &e),
    })?;
    if sys::pidfd_exited(pidfd) {
        return Err(Error::sys(format!("process {pid} exited while its namespace was being opened"), Errno::ESRCH));
    }
    Ok(file)
}

impl Target {
    /// Open a target (see the module documentation).
    pub fn open(spec: &TargetSpec) -> Result<Target> {
        match *spec {
            TargetSpec::Pid(pid) | TargetSpec::PidInode(pid, _) => {
                let pidfd = open_pid(pid)?;
                let file = open_pid_ns(pid, &pidfd, NsType::Net)?;
                let netns = Netns::from_file(file, &NsType::Net.proc_path(Some(pid)))?;
                if let TargetSpec::PidInode(_, want) = *spec
                    && netns.inode() != want
                {
                    return Err(Error::new(format!(
                        "process {pid} is no longer in network namespace {want} (it is in {})",
                        netns.inode()
                    ))
                    .detail("the PID was probably reused")
                    .hint("the namespace you meant is gone or held by another process"));
                }
                Ok(Target { spec: spec.clone(), pid: Some(pid), pidfd: Some(pidfd), netns })
            }
            TargetSpec::Path(ref path) => {
                let netns = Netns::open_path(path)?;
                Ok(Target { spec: spec.clone(), pid: None, pidfd: None, netns })
            }
            TargetSpec::Name(ref name) => {
                // `ip netns` names first, as before; then the label of one of our holders.
                let path = Path::new(RUN_NETNS).join(name);
                match Netns::open_path(&path) {
                    Err(e) if e.errno() == Some(Errno::ENOENT) => {}
                    other => {
                        return other.map(|netns| Target {
                            spec: TargetSpec::Path(path),
                            pid: None,
                            pidfd: None,
                            netns,
                        });
                    }
                }
                match crate::holder::resolve_label(name)? {
                    Some(pid) => Target::open(&TargetSpec::Pid(pid)),
                    None => Err(Error::sys(format!("no network namespace named {}", quote(name)), Errno::ENOENT)
                        .detail(format!(
                            "{} does not exist, no holder is labelled so, and the name is not a PID or a path",
                            path.display()
                        ))),
                }
            }
        }
    }

    /// Parse and open.
    pub fn parse_and_open(text: &str) -> Result<Target> {
        Target::open(&text.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/run/netns/a\\040b"), "/run/netns/a b");
        assert_eq!(unescape_mountinfo("/x\\134y"), "/x\\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\04"), "/end\\04");
        let info = "36 25 0:4 net:[4026532841] /run/netns/lab rw shared:5 - nsfs nsfs rw\n\
                    37 25 0:4 mnt:[4026532000] /x rw - nsfs nsfs rw\n\
                    22 1 0:21 / /proc rw - proc proc rw\n";
        assert_eq!(nsfs_mounts(info, NsType::Net), [(4026532841, "/run/netns/lab".to_owned())]);
    }

    #[test]
    fn parses_target_forms() {
        assert_eq!("4242".parse::<TargetSpec>().unwrap(), TargetSpec::Pid(4242));
        assert_eq!("4242:4026532841".parse::<TargetSpec>().unwrap(), TargetSpec::PidInode(4242, 4026532841));
        assert_eq!("/proc/1/ns/net".parse::<TargetSpec>().unwrap(), TargetSpec::Path("/proc/1/ns/net".into()));
        assert_eq!("./x".parse::<TargetSpec>().unwrap(), TargetSpec::Path("./x".into()));
        assert_eq!("ad_dc".parse::<TargetSpec>().unwrap(), TargetSpec::Name("ad_dc".into()));
    }

    #[test]
    fn refuses_bad_targets() {
        for bad in ["", "0", "-1", "99999999999", "1:", "1:x", "1:0", "..", "."] {
            let e = bad.parse::<TargetSpec>().unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{bad}: {e}");
            assert!(e.to_string().starts_with("invalid target"), "{e}");
        }
    }

    #[test]
    fn opens_own_namespace_by_pid_and_refuses_wrong_inode() {
        let me = std::process::id() as i32;
        let t = Target::parse_and_open(&me.to_string()).unwrap();
        assert_eq!(t.netns.inode(), Netns::current().unwrap().inode());
        assert!(t.netns.is_current().unwrap());
        let wrong = format!("{me}:{}", t.netns.inode() + 1);
        let e = Target::parse_and_open(&wrong).unwrap_err().to_string();
        assert!(e.contains("is no longer in network namespace"), "{e}");
        let right = format!("{me}:{}", t.netns.inode());
        assert!(Target::parse_and_open(&right).is_ok());
    }

    #[test]
    fn refuses_files_that_are_not_network_namespaces() {
        let e = Target::parse_and_open("/proc/self/status").unwrap_err().to_string();
        assert!(e.contains("is not a namespace file"), "{e}");
        let e = Target::parse_and_open("/proc/self/ns/uts").unwrap_err().to_string();
        assert!(e.contains("is a uts namespace, not a network namespace"), "{e}");
        let e = Target::parse_and_open("/").unwrap_err().to_string();
        assert!(e.contains("is not a namespace file"), "{e}");
        let e = Target::parse_and_open("no-such-ns-here").unwrap_err().to_string();
        assert!(e.contains("no network namespace named 'no-such-ns-here'"), "{e}");
    }

    #[test]
    fn refuses_missing_pid_and_kernel_thread() {
        let e = Target::parse_and_open(&i32::MAX.to_string()).unwrap_err().to_string();
        assert!(e.contains("no process with PID"), "{e}");
        // PID 2 is kthreadd on Linux (unless in a PID namespace).
        if is_kernel_thread(2) {
            let e = Target::parse_and_open("2").unwrap_err().to_string();
            assert!(e.contains("kernel thread"), "{e}");
        }
    }
}
