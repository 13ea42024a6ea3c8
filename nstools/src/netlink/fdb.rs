//! Forwarding database entries of a VXLAN tunnel (`bridge fdb`): where it sends what. The
//! all-zeros MAC is its default destination: `bridge fdb append 00:00:00:00:00:00 dev vx42 dst
//! IP` once per remote host, and a frame for an unknown MAC (a broadcast, a first ARP request)
//! goes to each of them (head-end replication); the MACs it then learns each point to one host.

use std::net::IpAddr;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Nda, Ntf, Nud, RtAddrFamily, Rtm, Rtn};
use neli::rtnl::{Ndmsg, NdmsgBuilder};
use neli::types::RtBuffer;
use serde::Serialize;

use super::attr::{attr, find};
use super::link::{format_mac, ip_of};
use super::route::ip_bytes;
use super::{KernelError, Netlink, NlResult};
use crate::error::Result;
use crate::vocab::AF_BRIDGE;

/// The MAC of a tunnel's default destinations.
const ALL_ZEROS: [u8; 6] = [0; 6];

/// One entry of a device's forwarding database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdbEntry {
    /// The MAC (`00:00:00:00:00:00` for a default destination).
    pub mac: String,
    /// The remote host it is sent to.
    pub dst: Option<IpAddr>,
    /// Set by hand (`permanent`), not learned.
    pub permanent: bool,
}

impl FdbEntry {
    /// A default destination (the all-zeros MAC): a remote host of the tunnel.
    pub fn is_default(&self) -> bool {
        self.mac == "00:00:00:00:00:00"
    }
}

/// The default destination `dst` of device `index`, as `bridge fdb append|del 00:00:00:00:00:00
/// dev DEV dst DST` says it (`self permanent`).
fn default_entry(index: u32, dst: &IpAddr) -> NlResult<Ndmsg> {
    let mut attrs = RtBuffer::new();
    attrs.push(attr(Nda::Lladdr, neli::types::Buffer::from(ALL_ZEROS.to_vec())));
    attrs.push(attr(Nda::Dst, ip_bytes(dst)));
    NdmsgBuilder::default()
        .ndm_family(RtAddrFamily::from(AF_BRIDGE))
        .ndm_index(index as i32)
        .ndm_state(Nud::NOARP | Nud::PERMANENT)
        .ndm_flags(Ntf::SELF)
        .ndm_type(Rtn::Unspec)
        .rtattrs(attrs)
        .build()
        .map_err(KernelError::unbuilt)
}

impl Netlink {
    /// Add `dst` to the default destinations of the VXLAN device `index` (`bridge fdb append`).
    /// Adding one it has already is not an error.
    pub fn append_fdb(&mut self, index: u32, dst: &IpAddr) -> NlResult<()> {
        self.request(Rtm::Newneigh, NlmF::CREATE | NlmF::APPEND, default_entry(index, dst)?)
    }

    /// Remove `dst` from them (`bridge fdb del`); ENOENT if it is not one.
    pub fn delete_fdb(&mut self, index: u32, dst: &IpAddr) -> NlResult<()> {
        self.request(Rtm::Delneigh, NlmF::empty(), default_entry(index, dst)?)
    }

    /// The forwarding database of device `index` (its own entries, `bridge fdb show dev DEV
    /// self`): default destinations and learned MACs.
    pub fn dump_fdb(&mut self, index: u32) -> Result<Vec<FdbEntry>> {
        let msg = NdmsgBuilder::default()
            .ndm_family(RtAddrFamily::from(AF_BRIDGE))
            .ndm_index(0)
            .ndm_state(Nud::NONE)
            .ndm_type(Rtn::Unspec)
            .build()
            .map_err(|e| KernelError::unbuilt(e).into_error("cannot list forwarding entries"))?;
        let all = self
            .dump(Rtm::Getneigh, msg, |m: &Ndmsg| {
                let own = *m.ndm_index() as u32 == index && m.ndm_flags().contains(Ntf::SELF);
                let mac = find(m.rtattrs(), Nda::Lladdr).filter(|b| own && b.len() == 6).map(format_mac);
                mac.map(|mac| FdbEntry {
                    mac,
                    dst: find(m.rtattrs(), Nda::Dst).and_then(ip_of),
                    permanent: m.ndm_state().contains(Nud::PERMANENT),
                })
            })
            .map_err(|e| e.into_error("cannot list forwarding entries"))?;
        Ok(all.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_destination_is_what_bridge_fdb_append_sends() {
        let msg = default_entry(4, &"198.51.100.2".parse().unwrap()).unwrap();
        let bytes = super::super::request_bytes(Rtm::Newneigh, NlmF::CREATE | NlmF::APPEND, msg).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // What iproute2 6.1's `bridge fdb append 00:00:00:00:00:00 dev vx42 dst 198.51.100.2`
        // sends (strace), sequence number zeroed, vx42 being interface 4.
        let expected = [
            "30000000",
            "1c00",
            "050c",
            "00000000",
            "00000000", // nlmsghdr: 48 bytes, NEWNEIGH, REQUEST|ACK|CREATE|APPEND
            "07",
            "00",
            "0000",
            "04000000",
            "c000",
            "02",
            "00", // ndmsg: AF_BRIDGE, vx42, NOARP|PERMANENT, SELF
            "0a00",
            "0200",
            "000000000000",
            "0000", // NDA_LLADDR
            "0800",
            "0100",
            "c6336402", // NDA_DST
        ];
        assert_eq!(hex, expected.concat());
    }
}
