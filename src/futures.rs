//! The futures the crate's functions and methods return, nameable (as
//! `tokio::task::futures` names Tokio's).
//!
//! You rarely write these names: `gather(..).await`, `wait_for(..).await`
//! and `sleep(..).await` do not need them. Name them to store one in a
//! struct, return one from a function, or write a bound.
//!
//! | returned by | future | resolves to |
//! |---|---|---|
//! | [`gather`](crate::gather()) | [`Gather<T>`] | `asyncio::Result<Vec<T>>` |
//! | [`Gather::return_exceptions`] | [`ReturnExceptions<T>`] | `Vec<asyncio::Result<T>>` |
//! | [`try_gather`](crate::try_gather) | [`TryGather<U, E>`] | `Result<Vec<U>, E>` |
//! | [`gather!`](crate::gather!) | [`GatherTuple<S>`] | `asyncio::Result<(A, B, …)>` |
//! | [`GatherTuple::return_exceptions`] | [`ReturnExceptionsTuple<S>`] | `(asyncio::Result<A>, …)` |
//! | [`wait_for`](crate::wait_for) | [`WaitFor<A>`] | `asyncio::Result<A::Output>` |
//! | [`shield`](crate::shield) | [`Shield<T>`] | `asyncio::Result<T>` |
//! | [`wait`](crate::wait) | [`Wait<T>`] | `(done, pending)` |
//! | [`as_completed`](crate::as_completed) | [`AsCompleted<T>`] (items: [`NextCompleted<T>`]) | `asyncio::Result<T>` each |
//! | [`sleep`](crate::sleep), [`sleep_with`](crate::sleep_with) | [`Sleep<T>`] | `T` |
//! | `task.await`, `(&mut task).await` | [`Join<T>`], [`JoinRef<'_, T>`] | `asyncio::Result<T>` |
//! | [`framed`](crate::framed), [`FramedExt`](crate::FramedExt) | [`Framed<F>`] | `F::Output` |
//!
//! ```
//! use asyncio::futures::{Gather, Sleep};
//!
//! fn two_naps() -> Gather<u8> {
//!     asyncio::gather([asyncio::sleep_with(0.01, 1), asyncio::sleep_with(0.02, 2)])
//! }
//!
//! asyncio::run(async {
//!     let nap: Sleep<()> = asyncio::sleep(0);
//!     nap.await;
//!     assert_eq!(two_naps().await.unwrap(), [1, 2]);
//! });
//! ```

pub use crate::combinators::as_completed::{AsCompleted, NextCompleted};
pub use crate::combinators::gather::{
    Gather, GatherTuple, ReturnExceptions, ReturnExceptionsTuple, TryGather,
};
pub use crate::combinators::shield::Shield;
pub use crate::combinators::wait::Wait;
pub use crate::combinators::wait_for::WaitFor;
pub use crate::scope::{Finally, OnCancel, TaskGroupRun, TimeoutRun};
pub use crate::stack::Framed;
pub use crate::task::{Join, JoinRef};
pub use crate::time::Sleep;
