//! The harness: the future Tokio runs for each task of ours, and
//! [`MainHarness`] for the main task of `asyncio::run`. The one place where
//! a task ends.
//!
//! # Invariants
//! 1. **One end.** Only `Core::complete` writes a final outcome, and the
//!    harness calls it exactly once: when the future returns, when it panics,
//!    or when the harness is dropped unfinished (Tokio abort, runtime
//!    shutdown). The harness gives up its core pointer as it calls `complete`
//!    (which takes `self: Arc<Self>`), so a second call cannot happen.
//! 2. **The future is gone first.** The user's future (and everything it
//!    owns) is dropped before the outcome is published, as Tokio guarantees
//!    for `JoinHandle`s.
//! 8. **No unwind leaves the harness.** Every piece of user code the harness
//!    runs is contained: the poll, the future's destructor, a caught panic's
//!    payload (which may itself panic as it is dropped: `drop_payload`), the
//!    value of a future that panicked as it was dropped after returning,
//!    the output discarded by a cancel, done callbacks. A panic of a
//!    destructor is reported through the exception handler. As a backstop,
//!    `as_current` restores the previous current task and puts the core back
//!    into the harness on any unwind, so that the harness, dropped by Tokio
//!    after a panic, still ends the task (invariant 1; as for any harness
//!    dropped unfinished, the end is `CANCELLED`) and `current_task()`
//!    never stays on a task that is not being polled.
//!
//! Invariant 6 (`current.rs`) is kept here too: the core is moved into the
//! thread-local around each poll, never cloned. Invariant 7 (`diag.rs`):
//! only a task in debug mode times its polls (`poll_timed`).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::{pin_project, pinned_drop};

use super::TaskRef;
use super::core::{Core, DISCARDED_RESULT, End};
use super::current::{current_task, swap_polled};
use super::state::Ended;
use crate::error::PanicError;
use crate::report::{drop_payload, report_panic};

/// Runs `f` with the core in `slot` as the current task (invariant 6: the
/// `Arc` is moved out of `slot` into `CURRENT` and back, never cloned).
///
/// `f` is not meant to unwind (callers contain user code under
/// `catch_unwind`), but should it, a guard still puts the previous current
/// task back and the core back into `slot` (invariant 8), so that the
/// harness, dropped by Tokio after the panic, ends the task.
fn as_current<T: Send + 'static, R>(slot: &mut Option<Arc<Core<T>>>, f: impl FnOnce() -> R) -> R {
    /// Puts things back on the way out, returning or unwinding.
    struct Restore<'a, T: Send + 'static> {
        slot: &'a mut Option<Arc<Core<T>>>,
        prev: Option<TaskRef>,
    }
    impl<T: Send + 'static> Drop for Restore<'_, T> {
        fn drop(&mut self) {
            let prev = self.prev.take();
            if let Ok(Some(task)) = swap_polled(prev) {
                *self.slot = Some(task.into_typed());
            }
        }
    }
    let task = slot.take().map(|core| TaskRef::from_core(core));
    // A harness may be dropped while this thread's locals are being
    // destroyed (a runtime dropped from a thread-local destructor).
    let prev = match swap_polled(task) {
        Ok(prev) => prev,
        Err(task) => {
            *slot = task.map(TaskRef::into_typed);
            return f();
        }
    };
    let _restore = Restore { slot, prev };
    f()
}

/// Polls `fut` as the task in `slot`: the task is current during the poll
/// and a panic is caught.
fn poll_as<T: Send + 'static, F: Future>(
    slot: &mut Option<Arc<Core<T>>>,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> std::thread::Result<Poll<F::Output>> {
    as_current(slot, || catch_unwind(AssertUnwindSafe(|| fut.poll(cx))))
}

/// [`poll_as`], timed in debug mode: a poll longer than the slow-callback
/// threshold is reported (invariant 7). Debug off: one branch.
fn poll_timed<T: Send + 'static, F: Future>(
    slot: &mut Option<Arc<Core<T>>>,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> std::thread::Result<Poll<F::Output>> {
    if !slot.as_ref().is_some_and(|core| core.header.debug) {
        return poll_as(slot, fut, cx);
    }
    let start = std::time::Instant::now();
    let res = poll_as(slot, fut, cx);
    if let Some(core) = slot.as_ref() {
        crate::report::check_slow_poll(start.elapsed(), || TaskRef::from_core(core.clone()));
    }
    res
}

/// The error a caught panic becomes; its payload is dropped here, contained
/// (a payload whose destructor panics is reported, invariant 8).
pub(super) fn panic_error(payload: Box<dyn Any + Send>) -> PanicError {
    let err = PanicError::from_payload(&*payload);
    drop_payload(payload, None);
    err
}

/// Drops a value whose destructor is user code, containing (and reporting,
/// as `what`, with the current task) a panic of that destructor.
pub(crate) fn drop_contained<V>(value: V, what: &str) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        report_panic(what, current_task().as_ref(), payload);
    }
}

impl TaskRef {
    /// Back from the erased handle to the typed core, without touching the
    /// reference count.
    fn into_typed<T: Send + 'static>(self) -> Arc<Core<T>> {
        self.into_core()
            .into_any()
            .downcast()
            .unwrap_or_else(|_| unreachable!("asyncio: task core of an unexpected type"))
    }
}
// ----------------------------------------------------------------- harness

/// The future Tokio runs for each task of ours. It holds the typed core (a
/// thin pointer: the harness adds 8 bytes to the Tokio task, see
/// `docs/performance.md`).
#[pin_project(PinnedDrop)]
pub(crate) struct Harness<F: Future>
where
    F::Output: Send + 'static,
{
    #[pin]
    fut: Option<F>,
    /// `Some` until the task completes (invariant 1).
    core: Option<Arc<Core<F::Output>>>,
}

impl<F: Future> Harness<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(core: Arc<Core<F::Output>>, fut: F) -> Self {
        Self {
            fut: Some(fut),
            core: Some(core),
        }
    }
}

impl<F: Future> Future for Harness<F>
where
    F::Output: Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let (Some(_), Some(fut)) = (this.core.as_ref(), this.fut.as_mut().as_pin_mut()) else {
            return Poll::Ready(());
        };
        let res = match poll_timed(this.core, fut, cx) {
            Ok(Poll::Pending) => return Poll::Pending,
            res => res,
        };
        // Everything that can run user code (the payload's and the future's
        // destructors) runs contained, with the task current (invariant 8).
        let end = as_current(this.core, || {
            let end = match res {
                Ok(Poll::Ready(v)) => End::Returned(v),
                Ok(Poll::Pending) => unreachable!("asyncio: pending handled above"),
                Err(payload) => End::unwound(payload),
            };
            drop_future(this.fut, end)
        });
        if let Some(core) = this.core.take() {
            core.complete(end);
        }
        Poll::Ready(())
    }
}

#[pinned_drop]
impl<F: Future> PinnedDrop for Harness<F>
where
    F::Output: Send + 'static,
{
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        // Dropped unfinished: Tokio abort, the runtime shutting down, or
        // (invariant 8) a panic that escaped `poll` anyway.
        finish(this.core, this.fut, End::Dropped);
    }
}

/// Drops the user's future now (invariant 2). A destructor that panics is
/// contained and becomes the task's end, as in asyncio an exception raised
/// while a task handles its cancellation ends the task with that exception;
/// the value the future had returned, if any, is then dropped, contained too
/// (invariant 8).
fn drop_future<F, T>(mut fut: Pin<&mut Option<F>>, end: End<T>) -> End<T> {
    match catch_unwind(AssertUnwindSafe(|| fut.set(None))) {
        Ok(()) => end,
        Err(payload) => {
            let err = panic_error(payload);
            if let End::Returned(v) = end {
                drop_contained(v, DISCARDED_RESULT);
            }
            End::Panicked(err)
        }
    }
}

/// How a panic in the destructor of a task's discarded output is reported.
/// Drops the future with the task current, then ends the task as `end`
/// (invariants 2, then 1), if it has not ended yet: how a harness ends a
/// task when the end is known before the future is dropped.
fn finish<T: Send + 'static, F>(
    core: &mut Option<Arc<Core<T>>>,
    fut: Pin<&mut Option<F>>,
    end: End<T>,
) {
    if core.is_none() {
        return;
    }
    let end = as_current(core, || drop_future(fut, end));
    if let Some(core) = core.take() {
        core.complete(end);
    }
}

/// The main task of `asyncio::run`: driven by `block_on`, so its future need
/// not be `Send` or `'static`; its output goes straight back to the caller.
#[pin_project(PinnedDrop)]
pub(crate) struct MainHarness<F: Future> {
    #[pin]
    fut: Option<F>,
    core: Option<Arc<Core<()>>>,
}

/// How the main task ended, when it did not return.
pub(crate) enum MainEnd {
    Panicked(Box<dyn Any + Send>),
    Cancelled,
}

impl<F: Future> MainHarness<F> {
    pub(crate) fn new(core: Arc<Core<()>>, fut: F) -> Self {
        Self {
            fut: Some(fut),
            core: Some(core),
        }
    }
}

impl<F: Future> Future for MainHarness<F> {
    type Output = Result<F::Output, MainEnd>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(core) = this.core.as_ref() else {
            return Poll::Ready(Err(MainEnd::Cancelled));
        };
        // Like an aborted Tokio task, a main task whose cancel was requested
        // is not polled again: `Drop` ends it cancelled.
        // With cleanups running in it, it is polled until its root aborts.
        let requested = core.header.state().is_cancel_requested() && core.aborted();
        let Some(fut) = this.fut.as_mut().as_pin_mut().filter(|_| !requested) else {
            return Poll::Ready(Err(MainEnd::Cancelled));
        };
        let out = match poll_timed(this.core, fut, cx) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) => {
                let end = as_current(this.core, || drop_future(this.fut, End::Returned(())));
                let Some(core) = this.core.take() else {
                    return Poll::Ready(Err(MainEnd::Cancelled));
                };
                match end {
                    End::Panicked(e) => {
                        let payload = Box::new(e.message().to_string());
                        core.complete(End::Panicked(e));
                        Err(MainEnd::Panicked(payload))
                    }
                    end => match core.complete(end) {
                        Ended::Cancelled => Err(MainEnd::Cancelled),
                        _ => Ok(v),
                    },
                }
            }
            Err(payload) => {
                // The payload goes back to `run`'s caller, which resumes it.
                let end = End::Panicked(PanicError::from_payload(&*payload));
                finish(this.core, this.fut, end);
                Err(MainEnd::Panicked(payload))
            }
        };
        Poll::Ready(out)
    }
}

#[pinned_drop]
impl<F: Future> PinnedDrop for MainHarness<F> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        finish(this.core, this.fut, End::Dropped);
    }
}

#[cfg(test)]
mod size_tests {
    /// The sizes `docs/performance.md` relies on: the core with its `Arc`
    /// counts is at most 136 bytes, which glibc serves from a 144-byte chunk
    /// (the same as for 128), and the harness adds one pointer to the future
    /// Tokio stores.
    #[test]
    fn sizes() {
        assert!(std::mem::size_of::<super::Core<usize>>() <= 120);
        assert_eq!(
            std::mem::size_of::<super::Harness<std::future::Ready<usize>>>(),
            std::mem::size_of::<Option<std::future::Ready<usize>>>() + 8
        );
    }
}
