//! The task core: the shared state of one task, and the harness future that
//! runs inside the Tokio task and is the one place where a task ends.
//!
//! # Layout
//! One allocation per task: `Arc<Core<T>>`, seen type-erased as
//! `Arc<dyn AnyCore>` by [`TaskRef`] and typed by [`Task<T>`](crate::Task).
//!
//! - [`Header`]: what never changes after creation (id, spawn site, coroutine
//!   type name, runtime id, registry slot) plus one atomic state word, so that
//!   `done()` and `cancelled()` never lock.
//! - `name` behind a `Mutex` of its own, so that a task can be formatted
//!   while its state is locked.
//! - `Inner<T>` behind one `Mutex`: the outcome slot, the done callbacks, the
//!   cancel message, and the handle that cancels the Tokio task. No callback
//!   or destructor runs under this lock; the only user code that does is
//!   `T`'s `Clone` (in `result()`) and `T`'s `Debug` (in `Task<T>`'s `Debug`),
//!   which must therefore not cancel or add callbacks to that same task.
//!
//! # States
//! ```text
//!            cancel()                       harness completes (once)
//! PENDING ─────────────▶ PENDING|CANCEL_REQUESTED ───────────────┐
//!    │                                                          ▼
//!    └──────────────────────────────────────────▶ FINISHED | CANCELLED | PANICKED
//! ```
//! The state word moves forward only. It is written only while `Inner` is
//! locked, together with the outcome, so a reader holding the lock sees both
//! agree; a lock-free reader (`done()`) may only see it a little late.
//!
//! # Invariants
//! 1. **One end.** Only `complete` writes a final outcome, and the harness
//!    calls it exactly once: when the future returns, when it panics, or when
//!    the harness is dropped unfinished (Tokio abort, runtime shutdown). The
//!    harness gives up its core pointer as it calls `complete` (which takes
//!    `self: Arc<Self>`), so a second call cannot happen.
//! 2. **The future is gone first.** The user's future (and everything it
//!    owns) is dropped before the outcome is published, as Tokio guarantees
//!    for `JoinHandle`s.
//! 3. **Cancel means cancelled.** `cancel()` returns `true` only while the
//!    task is pending, and sets `CANCEL_REQUESTED` under the lock; a task whose
//!    flag is set when it completes ends `CANCELLED` even if its future
//!    returned a value in the same poll (asyncio: a task that cancels itself
//!    and returns ends cancelled). A panic still wins over a cancel request.
//! 4. **Callbacks run once, in order, unlocked.** `complete` takes the
//!    callback list out of `Inner` under the lock and runs it after unlocking;
//!    `add_done_callback` on a done task schedules the callback instead of
//!    running it inline. Each callback runs under `catch_unwind`; a panic is
//!    reported and the next callback still runs.
//! 5. **The registry lists every live core; `all_tasks` shows the pending
//!    ones.** The task is inserted while its core is built (before it is
//!    spawned) and leaves when its last handle is dropped (`Header::drop`),
//!    not when it ends: in the common case, a task awaited by the task that
//!    created it, that is the creating thread, whose own shard it locks,
//!    instead of whichever worker ran the task last. `all_tasks` filters out
//!    the done ones (the state word), so a task disappears from it as soon as
//!    it ends.
//! 6. **No clone per poll.** The harness holds the typed `Arc<Core<T>>` (a
//!    thin pointer) and moves it, erased, into the thread-local `CURRENT` for
//!    the duration of a poll, then takes it back: no reference-count traffic.
//! 7. **Stacks and debug mode cost one branch when off** (`stack.rs`,
//!    `debug.rs`). `Header::stack` is one byte of flags (in padding: the
//!    core keeps its size). The frames of marked await points, a panic's
//!    location and the debug-mode creation backtrace live in a side table
//!    keyed by task id, created on first use (first `Framed` poll, a panic
//!    while `CURRENT` is set, or at creation in debug mode) and removed when
//!    the header drops. The "panic retrieved" flag is set by every path that
//!    hands the panic out (`take_output`, `result`, `exception`) and by
//!    `cancel`. Only when `Header::debug` is set does the
//!    harness time each poll (`poll_timed`). Only a task that ended
//!    panicking checks for a panic nobody will see
//!    (`TaskStack::ended_panicked`), and dropping a `Task` costs one atomic
//!    load unless the task is pending or panicked
//!    (`TaskStack::handle_dropped`).
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

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::mem;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use pin_project::{pin_project, pinned_drop};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::registry::{self, Slot};
use super::{CallbackId, TaskId, TaskRef};
use crate::error::{CancelledError, Error, InvalidStateError, PanicError};
use crate::report::{drop_payload, report_panic};
use crate::stack::TaskStack;

// ---------------------------------------------------------------- state word

/// Pending, no cancel requested.
pub(crate) const PENDING: u8 = 0;
/// Pending, `cancel()` was called: the task will end `CANCELLED`.
pub(crate) const CANCEL_REQUESTED: u8 = 1;
/// The future returned a value.
pub(crate) const FINISHED: u8 = 2;
/// The task ended cancelled.
pub(crate) const CANCELLED: u8 = 4;
/// The future panicked.
pub(crate) const PANICKED: u8 = 8;
const DONE: u8 = FINISHED | CANCELLED | PANICKED;
/// Done, and some thread is running the task's callbacks (invariant 4): a
/// callback added now joins that thread's queue, so callbacks never run out
/// of order or two at a time.
const DRAINING: u8 = 16;

/// How a combinator (`gather`, `wait`, `as_completed`) hears that one of
/// its children ended, without a boxed closure per child.
pub(crate) trait Notify: Send + Sync + 'static {
    /// Child `index` of the combinator, `task`, has ended.
    fn notify(&self, index: usize, task: &TaskRef);
}

/// A done callback.
pub(crate) enum Callback {
    /// A user's callback (`add_done_callback`).
    Boxed(Box<dyn FnOnce(&TaskRef) + Send + 'static>),
    /// A combinator's: child `index` of it ended. No allocation, one `Arc`
    /// clone.
    Notify(Arc<dyn Notify>, usize),
}

impl Callback {
    fn call(self, task: &TaskRef) {
        match self {
            Callback::Boxed(f) => f(task),
            Callback::Notify(watcher, index) => watcher.notify(index, task),
        }
    }
}

/// The done callbacks of one task, in registration order: the first one,
/// then the others (an empty `Vec` allocates nothing). Most tasks have no
/// callback (`None`, no allocation) or one (one allocation, the common case
/// of a task awaited by a combinator). Invariant: a `Some` list is never
/// empty.
struct Callbacks {
    first: (CallbackId, Callback),
    rest: Vec<(CallbackId, Callback)>,
}

impl Callbacks {
    /// Adds `cb` at the end of `slot`'s list.
    fn push(slot: &mut Option<Box<Callbacks>>, id: CallbackId, cb: Callback) {
        match slot {
            None => {
                *slot = Some(Box::new(Callbacks {
                    first: (id, cb),
                    rest: Vec::new(),
                }))
            }
            Some(list) => list.rest.push((id, cb)),
        }
    }

    /// Takes out the callback registered as `id`, if it is in `slot`.
    fn remove(slot: &mut Option<Box<Callbacks>>, id: CallbackId) -> Option<Callback> {
        let list = slot.as_deref_mut()?;
        if list.first.0 != id {
            let pos = list.rest.iter().position(|(i, _)| *i == id)?;
            return Some(list.rest.remove(pos).1);
        }
        if list.rest.is_empty() {
            return slot.take().map(|list| list.first.1);
        }
        let next = list.rest.remove(0);
        Some(mem::replace(&mut list.first, next).1)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// The callbacks, in registration order.
    fn into_callbacks(self) -> impl Iterator<Item = Callback> {
        std::iter::once(self.first)
            .chain(self.rest)
            .map(|(_, cb)| cb)
    }
}

/// What never changes after creation, and the state word.
pub(crate) struct Header {
    pub(crate) id: TaskId,
    state: AtomicU8,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) coro: fn() -> &'static str,
    pub(crate) runtime: Option<tokio::runtime::Id>,
    /// Debug mode (`Runner::debug`, `ASYNCIO_DEBUG`), inherited by the tasks
    /// this task creates.
    pub(crate) debug: bool,
    slot: Slot,
    /// One byte of flags (fits in padding): "exception retrieved" and
    /// friends, and whether the task has an entry in the stack table
    /// (invariant 7).
    pub(crate) stack: TaskStack,
}

impl Drop for Header {
    fn drop(&mut self) {
        // One branch: only tasks with frames, a panic or a debug backtrace
        // have an entry to remove.
        self.stack.release(self.id);
        // The last handle is gone (invariant 5). The entry (a `Weak` to this
        // very allocation) is dropped after the shard is unlocked.
        drop(registry::remove(self.slot));
    }
}

impl Header {
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state() & DONE != 0
    }
}

/// How to stop the running future.
enum Canceller {
    /// Not yet known (between building the core and spawning), or gone (done).
    None,
    /// A spawned Tokio task.
    Abort(AbortHandle),
    /// The main task of `asyncio::run`, driven by `block_on`.
    Token(CancellationToken),
}

impl Canceller {
    fn cancel(&self) {
        match self {
            Canceller::None => {}
            Canceller::Abort(h) => h.abort(),
            Canceller::Token(t) => t.cancel(),
        }
    }
}

/// The outcome slot.
enum Outcome<T> {
    Pending {
        cancel_msg: Option<Arc<str>>,
    },
    Returned(T),
    /// The value was handed to an awaiter.
    Taken,
    Cancelled(CancelledError),
    Panicked(PanicError),
}

struct Inner<T> {
    outcome: Outcome<T>,
    /// Boxed on purpose: most tasks never get a callback, and a thin box
    /// (8 bytes) keeps the core small (see `docs/performance.md`).
    callbacks: Option<Box<Callbacks>>,
    canceller: Canceller,
}

/// The shared state of one task with output `T`.
pub(crate) struct Core<T> {
    header: Header,
    /// Its own lock: formatting a task (which reads the name) must work
    /// while `inner` is held, e.g. from `T`'s `Debug` under `with_output`.
    name: Mutex<Option<Arc<str>>>,
    inner: Mutex<Inner<T>>,
}

/// The type-erased face of a [`Core`], as [`TaskRef`] sees it.
pub(crate) trait AnyCore: Send + Sync + 'static {
    fn header(&self) -> &Header;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn name(&self) -> Option<Arc<str>>;
    fn set_name(&self, name: Arc<str>);
    fn cancel(&self, msg: Option<Arc<str>>) -> bool;
    /// Registers a callback; see [`Push`].
    fn push_callback(&self, id: CallbackId, cb: Callback, start_drain: bool) -> Push;
    /// Runs the queued callbacks of a done task, in order, until the queue
    /// is empty; then clears `DRAINING` (invariant 4).
    fn drain(&self, task: &TaskRef);
    fn remove_callback(&self, id: CallbackId) -> usize;
    /// How many callbacks are registered (for the crate's unit tests).
    #[cfg(test)]
    fn callback_count(&self) -> usize;
    /// The error the task ended with, if it ended with one.
    fn error(&self) -> Option<Error>;
    /// `TaskRef::exception()` (marks the panic retrieved).
    fn exception(&self) -> crate::Result<Option<Error>>;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl<T: Send + 'static> Core<T> {
    /// Builds the core of a new task and registers it.
    pub(crate) fn new_registered(
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
        coro: fn() -> &'static str,
        runtime: Option<tokio::runtime::Id>,
        debug: bool,
    ) -> Arc<Self> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = TaskId(NonZeroU64::new(id).expect("task id counter wrapped"));
        Arc::new_cyclic(|weak: &Weak<Self>| {
            let slot = registry::insert(weak.clone());
            Core {
                header: Header {
                    id,
                    state: AtomicU8::new(PENDING),
                    spawned_at,
                    coro,
                    runtime,
                    debug,
                    slot,
                    stack: TaskStack::new(id, debug),
                },
                name: Mutex::new(name),
                inner: Mutex::new(Inner {
                    outcome: Outcome::Pending { cancel_msg: None },
                    callbacks: None,
                    canceller: Canceller::None,
                }),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // No user code runs under this lock, so it cannot be poisoned by a
        // user panic; recover anyway rather than cascade.
        crate::lock::lock(&self.inner)
    }

    /// Installs what cancels the task, once it is spawned. A cancel that came
    /// first (the task cancelling itself before `spawn` returned) is passed on.
    pub(crate) fn set_abort_handle(&self, handle: AbortHandle) {
        self.set_canceller(Canceller::Abort(handle));
    }

    /// The main task of `asyncio::run`: its panics go on to `run`'s caller,
    /// so the panic hook lets them through (see `stack::install_panic_hook`).
    pub(crate) fn set_cancel_token(&self, token: CancellationToken) {
        self.header.stack.mark_main();
        self.set_canceller(Canceller::Token(token));
    }

    fn set_canceller(&self, canceller: Canceller) {
        let mut inner = self.lock();
        let state = self.header.state();
        if state & DONE != 0 {
            return; // finished before we got here: nothing left to cancel
        }
        if state & CANCEL_REQUESTED != 0 {
            canceller.cancel();
        }
        inner.canceller = canceller;
    }

    /// Hands the output to an awaiter (once).
    pub(crate) fn take_output(&self) -> crate::Result<T> {
        let mut inner = self.lock();
        match mem::replace(&mut inner.outcome, Outcome::Taken) {
            Outcome::Returned(v) => Ok(v),
            other => {
                let err = self.read_error(&other);
                inner.outcome = other;
                Err(err)
            }
        }
    }

    /// `Task::result()`: a clone of the output.
    pub(crate) fn result(&self) -> crate::Result<T>
    where
        T: Clone,
    {
        match &self.lock().outcome {
            Outcome::Returned(v) => Ok(v.clone()),
            other => Err(self.read_error(other)),
        }
    }

    /// What reading the output gives when there is no value to give.
    fn read_error(&self, outcome: &Outcome<T>) -> Error {
        match outcome {
            Outcome::Pending { .. } => InvalidStateError::result_not_set(),
            Outcome::Taken => InvalidStateError::result_taken(),
            Outcome::Cancelled(e) => Error::Cancelled(e.clone()),
            Outcome::Panicked(e) => {
                self.header.stack.mark_retrieved();
                Error::Panicked(e.clone())
            }
            Outcome::Returned(_) => unreachable!("asyncio: read_error on a returned task"),
        }
    }

    /// `Task::exception()`.
    pub(crate) fn exception(&self) -> crate::Result<Option<Error>> {
        match &self.lock().outcome {
            Outcome::Pending { .. } => Err(InvalidStateError::exception_not_set()),
            Outcome::Cancelled(e) => Err(Error::Cancelled(e.clone())),
            Outcome::Panicked(e) => {
                self.header.stack.mark_retrieved();
                Ok(Some(Error::Panicked(e.clone())))
            }
            Outcome::Returned(_) | Outcome::Taken => Ok(None),
        }
    }

    /// Formats the output, if there is one to show.
    pub(crate) fn with_output<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        match &self.lock().outcome {
            Outcome::Returned(v) => f(Some(v)),
            _ => f(None),
        }
    }

    /// Publishes the end of the task (invariant 1); returns the final state.
    fn complete(self: Arc<Self>, end: End<T>) -> u8 {
        let (canceller, discarded, state, callbacks) = {
            let mut inner = self.lock();
            let requested = self.header.state() & CANCEL_REQUESTED != 0;
            let msg = match &mut inner.outcome {
                Outcome::Pending { cancel_msg } => cancel_msg.take(),
                _ => unreachable!("asyncio: a task completed twice"),
            };
            let cancelled = || Outcome::Cancelled(CancelledError::from_message(msg.clone()));
            let (outcome, state, discarded) = match end {
                End::Returned(v) if !requested => (Outcome::Returned(v), FINISHED, None),
                End::Returned(v) => (cancelled(), CANCELLED, Some(v)),
                End::Dropped => (cancelled(), CANCELLED, None),
                End::Panicked(e) => (Outcome::Panicked(e), PANICKED, None),
            };
            inner.outcome = outcome;
            // With callbacks to run, this thread becomes their drainer: any
            // added meanwhile join its queue (invariant 4). Without, no
            // drain and no second lock: a late callback starts its own.
            let callbacks = inner.callbacks.take();
            let draining = if callbacks.is_some() { DRAINING } else { 0 };
            self.header.state.store(state | draining, Ordering::Release);
            let canceller = mem::replace(&mut inner.canceller, Canceller::None);
            (canceller, discarded, state, callbacks)
        };
        // Everything below runs unlocked: user callbacks and destructors.
        drop(canceller);
        let task = TaskRef::from_core(self);
        if let Some(callbacks) = callbacks {
            for cb in callbacks.into_callbacks() {
                run_callback(&task, cb);
            }
            task.core().drain(&task);
        }
        if let Some(v) = discarded {
            // A value discarded because the task was cancelled as it
            // returned: its destructor runs last, contained (invariant 8).
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(v))) {
                report_panic(DISCARDED_RESULT, Some(&task), payload);
            }
        }
        let header = task.core().header();
        if state == PANICKED {
            header.stack.ended_panicked(&task);
        }
        state
    }
}

impl<T: Send + 'static> AnyCore for Core<T> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn name(&self) -> Option<Arc<str>> {
        crate::lock::lock(&self.name).clone()
    }

    fn set_name(&self, name: Arc<str>) {
        let old = crate::lock::lock(&self.name).replace(name);
        drop(old); // outside the lock
    }

    fn cancel(&self, msg: Option<Arc<str>>) -> bool {
        // asyncio: cancel() counts as retrieving the exception.
        self.header.stack.mark_retrieved();
        let mut inner = self.lock();
        let state = self.header.state();
        if state & DONE != 0 {
            return false;
        }
        if let Outcome::Pending { cancel_msg } = &mut inner.outcome {
            if msg.is_some() {
                *cancel_msg = msg; // the last message given wins
            }
        }
        self.header
            .state
            .store(state | CANCEL_REQUESTED, Ordering::Release);
        // Only schedules the cancellation: no user code runs here.
        inner.canceller.cancel();
        true
    }

    fn push_callback(&self, id: CallbackId, cb: Callback, start_drain: bool) -> Push {
        let mut inner = self.lock();
        let state = self.header.state();
        let push = if state & DONE == 0 || state & DRAINING != 0 {
            Push::Queued
        } else if start_drain {
            self.header.state.store(state | DRAINING, Ordering::Release);
            Push::StartDrain
        } else {
            return Push::Done(cb);
        };
        Callbacks::push(&mut inner.callbacks, id, cb);
        push
    }

    fn drain(&self, task: &TaskRef) {
        loop {
            let batch = {
                let mut inner = self.lock();
                match inner.callbacks.take() {
                    Some(batch) => batch,
                    None => {
                        let state = self.header.state();
                        self.header
                            .state
                            .store(state & !DRAINING, Ordering::Release);
                        return;
                    }
                }
            };
            for cb in batch.into_callbacks() {
                run_callback(task, cb);
            }
        }
    }

    #[cfg(test)]
    fn callback_count(&self) -> usize {
        self.lock().callbacks.as_ref().map_or(0, |c| c.len())
    }

    fn remove_callback(&self, id: CallbackId) -> usize {
        let removed = {
            let mut inner = self.lock();
            if self.header.is_done() {
                // asyncio: once the task is done its callbacks are scheduled
                // and cannot be taken back.
                return 0;
            }
            Callbacks::remove(&mut inner.callbacks, id)
        };
        // The callback (and what it captured) is dropped unlocked.
        usize::from(removed.is_some())
    }

    fn exception(&self) -> crate::Result<Option<Error>> {
        Core::exception(self)
    }

    fn error(&self) -> Option<Error> {
        match &self.lock().outcome {
            Outcome::Cancelled(e) => Some(Error::Cancelled(e.clone())),
            Outcome::Panicked(e) => Some(Error::Panicked(e.clone())),
            _ => None,
        }
    }
}

/// What [`AnyCore::push_callback`] did.
pub(crate) enum Push {
    /// Queued: it runs after the end (or soon, by the thread draining).
    Queued,
    /// The task is done and nothing is queued; asked to, the caller now
    /// owns the drain (`StartDrain`, the callback is queued first) …
    StartDrain,
    /// … or, not asked to, gets the callback back (`Done`).
    Done(Callback),
}

/// How a task's future ended.
enum End<T> {
    Returned(T),
    Panicked(PanicError),
    Dropped,
}

/// Runs one done callback, containing and reporting its panic.
pub(crate) fn run_callback(task: &TaskRef, cb: Callback) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| cb.call(task))) {
        report_panic("Exception in callback", Some(task), payload);
    }
}

// ------------------------------------------------------------ current task

thread_local! {
    /// The task being polled on this thread, if it is one of ours.
    static CURRENT: Cell<Option<TaskRef>> = const { Cell::new(None) };
    /// The task a closure runs for on another thread (`to_thread`): seen by
    /// `current_task()` only (see `scope_current`).
    static ON_BEHALF_OF: Cell<Option<TaskRef>> = const { Cell::new(None) };
}

/// A clone of the current task, if any.
pub(crate) fn current() -> Option<TaskRef> {
    let read = |c: &Cell<Option<TaskRef>>| {
        let cur = c.take();
        let out = cur.clone();
        c.set(cur);
        out
    };
    CURRENT.with(read).or_else(|| ON_BEHALF_OF.with(read))
}

/// Reads the current task without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskRef>) -> R) -> R {
    CURRENT.with(|c| {
        let cur = c.take();
        let out = f(cur.as_ref());
        c.set(cur);
        out
    })
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

/// [`with_current`] that gives up (`None`) instead of panicking when the
/// thread-local is already destroyed: for the panic hook.
pub(crate) fn try_with_current<R>(f: impl FnOnce(Option<&TaskRef>) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| {
            let cur = c.take();
            let out = f(cur.as_ref());
            c.set(cur);
            out
        })
        .ok()
}

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
            if let Ok(Some(task)) = CURRENT.try_with(|c| c.replace(prev)) {
                *self.slot = Some(task.into_typed());
            }
        }
    }
    let mut task = slot.take().map(|core| TaskRef::from_core(core));
    // `try_with`: a harness may be dropped while this thread's locals are
    // being destroyed (a runtime dropped from a thread-local destructor).
    let Ok(prev) = CURRENT.try_with(|c| c.replace(task.take())) else {
        *slot = task.map(TaskRef::into_typed);
        return f();
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
fn panic_error(payload: Box<dyn Any + Send>) -> PanicError {
    let err = PanicError::from_payload(&*payload);
    drop_payload(payload, None);
    err
}

/// Drops a value whose destructor is user code, containing (and reporting,
/// as `what`, with the current task) a panic of that destructor.
fn drop_contained<V>(value: V, what: &str) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        report_panic(what, current().as_ref(), payload);
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
                Err(payload) => End::Panicked(panic_error(payload)),
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
        if this.core.is_some() {
            // Dropped unfinished: Tokio abort, the runtime shutting down, or
            // (invariant 8) a panic that escaped `poll` anyway.
            let end = as_current(this.core, || drop_future(this.fut, End::Dropped));
            if let Some(core) = this.core.take() {
                core.complete(end);
            }
        }
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
const DISCARDED_RESULT: &str = "Exception in the destructor of a discarded task result";

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
        let requested = core.header.state() & CANCEL_REQUESTED != 0;
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
                        CANCELLED => Err(MainEnd::Cancelled),
                        _ => Ok(v),
                    },
                }
            }
            Err(payload) => {
                // The payload goes back to `run`'s caller, which resumes it.
                let end = End::Panicked(PanicError::from_payload(&*payload));
                let end = as_current(this.core, || drop_future(this.fut, end));
                if let Some(core) = this.core.take() {
                    core.complete(end);
                }
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
        if this.core.is_some() {
            let end = as_current(this.core, || drop_future(this.fut, End::Dropped));
            if let Some(core) = this.core.take() {
                core.complete(end);
            }
        }
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

#[cfg(test)]
mod callbacks_tests {
    use super::super::CallbackId;
    use super::{Callback, Callbacks};
    use std::sync::{Arc, Mutex};

    /// A list of callbacks that each push their number to `log`.
    fn push_n(slot: &mut Option<Box<Callbacks>>, log: &Arc<Mutex<Vec<u64>>>, ids: &[u64]) {
        for &i in ids {
            let log = log.clone();
            let cb = Callback::Boxed(Box::new(move |_| log.lock().unwrap().push(i)));
            Callbacks::push(slot, CallbackId(i), cb);
        }
    }

    /// Runs what is left, in order, without a task (the callbacks above
    /// ignore it): the numbers they pushed.
    fn run(slot: Option<Box<Callbacks>>, log: &Arc<Mutex<Vec<u64>>>) -> Vec<u64> {
        let task = crate::Runner::new()
            .current_thread()
            .run(async { crate::create_task(async {}).to_ref() });
        for cb in slot.map(|c| c.into_callbacks()).into_iter().flatten() {
            cb.call(&task);
        }
        std::mem::take(&mut *log.lock().unwrap())
    }

    /// One callback, then many: registration order is kept, and removal
    /// works for a lone callback and for later ones.
    #[test]
    fn order_and_removal_in_both_shapes() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut slot = None;
        push_n(&mut slot, &log, &[1]);
        assert_eq!(slot.as_ref().map(|c| c.len()), Some(1));
        assert!(Callbacks::remove(&mut slot, CallbackId(9)).is_none());
        assert!(Callbacks::remove(&mut slot, CallbackId(1)).is_some());
        assert!(slot.is_none(), "removing the only callback frees the list");

        push_n(&mut slot, &log, &[1, 2, 3, 4]);
        assert!(Callbacks::remove(&mut slot, CallbackId(2)).is_some());
        assert!(Callbacks::remove(&mut slot, CallbackId(2)).is_none());
        assert_eq!(slot.as_ref().map(|c| c.len()), Some(3));
        assert_eq!(run(slot, &log), [1, 3, 4]);
    }

    /// Removing the first of several keeps the others in order.
    #[test]
    fn removing_the_first_of_several_keeps_the_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut slot = None;
        push_n(&mut slot, &log, &[1, 2, 3, 4]);
        assert!(Callbacks::remove(&mut slot, CallbackId(1)).is_some());
        assert_eq!(run(slot, &log), [2, 3, 4]);
    }
}
