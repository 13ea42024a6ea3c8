//! The command line of ns-ls (its arguments, `--help` and what it does with them), as a
//! library so that man pages and shell completions can be generated from the same definitions.
//! `src/main.rs` only calls [`run`].

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use nstools::listing::{Query, list};
use nstools::render::{dot, table, topology};
use nstools::vocab::Column;
use nstools::vocab::NsType;
use nstools::{Error, Result, cli};

/// The tool's name, as it prints it in messages.
pub const NAME: &str = "ns-ls";

/// The clap definition of the command line (for `--help`, man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

const EXAMPLES: &str = "\
Examples:
  # Every network namespace, its holder or command, and its interfaces
  ns-ls

  # Samba's testenvs at a glance: each bridge port, the veth peer, its namespace and addresses
  ns-ls --topology

  # For scripts: only namespaces held by ns-unshare, as JSON
  ns-ls --owned --json | jq '.namespaces[] | {pid, label}'

  # Ad hoc: one namespace, chosen columns, like lsns
  ns-ls -p \"$NS_PID\" -o NS,PID,LABEL,IFACES

  # The PID of the holder labelled ad_dc, for scripts
  ns-ls --label ad_dc -n -o PID --no-interfaces

  # The namespace of Samba's selftest (the one holding selftest0), to look inside it
  ns-exec -t \"$(ns-ls --bridge selftest0 -n -o PID --no-interfaces)\" ns-ls --topology

  # A testenv's veths to a bridge, for scripts: veth21:selftest0
  ns-ls -p \"$TESTENV_PID\" -n -o UPLINKS --no-interfaces

  # A picture of it: namespaces, bridges, ports, veth peers, addresses and impairments
  ns-ls --topology --dot | dot -Tsvg -o topology.svg

  # Impairments (veth-pair --delay/--loss/--rate/--shape) show at the end of a line: in the
  # table '[delay 100ms jitter 10ms loss 1%]', in the topology '[veth21: rate 10Mbit]', and
  # in the JSON as each interface's \"impairment\"
  ns-ls --json | jq '.namespaces[].interfaces[]? | select(.impairment) | {name, impairment}'
";

/// List network namespaces (other types with -t, as lsns does): inode, a process in it (the
/// ns-unshare holder if any), process count, label or command, and its interfaces with state,
/// addresses, master and veth peer. Rootless, it lists what the caller can see and says what
/// it could not inspect.
#[derive(Debug, Parser)]
#[command(name = "ns-ls", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n{}", columns_help()))]
pub struct Cli {
    /// Namespace type: net, user, mnt, uts, ipc, pid, cgroup, time
    #[arg(short, long, value_name = "TYPE", default_value = "net",
          value_parser = PossibleValuesParser::new(NsType::NAMES).try_map(|s| s.parse::<NsType>()))]
    r#type: NsType,

    /// Only the namespace of process PID
    #[arg(short = 'p', long, visible_alias = "pid", value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    task: Option<i32>,

    /// Only namespaces held by ns-unshare
    #[arg(long)]
    owned: bool,

    /// Only the namespaces whose holder has this label (ns-unshare --name)
    #[arg(short, long, value_name = "LABEL")]
    label: Option<String>,

    /// Only the namespaces that hold a bridge of this name (e.g. selftest's: selftest0)
    #[arg(short, long, value_name = "NAME")]
    bridge: Option<String>,

    /// The bridge topology: bridges, ports, veth peers and their namespaces
    #[arg(long, conflicts_with_all = ["json", "output"])]
    topology: bool,

    /// With --topology: as a Graphviz graph (render it with dot -Tsvg)
    #[arg(long, requires = "topology")]
    dot: bool,

    /// JSON output (stable; see the README)
    #[arg(short = 'J', long)]
    json: bool,

    /// Columns of the table (see below)
    #[arg(short, long, value_name = "LIST", value_parser = parse_cols)]
    output: Option<Columns>,

    /// No header line
    #[arg(short, long)]
    noheadings: bool,

    /// Namespace rows only, without interface lines
    #[arg(long)]
    no_interfaces: bool,
}

/// A column list (a newtype: clap would take a `Vec` for repeated values).
#[derive(Debug, Clone)]
struct Columns(Vec<Column>);

fn parse_cols(s: &str) -> std::result::Result<Columns, String> {
    Column::parse_list(s).map(Columns)
}

fn columns_help() -> String {
    let mut s = format!("Columns (-o, default {}):\n", Column::list(&Column::DEFAULT));
    let width = Column::ALL.iter().map(|c| c.as_str().len()).max().unwrap_or(8);
    for column in Column::ALL {
        s.push_str(&format!("  {:<width$} {}\n", column.as_str(), column.help()));
    }
    s.push('\n');
    s.push_str(cli::EXIT_STATUS);
    s
}

/// What to read for `cli`: interfaces only where an output needs them, and their impairments
/// (a qdisc dump per namespace) only where one shows them: interface lines, the topology, JSON.
fn query(cli: &Cli) -> Query {
    let impairments = cli.json || cli.topology || !cli.no_interfaces;
    Query {
        kind: cli.r#type,
        pid: cli.task,
        owned: cli.owned,
        label: cli.label.clone(),
        bridge: cli.bridge.clone(),
        interfaces: impairments
            || cli.bridge.is_some()
            || cli.output.as_ref().is_some_and(|c| c.0.contains(&Column::Ifaces) || c.0.contains(&Column::Uplinks)),
        impairments,
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    // A listing is all or nothing. Termination signals are held back from the start, so that
    // none is taken by a helper thread (they inherit the mask) or anywhere but here: one that
    // came while listing ends the run silently before anything is printed, as it would have at
    // once; one that comes later is discarded, and the listing printed whole exits 0.
    let output = nstools::signals::Deferred::block()?;
    let listing = list(&query(&cli))?;
    let text = if cli.json {
        serde_json::to_string_pretty(&listing).map_err(|e| Error::new("cannot encode JSON").detail(e.to_string()))?
    } else if cli.dot {
        dot(&listing).trim_end().to_owned()
    } else if cli.topology {
        topology(&listing).trim_end().to_owned()
    } else {
        let columns = cli.output.map_or_else(|| Column::DEFAULT.to_vec(), |c| c.0);
        table(&listing, &columns, !cli.noheadings, !cli.no_interfaces).trim_end().to_owned()
    };
    if let Some(signal) = output.pending() {
        nstools::signals::die_of(signal);
    }
    if !text.is_empty() {
        // No rows and no header (-n): no output at all, as lsns (not an empty line).
        cli::print_line(&text)?;
    }
    // For people reading the table (scripts use -n or --json): what could not be seen.
    // (As root, the few unreadable ones are special processes, not other users'.)
    if listing.hidden_processes > 0
        && !cli.json
        && !cli.topology
        && !cli.noheadings
        && !nix::unistd::geteuid().is_root()
    {
        cli::print_line(&format!(
            "({} processes of other users could not be inspected: permission denied; run as root to see all)",
            listing.hidden_processes
        ))?;
    }
    // What could not be read (the listing shows the rest): a warning each, and still exit 0.
    for warning in &listing.warnings {
        eprintln!("{NAME}: warning: {}", cli::printable(warning));
    }
    output.commit();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_of(args: &str) -> Query {
        query(&Cli::parse_from(std::iter::once("ns-ls").chain(args.split_whitespace())))
    }

    #[test]
    fn qdiscs_are_dumped_only_for_what_shows_impairments() {
        for shown in ["", "--topology", "--topology --dot", "-J", "-p 1", "--bridge selftest0"] {
            let q = query_of(shown);
            assert!(q.interfaces && q.impairments, "ns-ls {shown}");
        }
        // testenv's and scripts' look-ups: interfaces without impairments, or neither.
        for (args, interfaces) in [
            ("--bridge selftest0 -n -o PID --no-interfaces", true),
            ("-p 1 -n -o UPLINKS --no-interfaces", true),
            ("-o NS,IFACES --no-interfaces", true),
            ("--owned -n -o PID,EXITWITH,LABEL --no-interfaces", false),
        ] {
            let q = query_of(args);
            assert_eq!((q.interfaces, q.impairments), (interfaces, false), "ns-ls {args}");
        }
    }
}
