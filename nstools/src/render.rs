//! Text output of `ns-ls`: the lsns-style table (with interface lines), the topology, and the
//! topology as a Graphviz graph ([`dot`]).
//!
//! Impairments show as `[delay 100ms jitter 10ms loss 1%]`, `[rate 10Mbit]` (the text form of
//! [`Impairment`]) where an interface has one; nothing where none (lines without impairments
//! are as they always were).
//!
//! Text from outside (commands, labels, interface names) is shown with its control characters
//! escaped ([`escaped`], as `lsns` does): one row stays one line.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::impair::Impairment;
use crate::listing::{Bridge, Interface, Listing, Namespace, Pair, Peer, Port};
use crate::netlink::addr::Address;
use crate::vocab::{Column, NsType, OperState, Scope};

/// `text` with its control characters escaped as `lsns` escapes them (util-linux's
/// `mbs_safe_encode`): each byte of a control character as `\xHH` (a newline is `\x0a`, an
/// escape `\x1b`), and the `\` of a `\x` already in the text as `\x5c`, so that an escape
/// always means one. Everything else as it is; JSON keeps the real string.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_control() || (c == '\\' && chars.peek() == Some(&'x')) {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                write!(out, "\\x{b:02x}").unwrap_or(());
            }
        } else {
            out.push(c);
        }
    }
    out
}

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
        Column::Uplinks => {
            let uplinks: Vec<String> = ns
                .interfaces
                .iter()
                .flatten()
                .filter_map(|i| i.peer.as_ref()?.master.as_ref().map(|b| format!("{}:{b}", i.name)))
                .collect();
            if uplinks.is_empty() { "-".into() } else { uplinks.join(",") }
        }
    }
}

fn addr_list(addrs: &[Address]) -> String {
    addrs.iter().filter(|a| a.scope != Scope::Link).map(|a| a.cidr.as_str()).collect::<Vec<_>>().join(" ")
}

/// Where an interface is: `  pid PID LABEL`, `  netns INODE` or ` (namespace not visible)`.
fn place_text(pid: Option<i32>, label: &Option<String>, netns: Option<u64>) -> String {
    match (pid, label, netns) {
        (_, _, None) => " (namespace not visible)".into(),
        (Some(pid), Some(label), _) => format!("  pid {pid} {label}"),
        (Some(pid), None, _) => format!("  pid {pid}"),
        (None, _, Some(ino)) => format!("  netns {ino}"),
    }
}

fn peer_text(peer: &Peer) -> String {
    format!("⇄ {}{}", peer_name(peer), place_text(peer.pid, &peer.label, peer.netns))
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
    if let Some(imp) = &i.impairment {
        parts.push(format!("[{imp}]"));
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
    let ns_rows: Vec<Vec<String>> = listing
        .namespaces
        .iter()
        .map(|ns| columns.iter().map(|&c| escaped(&cell(ns, listing.kind, c))).collect())
        .collect();
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
                    out.push_str(&escaped(&interface_line(i)));
                    out.push('\n');
                }
            }
            (None, Some(e)) => {
                out.push_str(&escaped(&format!("  (interfaces not inspected: {e})")));
                out.push('\n');
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

/// `  [PORT: IMPAIRMENT] [PEER: IMPAIRMENT]`, the ends that have one; empty if none.
fn impairments_text(port: &str, peer: &str, imp: (Option<&Impairment>, Option<&Impairment>)) -> String {
    let parts: Vec<String> =
        [(port, imp.0), (peer, imp.1)].into_iter().filter_map(|(n, i)| i.map(|i| format!("[{n}: {i}]"))).collect();
    if parts.is_empty() { String::new() } else { format!("  {}", parts.join(" ")) }
}

/// The name of a veth's other end, as the topology shows it.
fn peer_name(peer: &Peer) -> String {
    peer.name.clone().unwrap_or_else(|| format!("#{}", peer.index))
}

/// The topology: its links, a line each, kind by kind (bridge ports, then veth pairs), control
/// characters escaped; `(no bridges)` when there is none.
pub fn topology(listing: &Listing) -> String {
    let mut out = String::new();
    for line in bridge_lines(listing).into_iter().chain(listing.pairs.iter().map(pair_line)) {
        out.push_str(&escaped(&line));
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("(no bridges)\n");
    }
    out
}

/// One line per bridge port, `BRIDGE ADDRS ── PORT ⇄ PEER  pid PID LABEL  ADDRS`, then the
/// impairments of either end: `  [PORT: rate 10Mbit] [PEER: delay 100ms]`.
fn bridge_lines(listing: &Listing) -> Vec<String> {
    let mut namespaces: Vec<u64> = listing.bridges.iter().map(|b| b.netns).collect();
    namespaces.dedup();
    let several = namespaces.len() > 1;
    let mut out = Vec::new();
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
            out.push(format!("{head} ── (no ports){suffix}"));
        }
        for p in &b.ports {
            let mut line = format!("{head} ── {}", p.name);
            if looks_down(p) {
                write!(line, " [{}]", p.state).unwrap_or(());
            }
            if let Some(tunnel) = &p.vxlan {
                write!(line, " ⇄ {tunnel}").unwrap_or(());
            }
            if let Some(peer) = &p.peer {
                write!(line, " {}", peer_text(peer)).unwrap_or(());
                let addrs = addr_list(&p.peer_addresses);
                if !addrs.is_empty() {
                    write!(line, "  {addrs}").unwrap_or(());
                }
            }
            let peer = p.peer.as_ref().map(peer_name).unwrap_or_default();
            line.push_str(&impairments_text(&p.name, &peer, (p.impairment.as_ref(), p.peer_impairment.as_ref())));
            line.push_str(&suffix);
            out.push(line);
        }
    }
    out
}

/// A port not UP, shown so; but a tunnel is UNKNOWN when working (it has no carrier to tell).
fn looks_down(p: &Port) -> bool {
    p.state != OperState::Up && !(p.vxlan.is_some() && p.state == OperState::Unknown)
}

/// A veth pair that joins two namespaces directly: `END  pid PID LABEL  ADDRS ⇄ PEER  pid PID
/// LABEL  ADDRS`, then the impairments of either end.
fn pair_line(p: &Pair) -> String {
    let mut line = p.name.clone();
    if p.state != OperState::Up {
        write!(line, " [{}]", p.state).unwrap_or(());
    }
    line.push_str(&place_text(p.pid, &p.label, Some(p.netns)));
    for (addrs, peer) in [(&p.addresses, None), (&p.peer_addresses, Some(&p.peer))] {
        if let Some(peer) = peer {
            write!(line, " {}", peer_text(peer)).unwrap_or(());
        }
        let addrs = addr_list(addrs);
        if !addrs.is_empty() {
            write!(line, "  {addrs}").unwrap_or(());
        }
    }
    line.push_str(&impairments_text(&p.name, &peer_name(&p.peer), (p.impairment.as_ref(), p.peer_impairment.as_ref())));
    line
}

/// The longest command shown as a namespace's title in [`dot`] (in characters).
const DOT_TITLE_MAX: usize = 40;

/// `text` as a DOT quoted string: control characters escaped as [`escaped`] escapes them, `"`
/// and `\` escaped; one escString line (Graphviz reads `\n`, `\l`... in labels, so a `\` of
/// the text is written `\\`). A final `\` would escape the closing quote in the DOT lexer
/// (it reads `\"` anywhere as a quote): a space follows it then.
fn dot_text(text: &str) -> String {
    let mut out = String::new();
    for c in escaped(text).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// Lines as one DOT quoted string, joined by `\n` (centred lines in a label).
fn dot_quote(lines: &[String]) -> String {
    let mut s = lines.iter().map(|l| dot_text(l)).collect::<Vec<_>>().join("\\n");
    if s.ends_with('\\') {
        s.push(' ');
    }
    format!("\"{s}\"")
}

/// A namespace in the picture: a cluster.
struct DotNs {
    title: String,
    pid: Option<i32>,
    inode: u64,
}

impl DotNs {
    /// How clusters (and so nodes and edges) are ordered: by title, PID, inode - not by inode
    /// alone, which the kernel recycles, so that the same topology draws the same.
    fn key(&self) -> (String, i32, u64) {
        (self.title.clone(), self.pid.unwrap_or(i32::MAX), self.inode)
    }

    fn label(&self) -> Vec<String> {
        let mut title = self.title.clone();
        if title.chars().count() > DOT_TITLE_MAX {
            title = title.chars().take(DOT_TITLE_MAX - 1).collect::<String>() + "…";
        }
        let place = match self.pid {
            Some(pid) => format!("pid {pid}, netns {}", self.inode),
            None => format!("netns {}", self.inode),
        };
        vec![title, place]
    }
}

/// An interface in the picture: a node.
#[derive(Default)]
struct DotIf {
    name: String,
    addrs: Vec<String>,
    bridge: bool,
    down: Option<String>,
}

/// A node's key: its namespace (`None`: not visible) and its name there.
type NodeKey = (Option<u64>, String);

/// The kinds of edge, each drawn its own way ([`EdgeKind::attrs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    /// A bridge to one of its ports.
    Member,
    /// The two ends of a veth, labelled with their impairments.
    Veth,
    /// A VXLAN tunnel port to a remote host, labelled with its VNI and UDP port.
    Tunnel,
}

impl EdgeKind {
    fn attrs(self, label: &[String]) -> Vec<String> {
        match self {
            EdgeKind::Member => Vec::new(),
            EdgeKind::Veth | EdgeKind::Tunnel => {
                let mut attrs = vec!["penwidth=2".to_owned()];
                if !label.is_empty() {
                    attrs.push(format!("label={}", dot_quote(label)));
                }
                attrs
            }
        }
    }
}

/// The picture being made: clusters by inode, nodes by (inode or none, name), edges by their two
/// nodes (each drawn once, whichever way round it was added first).
#[derive(Default)]
struct Picture {
    clusters: BTreeMap<u64, DotNs>,
    nodes: BTreeMap<NodeKey, DotIf>,
    edges: BTreeMap<(NodeKey, NodeKey), (EdgeKind, Vec<String>)>,
}

impl Picture {
    /// The cluster of namespace `inode`, titled by its label, else its command.
    fn cluster(&mut self, inode: u64, label: &Option<String>, command: &Option<String>, pid: Option<i32>) {
        self.clusters.entry(inode).or_insert_with(|| DotNs {
            title: label.clone().or_else(|| command.clone()).unwrap_or_else(|| "-".into()),
            pid,
            inode,
        });
    }

    /// The node `key`, added if new; it takes `addrs` if it has none yet (an interface seen
    /// both as a port and as a peer, between two bridges).
    fn node(&mut self, key: &NodeKey, addrs: &[Address]) -> &mut DotIf {
        let n = self.nodes.entry(key.clone()).or_insert_with(|| DotIf { name: key.1.clone(), ..DotIf::default() });
        if n.addrs.is_empty() {
            n.addrs = addrs.iter().filter(|a| a.scope != Scope::Link).map(|a| a.cidr.clone()).collect();
        }
        n
    }

    /// The node of a veth's other end (in its namespace's cluster, or loose when that is not
    /// visible: one per end `of` it is seen from).
    fn peer(&mut self, peer: &Peer, of: &str, addrs: &[Address]) -> NodeKey {
        let name = peer_name(peer);
        match peer.netns {
            Some(ino) => {
                self.cluster(ino, &peer.label, &peer.command, peer.pid);
                let key = (Some(ino), name);
                self.node(&key, addrs);
                key
            }
            None => {
                let key = (None, format!("{name} of {of}"));
                self.node(&key, addrs).name = format!("{name}\n(namespace not visible)");
                key
            }
        }
    }

    /// The edge `a -- b` of `kind`, unless it is there already (either way round).
    fn edge(&mut self, kind: EdgeKind, a: NodeKey, b: NodeKey, label: Vec<String>) {
        if !self.edges.contains_key(&(b.clone(), a.clone())) {
            self.edges.entry((a, b)).or_insert((kind, label));
        }
    }

    /// The veth between `end` (named `name`) and `peer`, labelled with their impairments.
    fn veth(&mut self, end: NodeKey, peer: NodeKey, imp: [(&str, Option<&Impairment>); 2]) {
        let label = imp.iter().filter_map(|(end, imp)| imp.map(|i| format!("{end}: {i}"))).collect();
        self.edge(EdgeKind::Veth, end, peer, label);
    }

    fn bridge(&mut self, b: &Bridge) {
        self.cluster(b.netns, &b.label, &b.command, b.pid);
        let br = (Some(b.netns), b.name.clone());
        self.node(&br, &b.addresses).bridge = true;
        for p in &b.ports {
            let port = (Some(b.netns), p.name.clone());
            let n = self.node(&port, &[]);
            if looks_down(p) {
                n.down = Some(p.state.to_string());
            }
            self.edge(EdgeKind::Member, br.clone(), port.clone(), Vec::new());
            self.tunnel(&port, p);
            let Some(peer) = &p.peer else { continue };
            let other = self.peer(peer, &p.name, &p.peer_addresses);
            // A veth between two bridges' ports is listed from both sides: drawn once.
            self.veth(port, other, [(&p.name, p.impairment.as_ref()), (&peer_name(peer), p.peer_impairment.as_ref())]);
        }
    }

    /// A tunnel port: an edge to each remote host, a node outside every namespace.
    fn tunnel(&mut self, port: &NodeKey, p: &Port) {
        let Some(t) = &p.vxlan else { return };
        for remote in &t.remotes {
            let host = (None, format!("host {remote}"));
            self.node(&host, &[]).name = format!("host {remote}\n(VXLAN remote)");
            self.edge(EdgeKind::Tunnel, port.clone(), host, vec![format!("VXLAN {}, UDP {}", t.vni, t.port)]);
        }
    }

    fn pair(&mut self, p: &Pair) {
        self.cluster(p.netns, &p.label, &p.command, p.pid);
        let end = (Some(p.netns), p.name.clone());
        let n = self.node(&end, &p.addresses);
        if p.state != OperState::Up {
            n.down = Some(p.state.to_string());
        }
        let other = self.peer(&p.peer, &p.name, &p.peer_addresses);
        self.veth(end, other, [(&p.name, p.impairment.as_ref()), (&peer_name(&p.peer), p.peer_impairment.as_ref())]);
    }
}

/// The topology as a Graphviz graph (`ns-ls --topology --dot`; render it with
/// `dot -Tsvg -o topology.svg`): a cluster per network namespace (its label or command, PID
/// and inode), a node per interface (name, addresses; bridges bold), an edge from each bridge
/// to each port, and a bold edge between the two ends of each veth (a port and its peer, or a
/// pair joining two namespaces directly), labelled with their impairments (`veth21-br: rate
/// 10Mbit`). Everything is sorted (namespaces by title, PID, inode; interfaces by name): the
/// same topology gives the same text.
pub fn dot(listing: &Listing) -> String {
    let mut pic = Picture::default();
    for b in &listing.bridges {
        pic.bridge(b);
    }
    for p in &listing.pairs {
        pic.pair(p);
    }
    let Picture { clusters, nodes, edges } = pic;

    let order = |key: &NodeKey| {
        let ns = key.0.and_then(|ino| clusters.get(&ino)).map(DotNs::key);
        (ns.is_none(), ns, key.1.clone())
    };
    let ids: BTreeMap<NodeKey, String> = nodes
        .keys()
        .map(|k| {
            let id = match k.0 {
                Some(ino) => format!("{ino}/{}", k.1),
                None => format!("?/{}", k.1),
            };
            (k.clone(), dot_quote(&[id]))
        })
        .collect();
    let node_line = |out: &mut String, indent: &str, key: &NodeKey| {
        let n = &nodes[key];
        let mut lines: Vec<String> = n.name.split('\n').map(str::to_owned).collect();
        lines.extend(n.addrs.iter().cloned());
        if let Some(state) = &n.down {
            lines.push(format!("[{state}]"));
        }
        let mut attrs = vec![format!("label={}", dot_quote(&lines))];
        if n.bridge {
            attrs.push("style=\"bold,rounded\"".into());
        }
        if n.down.is_some() {
            attrs.push("style=dashed".into());
        }
        writeln!(out, "{indent}{} [{}];", ids[key], attrs.join(", ")).unwrap_or(());
    };

    let mut out = String::from(
        "// ns-ls --topology --dot: bridges, their ports and veth peers, a cluster per network namespace.\n\
         // Render it with: dot -Tsvg -o topology.svg\n\
         graph topology {\n  \
         graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11];\n  \
         node [shape=box, fontname=\"Helvetica\", fontsize=10];\n  \
         edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    if listing.bridges.is_empty() && listing.pairs.is_empty() {
        out.push_str("  // (no bridges)\n");
    }
    let mut sorted_clusters: Vec<&DotNs> = clusters.values().collect();
    sorted_clusters.sort_by_key(|c| c.key());
    for c in sorted_clusters {
        writeln!(out, "\n  subgraph {} {{", dot_quote(&[format!("cluster_{}", c.inode)])).unwrap_or(());
        writeln!(out, "    label={};", dot_quote(&c.label())).unwrap_or(());
        out.push_str("    style=rounded;\n");
        let mut members: Vec<&NodeKey> = nodes.keys().filter(|k| k.0 == Some(c.inode)).collect();
        members.sort_by_key(|k| (!nodes[*k].bridge, k.1.clone()));
        for key in members {
            node_line(&mut out, "    ", key);
        }
        out.push_str("  }\n");
    }
    let loose: Vec<&NodeKey> = nodes.keys().filter(|k| k.0.is_none()).collect();
    if !loose.is_empty() {
        out.push('\n');
        for key in loose {
            node_line(&mut out, "  ", key);
        }
    }
    let mut lines: Vec<(_, String)> = edges
        .iter()
        .map(|((a, b), (kind, label))| {
            let attrs = kind.attrs(label);
            let attrs = if attrs.is_empty() { String::new() } else { format!(" [{}]", attrs.join(", ")) };
            ((order(a), order(b)), format!("  {} -- {}{attrs};\n", ids[a], ids[b]))
        })
        .collect();
    lines.sort();
    if !lines.is_empty() {
        out.push('\n');
    }
    for (_, line) in lines {
        out.push_str(&line);
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::Tunnel;

    fn addr(cidr: &str) -> Address {
        Address { index: 0, cidr: cidr.into(), nodad: false, tentative: false, dadfailed: false, scope: Scope::Global }
    }

    fn imp(d: Option<&str>, l: Option<&str>, r: Option<&str>) -> Option<Impairment> {
        Some(Impairment::from_flags(d, None, l, r).unwrap())
    }

    fn peer(name: &str, index: u32, netns: Option<u64>, pid: Option<i32>, label: Option<&str>) -> Option<Peer> {
        Some(Peer {
            name: Some(name.into()),
            index,
            netns,
            pid,
            label: label.map(str::to_owned),
            command: Some(format!("ns-unshare --name {}", label.unwrap_or("-"))),
            master: None,
        })
    }

    fn port(name: &str, peer: Option<Peer>, peer_addresses: &[&str]) -> Port {
        Port {
            name: name.into(),
            state: OperState::Up,
            peer,
            peer_addresses: peer_addresses.iter().map(|a| addr(a)).collect(),
            impairment: None,
            peer_impairment: None,
            vxlan: None,
        }
    }

    fn selftest(ports: Vec<Port>) -> Listing {
        Listing {
            kind: NsType::Net,
            namespaces: vec![],
            bridges: vec![Bridge {
                name: "selftest0".into(),
                netns: 1,
                pid: Some(10),
                label: None,
                state: OperState::Up,
                addresses: vec![addr("10.53.57.11/24")],
                ports,
                command: Some("perl selftest.pl".into()),
            }],
            pairs: vec![],
            hidden_processes: 0,
            warnings: vec![],
        }
    }

    #[test]
    fn topology_lines() {
        let listing = selftest(vec![port(
            "veth21-br",
            peer("veth21", 2, Some(2), Some(4242), Some("ad_dc")),
            &["10.53.57.21/24"],
        )]);
        assert_eq!(
            topology(&listing),
            "selftest0 10.53.57.11/24 ── veth21-br ⇄ veth21  pid 4242 ad_dc  10.53.57.21/24\n"
        );
    }

    #[test]
    fn a_tunnel_is_an_edge_to_each_remote_host() {
        let mut p = port("vx42", None, &[]);
        p.state = OperState::Unknown;
        let remotes = vec!["198.51.100.2".parse().unwrap()];
        p.vxlan = Some(Tunnel { vni: 42, remotes, local: None, port: 4789, learned: Vec::new() });
        let listing = selftest(vec![p]);
        assert_eq!(
            topology(&listing),
            "selftest0 10.53.57.11/24 ── vx42 ⇄ VXLAN 42 to 198.51.100.2 (UDP 4789, no remote MAC learned)\n"
        );
        let dot = dot(&listing);
        assert!(dot.contains("  \"?/host 198.51.100.2\" [label=\"host 198.51.100.2\\n(VXLAN remote)\"];\n"), "{dot}");
        assert!(
            dot.contains("  \"1/vx42\" -- \"?/host 198.51.100.2\" [penwidth=2, label=\"VXLAN 42, UDP 4789\"];\n"),
            "{dot}"
        );
        assert!(!dot.contains("dashed"), "{dot}");
    }

    #[test]
    fn impairments_end_the_lines() {
        let mut p = port("veth21-br", peer("veth21", 2, Some(2), Some(4242), Some("ad_dc")), &["10.53.57.21/24"]);
        p.impairment = imp(None, None, Some("10mbit"));
        p.peer_impairment = imp(Some("100ms"), Some("1%"), None);
        let mut q = port("veth22-br", peer("veth22", 2, Some(3), Some(4243), Some("fs")), &[]);
        q.peer_impairment = imp(None, None, Some("8mbit"));
        assert_eq!(
            topology(&selftest(vec![p, q])),
            "selftest0 10.53.57.11/24 ── veth21-br ⇄ veth21  pid 4242 ad_dc  10.53.57.21/24  \
             [veth21-br: rate 10Mbit] [veth21: delay 100ms loss 1%]\n\
             selftest0 10.53.57.11/24 ── veth22-br ⇄ veth22  pid 4243 fs  [veth22: rate 8Mbit]\n"
        );
        let mut i = Interface {
            name: "veth21".into(),
            index: 2,
            kind: Some(crate::vocab::LinkKind::Veth),
            state: OperState::Up,
            up: true,
            mtu: Some(1500),
            mac: None,
            master: None,
            addresses: vec![addr("10.53.57.21/24")],
            peer: peer("veth21-br", 5, Some(1), Some(10), None),
            impairment: None,
            vxlan: None,
        };
        assert_eq!(interface_line(&i), "  veth21          UP       10.53.57.21/24 ⇄ veth21-br  pid 10");
        i.impairment = imp(Some("100ms"), None, None);
        assert_eq!(interface_line(&i), "  veth21          UP       10.53.57.21/24 ⇄ veth21-br  pid 10 [delay 100ms]");
    }

    #[test]
    fn control_characters_escaped_as_lsns_does() {
        assert_eq!(escaped("plain é ⇄"), "plain é ⇄");
        assert_eq!(escaped("a\nb\tc\u{1b}[1m\u{7f}\u{85}"), "a\\x0ab\\x09c\\x1b[1m\\x7f\\xc2\\x85");
        // A `\x` of the text itself is told apart from an escape; other backslashes stay.
        assert_eq!(escaped("C:\\x41 a\\b"), "C:\\x5cx41 a\\b");
    }

    #[test]
    fn pair_lines() {
        let p = Pair {
            name: "v0-br".into(),
            netns: 1,
            pid: Some(10),
            label: None,
            command: Some("bash".into()),
            state: OperState::Up,
            addresses: vec![addr("192.0.2.2/24")],
            impairment: None,
            peer: peer("v0", 2, Some(2), Some(4242), Some("lab")).unwrap(),
            peer_addresses: vec![addr("192.0.2.1/24")],
            peer_impairment: imp(None, None, Some("8mbit")),
        };
        assert_eq!(pair_line(&p), "v0-br  pid 10  192.0.2.2/24 ⇄ v0  pid 4242 lab  192.0.2.1/24  [v0: rate 8Mbit]");
        let mut listing = selftest(vec![]);
        listing.bridges.clear();
        assert_eq!(topology(&listing), "(no bridges)\n");
        listing.pairs.push(Pair { peer: peer("v0", 2, None, None, None).unwrap(), peer_addresses: vec![], ..p });
        assert_eq!(topology(&listing), "v0-br  pid 10  192.0.2.2/24 ⇄ v0 (namespace not visible)  [v0: rate 8Mbit]\n");
    }

    #[test]
    fn dot_quoting() {
        assert_eq!(dot_quote(&["plain".into()]), "\"plain\"");
        assert_eq!(dot_quote(&["a\"b".into(), "c\\d".into()]), r#""a\"b\nc\\d""#);
        // A final backslash must not escape the closing quote.
        assert_eq!(dot_quote(&["end\\".into()]), r#""end\\ ""#);
        // Control characters are escaped (as lsns does), and their backslash with them.
        assert_eq!(dot_quote(&["x\ny\u{1b}".into()]), r#""x\\x0ay\\x1b""#);
    }

    #[test]
    fn dot_graph() {
        let mut p = port("veth21-br", peer("veth21", 2, Some(2), Some(4242), Some("ad_dc")), &["10.53.57.21/24"]);
        p.peer_impairment = imp(None, None, Some("8mbit"));
        let mut down = port("veth23-br", peer("veth23", 2, None, None, None), &[]);
        down.state = OperState::Down;
        let odd = port("veth22-br", peer("veth22", 2, Some(3), Some(4243), Some("odd\"label\\")), &[]);
        let got = dot(&selftest(vec![p, down, odd]));
        let expected = r#"// ns-ls --topology --dot: bridges, their ports and veth peers, a cluster per network namespace.
// Render it with: dot -Tsvg -o topology.svg
graph topology {
  graph [rankdir=LR, fontname="Helvetica", fontsize=11];
  node [shape=box, fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];

  subgraph "cluster_2" {
    label="ad_dc\npid 4242, netns 2";
    style=rounded;
    "2/veth21" [label="veth21\n10.53.57.21/24"];
  }

  subgraph "cluster_3" {
    label="odd\"label\\\npid 4243, netns 3";
    style=rounded;
    "3/veth22" [label="veth22"];
  }

  subgraph "cluster_1" {
    label="perl selftest.pl\npid 10, netns 1";
    style=rounded;
    "1/selftest0" [label="selftest0\n10.53.57.11/24", style="bold,rounded"];
    "1/veth21-br" [label="veth21-br"];
    "1/veth22-br" [label="veth22-br"];
    "1/veth23-br" [label="veth23-br\n[DOWN]", style=dashed];
  }

  "?/veth23 of veth23-br" [label="veth23\n(namespace not visible)"];

  "1/selftest0" -- "1/veth21-br";
  "1/selftest0" -- "1/veth22-br";
  "1/selftest0" -- "1/veth23-br";
  "1/veth21-br" -- "2/veth21" [penwidth=2, label="veth21: rate 8Mbit"];
  "1/veth22-br" -- "3/veth22" [penwidth=2];
  "1/veth23-br" -- "?/veth23 of veth23-br" [penwidth=2];
}
"#;
        assert_eq!(got, expected, "{got}");
        let empty = Listing {
            kind: NsType::Net,
            namespaces: vec![],
            bridges: vec![],
            pairs: vec![],
            hidden_processes: 0,
            warnings: vec![],
        };
        assert!(dot(&empty).contains("graph topology {\n") && dot(&empty).contains("  // (no bridges)\n}\n"));
    }
}
