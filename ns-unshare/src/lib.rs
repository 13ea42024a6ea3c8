//! The command line of ns-unshare (its arguments, `--help` and what it does with them), as a
//! library so that man pages and shell completions can be generated from the same definitions.
//! `src/main.rs` only calls [`run`].

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, ValueEnum};
use nstools::holder::{self, HolderSpec};
use nstools::signals::{Deferred, interrupted};
use nstools::{Error, Result, TargetSpec, cli};

/// The tool's name, as it prints it in messages.
pub const NAME: &str = "ns-unshare";

/// The clap definition of the command line (for `--help`, man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

const EXAMPLES: &str = "\
Examples:
  # A testenv namespace; enter it with ns-exec
  pid=$(ns-unshare --name ad_dc)
  ns-exec -t \"$pid\" ip -br addr

  # Samba: run samba in a fresh network namespace
  ns-unshare | ns-exec samba -i

  # Rootless, as Samba's selftest runs: the caller becomes root in a new user namespace
  ns-unshare --map-root-user --name selftest

  # Tie the namespace to the test run, and print a target that survives PID reuse
  ns-unshare --exit-with $$ --print pid:inode

  # Ad hoc: persist it for 'ip netns exec lab ...'; remove with: ip netns delete lab
  ns-unshare --bind /run/netns/lab

  # End it: the namespace goes with its holder (--stop also waits until it is gone)
  kill \"$pid\"
  ns-unshare --stop \"$pid\"

  # A label is a name for the holder: every tool takes it as a target
  ns-unshare --name lab; ns-exec -t lab ip -br addr; ns-unshare --stop lab

How long it lives: piped into ns-exec (ns-unshare | ns-exec CMD) the holder ends when CMD ends,
as with 'unshare --net CMD'; otherwise until it is stopped (--stop, SIGTERM), its --exit-with
process exits, or its --bind mount is removed (ip netns delete NAME).
";

/// Create new namespaces (network always; user, mount, UTS, IPC, PID on request), kept alive by
/// a tiny holder process, and print the holder's PID once they are ready (loopback up).
/// The holder runs in its own session with no terminal or pipes open, and exits on SIGTERM,
/// SIGINT or SIGHUP; the namespaces go with it (except a --bind mount).
#[derive(Debug, Parser)]
#[command(name = "ns-unshare", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n{}", cli::EXIT_STATUS))]
pub struct Cli {
    /// A new network namespace: always made (accepted for util-linux unshare compatibility)
    #[arg(short, long)]
    net: bool,

    /// Also a new user namespace (created first: it owns the others)
    #[arg(short = 'U', long)]
    user: bool,

    /// Map the caller to root in a new user namespace (implies --user)
    #[arg(short = 'r', long)]
    map_root_user: bool,

    /// Also a new mount namespace (private propagation, a fresh /sys)
    #[arg(short, long)]
    mount: bool,

    /// Also a new UTS namespace
    #[arg(short, long)]
    uts: bool,

    /// Hostname inside (implies --uts)
    #[arg(long, value_name = "NAME", value_parser = parse_hostname)]
    hostname: Option<String>,

    /// Also a new IPC namespace
    #[arg(short, long)]
    ipc: bool,

    /// Also a new PID namespace, the holder as its PID 1 (with --mount: a fresh /proc)
    #[arg(short, long)]
    pid: bool,

    /// Bind SRC over DEST in the new mount namespace (repeatable; implies --mount)
    #[arg(long = "bind-file", value_name = "SRC:DEST", value_parser = parse_bind_file)]
    bind_files: Vec<(PathBuf, PathBuf)>,

    /// Leave the loopback interface down
    #[arg(long)]
    no_lo: bool,

    /// A label for the namespace, shown by ns-ls
    #[arg(long, value_name = "LABEL")]
    name: Option<String>,

    /// Exit when this process exits (no polling: a pidfd): a PID, PID:INODE, or a holder's label
    #[arg(long, value_name = "PID", value_parser = TargetSpec::from_str)]
    exit_with: Option<TargetSpec>,

    /// Also persist the network namespace at PATH (a bind mount, e.g. /run/netns/NAME);
    /// remove it with 'umount PATH; rm PATH' (or 'ip netns delete NAME')
    #[arg(long, value_name = "PATH")]
    bind: Option<PathBuf>,

    /// Print a JSON object instead of the PID
    #[arg(short = 'J', long, conflicts_with = "print")]
    json: bool,

    /// What to print
    #[arg(long, value_enum, default_value_t = Print::Pid)]
    print: Print,

    /// Instead of creating: stop these holders (SIGTERM) and wait until they are gone; a PID,
    /// PID:INODE, or a holder's label
    #[arg(long, value_name = "PID", num_args = 1.., value_parser = TargetSpec::from_str, exclusive = true)]
    stop: Vec<TargetSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Print {
    /// The holder's PID
    Pid,
    /// PID:INODE, a target that survives PID reuse (ns-exec, veth-pair, nsenter 2.42+)
    #[value(name = "pid:inode")]
    PidInode,
}

fn parse_hostname(s: &str) -> std::result::Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !s.starts_with('-');
    ok.then(|| s.to_owned()).ok_or_else(|| "a hostname is 1-64 letters, digits, '-', '_' or '.'".to_owned())
}

fn parse_bind_file(s: &str) -> std::result::Result<(PathBuf, PathBuf), String> {
    match s.split_once(':') {
        Some((src, dest)) if !src.is_empty() && !dest.is_empty() => Ok((src.into(), dest.into())),
        _ => Err("expected SRC:DEST, e.g. /tmp/env/resolv.conf:/etc/resolv.conf".to_owned()),
    }
}

/// The process a `--exit-with` target names: a pidfd (a namespace file names none).
fn process_of(target: &TargetSpec) -> Result<std::os::fd::OwnedFd> {
    let opened = nstools::netns::open_process(target)?.map(|(_, pidfd)| pidfd);
    opened.ok_or_else(|| {
        Error::usage(format!("{target} is not a process"))
            .detail("give a PID, PID:INODE or a holder's label: the holder exits with that process")
    })
}

pub fn run(cli: Cli) -> Result<u8> {
    let _always_a_network_namespace = cli.net;
    if !cli.stop.is_empty() {
        holder::stop(&cli.stop, std::time::Duration::from_secs(10))?;
        return Ok(0);
    }
    let guard = Deferred::block()?;
    if cli.name.as_deref().is_some_and(|n| n.is_empty() || n.contains(['\n', '\0'])) {
        return Err(Error::usage("invalid --name").detail("a label is one non-empty line"));
    }
    let exit_with = match &cli.exit_with {
        Some(t) => Some(process_of(t).map_err(|e| e.context("--exit-with"))?),
        None => None,
    };
    let spec = HolderSpec {
        user: cli.user || cli.map_root_user,
        map_root: cli.map_root_user,
        mount: cli.mount || !cli.bind_files.is_empty(),
        uts: cli.uts || cli.hostname.is_some(),
        hostname: cli.hostname,
        ipc: cli.ipc,
        pid: cli.pid,
        lo_up: !cli.no_lo,
        exit_with,
        bind: cli.bind,
        bind_files: cli.bind_files,
    };
    let started = holder::start(&spec)?;
    if let Some(signal) = guard.pending() {
        started.abort();
        return Err(interrupted(signal, "the holder was stopped; nothing is left"));
    }
    let line = if cli.json {
        serde_json::to_string(&started.report(cli.name.as_deref()))
            .map_err(|e| Error::new("cannot encode JSON").detail(e.to_string()))?
    } else if cli.print == Print::PidInode {
        format!("{}:{}", started.pid, started.netns())
    } else {
        started.pid.to_string()
    };
    if let Err(e) = cli::print_line(&line) {
        started.abort();
        return Err(e);
    }
    started.commit()?;
    guard.commit();
    Ok(0)
}
