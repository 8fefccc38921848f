//! [`Semaphore`] and [`BoundedSemaphore`]: asyncio's `asyncio.Semaphore`
//! and `asyncio.BoundedSemaphore`.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::Semaphore as TokioSemaphore;

use crate::lock::lock;

/// What both semaphores share: Tokio's semaphore, and for the bounded one
/// its bound.
///
/// The bound is boxed so that a plain semaphore's release (every permit
/// drop) tests one pointer beside Tokio's semaphore, in the same cache line,
/// and the bounded path stays out of line.
struct Core {
    sem: TokioSemaphore,
    bound: Option<Box<Bound>>,
}

/// A [`BoundedSemaphore`]'s bound: its initial value, and the lock that
/// makes "check the value, then add one" a single step against other
/// releases (acquires only lower the value, so they cannot make the check
/// wrong).
struct Bound {
    value: usize,
    serial: Mutex<()>,
}

impl Core {
    #[track_caller]
    fn new(value: usize, bounded: bool) -> Self {
        assert!(
            value <= TokioSemaphore::MAX_PERMITS,
            "Semaphore initial value must be at most {} (got {value})",
            TokioSemaphore::MAX_PERMITS
        );
        Self {
            sem: TokioSemaphore::new(value),
            bound: bounded.then(|| {
                Box::new(Bound {
                    value,
                    serial: Mutex::new(()),
                })
            }),
        }
    }

    /// The one future layer around Tokio's `Acquire` (the public
    /// `acquire`s return it as is). Never closed; the tokio permit is
    /// forgotten at once (no await in between) and ours gives it back.
    /// `mem::forget`, not `SemaphorePermit::forget`: the latter zeroes the
    /// permit and still runs its drop (an `add_permits(0)` call); the
    /// permit owns nothing else.
    #[inline]
    async fn acquire(&self) -> SemaphorePermit<'_> {
        std::mem::forget(
            self.sem
                .acquire()
                .await
                .expect("the semaphore is never closed"),
        );
        SemaphorePermit { core: self }
    }

    fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        std::mem::forget(self.sem.try_acquire().ok()?);
        Some(SemaphorePermit { core: self })
    }

    fn value(&self) -> usize {
        self.sem.available_permits()
    }

    #[track_caller]
    fn release(&self) {
        match &self.bound {
            None => self.sem.add_permits(1),
            Some(bound) => self.release_bounded(bound),
        }
    }

    /// Gives one permit back if that stays within `bound`; `false` if the
    /// semaphore is already full.
    fn add_within(&self, bound: &Bound) -> bool {
        let _serial = lock(&bound.serial);
        let fits = self.sem.available_permits() < bound.value;
        if fits {
            self.sem.add_permits(1);
        }
        fits
    }

    #[track_caller]
    #[inline(never)]
    fn release_bounded(&self, bound: &Bound) {
        if !self.add_within(bound) {
            panic!("BoundedSemaphore released too many times");
        }
    }

    /// A bounded semaphore's permit dropped.
    #[inline(never)]
    fn drop_bounded(&self, bound: &Bound) {
        if std::thread::panicking() {
            // Do not turn one panic into an abort: give back what fits.
            self.add_within(bound);
        } else {
            self.release_bounded(bound);
        }
    }
}

/// A counter of permits that tasks take and give back: asyncio's
/// `asyncio.Semaphore`.
///
/// [`acquire`](Semaphore::acquire) takes a permit, waiting while there is
/// none, and returns a [`SemaphorePermit`] that gives it back when dropped.
/// Waiters are served first come, first served: a newcomer waits behind
/// earlier waiters even when a permit is free for a moment (as asyncio's).
/// [`release`](Semaphore::release) adds a permit from anywhere, also beyond
/// the initial value, as asyncio's; [`SemaphorePermit::forget`] keeps a
/// permit taken, for asyncio's `acquire()` in one task and `release()` in
/// another.
///
/// Not `Clone`: share it with an [`Arc`](std::sync::Arc). `Send + Sync`,
/// multi-thread runtime included.
///
/// # When to use it, and when Tokio's primitive fits better
///
/// It is [`tokio::sync::Semaphore`] (FIFO-fair and cancel-safe, which is
/// what asyncio promises) with asyncio's names: `acquire` cannot fail (the
/// semaphore is never closed), `release()` and `locked()` exist. Use Tokio's
/// directly when you need to close the semaphore, take several permits at
/// once, or hold owned permits (`acquire_owned`).
///
/// ```
/// use std::sync::Arc;
///
/// asyncio::run(async {
///     // At most two downloads at once.
///     let limit = Arc::new(asyncio::Semaphore::new(2));
///     let tasks: Vec<_> = (0..5)
///         .map(|i| {
///             let limit = limit.clone();
///             asyncio::create_task(async move {
///                 let _permit = limit.acquire().await;
///                 asyncio::sleep(0.1).await;
///                 i
///             })
///         })
///         .collect();
///     let t0 = asyncio::get_running_loop().time();
///     assert_eq!(asyncio::gather(tasks).await.unwrap(), [0, 1, 2, 3, 4]);
///     assert!(asyncio::get_running_loop().time() - t0 >= 0.3); // 3 rounds
/// });
/// ```
pub struct Semaphore {
    core: Core,
}

impl Semaphore {
    /// A semaphore with `value` permits (`0` is allowed: it starts locked).
    ///
    /// # Panics
    ///
    /// If `value` is more than [`tokio::sync::Semaphore::MAX_PERMITS`].
    ///
    /// ```
    /// assert_eq!(asyncio::Semaphore::new(3).value(), 3);
    /// assert!(asyncio::Semaphore::new(0).locked());
    /// ```
    #[track_caller]
    pub fn new(value: usize) -> Self {
        Self {
            core: Core::new(value, false),
        }
    }

    /// Waits for a permit and takes it; waiters are served in the order
    /// they called `acquire`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an `acquire` dropped while waiting (or its task
    /// cancelled, or a [`wait_for`](crate::wait_for) around it timing out)
    /// holds no permit and leaves its place in the queue; a permit already
    /// handed to it goes to the next waiter.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let sem = asyncio::Semaphore::new(1);
    ///     let permit = sem.acquire().await;
    ///     assert!(sem.locked());
    ///     drop(permit);
    ///     assert_eq!(sem.value(), 1);
    /// });
    /// ```
    pub fn acquire(&self) -> impl Future<Output = SemaphorePermit<'_>> + Send {
        self.core.acquire()
    }

    /// Takes a permit if that needs no waiting (one is free and nobody is
    /// queued). asyncio has no such method.
    ///
    /// ```
    /// let sem = asyncio::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.core.try_acquire()
    }

    /// Adds one permit (asyncio's `release()`), from any task or thread,
    /// also beyond the initial value. The first waiter gets it.
    ///
    /// # Panics
    ///
    /// If the count would go over [`tokio::sync::Semaphore::MAX_PERMITS`].
    ///
    /// ```
    /// let sem = asyncio::Semaphore::new(1);
    /// sem.release();
    /// assert_eq!(sem.value(), 2);
    /// ```
    #[track_caller]
    pub fn release(&self) {
        self.core.release();
    }

    /// Whether an [`acquire`](Semaphore::acquire) would wait: no permit is
    /// free, or earlier waiters are queued for the free ones (as asyncio's).
    ///
    /// ```
    /// let sem = asyncio::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.locked());
    /// drop(p);
    /// assert!(!sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.core.value() == 0
    }

    /// The number of free permits (asyncio's `_value`): permits a release
    /// has handed to a waiter that has not run yet are not counted.
    ///
    /// ```
    /// let sem = asyncio::Semaphore::new(2);
    /// let _p = sem.try_acquire().unwrap();
    /// assert_eq!(sem.value(), 1);
    /// ```
    pub fn value(&self) -> usize {
        self.core.value()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

/// A [`Semaphore`] that refuses to be released above its initial value:
/// asyncio's `asyncio.BoundedSemaphore`.
///
/// Everything else is [`Semaphore`]'s. A [`release`](BoundedSemaphore::release)
/// (or a permit given back) that would take the count above the initial
/// value panics with asyncio's message, `BoundedSemaphore released too many
/// times`: it is a bug in the caller, as the `ValueError` is in asyncio.
///
/// # When to use it, and when Tokio's primitive fits better
///
/// Tokio's semaphore has no bound; the check here costs one uncontended
/// lock per release. Use it where asyncio code used it, to catch a release
/// without an acquire; [`Semaphore`] or Tokio's otherwise.
///
/// ```
/// asyncio::run(async {
///     let sem = asyncio::BoundedSemaphore::new(1);
///     let permit = sem.acquire().await;
///     permit.forget(); // asyncio: await sem.acquire()
///     sem.release(); //   ... sem.release()
///     let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sem.release()));
///     assert!(twice.is_err()); // BoundedSemaphore released too many times
/// });
/// ```
pub struct BoundedSemaphore {
    core: Core,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, which is also its bound.
    ///
    /// # Panics
    ///
    /// If `value` is more than [`tokio::sync::Semaphore::MAX_PERMITS`].
    ///
    /// ```
    /// assert_eq!(asyncio::BoundedSemaphore::new(2).value(), 2);
    /// ```
    #[track_caller]
    pub fn new(value: usize) -> Self {
        Self {
            core: Core::new(value, true),
        }
    }

    /// As [`Semaphore::acquire`].
    ///
    /// # Cancel safety
    ///
    /// As [`Semaphore::acquire`]: a dropped `acquire` holds no permit, and
    /// one already handed to it goes to the next waiter.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let sem = asyncio::BoundedSemaphore::new(1);
    ///     let _p = sem.acquire().await;
    ///     assert!(sem.locked());
    /// });
    /// ```
    pub fn acquire(&self) -> impl Future<Output = SemaphorePermit<'_>> + Send {
        self.core.acquire()
    }

    /// As [`Semaphore::try_acquire`].
    ///
    /// ```
    /// let sem = asyncio::BoundedSemaphore::new(1);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.core.try_acquire()
    }

    /// Adds one permit, from any task or thread.
    ///
    /// # Panics
    ///
    /// `BoundedSemaphore released too many times` if the count is already
    /// at the initial value; the count is left unchanged.
    ///
    /// ```
    /// let sem = asyncio::BoundedSemaphore::new(1);
    /// sem.try_acquire().unwrap().forget();
    /// sem.release();
    /// assert_eq!(sem.value(), 1);
    /// ```
    #[track_caller]
    pub fn release(&self) {
        self.core.release();
    }

    /// As [`Semaphore::locked`].
    ///
    /// ```
    /// assert!(asyncio::BoundedSemaphore::new(0).locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.core.value() == 0
    }

    /// As [`Semaphore::value`].
    ///
    /// ```
    /// assert_eq!(asyncio::BoundedSemaphore::new(3).value(), 3);
    /// ```
    pub fn value(&self) -> usize {
        self.core.value()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = self.core.bound.as_ref().map_or(0, |b| b.value);
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &bound)
            .finish()
    }
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]: given back when
/// dropped.
///
/// # Panics
///
/// Dropping the permit of a [`BoundedSemaphore`] whose count is already at
/// its initial value (someone called `release()` for this permit already)
/// panics with `BoundedSemaphore released too many times`, unless the
/// thread is already panicking, as asyncio's `async with` exit raises.
///
/// ```
/// asyncio::run(async {
///     let sem = asyncio::Semaphore::new(1);
///     {
///         let _permit = sem.acquire().await;
///         assert_eq!(sem.value(), 0);
///     }
///     assert_eq!(sem.value(), 1);
/// });
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    core: &'a Core,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken: it is not given back on drop. A later
    /// `release()` (from any task) adds it back, as asyncio's
    /// `acquire()`/`release()` pair.
    ///
    /// ```
    /// let sem = asyncio::Semaphore::new(1);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.value(), 0);
    /// sem.release();
    /// assert_eq!(sem.value(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        match &self.core.bound {
            // A plain semaphore: what Tokio's own permit does on drop.
            None => self.core.sem.add_permits(1),
            Some(bound) => self.core.drop_bounded(bound),
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
