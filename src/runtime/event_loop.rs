//! The event loop: [`Loop`], a Tokio runtime [`Handle`] with the methods of
//! asyncio's loop that porters reach for, and [`get_running_loop`].
//!
//! | asyncio | here |
//! |---|---|
//! | `asyncio.get_running_loop()` | [`get_running_loop`] |
//! | `loop.call_soon(cb)`, `loop.call_soon_threadsafe(cb)` | [`Loop::call_soon`], [`Loop::call_soon_threadsafe`] → [`CallbackHandle`] |
//! | `loop.call_later(delay, cb)`, `loop.call_at(when, cb)` | [`Loop::call_later`], [`Loop::call_at`] → [`TimerHandle`] |
//! | `loop.time()` | [`Loop::time`] (follows Tokio's paused clock) |
//! | `loop.run_in_executor(None, func)` | [`Loop::run_in_executor`] |
//! | `loop.is_closed()` | [`Loop::is_closed`] |
//!
//! Callbacks run on the runtime outside any task of ours
//! ([`current_task`](crate::current_task) is `None` there, as in asyncio); a
//! panicking callback is reported to the
//! [exception handler](crate::set_exception_handler) as
//! `Exception in callback` and the runtime goes on.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! asyncio::run(async {
//!     let lp = asyncio::get_running_loop();
//!     let log = Arc::new(Mutex::new(Vec::new()));
//!     let both = Arc::new(asyncio::Event::new());
//!     // Both deadlines from one reading of the loop's clock.
//!     let now = lp.time();
//!     for (delay, word) in [(0.02, "world"), (0.01, "hello")] {
//!         let (log, both) = (log.clone(), both.clone());
//!         lp.call_at(now + delay, move || {
//!             let mut log = log.lock().unwrap();
//!             log.push(word);
//!             if log.len() == 2 {
//!                 both.set();
//!             }
//!         });
//!     }
//!     both.wait().await;
//!     assert_eq!(*log.lock().unwrap(), ["hello", "world"]);
//! });
//! ```

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::Seconds;
use crate::report::report_panic;
use crate::runtime::threads::{BlockingJob, spawn_blocking_as};

/// The running event loop: asyncio's `asyncio.get_running_loop()`.
///
/// # Panics
/// Outside a Tokio runtime, with asyncio's `no running event loop`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let lp = asyncio::get_running_loop();
/// assert_eq!(lp.handle().id(), tokio::runtime::Handle::current().id());
/// # }
/// ```
pub fn get_running_loop() -> Loop {
    match Handle::try_current() {
        Ok(handle) => Loop { handle },
        Err(_) => panic!(
            "asyncio::get_running_loop(): no running event loop: call it inside a Tokio \
             runtime (asyncio::run, #[tokio::main]), or build a Loop from a runtime Handle \
             with Loop::from(handle)"
        ),
    }
}

/// An event loop: a Tokio runtime [`Handle`] with asyncio's loop methods.
/// Cheap to clone, `Send + Sync`: hand it to other threads for
/// [`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe) and
/// [`call_soon_threadsafe`](Self::call_soon_threadsafe).
///
/// | asyncio | here |
/// |---|---|
/// | `asyncio.get_running_loop()` | [`get_running_loop`] |
/// | `loop.call_soon(cb)`, `loop.call_soon_threadsafe(cb)` | [`call_soon`](Self::call_soon), [`call_soon_threadsafe`](Self::call_soon_threadsafe) → [`CallbackHandle`] |
/// | `loop.call_later(delay, cb)`, `loop.call_at(when, cb)` | [`call_later`](Self::call_later), [`call_at`](Self::call_at) → [`TimerHandle`] |
/// | `loop.time()` | [`time`](Self::time) (follows Tokio's paused clock) |
/// | `loop.run_in_executor(None, func)` | [`run_in_executor`](Self::run_in_executor) |
/// | `loop.is_closed()` | [`is_closed`](Self::is_closed) |
///
/// Callbacks run on the runtime outside any task of ours
/// ([`current_task`](crate::current_task) is `None` there, as in asyncio); a
/// panicking callback is reported to the
/// [exception handler](crate::set_exception_handler) as
/// `Exception in callback` and the runtime goes on.
///
/// ```
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let lp = asyncio::Loop::from(rt.handle().clone());
/// assert_eq!(lp.handle().id(), rt.handle().id());
/// ```
#[derive(Clone, Debug)]
pub struct Loop {
    handle: Handle,
}

impl From<Handle> for Loop {
    /// The loop of the runtime `handle` belongs to.
    ///
    /// ```
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let lp: asyncio::Loop = rt.handle().clone().into();
    /// # drop(lp);
    /// ```
    fn from(handle: Handle) -> Self {
        Loop { handle }
    }
}

/// Where [`Loop::time`] counts from: set at the first reading in the
/// process, to the earlier of the real clock and that loop's Tokio clock (a
/// paused clock stands still where it was paused).
static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();

impl Loop {
    /// The Tokio runtime handle behind this loop.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lp = asyncio::get_running_loop();
    /// let raw = lp.handle().spawn(async { 1 });
    /// assert_eq!(raw.await.unwrap(), 1);
    /// # }
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Schedules `f` to run soon on this loop (`loop.call_soon(cb)`), outside
    /// any task. Callbacks scheduled from one thread start in order on a
    /// current-thread runtime; on a multi-thread runtime they may run in
    /// parallel. Callable from any thread.
    ///
    /// A callback still pending when the runtime shuts down is dropped
    /// unrun, as `loop.close()` discards asyncio's pending callbacks.
    ///
    /// # Panics
    /// On a closed loop (its runtime has shut down), with asyncio's
    /// `Event loop is closed`: `f` is dropped unrun, never silently. Check
    /// [`is_closed`](Self::is_closed) where the runtime may be gone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// asyncio::get_running_loop().call_soon(move || {
    ///     assert!(asyncio::current_task().is_none()); // not a task
    ///     tx.send("called").unwrap();
    /// });
    /// assert_eq!(rx.await.unwrap(), "called");
    /// # }
    /// ```
    #[track_caller]
    pub fn call_soon<F>(&self, f: F) -> CallbackHandle
    where
        F: FnOnce() + Send + 'static,
    {
        self.schedule(When::Soon, f, "call_soon")
    }

    /// [`call_soon`](Self::call_soon), from another thread
    /// (`loop.call_soon_threadsafe(cb)`). Every method of `Loop` is
    /// thread-safe; this one exists so ported code reads the same.
    ///
    /// # Panics
    /// On a closed loop, with `Event loop is closed`, as
    /// [`call_soon`](Self::call_soon).
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// std::thread::spawn(move || {
    ///     lp.call_soon_threadsafe(move || tx.send(42).unwrap());
    /// });
    /// assert_eq!(rx.recv().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn call_soon_threadsafe<F>(&self, f: F) -> CallbackHandle
    where
        F: FnOnce() + Send + 'static,
    {
        self.schedule(When::Soon, f, "call_soon_threadsafe")
    }

    /// Schedules `f` to run after `delay` (`loop.call_later(delay, cb)`):
    /// a [`Duration`] or seconds; `None` or infinity never fires, and so does
    /// any delay longer than 30 years, the horizon Tokio caps every sleep at
    /// (its [`TimerHandle::when`] is `None` whatever form the delay took:
    /// `f64::MAX`, `u64::MAX` seconds, `Duration::MAX`). Timers fire in
    /// deadline order on Tokio's clock (paused in tests).
    ///
    /// # Panics
    /// If `delay` is NaN seconds; on a runtime without Tokio's time driver;
    /// on a closed loop, with `Event loop is closed`, as
    /// [`call_soon`](Self::call_soon).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lp = asyncio::get_running_loop();
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let start = lp.time();
    /// let timer = lp.call_later(5, move || tx.send(()).unwrap());
    /// assert!((timer.when().unwrap() - (start + 5.0)).abs() < 1e-6);
    /// rx.await.unwrap();
    /// assert!(lp.time() >= start + 5.0 - 1e-6); // f64 seconds: compare loosely
    /// # }
    /// ```
    #[track_caller]
    pub fn call_later<F>(&self, delay: impl Seconds, f: F) -> TimerHandle
    where
        F: FnOnce() + Send + 'static,
    {
        let deadline = delay.to_duration().and_then(|d| {
            let now = self.now();
            within_horizon(now, now.checked_add(d)?)
        });
        self.timer(deadline, f, "call_later")
    }

    /// Schedules `f` to run at loop time `when`, in [`time`](Self::time)'s
    /// seconds (`loop.call_at(when, cb)`). A time in the past fires soon;
    /// infinity never fires, and so does a time more than 30 years ahead (as
    /// for [`call_later`](Self::call_later): [`TimerHandle::when`] is
    /// `None`).
    ///
    /// # Panics
    /// If `when` is NaN; on a runtime without Tokio's time driver; on a
    /// closed loop, with `Event loop is closed`, as
    /// [`call_soon`](Self::call_soon).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lp = asyncio::get_running_loop();
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let timer = lp.call_at(lp.time() + 60.0, move || { let _ = tx.send(()); });
    /// timer.cancel();
    /// assert!(timer.cancelled());
    /// assert!(rx.await.is_err()); // never called, dropped
    /// # }
    /// ```
    #[track_caller]
    pub fn call_at<F>(&self, when: f64, f: F) -> TimerHandle
    where
        F: FnOnce() + Send + 'static,
    {
        assert!(
            !when.is_nan(),
            "asyncio::Loop::call_at(when): when is NaN; pass a loop time such as lp.time() + 1.0"
        );
        let now = self.now();
        let origin = Instant::from_std(origin(now));
        let deadline = if when >= 0.0 {
            // Infinity, and times too far for a `Duration`: never.
            Duration::try_from_secs_f64(when)
                .ok()
                .and_then(|after| origin.checked_add(after))
                .and_then(|at| within_horizon(now, at))
        } else {
            let before = Duration::try_from_secs_f64(-when).unwrap_or(Duration::MAX);
            Some(origin.checked_sub(before).unwrap_or(origin))
        };
        self.timer(deadline, f, "call_at")
    }

    /// The loop's monotonic clock in seconds (`loop.time()`): Tokio's clock,
    /// so it follows a paused clock (`start_paused`, `tokio::time::advance`).
    /// The origin is arbitrary (the first reading in the process, which is
    /// `0.0` or just above); only differences mean something. Readings never
    /// go down, and are never negative on a runtime whose clock started
    /// after that first reading; a paused clock frozen before it (a runtime
    /// built earlier, still paused) reads below zero until it passes it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lp = asyncio::get_running_loop();
    /// let t0 = lp.time();
    /// tokio::time::advance(std::time::Duration::from_secs(90)).await;
    /// assert!((lp.time() - t0 - 90.0).abs() < 1e-6);
    /// # }
    /// ```
    pub fn time(&self) -> f64 {
        self.loop_time(self.now())
    }

    /// Runs the blocking `f` on this loop's blocking pool and returns a
    /// future of its value (`loop.run_in_executor(None, func)`). Unlike
    /// [`to_thread`](crate::to_thread), `f` is submitted now, not at the
    /// first poll; otherwise the same: a panic is `Err(Panicked)`, dropping
    /// the future does not stop the thread, and inside `f`
    /// [`current_task()`](crate::current_task) is the task that called this.
    ///
    /// # Cancel safety
    /// Dropping the future never stops a running `f`. Dropped after it was
    /// awaited (polled), while `f` still waits for a free thread of the
    /// pool, `f` is not started, as asyncio cancels a queued work item when
    /// its awaiter is cancelled; dropped without ever being polled, `f` runs
    /// anyway, as an asyncio future nobody awaits.
    ///
    /// # Errors
    /// [`Error::Panicked`](crate::Error::Panicked) when `f` panicked;
    /// [`Error::Cancelled`](crate::Error::Cancelled) when the runtime
    /// dropped the job before a thread ran it (it is shutting down).
    ///
    /// # Panics
    /// On a closed loop, with `Event loop is closed`, as
    /// [`call_soon`](Self::call_soon) (`f` is dropped unrun).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let lp = asyncio::get_running_loop();
    ///     let job = lp.run_in_executor(|| std::thread::current().name().map(str::to_owned));
    ///     assert!(job.await.is_ok());
    /// });
    /// ```
    #[track_caller]
    pub fn run_in_executor<F, R>(
        &self,
        f: F,
    ) -> impl Future<Output = crate::Result<R>> + Send + use<F, R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (refused, mut guard) = not_started();
        let job = spawn_blocking_as(&self.handle, crate::current_task(), move || {
            guard.started();
            f()
        });
        if refused.load(Ordering::Acquire) {
            closed("run_in_executor");
        }
        BlockingJob::new(job)
    }

    /// `true` once the runtime of this loop has shut down
    /// (`loop.is_closed()`): scheduling on it then panics with
    /// `Event loop is closed`. A runtime that is shutting down at the moment
    /// may still answer `false`. Tokio has no such query, so each call
    /// spawns (and a live runtime then runs) one empty task.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let lp = asyncio::Loop::from(rt.handle().clone());
    /// assert!(!lp.is_closed());
    /// drop(rt);
    /// assert!(lp.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        // Tokio has no such query: a closed runtime drops what is spawned on
        // it inside `spawn`, unpolled.
        let (refused, mut guard) = not_started();
        drop(self.handle.spawn(async move { guard.started() }));
        refused.load(Ordering::Acquire)
    }

    /// Tokio's clock as this loop's runtime sees it.
    fn now(&self) -> Instant {
        let _enter = self.handle.enter();
        Instant::now()
    }

    /// `at` in loop time. The origin, if not set yet, is set from a reading
    /// no later than `at` (the first `time()` of a process is `0.0`, not a
    /// hair below).
    fn loop_time(&self, at: Instant) -> f64 {
        let origin = origin(self.now().min(at));
        let at = at.into_std();
        match at.checked_duration_since(origin) {
            Some(d) => d.as_secs_f64(),
            None => -(origin.duration_since(at).as_secs_f64()),
        }
    }

    #[track_caller]
    fn timer<F>(&self, deadline: Option<Instant>, f: F, method: &str) -> TimerHandle
    where
        F: FnOnce() + Send + 'static,
    {
        TimerHandle {
            when: deadline.map(|at| self.loop_time(at)),
            handle: self.schedule(
                match deadline {
                    Some(at) => When::At(at),
                    None => When::Never,
                },
                f,
                method,
            ),
        }
    }

    /// Runs `f` on the loop `when` says.
    #[track_caller]
    fn schedule<F>(&self, when: When, f: F, method: &str) -> CallbackHandle
    where
        F: FnOnce() + Send + 'static,
    {
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        // The timer is built here, in the caller: a runtime without Tokio's
        // time driver refuses at once (with Tokio's message) instead of the
        // callback silently never running.
        let timer = match when {
            When::At(at) => {
                let _enter = self.handle.enter();
                Some(tokio::time::sleep_until(at))
            }
            When::Soon | When::Never => None,
        };
        let (refused, mut guard) = not_started();
        let join = self.handle.spawn(async move {
            guard.started();
            match (when, timer) {
                (_, Some(timer)) => timer.await,
                (When::Never, None) => std::future::pending().await,
                _ => {}
            }
            if !flag.load(Ordering::Acquire) {
                run_callback(f);
            }
        });
        if refused.load(Ordering::Acquire) {
            closed(method);
        }
        CallbackHandle {
            cancelled,
            abort: join.abort_handle(),
        }
    }
}

/// When a scheduled callback runs.
#[derive(Clone, Copy)]
enum When {
    /// At the next turn (`call_soon`).
    Soon,
    /// At that instant (`call_later`, `call_at`).
    At(Instant),
    /// Never: no delay (`None`, infinity) or one past the timer's horizon.
    Never,
}

/// A job for the runtime (`guard` moved into it) and the flag it sets if
/// it is dropped before it started. Tokio drops what is spawned onto a
/// runtime that has shut down at once, inside `spawn` / `spawn_blocking`,
/// so the flag read right after the spawn tells a closed loop.
fn not_started() -> (Arc<AtomicBool>, NotStarted) {
    let flag = Arc::new(AtomicBool::new(false));
    (flag.clone(), NotStarted(Some(flag)))
}

struct NotStarted(Option<Arc<AtomicBool>>);

impl NotStarted {
    fn started(&mut self) {
        self.0 = None;
    }
}

impl Drop for NotStarted {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Release);
        }
    }
}

#[track_caller]
fn closed(method: &str) -> ! {
    panic!(
        "Event loop is closed: asyncio::Loop::{method}() on a loop whose Tokio runtime has \
         shut down, so the callback could never run; schedule work only while the runtime \
         runs (Loop::is_closed() tells)"
    )
}

/// Tokio's horizon: it caps every sleep at 30 years (`tokio::time::sleep`
/// with a longer duration sleeps that long). A timer due later than this
/// never fires, for us: its `when()` is `None`, whatever form the delay took.
const HORIZON: Duration = Duration::from_secs(86400 * 365 * 30);

/// `at`, unless it is beyond the horizon from `now` (then never: `None`).
fn within_horizon(now: Instant, at: Instant) -> Option<Instant> {
    (at.saturating_duration_since(now) <= HORIZON).then_some(at)
}

/// The origin of loop time, set at the first call from the earlier of the
/// real clock and `now` (the caller's Tokio clock, read before this call).
fn origin(now: Instant) -> std::time::Instant {
    *ORIGIN.get_or_init(|| std::time::Instant::now().min(now.into_std()))
}

fn run_callback(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        report_panic("Exception in callback", None, payload);
    }
}

/// A callback scheduled with [`Loop::call_soon`]: asyncio's `Handle`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let h = asyncio::get_running_loop().call_soon(|| unreachable!("cancelled first"));
/// h.cancel();
/// assert!(h.cancelled());
/// asyncio::sleep(0).await;
/// # }
/// ```
pub struct CallbackHandle {
    cancelled: Arc<AtomicBool>,
    abort: AbortHandle,
}

impl CallbackHandle {
    /// Cancels the callback if it has not started (`handle.cancel()`); a
    /// callback already running finishes. Idempotent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let h = asyncio::get_running_loop().call_soon(|| {});
    /// h.cancel();
    /// h.cancel();
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.abort.abort();
    }

    /// `true` once [`cancel`](Self::cancel) was called (`handle.cancelled()`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let h = asyncio::get_running_loop().call_soon(|| {});
    /// assert!(!h.cancelled());
    /// # }
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CallbackHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackHandle")
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// A callback scheduled with [`Loop::call_later`] or [`Loop::call_at`]:
/// asyncio's `TimerHandle`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let lp = asyncio::get_running_loop();
/// let t = lp.call_later(10, || unreachable!("cancelled first"));
/// t.cancel();
/// asyncio::sleep(20).await;
/// assert!(t.cancelled());
/// # }
/// ```
#[derive(Debug)]
pub struct TimerHandle {
    handle: CallbackHandle,
    when: Option<f64>,
}

impl TimerHandle {
    /// When the callback is due, in [`Loop::time`] seconds
    /// (`timer.when()`); `None` for a timer that never fires: infinity,
    /// `None`, or a deadline more than 30 years ahead (beyond Tokio's
    /// horizon), whatever form the delay took.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lp = asyncio::get_running_loop();
    /// assert_eq!(lp.call_at(12.5, || {}).when(), Some(12.5));
    /// assert_eq!(lp.call_later(None, || {}).when(), None);
    /// # }
    /// ```
    pub fn when(&self) -> Option<f64> {
        self.when
    }

    /// Cancels the callback if it has not started; see
    /// [`CallbackHandle::cancel`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// asyncio::get_running_loop().call_later(1, || {}).cancel();
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// `true` once [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let t = asyncio::get_running_loop().call_later(1, || {});
    /// t.cancel();
    /// assert!(t.cancelled());
    /// # }
    /// ```
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }
}
