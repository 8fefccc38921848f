//! [`IntoTask`]: what [`gather`](crate::gather), [`shield`](crate::shield),
//! [`wait`](crate::wait) and [`as_completed`](crate::as_completed) accept.
//!
//! asyncio's combinators take "awaitables": a coroutine is wrapped in a new
//! Task (`ensure_future`) when the combinator is called, a Task is used as it
//! is. Here the same: a [`Task<T>`] is taken as it is, any other
//! `Future + Send + 'static` is scheduled with [`create_task`](crate::create_task)
//! at the moment the combinator is called (so it starts running even if the
//! combinator's future is never awaited, as in asyncio).

use std::future::Future;

use crate::Task;

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
pub trait IntoTask {
    /// The task's output.
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
