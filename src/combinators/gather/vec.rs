//! [`gather`], [`try_gather`] and their futures: children of one type, in a
//! `Vec`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::engine::{
    ChildTasks, Children, Engine, collect, engine_future, gather_future_doc, poll_task,
};
use crate::combinators::children::{Failed, panicked_or_cancelled};
use crate::combinators::input::{IntoTask, into_tasks};
use crate::{Error, Task, TaskRef};

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
/// # Errors
/// The error of the first child to fail: [`Error::Panicked`],
/// [`Error::Cancelled`], or [`Error::Failed`] (a task group's
/// [`try_create_task`](crate::TaskGroup::try_create_task) child that
/// returned `Err`). [`Gather::return_exceptions`] returns none: each
/// child's error stays at its position.
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
///
/// # Cancel safety
/// See [`Gather`]: dropping it unfinished cancels the children still pending.
#[track_caller]
pub fn gather<I>(inputs: I) -> Gather<<I::Item as IntoTask>::Output>
where
    I: IntoIterator,
    I::Item: IntoTask,
{
    Gather {
        engine: Engine::new(VecChildren::new(into_tasks(inputs))),
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
///
#[doc = gather_future_doc!()]
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct Gather<T> {
    engine: Engine<VecChildren<T, T, Plain>>,
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
            engine: engine.with_children(VecChildren {
                tasks: mem::take(&mut children.tasks),
                results,
                mode: PhantomData,
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
///
#[doc = gather_future_doc!()]
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct ReturnExceptions<T> {
    engine: Engine<VecChildren<T, crate::Result<T>, All>>,
}

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
///
/// # Cancel safety
/// See [`TryGather`]: dropping it unfinished cancels the children still
/// pending.
///
/// # Errors
/// The first child's `Err(e)`, as it is; or the first child that panicked
/// or was cancelled, as `E::from(`[`Error::Panicked`]`)` or
/// `E::from(`[`Error::Cancelled`]`)` (`E::from(`[`Error::Failed`]`)` for a
/// task group's [`try_create_task`](crate::TaskGroup::try_create_task)
/// child). First in completion order; the other children keep running.
///
/// # Panics
/// When an input is a plain future and there is no running Tokio runtime.
#[track_caller]
pub fn try_gather<I, U, E>(inputs: I) -> TryGather<U, E>
where
    I: IntoIterator,
    I::Item: IntoTask<Output = Result<U, E>>,
    U: Send + 'static,
    E: From<Error> + Send + 'static,
{
    TryGather {
        engine: Engine::new(VecChildren::new(into_tasks(inputs))),
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
///
#[doc = gather_future_doc!()]
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct TryGather<U, E> {
    engine: Engine<VecChildren<Result<U, E>, U, Try>>,
}

/// The children of a gather over a `Vec` and what is collected from each
/// (`R`), as the mode `M` takes it from the child's outcome. No bounds here:
/// see [`ChildTasks`].
struct VecChildren<T, R, M> {
    tasks: Vec<Task<T>>,
    results: Vec<R>,
    mode: PhantomData<M>,
}

impl<T, R, M> VecChildren<T, R, M> {
    fn new(tasks: Vec<Task<T>>) -> Self {
        VecChildren {
            tasks,
            results: Vec::new(),
            mode: PhantomData,
        }
    }
}

/// How a gather over a `Vec` takes a child's outcome: an item to collect,
/// or the error that ends it.
trait Collect<T> {
    type Item;
    type Error;
    /// Which finished children end the gather early.
    const FAILED: Option<Failed>;
    fn take(outcome: crate::Result<T>) -> Result<Self::Item, Self::Error>;
}

/// [`gather`]: values; a panic or a cancellation ends it.
struct Plain;
/// [`Gather::return_exceptions`]: every outcome; nothing ends it early, so
/// progress alone is followed, with no callbacks.
struct All;
/// [`try_gather`]: `Ok` values; an `Err`, a panic or a cancellation ends it.
struct Try;

impl<T: Send + 'static> Collect<T> for Plain {
    type Item = T;
    type Error = Error;
    const FAILED: Option<Failed> = Some(panicked_or_cancelled);
    fn take(outcome: crate::Result<T>) -> crate::Result<T> {
        outcome
    }
}

impl<T: Send + 'static> Collect<T> for All {
    type Item = crate::Result<T>;
    type Error = Infallible;
    const FAILED: Option<Failed> = None;
    fn take(outcome: crate::Result<T>) -> Result<crate::Result<T>, Infallible> {
        Ok(outcome)
    }
}

/// A child of `try_gather` fails by panicking, being cancelled, or returning
/// `Err`.
fn try_failed<U: Send + 'static, E: Send + 'static>(t: &TaskRef) -> bool {
    panicked_or_cancelled(t)
        || t.with_output(|out: Option<&Result<U, E>>| matches!(out, Some(Err(_))))
}

impl<U: Send + 'static, E: From<Error> + Send + 'static> Collect<Result<U, E>> for Try {
    type Item = U;
    type Error = E;
    const FAILED: Option<Failed> = Some(try_failed::<U, E>);
    fn take(outcome: crate::Result<Result<U, E>>) -> Result<U, E> {
        outcome.map_err(E::from)?
    }
}

impl<T, R, M> ChildTasks for VecChildren<T, R, M> {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn task(&self, i: usize) -> &TaskRef {
        &self.tasks[i]
    }
}

impl<T: Send + 'static, R, M: Collect<T, Item = R>> Children for VecChildren<T, R, M> {
    type Output = Vec<R>;
    type Error = M::Error;
    const FAILED: Option<Failed> = M::FAILED;

    fn poll_child(&mut self, i: usize, cx: Option<&mut Context<'_>>) -> Poll<Result<(), M::Error>> {
        let outcome = std::task::ready!(poll_task(&mut self.tasks[i], cx));
        Poll::Ready(M::take(outcome).map(|v| collect(&mut self.results, self.tasks.len(), v)))
    }

    fn finish(&mut self) -> Vec<R> {
        mem::take(&mut self.results)
    }
}

engine_future!(Gather<T> where [T: Send + 'static] => crate::Result<Vec<T>>, poll);
engine_future!(ReturnExceptions<T> where [T: Send + 'static] => Vec<crate::Result<T>>, poll_all);
engine_future!(TryGather<U, E> where [U: Send + 'static, E: From<Error> + Send + 'static] => Result<Vec<U>, E>, poll);
