//! [`Task<T>`], the owning handle, and the futures that await it:
//! [`Join`] (`task.await`) and [`JoinRef`] (`(&mut task).await`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use super::core::Core;
use super::{Builder, TaskRef};
use crate::error::Error;
use crate::scope::{AwaitAction, AwaitScope};

/// A task of ours with output `T`: a future running on Tokio, with a name, a
/// state, done callbacks and a readable outcome.
///
/// - `task.await` (by value) yields [`Result<T>`](crate::Result) and ties the
///   task to its awaiter: if the awaiting future is dropped before the task
///   ends (its own task was cancelled, a `select!` or a timeout dropped it),
///   the task is cancelled, as an awaited asyncio task is; an await that
///   was polled counts as reading whatever the task then ends with.
/// - `(&mut task).await` yields the same without that tie.
/// - A task that awaits its own `Task` (handed to it through a channel, say)
///   gets `Err(InvalidState)` ("Task cannot await on itself") at once
///   instead of waiting for its own end forever, and is not cancelled for it.
/// - A `Task` dropped without being awaited keeps running. If it panics and
///   nobody sees the panic (await, `result()`, `exception()`, `cancel()`
///   once it ended),
///   the panic is reported through the
///   [exception handler](crate::set_exception_handler) as "Task exception was
///   never retrieved" once the task ended and its last `Task` is gone;
///   nothing is printed when the panic happens (see the crate docs, *Panics
///   in tasks*). An await that was already waiting when the task ended
///   counts as seeing it, also when it is dropped before it hands the panic
///   over (its own task cancelled at that moment, a `select!` branch that
///   lost): asyncio's awaiter, woken by the task's end, always reads it.
///
/// All [`TaskRef`] methods (`cancel`, `done`, `get_name`, callbacks, …) are
/// available through `Deref`.
///
/// # Cancel safety
/// Awaiting by value ([`Join`]) is not cancel safe on purpose: dropping the
/// await cancels the task. Awaiting by reference ([`JoinRef`]) is: dropping
/// it leaves the task running and its output in place for the next await.
/// Dropping the `Task` itself never cancels the task.
///
/// # Errors
/// Awaiting yields the task's outcome:
/// [`Error::Cancelled`](crate::Error::Cancelled) if it was cancelled,
/// [`Error::Panicked`](crate::Error::Panicked) if it panicked,
/// [`Error::Failed`](crate::Error::Failed) for a task group's
/// [`try_create_task`](crate::TaskGroup::try_create_task) child that
/// returned `Err`, and [`Error::InvalidState`](crate::Error::InvalidState)
/// when the task awaits itself or an earlier `(&mut task).await` already
/// took the output.
///
/// # Panics
/// Awaiting never panics: the task's panic comes back as
/// [`Error::Panicked`](crate::Error::Panicked).
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
    pub(super) task: TaskRef,
    /// `None` once the Tokio task was joined (a `JoinHandle` yields once).
    pub(super) join: Option<JoinHandle<()>>,
    pub(super) _output: PhantomData<fn() -> T>,
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

    /// The task's [`TaskRef`], borrowed (no reference count touched).
    pub(crate) fn task_ref(&self) -> &TaskRef {
        &self.task
    }

    /// A clone of the task's output (asyncio's `task.result()`).
    ///
    /// # Errors
    /// [`Error::InvalidState`] while the task is pending or after an await
    /// took the output; else the task's own end: [`Error::Cancelled`],
    /// [`Error::Panicked`], or [`Error::Failed`] (a task group's
    /// [`try_create_task`](crate::TaskGroup::try_create_task) child that
    /// returned `Err`).
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

    /// The error the task ended with (asyncio's `task.exception()`):
    /// `Ok(Some(Panicked))` if it panicked, `Ok(Some(Failed))` for a task
    /// group's [`try_create_task`](crate::TaskGroup::try_create_task) child
    /// that returned `Err`, `Ok(None)` if it returned (also after an await
    /// took the output).
    ///
    /// # Errors
    /// [`Error::InvalidState`] while the task is pending;
    /// [`Error::Cancelled`] if it was cancelled.
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

impl<T> Task<T> {
    /// The by-value await of this task (`IntoFuture::into_future`), with no
    /// bounds on `T`: `wait_for` builds its input from a `Task` whose
    /// `Awaitable` impl has none (see `Awaitable::Target`).
    pub(crate) fn into_join(self) -> Join<T> {
        Join {
            task: self,
            scope: AwaitScope::default(),
            polled: false,
        }
    }

    /// An await of this task (`Join` or `JoinRef`) is dropped, and the task
    /// is done (or, for a `Join`, has just been cancelled for it). One that
    /// was polled was waiting for the task's end, and asyncio's awaiter,
    /// woken by that end, always reads the outcome (also when it is
    /// cancelled right after): its panic counts as seen, even if the poll
    /// that would have handed it over never came.
    fn awaiter_dropped(&self, polled: bool) {
        if polled {
            self.task.core().header().diag.mark_retrieved();
        }
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
        super::diag::fmt_backtrace(&self.task, f)
    }
}

impl<T> Drop for Task<T> {
    /// A panic nobody saw is reported ("Task exception was never
    /// retrieved"), now or when the task ends. A task that ended without
    /// panicking (the common case: it was awaited) costs one atomic load.
    fn drop(&mut self) {
        let header = self.task.core().header();
        // Pending or panicked: the only states with a report to come.
        if header.state().may_report_panic() {
            header.diag.handle_dropped(&self.task);
        }
    }
}

impl<T: Send + 'static> IntoFuture for Task<T> {
    type Output = crate::Result<T>;
    type IntoFuture = Join<T>;

    fn into_future(self) -> Join<T> {
        self.into_join()
    }
}

impl<'a, T: Send + 'static> IntoFuture for &'a mut Task<T> {
    type Output = crate::Result<T>;
    type IntoFuture = JoinRef<'a, T>;

    fn into_future(self) -> JoinRef<'a, T> {
        JoinRef {
            task: self,
            polled: false,
        }
    }
}

/// `task.await`: the task's result; dropping this future before the task
/// ended cancels the task.
///
/// # Cancel safety
/// Not cancel safe, by design (asyncio's `await task` in a cancelled
/// coroutine): dropping a `Join` before the task ended requests the task's
/// cancellation, and the output it might have returned is lost with it. A
/// task that tried to await itself is not cancelled. To wait without that
/// tie (a `select!` loop that polls again), await `&mut task` ([`JoinRef`]).
///
/// # Errors
/// The task's outcome, as listed on [`Task`]: `Cancelled`, `Panicked`,
/// `Failed`, or `InvalidState` (the task awaits itself).
///
/// # Panics
/// Never: a panic of the task is its result,
/// `Err(`[`Error::Panicked`](crate::Error::Panicked)`)`; awaiting a task from
/// inside itself gives `Err(InvalidState)`.
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
pub struct Join<T> {
    task: Task<T>,
    /// Passes a cancellation of the awaiter on to the task, and makes it
    /// wait for the task's cleanups (`scope/await_task.rs`).
    scope: AwaitScope,
    /// Polled at least once: the awaiter is waiting for the task's end
    /// (see [`Task::awaiter_dropped`]).
    polled: bool,
}

impl<T> Join<T> {
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
        let this = &mut *self;
        this.polled = true;
        if this.scope.is_gone() {
            return Poll::Pending; // the cancellation went on without us
        }
        match this.task.poll_result(cx) {
            Poll::Ready(r) => {
                let cancelled = matches!(r, Err(Error::Cancelled(_)));
                if this.scope.ended(cancelled) {
                    Poll::Ready(r)
                } else {
                    Poll::Pending
                }
            }
            Poll::Pending => {
                if this.scope.pending(&this.task.task, cx) == AwaitAction::CancelTask {
                    // The awaiter is being cancelled: so is the task, with
                    // the awaiter's message; then we wait for its end.
                    let why =
                        super::current::with_current(|t| t.and_then(|t| t.cancel_requested()));
                    match why.as_ref().and_then(|e| e.message()) {
                        Some(msg) => self.task.cancel_with(msg.to_owned()),
                        None => self.task.cancel(),
                    };
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Join<T> {
    fn drop(&mut self) {
        if self.task.done() {
            self.task.awaiter_dropped(self.polled);
        } else if !self.task.is_current() {
            // A task that tried to await itself is not cancelled for it.
            self.task.cancel();
            // An await that was waiting is asyncio's awaiter whose task
            // was cancelled: it passes the cancel on and, woken by the
            // task's end, reads its outcome, so a panic the task raises
            // while handling the cancel is seen. One never polled waited
            // for nothing: such a panic is reported if nobody reads it.
            self.task.awaiter_dropped(self.polled);
        }
    }
}

/// What awaiting a task from inside that same task gives.
fn awaits_itself() -> Error {
    Error::InvalidState(crate::InvalidStateError::new(
        "Task cannot await on itself: it would wait for its own end forever.",
    ))
}

impl<T> fmt::Debug for Join<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("task", &self.task.task)
            .finish()
    }
}

/// `(&mut task).await`: the task's result, with no tie: dropping this future
/// leaves the task running.
///
/// # Cancel safety
/// Cancel safe: the output is taken only by the poll that returns it, so
/// dropping a `JoinRef` (a `select!` branch that lost) loses nothing, and
/// the task keeps running; await `&mut task` again to get the result.
///
/// # Errors
/// The task's outcome, as listed on [`Task`]: `Cancelled`, `Panicked`,
/// `Failed`, or `InvalidState` (the task awaits itself, or the output was
/// already handed over).
///
/// # Panics
/// Never: a panic of the task is its result,
/// `Err(`[`Error::Panicked`](crate::Error::Panicked)`)`; a second await after
/// the output was handed over gives `Err(InvalidState)`.
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
pub struct JoinRef<'a, T> {
    task: &'a mut Task<T>,
    /// Polled at least once (see [`Task::awaiter_dropped`]).
    polled: bool,
}

impl<T: Send + 'static> Future for JoinRef<'_, T> {
    type Output = crate::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polled = true;
        self.task.poll_result(cx)
    }
}

impl<T> Drop for JoinRef<'_, T> {
    fn drop(&mut self) {
        if self.task.done() {
            self.task.awaiter_dropped(self.polled);
        }
    }
}

impl<T> fmt::Debug for JoinRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinRef")
            .field("task", &self.task.task)
            .finish()
    }
}
