//! The command line of veth-pair (its arguments, `--help` and what it does with them), as a
//! library so that man pages and shell completions can be generated from the same definitions.
//! `src/main.rs` only calls [`run`].

use clap::Parser;
use nstools::cli;
use nstools::impair::Impairment;
use nstools::netlink::link::parse_mac;
use nstools::signals::Deferred;
use nstools::veth::{EndSpec, VethSpec};
use nstools::{Cidr, IfName, Result, TargetSpec};
use std::ffi::OsString;
use std::str::FromStr;

/// The tool's name, as it prints it in messages.
pub const NAME: &str = "veth-pair";

/// The clap definition of the command line (for `--help`, man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

const EXAMPLES: &str = "\
Examples:
  # Samba's start_in_ns.sh, inside the testenv's fresh namespace: the peer goes to selftest's
  veth-pair veth21 --peer-netns \"$PARENT_PID\" --addr 10.53.57.21/24 --addr fd00::5357:5f15/112

  # From the selftest side, into a testenv made by ns-unshare
  veth-pair veth21 --netns \"$TESTENV_PID\" --addr 10.53.57.21/24

  # Ad hoc: a pair between two named namespaces, addresses on both ends, as JSON
  veth-pair v0 --netns blue --peer-name v1 --peer-netns red --addr 192.0.2.1/24 --peer-addr 192.0.2.2/24 --json

  # A slow, lossy testenv: what veth21 sends is delayed, dropped at random, capped (netem)
  veth-pair veth21 --netns \"$TESTENV_PID\" --delay 100ms --jitter 10ms --loss 1% --rate 10mbit

  # Change the impairments of an existing interface (any kind), or remove them
  veth-pair --shape veth21 --netns \"$TESTENV_PID\" --rate 8mbit
  veth-pair --shape veth21 --netns \"$TESTENV_PID\" --clear

  # Join the host to selftest's bridge; selftest's namespace routes by default through it
  veth-pair host0 --peer-netns \"$SELFTEST_PID\" --addr 10.53.57.254/24 --peer-default-route

  # Delete a pair (both ends go)
  veth-pair --delete v0 --netns blue

  # Then become a command (exec, no shell in between): the pair exists when it starts
  veth-pair veth21 -p \"$PARENT_PID\" --addr 10.53.57.21/24 -- ns-exec -t $$ --end-netns smbd

Targets (--netns, --peer-netns): a PID, PID:INODE (refused if the PID's network namespace is no
longer INODE), an nsfs path such as /proc/PID/ns/net, or a name under /run/netns.

Impairments apply to what NAME sends, as tc spells them: TIME 100ms, 1.5s, 250us; PERCENT 1%,
0.5%; RATE 10mbit, 512kbit, 1gbit (bits per second) or 125kbps (bytes per second). A rate
alone is shaped by tbf; delay, jitter and loss need the kernel's netem (sch_netem). 0 means
none. ns-ls shows them.
";

const WITH_CMD: &str = "  126  with CMD: CMD was found but could not be executed; the pair was deleted
  127  with CMD: CMD was not found; the pair was deleted
  otherwise, with CMD: CMD's own status (once the pair is made, veth-pair becomes CMD)";

/// Create a veth pair NAME / NAME-br in ONE netlink request, each end directly in its own
/// network namespace (no move afterwards), then add addresses and bring both ends and the
/// loopback of NAME's namespace up. If any step after creation fails, the pair is deleted.
#[derive(Debug, Parser)]
#[command(name = "veth-pair", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n{}\n{WITH_CMD}", cli::EXIT_STATUS))]
pub struct Cli {
    /// Name of the testenv end (at most 15 bytes)
    #[arg(value_name = "NAME", value_parser = IfName::new)]
    name: IfName,

    /// Name of the peer [default: NAME-br]
    #[arg(long, value_name = "NAME", value_parser = IfName::new)]
    peer_name: Option<IfName>,

    /// Namespace of NAME [default: the current one]
    #[arg(short = 'n', long, value_name = "TARGET", value_parser = TargetSpec::from_str)]
    netns: Option<TargetSpec>,

    /// Namespace of the peer [default: the current one]
    #[arg(short = 'p', long, value_name = "TARGET", value_parser = TargetSpec::from_str)]
    peer_netns: Option<TargetSpec>,

    /// Address for NAME, IPv4 or IPv6 (repeatable)
    #[arg(short, long = "addr", value_name = "CIDR", value_parser = Cidr::parse)]
    addrs: Vec<Cidr>,

    /// Address for the peer (repeatable)
    #[arg(long = "peer-addr", value_name = "CIDR", value_parser = Cidr::parse)]
    peer_addrs: Vec<Cidr>,

    /// Keep IPv6 duplicate address detection (by default addresses are usable at once)
    #[arg(long)]
    dad: bool,

    /// Leave both ends and lo down
    #[arg(long)]
    no_up: bool,

    /// MTU of both ends
    #[arg(long, value_parser = clap::value_parser!(u32).range(68..=65535))]
    mtu: Option<u32>,

    /// MAC address of NAME
    #[arg(long, value_parser = parse_mac)]
    mac: Option<[u8; 6]>,

    /// MAC address of the peer
    #[arg(long, value_parser = parse_mac)]
    peer_mac: Option<[u8; 6]>,

    /// Delay what NAME sends, e.g. 100ms (netem)
    #[arg(long, value_name = "TIME")]
    delay: Option<String>,

    /// Vary the delay by up to this, plus or minus, e.g. 10ms (with --delay)
    #[arg(long, value_name = "TIME")]
    jitter: Option<String>,

    /// Drop this share of what NAME sends, at random, e.g. 1% (netem)
    #[arg(long, value_name = "PERCENT")]
    loss: Option<String>,

    /// Limit what NAME sends to this rate, e.g. 10mbit (tbf; netem with the others)
    #[arg(long, value_name = "RATE")]
    rate: Option<String>,

    /// In the peer's namespace, a default route via NAME's first address of each family
    #[arg(long)]
    peer_default_route: bool,

    /// Print what was created as JSON (names, ifindexes, namespaces, addresses)
    #[arg(short = 'J', long)]
    json: bool,

    /// Instead of creating: delete the pair NAME (in --netns) belongs to
    #[arg(short, long, conflicts_with_all = ["peer_name", "peer_netns", "addrs", "peer_addrs", "dad", "no_up", "mtu", "mac", "peer_mac", "json", "delay", "jitter", "loss", "rate", "peer_default_route", "shape"])]
    delete: bool,

    /// With --delete: a missing NAME is success
    #[arg(long, requires = "delete")]
    missing_ok: bool,

    /// Instead of creating: set the impairments of the existing interface NAME (in --netns) to
    /// exactly those given (--delay, --jitter, --loss, --rate)
    #[arg(long, conflicts_with_all = ["peer_name", "peer_netns", "addrs", "peer_addrs", "dad", "no_up", "mtu", "mac", "peer_mac", "json", "peer_default_route"])]
    shape: bool,

    /// With --shape: remove NAME's impairments
    #[arg(long, requires = "shape", conflicts_with_all = ["delay", "jitter", "loss", "rate"])]
    clear: bool,

    /// Once the pair is made, become CMD (exec: same process, no shell in between); if CMD
    /// cannot be run, the pair is deleted (exit 126, or 127 when not found)
    #[arg(value_name = "CMD", last = true, conflicts_with_all = ["delete", "shape"])]
    then: Vec<OsString>,
}

impl Cli {
    /// The impairments of --delay, --jitter, --loss and --rate (exit code 2 naming the flag
    /// when a value is bad).
    fn impairment(&self) -> Result<Impairment> {
        Impairment::from_flags(
            self.delay.as_deref(),
            self.jitter.as_deref(),
            self.loss.as_deref(),
            self.rate.as_deref(),
        )
    }

    /// True if any of --delay, --jitter, --loss, --rate was given.
    fn impairs(&self) -> bool {
        self.delay.is_some() || self.jitter.is_some() || self.loss.is_some() || self.rate.is_some()
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    if cli.delete {
        nstools::veth::delete(&cli.name, cli.netns.as_ref(), cli.missing_ok)?;
        return Ok(0);
    }
    let impair = cli.impairment()?;
    if cli.shape {
        if !cli.impairs() && !cli.clear {
            return Err(nstools::Error::usage("--shape needs --delay, --jitter, --loss or --rate, or --clear")
                .hint("e.g. veth-pair --shape veth21 --rate 10mbit"));
        }
        nstools::veth::shape(&cli.name, cli.netns.as_ref(), &impair)?;
        return Ok(0);
    }
    let guard = Deferred::block()?;
    let peer_name = match cli.peer_name {
        Some(p) => p,
        None => cli.name.peer_of()?,
    };
    if peer_name == cli.name && cli.netns == cli.peer_netns {
        return Err(nstools::Error::usage(format!("invalid peer name {peer_name}"))
            .detail("both ends would have the same name in the same namespace"));
    }
    let spec = VethSpec {
        end: EndSpec { name: cli.name, netns: cli.netns, addrs: cli.addrs, mac: cli.mac },
        peer: EndSpec { name: peer_name, netns: cli.peer_netns, addrs: cli.peer_addrs, mac: cli.peer_mac },
        up: !cli.no_up,
        dad: cli.dad,
        mtu: cli.mtu,
        impair,
        peer_default_route: cli.peer_default_route,
    };
    let (report, log) = nstools::veth::create(&spec, &guard, cli.json)?;
    if cli.json {
        let printed = serde_json::to_string(&report)
            .map_err(|e| nstools::Error::new("cannot encode JSON").detail(e.to_string()))
            .and_then(|text| cli::print_line(&text));
        if let Err(e) = printed {
            // Nobody learns of the pair: remove it again, as after any other failure.
            return Err(log.rollback(e));
        }
    }
    if !cli.then.is_empty() {
        // The last moment a termination signal undoes the pair; once CMD runs, it is CMD's.
        if let Err(e) = guard.check("the pair was removed") {
            return Err(log.rollback(e));
        }
        let cmd = nstools::exec::Command::new(cli.then, Vec::new());
        return Err(log.rollback(nstools::exec::exec(&cmd)));
    }
    log.commit();
    guard.commit();
    Ok(0)
}
