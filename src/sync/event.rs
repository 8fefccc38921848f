//! [`Event`]: asyncio's `asyncio.Event`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A flag that tasks can wait for: asyncio's `asyncio.Event`.
///
/// [`set`](Event::set) wakes every task waiting in [`wait`](Event::wait), in
/// the order they started waiting; a task that calls `wait` while the flag
/// is set does not wait at all. A waiter that `set` woke returns even if
/// [`clear`](Event::clear) runs before it resumes (as asyncio's).
///
/// Not `Clone`: share it with an [`Arc`](std::sync::Arc). `Send + Sync`: it
/// may be set from any thread (asyncio needs `call_soon_threadsafe` for
/// that), and works on the multi-thread runtime.
///
/// # When to use it, and when Tokio's primitives fit better
///
/// This is an [`AtomicBool`] next to a [`tokio::sync::Notify`]: the flag is
/// the part `Notify` lacks. `Notify` alone wakes only the tasks already
/// waiting (`notify_waiters`) or stores one permit (`notify_one`), so a task
/// that arrives after the event was set would wait forever; a
/// `tokio::sync::watch::channel(false)` has a flag but wakes its receivers
/// in no specified order. Use `Event` for asyncio's "set once, everybody
/// (also latecomers) proceeds" with asyncio's wake-up order; use `Notify`
/// for a wake-up with no state, `watch` to broadcast changing values.
///
/// ```
/// use std::sync::Arc;
///
/// asyncio::run(async {
///     let ev = Arc::new(asyncio::Event::new());
///     let waiter = asyncio::create_task({
///         let ev = ev.clone();
///         async move {
///             ev.wait().await;
///             "woken"
///         }
///     });
///     asyncio::sleep(0.1).await;
///     assert!(!waiter.done());
///     ev.set();
///     assert_eq!(waiter.await.unwrap(), "woken");
///     assert!(ev.is_set());
/// });
/// ```
#[derive(Default)]
pub struct Event {
    flag: AtomicBool,
    notify: Notify,
}

impl Event {
    /// A new, unset event.
    ///
    /// ```
    /// assert!(!asyncio::Event::new().is_set());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let ev = asyncio::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sets the flag and wakes every task waiting, in the order they
    /// started waiting. Setting a set event does nothing.
    ///
    /// ```
    /// let ev = asyncio::Event::new();
    /// ev.set();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn set(&self) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            self.notify.notify_waiters();
        }
    }

    /// Resets the flag: later [`wait`](Event::wait)s block until the next
    /// [`set`](Event::set). Waiters already woken still return.
    ///
    /// ```
    /// let ev = asyncio::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    /// Waits until the flag is set; returns at once if it is.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a `wait` dropped (or its task cancelled) while waiting
    /// leaves the event unchanged and takes nothing from the other waiters.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let ev = asyncio::Event::new();
    ///     ev.set();
    ///     ev.wait().await; // set: does not block
    /// });
    /// ```
    pub async fn wait(&self) {
        if self.is_set() {
            return;
        }
        let notified = self.notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before the flag is read again: a `set` between the two
        // either is seen here or wakes the registered waiter.
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
