//! rtnetlink on neli's low-level blocking socket: no background thread, one request at a time,
//! the ACK read by us so that the kernel's errno and extended-ack text reach the user.
//!
//! [`Netlink`] is a socket bound to one network namespace (the one its creating thread was in).
//! The operations live in the submodules, one small function each: [`link`], [`fdb`], [`addr`],
//! [`route`], [`qdisc`], [`nsid`], and [`watch`] and [`uevent`] for waiting on notifications.
//!
//! Privileges: every change request needs `CAP_NET_ADMIN` in the user namespace that owns the
//! socket's network namespace (EPERM otherwise); reading does not.

pub mod addr;
pub mod attr;
pub mod fdb;
pub mod link;
pub mod nsid;
pub mod qdisc;
pub mod route;
pub mod uevent;
pub mod watch;

use std::fmt::Debug;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use neli::consts::nl::{NlmF, NlmsgerrAttr};
use neli::consts::rtnl::Rtm;
use neli::consts::socket::NlFamily;
use neli::err::{Nlmsgerr, SocketError};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::socket::synchronous::NlSocketHandle;
use neli::utils::Groups;
use neli::{FromBytesWithInput, Size, ToBytes};
use nix::errno::Errno;

use crate::error::{Error, HINT_NET_ADMIN, Result};
use crate::netns::Netns;

/// A failure reported by the kernel (or the socket): the errno and the extended-ack text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The errno.
    pub errno: Errno,
    /// The kernel's extended-ack message, when it gave one.
    pub extack: Option<String>,
}

impl KernelError {
    fn errno(errno: Errno) -> Self {
        KernelError { errno, extack: None }
    }

    fn from_nlmsgerr<M>(err: &Nlmsgerr<M>) -> Self {
        let extack = err
            .ext_ack()
            .iter()
            .find(|a| *a.nla_type().nla_type() == NlmsgerrAttr::Msg)
            .map(|a| attr::c_string(a.nla_payload().as_ref()))
            .filter(|s| !s.is_empty());
        KernelError { errno: Errno::from_raw(-*err.error()), extack }
    }

    /// A message that could not be built (a builder's field left unset): EINVAL, saying which.
    pub(crate) fn unbuilt(err: impl std::fmt::Display) -> Self {
        KernelError { errno: Errno::EINVAL, extack: Some(err.to_string()) }
    }

    fn from_socket(err: SocketError) -> Self {
        match err {
            SocketError::Io(io) => KernelError::errno(io.raw_os_error().map_or(Errno::EIO, Errno::from_raw)),
            other => KernelError { errno: Errno::EPROTO, extack: Some(format!("malformed netlink message: {other}")) },
        }
    }

    /// Turn into an [`Error`] saying what failed; EPERM gets the privilege hint.
    pub fn into_error(self, what: impl Into<String>) -> Error {
        let err = Error::sys(what, self.errno);
        let err = match self.extack {
            Some(text) => err.detail(text),
            None => err,
        };
        if self.errno == Errno::EPERM { err.hint(HINT_NET_ADMIN) } else { err }
    }
}

/// Result of a kernel request.
pub type NlResult<T> = std::result::Result<T, KernelError>;

/// A request's message: `NLM_F_REQUEST` and `flags`, sequence number `seq`.
fn message<P: Size + ToBytes + Debug>(ty: Rtm, flags: NlmF, seq: u32, payload: P) -> NlResult<Nlmsghdr<Rtm, P>> {
    NlmsghdrBuilder::default()
        .nl_type(ty)
        .nl_flags(NlmF::REQUEST | flags)
        .nl_seq(seq)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(KernelError::unbuilt)
}

/// The bytes of the request [`Netlink::request`] sends (`NLM_F_ACK` added), sequence number
/// and port id 0: what the tests compare with iproute2's.
pub(crate) fn request_bytes<P: Size + ToBytes + Debug>(ty: Rtm, flags: NlmF, payload: P) -> NlResult<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    message(ty, flags | NlmF::ACK, 0, payload)?.to_bytes(&mut out).map_err(KernelError::unbuilt)?;
    Ok(out.into_inner())
}

/// The outcome of an undo request: the errnos in `already` mean there was nothing left to undo
/// (the interface, address or route went by itself meanwhile).
pub(crate) fn undone(result: NlResult<()>, already: &[Errno], what: impl Into<String>) -> Result<()> {
    match result {
        Err(e) if !already.contains(&e.errno) => Err(e.into_error(what)),
        _ => Ok(()),
    }
}

/// A route netlink socket in one network namespace.
pub struct Netlink {
    sock: NlSocketHandle,
    seq: u32,
}

impl Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("fd", &self.sock.as_raw_fd()).field("seq", &self.seq).finish()
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        crate::sys::borrow_socket(&self.sock)
    }
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        Netlink::connect(Groups::empty())
    }

    fn connect(groups: Groups) -> Result<Netlink> {
        let sock = NlSocketHandle::connect(NlFamily::Route, None, groups)
            .map_err(|e| KernelError::from_socket(e).into_error("cannot open a netlink socket"))?;
        // Extended acks carry the kernel's own words ("Unknown device type"); best effort.
        let _ = sock.enable_ext_ack(true);
        Ok(Netlink { sock, seq: 0 })
    }

    /// A socket in the network namespace `ns`, opened from a short-lived thread that joins it,
    /// so the caller's own namespace never changes. The socket stays bound to `ns`.
    pub fn open_in(ns: &Netns) -> Result<Netlink> {
        ns.run_in(Netlink::open)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send one message; returns its sequence number.
    pub(crate) fn send<P>(&mut self, ty: Rtm, flags: NlmF, payload: P) -> NlResult<u32>
    where
        P: Size + ToBytes + Debug,
    {
        let seq = self.next_seq();
        self.sock.send(&message(ty, flags, seq, payload)?).map_err(KernelError::from_socket)?;
        Ok(seq)
    }

    /// Read messages until the one answering `seq`; calls `each` for every payload message and
    /// stops at the ACK, the error, or (for dumps) DONE.
    fn collect<P>(&mut self, seq: u32, mut each: impl FnMut(&P)) -> NlResult<()>
    where
        P: Size + FromBytesWithInput<Input = usize> + Debug,
    {
        loop {
            let (msgs, _) = self.sock.recv::<u16, P>().map_err(KernelError::from_socket)?;
            for msg in msgs {
                let msg = msg.map_err(KernelError::from_socket)?;
                if *msg.nl_seq() != seq {
                    continue; // a late answer to an earlier request
                }
                let multi = msg.nl_flags().contains(NlmF::MULTI);
                match msg.nl_payload() {
                    NlPayload::Payload(p) => {
                        each(p);
                        if !multi {
                            return Ok(());
                        }
                    }
                    NlPayload::Ack(_) | NlPayload::Empty => return Ok(()),
                    NlPayload::DumpExtAck(e) if *e.error() == 0 => return Ok(()),
                    NlPayload::DumpExtAck(e) => return Err(KernelError::from_nlmsgerr(e)),
                    NlPayload::Err(e) => return Err(KernelError::from_nlmsgerr(e)),
                }
            }
        }
    }

    /// A change request (`NLM_F_ACK` added): returns once the kernel acknowledged it.
    pub(crate) fn request<P>(&mut self, ty: Rtm, flags: NlmF, payload: P) -> NlResult<()>
    where
        P: Size + ToBytes + Debug,
    {
        let seq = self.send(ty, flags | NlmF::ACK, payload)?;
        self.collect::<neli::types::Buffer>(seq, |_| {})
    }

    /// A get request answered by one message, converted by `convert`.
    pub(crate) fn get<Q, P, R>(&mut self, ty: Rtm, payload: Q, convert: impl Fn(&P) -> R) -> NlResult<R>
    where
        Q: Size + ToBytes + Debug,
        P: Size + FromBytesWithInput<Input = usize> + Debug,
    {
        let seq = self.send(ty, NlmF::empty(), payload)?;
        let mut answer = None;
        self.collect(seq, |p| answer = Some(convert(p)))?;
        answer.ok_or(KernelError { errno: Errno::EPROTO, extack: Some("empty answer from the kernel".into()) })
    }

    /// A dump request: every answer message, converted by `convert`.
    pub(crate) fn dump<Q, P, R>(&mut self, ty: Rtm, payload: Q, convert: impl Fn(&P) -> R) -> NlResult<Vec<R>>
    where
        Q: Size + ToBytes + Debug,
        P: Size + FromBytesWithInput<Input = usize> + Debug,
    {
        let seq = self.send(ty, NlmF::DUMP, payload)?;
        let mut all = Vec::new();
        self.collect(seq, |p| all.push(convert(p)))?;
        Ok(all)
    }
}
