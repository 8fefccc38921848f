//! Task stacks: asyncio's `get_stack` / `print_stack`, marked await points
//! ([`framed`]) and a dump of every pending task ([`dump_tasks`]).
//!
//! Rust has no coroutine frames to walk: a suspended future is a state
//! machine, not a chain of frames. What a task of ours can show instead is
//! built from three sources, oldest first:
//!
//! 1. **the spawn site**, always: `create_task` and `Builder::spawn` are
//!    `#[track_caller]`, so the `&'static Location` is recorded for free. Its
//!    name is the short name of the task's future (`worker` for
//!    `create_task(worker())`);
//! 2. **the marked await points the task is suspended in now**: wrap a
//!    future with [`framed`] (or [`FramedExt::framed`]) and, while the task is
//!    suspended inside it, a frame with the wrapping call's location is shown.
//!    Nested marked futures give nested frames. The name is the short name of
//!    the awaited future's type, or a label ([`framed_as`]);
//! 3. **the panic's location**, for a task that ended by panicking.
//!
//! ```
//! async fn query() {
//!     asyncio::sleep(10).await
//! }
//!
//! asyncio::Runner::new().current_thread().run(async {
//!     use asyncio::FramedExt;
//!     let task = asyncio::create_task(async { query().framed().await });
//!     asyncio::sleep(0.01).await; // let it start and suspend
//!     let stack = task.get_stack(None);
//!     assert_eq!(stack.len(), 2); // spawn site, then the framed await
//!     assert_eq!(stack[1].name(), "query");
//!     let mut out = Vec::new();
//!     task.print_stack(None, &mut out).unwrap();
//!     println!("{}", String::from_utf8(out).unwrap());
//!     task.cancel();
//! });
//! ```
//!
//! # Cost
//! A frame is written into a small per-task array while its future is
//! polled: one uncontended lock per poll, no allocation (after the array has
//! grown to the deepest nesting seen). The array lives in a side table keyed
//! by task id, looked up once per marked future (at its first poll), so
//! tasks that never use stacks carry nothing. Unmarked code costs nothing.
//!
//! # Limits
//! Only marked await points appear. When one task polls several marked
//! futures side by side (a `join!`, a `select!`), one level shows the one
//! polled last.

use std::backtrace::Backtrace;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::{self, Write};
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Once};
use std::task::{Context, Poll};

use pin_project::{pin_project, pinned_drop};

use crate::debug::{ExceptionContext, call_exception_handler};
use crate::task::core::{self, PANICKED};
use crate::{Error, TaskId, TaskRef};

// -------------------------------------------------------------------- Frame

/// One line of a task's stack: a source location and a name.
///
/// `Display` gives asyncio's (Python's `traceback`) layout:
/// `File "src/main.rs", line 12, in worker`.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(std::future::pending::<()>()); let line = line!();
///     let spawn = &task.get_stack(None)[0];
///     assert_eq!((spawn.file(), spawn.line()), (file!(), line));
///     assert_eq!(spawn.name(), "Pending");
///     assert_eq!(spawn.to_string(), format!("File \"{}\", line {line}, in Pending", file!()));
///     task.cancel();
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    name: Cow<'static, str>,
    file: Cow<'static, str>,
    line: u32,
    column: u32,
}

impl Frame {
    fn at(name: &'static str, at: &'static Location<'static>) -> Self {
        Frame {
            name: Cow::Borrowed(name),
            file: Cow::Borrowed(at.file()),
            line: at.line(),
            column: at.column(),
        }
    }

    /// What is at this location: the short type name of the future spawned
    /// or awaited there (`worker` for `worker()`, an `async` block takes the
    /// name of the function it is written in), a label given to
    /// [`framed_as`], or `<panic>`.
    ///
    /// ```
    /// async fn worker() {}
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(worker());
    ///     assert_eq!(t.get_stack(None)[0].name(), "worker");
    /// });
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source file, as `file!()` spells it.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.get_stack(None)[0].file(), file!());
    /// });
    /// ```
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, from 1.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {}); let line = line!();
    ///     assert_eq!(t.get_stack(None)[0].line(), line);
    /// });
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.get_stack(None)[0].column(), 13);
    /// });
    /// ```
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "File \"{}\", line {}, in {}",
            self.file, self.line, self.name
        )
    }
}

/// The readable part of a type name: `worker` for
/// `app::jobs::worker::{{closure}}`, `Sleep` for `asyncio::sleep::Sleep`,
/// `Map` for `futures_util::future::Map<A, B>`. A slice of the input: no
/// allocation.
fn short_name(type_name: &'static str) -> &'static str {
    // A task spawned on a marked future is named after what it wraps.
    if let Some(inner) = type_name
        .strip_prefix("asyncio::stack::Framed<")
        .and_then(|t| t.strip_suffix('>'))
    {
        return short_name(inner);
    }
    let mut depth = 0usize;
    let mut seg_start = 0;
    let mut best: Option<&'static str> = None;
    let bytes = type_name.as_bytes();
    let mut i = 0;
    let take = |start: usize, end: usize, best: &mut Option<&'static str>| {
        let seg = &type_name[start..end];
        let seg = seg.split('<').next().unwrap_or(seg).trim();
        if !seg.is_empty() && !seg.starts_with('{') && !seg.starts_with('&') {
            *best = Some(seg);
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                take(seg_start, i, &mut best);
                i += 2;
                seg_start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    take(seg_start, bytes.len(), &mut best);
    best.unwrap_or(type_name)
}

// -------------------------------------------------------- per-task storage

/// What a frame is named after.
#[derive(Clone, Copy)]
enum FrameName {
    /// The type of the awaited future (`std::any::type_name::<F>`).
    Type(fn() -> &'static str),
    /// An explicit label.
    Label(&'static str),
}

impl FrameName {
    fn get(self) -> &'static str {
        match self {
            FrameName::Type(f) => short_name(f()),
            FrameName::Label(l) => l,
        }
    }
}

/// One marked await point the task is (or was last) suspended in.
#[derive(Clone, Copy)]
struct AwaitSlot {
    /// The address of the `Framed` that wrote it (0: empty).
    owner: usize,
    /// The address of the `Framed` one level up when it was written (0 at
    /// the top): a slot left over from a sibling is recognised and skipped.
    parent: usize,
    at: &'static Location<'static>,
    name: FrameName,
}

static EMPTY: StackState = StackState {
    awaits: Vec::new(),
    panic: None,
};

#[derive(Default)]
struct StackState {
    /// Indexed by nesting depth.
    awaits: Vec<Option<AwaitSlot>>,
    /// Where the task panicked (only read once the task ended `PANICKED`).
    panic: Option<Box<Frame>>,
}

/// `TaskStack::flags`: the `Task` handle was dropped.
const HANDLE_DROPPED: u8 = 1;
/// Someone saw the panic (await, `result`, `exception`, `cancel`).
const RETRIEVED: u8 = 2;
/// The task ended panicking.
const ENDED_PANICKED: u8 = 4;
/// The task has an entry in the side table.
const HAS_EXTRA: u8 = 8;
/// The main task of `asyncio::run`: the panic hook lets its panics through.
const MAIN: u8 = 16;

/// What a task with frames, a panic or a debug backtrace keeps in the side
/// table.
#[derive(Default)]
pub(crate) struct Extra {
    state: Mutex<StackState>,
    backtrace: Option<Backtrace>,
}

impl Extra {
    fn lock(&self) -> MutexGuard<'_, StackState> {
        crate::lock::lock(&self.state)
    }

    /// The creation backtrace (debug mode only).
    pub(crate) fn backtrace(&self) -> Option<&Backtrace> {
        self.backtrace.as_ref()
    }

    fn write(&self, depth: u32, slot: AwaitSlot) {
        let depth = depth as usize;
        let mut st = self.lock();
        if st.awaits.len() <= depth {
            st.awaits.resize(depth + 1, None);
        }
        st.awaits[depth] = Some(slot);
    }

    fn clear(&self, depth: u32, owner: usize) {
        let mut st = self.lock();
        if let Some(s) = st.awaits.get_mut(depth as usize) {
            if s.is_some_and(|s| s.owner == owner) {
                *s = None;
            }
        }
    }
}

/// The side table: task id → [`Extra`], sharded by id. Only tasks that use
/// stacks (or run in debug mode) have an entry, so the task core keeps its
/// size; an entry is looked up once per `Framed` future, not per poll.
const TABLE_SHARDS: usize = 16;

type Table = Mutex<HashMap<TaskId, Arc<Extra>>>;

static TABLE: LazyLock<[Table; TABLE_SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::default()));

fn table(id: TaskId) -> &'static Table {
    &TABLE[(id.as_u64() % TABLE_SHARDS as u64) as usize]
}

fn lock_table(id: TaskId) -> MutexGuard<'static, HashMap<TaskId, Arc<Extra>>> {
    crate::lock::lock(table(id))
}

/// The stack part of a task's header: one byte of flags. The frames, the
/// panic location and the debug-mode backtrace are in the side table.
pub(crate) struct TaskStack {
    flags: AtomicU8,
}

impl TaskStack {
    /// The stack of a new task; in debug mode, captures the creation
    /// backtrace.
    pub(crate) fn new(id: TaskId, debug: bool) -> Self {
        install_panic_hook();
        if !debug {
            return TaskStack {
                flags: AtomicU8::new(0),
            };
        }
        let extra = Extra {
            state: Mutex::default(),
            backtrace: Some(Backtrace::force_capture()),
        };
        lock_table(id).insert(id, Arc::new(extra));
        TaskStack {
            flags: AtomicU8::new(HAS_EXTRA),
        }
    }

    /// The task's entry, if it has one.
    fn extra(&self, id: TaskId) -> Option<Arc<Extra>> {
        if self.flags.load(Ordering::Acquire) & HAS_EXTRA == 0 {
            return None;
        }
        lock_table(id).get(&id).cloned()
    }

    /// The task's entry, made if needed (`None` only if the table is busy
    /// and `wait` is false: the panic hook never waits).
    fn extra_or_insert(&self, id: TaskId, wait: bool) -> Option<Arc<Extra>> {
        let mut table = if wait {
            lock_table(id)
        } else {
            table(id).try_lock().ok()?
        };
        let extra = table.entry(id).or_default().clone();
        drop(table);
        self.flags.fetch_or(HAS_EXTRA, Ordering::AcqRel);
        Some(extra)
    }

    /// The header is dropping: removes the task's entry, if any.
    pub(crate) fn release(&self, id: TaskId) {
        if self.flags.load(Ordering::Acquire) & HAS_EXTRA != 0 {
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

/// The task's side-table entry, for its creation backtrace (debug mode).
pub(crate) fn extra_of(task: &TaskRef) -> Option<Arc<Extra>> {
    task.core().header().stack.extra(task.id())
}

fn report_unretrieved(task: &TaskRef) {
    let mut ctx =
        ExceptionContext::new("Task exception was never retrieved").with_task(task.clone());
    if let Some(e) = task.core().error() {
        ctx = ctx.with_exception(e);
    }
    call_exception_handler(ctx);
}

// ------------------------------------------------------------- panic hook

/// Where the task panicked, if it ended panicking and the panic hook saw it.
pub(crate) fn panic_location(task: &TaskRef) -> Option<Frame> {
    if task.core().header().state() & PANICKED == 0 {
        return None;
    }
    let extra = extra_of(task)?;
    let st = extra.lock();
    st.panic.as_deref().cloned()
}

/// Installs (once) the crate's panic hook, which works as asyncio's
/// "exceptions belong to the task":
///
/// - a panic while a task of ours is being polled (or its future dropped)
///   records its location in the task (the last frame of
///   [`TaskRef::get_stack`]) and is **not** passed on to the hook that was
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
            let in_task = core::try_with_current(|cur| {
                let task = cur?;
                let stack = &task.core().header().stack;
                if let Some(at) = info.location() {
                    let frame = Frame {
                        name: Cow::Borrowed("<panic>"),
                        file: Cow::Owned(at.file().to_owned()),
                        line: at.line(),
                        column: at.column(),
                    };
                    // try_lock: never wait inside a panic hook.
                    if let Some(extra) = stack.extra_or_insert(task.id(), false) {
                        if let Ok(mut st) = extra.state.try_lock() {
                            st.panic = Some(Box::new(frame));
                        }
                    }
                }
                Some(!stack.is_main())
            });
            if in_task.flatten() != Some(true) {
                prev(info);
            }
        }));
    });
}

// ------------------------------------------------------------------ framed

thread_local! {
    /// While a `Framed` is polled: (its depth + 1, its address), i.e. where
    /// the next marked future down goes and who its parent is.
    static LEVEL: Cell<(u32, usize)> = const { Cell::new((0, 0)) };
}

/// Marks an await point: while the current task is suspended inside `fut`,
/// its stack ([`TaskRef::get_stack`]) shows a frame with this call's location,
/// named after `fut`'s type. Takes anything awaitable, tasks included.
///
/// No allocation per poll; outside a task of ours it simply polls `fut`.
///
/// ```
/// asyncio::Runner::new().current_thread().run(async {
///     let task = asyncio::create_task(async {
///         asyncio::framed(asyncio::sleep(10)).await; let line = line!();
///         line
///     });
///     asyncio::sleep(0.01).await;
///     let stack = task.get_stack(None);
///     assert_eq!(stack.last().unwrap().name(), "Sleep");
///     task.cancel();
/// });
/// ```
#[track_caller]
pub fn framed<F: IntoFuture>(fut: F) -> Framed<F::IntoFuture> {
    Framed::new(
        fut.into_future(),
        FrameName::Type(std::any::type_name::<F::IntoFuture>),
    )
}

/// [`framed`] with an explicit frame name.
///
/// ```
/// asyncio::Runner::new().current_thread().run(async {
///     let task = asyncio::create_task(asyncio::framed_as("waiting for the lock", asyncio::sleep(10)));
///     asyncio::sleep(0.01).await;
///     assert_eq!(task.get_stack(None)[1].name(), "waiting for the lock");
///     task.cancel();
/// });
/// ```
#[track_caller]
pub fn framed_as<F: IntoFuture>(label: &'static str, fut: F) -> Framed<F::IntoFuture> {
    Framed::new(fut.into_future(), FrameName::Label(label))
}

/// `fut.framed()` and `fut.framed_as(label)`: [`framed`] and [`framed_as`]
/// as methods, on anything awaitable.
///
/// ```
/// use asyncio::FramedExt;
///
/// async fn fetch() -> u32 {
///     asyncio::sleep(0.01).framed_as("network").await;
///     7
/// }
///
/// asyncio::run(async {
///     assert_eq!(fetch().framed().await, 7);
/// });
/// ```
pub trait FramedExt: IntoFuture + Sized {
    /// See [`framed`].
    ///
    /// ```
    /// use asyncio::FramedExt;
    /// asyncio::run(async { asyncio::sleep(0).framed().await });
    /// ```
    #[track_caller]
    fn framed(self) -> Framed<Self::IntoFuture> {
        Framed::new(
            self.into_future(),
            FrameName::Type(std::any::type_name::<Self::IntoFuture>),
        )
    }

    /// See [`framed_as`].
    ///
    /// ```
    /// use asyncio::FramedExt;
    /// asyncio::run(async { asyncio::sleep(0).framed_as("nap").await });
    /// ```
    #[track_caller]
    fn framed_as(self, label: &'static str) -> Framed<Self::IntoFuture> {
        Framed::new(self.into_future(), FrameName::Label(label))
    }
}

impl<F: IntoFuture> FramedExt for F {}

const UNSET: u32 = u32::MAX;

/// A future marked as an await point: see [`framed`].
///
/// ```
/// let fut: asyncio::futures::Framed<_> = asyncio::framed(async { 1 });
/// assert_eq!(asyncio::run(fut), 1);
/// ```
#[pin_project(PinnedDrop)]
#[must_use = "futures do nothing unless awaited"]
pub struct Framed<F> {
    #[pin]
    inner: F,
    at: &'static Location<'static>,
    name: FrameName,
    /// The depth of its slot, while it has one.
    depth: u32,
    /// The side-table entry of the task it was last polled in: looked up
    /// once, not at every poll.
    entry: Option<(TaskId, Arc<Extra>)>,
}

impl<F> Framed<F> {
    #[track_caller]
    fn new(inner: F, name: FrameName) -> Self {
        Framed {
            inner,
            at: Location::caller(),
            name,
            depth: UNSET,
            entry: None,
        }
    }
}

impl<F> fmt::Debug for Framed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("name", &self.name.get())
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Puts the thread's level back when the inner poll returns or unwinds.
struct LevelGuard((u32, usize));

impl Drop for LevelGuard {
    fn drop(&mut self) {
        LEVEL.with(|l| l.set(self.0));
    }
}

impl<F: Future> Future for Framed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let owner = std::ptr::from_ref::<Self>(&self) as usize;
        let this = self.project();
        let entry = this.entry;
        let entered = core::with_current(|cur| {
            let task = cur?;
            let id = task.id();
            if entry.as_ref().is_none_or(|(tid, _)| *tid != id) {
                let extra = task.core().header().stack.extra_or_insert(id, true)?;
                *entry = Some((id, extra));
            }
            let (_, extra) = entry.as_ref()?;
            let (depth, parent) = LEVEL.with(Cell::get);
            let slot = AwaitSlot {
                owner,
                parent,
                at: this.at,
                name: *this.name,
            };
            extra.write(depth, slot);
            LEVEL.with(|l| l.set((depth + 1, owner)));
            Some((depth, parent))
        });
        let Some((depth, parent)) = entered else {
            return this.inner.poll(cx);
        };
        *this.depth = depth;
        let guard = LevelGuard((depth, parent));
        let out = this.inner.poll(cx);
        drop(guard);
        if out.is_ready() {
            leave(depth, owner, entry.as_ref());
            *this.depth = UNSET;
        }
        out
    }
}

#[pinned_drop]
impl<F> PinnedDrop for Framed<F> {
    fn drop(self: Pin<&mut Self>) {
        // While a panic unwinds out of the task the frame stays: it is part
        // of the panicked task's traceback.
        if self.depth != UNSET && !std::thread::panicking() {
            let owner = std::ptr::from_ref::<Self>(&self) as usize;
            leave(self.depth, owner, self.entry.as_ref());
        }
    }
}

/// Clears the slot `owner` wrote, if the task it wrote it in is being
/// polled here (a future dropped with its finished task needs no clearing:
/// a done task shows no await frames).
fn leave(depth: u32, owner: usize, entry: Option<&(TaskId, Arc<Extra>)>) {
    let Some((id, extra)) = entry else { return };
    if core::with_current(|cur| cur.is_some_and(|t| t.id() == *id)) {
        extra.clear(depth, owner);
    }
}

// --------------------------------------------------------- get/print_stack

impl TaskRef {
    /// The task's frames, oldest first (asyncio's `get_stack(limit=)`): its
    /// spawn site; while it is pending, the [`framed`] await points it is
    /// suspended in; if it panicked, the marked await points it panicked in
    /// and the panic's location. `limit` keeps the newest `limit` frames.
    ///
    /// ```
    /// use asyncio::FramedExt;
    ///
    /// asyncio::Runner::new().current_thread().run(async {
    ///     let task = asyncio::create_task(async {
    ///         asyncio::sleep(10).framed_as("outer").await
    ///     });
    ///     asyncio::sleep(0.01).await;
    ///     let names: Vec<String> = task.get_stack(None).iter().map(|f| f.name().into()).collect();
    ///     assert_eq!(names[1], "outer");
    ///     assert_eq!(task.get_stack(Some(1))[0].name(), "outer");
    ///     assert!(task.get_stack(Some(0)).is_empty());
    ///     task.cancel();
    /// });
    /// ```
    pub fn get_stack(&self, limit: Option<usize>) -> Vec<Frame> {
        let header = self.core().header();
        let state = header.state();
        let mut frames = vec![Frame::at(short_name(self.get_coro()), header.spawned_at)];
        if !header.is_done() || state & PANICKED != 0 {
            let extra = header.stack.extra(self.id());
            let st = extra.as_ref().map(|e| e.lock());
            let st = st.as_deref().unwrap_or(&EMPTY);
            let mut parent = 0;
            for slot in st.awaits.iter() {
                match slot {
                    Some(s) if s.parent == parent => {
                        frames.push(Frame::at(s.name.get(), s.at));
                        parent = s.owner;
                    }
                    _ => break,
                }
            }
            if state & PANICKED != 0 {
                if let Some(p) = &st.panic {
                    frames.push((**p).clone());
                }
            }
        }
        if let Some(limit) = limit {
            let skip = frames.len().saturating_sub(limit);
            frames.drain(..skip);
        }
        frames
    }

    /// Writes the task's stack in asyncio's layout (`print_stack(limit=,
    /// file=)`): a header line — `Stack for <Task …> (most recent call
    /// last):`, `Traceback for <Task …> (most recent call last):` for a task
    /// that panicked, `No stack for <Task …>` when there are no frames — then
    /// one `  File "path", line N, in name` line a frame, then for a panicked
    /// task the error. In debug mode, the task's creation backtrace follows.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let task = asyncio::Task::builder().name("idle").spawn(std::future::pending::<()>());
    ///     let line = line!() - 1;
    ///     let mut out = Vec::new();
    ///     task.print_stack(None, &mut out).unwrap();
    ///     let text = String::from_utf8(out).unwrap();
    ///     let lines: Vec<&str> = text.lines().collect();
    ///     assert_eq!(lines[0], format!("Stack for {task} (most recent call last):"));
    ///     assert_eq!(lines[1], format!("  File \"{}\", line {line}, in Pending", file!()));
    ///     task.cancel();
    /// });
    /// ```
    pub fn print_stack(&self, limit: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
        let frames = self.get_stack(limit);
        let header = self.core().header();
        let panicked = header.state() & PANICKED != 0;
        if frames.is_empty() {
            writeln!(out, "No stack for {self}")?;
        } else if panicked {
            writeln!(out, "Traceback for {self} (most recent call last):")?;
        } else {
            writeln!(out, "Stack for {self} (most recent call last):")?;
        }
        for frame in &frames {
            writeln!(out, "  {frame}")?;
        }
        if panicked {
            if let Some(e @ Error::Panicked(_)) = self.core().error() {
                writeln!(out, "{e}")?;
            }
        }
        if let Some(bt) = extra_of(self).as_deref().and_then(Extra::backtrace) {
            writeln!(out, "Task created at (most recent call first):\n{bt}")?;
        }
        Ok(())
    }
}

/// Debug mode, `{:#?}` of a task: the creation backtrace after the repr.
pub(crate) fn fmt_backtrace(task: &TaskRef, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !f.alternate() {
        return Ok(());
    }
    match extra_of(task).as_deref().and_then(Extra::backtrace) {
        Some(bt) => write!(f, "\ncreated at (most recent call first):\n{bt}"),
        _ => Ok(()),
    }
}

/// Writes the stack of every pending task of ours — on the current runtime,
/// or on every runtime when called outside one (from a watchdog thread) —
/// in task id order, a blank line between two: the asyncio-side answer to
/// "what is my hung service doing?".
///
/// ```
/// use asyncio::FramedExt;
///
/// asyncio::Runner::new().current_thread().run(async {
///     let stuck = asyncio::Task::builder()
///         .name("stuck")
///         .spawn(std::future::pending::<()>().framed_as("waiting forever"));
///     asyncio::sleep(0.01).await;
///     let mut out = Vec::new();
///     asyncio::dump_tasks(&mut out).unwrap();
///     let text = String::from_utf8(out).unwrap();
///     assert!(text.contains("name='stuck'") && text.contains("in waiting forever"));
///     stuck.cancel();
/// });
/// ```
pub fn dump_tasks(out: &mut dyn Write) -> io::Result<()> {
    let mut tasks = crate::all_tasks();
    tasks.sort_by_key(|t| t.id());
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        task.print_stack(None, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names() {
        assert_eq!(short_name("app::jobs::worker::{{closure}}"), "worker");
        assert_eq!(short_name("m::main::{{closure}}::{{closure}}"), "main");
        assert_eq!(short_name("asyncio::sleep::Sleep"), "Sleep");
        assert_eq!(
            short_name("futures_util::future::Map<a::B<c::D>, e::F>"),
            "Map"
        );
        assert_eq!(short_name("core::future::pending::Pending<()>"), "Pending");
        assert_eq!(short_name("i32"), "i32");
        assert_eq!(
            short_name("asyncio::stack::Framed<asyncio::sleep::Sleep<()>>"),
            "Sleep"
        );
    }
}
