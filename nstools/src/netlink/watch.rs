//! Waiting for links by notification (`RTNLGRP_LINK`), never by polling.
//!
//! Join the group first ([`LinkWatch::open`]), then look the link up, then read events: a link
//! that appears between the look-up and the wait is still reported.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use neli::consts::rtnl::Rtm;
use neli::rtnl::Ifinfomsg;
use neli::utils::Groups;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

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
        use libc::{BPF_ABS, BPF_H, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
        let n = u8::try_from(indexes.len()).map_err(|_| Error::sys("too many links to watch", Errno::EINVAL))?;
        let op = |code: u32, jt: u8, jf: u8, k: u32| sock_filter { code: code as u16, jt, jf, k };
        // Loads are big-endian; the message's fields are in host order.
        let host = |v: u32| u32::from_be_bytes(v.to_ne_bytes());
        let rtm_dellink = u32::from(u16::from_be_bytes(u16::from(Rtm::Dellink).to_ne_bytes()));
        // nlmsghdr: nlmsg_type at 4; ifinfomsg after it (16): ifi_index at 20.
        let mut program =
            vec![op(BPF_LD | BPF_H | BPF_ABS, 0, 0, 4), op(BPF_JMP | BPF_JEQ | BPF_K, 0, n + 1, rtm_dellink)];
        program.push(op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 20));
        for (i, index) in indexes.iter().enumerate() {
            let left = n - 1 - i as u8; // comparisons after this one
            program.push(op(BPF_JMP | BPF_JEQ | BPF_K, left + 1, 0, host(*index)));
        }
        program.push(op(BPF_RET | BPF_K, 0, 0, 0)); // drop
        program.push(op(BPF_RET | BPF_K, 0, 0, u32::MAX)); // accept, whole
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
