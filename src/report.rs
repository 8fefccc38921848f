//! Reports: the one replaceable exception handler (asyncio's
//! `loop.set_exception_handler`), the debug-mode switch and the debug-mode
//! slow-poll check.
//!
//! Some failures have nobody to return an error to: a done callback that
//! panics, a task whose panic nobody retrieved ("Task exception was never
//! retrieved", see the crate docs on panics), a task that panicked while
//! `asyncio::run` was cancelling it at shutdown, a destructor that panicked
//! inside the task machinery. asyncio hands those to the loop's exception handler, which by
//! default logs them; so does this crate. The default handler writes one
//! line to standard error; [`set_exception_handler`] replaces it (for
//! instance to route reports to `tracing`, or to capture them in a test).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! asyncio::set_exception_handler(Some(move |report: &asyncio::ExceptionContext| {
//!     sink.lock().unwrap().push(report.message().to_string());
//! }));
//! // One thread: the task ends (and its callbacks run) during the await.
//! asyncio::Runner::new().current_thread().run(async {
//!     let task = asyncio::create_task(async {});
//!     task.add_done_callback(|_| panic!("callback failed"));
//!     let _ = task.await;
//! });
//! asyncio::set_exception_handler(None::<fn(&asyncio::ExceptionContext)>);
//! assert_eq!(seen.lock().unwrap()[0], "Exception in callback");
//! ```

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::error::PanicError;
use crate::{Error, Seconds, TaskRef};

/// What a report is about: asyncio's exception-handler `context` dict.
///
/// ```
/// let ctx = asyncio::ExceptionContext::new("something broke");
/// assert_eq!(ctx.message(), "something broke");
/// assert!(ctx.exception().is_none() && ctx.task().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct ExceptionContext {
    message: String,
    exception: Option<Error>,
    task: Option<TaskRef>,
}

impl ExceptionContext {
    /// A report with just a message.
    ///
    /// ```
    /// let ctx = asyncio::ExceptionContext::new("disk almost full");
    /// assert_eq!(ctx.to_string(), "disk almost full");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exception: None,
            task: None,
        }
    }

    /// The same report, with the error it is about.
    ///
    /// ```
    /// let ctx = asyncio::ExceptionContext::new("Exception in callback")
    ///     .with_exception(asyncio::PanicError::new("boom").into());
    /// assert!(ctx.exception().unwrap().is_panic());
    /// ```
    pub fn with_exception(mut self, exception: Error) -> Self {
        self.exception = Some(exception);
        self
    }

    /// The same report, with the task it is about.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let me = asyncio::current_task().unwrap();
    ///     let ctx = asyncio::ExceptionContext::new("slow").with_task(me.clone());
    ///     assert_eq!(ctx.task(), Some(&me));
    /// });
    /// ```
    pub fn with_task(mut self, task: TaskRef) -> Self {
        self.task = Some(task);
        self
    }

    /// What happened, in asyncio's words (`"Exception in callback"`, ...).
    ///
    /// ```
    /// assert_eq!(asyncio::ExceptionContext::new("oops").message(), "oops");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error, if the report is about one.
    ///
    /// ```
    /// let ctx = asyncio::ExceptionContext::new("oops");
    /// assert!(ctx.exception().is_none());
    /// let ctx = ctx.with_exception(asyncio::TimeoutError::new().into());
    /// assert!(ctx.exception().unwrap().is_timeout());
    /// ```
    pub fn exception(&self) -> Option<&Error> {
        self.exception.as_ref()
    }

    /// The task, if the report is about one.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     let ctx = asyncio::ExceptionContext::new("about t").with_task(t.to_ref());
    ///     assert_eq!(ctx.task().unwrap().id(), t.id());
    ///     t.await.unwrap();
    /// });
    /// ```
    pub fn task(&self) -> Option<&TaskRef> {
        self.task.as_ref()
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(task) = &self.task {
            write!(f, "\ntask: {task}")?;
        }
        if let Some(e) = &self.exception {
            write!(f, "\n{e}")?;
            // A task's panic: where it happened (recorded by the panic hook).
            if let (Error::Panicked(_), Some(task)) = (e, &self.task) {
                if let Some(at) = crate::task::diag::panic_location(task) {
                    write!(f, "\npanicked at {}:{}:{}", at.file, at.line, at.column)?;
                }
            }
        }
        // Debug mode: where the task came from (asyncio's "Object created at").
        let entry = self.task.as_ref().and_then(crate::task::diag::entry_of);
        if let Some(bt) = entry
            .as_deref()
            .and_then(crate::task::diag::DiagEntry::backtrace)
        {
            write!(f, "\ntask created at (most recent call first):\n{bt}")?;
        }
        Ok(())
    }
}

type Handler = Arc<dyn Fn(&ExceptionContext) + Send + Sync>;

static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

/// Replaces the process-wide exception handler; `None` restores the default
/// (one report to standard error). A bare `None` leaves the handler type
/// unknown (error E0283): call [`reset_exception_handler`] instead, or write
/// `None::<fn(&asyncio::ExceptionContext)>`.
///
/// This is where panics of tasks that nobody awaited end up ("Task exception
/// was never retrieved"): the crate's panic hook keeps panics inside tasks
/// off standard error (see the crate docs, *Panics in tasks*), so route
/// reports from here to your logger rather than from a panic hook.
///
/// The handler runs on whatever thread found the problem, never while the
/// crate holds a lock of its own; a panic inside it is caught and written to
/// standard error.
///
/// ```
/// asyncio::set_exception_handler(Some(|ctx: &asyncio::ExceptionContext| {
///     eprintln!("asyncio report: {ctx}");
/// }));
/// asyncio::set_exception_handler(None::<fn(&asyncio::ExceptionContext)>);
/// ```
pub fn set_exception_handler<H>(handler: Option<H>)
where
    H: Fn(&ExceptionContext) + Send + Sync + 'static,
{
    let handler = handler.map(|h| Arc::new(h) as Handler);
    let old = std::mem::replace(&mut *crate::lock::write(&HANDLER), handler);
    // Dropped unlocked: what the old handler owns may report in its `Drop`.
    drop(old);
}

/// Restores the default exception handler (one report to standard error):
/// asyncio's `loop.set_exception_handler(None)`, spelled so that nothing
/// needs a type annotation.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static SEEN: AtomicUsize = AtomicUsize::new(0);
/// asyncio::set_exception_handler(Some(|_: &asyncio::ExceptionContext| {
///     SEEN.fetch_add(1, Ordering::SeqCst);
/// }));
/// asyncio::call_exception_handler(asyncio::ExceptionContext::new("seen by ours"));
/// asyncio::reset_exception_handler();
/// asyncio::call_exception_handler(asyncio::ExceptionContext::new("to standard error"));
/// assert_eq!(SEEN.load(Ordering::SeqCst), 1);
/// ```
///
/// A bare `None` does not compile:
///
/// ```compile_fail,E0283
/// asyncio::set_exception_handler(None);
/// ```
pub fn reset_exception_handler() {
    set_exception_handler(None::<fn(&ExceptionContext)>);
}

/// Reports a caught panic (a done callback's, a loop callback's, a
/// destructor's) to the handler, with the task it concerns if any; then
/// drops the payload, contained ([`drop_payload`]).
pub(crate) fn report_panic(message: &str, task: Option<&TaskRef>, payload: Box<dyn Any + Send>) {
    let err = PanicError::from_payload(&*payload);
    let mut ctx = ExceptionContext::new(message).with_exception(Error::Panicked(err));
    if let Some(task) = task {
        ctx = ctx.with_task(task.clone());
    }
    call_exception_handler(ctx);
    drop_payload(payload, task);
}

/// Drops a caught panic's payload without ever unwinding: a payload whose
/// destructor panics (`std::panic::panic_any(value)` with such a value) is
/// reported as `Exception in the destructor of a panic payload`, with
/// `task` (else the current task), and the new payload is dropped the same way; a few levels
/// down, what is left is leaked rather than dropped.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>, task: Option<&TaskRef>) {
    let mut payload = payload;
    for _ in 0..4 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => {
                let err = PanicError::from_payload(&*next);
                let mut ctx =
                    ExceptionContext::new("Exception in the destructor of a panic payload")
                        .with_exception(Error::Panicked(err));
                if let Some(task) = task.cloned().or_else(crate::task::current_task) {
                    ctx = ctx.with_task(task);
                }
                call_exception_handler(ctx);
                payload = next;
            }
        }
    }
    std::mem::forget(payload);
}

/// Sends a report to the current handler (asyncio's
/// `loop.call_exception_handler`).
///
/// ```
/// asyncio::call_exception_handler(asyncio::ExceptionContext::new("custom report"));
/// ```
pub fn call_exception_handler(context: ExceptionContext) {
    let handler = crate::lock::read(&HANDLER).clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| match handler {
        Some(h) => h(&context),
        None => eprintln!("asyncio: {context}"),
    }));
    if let Err(payload) = outcome {
        eprintln!("asyncio: the exception handler panicked while reporting: {context}");
        // Never unwinds: a payload whose destructor panics is leaked.
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// Process-wide debug default: `ASYNCIO_DEBUG=1`, read once.
static ENV_DEBUG: AtomicU8 = AtomicU8::new(UNSET);

/// Runtimes whose `Runner` set debug mode explicitly (`Runner::debug`):
/// consulted only when a task is created outside our tasks (a done callback,
/// a raw Tokio task, another thread), where there is no parent to inherit
/// from. A handful of entries, one per running `Runner`.
static RUNTIME_DEBUG: RwLock<Vec<(tokio::runtime::Id, bool)>> = RwLock::new(Vec::new());

/// Bumped after every change of [`RUNTIME_DEBUG`]: a thread's cached answer
/// is good while the generation it was read at is current.
static RUNTIME_DEBUG_GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's last answer of [`runtime_debug`]: (runtime, generation,
    /// debug). A thread spawning task after task outside our tasks (a raw
    /// Tokio task, `block_on`) then takes no lock that all threads share.
    static RUNTIME_DEBUG_CACHE: Cell<Option<(tokio::runtime::Id, u64, bool)>> =
        const { Cell::new(None) };
}

/// Records (`Some`) or forgets (`None`) a runner's debug setting.
pub(crate) fn set_runtime_debug(runtime: tokio::runtime::Id, debug: Option<bool>) {
    let mut table = crate::lock::write(&RUNTIME_DEBUG);
    table.retain(|(id, _)| *id != runtime);
    if let Some(on) = debug {
        table.push((runtime, on));
    }
    // After the change: a reader that saw the old generation re-reads.
    RUNTIME_DEBUG_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Debug mode for a task created on `runtime` with no parent task: the
/// runner's setting, else the environment's.
pub(crate) fn runtime_debug(runtime: tokio::runtime::Id) -> bool {
    // The generation is read before the table: an answer cached with it is
    // at least as new as that generation.
    let generation = RUNTIME_DEBUG_GENERATION.load(Ordering::Acquire);
    let cached = RUNTIME_DEBUG_CACHE.try_with(Cell::get).ok().flatten();
    if let Some((id, seen, on)) = cached {
        if id == runtime && seen == generation {
            return on;
        }
    }
    let on = {
        let table = crate::lock::read(&RUNTIME_DEBUG);
        match table.iter().find(|(id, _)| *id == runtime) {
            Some((_, on)) => *on,
            None => env_debug(),
        }
    };
    let _ = RUNTIME_DEBUG_CACHE.try_with(|c| c.set(Some((runtime, generation, on))));
    on
}

/// Whether the environment asks for debug mode (`ASYNCIO_DEBUG` set to
/// anything but empty or `0`, as `PYTHONASYNCIODEBUG`).
pub(crate) fn env_debug() -> bool {
    match ENV_DEBUG.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var_os("ASYNCIO_DEBUG").is_some_and(|v| !v.is_empty() && v != "0");
            ENV_DEBUG.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// The slow-poll threshold in nanoseconds (`u64::MAX`: never).
static SLOW_NANOS: AtomicU64 = AtomicU64::new(100_000_000);

/// Sets the debug-mode slow-poll threshold (asyncio's
/// `loop.slow_callback_duration`, default 100 ms): in debug mode, any single
/// poll of a task of ours that runs longer is reported to the
/// [exception handler](set_exception_handler) as `Executing <Task …> took
/// 0.250 seconds`, naming the task and where it was created. Such a poll
/// blocks a worker thread: blocking I/O, a long computation or
/// `std::thread::sleep` inside a task. Process-wide; `None` turns the check
/// off. Accepts seconds as in [`sleep`](crate::sleep).
///
/// ```standalone_crate
/// // (its own process: the threshold is process-wide, and the example of
/// // `slow_callback_duration` reads the default)
/// asyncio::set_slow_callback_duration(0.05);
/// assert_eq!(asyncio::slow_callback_duration(), Some(std::time::Duration::from_millis(50)));
/// asyncio::set_slow_callback_duration(None::<std::time::Duration>);
/// assert_eq!(asyncio::slow_callback_duration(), None);
/// asyncio::set_slow_callback_duration(0.1); // the default
/// ```
pub fn set_slow_callback_duration(threshold: impl Seconds) {
    let nanos = threshold.to_duration().map_or(u64::MAX, |d| {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    });
    SLOW_NANOS.store(nanos, Ordering::Relaxed);
}

/// The debug-mode slow-poll threshold (see [`set_slow_callback_duration`]);
/// `None` when the check is off.
///
/// ```
/// assert_eq!(asyncio::slow_callback_duration(), Some(std::time::Duration::from_millis(100)));
/// ```
pub fn slow_callback_duration() -> Option<Duration> {
    match SLOW_NANOS.load(Ordering::Relaxed) {
        u64::MAX => None,
        n => Some(Duration::from_nanos(n)),
    }
}

/// Debug mode, after each poll of a task: reports a poll slower than the
/// threshold.
pub(crate) fn check_slow_poll(took: Duration, task: impl FnOnce() -> TaskRef) {
    if took.as_nanos() > u128::from(SLOW_NANOS.load(Ordering::Relaxed)) {
        let task = task();
        call_exception_handler(
            ExceptionContext::new(format!(
                "Executing {task} took {:.3} seconds",
                took.as_secs_f64()
            ))
            .with_task(task),
        );
    }
}
