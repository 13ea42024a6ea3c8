//! The pipe idiom, `ns-unshare | ns-exec CMD`: the holder lives exactly as long as CMD, the way
//! `unshare --net CMD` makes a namespace that lives as long as CMD (processes CMD leaves inside
//! keep it, as with unshare). A holder whose PID went anywhere else - `pid=$(ns-unshare)`, a
//! file, `echo "$pid" | ns-exec` - lives on until it is stopped.
//!
//! How the two find each other, and why only that very pipe counts:
//!
//! - When `ns-unshare`'s stdout is a pipe, its holder listens on an abstract unix socket named
//!   after that pipe (`nstools/holder/pipe/DEV:INO`), made in the caller's network namespace
//!   before the holder leaves it - so that `ns-exec` reaches it from there without entering
//!   anything, and without privilege (rootless too).
//! - `ns-exec`, when it reads its target from a pipe on stdin, connects to the socket named
//!   after that pipe, checks that the listener belongs to its own user, and sends the pipe's
//!   read end (the proof: only a process that holds that pipe can pass it) and a pidfd on
//!   itself (`SCM_RIGHTS`). It does so first, before anything that could fail, so that the
//!   holder also ends when ns-exec fails (bad flags, a command not found).
//! - The holder checks that the descriptor is that same pipe, answers, and from then on exits
//!   when the pidfd says the process exited - ns-exec, or CMD, which ns-exec became by `exec`
//!   (with `--pid`/`--all`, ns-exec forks CMD and ends with it). One claim, once: the listener
//!   closes then.
//! - Anyone in the namespace can connect (the name is no secret): the holder reads every
//!   connection at once, each with a deadline, so one that never presents the pipe cannot hold
//!   up the claimant's.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::sockopt::Timeout;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// Replies of the holder to a claim.
const ACCEPTED: u8 = b'Y';
const REFUSED: u8 = b'N';

/// The identity of a pipe: its device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeId {
    dev: u64,
    ino: u64,
}

impl PipeId {
    /// The pipe `fd` is, if it is one (a FIFO).
    pub fn of(fd: impl AsFd) -> Option<PipeId> {
        let st = rustix::fs::fstat(fd).ok()?;
        (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
            .then_some(PipeId { dev: st.st_dev, ino: st.st_ino })
    }

    /// The abstract socket address of the holder that printed into this pipe.
    fn address(self) -> Option<SocketAddrUnix> {
        SocketAddrUnix::new_abstract_name(format!("nstools/holder/pipe/{}:{}", self.dev, self.ino).as_bytes()).ok()
    }
}

fn seqpacket(flags: SocketFlags) -> Option<OwnedFd> {
    rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC | flags, None).ok()
}

/// The holder's side: the listening socket.
#[derive(Debug)]
pub(super) struct Listener {
    /// The socket.
    pub fd: OwnedFd,
    /// The pipe its name comes from.
    pub pipe: PipeId,
}

impl Listener {
    /// Listen for a claim through the pipe `pipe`, in the caller's network namespace. `None`
    /// where that is not possible (another holder printed into the same pipe first): the
    /// holder then simply cannot be claimed.
    pub fn bind(pipe: PipeId) -> Option<Listener> {
        let fd = seqpacket(SocketFlags::NONBLOCK)?;
        rustix::net::bind(&fd, &pipe.address()?).ok()?;
        rustix::net::listen(&fd, 16).ok()?;
        Some(Listener { fd, pipe })
    }

    /// Accept a connection (its message may still be on its way).
    pub fn accept(&self) -> Option<OwnedFd> {
        rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK).ok()
    }

    /// Read a claim from `conn` and answer it: the claimant's pidfd if it proved it holds the
    /// pipe, else `None`.
    pub fn receive(&self, conn: OwnedFd) -> Option<OwnedFd> {
        let mut byte = [0u8; 8];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        );
        let mut fds: Vec<OwnedFd> = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        let proven = got.is_ok() && fds.len() == 2 && PipeId::of(&fds[0]) == Some(self.pipe);
        let reply = if proven { ACCEPTED } else { REFUSED };
        let _ = rustix::net::send(&conn, &[reply], SendFlags::NOSIGNAL | SendFlags::DONTWAIT);
        if proven { fds.pop() } else { None }
    }
}

/// How long a claimant waits for a holder's listener and answer.
const CLAIM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The claimant's side (`ns-exec`): tie the holder that printed into `pipe` to the process of
/// `pidfd`. True if a holder took the claim; false if there is none (the target came from
/// somewhere else than `ns-unshare`) or it refused.
pub fn claim(pipe: BorrowedFd<'_>, pidfd: BorrowedFd<'_>) -> bool {
    let Some(id) = PipeId::of(pipe) else { return false };
    let (Some(sock), Some(addr)) = (seqpacket(SocketFlags::empty()), id.address()) else { return false };
    // A live holder answers at once; a second bounds a stuck one, or a listener whose queue a
    // stranger filled (connect waits for room as long as sending may).
    for direction in [Timeout::Send, Timeout::Recv] {
        let _ = rustix::net::sockopt::set_socket_timeout(&sock, direction, Some(CLAIM_TIMEOUT));
    }
    if rustix::net::connect(&sock, &addr).is_err() {
        return false;
    }
    // Only a holder of our own user: never hand a stranger a pidfd on us.
    match rustix::net::sockopt::socket_peercred(&sock) {
        Ok(cred) if cred.uid == rustix::process::geteuid() => {}
        _ => return false,
    }
    let fds = [pipe, pidfd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return false;
    }
    if rustix::net::sendmsg(&sock, &[IoSlice::new(b"claim")], &mut control, SendFlags::NOSIGNAL).is_err() {
        return false;
    }
    let mut reply = [0u8; 1];
    matches!(rustix::net::recv(&sock, &mut reply, RecvFlags::empty()), Ok((1, _))) && reply[0] == ACCEPTED
}
