//! The command line of ns-exec (its arguments, `--help` and what it does with them), as a
//! library so that man pages and shell completions can be generated from the same definitions.
//! `src/main.rs` only calls [`run`].

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;
use nstools::capture::{self, Capture, CaptureFile};
use nstools::end::Ending;
use nstools::enter::{EnterSpec, enter};
use nstools::error::exit;
use nstools::exec::{Alongside, Command, exec, fork_and_wait};
use nstools::vocab::NsType;
use nstools::{Error, Result, TargetSpec, envfile};

/// The tool's name, as it prints it in messages.
pub const NAME: &str = "ns-exec";

/// The clap definition of the command line (for `--help`, man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// With `--capture --end-netns`: how long the capture waits for what is left in the namespace
/// to end (after SIGTERM) before the veth pairs go.
const LEFTOVERS_RECORDED: std::time::Duration = std::time::Duration::from_secs(1);

/// Exit code for ns-exec's own failures (usage included), as command runners do.
pub const OWN_FAILURE: u8 = exit::EXEC_FAILED;

const EXAMPLES: &str = "\
Examples:
  # Samba: run samba in a fresh network namespace (the target comes from stdin); the namespace
  # lives as long as samba, as with 'unshare --net samba -i'
  ns-unshare | ns-exec samba -i

  # Look inside a testenv; from the user's own shell too, when the testenv was made inside
  # 'unshare --user --map-root-user' (its user namespace is entered automatically)
  ns-exec -t \"$(ns-unshare --name ad_dc)\" ip -br addr

  # Samba's nsenter.sh: a shell in the testenv with its exports loaded as data
  ns-exec -t \"$NS_PID\" --env-file \"$TESTENV_DIR/exports.sh\" -- \"$SHELL\"

  # Ad hoc: a target that survives PID reuse, and a named namespace (ip netns)
  ns-exec -t 4242:4026532841 ping -c1 10.53.57.11
  ns-exec -t lab ip route

  # Record the namespace's traffic while the command runs; read it with tshark -r lab.pcap
  ns-exec -t lab --capture lab.pcap -- ping -c3 10.0.0.2
";

const EXIT_STATUS: &str = "\
Exit status:
  CMD's own status (if CMD dies of a signal, ns-exec dies of it too)
  125  ns-exec itself failed (bad arguments, target, or namespace); nothing was run
  126  CMD was found but could not be executed
  127  CMD was not found";

/// Run CMD (default $SHELL, then /bin/sh) inside the namespaces of TARGET: the network namespace
/// by default, others on request. With no -t, the target is read from stdin (one line, e.g.
/// from ns-unshare) and CMD gets /dev/null as stdin; otherwise stdin passes through untouched.
/// When the target's network namespace belongs to a user namespace in which the caller has no
/// privilege, that user namespace is entered first, keeping the caller's credentials.
#[derive(Debug, Parser)]
#[command(name = "ns-exec", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n{EXIT_STATUS}"))]
pub struct Cli {
    /// PID, PID:INODE, nsfs path or /run/netns name [default: read from stdin]
    #[arg(short, long, value_name = "TARGET", value_parser = TargetSpec::from_str)]
    target: Option<TargetSpec>,

    /// Enter the network namespace (the default when no type is given)
    #[arg(short, long)]
    net: bool,

    /// Enter the user namespace (and become root there, unless --preserve-credentials)
    #[arg(short = 'U', long)]
    user: bool,

    /// Enter the mount namespace
    #[arg(short, long)]
    mount: bool,

    /// Enter the UTS namespace
    #[arg(short, long)]
    uts: bool,

    /// Enter the IPC namespace
    #[arg(short, long)]
    ipc: bool,

    /// Enter the PID namespace (CMD then runs as a child of ns-exec)
    #[arg(short, long)]
    pid: bool,

    /// Enter every namespace of the target that differs from ours
    #[arg(short, long)]
    all: bool,

    /// With --user, keep the caller's UID and GID
    #[arg(long)]
    preserve_credentials: bool,

    /// Load KEY=VALUE lines into CMD's environment, as data (Samba's exports file)
    #[arg(short, long, value_name = "FILE")]
    env_file: Vec<PathBuf>,

    /// Working directory for CMD
    #[arg(short, long, value_name = "DIR")]
    wd: Option<PathBuf>,

    /// Send CMD SIGTERM when this process exits (CMD then runs as a child; a pidfd, no polling):
    /// a PID, PID:INODE, or a holder's label
    #[arg(long, value_name = "PID", value_parser = TargetSpec::from_str)]
    exit_with: Option<TargetSpec>,

    /// When CMD ends, end the target's network namespace with it: SIGTERM what is left in it and
    /// delete its veth pairs. CMD runs as a child that gets every signal passed on; ns-exec exits
    /// with its status, 128+N if signal N ended it (as a shell reports it)
    #[arg(long)]
    end_netns: bool,

    /// Record all traffic of the target's network namespace (every interface, loopback
    /// included) while CMD runs, into FILE (pcapng, for tshark, tcpdump and Wireshark). CMD runs
    /// as a child; the file is complete when ns-exec exits, also after a signal
    #[arg(long, value_name = "FILE")]
    capture: Option<PathBuf>,

    /// With --capture: record only this interface, in promiscuous mode (a bridge then shows
    /// what it forwards between its ports)
    #[arg(long, value_name = "IFACE", requires = "capture")]
    capture_interface: Option<String>,

    /// With --capture: record only what this filter in tcpdump's syntax accepts (e.g. 'tcp
    /// port 445'; compiled by tcpdump for Ethernet framing, run in the kernel)
    #[arg(long, value_name = "FILTER", requires = "capture")]
    capture_filter: Option<String>,

    /// Write a line ("ready") to descriptor FD and close it once everything is set up (the
    /// namespaces entered, the capture open), just before CMD starts; CMD does not inherit it.
    /// If ns-exec fails first, FD only closes. For scripts: ready=$(ns-exec --ready-fd 3 ...
    /// 3>&1 >/dev/null &)
    #[arg(long, value_name = "FD")]
    ready_fd: Option<i32>,

    /// The command and its arguments
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    cmd: Vec<OsString>,
}

/// The target from stdin: exactly one line (a target, or ns-unshare's --json object).
fn target_from_stdin() -> Result<TargetSpec> {
    let no_target = || Error::usage("no target").hint("give -t TARGET, or pipe one in: ns-unshare | ns-exec CMD");
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return Err(no_target());
    }
    let mut text = String::new();
    std::io::stdin().take(4097).read_to_string(&mut text).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::usage("cannot read the target from stdin").detail("it is not text"),
        _ => Error::io("cannot read the target from stdin", &e),
    })?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    if line.trim().is_empty() {
        return Err(no_target().detail("stdin was empty"));
    }
    if line.contains('\n') || text.len() > 4096 {
        return Err(Error::usage("cannot read the target from stdin")
            .detail("expected exactly one line (a PID, PID:INODE, path or name), found more"));
    }
    let line = line.trim();
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::usage("cannot read the target from stdin").detail(format!("invalid JSON: {e}")))?;
        let target = v["target"].as_str().map(str::to_owned).or_else(|| v["pid"].as_i64().map(|p| p.to_string()));
        return target
            .ok_or_else(|| Error::usage("cannot read the target from stdin").detail("the JSON has no \"target\""))?
            .parse();
    }
    line.parse()
}

fn stdin_to_dev_null() -> Result<()> {
    let null = std::fs::File::open("/dev/null").map_err(|e| Error::io("cannot open /dev/null", &e))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| Error::sys("cannot redirect stdin", e))
}

/// The pipe idiom (`ns-unshare | ns-exec CMD`): when the target comes through a pipe from
/// ns-unshare, tie its holder to this process - and so to CMD, which this process becomes - so
/// that the namespace lives as long as CMD. Done once the pipe is read (ns-unshare has printed,
/// so its holder listens), before anything else that can fail: then the holder also ends when
/// ns-exec does without running CMD. Any other pipe is left alone.
fn tie_piped_holder() {
    let stdin = std::io::stdin();
    if nstools::holder::PipeId::of(&stdin).is_none() {
        return;
    }
    if let Ok(me) = nstools::sys::pidfd_open(std::process::id() as i32) {
        nstools::holder::claim(stdin.as_fd(), me.as_fd());
    }
}

/// Called by `main` before it parses the arguments: if they cannot be parsed (bad flags,
/// `--help`) and the target would have come from a pipe, the piped holder must end with this
/// process all the same. Parses only in that case (no `-t` anywhere, stdin a pipe).
pub fn before_parsing() {
    let maybe_target = std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == "--target" || a.starts_with("--target=") || (a.starts_with('-') && !a.starts_with("--") && a.contains('t'))
    });
    if !maybe_target && nstools::holder::PipeId::of(std::io::stdin()).is_some() && Cli::try_parse().is_err() {
        // Until ns-unshare has printed and gone (at once), or a writer that is not ns-unshare
        // has kept the pipe open for two seconds.
        drain_stdin(std::time::Duration::from_secs(2));
        tie_piped_holder();
    }
}

/// Read stdin to its end, or until `limit` passes.
fn drain_stdin(limit: std::time::Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let end = std::time::Instant::now() + limit;
    let stdin = std::io::stdin();
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
            return;
        }
        if !matches!(nix::unistd::read(&stdin, &mut buf), Ok(n) if n > 0) {
            return;
        }
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    // Before anything is opened, which could take its number.
    let ready = cli
        .ready_fd
        .map(|fd| {
            nstools::sys::take_inherited_fd(fd).map_err(|_| {
                Error::usage(format!("--ready-fd {fd}")).detail(if fd < 3 {
                    "0, 1 and 2 are CMD's stdin, stdout and stderr: give 3 or more"
                } else {
                    "not an open descriptor"
                })
            })
        })
        .transpose()?;
    let (target, from_stdin) = match cli.target {
        Some(t) => (t, false),
        None => {
            let target = target_from_stdin();
            tie_piped_holder();
            (target?, true)
        }
    };
    let mut extra = Vec::new();
    for file in &cli.env_file {
        extra.extend(envfile::load(file)?);
    }
    let asked = [
        (cli.net, NsType::Net),
        (cli.user, NsType::User),
        (cli.mount, NsType::Mnt),
        (cli.uts, NsType::Uts),
        (cli.ipc, NsType::Ipc),
        (cli.pid, NsType::Pid),
    ];
    let mut types = NsType::flags(asked.into_iter().filter(|(on, _)| *on).map(|(_, t)| t));
    if types.is_empty() {
        types = NsType::Net.flag();
    }
    // Opened before entering anything: the PID names a process of the caller's PID namespace.
    let exit_with = match &cli.exit_with {
        Some(t) => {
            Some(nstools::netns::open_process(t).map_err(|e| e.context("--exit-with"))?.map(|(_, fd)| fd).ok_or_else(
                || Error::usage("--exit-with needs a process").detail("give a PID, PID:INODE or a holder's label"),
            )?)
        }
        None => None,
    };
    // Opened with the caller's view of paths and credentials; recording starts once entered.
    let options = capture::Options {
        interface: cli.capture_interface,
        filter: cli.capture_filter.as_deref().map(capture::Filter::compile).transpose()?,
    };
    let capture_file = cli.capture.as_deref().map(CaptureFile::create).transpose()?;
    let entered = enter(&EnterSpec { target, types, all: cli.all, preserve_credentials: cli.preserve_credentials })?;
    let mut capture = capture_file.map(|f| Capture::start(f, &options)).transpose()?;
    if let Some(dir) = &cli.wd {
        std::env::set_current_dir(dir)
            .map_err(|e| Error::io(format!("cannot change directory to {}", dir.display()), &e))?;
    }
    if from_stdin {
        stdin_to_dev_null()?;
    }
    let argv = if cli.cmd.is_empty() {
        vec![std::env::var_os("SHELL").filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into())]
    } else {
        cli.cmd
    };
    let cmd = Command::new(argv, extra);
    if let Some(ready) = ready {
        // A reader that has gone does not matter (Rust ignores SIGPIPE: EPIPE).
        let _ = nix::unistd::write(&ready, b"ready\n");
    }
    if entered.needs_fork() || cli.end_netns || exit_with.is_some() || capture.is_some() {
        // With --end-netns, the end is prepared while CMD runs.
        let mut to_end = cli.end_netns.then_some(entered.target.netns);
        let mut ending = None;
        let ended = fork_and_wait(&cmd, exit_with.as_ref(), capture.as_mut().map(|c| c as &mut dyn Alongside), || {
            ending = to_end.take().map(Ending::new);
        })?;
        let finish = |capture: Option<Capture>| {
            if let Some(Err(e)) = capture.map(Capture::finish) {
                eprintln!("{NAME}: {}", nstools::cli::printable(&e.to_string()));
            }
        };
        match (ending, capture) {
            (Some(ending), Some(capture)) => {
                // What is left in the namespace may still send packets as it ends: recorded,
                // before the capture's socket, which holds the namespace, is closed.
                let recording = std::cell::RefCell::new(Some(capture));
                ending.finish_held(
                    |left| {
                        if let Some(c) = recording.borrow_mut().as_mut() {
                            c.record_until_gone(left, LEFTOVERS_RECORDED);
                        }
                    },
                    || finish(recording.borrow_mut().take()),
                );
            }
            (Some(ending), None) => ending.finish(),
            (None, capture) => finish(capture),
        }
        return Ok(if cli.end_netns { ended.shell_status() } else { ended.pass_on() });
    }
    Err(exec(&cmd))
}
