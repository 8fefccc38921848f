//! [`Lock`]: asyncio's `asyncio.Lock`.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore as TokioSemaphore;

/// A mutual-exclusion lock for tasks that guards no data: asyncio's
/// `asyncio.Lock`.
///
/// [`acquire`](Lock::acquire) waits until the lock is free and returns a
/// [`LockGuard`]; dropping the guard (or [`LockGuard::release`]) releases
/// it. Waiters get the lock first come, first served, and a newcomer never
/// takes it ahead of a waiter (asyncio's "no barging"). The lock is not
/// reentrant: a second `acquire` by the holder waits forever.
///
/// Not `Clone`: share it with an [`Arc`]. `Send + Sync`, multi-thread
/// runtime included. [`acquire_owned`](Lock::acquire_owned) on an
/// `Arc<Lock>` gives a guard with no lifetime, to move into another task.
///
/// # When to use it, and when Tokio's primitives fit better
///
/// It is a thin layer over a one-permit [`tokio::sync::Semaphore`], which
/// is FIFO-fair and cancel-safe, exactly asyncio's rules. asyncio's `Lock`
/// guards no data (it serialises sections of code, often around I/O), so
/// neither does this one. When the lock protects a value, prefer
/// [`tokio::sync::Mutex<T>`]: the compiler then checks that the value is
/// only touched under the lock. When no `.await` happens while the lock is
/// held, a `std::sync::Mutex` is cheaper than either.
///
/// ```
/// use std::sync::Arc;
///
/// asyncio::run(async {
///     let lock = Arc::new(asyncio::Lock::new());
///     let log = Arc::new(std::sync::Mutex::new(Vec::new()));
///     let tasks: Vec<_> = (0..3)
///         .map(|i| {
///             let (lock, log) = (lock.clone(), log.clone());
///             asyncio::create_task(async move {
///                 // async with lock:
///                 let _held = lock.acquire().await;
///                 log.lock().unwrap().push(format!("{i} in"));
///                 asyncio::sleep(0.01).await;
///                 log.lock().unwrap().push(format!("{i} out"));
///             })
///         })
///         .collect();
///     asyncio::gather(tasks).await.unwrap();
///     // One at a time, in the order they asked.
///     assert_eq!(
///         *log.lock().unwrap(),
///         ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]
///     );
/// });
/// ```
pub struct Lock {
    /// One permit. It is never closed; a permit taken from it is forgotten
    /// at once (no await in between) and the guard gives it back.
    sem: TokioSemaphore,
}

const NEVER_CLOSED: &str = "the lock's semaphore is never closed";

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl Lock {
    /// A new, unlocked lock.
    ///
    /// ```
    /// assert!(!asyncio::Lock::new().locked());
    /// ```
    pub fn new() -> Self {
        Self {
            sem: TokioSemaphore::new(1),
        }
    }

    /// Waits for the lock and takes it; waiters are served in the order
    /// they called `acquire`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an `acquire` dropped while waiting (or its task
    /// cancelled, or a [`wait_for`](crate::wait_for) around it timing out)
    /// holds nothing and leaves its place in the queue. If the lock had
    /// already been handed to it, it passes the lock on to the next waiter.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let lock = asyncio::Lock::new();
    ///     let guard = lock.acquire().await;
    ///     assert!(lock.locked());
    ///     guard.release();
    ///     assert!(!lock.locked());
    /// });
    /// ```
    pub async fn acquire(&self) -> LockGuard<'_> {
        // Written out (not through a helper `async fn`): one future layer
        // around Tokio's `Acquire`, not two.
        std::mem::forget(self.sem.acquire().await.expect(NEVER_CLOSED));
        LockGuard { lock: self }
    }

    /// [`acquire`](Lock::acquire) for an `Arc<Lock>`: the guard owns a
    /// clone of the `Arc`, so it can move into another task.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Lock::acquire).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// asyncio::run(async {
    ///     let lock = Arc::new(asyncio::Lock::new());
    ///     let guard = lock.clone().acquire_owned().await;
    ///     // The holder hands the lock to a task that releases it.
    ///     asyncio::create_task(async move { guard.release() }).await.unwrap();
    ///     assert!(!lock.locked());
    /// });
    /// ```
    pub async fn acquire_owned(self: Arc<Self>) -> OwnedLockGuard {
        std::mem::forget(self.sem.acquire().await.expect(NEVER_CLOSED));
        OwnedLockGuard { lock: self }
    }

    /// Takes the lock if that needs no waiting: it is free and nobody is
    /// queued for it. `None` otherwise.
    ///
    /// asyncio has no such method; `if not lock.locked(): await
    /// lock.acquire()` is its spelling, which this makes one step.
    ///
    /// ```
    /// let lock = asyncio::Lock::new();
    /// let guard = lock.try_acquire().expect("free");
    /// assert!(lock.try_acquire().is_none());
    /// drop(guard);
    /// assert!(lock.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        let permit = self.sem.try_acquire().ok()?;
        std::mem::forget(permit);
        Some(LockGuard { lock: self })
    }

    /// Whether the lock is taken. Also `true` while a release has handed
    /// the lock to a waiter that has not run yet (asyncio reads `False`
    /// there; an `acquire` would wait in both).
    ///
    /// ```
    /// let lock = asyncio::Lock::new();
    /// let g = lock.try_acquire().unwrap();
    /// assert!(lock.locked());
    /// drop(g);
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.sem.available_permits() == 0
    }

    fn give_back(&self) {
        self.sem.add_permits(1);
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// The held [`Lock`]: released when dropped.
///
/// ```
/// asyncio::run(async {
///     let lock = asyncio::Lock::new();
///     {
///         let _guard = lock.acquire().await;
///         assert!(lock.locked());
///     }
///     assert!(!lock.locked());
/// });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl<'a> LockGuard<'a> {
    /// Releases the lock (asyncio's `lock.release()`); the same as dropping
    /// the guard.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let lock = asyncio::Lock::new();
    ///     lock.acquire().await.release();
    ///     assert!(!lock.locked());
    /// });
    /// ```
    pub fn release(self) {}

    /// The lock this guard holds.
    ///
    /// ```
    /// let lock = asyncio::Lock::new();
    /// let g = lock.try_acquire().unwrap();
    /// assert!(std::ptr::eq(g.lock(), &lock));
    /// ```
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.give_back();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

/// The held [`Lock`] of an `Arc<Lock>` ([`Lock::acquire_owned`]): released
/// when dropped, movable into another task.
///
/// ```
/// use std::sync::Arc;
///
/// asyncio::run(async {
///     let lock = Arc::new(asyncio::Lock::new());
///     let guard: asyncio::OwnedLockGuard = lock.clone().acquire_owned().await;
///     assert!(lock.locked());
///     drop(guard);
///     assert!(!lock.locked());
/// });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedLockGuard {
    lock: Arc<Lock>,
}

impl OwnedLockGuard {
    /// Releases the lock; the same as dropping the guard.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// asyncio::run(async {
    ///     let lock = Arc::new(asyncio::Lock::new());
    ///     lock.clone().acquire_owned().await.release();
    ///     assert!(!lock.locked());
    /// });
    /// ```
    pub fn release(self) {}

    /// The lock this guard holds.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(asyncio::Lock::new());
    /// let g = asyncio::run(lock.clone().acquire_owned());
    /// assert!(Arc::ptr_eq(g.lock(), &lock));
    /// ```
    pub fn lock(&self) -> &Arc<Lock> {
        &self.lock
    }
}

impl Drop for OwnedLockGuard {
    fn drop(&mut self) {
        self.lock.give_back();
    }
}

impl fmt::Debug for OwnedLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLockGuard").finish_non_exhaustive()
    }
}
