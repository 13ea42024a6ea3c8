//! Text output of `ns-ls`: the lsns-style table (with interface lines), and the topology.

use std::fmt::Write;

use crate::listing::{Bridge, Interface, Listing, Namespace, Peer};
use crate::netlink::addr::Address;
use crate::vocab::{Column, NsType, OperState, Scope};

fn cell(ns: &Namespace, kind: NsType, column: Column) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    match column {
        Column::Ns => ns.inode.to_string(),
        Column::Type => kind.to_string(),
        Column::Nprocs => ns.nprocs.to_string(),
        Column::Pid => opt(ns.pid.map(|p| p.to_string())),
        Column::Holder => opt(ns.holder.map(|p| p.to_string())),
        Column::Label => opt(ns.label.clone()),
        Column::Command => opt(ns.command.clone()),
        Column::Bind => {
            if ns.binds.is_empty() {
                "-".into()
            } else {
                ns.binds.join(",")
            }
        }
        Column::Ifaces => opt(ns.interfaces.as_ref().map(|i| i.len().to_string())),
        Column::ExitWith => opt(ns.exit_with.map(|p| p.to_string())),
        Column::ClaimedBy => opt(ns.claimed_by.map(|p| p.to_string())),
    }
}

fn addr_list(addrs: &[Address]) -> String {
    addrs.iter().filter(|a| a.scope != Scope::Link).map(|a| a.cidr.as_str()).collect::<Vec<_>>().join(" ")
}

fn peer_text(peer: &Peer) -> String {
    let name = peer.name.clone().unwrap_or_else(|| format!("#{}", peer.index));
    let mut s = format!("⇄ {name}");
    match (peer.pid, &peer.label, peer.netns) {
        (_, _, None) => s.push_str(" (namespace not visible)"),
        (Some(pid), Some(label), _) => write!(s, "  pid {pid} {label}").unwrap_or(()),
        (Some(pid), None, _) => write!(s, "  pid {pid}").unwrap_or(()),
        (None, _, Some(ino)) => write!(s, "  netns {ino}").unwrap_or(()),
    }
    s
}

fn interface_line(i: &Interface) -> String {
    let mut parts = vec![format!("  {:<15} {:<8}", i.name, i.state)];
    if let Some(m) = &i.master {
        parts.push(format!("master {m}"));
    }
    let addrs = addr_list(&i.addresses);
    if !addrs.is_empty() {
        parts.push(addrs);
    }
    if let Some(p) = &i.peer {
        parts.push(peer_text(p));
    }
    parts.join(" ").trim_end().to_owned()
}

/// The table: one row per namespace, its interfaces below it (unless `interfaces` is false).
pub fn table(listing: &Listing, columns: &[Column], headings: bool, interfaces: bool) -> String {
    let header: Vec<String> = columns.iter().map(|c| c.as_str().to_owned()).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    if headings {
        rows.push(header.clone());
    }
    let ns_rows: Vec<Vec<String>> =
        listing.namespaces.iter().map(|ns| columns.iter().map(|&c| cell(ns, listing.kind, c)).collect()).collect();
    rows.extend(ns_rows.iter().cloned());
    let widths: Vec<usize> =
        (0..columns.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let format_row = |row: &[String]| {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            let last = c + 1 == row.len();
            if last {
                line.push_str(value);
            } else if columns[c].right_aligned() {
                write!(line, "{value:>w$} ", w = widths[c]).unwrap_or(());
            } else {
                write!(line, "{value:<w$} ", w = widths[c]).unwrap_or(());
            }
        }
        line.trim_end().to_owned()
    };
    let mut out = String::new();
    if headings {
        out.push_str(&format_row(&header));
        out.push('\n');
    }
    for (ns, row) in listing.namespaces.iter().zip(&ns_rows) {
        out.push_str(&format_row(row));
        out.push('\n');
        if !interfaces {
            continue;
        }
        match (&ns.interfaces, &ns.error) {
            (Some(ifs), _) => {
                for i in ifs {
                    out.push_str(&interface_line(i));
                    out.push('\n');
                }
            }
            (None, Some(e)) => {
                out.push_str(&format!("  (interfaces not inspected: {e})\n"));
            }
            _ => {}
        }
    }
    out
}

fn bridge_head(b: &Bridge) -> String {
    let addrs = addr_list(&b.addresses);
    if addrs.is_empty() { b.name.clone() } else { format!("{} {addrs}", b.name) }
}

/// The topology: one line per bridge port, `BRIDGE ADDRS ── PORT ⇄ PEER  pid PID LABEL  ADDRS`.
pub fn topology(listing: &Listing) -> String {
    let mut namespaces: Vec<u64> = listing.bridges.iter().map(|b| b.netns).collect();
    namespaces.dedup();
    let several = namespaces.len() > 1;
    let mut out = String::new();
    for b in &listing.bridges {
        let suffix = if several {
            match (&b.label, b.pid) {
                (Some(l), _) => format!("  (netns {}, {l})", b.netns),
                (None, Some(p)) => format!("  (netns {}, pid {p})", b.netns),
                _ => format!("  (netns {})", b.netns),
            }
        } else {
            String::new()
        };
        let head = bridge_head(b);
        if b.ports.is_empty() {
            out.push_str(&format!("{head} ── (no ports){suffix}\n"));
        }
        for p in &b.ports {
            let mut line = format!("{head} ── {}", p.name);
            if p.state != OperState::Up {
                write!(line, " [{}]", p.state).unwrap_or(());
            }
            if let Some(peer) = &p.peer {
                write!(line, " {}", peer_text(peer)).unwrap_or(());
                let addrs = addr_list(&p.peer_addresses);
                if !addrs.is_empty() {
                    write!(line, "  {addrs}").unwrap_or(());
                }
            }
            out.push_str(&line);
            out.push_str(&suffix);
            out.push('\n');
        }
    }
    if out.is_empty() {
        out.push_str("(no bridges)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::Port;

    fn addr(cidr: &str) -> Address {
        Address { index: 0, cidr: cidr.into(), nodad: false, tentative: false, dadfailed: false, scope: Scope::Global }
    }

    #[test]
    fn topology_lines() {
        let listing = Listing {
            kind: NsType::Net,
            namespaces: vec![],
            bridges: vec![Bridge {
                name: "selftest0".into(),
                netns: 1,
                pid: Some(10),
                label: None,
                state: OperState::Up,
                addresses: vec![addr("10.53.57.11/24")],
                ports: vec![Port {
                    name: "veth21-br".into(),
                    state: OperState::Up,
                    peer: Some(Peer {
                        name: Some("veth21".into()),
                        index: 2,
                        netns: Some(2),
                        pid: Some(4242),
                        label: Some("ad_dc".into()),
                    }),
                    peer_addresses: vec![addr("10.53.57.21/24")],
                }],
            }],
            hidden_processes: 0,
        };
        assert_eq!(
            topology(&listing),
            "selftest0 10.53.57.11/24 ── veth21-br ⇄ veth21  pid 4242 ad_dc  10.53.57.21/24\n"
        );
    }
}
