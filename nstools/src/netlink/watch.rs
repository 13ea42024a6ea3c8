//! Waiting for links by notification (`RTNLGRP_LINK`), never by polling.
//!
//! Join the group first ([`LinkWatch::open`]), then look the link up, then read events: a link
//! that appears between the look-up and the wait is still reported.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use neli::consts::rtnl::Rtm;
use neli::rtnl::Ifinfomsg;
use neli::utils::Groups;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::MsgFlags;

use libc::{BPF_ABS, BPF_H, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};

use super::link::Link;
use super::{KernelError, Netlink};
use crate::error::{Error, Result};

/// A link notification.
#[derive(Debug, Clone)]
pub struct LinkEvent {
    /// `RTM_NEWLINK` (created or changed) rather than `RTM_DELLINK`.
    pub new: bool,
    /// The link.
    pub link: Link,
}

/// What ended a wait.
#[derive(Debug)]
pub enum Wake {
    /// A notification.
    Event(LinkEvent),
    /// The deadline passed.
    Timeout,
    /// The interrupt descriptor (a signalfd) became readable.
    Interrupted,
    /// Notifications were lost (the socket buffer overflowed): look again.
    Overrun,
}

/// A socket subscribed to link notifications of its namespace.
#[derive(Debug)]
pub struct LinkWatch {
    nl: Netlink,
    queue: VecDeque<LinkEvent>,
}

impl LinkWatch {
    /// Subscribe (in the calling thread's namespace).
    pub fn open() -> Result<LinkWatch> {
        let nl = Netlink::connect(Groups::new_groups(&[libc::RTNLGRP_LINK]))?;
        // Room for bursts (many testenvs starting at once); capped by net.core.rmem_max.
        let _ = nl.sock.set_recv_buffer_size(1 << 20);
        Ok(LinkWatch { nl, queue: VecDeque::new() })
    }

    /// From now on, only the removal (`RTM_DELLINK`) of the links `indexes` reaches this socket:
    /// a classic BPF filter drops every other notification in the kernel, so that many waiters,
    /// each for its own link, are not all woken by every change (at most 255 indexes).
    pub fn only_removals_of(&self, indexes: &[u32]) -> Result<()> {
        let n = u8::try_from(indexes.len()).map_err(|_| Error::sys("too many links to watch", Errno::EINVAL))?;
        // nlmsghdr: nlmsg_type at 4; ifinfomsg after it (16): ifi_index at 20.
        let mut program = vec![load(BPF_H, 4), jump_unless_half(u16::from(Rtm::Dellink), n + 1), load(BPF_W, 20)];
        for (i, index) in indexes.iter().enumerate() {
            let left = n - 1 - i as u8; // comparisons after this one
            program.push(op(BPF_JMP | BPF_JEQ | BPF_K, left + 1, 0, host32(*index)));
        }
        program.extend([DROP, ACCEPT]);
        crate::sys::attach_filter(self.nl.as_fd(), &program)
            .map_err(|e| Error::sys("cannot filter link notifications", e))
    }

    /// Subscribe in the network namespace `ns`.
    pub fn open_in(ns: &crate::netns::Netns) -> Result<LinkWatch> {
        ns.run_in(LinkWatch::open)
    }

    /// The next notification, or why the wait ended.
    pub fn next(&mut self, deadline: Option<Instant>, interrupt: Option<BorrowedFd<'_>>) -> Result<Wake> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Wake::Event(event));
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Wake::Timeout);
                    }
                    // Round up so that we never wake before the deadline.
                    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let sock = self.nl.as_fd();
            let mut fds = vec![PollFd::new(sock, PollFlags::POLLIN)];
            if let Some(fd) = interrupt {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("cannot wait for link notifications", e)),
                Ok(0) => continue, // re-checks the deadline
                Ok(_) => {}
            }
            if fds.get(1).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty()) {
                return Ok(Wake::Interrupted);
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                match self.read() {
                    Ok(()) => {}
                    Err(KernelError { errno: Errno::ENOBUFS, .. }) => return Ok(Wake::Overrun),
                    Err(e) => return Err(e.into_error("cannot read link notifications")),
                }
            }
        }
    }

    fn read(&mut self) -> Result<(), KernelError> {
        let (msgs, _) = self.nl.sock.recv::<u16, Ifinfomsg>().map_err(KernelError::from_socket)?;
        for msg in msgs {
            let msg = msg.map_err(KernelError::from_socket)?;
            let ty = *msg.nl_type();
            let new = ty == u16::from(Rtm::Newlink);
            if !new && ty != u16::from(Rtm::Dellink) {
                continue;
            }
            if let Some(p) = msg.get_payload() {
                self.queue.push_back(LinkEvent { new, link: Link::from_msg(p) });
            }
        }
        Ok(())
    }
}

/// A socket told when one namespace id goes (`RTM_DELNSID`, group `RTNLGRP_NSID`): the kernel
/// sends it as it begins to destroy the namespace that the id names here (or when the id is
/// removed), before it removes that namespace's interfaces.
#[derive(Debug)]
pub struct NsidWatch {
    nl: Netlink,
}

impl NsidWatch {
    /// Subscribe (in the calling thread's namespace) to the removal of the id `nsid`, and of no
    /// other: a classic BPF filter drops every other notification in the kernel.
    pub fn open(nsid: i32) -> Result<NsidWatch> {
        let nl = Netlink::connect(Groups::new_groups(&[libc::RTNLGRP_NSID]))?;
        // nlmsghdr: nlmsg_type at 4; rtgenmsg (padded to 4) at 16; the first attribute is the
        // id (NETNSA_NSID): its type at 22, its value at 24.
        let program = [
            load(BPF_H, 4),
            jump_unless_half(u16::from(Rtm::Delnsid), 5),
            load(BPF_H, 22),
            jump_unless_half(crate::vocab::NETNSA_NSID, 3),
            load(BPF_W, 24),
            jump_unless_word(nsid as u32, 1),
            ACCEPT,
            DROP,
        ];
        crate::sys::attach_filter(nl.as_fd(), &program)
            .map_err(|e| Error::sys("cannot filter namespace id notifications", e))?;
        Ok(NsidWatch { nl })
    }

    /// Whether the id has gone, by what the socket holds now (never blocks).
    pub fn gone(&self) -> bool {
        let mut buf = [0u8; 256];
        let mut gone = false;
        // Only the id's removal passes the filter: any message is it.
        while let Ok(n) = nix::sys::socket::recv(self.nl.as_fd().as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            if n == 0 {
                break;
            }
            gone = true;
        }
        gone
    }
}

impl AsFd for NsidWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.nl.as_fd()
    }
}

/// One classic BPF instruction.
fn op(code: u32, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt, jf, k }
}

/// Load the `size` (`BPF_H`, `BPF_W`) field at byte `offset` of the message.
fn load(size: u32, offset: u32) -> sock_filter {
    op(BPF_LD | size | BPF_ABS, 0, 0, offset)
}

/// Go on if the loaded half-word is `value` (netlink's fields are in host order), else skip
/// `skip` instructions.
fn jump_unless_half(value: u16, skip: u8) -> sock_filter {
    // Loads are big-endian: the field is compared as its bytes read that way.
    op(BPF_JMP | BPF_JEQ | BPF_K, 0, skip, u32::from(u16::from_be_bytes(value.to_ne_bytes())))
}

/// [`jump_unless_half`] for a loaded word.
fn jump_unless_word(value: u32, skip: u8) -> sock_filter {
    op(BPF_JMP | BPF_JEQ | BPF_K, 0, skip, host32(value))
}

/// A 32-bit field in host order, as a big-endian load sees it.
fn host32(v: u32) -> u32 {
    u32::from_be_bytes(v.to_ne_bytes())
}

const DROP: sock_filter = sock_filter { code: (BPF_RET | BPF_K) as u16, jt: 0, jf: 0, k: 0 };
const ACCEPT: sock_filter = sock_filter { code: (BPF_RET | BPF_K) as u16, jt: 0, jf: 0, k: u32::MAX };
