//! [`sleep`] and [`sleep_with`]: asyncio's `sleep(delay, result=None)`.
//!
//! Both are lazy: building one needs no runtime, and the deadline is taken at
//! the first poll. A zero (or negative) delay yields to the scheduler exactly
//! once and never touches the timer (Tokio rounds every timer up to the next
//! millisecond, so `tokio::time::sleep(ZERO)` would cost a millisecond).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project::pin_project;

use super::{Budget, Deadline, Seconds};

/// Waits `delay` (a [`Duration`](std::time::Duration) or seconds: `sleep(0.5)`, `sleep(1)`).
///
/// # Panics
/// If `delay` is NaN seconds.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = tokio::time::Instant::now();
/// asyncio::sleep(1.5).await;
/// assert!(start.elapsed() >= std::time::Duration::from_millis(1500));
/// # }
/// ```
///
/// # Cancel safety
/// See [`Sleep`]: dropping it only gives its timer back.
pub fn sleep(delay: impl Seconds) -> Sleep<()> {
    sleep_with(delay, ())
}

/// Waits `delay`, then returns `value` (asyncio's `sleep(delay, result)`).
///
/// ```
/// asyncio::run(async {
///     let world = asyncio::sleep_with(0.01, " world").await;
///     assert_eq!(format!("hello{world}"), "hello world");
/// });
/// ```
///
/// # Cancel safety
/// See [`Sleep`]: dropping it drops `value` and gives its timer back.
///
/// # Panics
/// If `delay` is NaN seconds.
pub fn sleep_with<T>(delay: impl Seconds, value: T) -> Sleep<T> {
    Sleep {
        deadline: Deadline::new(delay.to_duration()),
        value: Some(value),
        yielded: false,
    }
}

/// The future of [`sleep`] / [`sleep_with`].
///
/// ```
/// let nap: asyncio::futures::Sleep<u8> = asyncio::sleep_with(0, 3); // no runtime needed yet
/// assert_eq!(asyncio::run(nap), 3);
/// ```
///
/// # Cancel safety
/// Cancel safe: dropping it only gives its timer back; the value is dropped
/// with it.
///
/// # Panics
/// If polled again after it completed; if polled, for a finite delay that
/// is not zero, outside a Tokio runtime with the time driver (as
/// `tokio::time::sleep`).
#[pin_project]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep<T> {
    #[pin]
    deadline: Deadline,
    value: Option<T>,
    /// A zero delay yielded once already.
    yielded: bool,
}

impl<T> Future for Sleep<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        if this.deadline.is_zero() {
            // Zero: yield to the scheduler once, no timer.
            if !*this.yielded {
                *this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        } else {
            // Forever (`None`) stays pending: nothing will wake us.
            ready!(this.deadline.poll_expired(cx, Budget::Respect));
        }
        Poll::Ready(
            this.value
                .take()
                .expect("asyncio::Sleep polled after completion"),
        )
    }
}

impl<T> fmt::Debug for Sleep<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("delay", &self.deadline.timeout())
            .finish()
    }
}
