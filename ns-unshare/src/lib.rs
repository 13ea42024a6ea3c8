//! The command line of ns-unshare (its arguments, `--help` and what it does with them), as a
//! library so that man pages and shell completions can be generated from the same definitions.
//! `src/main.rs` only calls [`run`].

use clap::Parser;
use nstools::holder::{self, HolderArgs, HolderSpec, Print};
use nstools::signals::Deferred;
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
    #[command(flatten)]
    args: HolderArgs,
}

/// The process a `--exit-with` target names: a pidfd (a namespace file names none).
fn process_of(target: &TargetSpec) -> Result<std::os::fd::OwnedFd> {
    let opened = nstools::netns::open_process(target)?.map(|(_, pidfd)| pidfd);
    opened.ok_or_else(|| {
        Error::usage(format!("{target} is not a process"))
            .detail("give a PID, PID:INODE or a holder's label: the holder exits with that process")
    })
}

pub fn run(Cli { args: cli }: Cli) -> Result<u8> {
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
    let spec = HolderSpec { exit_with, ..cli.spec() };
    let started = holder::start(&spec)?;
    if let Err(e) = guard.check("the holder was stopped; nothing is left") {
        started.abort();
        return Err(e);
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
