//! `task_group(body)` and `TaskGroup` (asyncio 3.11's `async with
//! asyncio.TaskGroup() as tg:`).
//!
//! # Watching the children
//! Each child is counted in [`Shared::count`] before it is spawned and
//! uncounted once, when it ended: by its done callback, or, for a child
//! watched late, by the poller itself if the child had ended by then.
//!
//! A child the body creates in its own poll (or its making), on the
//! poller's thread, on a runtime of several workers, is watched *late*:
//! listed strong in [`State::unwatched`], and given its done callback
//! (ahead of any other it has by then) — or, already ended, uncounted with
//! its failure — by the poller right after that poll, before it decides
//! anything ([`Shared::watch`]), or in `create_task` once the batch is
//! [`UNWATCHED_MAX`] long. Any other child (made by a sibling, another
//! task, or on the current-thread runtime) gets its callback at the spawn.
//! Why: see [`Shared::watch`]. The invariants this keeps:
//!
//! 1. **A shutdown reaches every running child.** From its listing to its
//!    end a child is in [`State::children`] or [`State::unwatched`]; the
//!    watch moves it from one to the other in one lock, and a shutdown
//!    takes both lists in its lock ([`State::alive`]).
//! 2. **Every child is uncounted exactly once, and the poller decides on a
//!    count with no ended child watched late still in it.** A late watch
//!    either registers the callback (which will uncount) or gets it back
//!    because the child is done (and uncounts it itself); `unwatched` is
//!    empty when the poller reads the count to finish, and a release done
//!    by the poller needs no wake.
//! 3. **The group's callback runs first** among the done callbacks of a
//!    child still running when it is watched, as when it was registered at
//!    the spawn ([`TaskRef::push_done_callback_first`]). A child that ended
//!    during the poll that made it has run the callbacks the body gave it
//!    by then, and the group learns of its end when that poll returns (as
//!    `gather` learns at its first poll). On the current-thread runtime
//!    nothing differs from a watch at the spawn, as no child runs during
//!    the body's poll.
//! 4. **No user code or drop under the lock.** The batch of strong
//!    references is taken out under the lock and dropped unlocked (dropping
//!    one may drop a child's output).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pin_project::{pin_project, pinned_drop};

use super::node::{self, Node, Registration};
use crate::error::{Error, ExceptionGroup, FailedError, PanicError};
use crate::task::{Callback, ChildDone, DISCARDED_RESULT, WeakTaskRef, drop_contained};
use crate::{Task, TaskRef};

/// Runs `body` with a new [`TaskGroup`] and waits until the body returned
/// and every task of the group ended (asyncio's `async with TaskGroup() as
/// tg:`). The body runs in place, in the caller's task; the group's
/// children are tasks of their own ([`TaskGroup::create_task`]).
///
/// Resolves to `Ok(body's value)` when nothing failed. The first failure (a
/// child panicking, a [`try_create_task`](TaskGroup::try_create_task) child
/// returning `Err`, or the body panicking) cancels the body and every other
/// child, waits for them (their [`on_cancel`](crate::on_cancel) cleanups
/// included), and the group resolves to `Err(Error::Group(ExceptionGroup))`
/// listing every failure: the children's in the order they happened, then
/// the body's. A child that ends cancelled is not a failure. Cancelling the
/// task that awaits the group (or an enclosing timeout scope's deadline)
/// cancels the body and every child and waits for them before the
/// cancellation goes on, also when the body had already returned (its value
/// is then dropped, as asyncio's `__aexit__` raises `CancelledError`).
///
/// When to use it instead of [`gather`](crate::gather()): when the tasks
/// belong together, so that one failing should stop the others and none may
/// outlive the block.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let r = asyncio::task_group(|tg| async move {
///     let a = tg.create_task(asyncio::sleep_with(1, "a"));
///     let b = tg.create_task(asyncio::sleep_with(2, "b"));
///     (a, b)
/// })
/// .await;
/// let (a, b) = r.unwrap();
/// assert_eq!((a.result().unwrap(), b.result().unwrap()), ("a", "b"));
///
/// let r = asyncio::task_group(|tg| async move {
///     tg.create_task(async { panic!("boom") });
///     asyncio::sleep(10).await; // cancelled by the failure
/// })
/// .await;
/// let err = r.unwrap_err();
/// assert_eq!(err.to_string(), "unhandled errors in a TaskGroup (1 sub-exception)");
/// # }
/// ```
///
/// # Cancel safety
/// Dropping the future before it resolved (rather than cancelling its
/// task) drops the body without its cleanups and cancels every child
/// without waiting for them.
///
/// # Errors
/// [`Error::Group`] when the body or a child failed: its
/// [`ExceptionGroup::errors`] are each [`Error::Panicked`] (a panic) or
/// [`Error::Failed`] (a `try_create_task` child's `Err`). Nothing else: a
/// cancellation from outside does not resolve the group to
/// [`Error::Cancelled`], it goes on to the enclosing task or scope (the task
/// ends cancelled, a timeout scope returns its `Err(Timeout)`).
///
/// # Panics
/// A panic of the body is caught and reported as one of the group's errors,
/// not resumed. Polling again after it resolved panics.
pub fn task_group<B, Fut>(body: B) -> TaskGroupRun<B, Fut>
where
    B: FnOnce(TaskGroup) -> Fut,
    Fut: Future,
{
    TaskGroupRun {
        group: TaskGroup {
            shared: Arc::new(Shared {
                node: Node::new(),
                count: AtomicUsize::new(OPEN),
                state: Mutex::new(State {
                    children: Vec::new(),
                    unwatched: Vec::new(),
                    sweep_at: SWEEP_MIN,
                    errors: Vec::new(),
                    waker: None,
                }),
            }),
        },
        body: Some(body),
        fut: None,
        value: None,
        body_error: None,
        body_done: false,
        reg: None,
        watch_late: false,
        started: false,
        done: false,
        cancelled: false,
    }
}

/// A task group's handle: makes its children. A cheap `Clone`; the body and
/// the children may keep it (a child may add siblings).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let n = asyncio::task_group(|tg| async move {
///     let t = tg.clone();
///     tg.create_task(async move {
///         // a child adds a sibling: the group waits for it too
///         t.create_task(asyncio::sleep(1));
///     });
///     1
/// })
/// .await;
/// assert_eq!(n.unwrap(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct TaskGroup {
    shared: Arc<Shared>,
}

struct Shared {
    /// The body's scope.
    node: Arc<Node>,
    /// The phase and the number of children created and not yet ended, in
    /// one word (`live * ONE + phase`): a child is counted (or refused) and
    /// the group finishes by one atomic step each, and a child that ends is
    /// uncounted without the lock (the lock is taken only by the last one
    /// to end, or one that failed: what wakes the poller). Counted before
    /// it is spawned, so a child that ends before it is listed still is.
    ///
    /// The phase moves Open → ShuttingDown → Finished (or straight to
    /// Finished), ShuttingDown only under the lock, so that a child listed
    /// under the lock is either seen by the shutdown or sees it. Finished
    /// is set only with no child counted (or when the run is dropped), and
    /// no child is counted after it.
    count: AtomicUsize,
    state: Mutex<State>,
}

/// The phases, in the low bits of [`Shared::count`].
const OPEN: usize = 0;
const SHUTTING_DOWN: usize = 1;
const FINISHED: usize = 2;
const PHASE: usize = 3;
/// One child in [`Shared::count`].
const ONE: usize = 4;
/// The fewest children [`State::children`] holds before its first sweep.
const SWEEP_MIN: usize = 32;
/// The most children [`State::unwatched`] holds: past it, the body's
/// create_task watches them in place (a body that makes many children in
/// one poll does not keep every one's output alive till the poll's end).
const UNWATCHED_MAX: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Open,
    ShuttingDown,
    Finished,
}

fn phase(count: usize) -> Phase {
    match count & PHASE {
        OPEN => Phase::Open,
        SHUTTING_DOWN => Phase::ShuttingDown,
        _ => Phase::Finished,
    }
}

/// The group's bookkeeping, behind one lock.
///
/// Each child is listed once, after it was spawned, as a weak reference
/// (what the group needs of it is only to cancel it while it runs): a
/// child that ends costs the group no lock and no write of the list, and
/// its core is dropped as soon as its last handle is (the list does not
/// keep it, nor its output, alive). The references of the children whose
/// core is gone are swept out when the list has doubled since the last
/// sweep: a child costs the group amortized O(1), and a long-lived group
/// holds at most about twice the references of its children still alive.
struct State {
    /// The children listed, in creation order (some may have ended).
    children: Vec<WeakTaskRef>,
    /// The children the body created in the poll under way, on the
    /// poller's thread, not yet watched (see [`Shared::watch`]): held
    /// strong, so that the poller can still read how each ended. Empty
    /// between two polls of the group.
    unwatched: Vec<TaskRef>,
    /// The length of `children` at which the next sweep runs.
    sweep_at: usize,
    /// The children's failures, in the order they happened.
    errors: Vec<Error>,
    /// The group's poller, woken when the last child ends or one fails
    /// (not at every child's end: only those two change what it decides).
    waker: Option<Waker>,
}

impl State {
    /// Sweeps out the references of the children whose core is gone, if
    /// the list has doubled since the last sweep. (Dropping such a weak
    /// reference frees at most the core's emptied allocation: no user
    /// code runs, the core itself was dropped already.)
    fn sweep(&mut self) {
        if self.children.len() < self.sweep_at {
            return;
        }
        self.children.retain(|child| !child.is_gone());
        self.sweep_at = (2 * self.children.len()).max(SWEEP_MIN);
    }

    /// The children whose core is still alive (to cancel them, unlocked,
    /// with [`cancel_running`]).
    fn alive(&self) -> Vec<TaskRef> {
        self.children
            .iter()
            .filter_map(WeakTaskRef::upgrade)
            .chain(self.unwatched.iter().cloned())
            .collect()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }

    /// Children created and not yet ended.
    fn live(&self) -> usize {
        self.count.load(Ordering::Acquire) / ONE
    }

    /// Counts a child about to be spawned, or panics as asyncio raises.
    fn reserve(&self) {
        let mut now = self.count.load(Ordering::Acquire);
        loop {
            match phase(now) {
                Phase::Open => {
                    match self.count.compare_exchange_weak(
                        now,
                        now + ONE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return,
                        Err(actual) => now = actual,
                    }
                }
                Phase::ShuttingDown => panic!(
                    "TaskGroup is shutting down: a task of the group failed or the group was cancelled; no new task can join it"
                ),
                Phase::Finished => panic!(
                    "TaskGroup is finished: create tasks inside the group's body or its tasks, while it runs"
                ),
            }
        }
    }

    /// Lists a spawned child; a child that joins a group already shutting
    /// down is cancelled at once.
    fn list(&self, task: &TaskRef) {
        let cancel = {
            let mut s = self.lock();
            if !task.done() {
                s.sweep();
                s.children.push(task.downgrade());
            }
            phase(self.count.load(Ordering::Acquire)) != Phase::Open
        };
        if cancel {
            task.cancel();
        }
    }

    /// Lists a child the body created in its poll on the poller's thread,
    /// unwatched (see [`Shared::watch`]); one that joins a group already
    /// shutting down is cancelled at once. Past [`UNWATCHED_MAX`] children
    /// the batch is watched now (`self` is the poller's, so this is still
    /// the poller's poll).
    fn list_unwatched(self: &Arc<Self>, task: &TaskRef) {
        let (cancel, batch) = {
            let mut s = self.lock();
            s.unwatched.push(task.clone());
            let cancel = phase(self.count.load(Ordering::Acquire)) != Phase::Open;
            (cancel, self.take_unwatched(&mut s, UNWATCHED_MAX))
        };
        if cancel {
            task.cancel();
        }
        self.watch(batch);
    }

    /// Takes out the unwatched children if there are at least `min`, and
    /// lists (weakly) those not ended yet, in the same lock: a shutdown
    /// sees each child in one list or the other.
    fn take_unwatched(&self, s: &mut State, min: usize) -> Vec<TaskRef> {
        if s.unwatched.len() < min.max(1) {
            return Vec::new();
        }
        let batch = std::mem::take(&mut s.unwatched);
        for child in &batch {
            if !child.done() {
                s.sweep();
                s.children.push(child.downgrade());
            }
        }
        batch
    }

    /// Watches a batch of children taken out of [`State::unwatched`]
    /// (unlocked; on the poller's thread, in its poll): each gets its done
    /// callback (ahead of any the body added), or, already ended, is
    /// uncounted here, with its failure if it failed. No wake: the poller
    /// reads the count after this.
    ///
    /// Why not at the spawn, as for the other children: on the multi-thread
    /// runtime the children run on the other worker while the body creates
    /// more, and a callback per child makes each child's end write the
    /// group's count and its `Arc`'s count, the words the body writes for
    /// the next child: the cache line went back and forth between the two
    /// workers at every child (the group cost 1.2-1.4x a `gather` of the
    /// same children, with the same instructions). A child that ended
    /// before this needs no callback and writes nothing of the group, as
    /// `gather` registers its callbacks only at its first poll.
    fn watch(self: &Arc<Self>, batch: Vec<TaskRef>) {
        if batch.is_empty() {
            return;
        }
        let mut ended = 0;
        let mut failures = Vec::new();
        for child in &batch {
            let watcher: Arc<dyn ChildDone> = self.clone();
            if let Err((_, cb)) = child.push_done_callback_first(Callback::Child(watcher, 0)) {
                drop(cb);
                match failure(child) {
                    Some(e) => failures.push(e),
                    None => ended += 1,
                }
            }
        }
        if ended > 0 {
            self.count.fetch_sub(ended * ONE, Ordering::AcqRel);
        }
        for e in failures {
            let shutdown = {
                let mut s = self.lock();
                s.errors.push(e);
                let shutdown = self.begin_shutdown(&mut s);
                self.count.fetch_sub(ONE, Ordering::AcqRel);
                shutdown
            };
            self.shutdown(shutdown);
        }
        // Unlocked, and contained: the batch may hold the last reference
        // to a child whose handle the body dropped, and dropping its core
        // drops its output, whose destructor is user code (a panic there
        // is reported, as the harness does for a discarded result, instead
        // of being thrown into the task awaiting the group).
        drop_contained(batch, DISCARDED_RESULT);
    }

    /// Uncounts a child that was counted and is gone (it ended, or it could
    /// not be spawned): the poller is woken if it was the last one, or if
    /// it `failed`.
    fn release(&self, failure: Option<Error>) {
        let Some(e) = failure else {
            if self.count.fetch_sub(ONE, Ordering::AcqRel) / ONE == 1 {
                // The last one: the poller reads the count under the lock
                // before it leaves its waker there, so either it saw this
                // child gone or its waker is there now.
                let waker = self.lock().waker.take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
            return;
        };
        let (waker, shutdown) = {
            let mut s = self.lock();
            s.errors.push(e);
            let shutdown = self.begin_shutdown(&mut s);
            self.count.fetch_sub(ONE, Ordering::AcqRel);
            (s.waker.take(), shutdown)
        };
        self.shutdown(shutdown);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Moves to shutting down (once; under the lock, `s`); the children to
    /// cancel.
    fn begin_shutdown(&self, s: &mut State) -> Option<Vec<TaskRef>> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (phase(now) == Phase::Open).then_some(now | SHUTTING_DOWN)
            })
            .ok()?;
        Some(s.alive())
    }

    /// Moves to finished (under the lock) if no child is counted.
    fn finish(&self, _: &mut State) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now / ONE == 0).then_some(FINISHED)
            })
            .is_ok()
    }

    /// Cancels the body's scope and the children (unlocked).
    fn shutdown(&self, children: Option<Vec<TaskRef>>) {
        let Some(children) = children else { return };
        self.node.cancel_own();
        cancel_running(children);
    }
}

/// Cancels those of `children` that have not ended (the list keeps some
/// that did). What they end with is read by the group's done callback.
fn cancel_running(children: Vec<TaskRef>) {
    for child in &children {
        if !child.done() {
            child.cancel();
        }
    }
    // A child that ended meanwhile may be held by this list only (its
    // handles dropped): contained, as in `Shared::watch`.
    drop_contained(children, DISCARDED_RESULT);
}

/// What an ended child counts as for the group: its error if it failed.
fn failure(task: &TaskRef) -> Option<Error> {
    // Only a task that panicked (a `try_create_task` child's `Err`
    // included) has an error: the others skip the task's lock.
    match task.panicked() {
        true => task.exception().ok().flatten(),
        false => None, // returned, or cancelled: not a failure
    }
}

impl ChildDone for Shared {
    /// A child ended (its done callback).
    fn child_done(&self, _: usize, task: &TaskRef) {
        self.release(failure(task));
    }
}

thread_local! {
    /// The group whose body this thread is polling (or making), if any: a
    /// child it creates is watched after the poll ([`Shared::watch`]).
    static POLLING: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` (the body's making or poll) with `shared` as [`POLLING`] if
/// `late` (else with no group there: its children are watched at once).
fn polling<R>(shared: &Arc<Shared>, late: bool, f: impl FnOnce() -> R) -> R {
    if !late {
        return f();
    }
    struct Restore(*const Shared);
    impl Drop for Restore {
        fn drop(&mut self) {
            POLLING.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(POLLING.with(|p| p.replace(Arc::as_ptr(shared))));
    f()
}

/// `true` when this thread is polling (or making) `shared`'s body.
fn is_polling(shared: &Arc<Shared>) -> bool {
    POLLING.with(|p| std::ptr::eq(p.get(), Arc::as_ptr(shared)))
}

impl TaskGroup {
    /// Creates a child task running `fut` (asyncio's `tg.create_task(coro)`).
    /// The child fails the group if it panics.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let sum = asyncio::task_group(|tg| async move {
    ///     let t = tg.create_task(async { 40 });
    ///     t.await.unwrap() + 2
    /// })
    /// .await;
    /// assert_eq!(sum.unwrap(), 42);
    /// # }
    /// ```
    ///
    /// # Panics
    /// With `TaskGroup is shutting down` after a failure (or while the group
    /// is being cancelled), and `TaskGroup is finished` once the group
    /// resolved, before anything is spawned; outside a Tokio runtime as
    /// [`create_task`](crate::create_task) does.
    #[track_caller]
    pub fn create_task<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_child(&self.shared, Task::builder(), fut)
    }

    /// Creates a child task running `fut`, whose `Err` fails it: `Ok(v)` is
    /// the task's output `v`; `Err(e)` ends the task with
    /// [`Error::Failed`] (`FailedError::downcast_ref::<E>()` gives `e`
    /// back) and fails the group, as a raised exception does in asyncio.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use asyncio::Error;
    ///
    /// let r = asyncio::task_group(|tg| async move {
    ///     tg.try_create_task(async { Err::<(), _>(std::io::Error::other("refused")) });
    /// })
    /// .await;
    /// let Err(Error::Group(g)) = r else { panic!("expected a group error") };
    /// let Error::Failed(e) = &g.errors()[0] else { panic!("expected a failure") };
    /// assert_eq!(e.to_string(), "refused");
    /// assert!(e.downcast_ref::<std::io::Error>().is_some());
    /// # }
    /// ```
    ///
    /// # Panics
    /// As [`create_task`](Self::create_task).
    #[track_caller]
    pub fn try_create_task<F, T, E>(&self, fut: F) -> Task<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.builder().try_spawn(fut)
    }

    /// A builder for a named child (the same options as
    /// [`Task::builder`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// asyncio::task_group(|tg| async move {
    ///     let t = tg.builder().name("worker-1").spawn(async {});
    ///     assert_eq!(t.get_name(), "worker-1");
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn builder(&self) -> GroupBuilder {
        GroupBuilder {
            group: self.clone(),
            builder: Task::builder(),
        }
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.lock();
        let count = self.shared.count.load(Ordering::Acquire);
        // Those unwatched that ended are still counted: not shown.
        let ended = s.unwatched.iter().filter(|t| t.done()).count();
        f.debug_struct("TaskGroup")
            .field("phase", &phase(count))
            .field("tasks", &(count / ONE - ended))
            .field("errors", &s.errors.len())
            .finish()
    }
}

/// Makes a child of a task group with options (see
/// [`TaskGroup::builder`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// asyncio::task_group(|tg| async move {
///     let b: asyncio::GroupBuilder = tg.builder().name("x");
///     assert_eq!(b.spawn(async { 1 }).await.unwrap(), 1);
/// })
/// .await
/// .unwrap();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until spawn is called"]
pub struct GroupBuilder {
    group: TaskGroup,
    builder: crate::Builder,
}

impl GroupBuilder {
    /// The child's name (see [`Builder::name`](crate::Builder::name)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// asyncio::task_group(|tg| async move {
    ///     assert_eq!(tg.builder().name(7).spawn(async {}).get_name(), "7");
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn name(mut self, name: impl fmt::Display) -> Self {
        self.builder = self.builder.name(name);
        self
    }

    /// Creates the child (see [`TaskGroup::create_task`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let r = asyncio::task_group(|tg| async move {
    ///     tg.builder().spawn(async { 5 }).await.unwrap()
    /// })
    /// .await;
    /// assert_eq!(r.unwrap(), 5);
    /// # }
    /// ```
    ///
    /// # Panics
    /// As [`TaskGroup::create_task`].
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_child(&self.group.shared, self.builder, fut)
    }

    /// Creates a child whose `Err` fails it (see
    /// [`TaskGroup::try_create_task`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let r = asyncio::task_group(|tg| async move {
    ///     let t = tg.builder().name("ok").try_spawn(async { Ok::<_, std::io::Error>(1) });
    ///     t.await.unwrap()
    /// })
    /// .await;
    /// assert_eq!(r.unwrap(), 1);
    /// # }
    /// ```
    ///
    /// # Panics
    /// As [`TaskGroup::create_task`].
    #[track_caller]
    pub fn try_spawn<F, T, E>(self, fut: F) -> Task<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.spawn(async move {
            match fut.await {
                Ok(v) => v,
                // Unwinds without the panic hook; the task core recognises
                // the payload and ends the task with `Error::Failed`.
                Err(e) => std::panic::resume_unwind(Box::new(FailedError::new(e))),
            }
        })
    }
}

/// Spawns a child of the group: counts it (or panics before anything is
/// spawned), spawns it, lists it, and watches its end.
#[track_caller]
fn spawn_child<F>(shared: &Arc<Shared>, builder: crate::Builder, fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Uncounts the child if the spawn panics (no runtime): the group
    /// would otherwise wait for a child that never existed.
    struct Reserved<'a>(&'a Shared, bool);
    impl Drop for Reserved<'_> {
        fn drop(&mut self) {
            if self.1 {
                self.0.release(None);
            }
        }
    }
    shared.reserve();
    let mut reserved = Reserved(shared, true);
    let task = builder.spawn(fut);
    reserved.1 = false;
    let child = task.task_ref();
    if is_polling(shared) {
        // Watched after the body's poll (`Shared::watch`).
        shared.list_unwatched(child);
        return task;
    }
    shared.list(child);
    let watcher: Arc<dyn ChildDone> = shared.clone();
    if let Err((_, cb)) = child.push_done_callback(Callback::Child(watcher, 0)) {
        // Already ended (and its callbacks run): the callback runs soon,
        // as every done callback added to a task that is done.
        drop(cb);
        let watcher = shared.clone();
        child.add_done_callback(move |t| watcher.child_done(0, t));
    }
    task
}

/// The future [`task_group`] returns.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let run: asyncio::futures::TaskGroupRun<_, _> = asyncio::task_group(|_tg| async { 1 });
/// assert_eq!(run.await.unwrap(), 1);
/// # }
/// ```
#[pin_project(PinnedDrop)]
#[must_use = "futures do nothing unless awaited"]
pub struct TaskGroupRun<B, Fut: Future> {
    group: TaskGroup,
    body: Option<B>,
    #[pin]
    fut: Option<Fut>,
    value: Option<Fut::Output>,
    body_error: Option<Error>,
    body_done: bool,
    reg: Option<Registration>,
    /// The children the body creates are watched after its poll
    /// ([`Shared::watch`]): on a runtime of several workers only (decided
    /// at the first poll). On the current-thread runtime no child runs
    /// while the body does, so there is no contention to spare, and a late
    /// watch would only touch each child's core again, by then out of the
    /// cache (the group of 10k children went from 0.63x to 1.0x a gather).
    watch_late: bool,
    started: bool,
    done: bool,
    /// Cancelled from outside before the body and every child had ended:
    /// the group then ends with the cancellation (unless something failed).
    cancelled: bool,
}

impl<B, Fut> Future for TaskGroupRun<B, Fut>
where
    B: FnOnce(TaskGroup) -> Fut,
    Fut: Future,
{
    type Output = crate::Result<Fut::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        assert!(
            !*this.done,
            "asyncio: TaskGroupRun polled after it resolved"
        );
        let shared = this.group.shared.clone();
        let node = shared.node.clone();
        if !*this.started {
            *this.started = true;
            *this.watch_late = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread);
            if let Some(parent) = node::current_parent() {
                *this.reg = parent.register(&node).ok();
            }
            if let Some(body) = this.body.take() {
                let group = this.group.clone();
                let late = *this.watch_late;
                let made = catch_unwind(AssertUnwindSafe(|| {
                    polling(&shared, late, || node::enter(&node, || body(group)))
                }));
                match made {
                    Ok(fut) => this.fut.set(Some(fut)),
                    Err(payload) => {
                        *this.body_done = true;
                        *this.body_error = Some(body_failure(&shared, payload));
                    }
                }
            }
        }
        node.set_waker(cx.waker());
        // Cancelled from outside (the awaiting task, an enclosing scope):
        // shut down as after a failure.
        if node.status().inherited {
            let children = {
                let mut s = shared.lock();
                if !*this.body_done || shared.live() > 0 {
                    *this.cancelled = true;
                }
                shared.begin_shutdown(&mut s)
            };
            shared.shutdown(children);
        }
        if !*this.body_done {
            if !node.status().must_drop() {
                let fut = this
                    .fut
                    .as_mut()
                    .as_pin_mut()
                    .expect("asyncio: group body missing");
                let late = *this.watch_late;
                let polled = catch_unwind(AssertUnwindSafe(|| {
                    polling(&shared, late, || node::enter(&node, || fut.poll(cx)))
                }));
                match polled {
                    Ok(Poll::Ready(v)) => {
                        *this.value = Some(v);
                        *this.body_done = true;
                        this.fut.set(None);
                    }
                    Ok(Poll::Pending) => {}
                    Err(payload) => {
                        *this.body_done = true;
                        drop_body(this.fut.as_mut());
                        *this.body_error = Some(body_failure(&shared, payload));
                    }
                }
            }
            if !*this.body_done && node.claim_drop() {
                // Shutting down and every cleanup in the body ran.
                *this.body_done = true;
                drop_body(this.fut.as_mut());
            }
        }
        // The children the body created in this poll (invariant: none is
        // left unwatched once the poll decides). Only a late-watching group
        // has any: the others skip the lock.
        if *this.watch_late {
            let batch = shared.take_unwatched(&mut shared.lock(), 1);
            shared.watch(batch);
        }
        let errors = {
            let mut s = shared.lock();
            if !*this.body_done || !shared.finish(&mut s) {
                let old = match &s.waker {
                    Some(w) if w.will_wake(cx.waker()) => None,
                    _ => s.waker.replace(cx.waker().clone()),
                };
                drop(s);
                drop(old); // outside the lock
                return Poll::Pending;
            }
            std::mem::take(&mut s.errors)
        };
        *this.done = true;
        *this.reg = None;
        let mut errors = errors;
        errors.extend(this.body_error.take());
        if !errors.is_empty() {
            return Poll::Ready(Err(Error::Group(ExceptionGroup::new(errors))));
        }
        match this.value.take().filter(|_| !*this.cancelled) {
            Some(v) => Poll::Ready(Ok(v)),
            None => {
                // Cancelled from outside with nothing failed: the
                // cancellation goes on to the enclosing scope.
                *this.done = false;
                Poll::Pending
            }
        }
    }
}

/// The body panicked: the error it counts as, and the group shuts down.
fn body_failure(shared: &Arc<Shared>, payload: Box<dyn std::any::Any + Send>) -> Error {
    let err = Error::Panicked(PanicError::from_payload(&*payload));
    crate::report::drop_payload(payload, None);
    let children = shared.begin_shutdown(&mut shared.lock());
    shared.shutdown(children);
    err
}

/// Drops the body, containing a panic of its destructor (reported).
fn drop_body<Fut>(mut fut: Pin<&mut Option<Fut>>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| fut.set(None))) {
        crate::report::report_panic(
            "Exception in the destructor of a task group's body",
            crate::current_task().as_ref(),
            payload,
        );
    }
}

#[pinned_drop]
impl<B, Fut: Future> PinnedDrop for TaskGroupRun<B, Fut> {
    fn drop(self: Pin<&mut Self>) {
        let shared = &self.group.shared;
        let (children, unwatched) = {
            let mut s = shared.lock();
            let finished = shared
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                    (phase(now) != Phase::Finished).then_some(now & !PHASE | FINISHED)
                });
            if finished.is_err() {
                return;
            }
            (s.alive(), std::mem::take(&mut s.unwatched))
        };
        // Dropped from outside: the children cannot be waited for, only
        // cancelled.
        cancel_running(children);
        drop_contained(unwatched, DISCARDED_RESULT); // unlocked; see `Shared::watch`
    }
}

impl<B, Fut: Future> fmt::Debug for TaskGroupRun<B, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupRun")
            .field("group", &self.group)
            .field("body_done", &self.body_done)
            .finish()
    }
}
