//! [`gather!`](crate::gather!) and its futures: children of different
//! types, in a tuple of tasks ([`TaskTuple`], implemented by one macro for
//! tuples of up to 12).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::engine::{ChildTasks, Children, Engine, engine_future, gather_future_doc, poll_task};
use crate::combinators::children::{Failed, panicked_or_cancelled};
use crate::{Error, Task, TaskRef};

/// Runs futures (or tasks) of different output types concurrently: asyncio's
/// `gather(a, b, c)`, resolving to `asyncio::Result<(A, B, C)>`.
///
/// Each argument is a [`Task`] or a future, scheduled as a task when the
/// macro is evaluated (see [`IntoTask`](crate::IntoTask)). Same semantics as [`gather`](fn@crate::gather):
/// results in argument order, the first child to panic or be cancelled ends
/// it at once with that error (the others keep running), dropping it
/// unfinished cancels the children still pending. Up to 12 arguments;
/// `gather!()` resolves to `Ok(())`.
///
/// # Errors
/// As [`gather`](fn@crate::gather): the error of the first child to fail,
/// [`Error::Panicked`](crate::Error::Panicked),
/// [`Error::Cancelled`](crate::Error::Cancelled) or
/// [`Error::Failed`](crate::Error::Failed).
///
/// # Cancel safety
/// As [`gather`](fn@crate::gather): dropping the future unfinished cancels
/// the children still pending (see [`GatherTuple`](crate::futures::GatherTuple)).
///
/// # Panics
/// When an argument is a plain future and there is no running Tokio runtime.
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
///
#[doc = gather_future_doc!()]
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct GatherTuple<S: TaskTuple> {
    engine: Engine<TupleChildren<S, false>>,
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
        ReturnExceptionsTuple {
            engine: engine.with_children(TupleChildren {
                tasks: children.tasks.take(),
                slots: mem::take(&mut children.slots),
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
///
#[doc = gather_future_doc!()]
#[must_use = "futures do nothing unless awaited (the children run anyway)"]
pub struct ReturnExceptionsTuple<S: TaskTuple> {
    engine: Engine<TupleChildren<S, true>>,
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
    /// Collects child `i` if it is done (with `cx`, waits for it); an
    /// error ends the gather unless `keep_errors`.
    #[doc(hidden)]
    fn __poll(
        &mut self,
        slots: &mut Self::Slots,
        i: usize,
        cx: Option<&mut Context<'_>>,
        keep_errors: bool,
    ) -> Poll<crate::Result<()>>;
    /// The values, once every child returned.
    #[doc(hidden)]
    fn __finish(slots: Self::Slots) -> Self::Output;
    /// The outcomes, once every child ended.
    #[doc(hidden)]
    fn __finish_all(slots: Self::Slots) -> Self::Results;
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
    /// Each outcome, once collected.
    type Slots: Default;
}

/// The children of a `gather!` and their outcomes so far. `ALL`:
/// `return_exceptions()`, where an error is an outcome, not the end.
struct TupleChildren<S: TaskTuple, const ALL: bool> {
    /// `None` once handed over to `return_exceptions()` (the engine is then
    /// finished and never looks at its children again).
    tasks: Option<S>,
    slots: S::Slots,
}

impl<S: TaskTuple, const ALL: bool> TupleChildren<S, ALL> {
    fn tasks(&self) -> &S {
        self.tasks
            .as_ref()
            .expect("asyncio: gather! used after hand-over")
    }

    fn poll(&mut self, i: usize, cx: Option<&mut Context<'_>>) -> Poll<crate::Result<()>> {
        let tasks = self
            .tasks
            .as_mut()
            .expect("asyncio: gather! used after hand-over");
        tasks.__poll(&mut self.slots, i, cx, ALL)
    }
}

impl<S: TaskTuple, const ALL: bool> ChildTasks for TupleChildren<S, ALL> {
    fn len(&self) -> usize {
        S::LEN
    }

    fn task(&self, i: usize) -> &TaskRef {
        self.tasks().__task(i)
    }
}

impl<S: TaskTuple> Children for TupleChildren<S, false> {
    type Output = S::Output;
    type Error = Error;
    const FAILED: Option<Failed> = Some(panicked_or_cancelled);

    fn poll_child(&mut self, i: usize, cx: Option<&mut Context<'_>>) -> Poll<crate::Result<()>> {
        self.poll(i, cx)
    }

    fn finish(&mut self) -> S::Output {
        S::__finish(mem::take(&mut self.slots))
    }
}

impl<S: TaskTuple> Children for TupleChildren<S, true> {
    type Output = S::Results;
    type Error = Infallible;
    // Nothing ends it early: progress alone is followed, no callbacks.
    const FAILED: Option<Failed> = None;

    fn poll_child(
        &mut self,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<(), Infallible>> {
        // Keeping errors, collecting never fails.
        self.poll(i, cx).map(|_| Ok(()))
    }

    fn finish(&mut self) -> S::Results {
        S::__finish_all(mem::take(&mut self.slots))
    }
}

/// Puts a child's outcome in its slot; an error ends the gather instead
/// unless `keep_errors`.
fn store<T>(
    slot: &mut Option<crate::Result<T>>,
    r: crate::Result<T>,
    keep: bool,
) -> crate::Result<()> {
    match r {
        Err(e) if !keep => Err(e),
        r => {
            *slot = Some(r);
            Ok(())
        }
    }
}

/// A collected outcome.
fn outcome<T>(slot: Option<crate::Result<T>>) -> crate::Result<T> {
    slot.expect("asyncio: gather! finished with a missing result")
}

/// A collected value (errors end the gather before it finishes).
fn value<T>(slot: Option<crate::Result<T>>) -> T {
    match outcome(slot) {
        Ok(v) => v,
        Err(_) => unreachable!("asyncio: gather! finished with an error collected"),
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
            type Slots = ($(Option<crate::Result<$T>>,)*);
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
                keep_errors: bool,
            ) -> Poll<crate::Result<()>> {
                match i {
                    $($i => poll_task(&mut self.$i, cx).map(|r| store(&mut slots.$i, r, keep_errors)),)*
                    _ => unreachable!(),
                }
            }

            #[allow(unused_variables, clippy::unused_unit)]
            fn __finish(slots: Self::Slots) -> Self::Output {
                ($(value(slots.$i),)*)
            }

            #[allow(unused_variables, clippy::unused_unit)]
            fn __finish_all(slots: Self::Slots) -> Self::Results {
                ($(outcome(slots.$i),)*)
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

engine_future!(GatherTuple<S> where [S: TaskTuple] => crate::Result<S::Output>, poll);
engine_future!(ReturnExceptionsTuple<S> where [S: TaskTuple] => S::Results, poll_all);
