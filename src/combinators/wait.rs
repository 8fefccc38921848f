//! [`wait`]: wait for some or all of a set of tasks, without cancelling
//! anything and without raising.
//!
//! | asyncio | here |
//! |---|---|
//! | `done, pending = await wait(tasks)` | `let (done, pending) = wait(tasks, ALL_COMPLETED, None).await;` |
//! | `wait(tasks, return_when=FIRST_COMPLETED)` | `wait(tasks, FIRST_COMPLETED, None)` |
//! | `wait(tasks, return_when=FIRST_EXCEPTION, timeout=10)` | `wait(tasks, FIRST_EXCEPTION, 10)` |
//!
//! Semantics: see [`wait`]; each bullet there has a test in `tests/wait.rs`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;

use crate::combinators::children::{ChildWatch, WakeOn};
use crate::combinators::input::{IntoTask, into_tasks};
use crate::time::{Budget, Deadline};
use crate::{Seconds, Task, TaskRef};

/// When [`wait`] returns (asyncio's `return_when`).
///
/// ```
/// use asyncio::ReturnWhen;
/// assert_eq!(asyncio::FIRST_COMPLETED, ReturnWhen::FirstCompleted);
/// assert_eq!(ReturnWhen::default(), asyncio::ALL_COMPLETED);
/// assert_eq!(asyncio::FIRST_EXCEPTION.to_string(), "FIRST_EXCEPTION");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any task ended (returned, panicked or was cancelled).
    FirstCompleted,
    /// As soon as any task panicked, or when all ended. A cancellation does
    /// not count as an exception.
    FirstException,
    /// When every task ended (asyncio's default).
    #[default]
    AllCompleted,
}

impl fmt::Display for ReturnWhen {
    /// asyncio's constant names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReturnWhen::FirstCompleted => "FIRST_COMPLETED",
            ReturnWhen::FirstException => "FIRST_EXCEPTION",
            ReturnWhen::AllCompleted => "ALL_COMPLETED",
        })
    }
}

/// asyncio's `FIRST_COMPLETED`: [`ReturnWhen::FirstCompleted`].
///
/// ```
/// asyncio::run(async {
///     let slow = asyncio::create_task(asyncio::sleep(10));
///     let fast = asyncio::create_task(asyncio::sleep(0.01));
///     let (done, pending) = asyncio::wait([slow, fast], asyncio::FIRST_COMPLETED, None).await;
///     assert_eq!((done.len(), pending.len()), (1, 1));
///     pending[0].cancel();
/// });
/// ```
pub const FIRST_COMPLETED: ReturnWhen = ReturnWhen::FirstCompleted;

/// asyncio's `FIRST_EXCEPTION`: [`ReturnWhen::FirstException`].
///
/// ```
/// asyncio::run(async {
///     let slow = asyncio::create_task(async { asyncio::sleep(10).await; });
///     let bad = asyncio::create_task(async { panic!("boom") });
///     let (done, pending) = asyncio::wait([slow, bad], asyncio::FIRST_EXCEPTION, None).await;
///     assert!(done[0].exception().unwrap().unwrap().is_panic());
///     pending[0].cancel();
/// });
/// ```
pub const FIRST_EXCEPTION: ReturnWhen = ReturnWhen::FirstException;

/// asyncio's `ALL_COMPLETED`: [`ReturnWhen::AllCompleted`].
///
/// ```
/// asyncio::run(async {
///     let tasks = (0..3).map(|i| asyncio::create_task(asyncio::sleep_with(0.01, i)));
///     let (done, pending) = asyncio::wait(tasks, asyncio::ALL_COMPLETED, None).await;
///     assert_eq!((done.len(), pending.len()), (3, 0));
/// });
/// ```
pub const ALL_COMPLETED: ReturnWhen = ReturnWhen::AllCompleted;

/// Waits until `return_when` holds or `timeout` runs out, and splits the
/// tasks into `(done, pending)`: asyncio's
/// `wait(fs, timeout=, return_when=)`.
///
/// Inputs are [`Task`]s or futures (scheduled as tasks now, when `wait` is
/// called). Nothing is ever cancelled, not on timeout, not when the
/// [`Wait`] is dropped; no error comes out of it (read each task's
/// `result()` / `exception()` or await it). `done` is in completion order,
/// `pending` in input order.
///
/// Semantics:
/// - `(done, pending)`: `done` in completion order (tasks already done when
///   the wait starts come first, in input order), `pending` in input order —
///   vectors of the very tasks given, where asyncio returns two sets;
/// - [`FIRST_COMPLETED`]: returns once any task ended, a cancellation counts;
///   several may be done by then;
/// - [`FIRST_EXCEPTION`]: returns once a task panicked (a cancellation does
///   not count; a task group's
///   [`try_create_task`](crate::TaskGroup::try_create_task) child that
///   returned `Err` does, as a raised exception), or when all are done; a
///   task that had already panicked makes it return at once;
/// - [`ALL_COMPLETED`]: waits for every task. Errors never come out
///   of `wait`: they stay on the tasks in `done`;
/// - a timeout returns the current split and cancels nothing; a zero
///   timeout yields once to the scheduler, then returns; a task done
///   at the timeout instant is in `done`;
/// - tasks already done count as done at once, without advancing time;
/// - dropping the [`Wait`] (its awaiter was cancelled) cancels nothing:
///   the tasks go on running, detached;
/// - empty input resolves to `(vec![], vec![])` at once (a deliberate
///   difference: asyncio raises `ValueError`).
///
/// # Panics
/// If `timeout` is NaN seconds; when an input is a plain future and there is
/// no running Tokio runtime; when polled with a timeout to wait for and no
/// Tokio runtime with the time driver.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(asyncio::sleep_with(10, "late"));
///     let (done, pending) = asyncio::wait([task], asyncio::ALL_COMPLETED, 0.01).await;
///     assert!(done.is_empty());
///     assert!(!pending[0].cancelled()); // a timeout cancels nothing
///     pending[0].cancel();
/// });
/// ```
///
/// # Cancel safety
/// See [`Wait`]: dropping it cancels nothing.
#[track_caller]
pub fn wait<I>(
    tasks: I,
    return_when: ReturnWhen,
    timeout: impl Seconds,
) -> Wait<<I::Item as IntoTask>::Output>
where
    I: IntoIterator,
    I::Item: IntoTask,
{
    // The argument first: a NaN timeout panics before any input is
    // scheduled (a spawned input would run on, detached).
    let timeout = timeout.to_duration();
    Wait {
        tasks: into_tasks(tasks).into_iter().map(Some).collect(),
        return_when,
        deadline: Deadline::new(timeout),
        watch: None,
        done: Vec::new(),
        yielded: false,
        finished: false,
    }
}

/// The future of [`wait`]: resolves to `(done, pending)`.
///
/// ```
/// asyncio::run(async {
///     let w: asyncio::futures::Wait<u8> = asyncio::wait([async { 1u8 }], asyncio::ALL_COMPLETED, None);
///     let (mut done, _) = w.await;
///     assert_eq!(done.pop().unwrap().result().unwrap(), 1);
/// });
/// ```
///
/// # Cancel safety
/// Cancel safe as far as the tasks go: dropping it cancels nothing (neither
/// does a timeout). The tasks it owns are dropped with it, and they go on
/// running; keep [`TaskRef`](crate::TaskRef)s (`task.to_ref()`) before the
/// call to follow them afterwards.
///
/// # Panics
/// If polled again after it resolved.
#[pin_project]
#[must_use = "futures do nothing unless awaited (the tasks run anyway)"]
pub struct Wait<T> {
    /// `None` once moved into the output.
    tasks: Vec<Option<Task<T>>>,
    return_when: ReturnWhen,
    #[pin]
    deadline: Deadline,
    watch: Option<ChildWatch>,
    /// Indices of the tasks seen done, in completion order.
    done: Vec<usize>,
    /// The timeout expired (or is zero) and we yielded once already.
    yielded: bool,
    finished: bool,
}

/// `(done, pending)`.
type Split<T> = (Vec<Task<T>>, Vec<Task<T>>);

impl<T: Send + 'static> Future for Wait<T> {
    type Output = Split<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Split<T>> {
        let mut this = self.project();
        assert!(!*this.finished, "asyncio: wait polled after completion");
        let n = this.tasks.len();
        let watch = match this.watch {
            Some(watch) => {
                watch.register(cx.waker());
                watch
            }
            None => this.watch.insert(ChildWatch::new(
                this.tasks.iter().enumerate().map(|(i, t)| (i, task_ref(t))),
                TaskRef::panicked,
                WakeOn::OnEveryCompletion,
                // asyncio's `_on_completion` looks at the exception of each
                // task that ends while it waits (but the last) for
                // FIRST_EXCEPTION only.
                (*this.return_when == ReturnWhen::FirstException).then_some(n),
                cx.waker(),
            )),
        };
        watch.drain_completed(this.done);
        let met = match this.return_when {
            ReturnWhen::AllCompleted => this.done.len() == n,
            ReturnWhen::FirstCompleted => !this.done.is_empty() || n == 0,
            ReturnWhen::FirstException => watch.first_failure().is_some() || this.done.len() == n,
        };
        if !met {
            // asyncio's timeout=0 returns after one loop iteration; a timer
            // that fired first lets what the same tick woke run, so a task
            // ending at the timeout instant is done.
            if this
                .deadline
                .as_mut()
                .poll_expired(cx, Budget::Ignore)
                .is_pending()
            {
                return Poll::Pending;
            }
            if !*this.yielded {
                *this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        *this.finished = true;
        *this.watch = None; // closes it: late callbacks wake no one
        this.deadline.disarm();
        Poll::Ready(split(this.tasks, this.done))
    }
}

fn task_ref<T>(t: &Option<Task<T>>) -> &TaskRef {
    t.as_ref().expect("asyncio: wait lost a task")
}

/// Moves the tasks out: `done` in completion order, then those that ended
/// since the last callback ran (input order), then `pending` in input order.
fn split<T: Send + 'static>(tasks: &mut [Option<Task<T>>], order: &[usize]) -> Split<T> {
    let mut done = Vec::with_capacity(order.len());
    for &i in order {
        done.extend(tasks[i].take());
    }
    let mut pending = Vec::with_capacity(tasks.len() - done.len());
    for slot in tasks.iter_mut() {
        match slot.take() {
            Some(t) if t.done() => done.push(t),
            Some(t) => pending.push(t),
            None => {}
        }
    }
    (done, pending)
}

impl<T: Send + 'static> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("tasks", &self.tasks.len())
            .field("return_when", &self.return_when)
            .field("timeout", &self.deadline.timeout())
            .field("done", &self.done.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{FIRST_COMPLETED, Task};

    /// `wait` takes its callbacks back from the tasks still
    /// pending, whether it finished (here: timed out) or was dropped, so a
    /// supervisor loop calling it again and again leaves nothing behind.
    #[tokio::test(start_paused = true)]
    async fn wait_takes_its_callbacks_back() {
        let long = crate::create_task(crate::sleep(3600));
        let r = long.to_ref();
        let mut pending: Vec<Task<()>> = vec![long];
        for _ in 0..100 {
            let (done, still) = crate::wait(pending, FIRST_COMPLETED, 0.01).await;
            assert!(done.is_empty());
            pending = still;
        }
        assert_eq!(r.core().callback_count(), 0);

        let unfinished = crate::wait(pending, FIRST_COMPLETED, None);
        let timed_out = tokio::time::timeout(Duration::from_secs(1), unfinished).await;
        assert!(timed_out.is_err()); // dropped unfinished
        assert_eq!(r.core().callback_count(), 0);
        r.cancel();
    }
}
