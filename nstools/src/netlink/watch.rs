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
            let sock = self.nl.as_fd();
            let mut fds = vec![PollFd::new(sock, PollFlags::POLLIN)];
            if let Some(fd) = interrupt {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            if !poll_until(&mut fds, deadline).map_err(|e| Error::sys("cannot wait for link notifications", e))? {
                return Ok(Wake::Timeout);
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

/// Wait until one of `fds` is ready (true) or `deadline` passes (false), through signals.
pub(crate) fn poll_until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<bool, Errno> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Round up so that we never wake before the deadline.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(fds, timeout) {
            Err(Errno::EINTR) | Ok(0) => continue, // re-checks the deadline
            Err(e) => return Err(e),
            Ok(_) => return Ok(true),
        }
    }
}
