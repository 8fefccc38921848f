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
//! done callback per child (see `combinators/children.rs`; no allocation of its own). Each child is looked at a
//! bounded number of times, so a gather of 100 000 tasks costs linear time,
//! also when it is itself awaited inside a task on the multi-thread runtime
//! (where `futures::future::join_all` goes quadratic).
//!
//! # Files
//! - `engine.rs`: the state machine every gather future runs on, and the
//!   one macro that writes their `Unpin`/`Future`/`Debug` impls;
//! - `vec.rs`: [`gather`], [`try_gather`] and their futures;
//! - `tuple.rs`: [`gather!`](crate::gather!) and its futures, [`TaskTuple`].

mod engine;
mod tuple;
mod vec;

pub use tuple::{GatherTuple, ReturnExceptionsTuple, TaskTuple, TupleSlots, gather_tuple};
pub use vec::{Gather, ReturnExceptions, TryGather, gather, try_gather};
