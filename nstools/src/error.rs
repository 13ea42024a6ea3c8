//! One error type for every tool: what failed, why (the errno, kept as a value, and the
//! kernel's extended-ack text when it gave one), an optional hint, and the exit code.
//!
//! It renders as one line: `what: why (ERRNO); hint`, e.g.
//! `cannot create veth21: File exists (EEXIST)`.

use std::fmt;

use nix::errno::Errno;

/// Exit codes shared by all tools (documented in each `--help` and in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The operation failed: the kernel or the system refused it. Nothing is left behind.
    pub const FAILURE: u8 = 1;
    /// Invalid arguments or input, rejected before anything was touched.
    pub const USAGE: u8 = 2;
    /// `br-attach`: an interface did not appear before `--timeout`.
    pub const TIMEOUT: u8 = 124;
    /// `ns-exec`: ns-exec itself failed before running the command.
    pub const EXEC_FAILED: u8 = 125;
    /// `ns-exec`: the command was found but could not be executed.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// `ns-exec`: the command was not found.
    pub const NOT_FOUND: u8 = 127;
    /// Interrupted by signal N after undoing what was done: 128 + N.
    pub const SIGNAL_BASE: u8 = 128;
    /// Standard output closed by its reader: the tool undoes its work and dies of SIGPIPE
    /// without a message, as coreutils' tools do (141 in the shell).
    pub const BROKEN_PIPE: u8 = SIGNAL_BASE + libc::SIGPIPE as u8;
}

/// The hint for a missing privilege to change network settings.
pub const HINT_NET_ADMIN: &str = "needs CAP_NET_ADMIN: run as root, or inside 'unshare --net --user --map-root-user'";

/// An error of an nstools operation. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: String,
    errno: Option<Errno>,
    detail: Option<String>,
    hint: Option<String>,
    also: Vec<String>,
    code: u8,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure without an errno (exit code 1).
    pub fn new(what: impl Into<String>) -> Self {
        Error { what: what.into(), errno: None, detail: None, hint: None, also: Vec::new(), code: exit::FAILURE }
    }

    /// A failed system call or kernel request (exit code 1).
    pub fn sys(what: impl Into<String>, errno: Errno) -> Self {
        Error { errno: Some(errno), ..Error::new(what) }
    }

    /// A failed I/O operation; keeps the errno when there is one.
    pub fn io(what: impl Into<String>, err: &std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(n) => Error::sys(what, Errno::from_raw(n)),
            None => Error::new(what).detail(err.to_string()),
        }
    }

    /// Invalid input, found before anything was touched (exit code 2).
    pub fn usage(what: impl Into<String>) -> Self {
        Error { code: exit::USAGE, ..Error::new(what) }
    }

    /// Standard output was closed by its reader (EPIPE), who left on purpose (`ns-ls | head -1`):
    /// no message, and the tool dies of SIGPIPE ([`exit::BROKEN_PIPE`]) after undoing its work.
    pub fn broken_pipe(what: impl Into<String>) -> Self {
        Error { code: exit::BROKEN_PIPE, ..Error::sys(what, Errno::EPIPE) }
    }

    /// True if the tool ends without a message: a closed pipe, and nothing else went wrong
    /// (a failed undo is still reported).
    pub fn is_quiet(&self) -> bool {
        self.code == exit::BROKEN_PIPE && self.also.is_empty()
    }

    /// Replace the "why" part (for instance with the kernel's extended-ack text).
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        self.detail = (!detail.is_empty()).then_some(detail);
        self
    }

    /// Add a hint: what the user can do about it.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Add a hint only if there is none yet.
    #[must_use]
    pub fn or_hint(self, hint: impl Into<String>) -> Self {
        if self.hint.is_some() { self } else { self.hint(hint) }
    }

    /// Set the exit code.
    #[must_use]
    pub fn code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }

    /// Put more context in front of "what": `context: what`.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.what = format!("{context}: {}", self.what);
        self
    }

    /// Record a second failure that happened while handling this one (such as a failed
    /// clean-up), keeping this error's errno and exit code.
    #[must_use]
    pub fn also(mut self, other: &Error) -> Self {
        self.also.push(other.to_string());
        self
    }

    /// The errno, when the failure came from the kernel.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    /// The exit code the tool exits with.
    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// What failed (without the reason).
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// The symbolic name of an errno (`EEXIST`), as `errno(1)` prints it.
pub fn errno_name(errno: Errno) -> String {
    let debug = format!("{errno:?}");
    if debug.starts_with('E') { debug } else { format!("errno {}", errno as i32) }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        match (&self.detail, self.errno) {
            (Some(detail), Some(errno)) => write!(f, ": {detail} ({})", errno_name(errno))?,
            (Some(detail), None) => write!(f, ": {detail}")?,
            (None, Some(errno)) => write!(f, ": {} ({})", errno.desc(), errno_name(errno))?,
            (None, None) => {}
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        for also in &self.also {
            write!(f, "; also, {also}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_errno_name_and_text() {
        let e = Error::sys("cannot create veth21", Errno::EEXIST);
        assert_eq!(e.to_string(), "cannot create veth21: File exists (EEXIST)");
        assert_eq!(e.exit_code(), exit::FAILURE);
    }

    #[test]
    fn kernel_text_replaces_strerror() {
        let e = Error::sys("cannot create x", Errno::EOPNOTSUPP).detail("Unknown device type");
        assert_eq!(e.to_string(), "cannot create x: Unknown device type (EOPNOTSUPP)");
    }

    #[test]
    fn hint_and_context() {
        let e = Error::sys("cannot create veth21", Errno::EPERM).hint(HINT_NET_ADMIN).context("setup");
        assert_eq!(
            e.to_string(),
            format!("setup: cannot create veth21: Operation not permitted (EPERM); {HINT_NET_ADMIN}")
        );
        assert_eq!(e.clone().or_hint("other").to_string(), e.to_string());
        let both =
            Error::sys("cannot add address", Errno::EINVAL).also(&Error::sys("cannot remove veth21", Errno::EBUSY));
        assert_eq!(
            both.to_string(),
            "cannot add address: Invalid argument (EINVAL); also, cannot remove veth21: Device or resource busy (EBUSY)"
        );
        assert_eq!(both.errno(), Some(Errno::EINVAL));
    }

    #[test]
    fn a_closed_pipe_is_quiet_unless_an_undo_failed() {
        let e = Error::broken_pipe("cannot write to standard output");
        assert!(e.is_quiet());
        assert_eq!((e.errno(), e.exit_code()), (Some(Errno::EPIPE), 141));
        let e = e.also(&Error::sys("cannot remove veth21", Errno::EBUSY));
        assert!(!e.is_quiet());
        assert_eq!(e.exit_code(), exit::BROKEN_PIPE);
        assert!(!Error::sys("x", Errno::EPIPE).is_quiet());
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = Error::usage("invalid interface name ''").detail("must not be empty");
        assert_eq!(e.exit_code(), exit::USAGE);
        assert_eq!(e.to_string(), "invalid interface name '': must not be empty");
        assert!(!e.to_string().contains('\n'));
    }
}
