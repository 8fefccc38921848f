//! Tasks: [`create_task`], [`Task`], [`TaskRef`], [`current_task`],
//! [`all_tasks`].
//!
//! A task is a future scheduled on Tokio with an identity asyncio users know:
//! a name, an id, a state you can ask about (`done()`, `cancelled()`), an
//! outcome you can read more than once (`result()`, `exception()`), done
//! callbacks, and a place in [`all_tasks`].
//!
//! | asyncio | here |
//! |---|---|
//! | `asyncio.create_task(coro, name="x")` | [`Task::builder()`]`.name("x").spawn(fut)` |
//! | `await task` | `task.await` (cancels the task if the awaiter goes away) or `(&mut task).await` |
//! | `task.cancel(msg)` | [`cancel_with`](TaskRef::cancel_with) |
//! | `asyncio.current_task()` | [`current_task`] |
//! | `asyncio.all_tasks()` | [`all_tasks`] |
//!
//! [`Task<T>`] owns the output and is not `Clone`; [`TaskRef`] is a cheap,
//! type-erased, cloneable handle to the same task for introspection and
//! control. A `Task<T>` dereferences to a `TaskRef`, so every `TaskRef` method
//! can be called on a `Task<T>`.
//!
//! ```
//! // One thread: the task cannot end before the checks below.
//! asyncio::Runner::new().current_thread().run(async {
//!     let task = asyncio::Task::builder()
//!         .name("fetch")
//!         .spawn(async { asyncio::sleep_with(0.01, 42).await });
//!     assert_eq!(task.get_name(), "fetch");
//!     assert!(!task.done());
//!     assert_eq!(task.await.unwrap(), 42);
//! });
//! ```
//!
//! # Files
//! One concept per file, bottom up: `id` (ids), `state` (the state word),
//! `diag` (per-task diagnostic flags), `callbacks` (the callback list and the
//! one place a callback runs), `core` (the shared state of one task),
//! `registry` (every live task), `current` (the current task), `harness`
//! (the one place a task ends), `handle` ([`TaskRef`]), `join` ([`Task`],
//! [`Join`], [`JoinRef`]), `builder` ([`Builder`], [`create_task`]), `wrap`
//! (adopted Tokio tasks). Nothing here imports `crate::stack`; the task
//! core and `crate::report` know each other (see `docs/design.md`).
//!
//! # Invariants (index)
//! Each is stated in the file that keeps it and cited by number wherever the
//! code relies on it.
//! 1. One end — `harness.rs`.
//! 2. The future is gone first — `harness.rs`.
//! 3. A cancel is a request; a returned value wins — `state.rs`.
//! 4. Callbacks run once, in order, unlocked — `callbacks.rs`.
//! 5. The registry lists every live core; `all_tasks` shows the pending
//!    ones — `registry.rs`.
//! 6. No clone per poll — `current.rs`.
//! 7. Stacks and debug mode cost one branch when off — `diag.rs`.
//! 8. No unwind leaves the harness — `harness.rs`.
//! 9. The state word is written only under the lock — `state.rs`.

mod builder;
mod callbacks;
pub(crate) mod core;
mod current;
pub(crate) mod diag;
mod handle;
mod harness;
mod id;
mod join;
pub(crate) mod registry;
mod state;
mod wrap;

pub use self::builder::{Builder, create_task};
pub use self::current::current_task;
pub use self::handle::TaskRef;
pub use self::id::{CallbackId, TaskId};
pub use self::join::{Join, JoinRef, Task};
pub use self::registry::all_tasks;

// What the combinators, the runtime and `threads` use.
pub(crate) use self::callbacks::{Callback, ChildDone};
pub(crate) use self::core::Core;
pub(crate) use self::core::DISCARDED_RESULT;
pub(crate) use self::current::{scope_current, with_current};
pub(crate) use self::handle::WeakTaskRef;
pub(crate) use self::harness::{MainEnd, MainHarness, drop_contained};
pub(crate) use self::registry::collect;
