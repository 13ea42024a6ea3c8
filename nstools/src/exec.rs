//! Running a command (`ns-exec`'s, and `veth-pair -- CMD`'s): PATH search in the command's own
//! environment, exec without an extra process, or a fork when a PID namespace was entered (the
//! child is the only one that lands in it), with signals passed on and the child's status
//! returned.
//!
//! Exit status, as coreutils' `env`/`chroot`: 126 when CMD cannot be executed, 127 when it is
//! not found; otherwise CMD's own.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, execve};

use crate::error::{Error, Result, exit};
use crate::ifname::quote;
use crate::sys;

/// PATH when the environment has none (as glibc's execvp).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Signals passed on to the child when ns-exec forks: every catchable one, except SIGCHLD
/// (its own) and job control (SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT stop and continue ns-exec
/// itself, as a terminal expects). Samba's forced stop of a testenv sends SIGUSR1 and SIGALRM.
const FORWARDED: [Signal; 24] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGABRT,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGUSR1,
    Signal::SIGSEGV,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGURG,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGSYS,
];

/// A command and the environment to run it in.
#[derive(Debug, Clone)]
pub struct Command {
    /// Program and arguments.
    pub argv: Vec<OsString>,
    /// The whole environment.
    pub env: Vec<(OsString, OsString)>,
}

impl Command {
    /// `argv` with the caller's environment plus `extra` (which wins).
    pub fn new(argv: Vec<OsString>, extra: Vec<(String, OsString)>) -> Command {
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        for (k, v) in extra {
            let k = OsString::from(k);
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        Command { argv, env }
    }

    fn var(&self, key: &str) -> Option<&OsStr> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_os_str())
    }
}

fn cstring(s: &OsStr, what: &str) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        Error::usage(format!("cannot run the command: the {what} contains a NUL byte")).code(exit::EXEC_FAILED)
    })
}

/// Replace this process with the command. Returns only on failure (126 or 127), with the
/// caller's signal mask as it was: a caller that then undoes its work does so with its
/// termination signals still held back.
pub fn exec(cmd: &Command) -> Error {
    let mut mask = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, None, Some(&mut mask));
    let e = match exec_inner(cmd) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
    e
}

fn exec_inner(cmd: &Command) -> Result<std::convert::Infallible> {
    let program = cmd.argv.first().ok_or_else(|| Error::usage("no command").code(exit::EXEC_FAILED))?;
    let shown = quote(&program.to_string_lossy());
    if program.is_empty() {
        return Err(Error::sys(format!("cannot run {shown}"), Errno::ENOENT)
            .detail("command not found")
            .code(exit::NOT_FOUND));
    }
    let args = cmd.argv.iter().map(|a| cstring(a, "argument list")).collect::<Result<Vec<_>>>()?;
    let env = cmd
        .env
        .iter()
        .map(|(k, v)| cstring(&OsString::from_vec([k.as_bytes(), b"=", v.as_bytes()].concat()), "environment"))
        .collect::<Result<Vec<_>>>()?;
    restore_signals();

    let candidates: Vec<Vec<u8>> = if program.as_bytes().contains(&b'/') {
        vec![program.as_bytes().to_vec()]
    } else {
        let path = cmd.var("PATH").map_or(DEFAULT_PATH.as_bytes(), |p| p.as_bytes());
        path.split(|&b| b == b':')
            .map(|dir| if dir.is_empty() { b".".as_slice() } else { dir })
            .map(|dir| [dir, b"/", program.as_bytes()].concat())
            .collect()
    };
    let mut denied = None;
    for candidate in candidates {
        let path = cstring(&OsString::from_vec(candidate), "command name")?;
        let errno = match execve(&path, &args, &env) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        match errno {
            // The file is there, but its #! interpreter (or ELF loader) is not.
            Errno::ENOENT if std::path::Path::new(OsStr::from_bytes(path.as_bytes())).is_file() => {
                return Err(Error::sys(format!("cannot run {shown}"), errno)
                    .detail("its interpreter (the #! line) or loader was not found")
                    .code(exit::CANNOT_EXECUTE));
            }
            Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG => {}
            Errno::EACCES | Errno::EPERM => denied = Some(errno),
            Errno::ENOEXEC => {
                // A script without #!: run it with /bin/sh, as execvp and shells do.
                let mut sh_args = vec![c"/bin/sh".to_owned(), path.clone()];
                sh_args.extend(args.iter().skip(1).cloned());
                let e = execve(c"/bin/sh", &sh_args, &env).err().unwrap_or(Errno::ENOEXEC);
                return Err(Error::sys(format!("cannot run {shown}"), e).code(exit::CANNOT_EXECUTE));
            }
            e => return Err(Error::sys(format!("cannot run {shown}"), e).code(exit::CANNOT_EXECUTE)),
        }
    }
    Err(match denied {
        Some(e) => Error::sys(format!("cannot run {shown}"), e).code(exit::CANNOT_EXECUTE),
        None => {
            Error::sys(format!("cannot run {shown}"), Errno::ENOENT).detail("command not found").code(exit::NOT_FOUND)
        }
    })
}

/// Default dispositions and an empty mask for the command (Rust ignores SIGPIPE; our own
/// masks must not leak into it).
fn restore_signals() {
    sys::default_action(Signal::SIGPIPE);
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// How a command that ns-exec forked ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(u8),
    /// It was killed by this signal.
    Signaled(Signal),
}

impl Ended {
    /// The status as a shell reports it: the exit status, or 128 + N for signal N.
    pub fn shell_status(self) -> u8 {
        match self {
            Ended::Exited(code) => code,
            Ended::Signaled(sig) => exit::SIGNAL_BASE + sig as u8,
        }
    }

    /// Pass the end on, as a command runner does: CMD's exit status, or die of CMD's signal
    /// (returns 128 + N only if that signal cannot kill this process).
    pub fn pass_on(self) -> u8 {
        match self {
            Ended::Exited(code) => code,
            Ended::Signaled(sig) => {
                crate::signals::die_of(sig);
                exit::SIGNAL_BASE + sig as u8
            }
        }
    }
}

/// Work for the parent while the command runs, besides passing signals on: a descriptor to
/// poll, and what to do when it is readable (`ns-exec --capture` records packets this way).
pub trait Alongside {
    /// The descriptor to poll; `None` once there is nothing more to do.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// Called when the descriptor is readable; must not block.
    fn ready(&mut self);
    /// How long to leave the descriptor alone after [`Alongside::ready`], so that what arrives
    /// meanwhile is read in one batch rather than one wakeup each (`None`: poll it at once).
    /// Signals, the command's end and `--exit-with` are still served at once meanwhile.
    fn rest(&self) -> Option<Duration> {
        None
    }
    /// True if this work ends on SIGINT, SIGQUIT and SIGTERM, and the command with it, also
    /// where the command ignores the signal (it was started as a background job): then the
    /// command gets SIGTERM as well (SIGKILL if it ignores that too).
    fn ends_on_interrupt(&self) -> bool {
        false
    }
}

/// The signals that end work alongside the command ([`Alongside::ends_on_interrupt`]).
const INTERRUPTING: [Signal; 3] = [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM];

/// Fork, run the command in the child, pass every catchable signal on to it, and return how it
/// ended. With `exit_with` (a pidfd), the command gets SIGTERM when that process exits. With
/// `alongside`, the parent serves it meanwhile. `forked` runs in the parent right after the fork.
pub fn fork_and_wait(
    cmd: &Command,
    exit_with: Option<&OwnedFd>,
    mut alongside: Option<&mut dyn Alongside>,
    forked: impl FnOnce(),
) -> Result<Ended> {
    // Those of the interrupting signals the command will ignore (it inherits our SIG_IGN):
    // passing one on does nothing, so it is ended another way.
    let interrupting = alongside.as_deref().is_some_and(Alongside::ends_on_interrupt);
    let ignored: Vec<Signal> = INTERRUPTING.into_iter().filter(|&s| interrupting && sys::is_ignored(s)).collect();
    let end_with = if ignored.contains(&Signal::SIGTERM) { Signal::SIGKILL } else { Signal::SIGTERM };
    // Rust ignores SIGPIPE; an ignored signal is discarded, so it could not be passed on.
    sys::default_action(Signal::SIGPIPE);
    let mut set: SigSet = FORWARDED.into_iter().collect();
    set.add(Signal::SIGCHLD);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|e| Error::sys("cannot block signals", e))?;
    let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("cannot create a signalfd", e))?;
    let child = match sys::fork().map_err(|e| Error::sys("cannot fork", e).code(exit::EXEC_FAILED))? {
        ForkResult::Child => {
            let e = exec(cmd);
            eprintln!("ns-exec: {}", crate::cli::printable(&e.to_string()));
            sys::exit_now(i32::from(e.exit_code()));
        }
        ForkResult::Parent { child } => child,
    };
    forked();
    let mut watched = exit_with;
    // While the work alongside rests, its descriptor is left out of the poll set.
    let mut resting_until: Option<Instant> = None;
    let readable = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
    loop {
        let rest = resting_until.map(|end| end.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero());
        let (exited, busy) = {
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let side = if rest.is_some() { None } else { alongside.as_deref().and_then(Alongside::fd) };
            fds.extend(side.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            fds.extend(watched.map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
            // ppoll: a rest of a fraction of a millisecond is one too.
            if ppoll(&mut fds, rest.map(TimeSpec::from_duration), None).is_err() {
                continue;
            }
            let side = usize::from(side.is_some());
            (watched.is_some() && readable(&fds[1 + side]), side == 1 && readable(&fds[1]))
        };
        if busy && let Some(side) = alongside.as_deref_mut() {
            side.ready();
            resting_until = side.rest().map(|d| Instant::now() + d);
        }
        if exited {
            // The --exit-with process is gone: end the command (once), and wait for it.
            let _ = kill(child, Signal::SIGTERM);
            watched = None;
        }
        while let Ok(Some(info)) = signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else { continue };
            if sig != Signal::SIGCHLD {
                let _ = kill(child, sig);
                if ignored.contains(&sig) {
                    let _ = kill(child, end_with);
                }
                continue;
            }
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(Ended::Exited(code as u8)),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Ended::Signaled(sig)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_exec_leaves_the_callers_mask_as_it_was() {
        // This thread only (tests run in parallel threads): SIGHUP held back, as a tool holds
        // its termination signals while it has something to undo.
        let held: SigSet = [Signal::SIGHUP].into_iter().collect();
        let mut before = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&held), Some(&mut before)).unwrap();
        let cmd = Command::new(vec!["/nonexistent/no-such-command".into()], Vec::new());
        assert_eq!(exec(&cmd).exit_code(), exit::NOT_FOUND);
        let mut after = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), Some(&mut after)).unwrap();
        assert!(after.contains(Signal::SIGHUP), "still held back after the failed exec");
    }
}
