//! Timeout scopes: `timeout(delay)` and `timeout_at(deadline)` (asyncio
//! 3.11's `async with asyncio.timeout(…)`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tokio::time::{Instant, Sleep};

use super::deadline::Shared;
use super::node::{self, LazyScope, Timed};
use crate::Seconds;
use crate::error::{Error, TimeoutError};

/// A timeout scope whose deadline is `delay` from now (asyncio's
/// `asyncio.timeout(delay)`, which also fixes the deadline when it is
/// called). `delay` is anything [`Seconds`] accepts; `None` (or infinite
/// seconds) means no deadline.
///
/// [`Timeout::run`] runs a future under it: at the deadline the future is
/// cancelled (its [`on_cancel`](crate::on_cancel) cleanups run to their
/// end), then `run` returns `Err(Timeout)`. Unlike `tokio::time::timeout`,
/// the deadline can move while the future runs ([`Timeout::reschedule`]),
/// from inside or from another task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let r = asyncio::timeout(1).run(asyncio::sleep(10)).await;
/// assert!(r.unwrap_err().is_timeout());
/// let r = asyncio::timeout(1).run(asyncio::sleep_with(0.5, "ok")).await;
/// assert_eq!(r.unwrap(), "ok");
/// # }
/// ```
///
/// # Panics
/// On NaN seconds. The deadline is read from Tokio's clock: a paused clock
/// (`start_paused`) is followed, if this is called inside that runtime.
pub fn timeout(delay: impl Seconds) -> Timeout {
    let deadline = delay
        .to_duration()
        .and_then(|d| Instant::now().checked_add(d));
    Timeout::new(deadline)
}

/// A timeout scope with an absolute deadline (asyncio's
/// `asyncio.timeout_at(when)`): a [`tokio::time::Instant`], a loop time in
/// seconds as [`Loop::time`](crate::Loop::time) gives it (`f64`), or `None`
/// for no deadline. See [`timeout`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let lp = asyncio::get_running_loop();
/// let scope = asyncio::timeout_at(lp.time() + 5.0);
/// let r = scope.run(asyncio::sleep(10)).await;
/// assert!(r.unwrap_err().is_timeout());
/// assert!(scope.expired());
///
/// let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
/// assert_eq!(asyncio::timeout_at(deadline).when(), Some(deadline));
/// assert_eq!(asyncio::timeout_at(None).when(), None);
/// # }
/// ```
///
/// # Panics
/// A loop time (`f64`) needs a running loop: outside a Tokio runtime it
/// panics as [`get_running_loop`](crate::get_running_loop) does; a NaN loop
/// time panics.
pub fn timeout_at(deadline: impl IntoDeadline) -> Timeout {
    Timeout::new(deadline.to_instant())
}

/// What [`timeout_at`] and [`Timeout::reschedule`] accept as a deadline:
/// a [`tokio::time::Instant`], `None` (no deadline), or a loop time in
/// seconds (`f64`, as [`Loop::time`](crate::Loop::time) gives it; infinity
/// means no deadline).
///
/// ```
/// use asyncio::IntoDeadline;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let now = tokio::time::Instant::now();
/// assert_eq!(now.to_instant(), Some(now));
/// assert_eq!(None::<tokio::time::Instant>.to_instant(), None);
/// let lp = asyncio::get_running_loop();
/// assert_eq!((lp.time() + 2.0).to_instant(), Some(now + std::time::Duration::from_secs(2)));
/// assert_eq!(f64::INFINITY.to_instant(), None);
/// # }
/// ```
pub trait IntoDeadline {
    /// The deadline as an instant of Tokio's clock, or `None` for none.
    ///
    /// ```
    /// use asyncio::IntoDeadline;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lp = asyncio::get_running_loop();
    /// let at = (lp.time() + 1.0).to_instant().unwrap();
    /// assert_eq!(at, tokio::time::Instant::now() + std::time::Duration::from_secs(1));
    /// # }
    /// ```
    ///
    /// # Panics
    /// For a loop time: outside a runtime, or on NaN.
    fn to_instant(self) -> Option<Instant>;
}

impl IntoDeadline for Instant {
    fn to_instant(self) -> Option<Instant> {
        Some(self)
    }
}

impl IntoDeadline for Option<Instant> {
    fn to_instant(self) -> Option<Instant> {
        self
    }
}

impl IntoDeadline for f64 {
    fn to_instant(self) -> Option<Instant> {
        assert!(
            !self.is_nan(),
            "asyncio::timeout_at(when): when is NaN; pass a loop time such as loop.time() + 1.0, or None"
        );
        // Read both clocks together: the loop's time is Tokio's clock.
        let now = Instant::now();
        let delta = self - crate::get_running_loop().time();
        if delta <= 0.0 {
            let back = Duration::try_from_secs_f64(-delta).unwrap_or(Duration::MAX);
            return Some(now.checked_sub(back).unwrap_or(now));
        }
        Duration::try_from_secs_f64(delta)
            .ok()
            .and_then(|d| now.checked_add(d))
    }
}

/// A timeout scope: a deadline that cancels what [`run`](Self::run) runs.
/// Made by [`timeout`] or [`timeout_at`]. A cheap `Clone` handle: clones
/// share one scope, so another task can [`reschedule`](Self::reschedule)
/// it or read [`expired`](Self::expired).
///
/// Nested scopes each report their own expiry. When an outer deadline fired
/// too, an inner scope does not turn it into its own `Err(Timeout)`: the
/// cancellation goes on to the outer scope, which reports it. A result that
/// raced the deadline (ready at the poll that saw the deadline) is kept.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = asyncio::timeout(1);
/// let handle = scope.clone();
/// let r = scope
///     .run(async move {
///         asyncio::sleep(0.5).await;
///         handle.reschedule(handle.when().map(|t| t + std::time::Duration::from_secs(1)));
///         asyncio::sleep(1).await; // 1.5 s in all: within the moved deadline
///         "done"
///     })
///     .await;
/// assert_eq!(r.unwrap(), "done");
/// assert!(!scope.expired());
/// # }
/// ```
pub struct Timeout {
    /// The deadline it was made with: the scope's deadline until `link` is
    /// set.
    at: Option<Instant>,
    /// `run` was called on this handle.
    ///
    /// A plain load and store, not an atomic read-modify-write: that one
    /// locked instruction would cost a scope around a ready future a fifth
    /// of `tokio::time::timeout`. What is shared between the handles is
    /// checked on the shared state, with a read-modify-write, when there
    /// is one (see [`run`](Self::run) for what that leaves unchecked).
    entered: AtomicBool,
    /// Made by `timeout`/`timeout_at` (not a clone): the shared state, if
    /// made for this handle, may carry this handle's own run.
    first: bool,
    /// The state shared with the clones and the run (deadline, expiry,
    /// entered), made only when something needs it: a clone, a
    /// `reschedule`, or a run that goes pending or has a scope inside. A
    /// scope around a future that is ready at once never makes it, so it
    /// costs no allocation and no reference count (`tokio::time::timeout`
    /// needs neither); this is why the run borrows its handle.
    link: OnceLock<Shared>,
}

impl Timeout {
    fn new(deadline: Option<Instant>) -> Timeout {
        Timeout {
            at: deadline,
            entered: AtomicBool::new(false),
            first: true,
            link: OnceLock::new(),
        }
    }

    /// The handle's address, which identifies it while its run borrows it.
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// The shared state, made now if there is none yet: the one its run's
    /// first poll made if this is called during that poll on its thread,
    /// else a new one.
    fn linked(&self) -> &Shared {
        self.link_with(|| {
            node::timer_in_poll(self.key(), true).unwrap_or_else(|| Shared::new(self.at))
        })
    }

    /// [`linked`](Self::linked), with `make` making the state if there is
    /// none yet. If this handle's run has begun, the state records it
    /// before this returns (so before a clone can be made from it), and a
    /// clone's run panics.
    fn link_with(&self, make: impl FnOnce() -> Shared) -> &Shared {
        let shared = self.link.get_or_init(make);
        if self.first && self.entered.load(Ordering::Acquire) {
            shared.carry_run();
        }
        shared
    }

    /// The shared state if it exists (or is being made by this handle's
    /// run's first poll on this thread), without making it.
    fn peek<R>(&self, f: impl FnOnce(Option<&Shared>) -> R) -> R {
        match self.link.get() {
            Some(shared) => f(Some(shared)),
            None => f(node::timer_in_poll(self.key(), false).as_ref()),
        }
    }

    /// The deadline, or `None` if there is none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let now = tokio::time::Instant::now();
    /// assert_eq!(asyncio::timeout(2).when(), Some(now + std::time::Duration::from_secs(2)));
    /// assert_eq!(asyncio::timeout(None::<std::time::Duration>).when(), None);
    /// # }
    /// ```
    pub fn when(&self) -> Option<Instant> {
        self.peek(|shared| shared.map_or(self.at, |s| s.when()))
    }

    /// Moves the deadline (`None` removes it), before [`run`](Self::run) or
    /// while it runs, from inside the future or from anywhere else. A
    /// deadline already past fires at the scope's next poll. After the
    /// deadline fired, the scope is cancelling or done: moving it changes
    /// what [`when`](Self::when) says, nothing else.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = asyncio::timeout(1);
    /// scope.reschedule(None);
    /// assert_eq!(scope.when(), None);
    /// assert_eq!(scope.run(asyncio::sleep_with(5, 1)).await.unwrap(), 1);
    /// # }
    /// ```
    ///
    /// # Panics
    /// As [`timeout_at`], for a loop time.
    pub fn reschedule(&self, deadline: impl IntoDeadline) {
        let at = deadline.to_instant();
        self.linked().set(at);
    }

    /// `true` once the deadline fired (whether or not the future then ended
    /// with `Err(Timeout)`: it may have raced the deadline and won).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = asyncio::timeout(0.5);
    /// assert!(!scope.expired());
    /// let _ = scope.run(asyncio::sleep(1)).await;
    /// assert!(scope.expired());
    /// # }
    /// ```
    pub fn expired(&self) -> bool {
        self.peek(|shared| shared.is_some_and(|s| s.expired()))
    }

    /// Runs `fut` under this scope, polled in place (in the caller's task,
    /// so it may borrow): `Ok(output)`, or, at the deadline, the
    /// cancellation of `fut` (its cleanups run to their end) and then
    /// `Err(Timeout)`. A zero or past deadline still polls `fut` once: a
    /// future ready at once is returned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut n = 0;
    /// let r = asyncio::timeout(0).run(async { n += 1; n }).await;
    /// assert_eq!(r.unwrap(), 1);
    /// # }
    /// ```
    ///
    /// The returned future borrows the handle, as `async with` is a block:
    /// to run a scope in another task, move the handle (or a clone) into
    /// that task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let scope = asyncio::timeout(1);
    /// let inside = scope.clone();
    /// let task = asyncio::create_task(async move { inside.run(asyncio::sleep(5)).await });
    /// asyncio::sleep(0.5).await;
    /// scope.reschedule(None); // reaches the run in the other task
    /// assert!(task.await.unwrap().is_ok());
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// Dropping the returned future drops `fut` without running its
    /// cleanups (see [`on_cancel`](crate::on_cancel)). The scope itself is
    /// spent: the handle still answers [`when`](Self::when) and
    /// [`expired`](Self::expired), but cannot `run` again.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) when this scope's deadline
    /// fired before `fut` returned. When an enclosing scope's deadline fired
    /// too, or the task is being cancelled, this run does not resolve: the
    /// cancellation goes on to the enclosing scope or task, which reports
    /// it. `fut`'s own output, `Result` or not, is returned inside `Ok`.
    ///
    /// # Panics
    /// A scope runs one future: a second `run` of the same scope (or of a
    /// clone of it) panics with `Timeout has already been entered`. Two
    /// runs begun at the same time on two threads through one shared
    /// `&Timeout` (or through it and a clone made at that moment) are not
    /// always told apart at `run`: then the second one panics at its first
    /// poll that needs the scope's shared state (it goes pending, or has a
    /// scope inside), and if neither needs it, both complete, as two scopes
    /// with the same deadline. Polling needs Tokio's timer (a runtime with
    /// time enabled) once `fut` is pending with a deadline set. A panic of
    /// `fut` goes on to the caller. Polling again after it resolved panics.
    pub fn run<F: IntoFuture>(&self, fut: F) -> TimeoutRun<'_, F::IntoFuture> {
        let again = self.entered.load(Ordering::Relaxed);
        self.entered.store(true, Ordering::Release);
        let linked = self.link.get();
        let again = again || linked.is_some_and(|s| !s.enter_run(self.first));
        assert!(!again, "{ENTERED_TWICE}");
        TimeoutRun {
            fut: Some(fut.into_future()),
            handle: self,
            sleep: None,
            armed: 0,
            scope: LazyScope::new(linked.cloned().unwrap_or_default()),
            state: RunState::Running,
            entered_shared: linked.is_some(),
        }
    }
}

/// The message of a second `run` of a scope.
const ENTERED_TWICE: &str = "Timeout has already been entered: a timeout scope runs one future; make another with asyncio::timeout()";

impl Clone for Timeout {
    /// Another handle on the same scope (this makes the shared state, if
    /// there was none yet).
    fn clone(&self) -> Timeout {
        Timeout {
            at: self.at,
            entered: AtomicBool::new(false),
            first: false,
            link: OnceLock::from(self.linked().clone()),
        }
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RunState {
    Running,
    /// Cancelled by an enclosing scope: pending for ever (see the
    /// `scope` module docs).
    Cancelled,
    Done,
}

/// The future [`Timeout::run`] returns.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scope = asyncio::timeout(1);
/// let run: asyncio::futures::TimeoutRun<'_, _> = scope.run(async { 3 });
/// assert_eq!(run.await.unwrap(), 3);
/// # }
/// ```
#[pin_project(project = TimeoutRunProj)]
#[must_use = "futures do nothing unless awaited"]
pub struct TimeoutRun<'a, F> {
    #[pin]
    fut: Option<F>,
    /// The handle: the run links it to its shared state only when it needs
    /// it (see [`Timeout`]'s `link`).
    handle: &'a Timeout,
    /// The timer, boxed: armed only once `fut` is pending, and it would
    /// triple the size of this future (which a scope around a ready future
    /// moves and drops at once).
    sleep: Option<Pin<Box<Sleep>>>,
    /// One more than the generation of the deadline the timer is armed for
    /// (0: never armed).
    armed: u64,
    /// The scope's node, registered with the enclosing scope only once
    /// needed: a future ready at its first poll, with no scope inside,
    /// costs no lock, no clock read, no timer and no shared state.
    scope: LazyScope,
    state: RunState,
    /// The run entered the shared state (at `run`, or when it linked it).
    entered_shared: bool,
}

impl<F: Future> Future for TimeoutRun<'_, F> {
    type Output = crate::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.state {
            RunState::Running => {}
            RunState::Cancelled => return Poll::Pending,
            RunState::Done => panic!("asyncio: TimeoutRun polled after it resolved"),
        }
        let node = if this.scope.settled() {
            if !*this.entered_shared {
                // The first poll registered the scope, then unwound (a
                // panic, caught around that poll) before it linked the
                // handle: link it now, or the handle would make a state of
                // its own that the run never reads.
                this.link();
            }
            let node = this
                .scope
                .node()
                .expect("a settled scope has a node")
                .clone();
            // A result ready at this poll wins over the deadline (invariant 5).
            if !node.status().must_drop() {
                if let Some(fut) = this.fut.as_mut().as_pin_mut() {
                    if let Poll::Ready(v) = node::enter(&node, || fut.poll(cx)) {
                        return this.done(Ok(v));
                    }
                }
            }
            node
        } else {
            // The first poll: nothing can have cancelled the scope yet (it
            // is not registered, its deadline not looked at). It registers
            // during the poll if a scope inside asks for it, else now that
            // the future is pending.
            let fut = this
                .fut
                .as_mut()
                .as_pin_mut()
                .expect("asyncio: the future of a running scope");
            let handle = *this.handle;
            let timed = Timed {
                key: handle.key(),
                at: handle.at,
            };
            let polled = this.scope.enter(Some(timed), || fut.poll(cx));
            if !this.scope.timer().is_some() && !this.scope.settled() {
                if let Poll::Ready(v) = polled {
                    // Ready at once, nothing inside registered: nothing to
                    // link, leave or disarm.
                    *this.state = RunState::Done;
                    this.fut.set(None);
                    return Poll::Ready(Ok(v));
                }
            }
            this.link();
            if let Poll::Ready(v) = polled {
                return this.done(Ok(v));
            }
            this.scope.register_now().clone()
        };
        node.set_waker(cx.waker());
        let timer = this.scope.timer();
        timer.set_waker(cx.waker());
        // The deadline, re-armed if it moved.
        let (deadline, generation) = timer.get();
        if *this.armed != generation + 1 {
            *this.armed = generation + 1;
            match deadline {
                Some(at) if at > Instant::now() => match this.sleep.as_mut() {
                    Some(sleep) => sleep.as_mut().reset(at),
                    None => *this.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
                },
                Some(_) => {
                    *this.sleep = None;
                    node.expire_with_ancestors(Instant::now());
                }
                None => *this.sleep = None,
            }
        }
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                *this.sleep = None;
                node.expire_with_ancestors(Instant::now());
            }
        }
        let status = node.status();
        if !status.cancelled() {
            return Poll::Pending;
        }
        if !node.claim_drop() {
            // Cancelled with cleanups to run: poll again, so that the
            // `OnCancel`s inside see it now (they were woken too).
            if let Some(fut) = this.fut.as_mut().as_pin_mut() {
                if let Poll::Ready(v) = node::enter(&node, || fut.poll(cx)) {
                    return this.done(Ok(v));
                }
            }
            if !node.claim_drop() {
                return Poll::Pending;
            }
        }
        // Every cleanup inside ran: drop the future, then report.
        this.fut.set(None);
        *this.sleep = None;
        let status = node.status();
        if status.inherited {
            // The cancellation goes on to the enclosing scope.
            *this.state = RunState::Cancelled;
            this.scope.leave();
            return Poll::Pending;
        }
        this.done(Err(Error::Timeout(TimeoutError::new())))
    }
}

impl<F: Future> TimeoutRunProj<'_, '_, F> {
    /// After the first poll: links the handle to the shared state the poll
    /// made (a scope inside registered with this one), or to a new one (the
    /// future is pending: the deadline must reach the run from now on).
    fn link(&mut self) {
        let handle = *self.handle;
        let made = std::mem::take(self.scope.timer_mut());
        let linked = handle.link_with(|| {
            if made.is_some() {
                made.clone()
            } else {
                Shared::new(handle.at)
            }
        });
        if made.is_some() && !made.same(linked) {
            // Another thread linked the handle during the poll: the node
            // takes its state, with the expiry the poll may have marked.
            if let Some(node) = self.scope.node() {
                drop(node.replace_timer(linked.clone()));
            }
            if made.expired() {
                linked.mark_expired();
            }
        }
        // The run enters the shared state (its own handle's link carried
        // it in already, unless the state was made by a clone's link): a
        // run of a clone that got there first, begun at the same time on
        // another thread, makes this one the second.
        *self.scope.timer_mut() = linked.clone();
        if !*self.entered_shared {
            *self.entered_shared = true;
            assert!(linked.enter_run(handle.first), "{ENTERED_TWICE}");
        }
    }

    fn done(&mut self, out: crate::Result<F::Output>) -> Poll<crate::Result<F::Output>> {
        *self.state = RunState::Done;
        self.fut.set(None);
        *self.sleep = None;
        self.scope.leave();
        Poll::Ready(out)
    }
}

impl<F> fmt::Debug for TimeoutRun<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutRun")
            .field("when", &self.handle.when())
            .field("expired", &self.handle.expired())
            .field("state", &self.state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope around a ready future is made, moved into its caller's
    /// future and dropped at once: keep it small (the timer is boxed).
    #[test]
    fn a_timeout_run_stays_small() {
        let size = std::mem::size_of::<TimeoutRun<'_, std::future::Ready<u64>>>();
        assert!(size <= 88, "TimeoutRun<Ready<u64>> is {size} bytes");
        eprintln!("TimeoutRun<Ready<u64>>: {size} bytes");
    }
}
