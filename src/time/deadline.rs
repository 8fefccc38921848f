//! [`Deadline`]: the one timer behind every timeout of the crate.
//!
//! asyncio's timeouts all behave alike, and so do ours:
//! - the clock starts at the first poll (building the future needs no
//!   runtime);
//! - `None` (or an infinite timeout) never expires and arms no timer;
//! - zero expires at once and arms no timer (Tokio rounds every timer up to
//!   the next millisecond);
//! - a timeout too long to represent is capped at 30 years, as Tokio's own
//!   `sleep` does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::{Instant, Sleep};

/// A timeout, armed at its first poll.
#[pin_project]
pub(crate) struct Deadline {
    /// `None`: never.
    timeout: Option<Duration>,
    /// Armed at the first poll that needs it; `None` again once disarmed.
    #[pin]
    timer: Option<Sleep>,
}

/// How a poll of the timer treats Tokio's cooperative budget.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Respect it, as any leaf future does (a sleep).
    Respect,
    /// Ignore it, as `tokio::time::timeout` does when the inner future used
    /// the budget up: a timeout must be seen.
    Ignore,
}

impl Deadline {
    /// A deadline `timeout` after the first poll (`None`: never).
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            timer: None,
        }
    }

    /// A timer for a deadline fixed elsewhere and shared by several timers
    /// (see [`poll_until`](Self::poll_until)).
    pub(crate) fn unarmed() -> Self {
        Self::new(None)
    }

    /// The timeout it was built with (`None`: never).
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether the timeout is zero: expired at once, no timer.
    pub(crate) fn is_zero(&self) -> bool {
        self.timeout == Some(Duration::ZERO)
    }

    /// Ready once the deadline has passed: pending forever for `None`,
    /// ready at once for zero; otherwise the timer is armed at the first
    /// call and polled as `budget` says.
    pub(crate) fn poll_expired(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        budget: Budget,
    ) -> Poll<()> {
        let timeout = match self.timeout {
            None => return Poll::Pending,
            Some(Duration::ZERO) => return Poll::Ready(()),
            Some(t) => t,
        };
        self.poll_until_with(cx, || instant_after(timeout), budget)
    }

    /// Ready once `at` has passed, for a deadline several timers share (the
    /// instant is fixed by whoever polled first). Ignores the budget.
    pub(crate) fn poll_until(self: Pin<&mut Self>, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        self.poll_until_with(cx, || at, Budget::Ignore)
    }

    fn poll_until_with(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        at: impl FnOnce() -> Instant,
        budget: Budget,
    ) -> Poll<()> {
        let mut this = self.project();
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep_until(at())));
        }
        let timer = this.timer.as_mut().as_pin_mut().expect("armed above");
        match budget {
            Budget::Respect => timer.poll(cx),
            Budget::Ignore => {
                let mut timer = tokio::task::coop::unconstrained(timer);
                Pin::new(&mut timer).poll(cx)
            }
        }
    }

    /// Drops the timer (it no longer holds a slot in Tokio's wheel).
    pub(crate) fn disarm(self: Pin<&mut Self>) {
        self.project().timer.set(None);
    }
}

/// `timeout` from now, capped at 30 years as Tokio's `sleep` caps it.
pub(crate) fn instant_after(timeout: Duration) -> Instant {
    const THIRTY_YEARS: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + THIRTY_YEARS)
}

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("timeout", &self.timeout)
            .field("armed", &self.timer.is_some())
            .finish()
    }
}
