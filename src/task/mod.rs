//! Tasks: [`create_task`], [`Task`], [`TaskRef`], [`current_task`],
//! [`all_tasks`].
//!
//! A task is a future scheduled on Tokio with an identity asyncio users know:
//! a name, an id, a state you can ask about (`done()`, `cancelled()`), an
//! outcome you can read more than once (`result()`, `exception()`), done
//! callbacks, and a place in [`all_tasks`].
//!
//! | asyncio | here |
//! |---|---|
//! | `asyncio.create_task(coro, name="x")` | [`Task::builder()`]`.name("x").spawn(fut)` |
//! | `await task` | `task.await` (cancels the task if the awaiter goes away) or `(&mut task).await` |
//! | `task.cancel(msg)` | [`cancel_with`](TaskRef::cancel_with) |
//! | `asyncio.current_task()` | [`current_task`] |
//! | `asyncio.all_tasks()` | [`all_tasks`] |
//!
//! [`Task<T>`] owns the output and is not `Clone`; [`TaskRef`] is a cheap,
//! type-erased, cloneable handle to the same task for introspection and
//! control. A `Task<T>` dereferences to a `TaskRef`, so every `TaskRef` method
//! can be called on a `Task<T>`.
//!
//! ```
//! // One thread: the task cannot end before the checks below.
//! asyncio::Runner::new().current_thread().run(async {
//!     let task = asyncio::Task::builder()
//!         .name("fetch")
//!         .spawn(async { asyncio::sleep_with(0.01, 42).await });
//!     assert_eq!(task.get_name(), "fetch");
//!     assert!(!task.done());
//!     assert_eq!(task.await.unwrap(), 42);
//! });
//! ```

pub(crate) mod core;
pub(crate) mod registry;
mod wrap;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::ops::Deref;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use self::core::{AnyCore, CANCEL_REQUESTED, CANCELLED, Core, FINISHED, Harness, PANICKED};
use crate::error::Error;

/// A task's identity: unique in the process, never reused, `Display`s as a
/// number.
///
/// ```
/// asyncio::run(async {
///     let a = asyncio::create_task(async {});
///     let b = asyncio::create_task(async {});
///     assert_ne!(a.id(), b.id());
///     assert_eq!(a.id(), a.to_ref().id());
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub(crate) NonZeroU64);

impl TaskId {
    /// The id as a number.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.id().as_u64().to_string(), t.id().to_string());
    /// });
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Names a registered done callback, for
/// [`remove_done_callback`](TaskRef::remove_done_callback). Unique in the
/// process: an id from one task removes nothing from another.
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::create_task(asyncio::sleep(1));
///     let id = t.add_done_callback(|_| println!("done"));
///     assert_eq!(t.remove_done_callback(id), 1);
///     assert_eq!(t.remove_done_callback(id), 0);
///     t.cancel();
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

/// A cheap, cloneable, type-erased handle to a task, for introspection and
/// control: what [`current_task`] and [`all_tasks`] return, and what done
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
pub struct TaskRef(Arc<dyn AnyCore>);

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
    /// [`Builder::name`]): Tokio's name is fixed at spawn, and a rename does
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
        self.0.header().state() & CANCELLED != 0
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
        let id = next_callback_id();
        let cb = core::Callback::Boxed(Box::new(f));
        if let core::Push::StartDrain = self.0.push_callback(id, cb, true) {
            schedule_drain(self.clone());
        }
        id
    }

    /// Crate-internal hook for the combinators: registers `cb` unless the
    /// task is already done, in which case it comes back (with the id it
    /// would have had) and nothing is scheduled, so the caller can handle
    /// the finished task inline.
    pub(crate) fn push_done_callback(
        &self,
        cb: core::Callback,
    ) -> Result<CallbackId, (CallbackId, core::Callback)> {
        let id = next_callback_id();
        match self.0.push_callback(id, cb, false) {
            core::Push::Done(cb) => Err((id, cb)),
            core::Push::Queued | core::Push::StartDrain => Ok(id),
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
        core::try_with_current(|cur| cur.is_some_and(|t| t.id() == self.id())).unwrap_or(false)
    }

    /// `true` once the task has ended by panicking (crate-internal: asyncio's
    /// "finished with an exception", for `wait(FIRST_EXCEPTION)`).
    pub(crate) fn panicked(&self) -> bool {
        self.0.header().state() & PANICKED != 0
    }

    /// The error the task ended with, as [`Task::exception`]:
    /// `Err(InvalidState)` while pending, `Err(Cancelled)` if it was
    /// cancelled, `Ok(Some(Panicked))` if it panicked, `Ok(None)` if it
    /// returned. Counts as seeing the panic: a task whose panic was read here
    /// is not reported as "Task exception was never retrieved".
    ///
    /// This is how a done callback (which gets a `&TaskRef`) looks at the
    /// outcome, as asyncio's callbacks call `fut.exception()`.
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

    /// A clone of the task's output, read as a `T`, as [`Task::result`]:
    /// `Err(InvalidState)` while pending, after an await took the output,
    /// or when `T` is not the task's output type; `Err(Cancelled)` or
    /// `Err(Panicked)` as the task ended.
    ///
    /// This is how a done callback (which gets a `&TaskRef`) reads the
    /// result, as asyncio's callbacks call `fut.result()`. The output is
    /// cloned under the task's lock: `T`'s `Clone` must not cancel the task
    /// or add callbacks to it.
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

    fn fmt_with(
        &self,
        f: &mut fmt::Formatter<'_>,
        result: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        let header = self.0.header();
        let state = header.state();
        let word = if state & CANCELLED != 0 {
            "cancelled"
        } else if header.is_done() {
            "finished"
        } else if state & CANCEL_REQUESTED != 0 {
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
        if state & PANICKED != 0 {
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
        crate::stack::fmt_backtrace(self, f)
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

fn next_callback_id() -> CallbackId {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    CallbackId(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs the callbacks queued on a task that was already done when they were
/// added: soon, never inline, in order. On the current runtime if there is
/// one; on a thread of its own otherwise, or if the runtime drops the job
/// unrun (it is shutting down): a callback is never lost.
fn schedule_drain(task: TaskRef) {
    struct Drain(Option<TaskRef>);
    impl Drain {
        fn run(mut self) {
            if let Some(task) = self.0.take() {
                task.core().drain(&task);
            }
        }
    }
    impl Drop for Drain {
        fn drop(&mut self) {
            if let Some(task) = self.0.take() {
                let drain = move || task.core().drain(&task);
                // A thread, or, if none can be started, here and now.
                let fallback = std::thread::Builder::new()
                    .name("asyncio-callback".into())
                    .spawn(drain);
                if let Err(e) = fallback {
                    eprintln!("asyncio: could not start a thread for done callbacks: {e}");
                }
            }
        }
    }
    let drain = Drain(Some(task));
    match Handle::try_current() {
        Ok(handle) => drop(handle.spawn(async move { drain.run() })),
        Err(_) => drop(drain), // runs on a thread of its own
    }
}

/// A task of ours with output `T`: a future running on Tokio, with a name, a
/// state, done callbacks and a readable outcome.
///
/// - `task.await` (by value) yields [`Result<T>`](crate::Result) and ties the
///   task to its awaiter: if the awaiting future is dropped before the task
///   ends (its own task was cancelled, a `select!` or a timeout dropped it),
///   the task is cancelled, as an awaited asyncio task is.
/// - `(&mut task).await` yields the same without that tie.
/// - A task that awaits its own `Task` (handed to it through a channel, say)
///   gets `Err(InvalidState)` ("Task cannot await on itself") at once
///   instead of waiting for its own end forever, and is not cancelled for it.
/// - A `Task` dropped without being awaited keeps running. If it panics and
///   nobody sees the panic (await, `result()`, `exception()`, `cancel()`),
///   the panic is reported through the
///   [exception handler](crate::set_exception_handler) as "Task exception was
///   never retrieved" once the task ended and its last `Task` is gone;
///   nothing is printed when the panic happens (see the crate docs, *Panics
///   in tasks*).
///
/// All [`TaskRef`] methods (`cancel`, `done`, `get_name`, callbacks, …) are
/// available through `Deref`.
///
/// # Awaiting many tasks
/// A `Task` is [`IntoFuture`], not a `Future`, so functions that take
/// futures (`futures::future::join_all`, `FuturesUnordered`, `select_all`)
/// need `IntoFuture::into_future` on each (which keeps the await-by-value tie:
/// dropping the result cancels the pending tasks); or use
/// [`gather`](crate::gather()), asyncio's way, which takes `Task`s as they are.
///
/// ```
/// use std::future::IntoFuture;
///
/// asyncio::run(async {
///     let tasks: Vec<asyncio::Task<u32>> =
///         (1..=3).map(|i| asyncio::create_task(async move { i * 10 })).collect();
///     let results = futures::future::join_all(tasks.into_iter().map(IntoFuture::into_future)).await;
///     let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
///     assert_eq!(values, [10, 20, 30]);
///
///     let tasks: Vec<asyncio::Task<u32>> =
///         (1..=3).map(|i| asyncio::create_task(async move { i })).collect();
///     assert_eq!(asyncio::gather(tasks).await.unwrap(), [1, 2, 3]);
/// });
/// ```
///
/// ```
/// asyncio::run(async {
///     let (go, wait) = tokio::sync::oneshot::channel::<()>();
///     let mut task = asyncio::create_task(async move {
///         let _ = wait.await;
///         "hello".to_string()
///     });
///     assert!(task.result().unwrap_err().is_invalid_state()); // not done yet
///     go.send(()).unwrap();
///     let value = (&mut task).await.unwrap();
///     assert_eq!(value, "hello");
///     assert!(task.done());
/// });
/// ```
pub struct Task<T> {
    task: TaskRef,
    /// `None` once the Tokio task was joined (a `JoinHandle` yields once).
    join: Option<JoinHandle<()>>,
    _output: PhantomData<fn() -> T>,
}

impl Task<()> {
    /// A builder for a task with options (a name).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::Task::builder().name("worker-1").spawn(async { 5 });
    ///     assert_eq!(t.get_name(), "worker-1");
    ///     assert_eq!(t.await.unwrap(), 5);
    /// });
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl<T: Send + 'static> Task<T> {
    fn core(&self) -> &Core<T> {
        self.task
            .core()
            .as_any()
            .downcast_ref()
            .expect("asyncio: task core of an unexpected type")
    }

    /// A [`TaskRef`] to this task.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     let r = t.to_ref();
    ///     assert_eq!(r.id(), t.id());
    /// });
    /// ```
    pub fn to_ref(&self) -> TaskRef {
        self.task.clone()
    }

    /// A clone of the task's output. `Err(InvalidState)` while the task is
    /// pending or after an await took the output; `Err(Cancelled)` or
    /// `Err(Panicked)` as the task ended.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async { vec![1, 2] });
    ///     while !t.done() {
    ///         asyncio::sleep(0).await;
    ///     }
    ///     assert_eq!(t.result().unwrap(), [1, 2]);
    ///     assert_eq!(t.result().unwrap(), [1, 2]); // read as often as you like
    /// });
    /// ```
    pub fn result(&self) -> crate::Result<T>
    where
        T: Clone,
    {
        self.core().result()
    }

    /// The error the task ended with: `Err(InvalidState)` while pending,
    /// `Err(Cancelled)` if it was cancelled, `Ok(Some(Panicked))` if it
    /// panicked, `Ok(None)` if it returned.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async { panic!("bad input") });
    ///     while !t.done() {
    ///         asyncio::sleep(0).await;
    ///     }
    ///     let e = t.exception().unwrap().unwrap();
    ///     assert!(e.is_panic());
    /// });
    /// ```
    pub fn exception(&self) -> crate::Result<Option<Error>> {
        self.core().exception()
    }

    /// The output, taken now if the task is done, without polling the Tokio
    /// task (crate-internal: lets the combinators and `ConcurrentFuture`
    /// collect finished tasks with no `JoinHandle` poll, so no coop budget is
    /// spent on results that are already there).
    pub(crate) fn take_if_done(&self) -> Option<crate::Result<T>> {
        self.done().then(|| self.core().take_output())
    }

    /// Polls for the task's end; the output is taken when it is `Ready`.
    ///
    /// A task awaiting itself would wait forever: that is refused with
    /// `InvalidState` (asyncio: `Task cannot await on itself`). Checked only
    /// when the task is not done yet (one thread-local read), so an await
    /// that finds its task done costs nothing more.
    pub(crate) fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<crate::Result<T>> {
        if let Some(join) = &mut self.join {
            // The harness never panics out and records every end itself, so
            // the `JoinError` (an abort) carries nothing we do not know.
            match Pin::new(join).poll(cx) {
                Poll::Ready(_) => self.join = None,
                Poll::Pending if self.task.is_current() => {
                    return Poll::Ready(Err(awaits_itself()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(self.core().take_output())
    }
}

impl<T> Deref for Task<T> {
    type Target = TaskRef;

    fn deref(&self) -> &TaskRef {
        &self.task
    }
}

impl<T> From<&Task<T>> for TaskRef {
    fn from(task: &Task<T>) -> Self {
        task.task.clone()
    }
}

impl<T> fmt::Display for Task<T> {
    /// asyncio's repr, without the result (see `Debug` for that).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.task, f)
    }
}

impl<T: fmt::Debug + Send + 'static> fmt::Debug for Task<T> {
    /// asyncio's repr, with `result=…` once the task returned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.task.fmt_with(f, |f| {
            self.core().with_output(|out| match out {
                Some(v) => write!(f, " result={v:?}"),
                None => Ok(()),
            })
        })?;
        crate::stack::fmt_backtrace(&self.task, f)
    }
}

impl<T> Drop for Task<T> {
    /// A panic nobody saw is reported ("Task exception was never
    /// retrieved"), now or when the task ends. A task that ended without
    /// panicking (the common case: it was awaited) costs one atomic load.
    fn drop(&mut self) {
        let header = self.task.core().header();
        // Pending or panicked: the only states with a report to come.
        if header.state() & (FINISHED | CANCELLED) == 0 {
            header.stack.handle_dropped(&self.task);
        }
    }
}

impl<T: Send + 'static> IntoFuture for Task<T> {
    type Output = crate::Result<T>;
    type IntoFuture = Join<T>;

    fn into_future(self) -> Join<T> {
        Join { task: self }
    }
}

impl<'a, T: Send + 'static> IntoFuture for &'a mut Task<T> {
    type Output = crate::Result<T>;
    type IntoFuture = JoinRef<'a, T>;

    fn into_future(self) -> JoinRef<'a, T> {
        JoinRef { task: self }
    }
}

/// `task.await`: the task's result; dropping this future before the task
/// ended cancels the task.
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::create_task(asyncio::sleep(10));
///     let r = t.to_ref();
///     let join = t.into_future();
///     drop(join); // the awaiter went away
///     while !r.done() {
///         asyncio::sleep(0).await;
///     }
///     assert!(r.cancelled());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Join<T: Send + 'static> {
    task: Task<T>,
}

impl<T: Send + 'static> Join<T> {
    /// The task being awaited.
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// asyncio::run(async {
    ///     let join = asyncio::create_task(async { 1 }).into_future();
    ///     println!("waiting for {}", join.task().get_name());
    ///     assert_eq!(join.await.unwrap(), 1);
    /// });
    /// ```
    pub fn task(&self) -> &Task<T> {
        &self.task
    }
}

impl<T: Send + 'static> Future for Join<T> {
    type Output = crate::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.poll_result(cx)
    }
}

impl<T: Send + 'static> Drop for Join<T> {
    fn drop(&mut self) {
        // A task that tried to await itself is not cancelled for it.
        if !self.task.done() && !self.task.is_current() {
            self.task.cancel();
        }
    }
}

/// What awaiting a task from inside that same task gives.
fn awaits_itself() -> Error {
    Error::InvalidState(crate::InvalidStateError::new(
        "Task cannot await on itself: it would wait for its own end forever.",
    ))
}

impl<T: Send + 'static> fmt::Debug for Join<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("task", &self.task.task)
            .finish()
    }
}

/// `(&mut task).await`: the task's result, with no tie: dropping this future
/// leaves the task running.
///
/// ```
/// asyncio::run(async {
///     let mut t = asyncio::create_task(async { 7 });
///     assert_eq!((&mut t).await.unwrap(), 7);
///     // the output was handed over once:
///     assert!((&mut t).await.unwrap_err().is_invalid_state());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct JoinRef<'a, T: Send + 'static> {
    task: &'a mut Task<T>,
}

impl<T: Send + 'static> Future for JoinRef<'_, T> {
    type Output = crate::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.poll_result(cx)
    }
}

impl<T: Send + 'static> fmt::Debug for JoinRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinRef")
            .field("task", &self.task.task)
            .finish()
    }
}

/// Options for a new task: [`Task::builder()`].
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::Task::builder().name("tick").spawn(asyncio::sleep(0));
///     assert_eq!(t.to_string().split(' ').nth(2), Some("name='tick'"));
///     let _ = t.await;
/// });
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<Arc<str>>,
}

impl Builder {
    /// The task's name (anything `Display`, as Python's `str(name)`).
    ///
    /// # tokio-console
    /// Built with `RUSTFLAGS="--cfg tokio_unstable"` and this crate's
    /// `tracing` feature, every task is spawned through Tokio's
    /// `task::Builder` with its name (`Task-N` when unnamed), and Tokio
    /// records the line that called `spawn` / `create_task` as its spawn
    /// location, so tokio-console shows both. The name is fixed at spawn: a
    /// later [`set_name`](TaskRef::set_name) is not seen by Tokio. Without
    /// that flag and feature nothing of this is compiled in. A program that
    /// shows its tasks in tokio-console:
    ///
    /// ```text
    /// # Cargo.toml
    /// [dependencies]
    /// asyncio = { version = "0.1", features = ["tracing"] }
    /// console-subscriber = "0.4"
    ///
    /// // src/main.rs
    /// fn main() {
    ///     console_subscriber::init();
    ///     asyncio::run(async {
    ///         let t = asyncio::Task::builder().name("fetch").spawn(asyncio::sleep(60));
    ///         let _ = t.await;
    ///     });
    /// }
    ///
    /// $ RUSTFLAGS="--cfg tokio_unstable" cargo run   # then run `tokio-console`
    /// ```
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::Task::builder().name(42).spawn(async {});
    ///     assert_eq!(t.get_name(), "42");
    /// });
    /// ```
    pub fn name(mut self, name: impl fmt::Display) -> Self {
        self.name = Some(Arc::from(name.to_string()));
        self
    }

    /// Schedules `fut` as a task on the current runtime.
    ///
    /// # Panics
    /// Outside a Tokio runtime (asyncio: `no running event loop`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::Task::builder().spawn(async { 1 + 1 });
    ///     assert_eq!(t.await.unwrap(), 2);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Inside one of our tasks, the runtime (and debug mode) is the
        // parent's: no need to touch the shared runtime handle.
        let parent = core::with_current(|cur| {
            cur.map(|t| (t.core().header().runtime, t.core().header().debug))
        });
        let (runtime, debug) = match parent {
            Some((Some(id), debug)) => (id, debug),
            _ => match Handle::try_current() {
                Ok(handle) => (handle.id(), crate::report::runtime_debug(handle.id())),
                Err(_) => panic!(
                    "asyncio: no running event loop: create_task()/spawn() must be called \
                     inside a Tokio runtime (asyncio::run, #[tokio::main], or \
                     Builder::spawn_on with a runtime Handle)"
                ),
            },
        };
        self.spawn_with(fut, Location::caller(), Some(runtime), debug, None)
    }

    /// Schedules `fut` as a task on the runtime of `handle`; callable from any
    /// thread, also one outside every runtime.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let t = asyncio::Task::builder().name("remote").spawn_on(async { 3 }, rt.handle());
    /// assert_eq!(rt.block_on(async { t.await }).unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, fut: F, handle: &Handle) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let debug = crate::report::runtime_debug(handle.id());
        self.spawn_with(
            fut,
            Location::caller(),
            Some(handle.id()),
            debug,
            Some(handle),
        )
    }

    /// `#[track_caller]` down to Tokio's spawn: with `tokio_unstable`, Tokio
    /// (and tokio-console) record the user's call site as the spawn
    /// location, not this file.
    #[track_caller]
    fn spawn_with<F>(
        self,
        fut: F,
        spawned_at: &'static Location<'static>,
        runtime: Option<tokio::runtime::Id>,
        debug: bool,
        on: Option<&Handle>,
    ) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[cfg(all(tokio_unstable, feature = "tracing"))]
        let console_name = self.name.clone();
        let core = Core::<F::Output>::new_registered(
            self.name,
            spawned_at,
            std::any::type_name::<F>,
            runtime,
            debug,
        );
        #[cfg(all(tokio_unstable, feature = "tracing"))]
        let console_name = match console_name {
            Some(name) => name.to_string(),
            // Formatted only on this path: the default build pays nothing.
            None => format!("Task-{}", core.header().id),
        };
        let harness = Harness::new(core.clone(), fut);
        // With `--cfg tokio_unstable` and our `tracing` feature, the name
        // reaches tokio-console through `tokio::task::Builder::name`. It is
        // fixed there at spawn: a later `set_name` does not reach Tokio.
        #[cfg(all(tokio_unstable, feature = "tracing"))]
        let join = {
            let builder = tokio::task::Builder::new().name(&console_name);
            match on {
                Some(handle) => builder.spawn_on(harness, handle),
                None => builder.spawn(harness),
            }
            .expect("asyncio: tokio::task::Builder could not spawn the task")
        };
        #[cfg(not(all(tokio_unstable, feature = "tracing")))]
        let join = spawn_raw(harness, on);
        core.set_abort_handle(join.abort_handle());
        let task = TaskRef(core);
        Task {
            task,
            join: Some(join),
            _output: PhantomData,
        }
    }
}

/// `handle.spawn(fut)`, or `tokio::spawn(fut)` without a handle.
#[cfg(not(all(tokio_unstable, feature = "tracing")))]
#[track_caller]
fn spawn_raw<F>(fut: F, on: Option<&Handle>) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match on {
        Some(handle) => handle.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// Schedules `fut` as a task of ours on the current Tokio runtime and returns
/// its [`Task`]: asyncio's `create_task(coro)`. The task starts at the next
/// scheduling point, not inside this call. The call site is recorded as the
/// task's creation site.
///
/// # Panics
/// Outside a Tokio runtime, with asyncio's `no running event loop`.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(async { 6 * 7 });
///     assert_eq!(task.await.unwrap(), 42);
/// });
/// ```
#[track_caller]
pub fn create_task<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::default().spawn(fut)
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
    core::current()
}

/// The pending tasks created by this crate on the current runtime (on every
/// runtime when called outside one), the calling task included.
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::Task::builder().name("sleeper").spawn(asyncio::sleep(10));
///     let names: Vec<String> = asyncio::all_tasks().iter().map(|t| t.get_name()).collect();
///     assert!(names.contains(&"sleeper".to_string()));
///     t.cancel();
/// });
/// ```
pub fn all_tasks() -> Vec<TaskRef> {
    let runtime = core::with_current(|cur| cur.and_then(|t| t.core().header().runtime))
        .or_else(|| Handle::try_current().ok().map(|h| h.id()));
    registry::collect(|t| !t.done() && (runtime.is_none() || t.core().header().runtime == runtime))
}
