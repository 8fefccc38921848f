//! [`TaskRef`]: the type-erased, cloneable handle to a task. It only reads
//! the core and asks it for transitions (`cancel`, callbacks); it never
//! writes the state word itself (invariant 9, `state.rs`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::{Arc, Weak};

use super::callbacks::{self, Callback, Push};
use super::core::{AnyCore, Core};
use super::current::with_current;
use super::{CallbackId, TaskId};
use crate::error::Error;

/// A [`TaskRef`] that does not keep the task's core alive: once the task
/// ended and its last handle is gone, the core (its output included) is
/// dropped, and only this small reference is left.
pub(crate) struct WeakTaskRef(Weak<dyn AnyCore>);

impl WeakTaskRef {
    /// The task, if its core is still alive.
    pub(crate) fn upgrade(&self) -> Option<TaskRef> {
        self.0.upgrade().map(TaskRef)
    }

    /// The task's core was dropped (a plain load: no reference count is
    /// written).
    pub(crate) fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// A cheap, cloneable, type-erased handle to a task, for introspection and
/// control: what [`current_task`](crate::current_task) and [`all_tasks`](crate::all_tasks) return, and what done
/// callbacks receive.
///
/// Two `TaskRef`s are equal when they refer to the same task.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(asyncio::sleep(10));
///     let r = task.to_ref();
///     assert_eq!(r, asyncio::TaskRef::from(&task));
///     assert!(asyncio::all_tasks().contains(&r));
///     r.cancel();
///     assert!(task.await.unwrap_err().is_cancelled());
///     assert!(r.cancelled());
/// });
/// ```
#[derive(Clone)]
pub struct TaskRef(pub(super) Arc<dyn AnyCore>);

impl TaskRef {
    pub(crate) fn from_core(core: Arc<dyn AnyCore>) -> Self {
        TaskRef(core)
    }

    pub(crate) fn core(&self) -> &dyn AnyCore {
        &*self.0
    }

    pub(crate) fn into_core(self) -> Arc<dyn AnyCore> {
        self.0
    }

    /// A reference that does not keep the task's core alive.
    pub(crate) fn downgrade(&self) -> WeakTaskRef {
        WeakTaskRef(Arc::downgrade(&self.0))
    }

    /// The task's id.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let me = asyncio::current_task().unwrap();
    ///     println!("I am task {}", me.id());
    /// });
    /// ```
    pub fn id(&self) -> TaskId {
        self.0.header().id
    }

    /// The task's name: the one given to the builder or to
    /// [`set_name`](Self::set_name), else `Task-N` (formatted now, on request).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.get_name(), format!("Task-{}", t.id()));
    /// });
    /// ```
    pub fn get_name(&self) -> String {
        match self.0.name() {
            Some(name) => name.to_string(),
            None => format!("Task-{}", self.id()),
        }
    }

    /// Renames the task; works at any time, also after it ended. Like
    /// Python's `set_name(value)`, anything `Display` is accepted.
    ///
    /// tokio-console keeps the name the task had when it was spawned (see
    /// [`Builder::name`](crate::Builder::name)): Tokio's name is fixed at spawn, and a rename does
    /// not reach it.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     t.set_name(987654321);
    ///     assert_eq!(t.get_name(), "987654321");
    /// });
    /// ```
    pub fn set_name(&self, name: impl fmt::Display) {
        self.0.set_name(Arc::from(name.to_string()));
    }

    /// Requests cancellation. Returns `false` if the task is already done,
    /// else `true` (also on a second call). The task's future is dropped at
    /// its next suspension point, or before it starts if it has not, and the
    /// task then ends cancelled; `cancelled()` stays `false` until then.
    /// With [`on_cancel`](crate::on_cancel) / [`finally`](crate::finally) /
    /// a timeout scope / a task group in the task, the cancellation reaches
    /// them first and their cleanups run before the future is dropped (a
    /// further `cancel()` does not interrupt them). A value the future
    /// returns during the poll in which the request comes is kept: the task
    /// then ends finished with it.
    ///
    /// ```
    /// // One thread: nothing runs the cancellation before the await below.
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let mut t = asyncio::create_task(asyncio::sleep(10));
    ///     assert!(t.cancel());
    ///     assert!(t.cancel()); // still pending: true again
    ///     assert!(!t.cancelled()); // requested, not yet done
    ///     assert!((&mut t).await.unwrap_err().is_cancelled());
    ///     assert!(t.cancelled());
    ///     assert!(!t.cancel()); // done: false
    /// });
    /// ```
    pub fn cancel(&self) -> bool {
        self.0.cancel(None)
    }

    /// [`cancel`](Self::cancel) with a message, which reaches
    /// [`CancelledError::message`](crate::CancelledError::message). If several
    /// messages are given before the task ends, the last one wins.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(asyncio::sleep(10));
    ///     t.cancel_with("no longer needed");
    ///     match t.await {
    ///         Err(asyncio::Error::Cancelled(e)) => assert_eq!(e.message(), Some("no longer needed")),
    ///         other => panic!("{other:?}"),
    ///     }
    /// });
    /// ```
    pub fn cancel_with(&self, msg: impl Into<Arc<str>>) -> bool {
        self.0.cancel(Some(msg.into()))
    }

    /// `true` once the task has ended cancelled.
    ///
    /// ```
    /// // One thread: the task cannot end before `cancel()`.
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let mut t = asyncio::create_task(async {});
    ///     t.cancel();
    ///     let _ = (&mut t).await;
    ///     assert!(t.cancelled() && t.done());
    /// });
    /// ```
    pub fn cancelled(&self) -> bool {
        self.0.header().state().is_cancelled()
    }

    /// The cancellation asked for, with its message, once `cancel()` or
    /// `cancel_with(msg)` was called and until the task ends; else `None`.
    /// A cleanup ([`on_cancel`](crate::on_cancel)) reads it to see why it
    /// runs (asyncio's `except CancelledError as e: e.args`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use asyncio::CancelExt;
    ///
    /// let task = asyncio::create_task(asyncio::sleep(10).on_cancel(|| async {
    ///     let me = asyncio::current_task().unwrap();
    ///     let why = me.cancel_requested().unwrap();
    ///     assert_eq!(why.message(), Some("maintenance"));
    /// }));
    /// asyncio::sleep(1).await;
    /// assert!(task.cancel_requested().is_none());
    /// task.cancel_with("maintenance");
    /// assert!(task.cancel_requested().is_some());
    /// assert!(task.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn cancel_requested(&self) -> Option<crate::CancelledError> {
        self.0.cancel_requested()
    }

    /// `true` once the task has ended, whatever the end (returned, panicked
    /// or cancelled).
    ///
    /// ```
    /// // One thread: the task cannot run before the await below.
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let mut t = asyncio::create_task(async { 1 });
    ///     assert!(!t.done());
    ///     let _ = (&mut t).await;
    ///     assert!(t.done() && !t.cancelled());
    /// });
    /// ```
    pub fn done(&self) -> bool {
        self.0.header().is_done()
    }

    /// Registers `f` to run once the task has ended, whatever the end. Each
    /// registration runs exactly once, in registration order, never inside
    /// this call (on a task already done it is scheduled to run soon), and
    /// never while this crate holds a lock, so `f` may call back into the
    /// task or cancel another one. A panic in `f` is reported to the
    /// [exception handler](crate::set_exception_handler) and does not stop the
    /// other callbacks.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// // One thread: the task cannot end before the callbacks are added (on
    /// // a task already done they would run soon, maybe after the await).
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let log = Arc::new(Mutex::new(Vec::new()));
    ///     let t = asyncio::create_task(async {});
    ///     for i in 0..3 {
    ///         let log = log.clone();
    ///         t.add_done_callback(move |task| log.lock().unwrap().push((i, task.done())));
    ///     }
    ///     let _ = t.await;
    ///     assert_eq!(*log.lock().unwrap(), [(0, true), (1, true), (2, true)]);
    /// });
    /// ```
    pub fn add_done_callback<F>(&self, f: F) -> CallbackId
    where
        F: FnOnce(&TaskRef) + Send + 'static,
    {
        let id = CallbackId::next();
        let cb = Callback::Boxed(Box::new(f));
        if let Push::StartDrain = self.0.push_callback(id, cb, true, false) {
            callbacks::schedule_drain(self.clone());
        }
        id
    }

    /// Crate-internal hook for the combinators: registers `cb` unless the
    /// task is already done, in which case it comes back (with the id it
    /// would have had) and nothing is scheduled, so the caller can handle
    /// the finished task inline.
    pub(crate) fn push_done_callback(
        &self,
        cb: Callback,
    ) -> Result<CallbackId, (CallbackId, Callback)> {
        self.push_done(cb, false)
    }

    /// As [`push_done_callback`](Self::push_done_callback), but `cb` runs
    /// before the callbacks queued so far: a task group that watches a
    /// child only after its body's poll (`scope/task_group.rs`) still has
    /// its callback run first, as when it registered at the spawn.
    pub(crate) fn push_done_callback_first(
        &self,
        cb: Callback,
    ) -> Result<CallbackId, (CallbackId, Callback)> {
        self.push_done(cb, true)
    }

    fn push_done(&self, cb: Callback, first: bool) -> Result<CallbackId, (CallbackId, Callback)> {
        let id = CallbackId::next();
        match self.0.push_callback(id, cb, false, first) {
            Push::Done(cb) => Err((id, cb)),
            Push::Queued | Push::StartDrain => Ok(id),
        }
    }

    /// Reads the task's output in place, if it returned and the output was
    /// not taken (crate-internal: lets `try_gather` see an `Err` output from
    /// a done callback). `None` also if the task's output is not a `T`.
    pub(crate) fn with_output<T: Send + 'static, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        match self.0.as_any().downcast_ref::<Core<T>>() {
            Some(core) => core.with_output(f),
            None => f(None),
        }
    }

    /// `true` when this task is the one being polled on this thread.
    /// (`false` while the thread's locals are being destroyed: a `Join`
    /// may be dropped from a thread-local destructor.)
    pub(crate) fn is_current(&self) -> bool {
        with_current(|cur| cur.is_some_and(|t| t.id() == self.id()))
    }

    /// `true` once the task has ended by panicking (crate-internal: asyncio's
    /// "finished with an exception", for `wait(FIRST_EXCEPTION)`).
    pub(crate) fn panicked(&self) -> bool {
        self.0.header().state().is_panicked()
    }

    /// The error the task ended with, as [`Task::exception`](crate::Task::exception):
    /// `Ok(Some(Panicked))` if it panicked, `Ok(Some(Failed))` for a task
    /// group's [`try_create_task`](crate::TaskGroup::try_create_task) child
    /// that returned `Err`, `Ok(None)` if it returned. Counts as seeing the
    /// panic: a task whose panic was read here is not reported as "Task
    /// exception was never retrieved".
    ///
    /// This is how a done callback (which gets a `&TaskRef`) looks at the
    /// outcome, as asyncio's callbacks call `fut.exception()`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] while the task is pending;
    /// [`Error::Cancelled`] if it was cancelled.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// asyncio::run(async {
    ///     let seen = Arc::new(Mutex::new(None));
    ///     let slot = seen.clone();
    ///     let task = asyncio::create_task(async { panic!("bad input") });
    ///     task.add_done_callback(move |t| {
    ///         let e = t.exception().unwrap().expect("it panicked");
    ///         *slot.lock().unwrap() = Some(e.to_string());
    ///     });
    ///     let _ = task.await;
    ///     assert!(seen.lock().unwrap().as_deref().unwrap().contains("bad input"));
    /// });
    /// ```
    pub fn exception(&self) -> crate::Result<Option<Error>> {
        self.0.exception()
    }

    /// A clone of the task's output, read as a `T`, as [`Task::result`](crate::Task::result).
    ///
    /// This is how a done callback (which gets a `&TaskRef`) reads the
    /// result, as asyncio's callbacks call `fut.result()`. The output is
    /// cloned under the task's lock: `T`'s `Clone` must not cancel the task
    /// or add callbacks to it.
    ///
    /// # Errors
    /// [`Error::InvalidState`] while the task is pending, after an await
    /// took the output, or when `T` is not the task's output type; else the
    /// task's own end: [`Error::Cancelled`], [`Error::Panicked`], or
    /// [`Error::Failed`] (a task group's
    /// [`try_create_task`](crate::TaskGroup::try_create_task) child that
    /// returned `Err`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (tx, rx) = tokio::sync::oneshot::channel();
    ///     let task = asyncio::create_task(async { 6 * 7 });
    ///     task.add_done_callback(move |t| {
    ///         let _ = tx.send((t.result_as::<i32>(), t.result_as::<String>()));
    ///     });
    ///     let (right, wrong) = rx.await.unwrap();
    ///     assert_eq!(right.unwrap(), 42);
    ///     assert!(wrong.unwrap_err().is_invalid_state()); // not the output type
    ///     assert_eq!(task.await.unwrap(), 42);
    /// });
    /// ```
    pub fn result_as<T: Clone + Send + 'static>(&self) -> crate::Result<T> {
        match self.0.as_any().downcast_ref::<Core<T>>() {
            Some(core) => core.result(),
            None => Err(Error::InvalidState(crate::InvalidStateError::new(
                "The task's output is not of the requested type.",
            ))),
        }
    }

    /// Unregisters a callback that has not run yet; returns how many were
    /// removed (0 or 1). After the task ended the callbacks have run or been
    /// scheduled, so this returns 0.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(asyncio::sleep(3600)); // surely pending
    ///     let id = t.add_done_callback(|_| unreachable!());
    ///     assert_eq!(t.remove_done_callback(id), 1);
    ///     t.cancel();
    ///     let _ = t.await;
    /// });
    /// ```
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        self.0.remove_callback(id)
    }

    /// The type name of the future the task runs: Rust's nearest thing to
    /// asyncio's coroutine object.
    ///
    /// ```
    /// async fn worker() {}
    ///
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(worker());
    ///     assert!(t.get_coro().contains("worker"));
    /// });
    /// ```
    pub fn get_coro(&self) -> &'static str {
        (self.0.header().coro)()
    }

    /// Where the task was created (`create_task` or `spawn` call site).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {}); let line = line!();
    ///     assert_eq!(t.spawned_at().line(), line);
    /// });
    /// ```
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.0.header().spawned_at
    }

    pub(super) fn fmt_with(
        &self,
        f: &mut fmt::Formatter<'_>,
        result: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        let header = self.0.header();
        let state = header.state();
        let word = if state.is_cancelled() {
            "cancelled"
        } else if state.is_done() {
            "finished"
        } else if state.is_cancel_requested() {
            "cancelling"
        } else {
            "pending"
        };
        write!(
            f,
            "<Task {word} name='{}' coro=<{}>",
            self.get_name(),
            self.get_coro()
        )?;
        if state.is_panicked() {
            if let Some(Error::Panicked(e)) = self.0.error() {
                write!(f, " exception={e:?}")?;
            }
        }
        result(f)?;
        let at = header.spawned_at;
        write!(f, " created at {}:{}>", at.file(), at.line())
    }
}

impl fmt::Display for TaskRef {
    /// asyncio's repr: `<Task pending name='Task-3' coro=<…> created at src/main.rs:12>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, |_| Ok(()))
    }
}

impl fmt::Debug for TaskRef {
    /// The repr; in debug mode, `{:#?}` adds the creation backtrace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)?;
        super::diag::fmt_backtrace(self, f)
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for TaskRef {}

impl Hash for TaskRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}
