//! The command line of br-attach (its arguments, `--help` and what it does with them), as a
//! library so that man pages and shell completions can be generated from the same definitions.
//! `src/main.rs` only calls [`run`].

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use nstools::bridge::AttachSpec;
use nstools::cli;
use nstools::signals::Deferred;
use nstools::vxlan::{TunnelSpec, VNI_MAX};
use nstools::{Cidr, IfName, Result, TargetSpec};

/// The tool's name, as it prints it in messages.
pub const NAME: &str = "br-attach";

/// The clap definition of the command line (for `--help`, man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

const EXAMPLES: &str = "\
Examples:
  # Samba's create_bridge.sh selftest0 10.53.57.11 fd00::5357:5f0b
  br-attach --create --addr 10.53.57.11/24 --addr fd00::5357:5f0b/112

  # Samba's add_bridge_iface.sh veth21-br selftest0: wait (up to 120 s) for the testenv's peer
  br-attach --timeout 120 veth21-br

  # Ad hoc: a bridge br0, with two ports that may not exist yet
  br-attach --create --bridge br0 tap0 tap1

  # selftest0 stretched to two other hosts: tunnel vx42 (VXLAN 42, UDP 4789) in the selftest
  # namespace (PID 4242), its UDP socket in this one (the host's)
  br-attach --netns 4242 --vxlan 42 --remote 198.51.100.2 --remote 198.51.100.3
  br-attach --netns 4242 --vxlan 42 --delete
";

const TUNNEL_HELP: &str = "\
Tunnel: with --vxlan VNI, the bridge also gets a port to other hosts: a VXLAN tunnel vxVNI (the
kernel's Ethernet over UDP) to each --remote, one device whatever their number (a broadcast goes to
each; no loop in a mesh), with the bridge's MTU (what does not fit in one underlay packet is
fragmented, or answered \"fragmentation needed\" when sent with don't-fragment). Its UDP socket
lives in --underlay-netns (default: this namespace), the device next to the bridge; it goes when
either namespace ends, or with --delete. It prints the tunnel in `ip -d link`'s words. VXLAN has
no handshake: a wrong VNI or port on the other side is silence (ns-ls --topology then shows no
remote MAC learned).
";

/// The heading of the tunnel's options in --help.
const TUNNEL: &str = "A tunnel port to other hosts (VXLAN)";

const EXIT_EXTRA: &str = "  124  an interface did not appear within --timeout (what this run changed is undone)";

/// Attach interfaces to a bridge (default selftest0): wait until each exists - by netlink
/// notification, never by polling - then bring it up and make the bridge its master.
/// With --create, also create the bridge if it does not exist (idempotent), bring it and lo
/// up and add its addresses; with no IFACE it only does that.
#[derive(Debug, Parser)]
#[command(name = "br-attach", version, after_help = EXAMPLES,
          after_long_help = format!("{EXAMPLES}\n{}\n{EXIT_EXTRA}\n\n{TUNNEL_HELP}", cli::EXIT_STATUS))]
pub struct Cli {
    /// Interfaces to attach
    #[arg(value_name = "IFACE", value_parser = IfName::new)]
    ifaces: Vec<IfName>,

    /// The bridge
    #[arg(short, long, value_name = "NAME", default_value = "selftest0", value_parser = IfName::new)]
    bridge: IfName,

    /// Create the bridge if it does not exist, bring it and lo up
    #[arg(short, long)]
    create: bool,

    /// Address for the bridge (with --create; repeatable). IPv6 skips DAD unless --dad
    #[arg(short, long = "addr", value_name = "CIDR", value_parser = Cidr::parse, requires = "create")]
    addrs: Vec<Cidr>,

    /// Keep IPv6 duplicate address detection on the bridge's addresses
    #[arg(long, requires = "create")]
    dad: bool,

    /// Seconds to wait for each missing IFACE; 0: do not wait
    #[arg(short, long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: Duration,

    /// Work in this network namespace (PID, PID:INODE, nsfs path or /run/netns name)
    #[arg(short = 'n', long, value_name = "TARGET", value_parser = TargetSpec::from_str)]
    netns: Option<TargetSpec>,

    /// A VXLAN tunnel port vxVNI to other hosts (VNI 0..16777215)
    #[arg(help_heading = TUNNEL, long = "vxlan", value_name = "VNI", value_parser = clap::value_parser!(u32).range(0..=i64::from(VNI_MAX)))]
    vni: Option<u32>,

    /// The other host's underlay address (with --vxlan; repeatable)
    #[arg(help_heading = TUNNEL, long = "remote", value_name = "IP", requires = "vni", conflicts_with = "delete")]
    remotes: Vec<IpAddr>,

    /// The tunnel's source address (default: the route's)
    #[arg(help_heading = TUNNEL, long, value_name = "IP", requires = "vni", conflicts_with = "delete")]
    local: Option<IpAddr>,

    /// The tunnel's UDP port
    #[arg(help_heading = TUNNEL, long, value_name = "PORT", default_value_t = nstools::vxlan::DEFAULT_PORT, requires = "vni")]
    dstport: u16,

    /// The namespace of the tunnel's UDP socket, with a route to the remotes (default: this one)
    #[arg(help_heading = TUNNEL, long, value_name = "TARGET", value_parser = TargetSpec::from_str, requires = "vni", conflicts_with = "delete")]
    underlay_netns: Option<TargetSpec>,

    /// Delete the tunnel vxVNI (with --vxlan), with its remotes
    #[arg(help_heading = TUNNEL, long, requires = "vni", conflicts_with_all = ["ifaces", "create"])]
    delete: bool,
}

fn parse_secs(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is not a number of seconds from 0 up"))
}

pub fn run(cli: Cli) -> Result<u8> {
    if let (Some(vni), true) = (cli.vni, cli.delete) {
        nstools::vxlan::delete(vni, cli.netns.as_ref())?;
        return Ok(0);
    }
    if cli.ifaces.is_empty() && !cli.create && cli.vni.is_none() {
        return Err(nstools::Error::usage("nothing to do").detail("give interfaces to attach, or --create"));
    }
    let tunnel = cli.vni.map(|vni| TunnelSpec {
        vni,
        remotes: cli.remotes,
        local: cli.local,
        port: cli.dstport,
        underlay: cli.underlay_netns,
    });
    if let Some(t) = &tunnel {
        t.check()?;
    }
    let guard = Deferred::block()?;
    let spec = AttachSpec {
        bridge: cli.bridge,
        create: cli.create,
        addrs: cli.addrs,
        dad: cli.dad,
        ifaces: cli.ifaces,
        timeout: Some(cli.timeout),
        netns: cli.netns,
    };
    let report = nstools::bridge::run_with_tunnel(&spec, tunnel.as_ref(), &guard)?;
    if let Some(report) = report {
        cli::print_line(&report.to_string())?;
    }
    guard.commit();
    Ok(0)
}
