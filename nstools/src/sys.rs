//! The few system calls that nix does not wrap safely, and the only module with `unsafe` code:
//! nsfs ioctls, `fork`, closing descriptor ranges, `_exit`, signal dispositions, packet socket
//! options (binding, promiscuous mode, BPF filters, drop counts). pidfds go
//! through rustix's typed wrappers. A function whose safety depends on its caller is an
//! `unsafe fn` with a `# Safety` section; the others are safe to call whatever the caller does.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::Signal;

fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// `pidfd_open(2)`: a descriptor that refers to this process and no other, even after its
/// PID is reused.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(Errno::EINVAL)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(errno)
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: impl AsFd, signal: Signal) -> Result<(), Errno> {
    let signal = rustix::process::Signal::from_named_raw(signal as i32).ok_or(Errno::EINVAL)?;
    rustix::process::pidfd_send_signal(pidfd, signal).map_err(errno)
}

/// True once the process of `pidfd` has exited (its pidfd is readable), without waiting.
pub fn pidfd_exited(pidfd: impl AsFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
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

/// True if the process has a single thread, asked of the kernel: `unshare(CLONE_SIGHAND)`
/// fails with EINVAL when the signal handlers are shared, i.e. with another thread, and
/// otherwise changes nothing. (No /proc: that may belong to another PID namespace by now.)
fn single_threaded() -> bool {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_SIGHAND).is_ok()
}

/// `fork(2)`, refused (EDEADLK) unless the process has a single thread: in the child only the
/// calling thread exists, and a lock another thread held (the allocator's, stdio's) would stay
/// locked forever. The tools fork before they start any thread, and join every thread they start.
pub fn fork() -> Result<nix::unistd::ForkResult, Errno> {
    if !single_threaded() {
        return Err(Errno::EDEADLK);
    }
    // SAFETY: single-threaded (checked above; only this thread could start another).
    unsafe { nix::unistd::fork() }
}

/// Put each descriptor of `keep` at its slot (a fixed number from 3 up) and close every other
/// descriptor from 3 up (`close_range(2)`), then run `rest` with them, in slot order: what the
/// holder does before its event loop, so that no inherited descriptor (a pipe, a socket) stays
/// open in it, and others can find its descriptors by number. `rest` never returns.
///
/// Sound because nothing can use a closed descriptor afterwards: the process has a single
/// thread (checked: it `_exit`s with 1 otherwise), `rest` is given only what it keeps, and
/// control never goes back to the frames that owned the others (a panic in `rest` also ends in
/// `_exit`, without unwinding into them).
pub fn keep_fds_then(keep: Vec<(OwnedFd, i32)>, rest: impl FnOnce(Vec<OwnedFd>) -> std::convert::Infallible) -> ! {
    if !single_threaded() || keep.iter().any(|(_, slot)| *slot < 3) {
        exit_now(1);
    }
    let above = keep.iter().map(|(_, slot)| *slot).max().unwrap_or(2) + 1;
    let mut moved = Vec::new();
    for (fd, slot) in keep {
        // First out of the way of every slot (the originals may sit on one another's slots).
        match nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(above)) {
            // SAFETY: a new descriptor, ours alone.
            Ok(raw) => moved.push((unsafe { OwnedFd::from_raw_fd(raw) }, slot)),
            Err(_) => exit_now(1),
        }
    }
    let close = |from: u32, to: u32| {
        // SAFETY: only closes descriptors; none of them is used again (see above).
        unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) };
    };
    close(3, above as u32 - 1); // the slots are free now; the originals are among what closed
    let mut kept = Vec::new();
    for (fd, slot) in moved {
        // SAFETY: `slot` is free (just closed); dup3 makes it a copy of `fd`, ours alone.
        if unsafe { libc::dup3(fd.as_raw_fd(), slot, libc::O_CLOEXEC) } != slot {
            exit_now(1);
        }
        kept.push((slot, unsafe { OwnedFd::from_raw_fd(slot) }));
        std::mem::forget(fd); // closed with everything above the slots, next
    }
    close(above as u32, u32::MAX);
    kept.sort_by_key(|(slot, _)| *slot);
    let kept = kept.into_iter().map(|(_, fd)| fd).collect();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rest(kept))) {
        Ok(never) => match never {},
        Err(_) => exit_now(1),
    }
}

/// Move `fd` to the free descriptor number `slot` (the holder's fixed slots, for a descriptor
/// that arrives after [`keep_fds_then`]). EBUSY if `slot` is in use by another descriptor.
pub fn move_fd(fd: OwnedFd, slot: i32) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() == slot {
        return Ok(fd);
    }
    if !single_threaded() {
        return Err(Errno::EDEADLK);
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor number.
    if slot < 3 || unsafe { libc::fcntl(slot, libc::F_GETFD) } != -1 {
        return Err(Errno::EBUSY);
    }
    // SAFETY: `slot` is free and no other thread can take it meanwhile (single thread); dup3
    // makes it a copy of `fd`, which is then closed: the result is ours alone.
    if unsafe { libc::dup3(fd.as_raw_fd(), slot, libc::O_CLOEXEC) } != slot {
        return Err(Errno::last());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(slot) })
}

/// Take over descriptor `fd`, inherited from the caller (`ns-exec --ready-fd`), made
/// close-on-exec: EBADF if it is not open. Only 3 and up (EINVAL otherwise): 0, 1 and 2 are
/// the standard streams, which others use by number.
pub fn take_inherited_fd(fd: i32) -> Result<OwnedFd, Errno> {
    if fd < 3 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor number.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: F_SETFD only changes the flags of that descriptor.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open, and the caller handed it to us alone (nothing else in the
    // process knows its number: it is not a standard stream).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `_exit(2)`: leave at once, without running destructors or flushing anything.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no process state we rely on.
    unsafe { libc::_exit(code) }
}

/// Restore the default disposition of `signal` (Rust ignores SIGPIPE; a command we run, or
/// our own death by a signal, needs the default back).
pub fn default_action(signal: Signal) {
    // SAFETY: installing SIG_DFL runs no handler code of ours.
    let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
}

/// True if `signal` is ignored (`SIG_IGN`): a background job of a non-interactive shell starts
/// with SIGINT and SIGQUIT ignored, and a command it execs keeps them so.
pub fn is_ignored(signal: Signal) -> bool {
    // SAFETY: an all-zero sigaction is a valid value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, a live sigaction.
    let r = unsafe { libc::sigaction(signal as i32, std::ptr::null(), &raw mut old) };
    r == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// `SIOCGSKNS`: the network namespace of a socket.
const SIOCGSKNS: u64 = 0x894C;

/// The inode of the calling thread's network namespace, found through a socket (works when
/// `/proc` belongs to another PID namespace, e.g. after entering a testenv's mount namespace).
pub fn current_netns_inode() -> Result<u64, Errno> {
    current_netns_id().map(|(_, ino)| ino)
}

/// The calling thread's network namespace as (device, inode) of its nsfs file: what `stat`
/// shows of a bind mount of it.
pub fn current_netns_id() -> Result<(u64, u64), Errno> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: SIOCGSKNS takes no argument and returns a new namespace descriptor.
    let fd = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSKNS as _) };
    let fd = Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })?;
    let st = nix::sys::stat::fstat(&fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// One classic BPF instruction (`struct sock_filter`), as `tcpdump -ddd` prints them.
pub type BpfInstruction = libc::sock_filter;

/// `SO_ATTACH_FILTER`: only packets that `program` accepts reach the socket (the kernel checks
/// the program and copies it).
pub fn attach_filter(socket: impl AsFd, program: &[BpfInstruction]) -> Result<(), Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
    // SAFETY: SO_ATTACH_FILTER takes a sock_fprog; it points to `program`, which outlives the
    // call (the kernel copies the program).
    unsafe { set_option(socket.as_fd(), libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog) }
}

/// `setsockopt(2)` with `value` as the option's value.
///
/// # Safety
/// `T` must be the type the kernel expects for `level`/`name`, and any pointer in `value` must
/// be valid for what the kernel reads through it during the call.
unsafe fn set_option<T>(socket: BorrowedFd<'_>, level: i32, name: i32, value: &T) -> Result<(), Errno> {
    // SAFETY: `value` is a live T of the size given; the kernel only reads it (the caller
    // vouches for T and its pointers).
    let r = unsafe {
        libc::setsockopt(socket.as_raw_fd(), level, name, (&raw const *value).cast(), size_of::<T>() as libc::socklen_t)
    };
    Errno::result(r).map(drop)
}

/// `bind(2)` of a packet socket: receive `protocol` (an `ETH_P_*` value, host order) from
/// interface `ifindex` (0: every interface of the socket's network namespace).
pub fn packet_bind(socket: impl AsFd, protocol: u16, ifindex: i32) -> Result<(), Errno> {
    // SAFETY: an all-zero sockaddr_ll is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a live sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            socket.as_fd().as_raw_fd(),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    Errno::result(r).map(drop)
}

/// `PACKET_ADD_MEMBERSHIP` with `PACKET_MR_PROMISC`: interface `ifindex` in promiscuous mode for
/// as long as the socket is open (a bridge then passes up what it forwards between its ports).
pub fn packet_promiscuous(socket: impl AsFd, ifindex: i32) -> Result<(), Errno> {
    // SAFETY: an all-zero packet_mreq is a valid value.
    let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
    // SAFETY: PACKET_ADD_MEMBERSHIP takes a packet_mreq, which holds no pointer.
    unsafe { set_option(socket.as_fd(), libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq) }
}

/// `PACKET_STATISTICS`: packets the kernel dropped on a packet socket (its buffer was full)
/// since the last call.
pub fn packet_drops(socket: impl AsFd) -> Result<u32, Errno> {
    // SAFETY: an all-zero tpacket_stats is a valid value.
    let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` and `len` are live and describe a buffer of that size.
    let r = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut stats).cast(),
            &raw mut len,
        )
    };
    Errno::result(r).map(|_| stats.tp_drops)
}
