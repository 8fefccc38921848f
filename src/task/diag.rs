//! Per-task diagnostic flags and records: what a task keeps for asyncio's
//! "Task exception was never retrieved" report, for its stack (the marked
//! await points it is suspended in, where it panicked) and, in debug mode,
//! for its creation backtrace; and the panic hook that records a task's
//! panic. A leaf of the task: it uses the current task and the exception
//! handler (`crate::report`), and nothing of `crate::stack`, which reads the
//! records kept here.
//!
//! # Invariants
//! 7. **Stacks and debug mode cost one branch when off.** `Header::diag` is
//!    one byte of flags ([`DiagFlags`], in padding: the core keeps its size).
//!    The frames of marked await points, a panic's location and the
//!    debug-mode creation backtrace live in a side table keyed by task id,
//!    created on first use (first `Framed` poll, a panic while a task of ours
//!    is being polled, or at creation in debug mode) and removed when the
//!    header drops. The "panic retrieved" flag is set by every path that
//!    hands the panic out (`take_output`, `result`, `exception`), by
//!    `cancel` of a task that already ended (asyncio's `cancel()` clears
//!    `_log_traceback`), and by the owners that cancel a task and read its
//!    outcome where asyncio's twin does: a dropped by-value await that was
//!    polled (the awaiter is woken by the end and reads it), and the
//!    runner's shutdown (which reports a leftover's panic itself). A
//!    `cancel` of a pending task does not set it: a panic the task raises
//!    afterwards, while it handles the cancel, is reported when nobody
//!    reads it, as asyncio's later `set_exception` sets `_log_traceback`
//!    again. Only when `Header::debug` is set does the harness time each
//!    poll (`poll_timed`). Only a task that ended panicking checks for a
//!    panic nobody will see ([`DiagFlags::ended_panicked`]), and dropping a
//!    `Task` costs one atomic load unless the task is pending or panicked
//!    ([`DiagFlags::handle_dropped`]).

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Once};

use super::current::with_current;
use super::{TaskId, TaskRef};
use crate::report::{ExceptionContext, call_exception_handler};

/// What a marked await point is named after (turned into a readable name
/// by `crate::stack`, which owns the type-name parser).
#[derive(Clone, Copy)]
pub(crate) enum AwaitName {
    /// The type of the awaited future (`std::any::type_name::<F>`).
    Type(fn() -> &'static str),
    /// An explicit label.
    Label(&'static str),
}

/// One marked await point the task is (or was last) suspended in.
#[derive(Clone, Copy)]
pub(crate) struct AwaitSlot {
    /// The address of the `Framed` that wrote it (0: empty).
    pub(crate) owner: usize,
    /// The address of the `Framed` one level up when it was written (0 at
    /// the top): a slot left over from a sibling is recognised and skipped.
    pub(crate) parent: usize,
    pub(crate) at: &'static Location<'static>,
    pub(crate) name: AwaitName,
}

/// Where a task panicked, as the panic hook saw it.
#[derive(Clone, Debug)]
pub(crate) struct PanicAt {
    pub(crate) file: String,
    pub(crate) line: u32,
    pub(crate) column: u32,
}

/// The records of a task without any: what a reader sees for a task with
/// no side-table entry.
pub(crate) static NO_RECORDS: Records = Records {
    awaits: Vec::new(),
    panic: None,
};

/// What the side table records for one task.
#[derive(Default)]
pub(crate) struct Records {
    /// Indexed by nesting depth.
    pub(crate) awaits: Vec<Option<AwaitSlot>>,
    /// Where the task panicked (only read once the task ended `PANICKED`).
    pub(crate) panic: Option<Box<PanicAt>>,
}

/// `DiagFlags`: the `Task` handle was dropped.
const HANDLE_DROPPED: u8 = 1;
/// Someone saw the panic (await, `result`, `exception`, `cancel` once done).
const RETRIEVED: u8 = 2;
/// The task ended panicking.
const ENDED_PANICKED: u8 = 4;
/// The task has an entry in the side table.
const HAS_ENTRY: u8 = 8;
/// The main task of `asyncio::run`: the panic hook lets its panics through.
const MAIN: u8 = 16;

/// What a task with frames, a panic or a debug backtrace keeps in the side
/// table.
#[derive(Default)]
pub(crate) struct DiagEntry {
    records: Mutex<Records>,
    backtrace: Option<Backtrace>,
}

impl DiagEntry {
    /// The records, locked (never while user code runs).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Records> {
        crate::lock::lock(&self.records)
    }

    /// The creation backtrace (debug mode only).
    pub(crate) fn backtrace(&self) -> Option<&Backtrace> {
        self.backtrace.as_ref()
    }

    /// Records the marked await point at `depth`.
    pub(crate) fn write(&self, depth: u32, slot: AwaitSlot) {
        let depth = depth as usize;
        let mut st = self.lock();
        if st.awaits.len() <= depth {
            st.awaits.resize(depth + 1, None);
        }
        st.awaits[depth] = Some(slot);
    }

    /// Clears the await point at `depth`, if `owner` wrote it.
    pub(crate) fn clear(&self, depth: u32, owner: usize) {
        let mut st = self.lock();
        if let Some(s) = st.awaits.get_mut(depth as usize) {
            if s.is_some_and(|s| s.owner == owner) {
                *s = None;
            }
        }
    }
}

/// The side table: task id → [`DiagEntry`], sharded by id. Only tasks that
/// use stacks (or run in debug mode) have an entry, so the task core keeps
/// its size; an entry is looked up once per `Framed` future, not per poll.
const TABLE_SHARDS: usize = 16;

type Table = Mutex<HashMap<TaskId, Arc<DiagEntry>>>;

static TABLE: LazyLock<[Table; TABLE_SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::default()));

fn table(id: TaskId) -> &'static Table {
    &TABLE[(id.as_u64() % TABLE_SHARDS as u64) as usize]
}

fn lock_table(id: TaskId) -> MutexGuard<'static, HashMap<TaskId, Arc<DiagEntry>>> {
    crate::lock::lock(table(id))
}

/// The diagnostic part of a task's header: one byte of flags. The frames,
/// the panic location and the debug-mode backtrace are in the side table.
pub(crate) struct DiagFlags {
    flags: AtomicU8,
}

impl DiagFlags {
    /// The flags of a new task; in debug mode, captures the creation
    /// backtrace.
    pub(crate) fn new(id: TaskId, debug: bool) -> Self {
        install_panic_hook();
        if !debug {
            return DiagFlags {
                flags: AtomicU8::new(0),
            };
        }
        let entry = DiagEntry {
            records: Mutex::default(),
            backtrace: Some(Backtrace::force_capture()),
        };
        lock_table(id).insert(id, Arc::new(entry));
        DiagFlags {
            flags: AtomicU8::new(HAS_ENTRY),
        }
    }

    /// The task's entry, if it has one.
    pub(crate) fn entry(&self, id: TaskId) -> Option<Arc<DiagEntry>> {
        if self.flags.load(Ordering::Acquire) & HAS_ENTRY == 0 {
            return None;
        }
        lock_table(id).get(&id).cloned()
    }

    /// The task's entry, made if needed (`None` only if the table is busy
    /// and `wait` is false: the panic hook never waits).
    pub(crate) fn entry_or_insert(&self, id: TaskId, wait: bool) -> Option<Arc<DiagEntry>> {
        let mut table = if wait {
            lock_table(id)
        } else {
            table(id).try_lock().ok()?
        };
        let entry = table.entry(id).or_default().clone();
        drop(table);
        self.flags.fetch_or(HAS_ENTRY, Ordering::AcqRel);
        Some(entry)
    }

    /// The header is dropping: removes the task's entry, if any.
    pub(crate) fn release(&self, id: TaskId) {
        if self.flags.load(Ordering::Acquire) & HAS_ENTRY != 0 {
            let entry = lock_table(id).remove(&id);
            drop(entry); // unlocked
        }
    }

    /// This is the main task of `asyncio::run`.
    pub(crate) fn mark_main(&self) {
        self.flags.fetch_or(MAIN, Ordering::AcqRel);
    }

    fn is_main(&self) -> bool {
        self.flags.load(Ordering::Acquire) & MAIN != 0
    }

    /// The panic (if any) was seen by someone: no "never retrieved" report.
    pub(crate) fn mark_retrieved(&self) {
        self.flags.fetch_or(RETRIEVED, Ordering::AcqRel);
    }

    /// The task ended panicking. Reports the panic as never retrieved if the
    /// `Task` handle is already gone unobserved.
    pub(crate) fn ended_panicked(&self, task: &TaskRef) {
        let prev = self.flags.fetch_or(ENDED_PANICKED, Ordering::AcqRel);
        if prev & (HANDLE_DROPPED | RETRIEVED) == HANDLE_DROPPED {
            report_unretrieved(task);
        }
    }

    /// The `Task` handle is being dropped. Reports the panic as never
    /// retrieved if the task already ended panicking unobserved.
    pub(crate) fn handle_dropped(&self, task: &TaskRef) {
        let prev = self.flags.fetch_or(HANDLE_DROPPED, Ordering::AcqRel);
        if prev & (ENDED_PANICKED | RETRIEVED) == ENDED_PANICKED {
            report_unretrieved(task);
        }
    }
}

/// The task's side-table entry (its records and creation backtrace).
pub(crate) fn entry_of(task: &TaskRef) -> Option<Arc<DiagEntry>> {
    task.core().header().diag.entry(task.id())
}

fn report_unretrieved(task: &TaskRef) {
    let mut ctx =
        ExceptionContext::new("Task exception was never retrieved").with_task(task.clone());
    if let Some(e) = task.core().error() {
        ctx = ctx.with_exception(e);
    }
    call_exception_handler(ctx);
}

/// Where the task panicked, if it ended panicking and the panic hook saw it.
pub(crate) fn panic_location(task: &TaskRef) -> Option<PanicAt> {
    if !task.core().header().state().is_panicked() {
        return None;
    }
    let entry = entry_of(task)?;
    let st = entry.lock();
    st.panic.as_deref().cloned()
}

/// Debug mode, `{:#?}` of a task: the creation backtrace after the repr.
pub(crate) fn fmt_backtrace(task: &TaskRef, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !f.alternate() {
        return Ok(());
    }
    match entry_of(task).as_deref().and_then(DiagEntry::backtrace) {
        Some(bt) => write!(f, "\ncreated at (most recent call first):\n{bt}"),
        _ => Ok(()),
    }
}

/// Installs (once) the crate's panic hook, which works as asyncio's
/// "exceptions belong to the task":
///
/// - a panic while a task of ours is being polled (or its future dropped)
///   records its location in the task (the last frame of
///   `TaskRef::get_stack`) and is **not** passed on to the hook that was
///   there before: nothing is printed. The panic is the task's error; who
///   awaits the task sees it, and a panic nobody sees is reported through
///   the exception handler when the task's last `Task` handle is gone
///   ("Task exception was never retrieved");
/// - any other panic (outside our tasks, in the main task of
///   `asyncio::run`, whose panic goes on to `run`'s caller, or in a done
///   callback) goes to the previous hook unchanged.
///
/// A hook the user installs later replaces this one: panics in tasks are
/// then printed by that hook and their location is not recorded (no
/// `<panic>` frame), but they are still the tasks' errors and still
/// reported when never retrieved.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    // `set_hook` panics on a panicking thread (a task created from a `Drop`
    // during unwinding): try again with the next task instead.
    if ONCE.is_completed() || std::thread::panicking() {
        return;
    }
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_task = Some(with_current(|cur| {
                let task = cur?;
                let diag = &task.core().header().diag;
                if let Some(at) = info.location() {
                    let panic = PanicAt {
                        file: at.file().to_owned(),
                        line: at.line(),
                        column: at.column(),
                    };
                    // try_lock: never wait inside a panic hook.
                    if let Some(entry) = diag.entry_or_insert(task.id(), false) {
                        if let Ok(mut st) = entry.records.try_lock() {
                            st.panic = Some(Box::new(panic));
                        }
                    }
                }
                Some(!diag.is_main())
            }));
            if in_task.flatten() != Some(true) {
                prev(info);
            }
        }));
    });
}
