//! [`as_completed`]: results in completion order, as an [`Iterator`] of
//! futures (asyncio's `for next in as_completed(aws): await next`) and as a
//! [`futures::Stream`] (asyncio 3.13's `async for`).
//!
//! | asyncio | here |
//! |---|---|
//! | `for aw in as_completed(aws): r = await aw` | `for next in as_completed(aws, None) { let r = next.await; }` |
//! | `async for t in as_completed(aws, timeout=5)` | `while let Some(r) = StreamExt::next(&mut as_completed(aws, 5)).await` |
//!
//! Semantics (checked by `tests/as_completed.rs`):
//! - inputs are scheduled as tasks when `as_completed` is called;
//! - the k-th iterator item *to be awaited* resolves to the k-th result to
//!   complete, whatever order the items were taken in; several items
//!   may be awaited concurrently, woken longest-waiting first, one
//!   wake-up per result; the stream yields the results in
//!   completion order — `asyncio::Result<T>`, the task's own error
//!   included, never a panic out of the iteration;
//! - as many items as inputs; empty input ends at once;
//! - the timeout's clock starts at the first poll of an item or of the
//!   stream; once it ran out, every remaining item resolves to
//!   `Err(Timeout)` and the stream yields one `Err(Timeout)`, then
//!   ends. Results that completed before the deadline was seen are still
//!   handed out first. Nothing is cancelled by the timeout;
//! - dropping the [`AsCompleted`] (and its items) part-way leaves the
//!   remaining tasks running, detached, as in asyncio: keep a
//!   [`TaskRef`](crate::TaskRef) (or cancel them) if they must not outlive it;
//! - the iteration can be resumed after a `break`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::Stream;
use pin_project::pin_project;
use tokio::time::Instant;

use crate::combinators::children::notify_each;
use crate::combinators::input::{IntoTask, into_tasks};
use crate::error::{Error, TimeoutError};
use crate::task::ChildDone;
use crate::time::{Deadline, instant_after};
use crate::{Seconds, Task, TaskRef};

mod line;

use line::{WaiterKey, Waiters};

/// Results of `inputs` in completion order: asyncio's
/// `as_completed(aws, timeout=)`.
///
/// Inputs are [`Task`]s or futures (scheduled as tasks now). The returned
/// [`AsCompleted`] is an [`Iterator`] of futures, each resolving to the next
/// result to complete, and a [`Stream`] of those results. `timeout`
/// (`Duration`, seconds or `None`) starts at the first poll; after it, the
/// remaining items resolve to `Err(Timeout)` (the stream yields one and
/// ends), and nothing is cancelled.
///
/// Dropping it part-way leaves the remaining tasks running.
///
/// # Waiting in line
/// Each completion wakes the item that has waited longest (and the stream,
/// if it waits); an item woken whose result another consumer took first
/// (one polled for the first time, say) waits again at the back of the
/// line. Awaiting the items one after the other, reading the `Stream`, or
/// awaiting many items at once all cost one wake-up per result. As with
/// `tokio::sync::Notify`, an item that was polled keeps its place in line
/// until it resolves or is dropped: do not keep a polled item aside without
/// polling it (drop it instead: dropping a woken item passes its result on
/// to the next item in line).
///
/// # Errors
/// Each result is the task's outcome: [`Error::Cancelled`],
/// [`Error::Panicked`] or [`Error::Failed`] (a task group's
/// [`try_create_task`](crate::TaskGroup::try_create_task) child) for a task
/// that ended so; [`Error::Timeout`] for every item left once the timeout
/// ran out (the stream yields one and ends).
///
/// # Panics
/// If `timeout` is NaN seconds (before any input is scheduled); when an
/// input is a plain future and there is no running Tokio runtime; when an
/// item is polled with a timeout to wait for and no Tokio runtime with the
/// time driver.
///
/// ```
/// // One thread: the timers below run in deadline order even on a busy machine.
/// asyncio::Runner::new().current_thread().run(async {
///     let slow = asyncio::sleep_with(0.03, "slow");
///     let fast = asyncio::sleep_with(0.01, "fast");
///     let mut order = Vec::new();
///     for next in asyncio::as_completed([slow, fast], None) {
///         order.push(next.await.unwrap());
///     }
///     assert_eq!(order, ["fast", "slow"]);
/// });
/// ```
///
/// # `next()` with `StreamExt` in scope
/// [`AsCompleted`] is both an [`Iterator`] and a [`Stream`], and both
/// `Iterator` and `futures::StreamExt` have a `next` method: with
/// `StreamExt` imported, `it.next()` is ambiguous (error E0034). Say which
/// one: `Iterator::next(&mut it)` for the next item (a future to await),
/// `StreamExt::next(&mut it).await` for the next result. A `for` loop takes
/// the iterator's and needs nothing.
///
/// ```
/// use futures::StreamExt;
///
/// asyncio::Runner::new().current_thread().run(async {
///     let mut it = asyncio::as_completed([asyncio::sleep_with(0.02, 2), asyncio::sleep_with(0.01, 1)], None);
///     // the iterator's item: a future of the next result to complete
///     let first = Iterator::next(&mut it).unwrap().await.unwrap();
///     // the stream's item: the next result itself
///     let second = StreamExt::next(&mut it).await.unwrap().unwrap();
///     assert_eq!((first, second), (1, 2));
///     assert!(Iterator::next(&mut it).is_none());
/// });
/// ```
///
/// ```compile_fail,E0034
/// use futures::StreamExt;
///
/// asyncio::run(async {
///     let mut it = asyncio::as_completed([async { 1 }], None);
///     let _ = it.next(); // ambiguous: Iterator::next or StreamExt::next?
/// });
/// ```
///
/// # Cancel safety
/// See [`AsCompleted`]: dropping it, or any of its items, cancels nothing and
/// loses no result.
#[track_caller]
pub fn as_completed<I>(
    inputs: I,
    timeout: impl Seconds,
) -> AsCompleted<<I::Item as IntoTask>::Output>
where
    I: IntoIterator,
    I::Item: IntoTask,
{
    // The argument first: a NaN timeout panics before any input is
    // scheduled (a spawned input would run on, detached).
    let timeout = timeout.to_duration();
    let tasks = into_tasks(inputs);
    let n = tasks.len();
    let shared = Arc::new(Shared {
        state: Mutex::new(Results {
            tasks: Vec::new(),
            ready: VecDeque::with_capacity(n),
            waiters: Waiters::default(),
            stream_waker: None,
            timeout,
            deadline: None,
            cap: None,
        }),
    });
    let mut already = Vec::new();
    let children = tasks.iter().enumerate().map(|(i, t)| (i, &**t));
    // Done before we asked: in input order.
    notify_each(&shared, children, false, |i, _| already.push(i));
    {
        let mut st = shared.lock();
        st.tasks = tasks.into_iter().map(Some).collect();
        // Those done before the call come first, in input order.
        for i in already.into_iter().rev() {
            st.ready.push_front(i);
        }
    }
    AsCompleted {
        stream: Consumer {
            shared,
            key: None,
            stream: true,
        },
        len: n,
        taken: 0,
        timer: None,
        stream_done: false,
    }
}

struct Shared<T> {
    state: Mutex<Results<T>>,
}

/// One consumer of results: an item, which waits in line (its waiter slot
/// is given back when it resolves or is dropped), or the stream, which
/// waits beside the line (see [`Results::stream_waker`]).
struct Consumer<T> {
    shared: Arc<Shared<T>>,
    key: Option<WaiterKey>,
    stream: bool,
}

impl<T: Send + 'static> Consumer<T> {
    fn poll_claim(&mut self, cx: &mut Context<'_>, timer: Pin<&mut Deadline>) -> Poll<Claim<T>> {
        self.shared
            .poll_claim(cx, timer, &mut self.key, self.stream)
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        if self.stream {
            // The guard is gone at the end of the statement, the waker after.
            let waker = self.shared.lock().stream_waker.take();
            drop(waker);
        } else {
            self.shared.leave(&mut self.key);
        }
    }
}

/// What the consumers share, behind `Shared`'s lock: the inputs, the
/// results ready to hand out, the line of waiting items, and the timeout.
struct Results<T> {
    /// `None` once its result was handed out.
    tasks: Vec<Option<Task<T>>>,
    /// Indices of finished tasks not handed out yet, in completion order.
    ready: VecDeque<usize>,
    /// Items waiting for the next completion, in line.
    waiters: Waiters,
    /// The stream's waker while it waits. The stream is woken on every
    /// completion *besides* the first item in line, never instead of it: a
    /// `StreamExt::next` future abandoned half-way (a `select!`, a timeout)
    /// leaves the stream registered, and it must not hold back the items.
    stream_waker: Option<Waker>,
    timeout: Option<Duration>,
    /// Set at the first poll of anything.
    deadline: Option<Instant>,
    /// Set once the deadline was seen: how many `ready` results may still
    /// be handed out; after them, everything is `Err(Timeout)`.
    cap: Option<usize>,
}

/// What one claim gets.
enum Claim<T> {
    Result(crate::Result<T>),
    TimedOut,
}

impl<T: Send + 'static> ChildDone for Shared<T> {
    /// The done callback of input `index`.
    fn child_done(&self, index: usize, _: &TaskRef) {
        self.completed(index);
    }
}

// Unbounded: a consumer's `Drop` uses them, so the futures need no bounds
// on their definitions.
impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Results<T>> {
        crate::lock::lock(&self.state)
    }

    /// A consumer with waiter slot `key` is dropped unresolved. If it was
    /// woken for a result it will now never take, the next waiter is woken
    /// instead: a result is never left with nobody woken for it.
    fn leave(&self, key: &mut Option<WaiterKey>) {
        if key.is_none() {
            return;
        }
        let (wake, old) = {
            let mut st = self.lock();
            let (was_woken, old) = st.waiters.remove(key);
            if !was_woken || st.ready.is_empty() {
                (None, old)
            } else {
                (st.waiters.pop(), old)
            }
        };
        // Woken and dropped outside the lock.
        drop(old);
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl<T: Send + 'static> Shared<T> {
    /// Done callback of task `i`: one result more; the first item in line
    /// and the stream are woken.
    fn completed(&self, i: usize) {
        let (item, stream) = {
            let mut st = self.lock();
            st.ready.push_back(i);
            (st.waiters.pop(), st.stream_waker.take())
        };
        // Woken outside the lock.
        for w in [item, stream].into_iter().flatten() {
            w.wake();
        }
    }

    /// Claims the next result for one consumer (an item or the stream),
    /// whose timer is `timer` and waiter slot `key`. A consumer that
    /// resolves gives its slot back under the same lock; the wake-up it may
    /// have received was for the result it takes.
    fn poll_claim(
        &self,
        cx: &mut Context<'_>,
        timer: Pin<&mut Deadline>,
        key: &mut Option<WaiterKey>,
        stream: bool,
    ) -> Poll<Claim<T>> {
        let (poll, old_waker) = self.poll_claim_locked(cx, timer, key, stream);
        drop(old_waker); // outside the lock
        poll
    }

    /// [`poll_claim`](Self::poll_claim), returning the waker the consumer
    /// gave up when it resolved, for the caller to drop unlocked.
    fn poll_claim_locked(
        &self,
        cx: &mut Context<'_>,
        mut timer: Pin<&mut Deadline>,
        key: &mut Option<WaiterKey>,
        stream: bool,
    ) -> (Poll<Claim<T>>, Option<Waker>) {
        let mut st = self.lock();
        // The clock starts at the first poll, whether or not a result is
        // ready then (a zero timeout has no deadline: see below).
        if st.deadline.is_none() {
            if let Some(t) = st.timeout.filter(|t| !t.is_zero()) {
                st.deadline = Some(instant_after(t));
            }
        }
        if let Some(claim) = st.try_claim() {
            return (Poll::Ready(claim), st.resolved(key, stream));
        }
        let deadline = match (st.deadline, st.timeout) {
            (Some(d), _) => Some(d),
            (None, Some(Duration::ZERO)) => {
                // Zero: what is ready is handed out, the rest times out.
                st.time_out();
                let old = st.resolved(key, stream);
                return (Poll::Ready(st.try_claim().expect("timed out")), old);
            }
            // No timeout (one too long to represent is capped at 30 years).
            (None, _) => None,
        };
        let replaced = if stream {
            match &st.stream_waker {
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => st.stream_waker.replace(cx.waker().clone()),
            }
        } else {
            st.waiters.wait(key, cx.waker())
        };
        drop(st);
        drop(replaced); // outside the lock
        let Some(deadline) = deadline else {
            return (Poll::Pending, None);
        };
        if timer.as_mut().poll_until(cx, deadline).is_pending() {
            return (Poll::Pending, None);
        }
        timer.disarm();
        let mut st = self.lock();
        st.time_out();
        let old = st.resolved(key, stream);
        (Poll::Ready(st.try_claim().expect("timed out")), old)
    }
}

impl<T: Send + 'static> Results<T> {
    /// A consumer resolves: it stops waiting (an item gives its slot back).
    /// Returns its waker, to be dropped outside the lock.
    fn resolved(&mut self, key: &mut Option<WaiterKey>, stream: bool) -> Option<Waker> {
        if stream {
            self.stream_waker.take()
        } else {
            self.waiters.remove(key).1
        }
    }

    fn try_claim(&mut self) -> Option<Claim<T>> {
        if let Some(cap) = &mut self.cap {
            if *cap == 0 {
                return Some(Claim::TimedOut);
            }
            *cap -= 1;
        }
        let i = self.ready.pop_front()?;
        let task = self.tasks[i]
            .take()
            .expect("asyncio: as_completed handed out a result twice");
        let r = task
            .take_if_done()
            .expect("asyncio: as_completed got a completion from a pending task");
        Some(Claim::Result(r))
    }

    fn time_out(&mut self) {
        if self.cap.is_none() {
            self.cap = Some(self.ready.len());
        }
    }
}

/// The iterator and stream of [`as_completed`].
///
/// As an [`Iterator`] it yields exactly as many [`NextCompleted`] futures as
/// there were inputs; as a [`Stream`] it yields `asyncio::Result<T>` in
/// completion order. Use one form or the other; if both are used, each
/// result still goes to exactly one consumer. Both `Iterator` and
/// `StreamExt` have a `next` method: call the stream's as
/// `StreamExt::next(&mut it)`.
///
/// ```
/// use futures::StreamExt;
///
/// // One thread: the timers below run in deadline order even on a busy machine.
/// asyncio::Runner::new().current_thread().run(async {
///     let mut results = asyncio::as_completed([asyncio::sleep_with(0.02, 2), asyncio::sleep_with(0.01, 1)], None);
///     let mut seen = Vec::new();
///     while let Some(r) = StreamExt::next(&mut results).await {
///         seen.push(r.unwrap());
///     }
///     assert_eq!(seen, [1, 2]);
/// });
/// ```
///
/// # Cancel safety
/// Dropping it (or the iterator's items, or a `StreamExt::next` future)
/// cancels nothing: the tasks keep running. A [`NextCompleted`] or a stream
/// `next` dropped before it resolved takes no result: the result it may have
/// been woken for goes to the next one waiting, so none is lost.
#[must_use = "iterators and streams do nothing unless used (the tasks run anyway)"]
pub struct AsCompleted<T> {
    /// The shared state, seen as the stream's consumer.
    stream: Consumer<T>,
    len: usize,
    /// Items handed out by the iterator plus results yielded by the stream.
    taken: usize,
    /// The stream's timer (boxed once, so the stream is `Unpin`).
    timer: Option<Pin<Box<Deadline>>>,
    stream_done: bool,
}

impl<T: Send + 'static> Iterator for AsCompleted<T> {
    type Item = NextCompleted<T>;

    fn next(&mut self) -> Option<NextCompleted<T>> {
        if self.taken == self.len || self.stream_done {
            return None;
        }
        self.taken += 1;
        Some(NextCompleted {
            consumer: Consumer {
                shared: self.stream.shared.clone(),
                key: None,
                stream: false,
            },
            timer: Deadline::unarmed(),
            done: false,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.stream_done {
            0
        } else {
            self.len - self.taken
        };
        (left, Some(left))
    }
}

impl<T: Send + 'static> ExactSizeIterator for AsCompleted<T> {}

impl<T: Send + 'static> Stream for AsCompleted<T> {
    type Item = crate::Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.taken == this.len || this.stream_done {
            return Poll::Ready(None);
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(Deadline::unarmed()))
            .as_mut();
        match std::task::ready!(this.stream.poll_claim(cx, timer)) {
            Claim::Result(r) => {
                this.taken += 1;
                Poll::Ready(Some(r))
            }
            Claim::TimedOut => {
                this.stream_done = true;
                Poll::Ready(Some(Err(Error::Timeout(TimeoutError::new()))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        Iterator::size_hint(self)
    }
}

impl<T: Send + 'static> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("len", &self.len)
            .field("taken", &self.taken)
            .finish()
    }
}

/// One item of [`as_completed`]'s iterator: resolves to the next result to
/// complete, at the time it is awaited (asyncio binds results to await
/// order, not to the order the items were taken).
///
/// ```
/// // One thread: the timers below run in deadline order even on a busy machine.
/// asyncio::Runner::new().current_thread().run(async {
///     let mut it = asyncio::as_completed([asyncio::sleep_with(0.02, 'b'), asyncio::sleep_with(0.01, 'a')], None);
///     let first: asyncio::futures::NextCompleted<char> = it.next().unwrap();
///     let second = it.next().unwrap();
///     assert_eq!(second.await.unwrap(), 'a'); // awaited first: the first to complete
///     assert_eq!(first.await.unwrap(), 'b');
/// });
/// ```
///
/// # Cancel safety
/// Cancel safe: dropping it before it resolved takes no result and cancels
/// nothing; a result it was woken for goes to the next item waiting.
///
/// # Panics
/// If polled again after it resolved.
#[pin_project]
#[must_use = "futures do nothing unless awaited"]
pub struct NextCompleted<T> {
    consumer: Consumer<T>,
    #[pin]
    timer: Deadline,
    done: bool,
}

impl<T: Send + 'static> Future for NextCompleted<T> {
    type Output = crate::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            !*this.done,
            "asyncio: NextCompleted polled after completion"
        );
        let claim = std::task::ready!(this.consumer.poll_claim(cx, this.timer));
        *this.done = true;
        Poll::Ready(match claim {
            Claim::Result(r) => r,
            Claim::TimedOut => Err(Error::Timeout(TimeoutError::new())),
        })
    }
}

impl<T: Send + 'static> fmt::Debug for NextCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextCompleted")
            .field("done", &self.done)
            .finish()
    }
}
