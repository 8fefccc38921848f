//! [`Condition`]: asyncio's `asyncio.Condition`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::lock::{Lock, LockGuard};
use super::waitlist::{WaitList, wake_all};
use crate::lock::lock;

/// A [`Lock`] with a queue of tasks waiting to be notified: asyncio's
/// `asyncio.Condition`.
///
/// [`acquire`](Condition::acquire) takes the lock and returns a
/// [`ConditionGuard`]. With the lock held, [`ConditionGuard::wait`] releases
/// it, waits for a [`notify`](ConditionGuard::notify), takes the lock again
/// and hands the guard back (`g = g.wait().await`); notifications go to the
/// waiters first come, first served, and the woken waiters then take the
/// lock one at a time. `wait` may return with nothing changed (a
/// notification passed on, see below), so check the state in a loop, or
/// use [`wait_for`](ConditionGuard::wait_for).
///
/// Not `Clone`: share it with an [`Arc`]. `Send + Sync`, multi-thread
/// runtime included. [`with_lock`](Condition::with_lock) shares one [`Lock`]
/// between several conditions (asyncio's `Condition(lock)`).
///
/// # When to use it, and when Tokio's primitives fit better
///
/// Tokio has no condition variable: the idiom is a [`tokio::sync::Notify`]
/// next to a `Mutex`, or a `watch` channel carrying the state itself. Those
/// are the better choice for new code that waits for a value to change. This
/// type keeps asyncio's shape (wait releases and retakes the lock, `notify(n)`
/// wakes exactly `n` waiters in order, a notified waiter that is cancelled
/// hands its notification on), which a `Notify` alone cannot express: its
/// `notify_one` stores a permit when nobody waits, where asyncio's `notify`
/// does nothing. So the waiter queue here is written by hand.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// asyncio::run(async {
///     let cond = Arc::new(asyncio::Condition::new());
///     let ready = Arc::new(AtomicBool::new(false));
///     let consumer = asyncio::create_task({
///         let (cond, ready) = (cond.clone(), ready.clone());
///         async move {
///             // async with cond: await cond.wait_for(lambda: ready)
///             let g = cond.acquire().await;
///             let _g = g.wait_for(|| ready.load(Ordering::SeqCst)).await;
///             "consumed"
///         }
///     });
///     asyncio::sleep(0.01).await;
///     let g = cond.acquire().await;
///     ready.store(true, Ordering::SeqCst);
///     g.notify_all();
///     drop(g);
///     assert_eq!(consumer.await.unwrap(), "consumed");
/// });
/// ```
pub struct Condition {
    lock: Arc<Lock>,
    waiters: Mutex<WaitList>,
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl Condition {
    /// A condition with a lock of its own.
    ///
    /// ```
    /// assert!(!asyncio::Condition::new().locked());
    /// ```
    pub fn new() -> Self {
        Self::with_lock(Arc::new(Lock::new()))
    }

    /// A condition over a shared lock (asyncio's `Condition(lock)`): taking
    /// either takes both.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(asyncio::Lock::new());
    /// let cond = asyncio::Condition::with_lock(lock.clone());
    /// let _g = lock.try_acquire().unwrap();
    /// assert!(cond.locked());
    /// ```
    pub fn with_lock(lock: Arc<Lock>) -> Self {
        Self {
            lock,
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// Takes the condition's lock (as [`Lock::acquire`]).
    ///
    /// # Cancel safety
    ///
    /// As [`Lock::acquire`]: dropped while waiting, it holds nothing.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let cond = asyncio::Condition::new();
    ///     let g = cond.acquire().await;
    ///     assert!(cond.locked());
    ///     g.release();
    ///     assert!(!cond.locked());
    /// });
    /// ```
    pub async fn acquire(&self) -> ConditionGuard<'_> {
        let guard = self.lock.acquire().await;
        ConditionGuard { cond: self, guard }
    }

    /// Whether the underlying lock is taken ([`Lock::locked`]).
    ///
    /// ```
    /// let cond = asyncio::Condition::new();
    /// assert!(!cond.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// The underlying lock.
    ///
    /// ```
    /// let cond = asyncio::Condition::new();
    /// assert!(!cond.lock().locked());
    /// ```
    pub fn lock(&self) -> &Arc<Lock> {
        &self.lock
    }

    fn notify_n(&self, n: usize) {
        let woken: Vec<_> = {
            let mut w = lock(&self.waiters);
            let n = n.min(w.len());
            (0..n).filter_map(|_| w.pop()).collect()
        };
        wake_all(woken);
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &lock(&self.waiters).len())
            .finish()
    }
}

/// The held lock of a [`Condition`]: `wait`, `wait_for` and `notify` are
/// called on it, so they cannot be called without the lock (asyncio's
/// `RuntimeError`s). Released when dropped.
///
/// ```
/// asyncio::run(async {
///     let cond = asyncio::Condition::new();
///     let g = cond.acquire().await;
///     g.notify(1); // nobody waits: nothing happens
///     drop(g);
///     assert!(!cond.locked());
/// });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    guard: LockGuard<'a>,
}

impl<'a> ConditionGuard<'a> {
    /// Releases the lock, waits until notified, takes the lock again and
    /// returns the guard (asyncio's `await cond.wait()`).
    ///
    /// # Cancel safety
    ///
    /// Dropped midway, it holds no lock and no guard (asyncio's `wait`
    /// retakes the lock before raising, which a dropped Rust future cannot
    /// do). A wait dropped after it was notified, but before it returned,
    /// passes the notification on to the next waiter, as asyncio 3.13's, so
    /// a `notify` racing a cancellation is not lost.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// asyncio::run(async {
    ///     let cond = Arc::new(asyncio::Condition::new());
    ///     let waiter = asyncio::create_task({
    ///         let cond = cond.clone();
    ///         async move {
    ///             let g = cond.acquire().await;
    ///             let g = g.wait().await; // lock held again here
    ///             drop(g);
    ///         }
    ///     });
    ///     asyncio::sleep(0.01).await;
    ///     cond.acquire().await.notify(1);
    ///     waiter.await.unwrap();
    /// });
    /// ```
    pub async fn wait(self) -> ConditionGuard<'a> {
        let cond = self.cond;
        // Parked before the lock is released: a notify needs the lock, so
        // none can slip between the release and the parking.
        let mut waiting = Notified {
            cond,
            ticket: None,
            notified: false,
        };
        waiting.park();
        drop(self);
        (&mut waiting).await;
        let guard = cond.acquire().await;
        waiting.notified = false; // consumed: nothing to pass on
        guard
    }

    /// Waits until `predicate` is true: checks it first, then after each
    /// wake-up, always with the lock held (asyncio's `wait_for`).
    ///
    /// # Cancel safety
    ///
    /// As [`wait`](ConditionGuard::wait).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let cond = asyncio::Condition::new();
    ///     let g = cond.acquire().await;
    ///     let g = g.wait_for(|| true).await; // already true: no wait
    ///     drop(g);
    /// });
    /// ```
    pub async fn wait_for(self, mut predicate: impl FnMut() -> bool) -> ConditionGuard<'a> {
        let mut g = self;
        while !predicate() {
            g = g.wait().await;
        }
        g
    }

    /// Wakes up to `n` waiters, oldest first (asyncio's `notify(n)`); with
    /// no waiter, does nothing. They return from `wait` once they have the
    /// lock again, so not before this guard is released.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let cond = asyncio::Condition::new();
    ///     cond.acquire().await.notify(2);
    /// });
    /// ```
    pub fn notify(&self, n: usize) {
        self.cond.notify_n(n);
    }

    /// Wakes every waiter (asyncio's `notify_all()`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let cond = asyncio::Condition::new();
    ///     cond.acquire().await.notify_all();
    /// });
    /// ```
    pub fn notify_all(&self) {
        self.cond.notify_n(usize::MAX);
    }

    /// Releases the lock; the same as dropping the guard.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let cond = asyncio::Condition::new();
    ///     cond.acquire().await.release();
    ///     assert!(!cond.locked());
    /// });
    /// ```
    pub fn release(self) {}

    /// The condition this guard holds the lock of.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let cond = asyncio::Condition::new();
    ///     let g = cond.acquire().await;
    ///     assert!(g.condition().locked());
    /// });
    /// ```
    pub fn condition(&self) -> &'a Condition {
        self.cond
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = &self.guard;
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}

/// A parked waiter of a condition. Ready once a notify took its ticket out
/// of the list. Dropped after that and before the notification was
/// consumed, it hands the notification to the next waiter.
struct Notified<'a> {
    cond: &'a Condition,
    ticket: Option<u64>,
    notified: bool,
}

impl Notified<'_> {
    fn park(&mut self) {
        let waker = futures::task::noop_waker();
        self.ticket = Some(lock(&self.cond.waiters).push(&waker));
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(ticket) = this.ticket else {
            return Poll::Ready(());
        };
        let old = lock(&this.cond.waiters).refresh(ticket, cx.waker());
        match old {
            Some(old) => {
                drop(old);
                Poll::Pending
            }
            None => {
                this.ticket = None;
                this.notified = true;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let (parked, woken) = match self.ticket.take() {
            // Still parked: leave the queue. Gone from it: notified, and
            // the notification goes to the next waiter.
            Some(t) => lock(&self.cond.waiters).leave(t, true),
            None if self.notified => {
                self.cond.notify_n(1);
                return;
            }
            None => return,
        };
        drop(parked);
        wake_all(woken);
    }
}
