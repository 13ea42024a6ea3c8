//! The undo log: how a change of several steps ends fully done or fully undone.
//!
//! Record each step as soon as it is done, with what undoes it; [`Undo::commit`] at the end
//! keeps everything. Otherwise the steps are undone in reverse order: by [`Undo::rollback`]
//! after a failure (or a termination signal, which the tools turn into an error), which adds any
//! undo that fails to the original error, or silently when the log is dropped.
//!
//! The log owns the context its undo steps need (a [`Netlink`](crate::Netlink) socket in the
//! namespace the changes were made in; `()` when they need none), and lends it out for the
//! steps themselves ([`Undo::ctx`]).
//!
//! ```
//! # use nstools::undo::Undo;
//! let mut log = Undo::new(Vec::new());
//! log.ctx().push("made a");
//! log.push("made a", |made: &mut Vec<&str>| {
//!     made.retain(|m| *m != "made a");
//!     Ok(())
//! });
//! // ... a later step fails:
//! let err = log.rollback(nstools::Error::new("cannot make b"));
//! assert_eq!(err.to_string(), "cannot make b");
//! ```

use std::fmt;

use crate::error::{Error, Result};

type UndoFn<C> = Box<dyn FnOnce(&mut C) -> Result<()>>;

/// One step done: what it was, and what undoes it.
struct Step<C> {
    what: String,
    undo: UndoFn<C>,
}

/// Steps done so far, undone in reverse unless committed. See the module documentation.
#[must_use = "dropping the log undoes its steps: commit() keeps them"]
pub struct Undo<C> {
    ctx: C,
    steps: Vec<Step<C>>,
}

impl<C> Undo<C> {
    /// An empty log with the context its undo steps need.
    pub fn new(ctx: C) -> Undo<C> {
        Undo { ctx, steps: Vec::new() }
    }

    /// The context, to do the next step with.
    pub fn ctx(&mut self) -> &mut C {
        &mut self.ctx
    }

    /// Record a step just done (`what`, for the log's `Debug`) and what undoes it. An undo
    /// that fails returns the error to report; one whose work is already done (the device is
    /// gone) returns `Ok`.
    pub fn push(&mut self, what: impl Into<String>, undo: impl FnOnce(&mut C) -> Result<()> + 'static) {
        self.steps.push(Step { what: what.into(), undo: Box::new(undo) });
    }

    /// The steps recorded, oldest first.
    pub fn steps(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.what.as_str())
    }

    /// Keep everything: nothing is undone.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// Undo every step, newest first, after `err`; returns `err` with each failed undo added
    /// ([`Error::also`]: its errno and exit code stay those of `err`).
    pub fn rollback(mut self, err: Error) -> Error {
        self.undo_all().into_iter().fold(err, |err, failed| err.also(&failed))
    }

    fn undo_all(&mut self) -> Vec<Error> {
        let mut failed = Vec::new();
        while let Some(step) = self.steps.pop() {
            if let Err(e) = (step.undo)(&mut self.ctx) {
                failed.push(e);
            }
        }
        failed
    }
}

impl<C> Drop for Undo<C> {
    /// Neither committed nor rolled back (an early return): undo, silently.
    fn drop(&mut self) {
        self.undo_all();
    }
}

impl<C> fmt::Debug for Undo<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Undo").field("steps", &self.steps().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use nix::errno::Errno;

    use super::*;
    use crate::error::exit;

    /// A log whose context records what was undone.
    fn log_of(steps: &[&'static str]) -> Undo<Vec<&'static str>> {
        let mut log = Undo::new(Vec::new());
        for &what in steps {
            log.push(what, move |undone: &mut Vec<&str>| {
                undone.push(what);
                Ok(())
            });
        }
        log
    }

    #[test]
    fn rollback_undoes_in_reverse_and_keeps_the_error() {
        let mut log = log_of(&["create", "address", "up"]);
        assert_eq!(log.steps().collect::<Vec<_>>(), ["create", "address", "up"]);
        log.push("fails", |_| Err(Error::sys("cannot detach p1", Errno::EBUSY)));
        log.push("fails too", |_| Err(Error::new("cannot remove br0")));
        let undone = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&undone);
        log.push("last", move |ctx: &mut Vec<&str>| {
            seen.borrow_mut().extend(ctx.iter().copied()); // nothing undone before it
            Ok(())
        });
        let err = log.rollback(Error::sys("cannot add address", Errno::EINVAL).code(exit::USAGE));
        assert!(undone.borrow().is_empty());
        assert_eq!(
            err.to_string(),
            "cannot add address: Invalid argument (EINVAL); also, cannot remove br0; also, cannot detach p1: Device or resource busy (EBUSY)"
        );
        assert_eq!((err.errno(), err.exit_code()), (Some(Errno::EINVAL), exit::USAGE));
    }

    #[test]
    fn commit_keeps_and_drop_undoes() {
        let undone = Rc::new(RefCell::new(Vec::new()));
        let record = |what: &'static str| {
            let undone = Rc::clone(&undone);
            move |_: &mut ()| {
                undone.borrow_mut().push(what);
                Ok(())
            }
        };
        // A unit context, as the holder's steps (kill the process, undo a bind mount) need.
        let mut log = Undo::new(());
        log.push("fork", record("kill"));
        log.push("bind", record("unbind"));
        log.commit();
        assert!(undone.borrow().is_empty());

        let mut log = Undo::new(());
        log.push("fork", record("kill"));
        log.push("bind", record("unbind"));
        log.push("fails", |_| Err(Error::new("not reported")));
        drop(log);
        assert_eq!(*undone.borrow(), ["unbind", "kill"]);
    }

    #[test]
    fn ctx_is_lent_for_the_steps() {
        let mut log = log_of(&[]);
        log.ctx().push("done by hand");
        assert_eq!(format!("{log:?}"), "Undo { steps: [], .. }");
        let log = log_of(&["a", "b"]);
        assert_eq!(log.rollback(Error::new("x")).to_string(), "x");
    }
}
