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
//! - `Inner<T>` behind one `Mutex`: the outcome slot, the done callbacks, the
//!   explicit name, the cancel message, and the handle that cancels the Tokio
//!   task. Nothing under this lock calls user code or blocks.
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
//!    harness gives up its `TaskRef` as it calls `complete`, so a second call
//!    cannot happen.
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
//! 5. **The registry holds exactly the pending tasks.** The task is inserted
//!    while its core is built (before it is spawned) and `complete` removes it.
//! 6. **No clone per poll.** The harness moves its `TaskRef` into the
//!    thread-local `CURRENT` for the duration of a poll and takes it back.

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
use crate::debug::{ExceptionContext, call_exception_handler};
use crate::error::{CancelledError, Error, InvalidStateError, PanicError};

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

/// A done callback.
pub(crate) type Callback = Box<dyn FnOnce(&TaskRef) + Send + 'static>;

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
    name: Option<Arc<str>>,
    callbacks: Vec<(CallbackId, Callback)>,
    canceller: Canceller,
}

/// The shared state of one task with output `T`.
pub(crate) struct Core<T> {
    header: Header,
    inner: Mutex<Inner<T>>,
}

/// The type-erased face of a [`Core`], as [`TaskRef`] sees it.
pub(crate) trait AnyCore: Send + Sync + 'static {
    fn header(&self) -> &Header;
    fn as_any(&self) -> &dyn Any;
    fn name(&self) -> Option<Arc<str>>;
    fn set_name(&self, name: Arc<str>);
    fn cancel(&self, msg: Option<Arc<str>>) -> bool;
    /// `Err(callback)` when the task is already done: the caller schedules it.
    fn push_callback(&self, id: CallbackId, cb: Callback) -> Result<(), Callback>;
    fn remove_callback(&self, id: CallbackId) -> usize;
    /// The error the task ended with, if it ended with one.
    fn error(&self) -> Option<Error>;
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
                },
                inner: Mutex::new(Inner {
                    outcome: Outcome::Pending { cancel_msg: None },
                    name,
                    callbacks: Vec::new(),
                    canceller: Canceller::None,
                }),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // No user code runs under this lock, so it cannot be poisoned by a
        // user panic; recover anyway rather than cascade.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs what cancels the task, once it is spawned. A cancel that came
    /// first (the task cancelling itself before `spawn` returned) is passed on.
    pub(crate) fn set_abort_handle(&self, handle: AbortHandle) {
        self.set_canceller(Canceller::Abort(handle));
    }

    pub(crate) fn set_cancel_token(&self, token: CancellationToken) {
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
        match &inner.outcome {
            Outcome::Pending { .. } => Err(InvalidStateError::result_not_set()),
            Outcome::Taken => Err(InvalidStateError::result_taken()),
            Outcome::Cancelled(e) => Err(Error::Cancelled(e.clone())),
            Outcome::Panicked(e) => Err(Error::Panicked(e.clone())),
            Outcome::Returned(_) => match mem::replace(&mut inner.outcome, Outcome::Taken) {
                Outcome::Returned(v) => Ok(v),
                _ => unreachable!(),
            },
        }
    }

    /// `Task::result()`: a clone of the output.
    pub(crate) fn result(&self) -> crate::Result<T>
    where
        T: Clone,
    {
        match &self.lock().outcome {
            Outcome::Returned(v) => Ok(v.clone()),
            Outcome::Pending { .. } => Err(InvalidStateError::result_not_set()),
            Outcome::Taken => Err(InvalidStateError::result_taken()),
            Outcome::Cancelled(e) => Err(Error::Cancelled(e.clone())),
            Outcome::Panicked(e) => Err(Error::Panicked(e.clone())),
        }
    }

    /// `Task::exception()`.
    pub(crate) fn exception(&self) -> crate::Result<Option<Error>> {
        match &self.lock().outcome {
            Outcome::Pending { .. } => Err(InvalidStateError::exception_not_set()),
            Outcome::Cancelled(e) => Err(Error::Cancelled(e.clone())),
            Outcome::Panicked(e) => Ok(Some(Error::Panicked(e.clone()))),
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

    /// Publishes the end of the task: invariant 1. `returned` is `None` when
    /// the future was dropped unfinished.
    fn complete(&self, task: &TaskRef, end: End<T>) {
        let (callbacks, canceller, discarded) = {
            let mut inner = self.lock();
            let requested = self.header.state() & CANCEL_REQUESTED != 0;
            let msg = match &mut inner.outcome {
                Outcome::Pending { cancel_msg } => cancel_msg.take(),
                _ => unreachable!("a task completed twice"),
            };
            let cancelled = || Outcome::Cancelled(CancelledError::from_message(msg.clone()));
            let (outcome, state, discarded) = match end {
                End::Returned(v) if !requested => (Outcome::Returned(v), FINISHED, None),
                End::Returned(v) => (cancelled(), CANCELLED, Some(v)),
                End::Dropped => (cancelled(), CANCELLED, None),
                End::Panicked(e) => (Outcome::Panicked(e), PANICKED, None),
            };
            inner.outcome = outcome;
            self.header.state.store(state, Ordering::Release);
            let callbacks = mem::take(&mut inner.callbacks);
            let canceller = mem::replace(&mut inner.canceller, Canceller::None);
            (callbacks, canceller, discarded)
        };
        // Everything below runs unlocked: user destructors and callbacks.
        drop(discarded);
        drop(canceller);
        drop(registry::remove(self.header.slot));
        for (_, cb) in callbacks {
            run_callback(task, cb);
        }
    }
}

impl<T: Send + 'static> AnyCore for Core<T> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> Option<Arc<str>> {
        self.lock().name.clone()
    }

    fn set_name(&self, name: Arc<str>) {
        self.lock().name = Some(name);
    }

    fn cancel(&self, msg: Option<Arc<str>>) -> bool {
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

    fn push_callback(&self, id: CallbackId, cb: Callback) -> Result<(), Callback> {
        let mut inner = self.lock();
        if self.header.is_done() {
            return Err(cb);
        }
        inner.callbacks.push((id, cb));
        Ok(())
    }

    fn remove_callback(&self, id: CallbackId) -> usize {
        let removed = {
            let mut inner = self.lock();
            inner
                .callbacks
                .iter()
                .position(|(i, _)| *i == id)
                .map(|pos| inner.callbacks.remove(pos))
        };
        // The callback (and what it captured) is dropped unlocked.
        usize::from(removed.is_some())
    }

    fn error(&self) -> Option<Error> {
        match &self.lock().outcome {
            Outcome::Cancelled(e) => Some(Error::Cancelled(e.clone())),
            Outcome::Panicked(e) => Some(Error::Panicked(e.clone())),
            _ => None,
        }
    }
}

/// How a task's future ended.
enum End<T> {
    Returned(T),
    Panicked(PanicError),
    Dropped,
}

/// Runs one done callback, containing and reporting its panic.
pub(crate) fn run_callback(task: &TaskRef, cb: Callback) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| cb(task))) {
        let err = PanicError::from_payload(&*payload);
        drop(payload);
        call_exception_handler(
            ExceptionContext::new("Exception in callback")
                .with_exception(Error::Panicked(err))
                .with_task(task.clone()),
        );
    }
}

// ------------------------------------------------------------ current task

thread_local! {
    /// The task being polled on this thread, if it is one of ours.
    static CURRENT: Cell<Option<TaskRef>> = const { Cell::new(None) };
}

/// A clone of the current task, if any.
pub(crate) fn current() -> Option<TaskRef> {
    CURRENT.with(|c| {
        let cur = c.take();
        let out = cur.clone();
        c.set(cur);
        out
    })
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

/// Polls `fut` as task `task`: `task` is the current task during the poll
/// (invariant 6) and a panic is caught.
fn poll_as<F: Future>(
    task: TaskRef,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> (TaskRef, std::thread::Result<Poll<F::Output>>) {
    let prev = CURRENT.with(|c| c.replace(Some(task)));
    let res = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
    let task = CURRENT
        .with(|c| c.replace(prev))
        .expect("asyncio: the current-task slot was emptied during a poll");
    (task, res)
}

fn typed<T: Send + 'static>(task: &TaskRef) -> &Core<T> {
    task.core()
        .as_any()
        .downcast_ref::<Core<T>>()
        .expect("asyncio: task core of an unexpected type")
}

// ----------------------------------------------------------------- harness

/// The future Tokio runs for each task of ours.
#[pin_project(PinnedDrop)]
pub(crate) struct Harness<F: Future>
where
    F::Output: Send + 'static,
{
    #[pin]
    fut: Option<F>,
    /// `Some` until the task completes (invariant 1).
    task: Option<TaskRef>,
}

impl<F: Future> Harness<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(task: TaskRef, fut: F) -> Self {
        Self {
            fut: Some(fut),
            task: Some(task),
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
        let (Some(task), Some(fut)) = (this.task.take(), this.fut.as_mut().as_pin_mut()) else {
            return Poll::Ready(());
        };
        let (task, res) = poll_as(task, fut, cx);
        let end = match res {
            Ok(Poll::Pending) => {
                *this.task = Some(task);
                return Poll::Pending;
            }
            Ok(Poll::Ready(v)) => End::Returned(v),
            Err(payload) => End::Panicked(PanicError::from_payload(&*payload)),
        };
        drop_future(this.fut);
        typed::<F::Output>(&task).complete(&task, end);
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
        if let Some(task) = this.task.take() {
            // Dropped unfinished: Tokio abort, or the runtime shutting down.
            drop_future(this.fut);
            typed::<F::Output>(&task).complete(&task, End::Dropped);
        }
    }
}

/// Drops the user's future now (invariant 2); a panicking destructor is
/// contained.
fn drop_future<F>(fut: Pin<&mut Option<F>>) {
    let mut fut = fut;
    let _ = catch_unwind(AssertUnwindSafe(|| fut.set(None)));
}

/// The main task of `asyncio::run`: driven by `block_on`, so its future need
/// not be `Send` or `'static`; its output goes straight back to the caller.
#[pin_project(PinnedDrop)]
pub(crate) struct MainHarness<F: Future> {
    #[pin]
    fut: Option<F>,
    task: Option<TaskRef>,
}

/// How the main task ended, when it did not return.
pub(crate) enum MainEnd {
    Panicked(Box<dyn Any + Send>),
    Cancelled,
}

impl<F: Future> MainHarness<F> {
    pub(crate) fn new(task: TaskRef, fut: F) -> Self {
        Self {
            fut: Some(fut),
            task: Some(task),
        }
    }
}

impl<F: Future> Future for MainHarness<F> {
    type Output = Result<F::Output, MainEnd>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let (Some(task), Some(fut)) = (this.task.take(), this.fut.as_mut().as_pin_mut()) else {
            return Poll::Ready(Err(MainEnd::Cancelled));
        };
        let (task, res) = poll_as(task, fut, cx);
        let core = typed::<()>(&task);
        let out = match res {
            Ok(Poll::Pending) => {
                *this.task = Some(task);
                return Poll::Pending;
            }
            Ok(Poll::Ready(v)) => {
                let cancelled = core.header.state() & CANCEL_REQUESTED != 0;
                drop_future(this.fut);
                core.complete(&task, End::Returned(()));
                if cancelled {
                    Err(MainEnd::Cancelled)
                } else {
                    Ok(v)
                }
            }
            Err(payload) => {
                drop_future(this.fut);
                core.complete(&task, End::Panicked(PanicError::from_payload(&*payload)));
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
        if let Some(task) = this.task.take() {
            drop_future(this.fut);
            typed::<()>(&task).complete(&task, End::Dropped);
        }
    }
}
