//! Namespace ids: how one network namespace refers to another (the `link-netnsid` of a veth
//! whose peer lives elsewhere).

use std::io::Cursor;
use std::os::fd::{AsRawFd, BorrowedFd};

use neli::consts::rtnl::Rtm;
use neli::types::{Buffer, RtBuffer};
use neli::{FromBytesWithInput, ToBytes};

use super::Netlink;
use super::attr::{attr, find, i32_of};
use crate::error::Result;
use crate::vocab::{NETNSA_FD, NETNSA_NSID};

/// `struct rtgenmsg` padded to 4 bytes, then the attributes.
fn rtgen_with(attrs: &[neli::rtnl::Rtattr<u16, Buffer>]) -> Buffer {
    let mut out = Cursor::new(vec![0u8; 4]);
    out.set_position(4);
    for a in attrs {
        a.to_bytes(&mut out).expect("serialising into memory cannot fail");
    }
    Buffer::from(out.into_inner())
}

impl Netlink {
    /// The id under which this socket's namespace knows the namespace `netns`, if it has one.
    /// Reading never assigns an id.
    pub fn get_nsid(&mut self, netns: BorrowedFd<'_>) -> Result<Option<i32>> {
        let req = rtgen_with(&[attr(NETNSA_FD, netns.as_raw_fd() as u32)]);
        let nsid = self
            .get(Rtm::Getnsid, req, |answer: &Buffer| {
                let bytes = answer.as_ref();
                let attrs = bytes.get(4..).and_then(|rest| {
                    RtBuffer::<u16, Buffer>::from_bytes_with_input(&mut Cursor::new(rest), rest.len()).ok()
                });
                attrs.and_then(|a| find(&a, NETNSA_NSID).and_then(i32_of))
            })
            .map_err(|e| e.into_error("cannot read a namespace id"))?;
        Ok(nsid.filter(|&n| n >= 0))
    }
}
