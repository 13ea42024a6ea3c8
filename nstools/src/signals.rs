//! Termination signals (SIGINT, SIGTERM, SIGHUP) held back while a tool changes the system,
//! so that every run ends fully done or fully undone: the tool checks for them at its commit
//! point (and while waiting), undoes its work, and then dies of the signal as it would have.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask, raise};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::error::{Error, Result, exit};

/// The signals held back.
pub const TERMINATING: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Termination signals blocked until this guard is dropped; a non-blocking signalfd reports
/// those that arrived meanwhile.
#[derive(Debug)]
pub struct Deferred {
    fd: SignalFd,
    old: SigSet,
}

impl Deferred {
    /// Block the termination signals.
    pub fn block() -> Result<Deferred> {
        let set: SigSet = TERMINATING.into_iter().collect();
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| Error::sys("cannot block signals", e))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Error::sys("cannot create a signalfd", e))?;
        Ok(Deferred { fd, old })
    }

    /// A termination signal that arrived since [`Deferred::block`], if any (consumes it).
    pub fn pending(&self) -> Option<Signal> {
        let info = self.fd.read_signal().ok()??;
        Signal::try_from(info.ssi_signo as i32).ok()
    }

    /// Err([`interrupted`]) if a termination signal arrived since [`Deferred::block`] (consumes
    /// it): the check a tool makes before it keeps what it did, `undone` saying what it undid.
    pub fn check(&self, undone: &str) -> Result<()> {
        match self.pending() {
            Some(signal) => Err(interrupted(signal, undone)),
            None => Ok(()),
        }
    }

    /// Becomes readable when a termination signal arrives (for poll).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The run is complete (its result printed): termination signals stay blocked until the
    /// process exits, so one that arrives now is discarded instead of killing a run that has
    /// done everything - its caller sees exit 0, never a death by signal with the work done.
    pub fn commit(self) {
        std::mem::forget(self);
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// The error for a run interrupted by `signal` after undoing its work: exit code 128 + N.
pub fn interrupted(signal: Signal, undone: &str) -> Error {
    Error::new(format!("interrupted by {}", signal.as_str()))
        .detail(undone.to_owned())
        .code(exit::SIGNAL_BASE + signal as u8)
}

/// Die of `signal` (restoring its default action), without a core dump of our own: the
/// command that died of it has made one if it was to; returns only if it is ignored.
pub fn die_of(signal: Signal) {
    use nix::sys::resource::{Resource, setrlimit};
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    crate::sys::default_action(signal);
    let set: SigSet = [signal].into_iter().collect();
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = raise(signal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_signal_is_reported_once() {
        let guard = Deferred::block().unwrap();
        assert_eq!(guard.pending(), None);
        // Signal this thread only: tests run in parallel threads.
        raise(Signal::SIGHUP).unwrap(); // raise(3) signals the calling thread
        assert_eq!(guard.pending(), Some(Signal::SIGHUP));
        assert_eq!(guard.pending(), None);
        assert_eq!(interrupted(Signal::SIGTERM, "x").exit_code(), 143);
    }

    #[test]
    fn check_turns_a_held_back_signal_into_the_interrupted_error() {
        let guard = Deferred::block().unwrap();
        assert!(guard.check("nothing was changed").is_ok());
        raise(Signal::SIGHUP).unwrap();
        let e = guard.check("nothing was changed").unwrap_err();
        assert_eq!(e.exit_code(), 129);
        assert_eq!(e.to_string(), interrupted(Signal::SIGHUP, "nothing was changed").to_string());
        assert!(guard.check("nothing was changed").is_ok(), "consumed");
    }
}
