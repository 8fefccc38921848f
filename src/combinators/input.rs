//! [`IntoTask`]: what [`gather`](crate::gather), [`shield`](crate::shield),
//! [`wait`](crate::wait) and [`as_completed`](crate::as_completed) accept.
//!
//! asyncio's combinators take "awaitables": a coroutine is wrapped in a new
//! Task (`ensure_future`) when the combinator is called, a Task is used as it
//! is. Here the same: a [`Task<T>`] is taken as it is, any other
//! `Future + Send + 'static` is scheduled with [`create_task`](crate::create_task)
//! at the moment the combinator is called (so it starts running even if the
//! combinator's future is never awaited, as in asyncio).

use crate::scope::InScope;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;

use crate::Task;
use crate::error::{Error, TimeoutError};
use crate::futures::Join;

/// Seals [`IntoTask`], [`Awaitable`] and [`WaitTarget`]: what the
/// combinators accept is a task or a future, nothing else.
mod sealed {
    pub trait Sealed {}
}

impl<F: Future> sealed::Sealed for F {}
impl<T> sealed::Sealed for Task<T> {}
impl<F> sealed::Sealed for InPlace<F> {}
impl<T> sealed::Sealed for TaskTarget<T> {}

/// A [`Task<T>`] or a future to be run as one: the input of the combinators
/// that run their inputs as tasks.
///
/// A plain future becomes a task of ours when the combinator is called: it
/// gets a name (`Task-N`), shows in [`all_tasks`](crate::all_tasks), and its
/// creation site is the combinator's call site.
///
/// ```
/// use asyncio::IntoTask;
///
/// asyncio::run(async {
///     let spawned: asyncio::Task<u8> = async { 1 }.into_task(); // scheduled now
///     let same = asyncio::create_task(async { 2 }).into_task(); // used as it is
///     assert_eq!(spawned.await.unwrap() + same.await.unwrap(), 3);
/// });
/// ```
pub trait IntoTask: sealed::Sealed {
    /// The task's output.
    ///
    /// ```
    /// fn output_of<I: asyncio::IntoTask>(_: &I) -> &'static str {
    ///     std::any::type_name::<I::Output>()
    /// }
    /// asyncio::run(async {
    ///     assert_eq!(output_of(&async { 1u8 }), "u8");
    ///     assert_eq!(output_of(&asyncio::create_task(async { 'c' })), "char");
    /// });
    /// ```
    type Output: Send + 'static;

    /// The task: `self` if it already is one, else `self` scheduled now on
    /// the current runtime.
    ///
    /// # Panics
    /// For a plain future, outside a Tokio runtime (as
    /// [`create_task`](crate::create_task)).
    ///
    /// ```
    /// use asyncio::IntoTask;
    ///
    /// // One thread: the task cannot end before the check below.
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let t = asyncio::sleep_with(0.01, "late").into_task();
    ///     assert!(asyncio::all_tasks().contains(&t.to_ref()));
    ///     assert_eq!(t.await.unwrap(), "late");
    /// });
    /// ```
    #[track_caller]
    fn into_task(self) -> Task<Self::Output>;
}

impl<T: Send + 'static> IntoTask for Task<T> {
    type Output = T;

    fn into_task(self) -> Task<T> {
        self
    }
}

impl<F> IntoTask for F
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    #[track_caller]
    fn into_task(self) -> Task<F::Output> {
        crate::create_task(self)
    }
}

/// Converts every input now, in order, keeping the caller's location as the
/// creation site of the tasks it spawns.
#[track_caller]
pub(crate) fn into_tasks<I>(inputs: I) -> Vec<Task<<I::Item as IntoTask>::Output>>
where
    I: IntoIterator,
    I::Item: IntoTask,
{
    let inputs = inputs.into_iter();
    let mut tasks = Vec::with_capacity(inputs.size_hint().0);
    // A `for` loop, not `map`: a closure would lose `#[track_caller]`.
    for input in inputs {
        tasks.push(input.into_task());
    }
    tasks
}

/// What [`wait_for`](crate::wait_for) accepts: any future (polled in place, dropped on
/// timeout) or a [`Task`] (awaited by value, as `task.await`: cancelled and
/// awaited to its end on timeout, and when the waiting task is cancelled).
///
/// ```
/// asyncio::run(async {
///     // a future that borrows: fine, it is polled in place
///     let data = vec![1, 2, 3];
///     let sum = asyncio::wait_for(async { data.iter().sum::<i32>() }, 1).await.unwrap();
///     assert_eq!(sum, 6);
///     // a task
///     let t = asyncio::create_task(async { 4 });
///     assert_eq!(asyncio::wait_for(t, 1).await.unwrap(), 4);
/// });
/// ```
pub trait Awaitable: sealed::Sealed {
    /// What it resolves to (a task's `T`, not its `Result<T>`).
    ///
    /// ```
    /// fn output_of<A: asyncio::Awaitable>(_: &A) -> &'static str {
    ///     std::any::type_name::<A::Output>()
    /// }
    /// asyncio::run(async {
    ///     assert_eq!(output_of(&async { 1u8 }), "u8");
    ///     assert_eq!(output_of(&asyncio::create_task(async { 'c' })), "char");
    /// });
    /// ```
    type Output;
    /// How `wait_for` drives it (a [`WaitTarget`] with the same `Output`).
    ///
    /// Not bounded here on purpose: with no bounds on the impl for
    /// [`Task`], `Task<&'static str>`'s target normalizes for every lifetime,
    /// so a [`WaitFor`](crate::futures::WaitFor) of it is plainly `Send` inside a spawned task (a
    /// `'static`-bounded impl gives "implementation of `Send` is not general
    /// enough" there). The bound is on [`wait_for`](crate::wait_for) and on the `Future` impl.
    #[doc(hidden)]
    type Target;
    /// Converts it.
    #[doc(hidden)]
    fn into_target(self) -> Self::Target;
}

/// How [`wait_for`](crate::wait_for) drives an [`Awaitable`] (implementation detail).
#[doc(hidden)]
pub trait WaitTarget: sealed::Sealed {
    /// What it resolves to.
    type Output;
    /// Polls for the result.
    fn poll_output(self: Pin<&mut Self>, cx: &mut Context<'_>)
    -> Poll<crate::Result<Self::Output>>;
    /// Cancels it (idempotent) and resolves once the cancellation finished:
    /// `Err(Timeout)` if it ended cancelled, else how it ended.
    fn poll_cancel(self: Pin<&mut Self>, cx: &mut Context<'_>)
    -> Poll<crate::Result<Self::Output>>;
}

impl<F: Future> Awaitable for F {
    type Output = F::Output;
    type Target = InPlace<F>;

    fn into_target(self) -> InPlace<F> {
        InPlace {
            fut: InScope::new(self),
        }
    }
}

// No bounds: see `Awaitable::Target`.
impl<T> Awaitable for Task<T> {
    type Output = T;
    type Target = TaskTarget<T>;

    fn into_target(self) -> TaskTarget<T> {
        TaskTarget {
            join: self.into_join(),
            cancelling: false,
        }
    }
}

/// A plain future, polled in the caller's task, inside a cancel scope of
/// its own: the timeout is a timeout scope over it (its `on_cancel`
/// cleanups run before `Err(Timeout)`).
#[doc(hidden)]
#[pin_project]
pub struct InPlace<F> {
    #[pin]
    fut: InScope<F>,
}

impl<F: Future> WaitTarget for InPlace<F> {
    type Output = F::Output;

    fn poll_output(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<crate::Result<F::Output>> {
        self.project()
            .fut
            .poll_scoped(cx, false)
            .map(|out| out.ok_or_else(|| Error::Timeout(TimeoutError::new())))
    }

    fn poll_cancel(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<crate::Result<F::Output>> {
        // The future's cleanups run first; then it is dropped.
        self.project()
            .fut
            .poll_scoped(cx, true)
            .map(|out| out.ok_or_else(|| Error::Timeout(TimeoutError::new())))
    }
}

/// A task: awaited by value ([`Join`]); cancelled and awaited again on
/// timeout. Being a by-value await, it passes a cancellation of the waiting
/// task on to the task and waits for the task's end (its cleanups
/// included), and it cancels the task if the wait is dropped first; as
/// `task.await` does (`scope/await_task.rs`).
#[doc(hidden)]
pub struct TaskTarget<T> {
    join: Join<T>,
    /// The timeout's cancel was sent.
    cancelling: bool,
}

impl<T: Send + 'static> WaitTarget for TaskTarget<T> {
    type Output = T;

    fn poll_output(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<crate::Result<T>> {
        Pin::new(&mut self.join).poll(cx)
    }

    fn poll_cancel(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<crate::Result<T>> {
        if !self.cancelling {
            self.cancelling = true;
            self.join.task().cancel();
        }
        Poll::Ready(match ready!(Pin::new(&mut self.join).poll(cx)) {
            Err(Error::Cancelled(_)) => Err(Error::Timeout(TimeoutError::new())),
            // It returned or panicked before the cancel reached it.
            other => other,
        })
    }
}

impl<F> fmt::Debug for InPlace<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InPlace")
            .field("dropped", &self.fut.is_dropped())
            .finish()
    }
}

impl<T: Send + 'static> fmt::Debug for TaskTarget<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskTarget")
            .field("task", self.join.task().task_ref())
            .field("cancelling", &self.cancelling)
            .finish()
    }
}
