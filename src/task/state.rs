//! The state word of a task: one `AtomicU8` in its header, read lock-free
//! as a [`Snapshot`], written only by the transitions below.
//!
//! # States
//! ```text
//!            cancel()                       harness completes (once)
//! PENDING ─────────────▶ PENDING|CANCEL_REQUESTED ───────────────┐
//!    │                                                          ▼
//!    └──────────────────────────────────────────▶ FINISHED | CANCELLED | PANICKED
//!                                                   │  ▲
//!                     callbacks to run at the end,  │  │ the queue is empty
//!                     or added to a done task       ▼  │ (end_drain)
//!                                      (FINISHED | CANCELLED | PANICKED) | DRAINING
//! ```
//! The final bits move forward only; `DRAINING` comes and goes on a done
//! task while some thread runs its callbacks (invariant 4, `callbacks.rs`).
//!
//! # Invariants
//! 3. **A cancel is a request; a returned value wins.** `cancel()` returns
//!    `true` only while the task is pending, and sets `CANCEL_REQUESTED`
//!    under the lock ([`StateWord::request_cancel`]). The task then ends
//!    `CANCELLED` when its future is dropped unfinished (Tokio's abort, at
//!    once or, with cancel scopes in the task, after their cleanups: see
//!    `scope/node.rs`). A future that returned a value in the poll during
//!    which the request came ends the task `FINISHED` with that value: no
//!    value is lost to a late cancel (a task running a queue's `get()`
//!    keeps its item; asyncio would end a task that cancels itself and
//!    returns cancelled). A panic wins over both.
//! 9. **Written only under the lock.** Every transition takes the task's
//!    locked `Inner` (`&mut Inner<T>`, which only the core's `MutexGuard`
//!    hands out), so the state word is written together with the outcome
//!    and the callback list, and a reader holding the lock sees them agree;
//!    a lock-free reader (`done()`) may only see it a little late.
//!
//! # Extending it
//! A new state bit is a constant here, a predicate on [`Snapshot`] and a
//! transition on [`StateWord`] returning what the caller must do next
//! (`#[must_use]`). A cancel request is handled in three places only: it is
//! recorded by [`StateWord::request_cancel`] (from `Core::cancel`), passed
//! on to Tokio when the canceller is installed (`Core::set_canceller`), and
//! turned into the `CANCELLED` end by [`Ended::decide`] (from
//! `Core::complete`).

use crate::sync_shim::atomic::{AtomicU8, Ordering};

use super::core::Inner;

/// Pending, no cancel requested.
const PENDING: u8 = 0;
/// Pending, `cancel()` was called: the task will end `CANCELLED`.
const CANCEL_REQUESTED: u8 = 1;
/// The future returned a value.
const FINISHED: u8 = 2;
/// The task ended cancelled.
const CANCELLED: u8 = 4;
/// The future panicked.
const PANICKED: u8 = 8;
const DONE: u8 = FINISHED | CANCELLED | PANICKED;
/// Done, and some thread is running the task's callbacks (invariant 4): a
/// callback added now joins that thread's queue, so callbacks never run out
/// of order or two at a time.
const DRAINING: u8 = 16;
/// Pending, and a cancel scope registered in the task (it has a root
/// scope): a cancel signals the scopes before it aborts. Read lock-free by a
/// by-value await of the task, which then waits for its cleanups.
const SCOPED: u8 = 32;

/// The state word, as it sits in the task's header.
pub(crate) struct StateWord(AtomicU8);

/// One reading of the state word, with named predicates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Snapshot(u8);

impl Snapshot {
    /// Ended, whatever the end.
    pub(crate) fn is_done(self) -> bool {
        self.0 & DONE != 0
    }

    /// Pending with a cancel request (asyncio's "cancelling").
    pub(crate) fn is_cancel_requested(self) -> bool {
        self.0 & CANCEL_REQUESTED != 0
    }

    /// Ended cancelled.
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }

    /// Ended by panicking.
    pub(crate) fn is_panicked(self) -> bool {
        self.0 & PANICKED != 0
    }

    /// Pending or panicked: the only states in which a "Task exception was
    /// never retrieved" report may still come.
    pub(crate) fn may_report_panic(self) -> bool {
        self.0 & (FINISHED | CANCELLED) == 0
    }

    /// Pending, with a cancel scope in it (see [`SCOPED`]).
    pub(crate) fn is_scoped(self) -> bool {
        self.0 & SCOPED != 0
    }

    /// Done, and a thread is running its callbacks.
    fn is_draining(self) -> bool {
        self.0 & DRAINING != 0
    }
}

/// How a task ended: the final state `complete` stores.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Ended {
    /// The future returned its value, which the awaiter gets.
    Finished,
    /// The task was cancelled (or its harness dropped unfinished).
    Cancelled,
    /// The future panicked.
    Panicked,
}

impl Ended {
    /// The end of a task whose future `returned` (else it panicked, or was
    /// dropped unfinished when `panicked` is false). Invariant 3: a returned
    /// value wins over a cancel request, whenever the request came; a panic
    /// wins over both.
    pub(crate) fn decide(returned: bool, panicked: bool) -> Ended {
        match (returned, panicked) {
            (_, true) => Ended::Panicked,
            (true, false) => Ended::Finished,
            (false, false) => Ended::Cancelled,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Ended::Finished => FINISHED,
            Ended::Cancelled => CANCELLED,
            Ended::Panicked => PANICKED,
        }
    }
}

/// What [`StateWord::request_cancel`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub(crate) enum CancelRequest {
    /// The task is done: nothing to cancel (`cancel()` returns `false`).
    AlreadyDone,
    /// Recorded: the caller now stops the running future.
    Requested,
}

/// What [`StateWord::add_callback`] tells the caller to do with a callback.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub(crate) enum AddCallback {
    /// Queue it: it runs at the end, or soon, by the thread draining.
    Queue,
    /// Queue it, and drain: the task is done and this caller became its
    /// drainer (`DRAINING` is now set).
    QueueAndDrain,
    /// Do not queue it: the task is done and the caller handles it inline.
    GiveBack,
}

impl StateWord {
    /// A pending task's word.
    pub(crate) fn new() -> Self {
        StateWord(AtomicU8::new(PENDING))
    }

    /// The word now (lock-free; may be a little late, invariant 9).
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// Under the lock: a cancel request (invariant 3).
    pub(crate) fn request_cancel<T>(&self, _locked: &mut Inner<T>) -> CancelRequest {
        let now = self.load();
        if now.is_done() {
            return CancelRequest::AlreadyDone;
        }
        self.0.store(now.0 | CANCEL_REQUESTED, Ordering::Release);
        CancelRequest::Requested
    }

    /// Under the lock: a cancel scope registered in the pending task.
    pub(crate) fn mark_scoped<T>(&self, _locked: &mut Inner<T>) {
        let now = self.load();
        self.0.store(now.0 | SCOPED, Ordering::Release);
    }

    /// Under the lock: the task ends as `ended` (invariant 1); with
    /// `callbacks` to run, the caller becomes their drainer (invariant 4).
    pub(crate) fn complete<T>(&self, _locked: &mut Inner<T>, ended: Ended, callbacks: bool) {
        let draining = if callbacks { DRAINING } else { 0 };
        self.0.store(ended.bits() | draining, Ordering::Release);
    }

    /// Under the lock: where a new callback goes (invariant 4). Asked to
    /// (`start_drain`), a caller that finds the task done and nobody
    /// draining becomes the drainer.
    pub(crate) fn add_callback<T>(&self, _locked: &mut Inner<T>, start_drain: bool) -> AddCallback {
        let now = self.load();
        if !now.is_done() || now.is_draining() {
            AddCallback::Queue
        } else if start_drain {
            self.0.store(now.0 | DRAINING, Ordering::Release);
            AddCallback::QueueAndDrain
        } else {
            AddCallback::GiveBack
        }
    }

    /// Under the lock: the drainer found the queue empty and stops.
    pub(crate) fn end_drain<T>(&self, _locked: &mut Inner<T>) {
        let now = self.load();
        self.0.store(now.0 & !DRAINING, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::{CANCEL_REQUESTED, Ended, SCOPED, Snapshot};

    /// Invariant 3: a returned value wins over a cancel request (the
    /// request is not even consulted), a panic over both.
    #[test]
    fn a_returned_value_wins_over_a_cancel_and_a_panic_over_both() {
        assert_eq!(Ended::decide(true, false), Ended::Finished);
        assert_eq!(Ended::decide(false, false), Ended::Cancelled);
        assert_eq!(Ended::decide(false, true), Ended::Panicked);
        assert_eq!(Ended::decide(true, true), Ended::Panicked);
        assert!(Snapshot(SCOPED | CANCEL_REQUESTED).is_scoped());
    }

    /// The predicates read the bits they are named after.
    #[test]
    fn snapshot_predicates_follow_the_bits() {
        let requested = Snapshot(CANCEL_REQUESTED);
        assert!(!requested.is_done() && requested.is_cancel_requested());
        assert!(requested.may_report_panic());
        for (ended, cancelled, panicked) in [
            (Ended::Finished, false, false),
            (Ended::Cancelled, true, false),
            (Ended::Panicked, false, true),
        ] {
            let s = Snapshot(ended.bits());
            assert!(s.is_done() && !s.is_draining());
            assert_eq!((s.is_cancelled(), s.is_panicked()), (cancelled, panicked));
            assert_eq!(s.may_report_panic(), panicked);
        }
    }
}
