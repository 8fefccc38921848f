//! Adopting tasks that plain Tokio code already spawned: a
//! [`tokio::task::JoinHandle`] becomes a [`Task`] of ours, with a name, a
//! place in [`all_tasks`](crate::all_tasks), done callbacks, and a
//! [`cancel`](crate::TaskRef::cancel) that aborts the Tokio task.
//!
//! The adopted Tokio task keeps running as it was spawned; a small task of
//! ours awaits its `JoinHandle` and owns it through an
//! [`AbortOnDropHandle`], so cancelling ours aborts it. The Tokio task's own
//! future is not one of our tasks: `current_task()` inside it is `None`.

use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::task::JoinHandle;
use tokio_util::task::AbortOnDropHandle;

use super::current::with_current;
use super::{Builder, Task};

/// The future of an adopted Tokio task: its output, its panic re-raised (the
/// harness catches it), or, when the Tokio task was aborted by someone else,
/// the end of our task as cancelled.
pub(crate) struct JoinHandleTask<T> {
    inner: AbortOnDropHandle<T>,
    finished: bool,
}

impl<T> Future for JoinHandleTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.finished {
            return Poll::Pending; // aborted: our own abort is on its way
        }
        let res = ready!(Pin::new(&mut self.inner).poll(cx));
        self.finished = true;
        match res {
            Ok(value) => Poll::Ready(value),
            Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
            Err(_) => {
                // The Tokio task was aborted (or its runtime is shutting
                // down): end our task cancelled, the one way a task ends
                // cancelled from inside.
                with_current(|task| task.map(|t| t.cancel()));
                Poll::Pending
            }
        }
    }
}

impl Builder {
    /// Adopts a task spawned with plain Tokio (`tokio::spawn`,
    /// `JoinSet`, a library): the result is a [`Task`] of ours with this
    /// builder's name, listed by [`all_tasks`](crate::all_tasks), whose
    /// [`cancel`](crate::TaskRef::cancel) aborts the Tokio task and whose done
    /// callbacks fire when it ends. A panic of the Tokio task becomes
    /// [`Error::Panicked`](crate::Error::Panicked); an abort from elsewhere
    /// ends the task cancelled.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the adopting task runs on the current one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let raw = tokio::spawn(async { 6 * 7 });
    /// let task = asyncio::Task::builder().name("legacy").wrap(raw);
    /// assert!(asyncio::all_tasks().iter().any(|t| t.get_name() == "legacy"));
    /// assert_eq!(task.await.unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn wrap<T: Send + 'static>(self, handle: JoinHandle<T>) -> Task<T> {
        self.spawn(JoinHandleTask {
            inner: AbortOnDropHandle::new(handle),
            finished: false,
        })
    }
}

impl<T: Send + 'static> Task<T> {
    /// Adopts a task spawned with plain Tokio, unnamed (`Task-N`); see
    /// [`Builder::wrap`] to give it a name. Also available as
    /// `Task::from(join_handle)`.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let raw = tokio::spawn(std::future::pending::<()>());
    /// let mut task = asyncio::Task::from_join_handle(raw);
    /// task.cancel(); // aborts the Tokio task
    /// assert!((&mut task).await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    #[track_caller]
    pub fn from_join_handle(handle: JoinHandle<T>) -> Self {
        Builder::default().wrap(handle)
    }
}

impl<T: Send + 'static> From<JoinHandle<T>> for Task<T> {
    /// Same as [`Task::from_join_handle`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task: asyncio::Task<&str> = tokio::spawn(async { "hi" }).into();
    /// assert_eq!(task.await.unwrap(), "hi");
    /// # }
    /// ```
    #[track_caller]
    fn from(handle: JoinHandle<T>) -> Self {
        Task::from_join_handle(handle)
    }
}
