//! Threads: [`to_thread`] (blocking work off the runtime) and
//! [`run_coroutine_threadsafe`] (async work onto a runtime, from any thread),
//! with its [`ConcurrentFuture`].
//!
//! | asyncio | here |
//! |---|---|
//! | `await asyncio.to_thread(func)` | [`to_thread`]`(func).await` |
//! | `asyncio.run_coroutine_threadsafe(coro, loop)` | [`run_coroutine_threadsafe`]`(fut, &lp)` |
//! | `future.result(timeout)` | [`ConcurrentFuture::result`] |
//!
//! # The calling task inside a `to_thread` closure
//!
//! asyncio copies the caller's `contextvars` into the worker thread. The
//! nearest thing this crate has is the task itself: inside a closure run by
//! [`to_thread`] (or [`Loop::run_in_executor`](crate::Loop::run_in_executor)),
//! [`current_task()`](crate::current_task) returns the task that called it,
//! so its name, id and `cancel()` are at hand. Nothing flows back: the
//! closure cannot make another task current for the caller.
//!
//! ```
//! asyncio::run(async {
//!     let worker = asyncio::Task::builder().name("importer").spawn(async {
//!         asyncio::to_thread(|| asyncio::current_task().unwrap().get_name()).await
//!     });
//!     assert_eq!(worker.await.unwrap().unwrap(), "importer");
//! });
//! ```

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::error::{CancelledError, Error, PanicError, TimeoutError};
use crate::task::scope_current;
use crate::{Builder, CallbackId, Loop, Seconds, Task, TaskRef};

/// Runs the blocking closure `f` on Tokio's blocking thread pool and waits
/// for its value: asyncio's `await asyncio.to_thread(func)`.
///
/// - Lazy, like the coroutine asyncio returns: nothing runs until the first
///   poll, which submits `f` to the runtime that polls it.
/// - A panic in `f` becomes [`Error::Panicked`] with its message; the
///   runtime is not affected.
/// - Dropping the future (its task cancelled, a timeout) does **not** stop
///   the thread, as in asyncio: `f` runs to its end and its value is
///   dropped. Use a flag or a channel to tell long work to stop. An `f`
///   still waiting for a free thread is not started at all, as asyncio
///   cancels a work item still queued in its executor.
/// - Inside `f`, [`current_task()`](crate::current_task) is the task that
///   awaited `to_thread`: asyncio copies the caller's `contextvars` into the
///   thread, and the task is the nearest thing this crate has. Its name, id
///   and `cancel()` are at hand; nothing flows back to the caller.
/// - The pool is the runtime's blocking pool: under [`run`](crate::run) /
///   [`Runner`](crate::Runner), at most `min(32, cpus + 4)` threads, the
///   size of asyncio's default executor
///   ([`Runner::max_blocking_threads`](crate::Runner::max_blocking_threads)
///   sets it); calls beyond it wait in a queue for a free thread. On a
///   runtime built otherwise, Tokio's (512 threads by default).
///
/// # Errors
/// [`Error::Panicked`] when `f` panicked; [`Error::Cancelled`] when the
/// runtime dropped the job before a thread ran it (it is shutting down).
///
/// # Panics
/// When polled outside a Tokio runtime (`no running event loop`).
///
/// ```
/// asyncio::run(async {
///     let sum = asyncio::to_thread(|| (1..=100u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 5050);
///
///     let err = asyncio::to_thread(|| -> u8 { panic!("disk on fire") }).await.unwrap_err();
///     assert_eq!(err.to_string(), "task panicked: disk on fire");
///
///     let worker = asyncio::Task::builder().name("importer").spawn(async {
///         asyncio::to_thread(|| asyncio::current_task().unwrap().get_name()).await
///     });
///     assert_eq!(worker.await.unwrap().unwrap(), "importer");
/// });
/// ```
///
/// # Cancel safety
/// Dropping the future does not stop `f` once it started: a thread cannot be
/// interrupted, so `f` runs to its end and its result is dropped (as in
/// asyncio, where cancelling `to_thread` leaves the thread running). An `f`
/// still queued for a free thread (all threads of the pool busy, see
/// [`Runner::max_blocking_threads`](crate::Runner::max_blocking_threads))
/// is dropped unrun, as asyncio cancels a queued work item.
pub async fn to_thread<F, R>(f: F) -> crate::Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let handle = Handle::try_current().unwrap_or_else(|_| {
        panic!(
            "asyncio::to_thread(): no running event loop: await it inside a Tokio runtime \
             (asyncio::run, #[tokio::main])"
        )
    });
    BlockingJob::new(spawn_blocking_as(&handle, crate::current_task(), f)).await
}

/// Submits `f` to `handle`'s blocking pool; `task` is the current task while
/// `f` runs.
pub(crate) fn spawn_blocking_as<F, R>(handle: &Handle, task: Option<TaskRef>, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match task {
        Some(task) => handle.spawn_blocking(move || scope_current(task, f)),
        None => handle.spawn_blocking(f),
    }
}

/// Waits for a blocking job: its value; its panic as [`Error::Panicked`]; a
/// job the runtime dropped before it started (shutdown) as
/// [`Error::Cancelled`].
///
/// Dropped after it was polled (its awaiter gave up), it takes the job out
/// of the pool's queue if no thread has started it yet, as asyncio cancels
/// a work item still waiting in its executor; a job already running goes
/// on. Dropped unpolled, it leaves the job alone (an un-awaited
/// `run_in_executor` future runs its function, as in asyncio).
pub(crate) struct BlockingJob<R> {
    join: JoinHandle<R>,
    polled: bool,
}

impl<R> BlockingJob<R> {
    pub(crate) fn new(join: JoinHandle<R>) -> Self {
        Self {
            join,
            polled: false,
        }
    }
}

impl<R> Future for BlockingJob<R> {
    type Output = crate::Result<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polled = true;
        Pin::new(&mut self.join)
            .poll(cx)
            .map_err(|e| match e.try_into_panic() {
                Ok(payload) => Error::Panicked(PanicError::from_payload(&*payload)),
                Err(_) => Error::Cancelled(CancelledError::new()),
            })
    }
}

impl<R> Drop for BlockingJob<R> {
    fn drop(&mut self) {
        if self.polled {
            // Tokio: a blocking job cannot be aborted once started; before,
            // `abort` keeps it from starting. On a finished job: no effect.
            self.join.abort();
        }
    }
}

/// Schedules `fut` as a task of ours on the runtime of `lp` and returns a
/// [`ConcurrentFuture`] to wait for it from any thread: asyncio's
/// `run_coroutine_threadsafe(coro, loop)`.
///
/// Callable from any thread, also one that belongs to no runtime. The task is
/// a normal task of ours (listed by [`all_tasks`](crate::all_tasks) on that
/// runtime, named `Task-N`, created at the caller's location).
///
/// ```
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let lp = asyncio::Loop::from(rt.handle().clone());
///
/// // a plain thread, no runtime in sight
/// let seen = std::thread::spawn(move || {
///     let coro = asyncio::sleep_with(0.01, 3);
///     let mut future = asyncio::run_coroutine_threadsafe(coro, &lp);
///     future.result(1.0)
/// })
/// .join()
/// .unwrap();
/// assert_eq!(seen.unwrap(), 3);
/// ```
///
/// # Cancel safety
/// Not a future: it schedules `fut` at once. Dropping the returned
/// [`ConcurrentFuture`], or the future it is when awaited, leaves the task
/// running; call [`ConcurrentFuture::cancel`] to stop it.
#[track_caller]
pub fn run_coroutine_threadsafe<F>(fut: F, lp: &Loop) -> ConcurrentFuture<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    ConcurrentFuture {
        task: Builder::default().spawn_on(fut, lp.handle()),
        runtime: lp.handle().id(),
        cancel_requested: AtomicBool::new(false),
    }
}

/// Wakes a thread parked in [`ConcurrentFuture::result`].
struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The future returned by [`run_coroutine_threadsafe`]: Python's
/// `concurrent.futures.Future`, waited for by blocking a thread
/// ([`result`](Self::result)) or, from async code, by `.await`.
///
/// Dropping it leaves the task running.
///
/// ```
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let lp = asyncio::Loop::from(rt.handle().clone());
/// let mut fut = asyncio::run_coroutine_threadsafe(async { "ok" }, &lp);
/// assert_eq!(fut.result(None).unwrap(), "ok");
/// assert!(fut.done() && !fut.cancelled());
/// assert!(fut.result(None).unwrap_err().is_invalid_state()); // handed over once
/// ```
///
/// # Cancel safety
/// Awaited (`fut.await`), it is cancel safe: dropping it leaves the task
/// running and its output in the task. [`result`](Self::result) blocks the
/// thread and cannot be cancelled; when its timeout runs out the task goes on
/// and the output stays for a later call.
#[must_use = "dropping a ConcurrentFuture leaves its task running unobserved"]
pub struct ConcurrentFuture<T> {
    task: Task<T>,
    /// The runtime the task runs on: blocking its current-thread driver is
    /// the one wait that deadlocks.
    runtime: tokio::runtime::Id,
    /// `cancel()` returned true: from now on the future is cancelled.
    cancel_requested: AtomicBool,
}

impl<T: Send + 'static> ConcurrentFuture<T> {
    /// Blocks the calling thread until the task ends, then hands over its
    /// output (`future.result(timeout)`). `timeout` is a [`Seconds`] value;
    /// `None` waits forever.
    ///
    /// # Errors
    /// - [`Error::Timeout`] when `timeout` runs out (at once for a zero
    ///   timeout and a task still running); the task goes on (call `result`
    ///   again, or [`cancel`](Self::cancel) it);
    /// - [`Error::InvalidState`] once the output was handed over (by an
    ///   earlier `result` or `.await`): it is handed over once;
    /// - [`Error::Cancelled`] once [`cancel`](Self::cancel) succeeded or the
    ///   task ended cancelled; [`Error::Panicked`] if it panicked.
    ///
    /// # Panics
    /// When it would have to block the thread that drives the current-thread
    /// Tokio runtime the task runs on (inside `#[tokio::test]`,
    /// `Runner::current_thread`, or a task on such a runtime, with a future
    /// of that same loop): the task could never run, so this would hang.
    /// `.await` the `ConcurrentFuture` there instead, or call `result`
    /// inside [`to_thread`]. The task of *another* runtime is waited for
    /// anywhere: that blocks the calling thread (and whatever its own
    /// current-thread runtime would run meanwhile), but cannot deadlock. On
    /// a multi-thread runtime's worker, `result` hands the worker's other
    /// tasks to another thread first (`tokio::task::block_in_place`, which
    /// needs a free thread of the blocking pool, see
    /// [`Runner::max_blocking_threads`](crate::Runner::max_blocking_threads))
    /// and blocks safely. Called once the task is done, or with a zero timeout,
    /// it never blocks and never panics.
    ///
    /// Also when the task is still running and `timeout` is NaN seconds.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let mut slow = asyncio::run_coroutine_threadsafe(asyncio::sleep_with(30, 1), &lp);
    /// assert!(slow.result(0.01).unwrap_err().is_timeout());
    /// assert!(!slow.done()); // still running
    /// assert!(slow.cancel());
    /// assert!(slow.result(None).unwrap_err().is_cancelled());
    /// ```
    #[track_caller]
    pub fn result(&mut self, timeout: impl Seconds) -> crate::Result<T> {
        if let Some(out) = self.ready_output() {
            return out;
        }
        let timeout = timeout.to_duration();
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Timeout(TimeoutError::new()));
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let runtime = self.runtime;
        block_safely(runtime, || self.wait(deadline))
            .unwrap_or_else(|| Err(Error::Timeout(TimeoutError::new())))
    }

    /// The outcome, if there is one without waiting.
    fn ready_output(&self) -> Option<crate::Result<T>> {
        // `cancel()` succeeded: this future is cancelled, whatever the task's
        // own end (a destructor may have panicked meanwhile); once the task
        // ended cancelled, its own error carries the cancel message.
        if self.cancel_requested.load(Ordering::Acquire) && !self.task.cancelled() {
            return Some(Err(Error::Cancelled(CancelledError::new())));
        }
        self.task.take_if_done()
    }

    /// Parks the thread until the task ends (its `JoinHandle` wakes us) or
    /// `deadline` passes (`None`).
    fn wait(&mut self, deadline: Option<Instant>) -> Option<crate::Result<T>> {
        let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Some(out) = self.ready_output() {
                return Some(out);
            }
            if let Poll::Ready(out) = self.task.poll_result(&mut cx) {
                return Some(out);
            }
            match deadline {
                None => std::thread::park(),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    std::thread::park_timeout(left);
                }
            }
        }
    }

    /// Cancels the task (`future.cancel()`). `true` if the task is now
    /// cancelled or ending cancelled, also when it already was (as
    /// `concurrent.futures` answers); `false` if it already ended otherwise.
    /// From then on [`cancelled`](Self::cancelled) and [`done`](Self::done)
    /// are `true` and [`result`](Self::result) returns `Err(Cancelled)`
    /// without waiting; done callbacks run once the task has actually ended.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let fut = asyncio::run_coroutine_threadsafe(asyncio::sleep(30), &lp);
    /// assert!(fut.cancel());
    /// assert!(fut.cancel()); // already cancelled: still true
    /// assert!(fut.cancelled() && fut.done());
    /// ```
    pub fn cancel(&self) -> bool {
        if self.cancel_requested.load(Ordering::Acquire) {
            return true;
        }
        if self.task.cancel() {
            self.cancel_requested.store(true, Ordering::Release);
            return true;
        }
        self.task.cancelled()
    }

    /// `true` once [`cancel`](Self::cancel) succeeded or the task ended
    /// cancelled (`future.cancelled()`).
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let mut fut = asyncio::run_coroutine_threadsafe(async { 1 }, &lp);
    /// fut.result(None).unwrap();
    /// assert!(!fut.cancelled());
    /// assert!(!fut.cancel()); // finished: too late
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cancel_requested.load(Ordering::Acquire) || self.task.cancelled()
    }

    /// `true` once the task ended, or [`cancel`](Self::cancel) succeeded
    /// (`future.done()`).
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let mut fut = asyncio::run_coroutine_threadsafe(async { 1 }, &lp);
    /// let _ = fut.result(None);
    /// assert!(fut.done());
    /// ```
    pub fn done(&self) -> bool {
        self.cancel_requested.load(Ordering::Acquire) || self.task.done()
    }

    /// Registers `f` to run once the task has ended
    /// (`future.add_done_callback(fn)`); same rules as
    /// [`TaskRef::add_done_callback`]: once each, in order, on the runtime
    /// (or a helper thread if the task already ended and no runtime is
    /// current), panics reported to the exception handler.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let fut = asyncio::run_coroutine_threadsafe(async { 5 }, &lp);
    /// fut.add_done_callback(move |task| tx.send(task.done()).unwrap());
    /// assert!(rx.recv().unwrap());
    /// ```
    pub fn add_done_callback<F>(&self, f: F) -> CallbackId
    where
        F: FnOnce(&TaskRef) + Send + 'static,
    {
        self.task.add_done_callback(f)
    }

    /// The task running the future, for introspection (name, id, stack).
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let mut fut = asyncio::run_coroutine_threadsafe(async { 5 }, &lp);
    /// fut.task().set_name("remote");
    /// assert_eq!(fut.task().get_name(), "remote");
    /// # fut.result(None).unwrap();
    /// ```
    pub fn task(&self) -> &TaskRef {
        &self.task
    }
}

impl<T: Send + 'static> Future for ConcurrentFuture<T> {
    type Output = crate::Result<T>;

    /// Waits without blocking (`asyncio.wrap_future(future)`): what to do in
    /// async code instead of [`result`](Self::result). Dropping this future
    /// leaves the task running.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.ready_output() {
            return Poll::Ready(out);
        }
        self.task.poll_result(cx)
    }
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.cancel_requested.load(Ordering::Acquire) || self.task.cancelled() {
            "cancelled"
        } else if self.task.done() {
            "finished"
        } else {
            "pending"
        };
        write!(f, "<ConcurrentFuture {word} task={}>", &*self.task)
    }
}

/// Runs the blocking wait `f` for a task of runtime `task_runtime`,
/// refusing (with a message saying what to do) where it would deadlock: on
/// the thread driving that very runtime when it is a current-thread one.
#[track_caller]
fn block_safely<R>(task_runtime: tokio::runtime::Id, f: impl FnOnce() -> R) -> R {
    let Ok(here) = Handle::try_current() else {
        return f(); // a plain thread: nothing to starve
    };
    if here.id() != task_runtime {
        // Another runtime's task runs on whatever happens here: no deadlock.
        // A multi-thread worker hands its tasks to another thread first; a
        // current-thread runtime's thread (or a blocking-pool thread) just
        // blocks.
        return match here.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => f(),
            _ => tokio::task::block_in_place(f),
        };
    }
    // Inside the task's own runtime. On a multi-thread worker (or its
    // block_on thread) `block_in_place` hands the worker's tasks to another
    // thread first; on a blocking-pool thread it simply runs `f`; on the
    // thread of a current-thread runtime it refuses, before running anything.
    match catch_unwind(AssertUnwindSafe(|| tokio::task::block_in_place(f))) {
        Ok(out) => out,
        Err(_) => panic!(
            "asyncio::ConcurrentFuture::result() would block the thread that drives a \
             current-thread Tokio runtime, so the task could never run (deadlock): \
             `.await` the ConcurrentFuture in async code, or call result() from a plain \
             thread or inside asyncio::to_thread(..)"
        ),
    }
}
