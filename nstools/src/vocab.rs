//! The vocabulary of nstools: every word the tools read or print for a kernel value, and every
//! kernel number behind one, each kind in one table (as util-linux keeps its namespace types in
//! nsenter's `namespace_files[]` and its columns in lsns' `infos[]`). Nothing else spells them.
//!
//! - [`NsType`]: namespace types: `/proc/PID/ns` names and `CLONE_NEW*` flags.
//! - [`LinkKind`]: link kinds as the kernel names them (`IFLA_INFO_KIND`).
//! - [`OperState`]: operational states (`IF_OPER_*`) as iproute2 prints them.
//! - [`Scope`]: address scopes (`RT_SCOPE_*`) as iproute2 prints them.
//! - [`Column`]: the columns of `ns-ls`'s table: name, help, alignment.
//! - The kernel numbers that neli 0.7.5 has no constant for ([`LOOPBACK`]...), at the end.
//!
//! Each type prints as its word ([`Display`](fmt::Display), padding honoured) and serialises as
//! it in JSON: the words are a contract and are only ever added, never changed.

use std::fmt;

use neli::consts::rtnl::RtScope;
use serde::{Serialize, Serializer};

/// `Display` and `Serialize` as the word `as_str` gives: one spelling for text and JSON.
macro_rules! spelled_by_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}

spelled_by_as_str!(NsType, LinkKind, OperState, Scope, Column);

/// A namespace type: its name in `/proc/PID/ns` (what lsns prints and `ns-ls -t` takes) and its
/// `CLONE_NEW*` flag, in one table ([`NsType::info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsType {
    /// `net`: network.
    Net,
    /// `user`: user and group IDs, and the capabilities over the others.
    User,
    /// `mnt`: mounts.
    Mnt,
    /// `uts`: host and domain name.
    Uts,
    /// `ipc`: System V IPC, POSIX message queues.
    Ipc,
    /// `pid`: process IDs.
    Pid,
    /// `cgroup`: the cgroup root.
    Cgroup,
    /// `time`: boot and monotonic clock offsets.
    Time,
}

impl NsType {
    /// Every type, in the order `ns-ls -t` lists them.
    pub const ALL: [NsType; 8] =
        [NsType::Net, NsType::User, NsType::Mnt, NsType::Uts, NsType::Ipc, NsType::Pid, NsType::Cgroup, NsType::Time];

    /// Their names, in that order.
    pub const NAMES: [&'static str; 8] = ["net", "user", "mnt", "uts", "ipc", "pid", "cgroup", "time"];

    /// The table: name, `CLONE_NEW*` flag.
    fn info(self) -> (&'static str, i32) {
        match self {
            NsType::Net => ("net", libc::CLONE_NEWNET),
            NsType::User => ("user", libc::CLONE_NEWUSER),
            NsType::Mnt => ("mnt", libc::CLONE_NEWNS),
            NsType::Uts => ("uts", libc::CLONE_NEWUTS),
            NsType::Ipc => ("ipc", libc::CLONE_NEWIPC),
            NsType::Pid => ("pid", libc::CLONE_NEWPID),
            NsType::Cgroup => ("cgroup", libc::CLONE_NEWCGROUP),
            NsType::Time => ("time", libc::CLONE_NEWTIME),
        }
    }

    /// Its name (`net`).
    pub fn as_str(self) -> &'static str {
        self.info().0
    }

    /// Its `CLONE_NEW*` flag.
    pub fn flag(self) -> nix::sched::CloneFlags {
        nix::sched::CloneFlags::from_bits_retain(self.info().1)
    }

    /// The flags of `types`, together (what `unshare(2)` and `setns(2)` take).
    pub fn flags(types: impl IntoIterator<Item = NsType>) -> nix::sched::CloneFlags {
        types.into_iter().fold(nix::sched::CloneFlags::empty(), |all, t| all | t.flag())
    }

    /// The type of a `CLONE_NEW*` number (what `NS_GET_NSTYPE` answers).
    pub fn from_flag(flag: i32) -> Option<NsType> {
        NsType::ALL.into_iter().find(|t| t.info().1 == flag)
    }

    /// The types whose flags are in `flags`, in [`NsType::ALL`]'s order.
    pub fn of(flags: nix::sched::CloneFlags) -> Vec<NsType> {
        NsType::ALL.into_iter().filter(|t| flags.contains(t.flag())).collect()
    }

    /// The namespace file of process `pid` (`/proc/PID/ns/net`); `None`: the caller's own
    /// thread (`/proc/thread-self/ns/net`).
    pub fn proc_path(self, pid: Option<i32>) -> String {
        match pid {
            Some(pid) => format!("/proc/{pid}/ns/{}", self.as_str()),
            None => format!("/proc/thread-self/ns/{}", self.as_str()),
        }
    }
}

impl Default for NsType {
    /// The network namespace: what nstools is about.
    fn default() -> NsType {
        NsType::Net
    }
}

impl std::str::FromStr for NsType {
    type Err = String;
    fn from_str(word: &str) -> Result<NsType, String> {
        NsType::ALL
            .into_iter()
            .find(|t| t.as_str() == word)
            .ok_or_else(|| format!("unknown namespace type '{word}'; known: {}", NsType::NAMES.join(", ")))
    }
}

/// A link kind, as the kernel names it in `IFLA_INFO_KIND`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// `veth`: one end of a virtual Ethernet pair.
    Veth,
    /// `bridge`: a software bridge.
    Bridge,
    /// `vxlan`: a VXLAN tunnel (Ethernet over UDP), a bridge's port to other hosts.
    Vxlan,
    /// Any other kind (`dummy`, `vlan`, `tun`...), by the kernel's name; never one of the words
    /// above (build it with [`LinkKind::from_kernel`]).
    Other(String),
}

impl LinkKind {
    /// The kind the kernel names `word`.
    pub fn from_kernel(word: &str) -> LinkKind {
        match word {
            "veth" => LinkKind::Veth,
            "bridge" => LinkKind::Bridge,
            "vxlan" => LinkKind::Vxlan,
            other => LinkKind::Other(other.to_owned()),
        }
    }

    /// The kernel's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            LinkKind::Veth => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Vxlan => "vxlan",
            LinkKind::Other(word) => word,
        }
    }
}

/// An operational state (RFC 2863, `IFLA_OPERSTATE`), printed as iproute2 prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    /// `UNKNOWN` (`IF_OPER_UNKNOWN`, and any number the kernel may add).
    Unknown,
    /// `NOTPRESENT`.
    NotPresent,
    /// `DOWN`.
    Down,
    /// `LOWERLAYERDOWN`.
    LowerLayerDown,
    /// `TESTING`.
    Testing,
    /// `DORMANT`.
    Dormant,
    /// `UP`.
    Up,
}

impl OperState {
    /// The state of the kernel's number `n` (`IF_OPER_*`).
    pub fn from_kernel(n: u8) -> OperState {
        match libc::c_int::from(n) {
            libc::IF_OPER_NOTPRESENT => OperState::NotPresent,
            libc::IF_OPER_DOWN => OperState::Down,
            libc::IF_OPER_LOWERLAYERDOWN => OperState::LowerLayerDown,
            libc::IF_OPER_TESTING => OperState::Testing,
            libc::IF_OPER_DORMANT => OperState::Dormant,
            libc::IF_OPER_UP => OperState::Up,
            _ => OperState::Unknown,
        }
    }

    /// The word iproute2 prints.
    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Unknown => "UNKNOWN",
            OperState::NotPresent => "NOTPRESENT",
            OperState::Down => "DOWN",
            OperState::LowerLayerDown => "LOWERLAYERDOWN",
            OperState::Testing => "TESTING",
            OperState::Dormant => "DORMANT",
            OperState::Up => "UP",
        }
    }
}

/// The scope of an address (`ifa_scope`), printed as iproute2 prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `global` (`RT_SCOPE_UNIVERSE`).
    Global,
    /// `site`.
    Site,
    /// `link`: only on its link (IPv6 `fe80::/10`).
    Link,
    /// `host`: only on this host (loopback).
    Host,
    /// `other`: any other number.
    Other,
}

impl Scope {
    /// The scope the kernel calls `scope` (`RT_SCOPE_*`).
    pub fn from_kernel(scope: RtScope) -> Scope {
        match scope {
            RtScope::Universe => Scope::Global,
            RtScope::Site => Scope::Site,
            RtScope::Link => Scope::Link,
            RtScope::Host => Scope::Host,
            _ => Scope::Other,
        }
    }

    /// The word iproute2 prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Site => "site",
            Scope::Link => "link",
            Scope::Host => "host",
            Scope::Other => "other",
        }
    }
}

/// A column of `ns-ls`'s namespace table (`-o`); its name, help and alignment are in one
/// table (`Column::info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Ns,
    Type,
    Nprocs,
    Pid,
    Holder,
    Label,
    Command,
    Bind,
    Ifaces,
    ExitWith,
    ClaimedBy,
    Uplinks,
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

impl Column {
    /// Every column, in the order `--help` lists them.
    pub const ALL: [Column; 12] = [
        Column::Ns,
        Column::Type,
        Column::Nprocs,
        Column::Pid,
        Column::Holder,
        Column::Label,
        Column::Command,
        Column::Bind,
        Column::Ifaces,
        Column::ExitWith,
        Column::ClaimedBy,
        Column::Uplinks,
    ];

    /// The columns shown without `-o`.
    pub const DEFAULT: [Column; 6] =
        [Column::Ns, Column::Type, Column::Nprocs, Column::Pid, Column::Label, Column::Command];

    /// The table: name (as `-o` takes it and the header shows it), help text, alignment.
    fn info(self) -> (&'static str, &'static str, Align) {
        match self {
            Column::Ns => ("NS", "namespace inode", Align::Right),
            Column::Type => ("TYPE", "namespace type", Align::Left),
            Column::Nprocs => ("NPROCS", "number of processes in it", Align::Right),
            Column::Pid => ("PID", "a process in it: its holder if any, else the oldest", Align::Right),
            Column::Holder => ("HOLDER", "PID of its ns-unshare holder", Align::Right),
            Column::Label => ("LABEL", "label of the holder (ns-unshare --name)", Align::Left),
            Column::Command => ("COMMAND", "command line of PID", Align::Left),
            Column::Bind => ("BIND", "bind mounts of it (ip netns, --bind)", Align::Left),
            Column::Ifaces => ("IFACES", "number of interfaces", Align::Right),
            Column::ExitWith => ("EXITWITH", "the process the holder exits with (--exit-with)", Align::Right),
            Column::ClaimedBy => {
                ("CLAIMEDBY", "the command the holder lives for (ns-unshare | ns-exec CMD)", Align::Right)
            }
            Column::Uplinks => ("UPLINKS", "its veths whose peer is a bridge port, as VETH:BRIDGE", Align::Left),
        }
    }

    /// Its name (`NS`).
    pub fn as_str(self) -> &'static str {
        self.info().0
    }

    /// What it shows, for `--help`.
    pub fn help(self) -> &'static str {
        self.info().1
    }

    /// True for numbers, which line up on the right.
    pub fn right_aligned(self) -> bool {
        self.info().2 == Align::Right
    }

    /// A comma-separated list of columns, any case (`-o ns,label`); an unknown one is an error
    /// that lists the known ones.
    pub fn parse_list(list: &str) -> Result<Vec<Column>, String> {
        list.split(',')
            .map(|word| {
                let word = word.trim().to_ascii_uppercase();
                Column::ALL
                    .into_iter()
                    .find(|c| c.as_str() == word)
                    .ok_or_else(|| format!("unknown column '{word}'; known: {}", Column::list(&Column::ALL)))
            })
            .collect()
    }

    /// `columns` as `-o` takes them (`NS,TYPE`).
    pub fn list(columns: &[Column]) -> String {
        columns.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
    }
}

// Kernel numbers that neli 0.7.5 has no constant for (libc's are used where it has them:
// `RTNLGRP_LINK`, `RTEXT_FILTER_SKIP_STATS`, `IF_OPER_*`).

/// The loopback device's ifindex: always 1 (the kernel's `LOOPBACK_IFINDEX`).
pub const LOOPBACK: u32 = 1;
/// `VETH_INFO_PEER` (linux/veth.h): the peer's `ifinfomsg` inside a veth's `IFLA_INFO_DATA`.
pub(crate) const VETH_INFO_PEER: u16 = 1;
/// `NETNSA_NSID` (linux/net_namespace.h): a namespace id.
pub(crate) const NETNSA_NSID: u16 = 1;
/// `NETNSA_FD` (linux/net_namespace.h): a namespace named by a file descriptor.
pub(crate) const NETNSA_FD: u16 = 3;
/// `AF_BRIDGE`: the family of a bridge's or a VXLAN device's forwarding database (`bridge fdb`).
pub(crate) const AF_BRIDGE: u8 = libc::AF_BRIDGE as u8;
/// `IFLA_VXLAN_*` (linux/if_link.h): a VXLAN device's `IFLA_INFO_DATA`.
pub(crate) const IFLA_VXLAN_ID: u16 = 1;
/// The default remote (`remote`/`group`), IPv4.
pub(crate) const IFLA_VXLAN_GROUP: u16 = 2;
/// The source address (`local`), IPv4.
pub(crate) const IFLA_VXLAN_LOCAL: u16 = 4;
/// Learn remote MACs from what arrives (u8).
pub(crate) const IFLA_VXLAN_LEARNING: u16 = 7;
/// The UDP destination port, big-endian.
pub(crate) const IFLA_VXLAN_PORT: u16 = 15;
/// The default remote, IPv6.
pub(crate) const IFLA_VXLAN_GROUP6: u16 = 16;
/// The source address, IPv6.
pub(crate) const IFLA_VXLAN_LOCAL6: u16 = 17;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for word in ["veth", "bridge", "vxlan", "dummy"] {
            assert_eq!(LinkKind::from_kernel(word).as_str(), word);
        }
        assert_eq!(LinkKind::from_kernel("veth"), LinkKind::Veth);
        assert_eq!(serde_json::to_string(&Some(LinkKind::from_kernel("vlan"))).unwrap(), "\"vlan\"");
        assert_eq!(serde_json::to_string(&None::<LinkKind>).unwrap(), "null");
    }

    #[test]
    fn kernel_numbers() {
        let states: Vec<&str> = (0..=7).map(|n| OperState::from_kernel(n).as_str()).collect();
        assert_eq!(states, ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP", "UNKNOWN"]);
        let scopes: Vec<&str> =
            [0, 200, 253, 254, 255, 7].map(|n| Scope::from_kernel(RtScope::from(n)).as_str()).to_vec();
        assert_eq!(scopes, ["global", "site", "link", "host", "other", "other"]);
        assert_eq!(serde_json::to_string(&OperState::Up).unwrap(), "\"UP\"");
        assert_eq!(serde_json::to_string(&Scope::Link).unwrap(), "\"link\"");
        assert_eq!(format!("[{:<6}]", OperState::Up), "[UP    ]");
    }

    #[test]
    fn namespace_types() {
        assert_eq!(NsType::ALL.map(NsType::as_str), NsType::NAMES);
        assert_eq!(NsType::from_flag(libc::CLONE_NEWNS), Some(NsType::Mnt));
        assert_eq!(NsType::from_flag(0), None);
        assert_eq!(NsType::of(NsType::flags([NsType::Pid, NsType::User])), [NsType::User, NsType::Pid]);
        assert_eq!("uts".parse::<NsType>(), Ok(NsType::Uts));
        assert!("bogus".parse::<NsType>().unwrap_err().contains("known: net, user"));
        assert_eq!(NsType::Net.proc_path(Some(1)), "/proc/1/ns/net");
        assert_eq!(serde_json::to_string(&NsType::Cgroup).unwrap(), "\"cgroup\"");
    }

    #[test]
    fn columns() {
        assert_eq!(Column::parse_list("ns, label").unwrap(), [Column::Ns, Column::Label]);
        assert_eq!(
            Column::parse_list("NS,BOGUS").unwrap_err(),
            "unknown column 'BOGUS'; known: NS,TYPE,NPROCS,PID,HOLDER,LABEL,COMMAND,BIND,IFACES,EXITWITH,CLAIMEDBY,UPLINKS"
        );
        assert_eq!(Column::list(&Column::DEFAULT), "NS,TYPE,NPROCS,PID,LABEL,COMMAND");
        let right: Vec<&str> = Column::ALL.into_iter().filter(|c| c.right_aligned()).map(Column::as_str).collect();
        assert_eq!(right, ["NS", "NPROCS", "PID", "HOLDER", "IFACES", "EXITWITH", "CLAIMEDBY"]);
    }
}
