//! Cancellation that lets code clean up, task groups and timeout scopes:
//! one mechanism, the cancel scope (see `node.rs` for its state machine and
//! invariants).
//!
//! | asyncio | here |
//! |---|---|
//! | `try: await f except CancelledError: await cleanup(); raise` | [`on_cancel(f, cleanup)`](on_cancel()) |
//! | `try: await f finally: await cleanup()` | [`finally(f, cleanup)`](finally()) |
//! | `except CancelledError as e: e.args` | [`TaskRef::cancel_requested`](crate::TaskRef::cancel_requested) |
//! | `async with asyncio.timeout(d) as cm:` | [`timeout(d).run(f)`](timeout()), [`Timeout`] |
//! | `async with asyncio.TaskGroup() as tg:` | [`task_group(\|tg\| …)`](task_group()), [`TaskGroup`] |

mod await_task;
mod deadline;
mod in_scope;
#[cfg(all(test, asyncio_loom))]
mod loom_models;
mod node;
mod on_cancel;
mod root;
mod task_group;
mod timeout;

pub(crate) use await_task::{AwaitAction, AwaitScope, Awaiter};
pub(crate) use in_scope::InScope;
pub(crate) use node::Node;
pub(crate) use root::{AbortFn, TaskRoot};

pub use on_cancel::{CancelExt, Finally, OnCancel, finally, on_cancel};
pub use task_group::{GroupBuilder, TaskGroup, TaskGroupRun, task_group};
pub use timeout::{IntoDeadline, Timeout, TimeoutRun, timeout, timeout_at};
