//! Watching many tasks at once, for the combinators (`gather`, `try_gather`,
//! `gather!`, `wait`).
//!
//! # Why not `FuturesUnordered` / `join_all`
//! Polling many `JoinHandle`s through `FuturesUnordered` (what `join_all` uses
//! past 30 futures) goes quadratic when the caller is itself a task on the
//! multi-thread runtime: Tokio's coop budget makes handles return `Pending`,
//! and the set re-polls them all, every time one is woken. Instead each
//! child gets one done callback (registered once, at the combinator's first
//! poll) that records what the combinator needs — "child `i` failed" and, for
//! `wait`, "child `i` completed" in completion order — and wakes it. The
//! combinator then reads the children's outcomes straight from the task core
//! (`Task::take_if_done`), without polling any `JoinHandle`: no budget spent,
//! no per-child waker, no allocation per poll, work linear in the number of
//! children.
//!
//! # Lost wakeups
//! The combinator registers its waker *before* it looks at the flags and at
//! the children's states; a callback publishes its record *before* it wakes.
//! Either the combinator sees the record, or the wake reaches the registered
//! waker.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use futures::task::AtomicWaker;

use crate::task::{Callback, ChildDone};
use crate::{CallbackId, TaskRef};

/// "No child failed yet."
const NONE: usize = usize::MAX;

/// Decides whether a finished child counts as failed for the combinator.
pub(crate) type Failed = fn(&TaskRef) -> bool;

/// A child that ended by panicking or by being cancelled: what ends a
/// `gather` early (asyncio: a raised exception, `CancelledError` included).
pub(crate) fn panicked_or_cancelled(t: &TaskRef) -> bool {
    t.panicked() || t.cancelled()
}

/// What the callbacks record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeOn {
    /// Wake the combinator only when a child fails (`gather`: progress in
    /// input order is followed through the children's own states).
    OnFailure,
    /// Wake on every completion and keep the completion order (`wait`).
    OnEveryCompletion,
}

struct Shared {
    waker: AtomicWaker,
    /// The first child, in completion order, that failed; `NONE` if none.
    failed: AtomicUsize,
    /// Completion order (`WakeOn::OnEveryCompletion` only).
    order: Mutex<Vec<usize>>,
    mode: WakeOn,
    /// Which finished children count as failed.
    failed_if: Failed,
    /// Set when the combinator is finished: late callbacks do nothing.
    closed: AtomicBool,
    /// Completions recorded so far.
    completions: AtomicUsize,
    /// `Some(n)`: the panics of the first `n - 1` children to complete count
    /// as seen (`wait(FIRST_EXCEPTION)` of `n` tasks, see [`ChildWatch::new`]).
    see_all_but_last: Option<usize>,
}

impl ChildDone for Shared {
    /// The done callback of child `index`: records it, wakes the combinator.
    fn child_done(&self, index: usize, task: &TaskRef) {
        if self.note(index, task) {
            self.waker.wake();
        }
    }
}

impl Shared {
    fn note(&self, index: usize, task: &TaskRef) -> bool {
        let failed = self.failed_if;
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let completed = self.completions.fetch_add(1, Ordering::AcqRel) + 1;
        if self.see_all_but_last.is_some_and(|n| completed < n) {
            mark_retrieved(task);
        }
        let mut wake = false;
        if failed(task) {
            let _ = self
                .failed
                .compare_exchange(NONE, index, Ordering::AcqRel, Ordering::Acquire);
            wake = true;
        }
        if self.mode == WakeOn::OnEveryCompletion {
            self.order().push(index);
            wake = true;
        }
        wake
    }

    fn order(&self) -> MutexGuard<'_, Vec<usize>> {
        crate::lock::lock(&self.order)
    }
}

/// One combinator's watch over its children.
pub(crate) struct ChildWatch {
    shared: Arc<Shared>,
    /// `WakeOn::OnEveryCompletion` (`wait`) only: the callbacks to take back
    /// from the tasks still pending when the watch closes, so that calling
    /// `wait` again and again on long-lived tasks leaves nothing behind.
    /// `gather` leaves at most one callback per child.
    registered: Vec<(TaskRef, CallbackId)>,
}

impl ChildWatch {
    /// Registers one done callback on each `(index, task)`. Children already
    /// done are recorded now, in the order given. `waker` is registered
    /// before any callback can fire.
    ///
    /// `see_all_but_last: Some(n)` (`wait(FIRST_EXCEPTION)` over `n` tasks):
    /// the callback marks the panic of each child that completes while the
    /// watch is open as seen, but the `n`-th: asyncio's `_on_completion`
    /// calls `f.exception()` unless `counter <= 0` short-circuits it.
    pub(crate) fn new<'a>(
        children: impl Iterator<Item = (usize, &'a TaskRef)>,
        failed: Failed,
        mode: WakeOn,
        see_all_but_last: Option<usize>,
        waker: &Waker,
    ) -> Self {
        let shared = Arc::new(Shared {
            waker: AtomicWaker::new(),
            failed: AtomicUsize::new(NONE),
            order: Mutex::new(Vec::new()),
            mode,
            failed_if: failed,
            closed: AtomicBool::new(false),
            completions: AtomicUsize::new(0),
            see_all_but_last,
        });
        shared.waker.register(waker);
        let keep_ids = mode == WakeOn::OnEveryCompletion;
        let registered = notify_each(&shared, children, keep_ids, |index, task| {
            shared.note(index, task);
        });
        ChildWatch { shared, registered }
    }

    /// Registers the combinator's current waker (call before reading).
    pub(crate) fn register(&self, waker: &Waker) {
        self.shared.waker.register(waker);
    }

    /// The first child, in completion order, that failed.
    pub(crate) fn first_failure(&self) -> Option<usize> {
        match self.shared.failed.load(Ordering::Acquire) {
            NONE => None,
            i => Some(i),
        }
    }

    /// Moves the completions recorded since the last call into `into`.
    pub(crate) fn drain_completed(&self, into: &mut Vec<usize>) {
        into.append(&mut self.shared.order());
    }

    /// The combinator is finished: later callbacks record nothing and wake
    /// no one (no spurious wake of a task that moved on).
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        drop(self.shared.waker.take());
    }
}

impl Drop for ChildWatch {
    fn drop(&mut self) {
        self.close();
        for (task, id) in self.registered.drain(..) {
            if !task.done() {
                task.remove_done_callback(id);
            }
        }
    }
}

/// Counts `task`'s panic, now or to come, as seen: asyncio's combinators
/// call `fut.exception()` on the children whose exception they take care of
/// ("Mark exception retrieved"), and such a panic is not reported as "Task
/// exception was never retrieved".
pub(crate) fn mark_retrieved(task: &TaskRef) {
    task.core().header().diag.mark_retrieved();
}

/// Cancels those of `tasks` that have not ended: what a gather does when it
/// is dropped before it resolved. The cancel does not count as seeing what
/// the tasks end with (asyncio's `cancel()` does not, for a pending task):
/// the caller marks what its asyncio twin reads.
pub(crate) fn cancel_pending<'a>(tasks: impl IntoIterator<Item = &'a TaskRef>) {
    for task in tasks {
        if !task.done() {
            task.cancel();
        }
    }
}

/// Registers `notify` as the done callback of each `(index, task)`: the one
/// place the combinators do so. One `Arc` clone per child, no allocation. A
/// child already done gets no callback: `already(index, task)` runs for it
/// instead, now, in the order given. With `keep_ids`, returns the callbacks
/// registered, to take them back later.
pub(crate) fn notify_each<'a, N: ChildDone>(
    notify: &Arc<N>,
    children: impl IntoIterator<Item = (usize, &'a TaskRef)>,
    keep_ids: bool,
    mut already: impl FnMut(usize, &TaskRef),
) -> Vec<(TaskRef, CallbackId)> {
    let mut registered = Vec::new();
    for (index, task) in children {
        let cb = Callback::Child(notify.clone(), index);
        match task.push_done_callback(cb) {
            Ok(id) if keep_ids => registered.push((task.clone(), id)),
            Ok(_) => {}
            Err((_, cb)) => {
                // Dropping the callback only drops its `Arc`.
                drop(cb);
                already(index, task);
            }
        }
    }
    registered
}
