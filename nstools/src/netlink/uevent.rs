//! Waiting for the removal of given links by the kernel's uevents (`NETLINK_KOBJECT_UEVENT`),
//! never by polling: what `ns-exec --end-netns` waits on while the kernel destroys a testenv.
//!
//! Why not `RTNLGRP_LINK`: the kernel hands every rtnetlink notification, from any namespace, to
//! a walk over every socket subscribed to any rtnetlink group on the machine. Sixty testenvs
//! each waiting with such a socket made the kernel's removal of their namespaces about a third
//! slower (N=60: 7 of 11 extra milliseconds, measured with the kernel's scheduler trace; the
//! benchmark's report has the figures). Uevent sockets are a list of their own, walked by the
//! uevents of their namespace only: about four per interface that comes or goes (the device, its
//! queues, its bridge port), each costing the kernel a turn at every socket subscribed there (a
//! reference and a run of its filter) - so subscribe for as short a time as the wait needs. As
//! with rtnetlink, subscribe first ([`RemovalWatch::open`]), then look the links up: a removal in
//! between is still heard of.
//!
//! The kernel sends `remove@/devices/virtual/net/NAME` to its namespace's listeners as it
//! unregisters the device `NAME` (or moves it to another namespace), just before its
//! `RTM_DELLINK`; the message carries `IFINDEX=`. Unprivileged listeners may subscribe.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

use libc::{BPF_ABS, BPF_B, BPF_H, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, socket,
};

use super::watch::poll_until;
use crate::error::{Error, Result};

/// What the kernel's uevent for an interface's removal begins with, before the name.
const REMOVE_NET: &[u8] = b"remove@/devices/virtual/net/";

/// The kernel's uevents: group 1 of `NETLINK_KOBJECT_UEVENT` (udev's own are group 2).
const KERNEL_GROUP: u32 = 1;

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The link with this index was removed (or moved to another namespace).
    Removed(u32),
    /// The deadline passed.
    Timeout,
    /// Uevents were lost (the socket buffer overflowed): look again.
    Overrun,
}

/// A socket told of the removal of some links of its namespace, and of nothing else.
#[derive(Debug)]
pub struct RemovalWatch {
    sock: OwnedFd,
}

impl RemovalWatch {
    /// Subscribe, in the calling thread's namespace, to the removal of the links `links` (index
    /// and name): a classic BPF filter passes the kernel's removal uevent of those names and
    /// drops every other uevent in the kernel, so that many waiters, each for its own link, are
    /// not woken by one another's. EINVAL for more links than a filter holds (about 170).
    pub fn open<'a>(links: impl IntoIterator<Item = (u32, &'a str)>) -> Result<RemovalWatch> {
        let fail = |e| Error::sys("cannot listen for interfaces' removal", e);
        let sock =
            socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkKObjectUEvent)
                .map_err(fail)?;
        let names: Vec<Vec<u8>> = links.into_iter().map(|(_, name)| removal_of(name)).collect();
        crate::sys::attach_filter(&sock, &filter(&names)?).map_err(fail)?;
        bind(sock.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP)).map_err(fail)?;
        Ok(RemovalWatch { sock })
    }

    /// The next removal of a link of those watched, or why the wait ended.
    pub fn next(&mut self, deadline: Instant) -> Result<Removal> {
        let mut buf = [0u8; 2048];
        loop {
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if !poll_until(&mut fds, Some(deadline)).map_err(|e| Error::sys("cannot wait for uevents", e))? {
                return Ok(Removal::Timeout);
            }
            match recvfrom::<NetlinkAddr>(self.sock.as_raw_fd(), &mut buf) {
                // Only the kernel's (port 0): anyone may not send to the group, but be sure.
                Ok((n, Some(from))) if from.pid() == 0 => {
                    if let Some(index) = buf.get(..n).and_then(ifindex) {
                        return Ok(Removal::Removed(index));
                    }
                }
                Ok(_) | Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(Errno::ENOBUFS) => return Ok(Removal::Overrun),
                Err(e) => return Err(Error::sys("cannot read uevents", e)),
            }
        }
    }

    /// Drop whatever has queued up (never blocks): after an [`Removal::Overrun`], before looking.
    pub fn drain(&self) {
        let mut buf = [0u8; 2048];
        while let Ok(n) = nix::sys::socket::recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            if n == 0 {
                break;
            }
        }
    }
}

/// The start of the removal uevent of the interface `name`, its terminating NUL included (so
/// that its queues' uevents, `.../NAME/queues/rx-0`, do not match).
fn removal_of(name: &str) -> Vec<u8> {
    let mut text = REMOVE_NET.to_vec();
    text.extend_from_slice(name.as_bytes());
    text.push(0);
    text
}

/// `IFINDEX=` of a uevent (`ACTION@DEVPATH\0KEY=VALUE\0...`).
fn ifindex(msg: &[u8]) -> Option<u32> {
    msg.split(|b| *b == 0).find_map(|field| std::str::from_utf8(field.strip_prefix(b"IFINDEX=")?).ok()?.parse().ok())
}

/// A filter that accepts a message that begins with one of `texts` and drops every other.
fn filter(texts: &[Vec<u8>]) -> Result<Vec<sock_filter>> {
    let too_many = || Error::sys("too many interfaces to listen for", Errno::EINVAL);
    let mut program = Vec::new();
    for text in texts {
        let block = starts_with(text).ok_or_else(too_many)?;
        program.extend(block);
    }
    program.push(DROP);
    if program.len() > 4096 {
        // BPF_MAXINSNS
        return Err(too_many());
    }
    Ok(program)
}

/// Instructions that accept a message beginning with `text`, and otherwise go on to the
/// instruction after them (None: too long for one jump).
fn starts_with(text: &[u8]) -> Option<Vec<sock_filter>> {
    let mut checks = Vec::new(); // (load size, offset, value), big-endian as loads are
    let mut at = 0;
    while at < text.len() {
        let (size, width) = match text.len() - at {
            1 => (BPF_B, 1),
            2 | 3 => (BPF_H, 2),
            _ => (BPF_W, 4),
        };
        let value = text[at..at + width].iter().fold(0u32, |v, b| (v << 8) | u32::from(*b));
        checks.push((size, at as u32, value));
        at += width;
    }
    let len = checks.len() * 2 + 1;
    let mut block = Vec::with_capacity(len);
    // The end first: the name, where one uevent differs from another, rather than the 28 bytes
    // every interface's removal shares. Each uevent costs every subscribed socket a run of its
    // filter; most now fail within the first two checks (a sibling `vethNN-br` at the second).
    for (size, offset, value) in checks.into_iter().rev() {
        block.push(op(BPF_LD | size | BPF_ABS, 0, 0, offset));
        let skip = u8::try_from(len - block.len() - 1).ok()?; // past this block's ACCEPT
        block.push(op(BPF_JMP | BPF_JEQ | BPF_K, 0, skip, value));
    }
    block.push(ACCEPT);
    Some(block)
}

/// One classic BPF instruction.
fn op(code: u32, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt, jf, k }
}

const DROP: sock_filter = sock_filter { code: (BPF_RET | BPF_K) as u16, jt: 0, jf: 0, k: 0 };
const ACCEPT: sock_filter = sock_filter { code: (BPF_RET | BPF_K) as u16, jt: 0, jf: 0, k: u32::MAX };

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What the kernel does with the program, for the instructions it uses: accept or drop.
    fn run(program: &[sock_filter], msg: &[u8]) -> bool {
        let mut pc = 0;
        let mut a = 0u32;
        loop {
            let i = program[pc];
            let code = u32::from(i.code);
            if code & 0x07 == BPF_RET {
                return i.k != 0;
            }
            if code & 0x07 == BPF_LD {
                let width = match code & 0x18 {
                    BPF_W => 4,
                    BPF_H => 2,
                    _ => 1,
                };
                let at = i.k as usize;
                let Some(bytes) = msg.get(at..at + width) else { return false }; // out of range: drop
                a = bytes.iter().fold(0, |v, b| (v << 8) | u32::from(*b));
                pc += 1;
            } else {
                pc += 1 + usize::from(if a == i.k { i.jt } else { i.jf });
            }
        }
    }

    fn uevent(head: &str, index: u32) -> Vec<u8> {
        format!("{head}\0ACTION=remove\0SUBSYSTEM=net\0IFINDEX={index}\0SEQNUM=7\0").into_bytes()
    }

    #[test]
    fn the_filter_passes_the_removal_of_the_names_given_and_nothing_else() {
        let program = filter(&[removal_of("veth3-br"), removal_of("a")]).unwrap();
        assert!(run(&program, &uevent("remove@/devices/virtual/net/veth3-br", 9)));
        assert!(run(&program, &uevent("remove@/devices/virtual/net/a", 10)));
        for other in [
            "remove@/devices/virtual/net/veth3-br/queues/rx-0",
            "remove@/devices/virtual/net/veth3-b",
            "remove@/devices/virtual/net/veth33-br",
            "add@/devices/virtual/net/veth3-br",
            "move@/devices/virtual/net/veth3-br",
            "remove@/devices/virtual/net/ab",
        ] {
            assert!(!run(&program, &uevent(other, 9)), "{other} passed");
        }
        assert!(!run(&program, b"remove@"), "a message shorter than the text");
        assert!(!run(&filter(&[]).unwrap(), &uevent("remove@/devices/virtual/net/a", 1)));
    }

    #[test]
    fn every_name_length_is_matched_whole() {
        for len in 1..=15 {
            let name = "n".repeat(len);
            let program = filter(&[removal_of(&name)]).unwrap();
            assert!(run(&program, &uevent(&format!("remove@/devices/virtual/net/{name}"), 1)), "{len}");
            assert!(!run(&program, &uevent(&format!("remove@/devices/virtual/net/{name}x"), 1)), "{len}");
        }
    }

    #[test]
    fn the_index_is_read_from_the_uevent() {
        assert_eq!(ifindex(&uevent("remove@/devices/virtual/net/a", 42)), Some(42));
        assert_eq!(ifindex(b"remove@/devices/virtual/net/a\0ACTION=remove\0"), None);
        assert_eq!(ifindex(b"IFINDEX=x\0"), None);
    }
}
