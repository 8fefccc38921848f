//! [`run`] and [`Runner`]: asyncio's entry points.
//!
//! `run(main)` builds a Tokio runtime, runs `main` as a task of ours (so
//! [`current_task`](crate::current_task) works inside it, as asyncio wraps
//! `main` in a Task), then does asyncio's shutdown sequence:
//!
//! 1. every task of ours still pending on that runtime is cancelled, once;
//! 2. `run` waits until each of them has finished cancelling;
//! 3. any of them that ended with a panic is reported to the
//!    [exception handler](crate::set_exception_handler)
//!    (`unhandled exception during asyncio.run() shutdown`);
//! 4. the runtime shuts down, giving threads still busy in
//!    [`to_thread`]-style blocking work a bounded grace period
//!    ([`Runner::shutdown_timeout`], 300 s by default as in Python 3.12).
//!
//! Blocking work ([`to_thread`], `run_in_executor`, and Tokio's own: file
//! I/O, standard streams, host-name lookups) runs on a pool of at most
//! `min(32, cpus + 4)` threads, the size of asyncio's default executor;
//! [`Runner::max_blocking_threads`] sets another bound.
//!
//! Tasks created during step 2 are not cancelled by `run` (asyncio abandons
//! them too); they are dropped when the runtime shuts down.
//!
//! The runtime is a current-thread one by default, as asyncio's event loop
//! runs on one thread: `main` and every task it creates run on the thread
//! that called `run`, and they interleave only where one of them awaits. A
//! task created with [`create_task`](crate::create_task) starts at its
//! creator's next `await` that yields, in creation order, as in asyncio.
//! [`Runner::worker_threads`] opts into Tokio's multi-thread scheduler, where
//! tasks run in parallel on `n` workers (and `main` still on the calling
//! thread).
//!
//! `main` runs on the thread that called `run` (inside `block_on`), so it
//! need not be `Send` or `'static`.
//!
//! [`to_thread`]: https://docs.python.org/3/library/asyncio-task.html#asyncio.to_thread

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::report::{ExceptionContext, call_exception_handler};
use crate::task::{Core, MainEnd, MainHarness};
use crate::{Error, Seconds, TaskRef};

/// Runs `main` to completion on a new current-thread runtime and returns its
/// output: asyncio's `asyncio.run(main())`. Same as `Runner::new().run(main)`.
///
/// Everything runs on the calling thread, as on asyncio's event loop: a task
/// created by `main` first runs when `main` awaits something that is not
/// ready. Use [`Runner::worker_threads`] for Tokio's multi-thread scheduler.
///
/// # Panics
/// - When called from inside a Tokio runtime, with
///   `asyncio::run() cannot be called from a running event loop`.
/// - When `main` panics: the same panic continues out of `run`, after the
///   shutdown sequence ran.
/// - When the main task is cancelled (`current_task().unwrap().cancel()`),
///   with `asyncio::run(): the main task was cancelled`.
/// - When the Tokio runtime cannot be built (the system refuses a thread,
///   say), with `asyncio::run(): could not build the Tokio runtime`.
///
/// ```
/// async fn main_coro() -> &'static str {
///     asyncio::sleep(0.01).await;
///     "Done."
/// }
///
/// assert_eq!(asyncio::run(main_coro()), "Done.");
/// ```
#[track_caller]
pub fn run<F: Future>(main: F) -> F::Output {
    Runner::new().run_as("asyncio::run()", main)
}

/// Builds the runtime for [`run`]: asyncio's `asyncio.Runner`.
///
/// By default the runtime is current-thread (asyncio's one-thread event
/// loop); [`worker_threads`](Runner::worker_threads) switches to Tokio's
/// multi-thread scheduler.
///
/// ```
/// let out = asyncio::Runner::new()
///     .debug(false)
///     .run(async { asyncio::current_task().is_some() });
/// assert!(out);
/// ```
#[derive(Clone, Debug)]
pub struct Runner {
    current_thread: bool,
    worker_threads: Option<usize>,
    /// `None`: asyncio's default executor size ([`default_blocking_threads`]).
    max_blocking_threads: Option<usize>,
    debug: Option<bool>,
    shutdown_timeout: Duration,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner for a current-thread runtime, in debug mode when the
    /// environment has `ASYNCIO_DEBUG=1`, with a 300 s shutdown timeout and
    /// at most `min(32, cpus + 4)` threads for blocking work (see
    /// [`max_blocking_threads`](Runner::max_blocking_threads)).
    ///
    /// ```
    /// assert_eq!(asyncio::Runner::new().run(async { 1 }), 1);
    /// ```
    pub fn new() -> Self {
        Self {
            current_thread: true,
            worker_threads: None,
            max_blocking_threads: None,
            debug: None,
            shutdown_timeout: Duration::from_secs(300),
        }
    }

    /// Debug mode on or off for this run (default: on when the environment
    /// has `ASYNCIO_DEBUG=1`).
    ///
    /// ```
    /// asyncio::Runner::new().debug(true).run(async {});
    /// ```
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// A single-threaded runtime: everything runs on the calling thread, as
    /// in asyncio. This is the default; it undoes an earlier
    /// [`worker_threads`](Runner::worker_threads).
    ///
    /// ```
    /// let caller = std::thread::current().id();
    /// asyncio::Runner::new().current_thread().run(async move {
    ///     let t = asyncio::create_task(async { std::thread::current().id() });
    ///     assert_eq!(t.await.unwrap(), caller);
    /// });
    /// ```
    pub fn current_thread(mut self) -> Self {
        self.current_thread = true;
        self.worker_threads = None;
        self
    }

    /// Tokio's multi-thread runtime with `n` workers: the tasks `main`
    /// creates run in parallel on the workers (`main` itself stays on the
    /// calling thread). Tasks then interleave in no fixed order; asyncio
    /// programs that rely on its one-thread order want the default instead.
    ///
    /// # Panics
    /// If `n` is 0.
    ///
    /// ```
    /// let caller = std::thread::current().id();
    /// asyncio::Runner::new().worker_threads(2).run(async move {
    ///     let t = asyncio::create_task(async { std::thread::current().id() });
    ///     assert_ne!(t.await.unwrap(), caller);
    /// });
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "asyncio::Runner::worker_threads(n): n must be at least 1"
        );
        self.current_thread = false;
        self.worker_threads = Some(n);
        self
    }

    /// At most `n` threads for blocking work: the size of the default
    /// executor, as `loop.set_default_executor(ThreadPoolExecutor(n))` sets
    /// it in asyncio.
    ///
    /// The pool runs [`to_thread`](crate::to_thread) and
    /// [`Loop::run_in_executor`](crate::Loop::run_in_executor) closures, and
    /// Tokio's own blocking work on this runtime: `tokio::fs`,
    /// `tokio::io::{stdin, stdout, stderr}`, and host-name lookups
    /// (`tokio::net::lookup_host`, so also
    /// [`open_connection`](crate::open_connection) with a host name, which
    /// asyncio resolves in its default executor too). Threads start on
    /// demand and end after 10 s idle; work beyond `n` waits in a
    /// first-come-first-served queue for a free thread. The workers of
    /// [`worker_threads`](Runner::worker_threads) are not counted.
    ///
    /// The default is asyncio's default executor size, `min(32, cpus + 4)`
    /// with `cpus` = [`std::thread::available_parallelism`] (Tokio's own
    /// default is 512): few threads that take the next closure off the
    /// queue keep a burst of short closures cheap, where hundreds of threads
    /// would each be woken and then share the cores. Raise it for many
    /// closures that block for long (slow files, a blocking client library,
    /// a pending `stdin` read holds a thread until input comes).
    ///
    /// # Deadlock
    /// As with any bounded executor (asyncio's included), blocking work
    /// must not wait for blocking work queued behind it: `n` closures that
    /// each wait for another closure (or for a task that awaits
    /// `to_thread`, through [`ConcurrentFuture::result`]) hold every thread,
    /// and the closures they wait for never start. On a multi-thread
    /// runtime, [`ConcurrentFuture::result`] called in a task (and Tokio's
    /// `block_in_place`) also needs a free thread of this pool to take over
    /// the worker's other tasks meanwhile. Await instead of blocking where
    /// you can, or size the pool for the most closures that can wait at
    /// once.
    ///
    /// [`ConcurrentFuture::result`]: crate::ConcurrentFuture::result
    ///
    /// # Panics
    /// If `n` is 0 (there would be no thread to run anything), with
    /// `asyncio::Runner::max_blocking_threads(n): n must be at least 1`.
    ///
    /// ```
    /// let busiest = asyncio::Runner::new().max_blocking_threads(2).run(async {
    ///     let busy = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    ///     let calls = (0..8).map(|_| {
    ///         let busy = busy.clone();
    ///         asyncio::to_thread(move || {
    ///             use std::sync::atomic::Ordering::SeqCst;
    ///             let now = busy.fetch_add(1, SeqCst) + 1;
    ///             busy.fetch_sub(1, SeqCst);
    ///             now
    ///         })
    ///     });
    ///     let seen = asyncio::gather(calls.collect::<Vec<_>>()).await.unwrap();
    ///     seen.into_iter().map(Result::unwrap).max().unwrap()
    /// });
    /// assert!(busiest <= 2);
    /// ```
    #[track_caller]
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "asyncio::Runner::max_blocking_threads(n): n must be at least 1"
        );
        self.max_blocking_threads = Some(n);
        self
    }

    /// How long shutdown waits for threads still busy with blocking work
    /// (default 300 s, as Python 3.12's executor shutdown).
    ///
    /// ```
    /// asyncio::Runner::new().shutdown_timeout(1).run(async {});
    /// ```
    pub fn shutdown_timeout(mut self, timeout: impl Seconds) -> Self {
        self.shutdown_timeout = timeout.to_duration().unwrap_or(Duration::MAX);
        self
    }

    /// Runs `main` to completion; see [`run`].
    ///
    /// # Panics
    /// As [`run`], with `asyncio::Runner::run() cannot be called from a
    /// running event loop` inside a runtime.
    ///
    /// ```
    /// let n = asyncio::Runner::new().run(async {
    ///     let t = asyncio::create_task(async { 40 });
    ///     t.await.unwrap() + 2
    /// });
    /// assert_eq!(n, 42);
    /// ```
    #[track_caller]
    pub fn run<F: Future>(self, main: F) -> F::Output {
        self.run_as("asyncio::Runner::run()", main)
    }

    #[track_caller]
    fn run_as<F: Future>(self, who: &str, main: F) -> F::Output {
        if Handle::try_current().is_ok() {
            panic!("{who} cannot be called from a running event loop");
        }
        let spawned_at = std::panic::Location::caller();
        let mut builder = if self.current_thread {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        };
        if let Some(n) = self.worker_threads {
            builder.worker_threads(n);
        }
        builder.max_blocking_threads(
            self.max_blocking_threads
                .unwrap_or_else(default_blocking_threads),
        );
        let rt = builder
            .enable_all()
            .build()
            .expect("asyncio::run(): could not build the Tokio runtime");
        let debug = self.debug.unwrap_or_else(crate::report::env_debug);

        let runtime = rt.handle().id();
        crate::report::set_runtime_debug(runtime, self.debug);
        let core = Core::<()>::new_registered(
            None,
            spawned_at,
            std::any::type_name::<F>,
            Some(runtime),
            debug,
        );
        let token = CancellationToken::new();
        core.set_cancel_token(token.clone());
        let harness = MainHarness::new(core, main);

        let end = rt.block_on(async {
            let end = token
                .run_until_cancelled(harness)
                .await
                .unwrap_or(Err(MainEnd::Cancelled));
            cancel_leftovers(runtime).await;
            end
        });
        rt.shutdown_timeout(self.shutdown_timeout);
        crate::report::set_runtime_debug(runtime, None);

        match end {
            Ok(out) => out,
            Err(MainEnd::Panicked(payload)) => std::panic::resume_unwind(payload),
            Err(MainEnd::Cancelled) => panic!("{who}: the main task was cancelled"),
        }
    }
}

/// asyncio's default executor size: `ThreadPoolExecutor`'s default
/// `min(32, (os.process_cpu_count() or 1) + 4)` (Python 3.13).
fn default_blocking_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

/// Shutdown steps 1–3 (see the module docs).
async fn cancel_leftovers(runtime: tokio::runtime::Id) {
    let leftovers: Vec<TaskRef> =
        crate::task::collect(|t| !t.done() && t.core().header().runtime == Some(runtime));
    if leftovers.is_empty() {
        return;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for task in &leftovers {
        // Reported below if it ends panicking (asyncio's
        // `_cancel_all_tasks` reads every leftover's exception and reports
        // it as an unhandled exception during shutdown): never also as
        // "never retrieved".
        task.core().header().diag.mark_retrieved();
        task.cancel();
        let tx = tx.clone();
        task.add_done_callback(move |_| {
            let _ = tx.send(());
        });
    }
    drop(tx);
    // Each callback owns a sender and runs exactly once: the channel closes
    // when every leftover has ended.
    while rx.recv().await.is_some() {}
    for task in leftovers {
        if let Some(err @ Error::Panicked(_)) = task.core().error() {
            call_exception_handler(
                ExceptionContext::new("unhandled exception during asyncio.run() shutdown")
                    .with_exception(err)
                    .with_task(task),
            );
        }
    }
}
