//! The current task: which task of ours this thread is polling, and on
//! whose behalf a closure runs elsewhere (`to_thread`).
//!
//! One reader, [`with_current`], for the crate; one public accessor,
//! [`current_task`]; two writers: the harness around each poll
//! ([`swap_polled`], invariant 6) and [`scope_current`].
//!
//! # Invariants
//! 6. **No clone per poll.** The harness holds the typed `Arc<Core<T>>` (a
//!    thin pointer) and moves it, erased, into the thread-local `CURRENT` for
//!    the duration of a poll, then takes it back: no reference-count traffic.

use std::cell::Cell;

use super::TaskRef;

thread_local! {
    /// The task being polled on this thread, if it is one of ours.
    static CURRENT: Cell<Option<TaskRef>> = const { Cell::new(None) };
    /// The task a closure runs for on another thread (`to_thread`): seen by
    /// `current_task()` only (see `scope_current`).
    static ON_BEHALF_OF: Cell<Option<TaskRef>> = const { Cell::new(None) };
}

/// Reads the task being polled on this thread, without cloning it: `None`
/// outside our tasks, and also while the thread's locals are being
/// destroyed (a `Join` or a harness may be dropped from a thread-local
/// destructor; the panic hook may run then too).
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskRef>) -> R) -> R {
    let cur = CURRENT.try_with(Cell::take).ok().flatten();
    let out = f(cur.as_ref());
    if cur.is_some() {
        let _ = CURRENT.try_with(|c| c.set(cur));
    }
    out
}

/// The task being polled now, if it is one of ours (`None` in a bare
/// `block_on`, a raw `tokio::spawn` task, or a done callback).
///
/// ```
/// asyncio::run(async {
///     let me = asyncio::current_task().expect("main runs as a task");
///     let child = asyncio::create_task(async { asyncio::current_task().unwrap() });
///     let seen = child.await.unwrap();
///     assert_ne!(seen, me);
/// });
/// ```
pub fn current_task() -> Option<TaskRef> {
    let read = |c: &Cell<Option<TaskRef>>| {
        let cur = c.take();
        let out = cur.clone();
        c.set(cur);
        out
    };
    CURRENT.with(read).or_else(|| ON_BEHALF_OF.with(read))
}

/// Runs `f` with `task` as this thread's current task, restoring the previous
/// one afterwards (also when `f` panics): how a closure run elsewhere on a
/// task's behalf (`to_thread`) sees that task through `current_task()`.
///
/// Only `current_task()` sees it: the panic hook, marked await points and
/// the runtime a new task is listed under follow the task actually being
/// polled (`CURRENT`), which a closure on a blocking thread is not.
pub(crate) fn scope_current<R>(task: TaskRef, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<TaskRef>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = ON_BEHALF_OF.try_with(|c| c.set(prev));
        }
    }
    let _restore = Restore(ON_BEHALF_OF.with(|c| c.replace(Some(task))));
    f()
}

/// Makes `task` the task polled on this thread; returns the previous one
/// (the harness's `as_current`: the handle is moved, never cloned,
/// invariant 6). While the thread's locals are being destroyed, `task`
/// comes back as the error.
pub(super) fn swap_polled(task: Option<TaskRef>) -> Result<Option<TaskRef>, Option<TaskRef>> {
    let mut task = task;
    CURRENT
        .try_with(|c| c.replace(task.take()))
        .map_err(|_| task)
}
