//! The few system calls nix does not wrap: pidfds and the nsfs ioctls. The only module with
//! `unsafe` code; each call is a plain syscall on owned or borrowed descriptors.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `pidfd_open(2)`: a descriptor that refers to this process and no other, even after its
/// PID is reused.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall; on success the kernel returns a new descriptor that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)`; signal 0 checks that the process still exists.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall with a borrowed, open descriptor and no info pointer.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    Errno::result(r).map(drop)
}

const NSIO: u64 = 0xb7;
const fn io(nr: u64) -> u64 {
    (NSIO << 8) | nr
}
/// `NS_GET_USERNS`: the user namespace that owns a namespace.
const NS_GET_USERNS: u64 = io(0x1);
/// `NS_GET_NSTYPE`: the `CLONE_NEW*` type of a namespace.
const NS_GET_NSTYPE: u64 = io(0x3);

fn ns_ioctl_fd(fd: BorrowedFd<'_>, request: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: the nsfs ioctls that return a namespace take no argument and return a new fd.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _) };
    Errno::result(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The user namespace that owns the namespace `fd` refers to.
pub fn ns_owner_userns(fd: impl AsFd) -> Result<OwnedFd, Errno> {
    ns_ioctl_fd(fd.as_fd(), NS_GET_USERNS)
}

/// The `CLONE_NEW*` type of the namespace `fd` refers to.
pub fn ns_type(fd: impl AsFd) -> Result<i32, Errno> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type as the result.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), NS_GET_NSTYPE as _) };
    Errno::result(r)
}

/// The magic number of nsfs, the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// True if `fd` is a namespace file (on nsfs).
pub fn is_nsfs(fd: impl AsFd) -> Result<bool, Errno> {
    let st = nix::sys::statfs::fstatfs(fd.as_fd())?;
    Ok(st.filesystem_type().0 as i64 == NSFS_MAGIC)
}

/// Borrow the descriptor of a neli socket (neli only exposes `AsRawFd`).
pub fn borrow_socket(sock: &neli::socket::synchronous::NlSocketHandle) -> BorrowedFd<'_> {
    // SAFETY: the descriptor stays open for as long as `sock` lives, which bounds the borrow.
    unsafe { BorrowedFd::borrow_raw(sock.as_raw_fd()) }
}

/// `fork(2)`. Only sound while the process has a single thread (the tools fork before they
/// start any); checked in debug builds.
pub fn fork() -> Result<nix::unistd::ForkResult, Errno> {
    debug_assert!(
        std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1) == 1,
        "fork() with more than one thread"
    );
    // SAFETY: single-threaded (see above), so the child may run arbitrary code.
    unsafe { nix::unistd::fork() }
}

/// Close every descriptor from `first` up, except those in `keep`.
pub fn close_fds_except(first: i32, keep: &[i32]) {
    let mut keep: Vec<i32> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    let mut from = first as u32;
    for fd in keep.into_iter().chain(std::iter::once(i32::MAX)) {
        let fd = fd as u32;
        if fd > from {
            // SAFETY: close_range only closes descriptors; the kept ones are outside the range.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) };
        }
        from = fd.saturating_add(1);
    }
}

/// `_exit(2)`: leave at once, without running destructors or flushing anything.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no process state we rely on.
    unsafe { libc::_exit(code) }
}

/// `sigtimedwait(2)` on blocked signals: returns when one of `set` is pending or `timeout`
/// passes (the signal is consumed).
pub fn sigtimedwait(set: &nix::sys::signal::SigSet, timeout: &nix::sys::time::TimeSpec) {
    // SAFETY: both pointers refer to live values; the info pointer may be null.
    unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), timeout.as_ref()) };
}

/// `SIOCGSKNS`: the network namespace of a socket.
const SIOCGSKNS: u64 = 0x894C;

/// The inode of the calling thread's network namespace, found through a socket (works when
/// `/proc` belongs to another PID namespace, e.g. after entering a testenv's mount namespace).
pub fn current_netns_inode() -> Result<u64, Errno> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: SIOCGSKNS takes no argument and returns a new namespace descriptor.
    let fd = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSKNS as _) };
    let fd = Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })?;
    Ok(nix::sys::stat::fstat(&fd)?.st_ino)
}
