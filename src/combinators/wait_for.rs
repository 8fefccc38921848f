//! [`wait_for`]: await something with a timeout; on timeout, cancel it and
//! wait until the cancellation finished.
//!
//! | asyncio | here |
//! |---|---|
//! | `await wait_for(coro, 2)` | `wait_for(fut, 2).await` (polled in place) |
//! | `await wait_for(task, 2)` | `wait_for(task, 2).await` |
//! | `await wait_for(aw, None)` | `wait_for(aw, None).await` |
//! | `except TimeoutError` | `Err(e) if e.is_timeout()` |
//!
//! Semantics: see [`wait_for`]; each bullet there has a test in
//! `tests/wait_for.rs`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;

use crate::Seconds;
use crate::combinators::input::{Awaitable, WaitTarget};
use crate::time::{Budget, Deadline};

/// Waits for `aw` at most `timeout`: asyncio's `wait_for(aw, timeout)`.
///
/// `aw` is a future (polled in place, in the caller's task) or a [`Task`](crate::Task).
/// `timeout` is a `Duration`, seconds (`2`, `0.5`), or `None` (forever).
/// Resolves to `Ok(output)`, the task's own error, or `Err(Timeout)` after
/// the inner was cancelled *and* its cancellation finished.
///
/// Semantics (Python 3.12's):
/// - a plain future is polled in place, inside the caller's task: no spawn,
///   same [`current_task`](crate::current_task), may borrow;
/// - the clock starts at the first poll; the inner is polled before the
///   clock is looked at, so a result ready at the deadline is returned, not
///   dropped (Python 3.11's choice) and a ready future never reads the
///   clock at all. When the timer fires, `wait_for` yields once and looks at
///   the inner again before cancelling it, so a task woken by the same timer
///   tick still delivers its result;
/// - on timeout the inner is cancelled and the cancellation *finished*
///   before `Err(Timeout)` comes back: a future is dropped (its destructors
///   run), a task is cancelled and awaited until it ended. If the
///   task returned a value or panicked before the cancellation reached it,
///   that is returned instead;
/// - `None` (or an infinite timeout) waits forever, with no timer;
/// - a zero or negative timeout polls the inner once: a ready result is
///   returned, otherwise the inner is cancelled and `Err(Timeout)` returned,
///   with no timer (Tokio would round a zero timer up to 1 ms);
/// - a cancellation of the waiting code (its task is cancelled, an
///   enclosing [`timeout`](crate::timeout) or group cancels it) reaches the
///   inner as it reaches any future polled there: a plain future's
///   [`on_cancel`](crate::on_cancel) cleanups run; a task is cancelled and
///   waited for until it ended, its cleanups included, before the
///   cancellation goes on, as `task.await` by value does (asyncio's
///   `wait_for` awaits the task it cancels). If the task returned a value
///   meanwhile, `wait_for` returns it and the cancellation goes on at the
///   next suspension point;
/// - dropping the [`WaitFor`] from outside (a `select!`) drops the inner
///   future, or cancels the inner task without waiting; a task that is
///   cancelled by someone else gives `Err(Cancelled)`, not `Err(Timeout)`;
/// - waiting for the current task's own [`Task`](crate::Task) (received
///   through a channel) gives `Err(InvalidState)` ("Task cannot await on
///   itself") at the first poll and cancels nothing, as asyncio's
///   `wait_for(current_task(), t)` raises `RuntimeError` and leaves the task
///   running.
///
/// # Errors
/// - [`Error::Timeout`](crate::Error::Timeout) when `timeout` ran out
///   before `aw` finished (`aw` was cancelled, and its cancellation
///   finished, before this is returned);
/// - for a [`Task`](crate::Task), also the task's own end, as awaiting it
///   gives: [`Error::Cancelled`](crate::Error::Cancelled) (cancelled by
///   someone else), [`Error::Panicked`](crate::Error::Panicked),
///   [`Error::Failed`](crate::Error::Failed) (a task group's
///   [`try_create_task`](crate::TaskGroup::try_create_task) child);
///   [`Error::InvalidState`](crate::Error::InvalidState) when the task is
///   the current task itself.
///
/// A plain future's output comes back in `Ok`, whatever it is.
///
/// # Panics
/// If `timeout` is NaN seconds; when a timer is needed and there is no Tokio
/// runtime with the time driver. A panic of a plain future (polled in place)
/// goes on to the caller.
///
/// ```
/// async fn say_after(delay: f64, what: &str) -> String {
///     asyncio::sleep(delay).await;
///     what.to_string()
/// }
///
/// asyncio::run(async {
///     match asyncio::wait_for(say_after(5.0, "hello"), 0.01).await {
///         Ok(result) => println!("{result}"),
///         Err(e) if e.is_timeout() => println!("Timeout exceed"),
///         Err(e) => panic!("{e}"),
///     }
///     let quick = asyncio::wait_for(say_after(0.0, "hi"), None).await.unwrap();
///     assert_eq!(quick, "hi");
/// });
/// ```
///
/// # Cancel safety
/// See [`WaitFor`]: dropping it unfinished drops the future or cancels the
/// task.
pub fn wait_for<A>(aw: A, timeout: impl Seconds) -> WaitFor<A>
where
    A: Awaitable,
    A::Target: WaitTarget<Output = A::Output>,
{
    // The argument first: a NaN timeout panics while `aw` is still the
    // caller's (a task is dropped as it is, not cancelled by our target).
    let timeout = timeout.to_duration();
    WaitFor {
        target: aw.into_target(),
        deadline: Deadline::new(timeout),
        phase: Phase::Waiting,
        input: PhantomData,
    }
}

/// The future of [`wait_for`]: resolves to `asyncio::Result<A::Output>`.
///
/// ```
/// asyncio::run(async {
///     let w: asyncio::futures::WaitFor<asyncio::futures::Sleep<u8>> = asyncio::wait_for(asyncio::sleep_with(10, 1), 0);
///     assert!(w.await.unwrap_err().is_timeout());
/// });
/// ```
///
/// # Cancel safety
/// Not cancel safe: dropping it before it resolved drops a plain future where
/// it stands (its destructors run) and cancels a task, as cancelling asyncio's
/// `wait_for` cancels what it waits for; an output that was ready at that
/// moment is lost with it.
///
/// # Panics
/// If polled again after it resolved.
///
/// The second parameter is always the default: it is the input's
/// `Awaitable::Target` (how `wait_for` drives it), named as a parameter so that the type of a field
/// is never an associated type. With `A::Target` as the field's type, a
/// `WaitFor` over a future holding a closure that returns an `async` block
/// (an `on_cancel` cleanup) inside a spawned `async` block failed rustc's
/// `Send` check ("one type is more general than the other"): that check
/// normalizes field types with the lifetimes erased.
#[pin_project]
#[must_use = "futures do nothing unless awaited"]
pub struct WaitFor<A, T = <A as Awaitable>::Target> {
    #[pin]
    target: T,
    /// Armed at the first poll that finds the inner pending.
    #[pin]
    deadline: Deadline,
    phase: Phase,
    /// The input's type, for the name only (no ownership: `Send`/`Sync`
    /// follow the target alone).
    input: PhantomData<fn() -> A>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    /// The deadline passed: one more look at the inner after a yield.
    Expired,
    /// Timed out: cancelling the inner and waiting for that to finish.
    Cancelling,
    Done,
}

impl<A, T: WaitTarget> Future for WaitFor<A, T> {
    type Output = crate::Result<T::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.phase == Phase::Waiting {
            // The inner first: a result ready at the deadline wins.
            if let Poll::Ready(out) = this.target.as_mut().poll_output(cx) {
                *this.phase = Phase::Done;
                return Poll::Ready(out);
            }
            if this.deadline.is_zero() {
                *this.phase = Phase::Cancelling;
            } else {
                // The clock starts now, at the first poll that found the
                // inner pending. The budget is ignored, as
                // `tokio::time::timeout` does when the inner used it up: the
                // deadline must be seen.
                ready!(this.deadline.as_mut().poll_expired(cx, Budget::Ignore));
                // Let whatever the same timer tick woke (a task finishing at
                // the deadline) run first, then look at the inner once more.
                *this.phase = Phase::Expired;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        } else if *this.phase == Phase::Expired {
            if let Poll::Ready(out) = this.target.as_mut().poll_output(cx) {
                *this.phase = Phase::Done;
                this.deadline.as_mut().disarm();
                return Poll::Ready(out);
            }
            *this.phase = Phase::Cancelling;
        }
        assert!(
            *this.phase == Phase::Cancelling,
            "asyncio: wait_for polled after completion"
        );
        let out = ready!(this.target.poll_cancel(cx));
        *this.phase = Phase::Done;
        this.deadline.as_mut().disarm();
        Poll::Ready(out)
    }
}

impl<A, T> fmt::Debug for WaitFor<A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFor")
            .field("timeout", &self.deadline.timeout())
            .field("state", &self.phase)
            .finish()
    }
}
