//! [`gather`], [`gather!`](crate::gather!), [`try_gather`]: run futures
//! concurrently, collect their results in input order.
//!
//! | asyncio | here |
//! |---|---|
//! | `await gather(*aws)` | `gather(aws).await` → `Result<Vec<T>>` |
//! | `await gather(*aws, return_exceptions=True)` | `gather(aws).return_exceptions().await` → `Vec<Result<T>>` |
//! | `await gather(a, b, c)` (mixed types) | `gather!(a, b, c).await` → `Result<(A, B, C)>` |
//! | a coroutine raising `E` inside `gather` | [`try_gather`] over futures of `Result<U, E>` |
//!
//! Semantics (asyncio's, checked by `tests/gather.rs`):
//! - inputs are scheduled as tasks when `gather` is *called*;
//! - results come in input order, whatever the completion order;
//! - the first child to panic or be cancelled, in completion order, ends the
//!   gather with that error at once; the other children keep running;
//! - `.return_exceptions()` waits for every child and puts each error at its
//!   child's position;
//! - dropping the gather before it finished (its awaiting task was cancelled,
//!   a `select!` dropped it) cancels the children still pending;
//!   dropping it after it finished cancels nothing;
//! - empty input: `Ok(vec![])` at the first poll.
//!
//! # How it waits
//! Progress is followed in input order: the gather collects every finished
//! child at the front, straight from the task core, and waits on the first
//! unfinished one's `JoinHandle`. Failures out of order are reported by one
//! done callback per child (see `src/watch.rs`; no allocation of its own). Each child is looked at a
//! bounded number of times, so a gather of 100 000 tasks costs linear time,
//! also when it is itself awaited inside a task on the multi-thread runtime
//! (where `futures::future::join_all` goes quadratic).

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::combinators::children::{Failed, Wake, Watch, panicked_or_cancelled};
use crate::combinators::input::{IntoTask, into_tasks};
use crate::{Error, Task, TaskRef};

// ------------------------------------------------------------------ engine

/// The children of one gather and where their results go.
pub(crate) trait Children {
    /// What the gather resolves to on success.
    type Output;
    /// What ends it early.
    type Error;
    /// Which finished children end the gather early (`None`: nothing does,
    /// and no callbacks are needed).
    const FAILED: Option<Failed>;

    fn len(&self) -> usize;
    fn task(&self, i: usize) -> &TaskRef;
    /// Collects child `i` if it is done; with `cx`, waits for it through its
    /// handle. `Ready(Err)` ends the gather.
    fn poll_child(
        &mut self,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<(), Self::Error>>;
    /// Everything collected, once every child was.
    fn finish(&mut self) -> Self::Output;
}

/// Where a gather handed over to its `return_exceptions()` form stood.
struct HandOver {
    cursor: usize,
}

impl HandOver {
    fn with_children<C: Children>(self, children: C) -> Engine<C> {
        let mut engine = Engine::new(children);
        engine.cursor = self.cursor;
        engine
    }
}

/// The state machine shared by [`Gather`], [`TryGather`] and [`GatherTuple`].
struct Engine<C: Children> {
    children: C,
    /// Children before `cursor` are collected.
    cursor: usize,
    /// Created at the first poll that finds an unfinished child.
    watch: Option<Watch>,
    /// The gather has resolved: dropping it cancels nothing.
    finished: bool,
}

impl<C: Children> Engine<C> {
    fn new(children: C) -> Self {
        Engine {
            children,
            cursor: 0,
            watch: None,
            finished: false,
        }
    }

    /// For `return_exceptions()`: this engine gives up its children (and
    /// will cancel nothing when dropped); the returned cursor tells the new
    /// engine how far collection got.
    fn hand_over(&mut self) -> (HandOver, &mut C) {
        assert!(
            !self.finished,
            "asyncio: return_exceptions() on a gather that already completed"
        );
        self.finished = true;
        (
            HandOver {
                cursor: self.cursor,
            },
            &mut self.children,
        )
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<C::Output, C::Error>> {
        assert!(
            !self.finished,
            "asyncio: a gather was polled after it completed"
        );
        let out = self.poll_inner(cx);
        if out.is_ready() {
            self.finished = true;
            self.watch = None; // closes it: late callbacks wake no one
        }
        out
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<C::Output, C::Error>> {
        if let Some(watch) = &self.watch {
            watch.register(cx.waker());
            if let Some(i) = watch.first_failure() {
                return self.fail(i);
            }
        }
        let n = self.children.len();
        while self.cursor < n {
            // Cheap path first: a finished child is read from its core
            // without touching its `JoinHandle` (no coop budget spent).
            let collected = match self.children.poll_child(self.cursor, None) {
                Poll::Ready(r) => r,
                Poll::Pending => match self.children.poll_child(self.cursor, Some(cx)) {
                    Poll::Ready(r) => r,
                    Poll::Pending => break,
                },
            };
            if let Err(e) = collected {
                return Poll::Ready(Err(e));
            }
            self.cursor += 1;
        }
        if self.cursor == n {
            return Poll::Ready(Ok(self.children.finish()));
        }
        if C::FAILED.is_some() && self.watch.is_none() {
            let cursor = self.cursor;
            let children = &self.children;
            let watch = Watch::new(
                (cursor..n).map(|i| (i, children.task(i))),
                C::FAILED.unwrap_or(panicked_or_cancelled),
                Wake::OnFailure,
                cx.waker(),
            );
            let failed = watch.first_failure();
            self.watch = Some(watch);
            if let Some(i) = failed {
                return self.fail(i);
            }
        }
        Poll::Pending
    }

    /// Ends the gather with the error of child `i`, which failed.
    fn fail(&mut self, i: usize) -> Poll<Result<C::Output, C::Error>> {
        match self.children.poll_child(i, None) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            other => unreachable!(
                "asyncio: gather child {i} was reported failed but is {}",
                if other.is_ready() {
                    "a success"
                } else {
                    "pending"
                }
            ),
        }
    }
}

impl<C: Children> Drop for Engine<C> {
    fn drop(&mut self) {
        if self.finished {
            return; // resolved: siblings of a failure keep running
        }
        for i in self.cursor..self.children.len() {
            let task = self.children.task(i);
            if !task.done() {
                task.cancel();
            }
        }
    }
}

// ------------------------------------------------------------------ gather

/// Runs the inputs concurrently and resolves to their results, in input
/// order: asyncio's `gather(*aws)`.
///
/// Every input is a [`Task`] or a future, which is scheduled as a task now,
/// when `gather` is called (see [`IntoTask`]). The returned [`Gather`]
/// resolves to:
/// - `Ok(results)` in input order once every child returned;
/// - the error of the first child, in completion order, that panicked or was
///   cancelled, as soon as it happens; the other children keep running;
/// - `Ok(vec![])` at once for empty input.
///
/// Dropping the [`Gather`] before it resolved cancels the children still
/// pending (asyncio: cancelling the gather, or the task awaiting it).
///
/// # Panics
/// When an input is a plain future and there is no running Tokio runtime.
///
/// ```
/// async fn square(x: u64, delay: f64) -> u64 {
///     asyncio::sleep(delay).await;
///     x * x
/// }
///
/// asyncio::run(async {
///     // the slowest comes first: results are still in input order
///     let squares = asyncio::gather([square(3, 0.03), square(1, 0.01), square(2, 0.02)])
///         .await
///         .unwrap();
///     assert_eq!(squares, [9, 1, 4]);
///
///     // a panic ends the gather with that error
///     let err = asyncio::gather([asyncio::create_task(async { panic!("bad") })])
///         .await
///         .unwrap_err();
///     assert!(err.is_panic());
/// });
/// ```
#[track_caller]
pub fn gather<I>(inputs: I) -> Gather<<I::Item as IntoTask>::Output>
where
    I: IntoIterator,
    I::Item: IntoTask,
{
    Gather {
        engine: Engine::new(VecChildren {
            tasks: into_tasks(inputs),
            results: Vec::new(),
        }),
    }
}

/// The future of [`gather`]: resolves to `asyncio::Result<Vec<T>>`.
///
/// ```
/// asyncio::run(async {
///     let g: asyncio::futures::Gather<u8> = asyncio::gather([asyncio::sleep_with(0, 1), asyncio::sleep_with(0, 2)]);
///     assert_eq!(g.len(), 2);
///     assert_eq!(g.await.unwrap(), [1, 2]);
/// });
/// ```
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct Gather<T: Send + 'static> {
    engine: Engine<VecChildren<T>>,
}

impl<T: Send + 'static> Gather<T> {
    /// asyncio's `return_exceptions=True`: waits for every child and
    /// resolves to each child's `asyncio::Result<T>`, in input order. A
    /// panicked child is `Err(Panicked)` at its position, a cancelled one
    /// `Err(Cancelled)`. Dropping it before it resolved still cancels the
    /// children still pending.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let ok = asyncio::create_task(async { 1 });
    ///     let bad = asyncio::create_task(async { panic!("boom") });
    ///     let cancelled = asyncio::create_task(asyncio::sleep_with(10, 3));
    ///     cancelled.cancel();
    ///     let results = asyncio::gather([ok, bad, cancelled]).return_exceptions().await;
    ///     assert_eq!(results[0], Ok(1));
    ///     assert!(results[1].as_ref().unwrap_err().is_panic());
    ///     assert!(results[2].as_ref().unwrap_err().is_cancelled());
    /// });
    /// ```
    ///
    /// # Panics
    /// If the gather already completed (it was polled to the end through
    /// `&mut`).
    pub fn return_exceptions(self) -> ReturnExceptions<T> {
        let mut gather = self;
        let (engine, children) = gather.engine.hand_over();
        let results = mem::take(&mut children.results)
            .into_iter()
            .map(Ok)
            .collect();
        ReturnExceptions {
            engine: engine.with_children(AllChildren {
                tasks: mem::take(&mut children.tasks),
                results,
            }),
        }
    }

    /// The number of children.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let g = asyncio::gather(Vec::<asyncio::Task<()>>::new());
    ///     assert!(g.is_empty());
    ///     assert_eq!(g.await.unwrap(), []);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.engine.children.tasks.len()
    }

    /// `true` when there are no children.
    ///
    /// ```
    /// asyncio::run(async {
    ///     assert!(!asyncio::gather([async { 1 }]).is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Handles to the children, in input order (for introspection and
    /// control: `cancel`, `done`, names).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let g = asyncio::gather([asyncio::sleep(10)]);
    ///     let children = g.tasks();
    ///     drop(g); // not finished: cancels the children
    ///     while !children[0].done() {
    ///         asyncio::sleep(0).await;
    ///     }
    ///     assert!(children[0].cancelled());
    /// });
    /// ```
    pub fn tasks(&self) -> Vec<TaskRef> {
        self.engine
            .children
            .tasks
            .iter()
            .map(|t| t.to_ref())
            .collect()
    }
}

// Outputs are moved, never pinned: no structural pinning.
impl<T: Send + 'static> Unpin for Gather<T> {}

impl<T: Send + 'static> Future for Gather<T> {
    type Output = crate::Result<Vec<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.engine.poll(cx)
    }
}

impl<T: Send + 'static> fmt::Debug for Gather<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("children", &self.engine.children.tasks.len())
            .field("collected", &self.engine.cursor)
            .finish()
    }
}

struct VecChildren<T> {
    tasks: Vec<Task<T>>,
    results: Vec<T>,
}

impl<T: Send + 'static> Children for VecChildren<T> {
    type Output = Vec<T>;
    type Error = Error;
    const FAILED: Option<Failed> = Some(panicked_or_cancelled);

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn task(&self, i: usize) -> &TaskRef {
        &self.tasks[i]
    }

    fn poll_child(&mut self, i: usize, cx: Option<&mut Context<'_>>) -> Poll<Result<(), Error>> {
        let v = std::task::ready!(poll_task(&mut self.tasks[i], cx));
        Poll::Ready(v.map(|v| collect(&mut self.results, self.tasks.len(), v)))
    }

    fn finish(&mut self) -> Vec<T> {
        mem::take(&mut self.results)
    }
}

/// Appends a collected result, making room for all `len` at the first one
/// (a gather that fails early never allocates for the rest).
fn collect<R>(results: &mut Vec<R>, len: usize, r: R) {
    if results.capacity() == 0 {
        results.reserve_exact(len);
    }
    results.push(r);
}

/// Reads a task's outcome if it is done; with `cx`, waits on its handle.
fn poll_task<T: Send + 'static>(
    task: &mut Task<T>,
    cx: Option<&mut Context<'_>>,
) -> Poll<crate::Result<T>> {
    match task.take_if_done() {
        Some(r) => Poll::Ready(r),
        None => match cx {
            Some(cx) => task.poll_result(cx),
            None => Poll::Pending,
        },
    }
}

// ------------------------------------------------------- return_exceptions

/// The future of [`Gather::return_exceptions`]: resolves to
/// `Vec<asyncio::Result<T>>` once every child is done.
///
/// ```
/// asyncio::run(async {
///     let all: asyncio::futures::ReturnExceptions<u8> =
///         asyncio::gather((1..=2).map(|i| async move { i })).return_exceptions();
///     assert_eq!(all.await, [Ok(1), Ok(2)]);
/// });
/// ```
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct ReturnExceptions<T: Send + 'static> {
    engine: Engine<AllChildren<T>>,
}

// Outputs are moved, never pinned: no structural pinning.
impl<T: Send + 'static> Unpin for ReturnExceptions<T> {}

impl<T: Send + 'static> Future for ReturnExceptions<T> {
    type Output = Vec<crate::Result<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.engine.poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> fmt::Debug for ReturnExceptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReturnExceptions")
            .field("children", &self.engine.children.tasks.len())
            .field("collected", &self.engine.cursor)
            .finish()
    }
}

struct AllChildren<T> {
    tasks: Vec<Task<T>>,
    results: Vec<crate::Result<T>>,
}

impl<T: Send + 'static> Children for AllChildren<T> {
    type Output = Vec<crate::Result<T>>;
    type Error = std::convert::Infallible;
    // Nothing ends it early: progress alone is followed, no callbacks.
    const FAILED: Option<Failed> = None;

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn task(&self, i: usize) -> &TaskRef {
        &self.tasks[i]
    }

    fn poll_child(
        &mut self,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<(), Self::Error>> {
        let r = std::task::ready!(poll_task(&mut self.tasks[i], cx));
        collect(&mut self.results, self.tasks.len(), r);
        Poll::Ready(Ok(()))
    }

    fn finish(&mut self) -> Self::Output {
        mem::take(&mut self.results)
    }
}

// -------------------------------------------------------------- try_gather

/// [`gather`] for futures that fail normally, by returning `Err(E)`: resolves
/// to `Result<Vec<U>, E>`, the `Ok` values in input order.
///
/// The first child, in completion order, that returns `Err(e)` ends it with
/// `Err(e)` at once, as a raised exception ends asyncio's `gather`; a child
/// that panics or is cancelled ends it with `E::from(asyncio::Error)`. The
/// other children keep running. Dropping it before it resolved cancels the
/// children still pending.
///
/// ```
/// #[derive(Debug, PartialEq)]
/// enum AppError {
///     NotFound(u32),
///     Asyncio(asyncio::Error),
/// }
/// impl From<asyncio::Error> for AppError {
///     fn from(e: asyncio::Error) -> Self {
///         AppError::Asyncio(e)
///     }
/// }
///
/// async fn fetch(id: u32) -> Result<String, AppError> {
///     asyncio::sleep(0.01).await;
///     if id == 0 { Err(AppError::NotFound(id)) } else { Ok(format!("item {id}")) }
/// }
///
/// asyncio::run(async {
///     assert_eq!(asyncio::try_gather([fetch(1), fetch(2)]).await.unwrap(), ["item 1", "item 2"]);
///     assert_eq!(asyncio::try_gather([fetch(1), fetch(0)]).await, Err(AppError::NotFound(0)));
/// });
/// ```
#[track_caller]
pub fn try_gather<I, U, E>(inputs: I) -> TryGather<U, E>
where
    I: IntoIterator,
    I::Item: IntoTask<Output = Result<U, E>>,
    U: Send + 'static,
    E: From<Error> + Send + 'static,
{
    TryGather {
        engine: Engine::new(TryChildren {
            tasks: into_tasks(inputs),
            results: Vec::new(),
        }),
    }
}

/// The future of [`try_gather`]: resolves to `Result<Vec<U>, E>`.
///
/// ```
/// asyncio::run(async {
///     let t: asyncio::futures::TryGather<u8, asyncio::Error> =
///         asyncio::try_gather((1..=2).map(|i| async move { Ok(i) }));
///     assert_eq!(t.await.unwrap(), [1, 2]);
/// });
/// ```
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct TryGather<U: Send + 'static, E: From<Error> + Send + 'static> {
    engine: Engine<TryChildren<U, E>>,
}

// Outputs are moved, never pinned: no structural pinning.
impl<U: Send + 'static, E: From<Error> + Send + 'static> Unpin for TryGather<U, E> {}

impl<U: Send + 'static, E: From<Error> + Send + 'static> Future for TryGather<U, E> {
    type Output = Result<Vec<U>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.engine.poll(cx)
    }
}

impl<U: Send + 'static, E: From<Error> + Send + 'static> fmt::Debug for TryGather<U, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryGather")
            .field("children", &self.engine.children.tasks.len())
            .field("collected", &self.engine.cursor)
            .finish()
    }
}

struct TryChildren<U, E> {
    tasks: Vec<Task<Result<U, E>>>,
    results: Vec<U>,
}

/// A child of `try_gather` fails by panicking, being cancelled, or returning
/// `Err`.
fn try_failed<U: Send + 'static, E: Send + 'static>(t: &TaskRef) -> bool {
    panicked_or_cancelled(t)
        || t.with_output(|out: Option<&Result<U, E>>| matches!(out, Some(Err(_))))
}

impl<U: Send + 'static, E: From<Error> + Send + 'static> Children for TryChildren<U, E> {
    type Output = Vec<U>;
    type Error = E;
    const FAILED: Option<Failed> = Some(try_failed::<U, E>);

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn task(&self, i: usize) -> &TaskRef {
        &self.tasks[i]
    }

    fn poll_child(&mut self, i: usize, cx: Option<&mut Context<'_>>) -> Poll<Result<(), E>> {
        let r = std::task::ready!(poll_task(&mut self.tasks[i], cx));
        Poll::Ready(match r {
            Ok(Ok(u)) => {
                collect(&mut self.results, self.tasks.len(), u);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(E::from(e)),
        })
    }

    fn finish(&mut self) -> Vec<U> {
        mem::take(&mut self.results)
    }
}

// ----------------------------------------------------------------- gather!

/// Runs futures (or tasks) of different output types concurrently: asyncio's
/// `gather(a, b, c)`, resolving to `asyncio::Result<(A, B, C)>`.
///
/// Each argument is a [`Task`] or a future, scheduled as a task when the
/// macro is evaluated (see [`IntoTask`]). Same semantics as [`gather`](fn@crate::gather):
/// results in argument order, the first child to panic or be cancelled ends
/// it at once with that error (the others keep running), dropping it
/// unfinished cancels the children still pending. Up to 12 arguments;
/// `gather!()` resolves to `Ok(())`.
///
/// ```
/// asyncio::run(async {
///     let name = asyncio::create_task(async { "answer".to_string() });
///     let (name, value, ()) = asyncio::gather!(name, async { 42u8 }, asyncio::sleep(0.01))
///         .await
///         .unwrap();
///     assert_eq!((name.as_str(), value), ("answer", 42));
/// });
/// ```
#[macro_export]
macro_rules! gather {
    ($($input:expr),* $(,)?) => {
        $crate::support::gather_tuple(($($crate::IntoTask::into_task($input),)*))
    };
}

/// The future of [`gather!`](crate::gather!): resolves to
/// `asyncio::Result<(A, B, …)>`. `S` is the tuple of the children's tasks.
///
/// ```
/// asyncio::run(async {
///     let g: asyncio::futures::GatherTuple<(asyncio::Task<u8>, asyncio::Task<&str>)> =
///         asyncio::gather!(async { 1u8 }, async { "one" });
///     assert_eq!(g.await.unwrap(), (1, "one"));
/// });
/// ```
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct GatherTuple<S: TaskTuple> {
    engine: Engine<TupleChildren<S>>,
}

/// What [`gather!`](crate::gather!) expands to: the gather of a tuple of
/// tasks.
pub fn gather_tuple<S: TaskTuple>(tasks: S) -> GatherTuple<S> {
    GatherTuple {
        engine: Engine::new(TupleChildren {
            tasks: Some(tasks),
            slots: S::Slots::default(),
        }),
    }
}

impl<S: TaskTuple> GatherTuple<S> {
    /// asyncio's `return_exceptions=True` for [`gather!`](crate::gather!):
    /// waits for every child and resolves to the tuple of each child's
    /// `asyncio::Result`. Dropping it before it resolved still cancels the
    /// children still pending.
    ///
    /// # Panics
    /// If the gather already completed (it was polled to the end through
    /// `&mut`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (n, boom) = asyncio::gather!(async { 1u8 }, async { panic!("boom") })
    ///         .return_exceptions()
    ///         .await;
    ///     assert_eq!(n, Ok(1));
    ///     let _: asyncio::Result<()> = boom.clone();
    ///     assert!(boom.unwrap_err().is_panic());
    /// });
    /// ```
    pub fn return_exceptions(self) -> ReturnExceptionsTuple<S> {
        let mut gather = self;
        let (engine, children) = gather.engine.hand_over();
        let slots = S::__lift(mem::take(&mut children.slots));
        ReturnExceptionsTuple {
            engine: engine.with_children(TupleAllChildren {
                tasks: children
                    .tasks
                    .take()
                    .expect("asyncio: gather! handed over twice"),
                slots,
            }),
        }
    }
}

/// The future of [`GatherTuple::return_exceptions`]: resolves to the tuple
/// of each child's `asyncio::Result` once every child is done.
///
/// ```
/// asyncio::run(async {
///     let all: asyncio::futures::ReturnExceptionsTuple<(asyncio::Task<u8>, asyncio::Task<char>)> =
///         asyncio::gather!(async { 1u8 }, async { 'x' }).return_exceptions();
///     assert_eq!(all.await, (Ok(1), Ok('x')));
/// });
/// ```
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct ReturnExceptionsTuple<S: TaskTuple> {
    engine: Engine<TupleAllChildren<S>>,
}

// Outputs are moved, never pinned: no structural pinning.
impl<S: TaskTuple> Unpin for ReturnExceptionsTuple<S> {}

impl<S: TaskTuple> Future for ReturnExceptionsTuple<S> {
    type Output = S::Results;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.engine.poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: TaskTuple> fmt::Debug for ReturnExceptionsTuple<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReturnExceptionsTuple")
            .field("children", &S::LEN)
            .field("collected", &self.engine.cursor)
            .finish()
    }
}

struct TupleAllChildren<S: TaskTuple> {
    tasks: S,
    slots: S::ResultSlots,
}

impl<S: TaskTuple> Children for TupleAllChildren<S> {
    type Output = S::Results;
    type Error = std::convert::Infallible;
    // Nothing ends it early: progress alone is followed, no callbacks.
    const FAILED: Option<Failed> = None;

    fn len(&self) -> usize {
        S::LEN
    }

    fn task(&self, i: usize) -> &TaskRef {
        self.tasks.__task(i)
    }

    fn poll_child(
        &mut self,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<(), Self::Error>> {
        self.tasks.__poll_all(&mut self.slots, i, cx).map(Ok)
    }

    fn finish(&mut self) -> S::Results {
        S::__finish_all(mem::take(&mut self.slots))
    }
}

// Outputs are moved, never pinned: no structural pinning.
impl<S: TaskTuple> Unpin for GatherTuple<S> {}

impl<S: TaskTuple> Future for GatherTuple<S> {
    type Output = crate::Result<S::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.engine.poll(cx)
    }
}

impl<S: TaskTuple> fmt::Debug for GatherTuple<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherTuple")
            .field("children", &S::LEN)
            .field("collected", &self.engine.cursor)
            .finish()
    }
}

/// A tuple of [`Task`]s, as built by [`gather!`](crate::gather!)
/// (implemented for tuples of up to 12 tasks; sealed: it cannot be
/// implemented elsewhere).
///
/// ```
/// fn children<S: asyncio::support::TaskTuple>(_: &asyncio::futures::GatherTuple<S>) -> usize {
///     S::LEN
/// }
/// asyncio::run(async {
///     let g = asyncio::gather!(async { 1 }, async { 'x' });
///     assert_eq!(children(&g), 2);
///     g.await.unwrap();
/// });
/// ```
pub trait TaskTuple: TupleSlots + Send + 'static {
    /// The tuple of outputs.
    type Output;
    /// The tuple of each output's `asyncio::Result` (for
    /// [`GatherTuple::return_exceptions`]).
    type Results;
    /// The number of tasks.
    const LEN: usize;
    #[doc(hidden)]
    fn __task(&self, i: usize) -> &TaskRef;
    #[doc(hidden)]
    fn __poll(
        &mut self,
        slots: &mut Self::Slots,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<crate::Result<()>>;
    #[doc(hidden)]
    fn __finish(slots: Self::Slots) -> Self::Output;
    #[doc(hidden)]
    fn __poll_all(
        &mut self,
        slots: &mut Self::ResultSlots,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<()>;
    #[doc(hidden)]
    fn __finish_all(slots: Self::ResultSlots) -> Self::Results;
    #[doc(hidden)]
    fn __lift(slots: Self::Slots) -> Self::ResultSlots;
}

/// Where the outputs of a tuple of tasks wait until all are in.
///
/// Apart from [`TaskTuple`] on purpose: this trait is implemented for every
/// tuple of tasks, whatever the outputs' lifetimes, so the fields typed with
/// its projections normalize inside any async block. The futures of
/// `gather!` are then plainly `Send` when their outputs are, also when an
/// output borrows (`&'static str`) and the future is awaited in a spawned
/// task, where the compiler checks `Send` for every lifetime (a
/// `'static`-bounded impl there gives "implementation of `Send` is not
/// general enough").
#[doc(hidden)]
pub trait TupleSlots: tuple_sealed::Sealed {
    /// Each output, once collected.
    type Slots: Default;
    /// Each outcome, once collected (for `return_exceptions()`).
    type ResultSlots: Default;
}

struct TupleChildren<S: TaskTuple> {
    /// `None` once handed over to `return_exceptions()` (the engine is then
    /// finished and never looks at its children again).
    tasks: Option<S>,
    slots: S::Slots,
}

impl<S: TaskTuple> TupleChildren<S> {
    fn tasks(&self) -> &S {
        self.tasks
            .as_ref()
            .expect("asyncio: gather! used after hand-over")
    }
}

impl<S: TaskTuple> Children for TupleChildren<S> {
    type Output = S::Output;
    type Error = Error;
    const FAILED: Option<Failed> = Some(panicked_or_cancelled);

    fn len(&self) -> usize {
        S::LEN
    }

    fn task(&self, i: usize) -> &TaskRef {
        self.tasks().__task(i)
    }

    fn poll_child(&mut self, i: usize, cx: Option<&mut Context<'_>>) -> Poll<crate::Result<()>> {
        let tasks = self
            .tasks
            .as_mut()
            .expect("asyncio: gather! used after hand-over");
        tasks.__poll(&mut self.slots, i, cx)
    }

    fn finish(&mut self) -> S::Output {
        S::__finish(mem::take(&mut self.slots))
    }
}

/// Seals [`TupleSlots`], and through it [`TaskTuple`]: only tuples of
/// tasks are gathered by `gather!`.
mod tuple_sealed {
    pub trait Sealed {}
}

macro_rules! task_tuple {
    ($len:expr; $($T:ident $i:tt),*) => {
        impl<$($T),*> tuple_sealed::Sealed for ($(Task<$T>,)*) {}

        // No bounds: see `TupleSlots`.
        impl<$($T),*> TupleSlots for ($(Task<$T>,)*) {
            type Slots = ($(Option<$T>,)*);
            type ResultSlots = ($(Option<crate::Result<$T>>,)*);
        }

        impl<$($T: Send + 'static),*> TaskTuple for ($(Task<$T>,)*) {
            type Output = ($($T,)*);
            type Results = ($(crate::Result<$T>,)*);
            const LEN: usize = $len;

            #[allow(unused_variables)]
            fn __task(&self, i: usize) -> &TaskRef {
                match i {
                    $($i => &self.$i,)*
                    _ => unreachable!(),
                }
            }

            #[allow(unused_variables)]
            fn __poll(
                &mut self,
                slots: &mut Self::Slots,
                i: usize,
                cx: Option<&mut Context<'_>>,
            ) -> Poll<crate::Result<()>> {
                match i {
                    $($i => {
                        let v = std::task::ready!(poll_task(&mut self.$i, cx));
                        Poll::Ready(v.map(|v| slots.$i = Some(v)))
                    })*
                    _ => unreachable!(),
                }
            }

            #[allow(unused_variables, clippy::unused_unit)]
            fn __finish(slots: Self::Slots) -> Self::Output {
                ($(slots.$i.expect("asyncio: gather! finished with a missing result"),)*)
            }

            #[allow(unused_variables)]
            fn __poll_all(
                &mut self,
                slots: &mut Self::ResultSlots,
                i: usize,
                cx: Option<&mut Context<'_>>,
            ) -> Poll<()> {
                match i {
                    $($i => {
                        let r = std::task::ready!(poll_task(&mut self.$i, cx));
                        slots.$i = Some(r);
                        Poll::Ready(())
                    })*
                    _ => unreachable!(),
                }
            }

            #[allow(unused_variables, clippy::unused_unit)]
            fn __finish_all(slots: Self::ResultSlots) -> Self::Results {
                ($(slots.$i.expect("asyncio: gather! finished with a missing result"),)*)
            }

            #[allow(unused_variables, clippy::unused_unit)]
            fn __lift(slots: Self::Slots) -> Self::ResultSlots {
                ($(slots.$i.map(Ok),)*)
            }

        }
    };
}

task_tuple!(0;);
task_tuple!(1; A 0);
task_tuple!(2; A 0, B 1);
task_tuple!(3; A 0, B 1, C 2);
task_tuple!(4; A 0, B 1, C 2, D 3);
task_tuple!(5; A 0, B 1, C 2, D 3, E 4);
task_tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);
task_tuple!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
task_tuple!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
task_tuple!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
task_tuple!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
task_tuple!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
task_tuple!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
