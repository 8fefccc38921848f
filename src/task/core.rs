//! The task core: the shared state of one task.
//!
//! # Layout
//! One allocation per task: `Arc<Core<T>>`, seen type-erased as
//! `Arc<dyn AnyCore>` by [`TaskRef`] and typed by [`Task<T>`](crate::Task).
//!
//! - [`Header`]: what never changes after creation (id, spawn site, coroutine
//!   type name, runtime id, registry slot), the state word (`state.rs`), so
//!   that `done()` and `cancelled()` never lock, and the diagnostic flags
//!   (`diag.rs`).
//! - `name` behind a `Mutex` of its own, so that a task can be formatted
//!   while its state is locked.
//! - [`Inner<T>`] behind one `Mutex`: the outcome slot, the done callbacks, the
//!   cancel message, and the handle that cancels the Tokio task. No callback
//!   or destructor runs under this lock; the only user code that does is
//!   `T`'s `Clone` (in `result()`) and `T`'s `Debug` (in `Task<T>`'s `Debug`),
//!   which must therefore not cancel or add callbacks to that same task.
//!
//! The core is written by [`Core::complete`] (called by the harness, the one
//! place a task ends, invariant 1 in `harness.rs`), [`AnyCore::cancel`]
//! (invariant 3 in `state.rs`) and the callback methods (invariant 4 in
//! `callbacks.rs`); every write of the state word goes through a transition
//! of `state.rs` that takes the locked [`Inner`] (invariant 9).

use std::any::Any;
use std::mem;
use std::panic::Location;

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::callbacks::{Callback, Callbacks, Push, run_callback};
use super::diag::DiagFlags;
use super::registry::{self, Slot};
use super::state::{AddCallback, CancelRequest, Ended, Snapshot, StateWord};
use super::{CallbackId, TaskId, TaskRef};
use crate::error::{CancelledError, Error, FailedError, InvalidStateError, PanicError};
use crate::scope::{AbortFn, Awaiter, Node, TaskRoot};
use crate::sync_shim::{Arc, Mutex, MutexGuard, Weak};

/// What never changes after creation, and the state word.
pub(crate) struct Header {
    pub(crate) id: TaskId,
    state: StateWord,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) coro: fn() -> &'static str,
    pub(crate) runtime: Option<tokio::runtime::Id>,
    /// Debug mode (`Runner::debug`, `ASYNCIO_DEBUG`), inherited by the tasks
    /// this task creates.
    pub(crate) debug: bool,
    slot: Slot,
    /// One byte of flags (fits in padding): "exception retrieved" and
    /// friends, and whether the task has an entry in the diagnostics side
    /// table (invariant 7, `diag.rs`).
    pub(crate) diag: DiagFlags,
}

impl Drop for Header {
    fn drop(&mut self) {
        // One branch: only tasks with frames, a panic or a debug backtrace
        // have an entry to remove.
        self.diag.release(self.id);
        // The last handle is gone (invariant 5). The entry (a `Weak` to this
        // very allocation) is dropped after the shard is unlocked.
        drop(registry::remove(self.slot));
    }
}

impl Header {
    /// The state word now (lock-free, invariant 9).
    pub(crate) fn state(&self) -> Snapshot {
        self.state.load()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state().is_done()
    }
}

/// How to stop the running future.
enum Canceller {
    /// Not yet known (between building the core and spawning), or gone (done).
    None,
    /// A spawned Tokio task.
    Abort(AbortHandle),
    /// A spawned Tokio task awaited by value before it entered any cancel
    /// scope: the awaiter left what it needs to hold its own scope open
    /// once this task enters one (`scope/await_task.rs`). Boxed: the core
    /// stays as small as it is.
    Awaited(Box<Awaited>),
    /// The main task of `asyncio::run`, driven by `block_on`.
    Token(CancellationToken),
    /// A cancel scope registered in the task (`on_cancel`, a timeout scope,
    /// a task group, a by-value await of a task with cleanups): the task's
    /// root scope holds the abort, and a cancel signals the scopes first
    /// (`scope/node.rs`). Only such tasks get here: the others pay nothing.
    Scoped(Arc<TaskRoot>),
}

impl Canceller {
    /// Stops the future. `Scoped` is not handled here: the caller signals
    /// the root unlocked.
    fn cancel(&self) {
        match self {
            Canceller::None | Canceller::Scoped(_) => {}
            Canceller::Abort(h) => h.abort(),
            Canceller::Awaited(a) => a.abort.abort(),
            Canceller::Token(t) => t.cancel(),
        }
    }

    /// The abort as a closure, for a root scope to call later, and the
    /// by-value awaiter left here, if any.
    fn into_abort_fn(self) -> (Option<AbortFn>, Option<Awaiter>) {
        match self {
            Canceller::None | Canceller::Scoped(_) => (None, None),
            Canceller::Abort(h) => (Some(Box::new(move || h.abort())), None),
            Canceller::Awaited(a) => {
                let Awaited { abort, awaiter } = *a;
                (Some(Box::new(move || abort.abort())), Some(awaiter))
            }
            Canceller::Token(t) => (Some(Box::new(move || t.cancel())), None),
        }
    }
}

/// [`Canceller::Awaited`]'s box.
struct Awaited {
    abort: AbortHandle,
    awaiter: Awaiter,
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
    /// A task group child's `Err` (`TaskGroup::try_create_task`).
    Failed(FailedError),
}

pub(crate) struct Inner<T> {
    outcome: Outcome<T>,
    /// Boxed on purpose: most tasks never get a callback, and a thin box
    /// (8 bytes) keeps the core small (see `docs/performance.md`).
    callbacks: Option<Box<Callbacks>>,
    canceller: Canceller,
}

/// The shared state of one task with output `T`.
pub(crate) struct Core<T> {
    pub(super) header: Header,
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
    /// Queues `cb` last, or with `first` ahead of those queued (see
    /// [`TaskRef::push_done_callback_first`]).
    fn push_callback(&self, id: CallbackId, cb: Callback, start_drain: bool, first: bool) -> Push;
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
    /// The task's root cancel scope, made at the first call (from a poll of
    /// the task, when a scope registers outside any other: `scope/node.rs`;
    /// or for a scope's hold, `scope/await_task.rs`).
    fn scope_root(&self) -> Arc<Node>;
    /// A by-value await's first pending poll: keeps `awaiter` until the
    /// task enters a scope. `Err` gives it back if the task has a root
    /// already (or is done).
    fn leave_awaiter(&self, awaiter: Awaiter) -> Result<(), Awaiter>;
    /// `TaskRef::cancel_requested()`.
    fn cancel_requested(&self) -> Option<CancelledError>;
}

impl<T: Send + 'static> Core<T> {
    /// Builds the core of a new task and registers it.
    pub(crate) fn new_registered(
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
        coro: fn() -> &'static str,
        runtime: Option<tokio::runtime::Id>,
        debug: bool,
    ) -> Arc<Self> {
        let id = TaskId::next();
        Arc::new_cyclic(|weak: &Weak<Self>| {
            let slot = registry::insert(weak.clone());
            Core {
                header: Header {
                    id,
                    state: StateWord::new(),
                    spawned_at,
                    coro,
                    runtime,
                    debug,
                    slot,
                    diag: DiagFlags::new(id, debug),
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

    /// Whether a cancel of this task went as far as its abort (one with
    /// cleanups still running has not).
    pub(crate) fn aborted(&self) -> bool {
        match &self.lock().canceller {
            Canceller::Scoped(root) => root.aborted(),
            _ => true,
        }
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
    /// so the panic hook lets them through (see `diag::install_panic_hook`).
    pub(crate) fn set_cancel_token(&self, token: CancellationToken) {
        self.header.diag.mark_main();
        self.set_canceller(Canceller::Token(token));
    }

    fn set_canceller(&self, canceller: Canceller) {
        let mut inner = self.lock();
        let state = self.header.state();
        if state.is_done() {
            return; // finished before we got here: nothing left to cancel
        }
        if let Canceller::Scoped(root) = &inner.canceller {
            // A scope registered before the spawn returned: the root decides
            // when to abort (it may have been asked to already).
            if let (Some(f), _) = canceller.into_abort_fn() {
                root.set_abort(f);
            }
            return;
        }
        if state.is_cancel_requested() {
            // A cancel request that came first is passed on (invariant 3).
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
                self.header.diag.mark_retrieved();
                Error::Panicked(e.clone())
            }
            Outcome::Failed(e) => {
                self.header.diag.mark_retrieved();
                Error::Failed(e.clone())
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
                self.header.diag.mark_retrieved();
                Ok(Some(Error::Panicked(e.clone())))
            }
            Outcome::Failed(e) => {
                self.header.diag.mark_retrieved();
                Ok(Some(Error::Failed(e.clone())))
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
    pub(crate) fn complete(self: Arc<Self>, end: End<T>) -> Ended {
        let (canceller, ended, callbacks) = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let msg = match &mut inner.outcome {
                Outcome::Pending { cancel_msg } => cancel_msg.take(),
                _ => unreachable!("asyncio: a task completed twice"),
            };
            let ended = Ended::decide(
                matches!(end, End::Returned(_)),
                matches!(end, End::Panicked(_) | End::Failed(_)),
            );
            // Invariant 3: a returned value is kept, whatever was requested.
            let outcome = match end {
                End::Returned(v) => Outcome::Returned(v),
                End::Panicked(e) => Outcome::Panicked(e),
                End::Failed(e) => Outcome::Failed(e),
                End::Dropped => Outcome::Cancelled(CancelledError::from_message(msg)),
            };
            inner.outcome = outcome;
            // With callbacks to run, this thread becomes their drainer: any
            // added meanwhile join its queue (invariant 4). Without, no
            // drain and no second lock: a late callback starts its own.
            let callbacks = inner.callbacks.take();
            self.header
                .state
                .complete(inner, ended, callbacks.is_some());
            let canceller = mem::replace(&mut inner.canceller, Canceller::None);
            (canceller, ended, callbacks)
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
        let header = task.core().header();
        if ended == Ended::Panicked {
            header.diag.ended_panicked(&task);
        }
        ended
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
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let CancelRequest::AlreadyDone = self.header.state.request_cancel(inner) {
            // asyncio: `cancel()` clears `_log_traceback`, so it counts as
            // retrieving the exception of a task that already ended. A
            // pending task is not marked: an exception it raises later
            // (while handling the cancel) sets `_log_traceback` again and
            // is reported if nobody reads it (`diag.rs`, invariant 7).
            drop(guard);
            self.header.diag.mark_retrieved();
            return false;
        }
        if let Outcome::Pending { cancel_msg } = &mut inner.outcome {
            if msg.is_some() {
                *cancel_msg = msg; // the last message given wins
            }
        }
        // Only schedules the cancellation: no user code runs here.
        let root = match &inner.canceller {
            Canceller::Scoped(root) => root.clone(),
            canceller => {
                canceller.cancel();
                return true;
            }
        };
        drop(guard);
        // Scopes in the task: signalled unlocked (they wake the task; the
        // root aborts it once no cleanup is left).
        root.cancel();
        true
    }

    fn scope_root(&self) -> Arc<Node> {
        let (root, awaiter) = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            if let Canceller::Scoped(root) = &inner.canceller {
                return root.node().clone();
            }
            let requested = self.header.state().is_cancel_requested();
            let real = mem::replace(&mut inner.canceller, Canceller::None);
            let (abort, awaiter) = real.into_abort_fn();
            let root = TaskRoot::new(abort, requested);
            inner.canceller = Canceller::Scoped(root.clone());
            self.header.state.mark_scoped(inner);
            (root, awaiter)
        };
        // Unlocked, and before the scope that asked registers with the
        // root: a by-value awaiter's hold (`scope/await_task.rs`).
        if let Some(awaiter) = awaiter {
            awaiter.task_scoped(&root);
        }
        root.node().clone()
    }

    fn leave_awaiter(&self, awaiter: Awaiter) -> Result<(), Awaiter> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        match mem::replace(&mut inner.canceller, Canceller::None) {
            Canceller::Abort(abort) => {
                inner.canceller = Canceller::Awaited(Box::new(Awaited { abort, awaiter }));
                Ok(())
            }
            other => {
                inner.canceller = other;
                drop(guard);
                Err(awaiter)
            }
        }
    }

    fn cancel_requested(&self) -> Option<CancelledError> {
        if !self.header.state().is_cancel_requested() {
            return None; // lock-free for the common case
        }
        match &self.lock().outcome {
            Outcome::Pending { cancel_msg } => {
                Some(CancelledError::from_message(cancel_msg.clone()))
            }
            _ => None,
        }
    }

    fn push_callback(&self, id: CallbackId, cb: Callback, start_drain: bool, first: bool) -> Push {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let push = match self.header.state.add_callback(inner, start_drain) {
            AddCallback::Queue => Push::Queued,
            AddCallback::QueueAndDrain => Push::StartDrain,
            AddCallback::GiveBack => return Push::Done(cb),
        };
        match first {
            true => Callbacks::push_first(&mut inner.callbacks, id, cb),
            false => Callbacks::push(&mut inner.callbacks, id, cb),
        }
        push
    }

    fn drain(&self, task: &TaskRef) {
        loop {
            let batch = {
                let mut guard = self.lock();
                let inner = &mut *guard;
                match inner.callbacks.take() {
                    Some(batch) => batch,
                    None => {
                        self.header.state.end_drain(inner);
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
            Outcome::Failed(e) => Some(Error::Failed(e.clone())),
            _ => None,
        }
    }
}

/// How a task's future ended, as the harness hands it to
/// [`Core::complete`].
pub(crate) enum End<T> {
    Returned(T),
    Panicked(PanicError),
    /// It unwound with a [`FailedError`] payload: a task group child's `Err`
    /// (see `TaskGroup::try_create_task`).
    Failed(FailedError),
    Dropped,
}

impl<T> End<T> {
    /// The end of a future that unwound with `payload` (a caught panic).
    pub(crate) fn unwound(payload: Box<dyn Any + Send>) -> End<T> {
        match payload.downcast::<FailedError>() {
            Ok(failed) => End::Failed(*failed),
            Err(payload) => End::Panicked(super::harness::panic_error(payload)),
        }
    }
}

/// How a panic in the destructor of a task's discarded output is reported.
pub(crate) const DISCARDED_RESULT: &str = "Exception in the destructor of a discarded task result";
