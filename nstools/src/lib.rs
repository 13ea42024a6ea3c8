//! The shared library of nstools: the five tools (`ns-unshare`, `veth-pair`, `br-attach`,
//! `ns-exec`, `ns-ls`) are thin command lines over these modules.
//!
//! - [`vocab`]: the words and kernel numbers of every vocabulary (link kinds, states, scopes,
//!   table columns), each in one table.
//! - [`error`]: one error type that keeps the errno and the kernel's extended-ack text.
//! - [`ifname`], [`cidr`]: input checks with messages that name the problem.
//! - [`netns`]: namespace handles and targets (PID, `PID:INODE`, nsfs path, `/run/netns` name).
//! - [`netlink`]: rtnetlink requests, one small function per operation.
//! - [`undo`], [`signals`]: fully done or fully undone, even when interrupted.
//! - [`veth`], [`bridge`]: what `veth-pair` and `br-attach` do; [`vxlan`]: a bridge's tunnel
//!   port to other hosts.
//! - [`impair`]: link impairments (delay, jitter, loss, rate); set by [`netlink::qdisc`].
//! - [`exec`], [`capture`]: what `ns-exec` does: run a command, record the namespace's traffic
//!   meanwhile (a pcapng file).
//! - [`cli`]: what every `main` shares.

pub mod bridge;
pub mod capture;
pub mod cidr;
pub mod cli;
pub mod end;
pub mod enter;
pub mod envfile;
pub mod error;
pub mod exec;
pub mod holder;
pub mod ifname;
pub mod impair;
pub mod listing;
pub mod netlink;
pub mod netns;
pub mod render;
pub mod signals;
pub mod sys;
pub mod undo;
pub mod veth;
pub mod vocab;
pub mod vxlan;

pub use cidr::Cidr;
pub use error::{Error, Result};
pub use ifname::IfName;
pub use netlink::Netlink;
pub use netns::{Netns, Target, TargetSpec};
