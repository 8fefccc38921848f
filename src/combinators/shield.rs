//! [`shield`]: protect a task from the cancellation of its awaiter.
//!
//! | asyncio | here |
//! |---|---|
//! | `res = await shield(aw)` | `let res = shield(aw).await;` |
//! | `wait_for(shield(task), 1)` | `wait_for(shield(task), 1)` |
//!
//! The input runs as a task of ours (a future is scheduled when `shield` is
//! called). Dropping the [`Shield`] — its awaiting task was
//! cancelled, a timeout or a `select!` gave up on it — leaves that task
//! running to completion; its end can still be observed through a
//! [`TaskRef`] taken before (`done()`, `cancelled()`, done callbacks). The
//! inner task's own cancellation or panic comes back through the shield.
//!
//! A panic of the inner task counts as seen (no "Task exception was never
//! retrieved") once the shield was awaited and the task ended before the
//! shield was dropped, as asyncio's `_inner_done_callback` passes the
//! exception on to the awaiter or marks it retrieved. A task that panics
//! after its shield was dropped is reported, as in asyncio (the shield's
//! callback was removed).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::combinators::children::mark_retrieved;
use crate::combinators::input::IntoTask;
use crate::{Task, TaskRef};

/// Runs `input` as a task that the cancellation of the awaiter does not
/// reach: asyncio's `shield(aw)`.
///
/// The returned [`Shield`] resolves to the task's result. Dropping it
/// (cancelling it) does not cancel the task. If the task itself is cancelled
/// or panics, the shield resolves to that error.
///
/// # Errors
/// The inner task's own end: [`Error::Cancelled`](crate::Error::Cancelled)
/// if it was cancelled (by someone else: dropping the shield does not
/// cancel it), [`Error::Panicked`](crate::Error::Panicked) if it panicked,
/// [`Error::Failed`](crate::Error::Failed) for a task group's
/// [`try_create_task`](crate::TaskGroup::try_create_task) child that
/// returned `Err`.
///
/// # Panics
/// When `input` is a plain future and there is no running Tokio runtime.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// asyncio::run(async {
///     let saved = Arc::new(AtomicBool::new(false));
///     let go = Arc::new(asyncio::Event::new());
///     let (s, g) = (saved.clone(), go.clone());
///     let work = asyncio::create_task(async move {
///         g.wait().await; // finishes only when told to
///         s.store(true, Ordering::SeqCst);
///     });
///     let work_ref = work.to_ref();
///
///     // the awaiter gives up after 10 ms; the shielded work goes on
///     let r = asyncio::wait_for(asyncio::shield(work), 0.01).await;
///     assert!(r.unwrap_err().is_timeout());
///     assert!(!work_ref.cancelled());
///
///     go.set();
///     while !work_ref.done() {
///         asyncio::sleep(0.01).await;
///     }
///     assert!(saved.load(Ordering::SeqCst));
/// });
/// ```
///
/// # Cancel safety
/// See [`Shield`]: dropping it leaves the inner task running.
#[track_caller]
pub fn shield<I: IntoTask>(input: I) -> Shield<I::Output> {
    Shield {
        task: Some(input.into_task()),
        polled: false,
    }
}

/// The future of [`shield`]: resolves to `asyncio::Result<T>`; dropping it
/// leaves the inner task running.
///
/// ```
/// asyncio::run(async {
///     let s: asyncio::futures::Shield<u8> = asyncio::shield(async { 7 });
///     let inner = s.task().to_ref();
///     assert_eq!(s.await.unwrap(), 7);
///     assert!(inner.done());
/// });
/// ```
///
/// # Cancel safety
/// Cancel safe: that is its purpose. Dropping it leaves the inner task running
/// and its result in the task (keep a handle with [`to_ref`](Self::to_ref), or
/// take the task back with [`into_task`](Self::into_task) before dropping).
#[must_use = "futures do nothing unless awaited (the inner task runs anyway)"]
pub struct Shield<T> {
    /// `None` once given back by [`into_task`](Self::into_task).
    task: Option<Task<T>>,
    /// Awaited at least once: the end of the task is then seen.
    polled: bool,
}

impl<T: Send + 'static> Shield<T> {
    /// The inner task.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let s = asyncio::shield(asyncio::Task::builder().name("precious").spawn(async {}));
    ///     assert_eq!(s.task().get_name(), "precious");
    ///     s.await.unwrap();
    /// });
    /// ```
    pub fn task(&self) -> &Task<T> {
        self.task
            .as_ref()
            .expect("asyncio: shield without its task")
    }

    /// Gives the inner task back (the shield is not awaited any more).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let s = asyncio::shield(async { 5 });
    ///     let task = s.into_task();
    ///     assert_eq!(task.await.unwrap(), 5);
    /// });
    /// ```
    pub fn into_task(mut self) -> Task<T> {
        self.task.take().expect("asyncio: shield without its task")
    }

    /// A handle to the inner task, which outlives the shield.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let s = asyncio::shield(asyncio::sleep(0.01));
    ///     let inner = s.to_ref();
    ///     drop(s); // not cancelled
    ///     while !inner.done() {
    ///         asyncio::sleep(0.01).await;
    ///     }
    ///     assert!(!inner.cancelled());
    /// });
    /// ```
    pub fn to_ref(&self) -> TaskRef {
        self.task().to_ref()
    }
}

impl<T: Send + 'static> Future for Shield<T> {
    type Output = crate::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.polled = true;
        let task = self
            .task
            .as_mut()
            .expect("asyncio: shield without its task");
        task.poll_result(cx)
    }
}

impl<T> Drop for Shield<T> {
    /// Awaited, then dropped after its task ended: asyncio's awaiter got the
    /// exception (or `_inner_done_callback` marked it retrieved).
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            if self.polled && task.done() {
                mark_retrieved(task);
            }
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield")
            .field("task", &self.task.as_ref().map(|t| t.to_ref()))
            .finish()
    }
}
