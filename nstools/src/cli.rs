//! What every tool's `main` shares: one-line argument errors, `tool: message` on failure, the
//! exit code carried by the error, refusal to run set-user-ID, and output to a closed pipe.
//!
//! A closed standard output (`ns-ls | head -1`) ends a tool as it ends coreutils' tools: no
//! message, death by SIGPIPE (exit status 141 in the shell), after undoing its work like any
//! other failure (`veth-pair --json` removes the pair it could not report). Not 0: a tool that
//! could not report what it made has undone it, and a caller must not take it as made.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use nix::sys::signal::Signal;
use nix::unistd::{getegid, geteuid, getgid, getuid};

use crate::error::{Error, Result, exit};

/// The exit-status section shared by the tools' `--help`.
pub const EXIT_STATUS: &str = "\
Exit status:
  0    success
  1    the operation failed (the kernel or the system refused); nothing is left behind
  2    invalid arguments or input; nothing was touched
  128+N  interrupted by signal N after undoing what was done";

/// Parse the arguments, run the tool, report. `run` returns the exit code on success.
pub fn main<C: Parser>(tool: &str, run: impl FnOnce(C) -> Result<u8>) -> ExitCode {
    main_with(tool, None, run)
}

/// As [`main`]; with `own_failure`, every failure of the tool itself (usage included) exits
/// with that code instead of 1 or 2, as command runners do (`ns-exec`: 125).
pub fn main_with<C: Parser>(tool: &str, own_failure: Option<u8>, run: impl FnOnce(C) -> Result<u8>) -> ExitCode {
    let recode = |e: Error| match own_failure {
        Some(code) if e.exit_code() == exit::FAILURE || e.exit_code() == exit::USAGE => e.code(code),
        _ => e,
    };
    if let Err(e) = refuse_setid() {
        return report(tool, &recode(e));
    }
    let cli = match C::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(tool, &e, own_failure.unwrap_or(exit::USAGE)),
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(tool, &recode(e)),
    }
}

/// Print `tool: error` (not for a closed pipe: [`Error::is_quiet`]) and return its exit code; an
/// interrupted run dies of its signal (SIGPIPE for a closed pipe).
pub fn report(tool: &str, e: &Error) -> ExitCode {
    if !e.is_quiet() {
        eprintln!("{tool}: {}", printable(&e.to_string()));
    }
    let code = e.exit_code();
    if code > exit::SIGNAL_BASE
        && let Ok(signal) = Signal::try_from(i32::from(code - exit::SIGNAL_BASE))
    {
        crate::signals::die_of(signal);
    }
    ExitCode::from(code)
}

/// clap's errors are several lines long; print one: `tool: <what clap said>; see 'tool --help'`.
fn usage_error(tool: &str, e: &clap::Error, code: u8) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            return match e.print() {
                Err(err) if err.raw_os_error() == Some(libc::EPIPE) => report(tool, &broken_pipe()),
                _ => ExitCode::SUCCESS,
            };
        }
        _ => {}
    }
    eprintln!("{tool}: {}; see '{tool} --help'", printable(&one_line(&e.render().to_string())));
    ExitCode::from(code)
}

/// clap's message on one line: the text before the usage, continuation lines joined, and its
/// tip in parentheses.
fn one_line(rendered: &str) -> String {
    let mut message = Vec::new();
    let mut tip = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        match line.strip_prefix("tip: ") {
            Some(t) => tip = Some(t),
            None => message.push(line.strip_prefix("error: ").unwrap_or(line)),
        }
    }
    let text = if message.is_empty() { "invalid arguments".to_owned() } else { message.join(" ") };
    match tip {
        Some(t) => format!("{text} ({t})"),
        None => text,
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): an error stays one line, and a
/// name or path given by the user cannot send escape sequences to the terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// The tools work with the caller's own privileges; a set-user-ID install would hand
/// namespace and network control to every local user, so it is refused.
fn refuse_setid() -> Result<()> {
    if getuid() != geteuid() || getgid() != getegid() {
        return Err(Error::new("refusing to run set-user-ID or set-group-ID")
            .detail("nstools tools act with the caller's own privileges")
            .hint(
                "remove the setuid bit (chmod u-s,g-s); for rootless use run inside 'unshare --user --map-root-user'",
            ));
    }
    Ok(())
}

/// Write `text` (plus a newline) to stdout and flush it. A closed pipe is a quiet error
/// ([`Error::broken_pipe`]): undo what the run did, then return it, and the tool dies of SIGPIPE.
pub fn print_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| match e.raw_os_error() {
        Some(libc::EPIPE) => broken_pipe(),
        _ => Error::io(STDOUT, &e),
    })
}

const STDOUT: &str = "cannot write to standard output";

fn broken_pipe() -> Error {
    Error::broken_pipe(STDOUT)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_fit_on_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --create\n\nUsage: br-attach --create --addr <CIDR> [IFACE]...\n\nFor more information, try '--help'.\n";
        assert_eq!(one_line(rendered), "the following required arguments were not provided: --create");
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: x\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--bogus' found (to pass '--bogus' as a value, use '-- --bogus')"
        );
        assert_eq!(one_line(""), "invalid arguments");
    }

    #[test]
    fn messages_are_printable() {
        assert_eq!(super::printable("no namespace '1\n2' \u{1b}[31m\tx é"), "no namespace '1\\n2' \\u{1b}[31m\\tx é");
    }
}
