//! [`Barrier`]: asyncio's `asyncio.Barrier` (Python 3.11).

use std::fmt;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::lock::lock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Arrivals are counted; the last one releases everybody.
    Filling,
    /// Released: the arrivals are leaving; newcomers wait for the next cycle.
    Draining,
    /// `reset()` while tasks waited: they leave with `BrokenBarrier`.
    Resetting,
    /// `abort()`: every wait fails until `reset()`.
    Broken,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Tasks inside `wait` past the entry check (asyncio's `_count`).
    count: usize,
}

/// A meeting point for a fixed number of tasks: asyncio's `asyncio.Barrier`.
///
/// Each [`wait`](Barrier::wait) blocks until `parties` tasks are waiting,
/// then all of them go on; each gets its arrival index (`0` for the first,
/// `parties - 1` for the last, which does not block). The barrier is
/// cyclic: once the released tasks have left, it fills again, and tasks
/// that arrive meanwhile wait for the next round. [`abort`](Barrier::abort)
/// breaks it (every waiter, and every later `wait`, gets
/// [`Error::BrokenBarrier`]); [`reset`](Barrier::reset) sends the current
/// waiters away with that error and makes it usable again.
///
/// Not `Clone`: share it with an [`Arc`](std::sync::Arc). `Send + Sync`,
/// multi-thread runtime included.
///
/// # When to use it, and when Tokio's primitive fits better
///
/// [`tokio::sync::Barrier`] does the plain meeting (and is lighter), but
/// cannot be aborted or reset, and a waiter dropped there still counts as
/// arrived. This one follows asyncio: a waiter cancelled while the barrier
/// fills leaves it (the others keep waiting, the barrier is not broken), and
/// `abort`/`reset` exist. Use Tokio's when tasks never give up waiting.
///
/// ```
/// use std::sync::Arc;
///
/// asyncio::run(async {
///     let barrier = Arc::new(asyncio::Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let b = barrier.clone();
///             asyncio::create_task(async move { b.wait().await.unwrap() })
///         })
///         .collect();
///     let mut indices = asyncio::gather(tasks).await.unwrap();
///     indices.sort();
///     assert_eq!(indices, [0, 1, 2]);
///     assert_eq!(barrier.n_waiting(), 0);
/// });
/// ```
pub struct Barrier {
    parties: usize,
    state: Mutex<State>,
    /// Woken (all) at every phase change.
    changed: Notify,
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Panics
    ///
    /// `parties must be > 0` if `parties` is 0 (asyncio's `ValueError`).
    ///
    /// ```
    /// assert_eq!(asyncio::Barrier::new(2).parties(), 2);
    /// ```
    #[track_caller]
    pub fn new(parties: usize) -> Self {
        assert!(parties > 0, "parties must be > 0");
        Self {
            parties,
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
            }),
            changed: Notify::new(),
        }
    }

    /// Waits until `parties` tasks wait, then returns this task's arrival
    /// index; `Err(Error::BrokenBarrier)` if the barrier is aborted, or
    /// reset while this task waits.
    ///
    /// A task that arrives while the previous round is still leaving (or a
    /// reset is) waits for that first, as asyncio's.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a `wait` dropped (or its task cancelled) while the
    /// barrier fills leaves it: [`n_waiting`](Barrier::n_waiting) drops by
    /// one, the others keep waiting, and the barrier is not broken. A wait
    /// dropped after the barrier released it just leaves, as the others do.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is broken when this task
    /// arrives (after [`abort`](Barrier::abort)), or is aborted or
    /// [`reset`](Barrier::reset) while it waits.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let b = asyncio::Barrier::new(1);
    ///     assert_eq!(b.wait().await, Ok(0)); // one party: never blocks
    /// });
    /// ```
    pub async fn wait(&self) -> Result<usize> {
        // Wait while the previous round drains or a reset completes.
        let index = loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = lock(&self.state);
                match st.phase {
                    Phase::Broken => return Err(Error::BrokenBarrier),
                    Phase::Filling => {
                        let index = st.count;
                        st.count += 1;
                        break index;
                    }
                    Phase::Draining | Phase::Resetting => {}
                }
            }
            notified.await;
        };
        // From here on this task counts in `count`; `Leave` takes it out
        // however the wait ends (returned or dropped).
        let leave = Leave { barrier: self };
        if index + 1 == self.parties {
            lock(&self.state).phase = Phase::Draining;
            self.changed.notify_waiters();
            drop(leave);
            return Ok(index);
        }
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let phase = lock(&self.state).phase;
            match phase {
                Phase::Filling => notified.await,
                Phase::Draining => {
                    drop(leave);
                    return Ok(index);
                }
                Phase::Broken | Phase::Resetting => {
                    drop(leave);
                    return Err(Error::BrokenBarrier);
                }
            }
        }
    }

    /// Sends the tasks waiting now away with [`Error::BrokenBarrier`] and
    /// makes the barrier usable again, also after [`abort`](Barrier::abort).
    /// Tasks the barrier already released are not disturbed.
    ///
    /// # Cancel safety
    ///
    /// It never waits: the reset happens in full at its first poll (asyncio
    /// awaits its lock here; this one has none to wait for). Dropped
    /// unpolled, it does nothing.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let b = asyncio::Barrier::new(2);
    ///     b.abort().await;
    ///     assert!(b.broken());
    ///     b.reset().await;
    ///     assert!(!b.broken());
    /// });
    /// ```
    pub async fn reset(&self) {
        {
            let mut st = lock(&self.state);
            st.phase = if st.count > 0 {
                Phase::Resetting
            } else {
                Phase::Filling
            };
        }
        self.changed.notify_waiters();
    }

    /// Breaks the barrier: the tasks waiting now, and every later
    /// [`wait`](Barrier::wait) until a [`reset`](Barrier::reset), get
    /// [`Error::BrokenBarrier`].
    ///
    /// # Cancel safety
    ///
    /// It never waits: the barrier is broken in full at its first poll.
    /// Dropped unpolled, it does nothing.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let b = asyncio::Barrier::new(2);
    ///     b.abort().await;
    ///     assert!(b.wait().await.unwrap_err().is_broken_barrier());
    /// });
    /// ```
    pub async fn abort(&self) {
        lock(&self.state).phase = Phase::Broken;
        self.changed.notify_waiters();
    }

    /// Whether the barrier is broken ([`abort`](Barrier::abort)ed and not
    /// reset since).
    ///
    /// ```
    /// assert!(!asyncio::Barrier::new(2).broken());
    /// ```
    pub fn broken(&self) -> bool {
        lock(&self.state).phase == Phase::Broken
    }

    /// The number of tasks it takes to pass the barrier.
    ///
    /// ```
    /// assert_eq!(asyncio::Barrier::new(4).parties(), 4);
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of tasks waiting while the barrier fills; 0 while it
    /// drains, resets or is broken (as asyncio's).
    ///
    /// ```
    /// assert_eq!(asyncio::Barrier::new(4).n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        let st = lock(&self.state);
        if st.phase == Phase::Filling {
            st.count
        } else {
            0
        }
    }
}

/// One task leaving the barrier (asyncio's `finally: count -= 1; _exit()`).
struct Leave<'a> {
    barrier: &'a Barrier,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let last = {
            let mut st = lock(&self.barrier.state);
            st.count -= 1;
            if st.count == 0 && matches!(st.phase, Phase::Draining | Phase::Resetting) {
                st.phase = Phase::Filling;
            }
            st.count == 0
        };
        if last {
            self.barrier.changed.notify_waiters();
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("Barrier")
            .field("phase", &st.phase)
            .field("count", &st.count)
            .field("parties", &self.parties)
            .finish()
    }
}
