//! Python asyncio's high-level API, on Tokio: tasks and their combinators,
//! cancellation with cleanup, task groups and timeout scopes, synchronization
//! primitives, queues, streams and subprocesses.
//!
//! This crate is for people porting asyncio code to Rust, for tests written
//! with the familiar `gather` / `wait_for` idioms, and for Tokio services that
//! want named, inspectable, cancellable tasks. It never starts a scheduler of
//! its own: everything runs on Tokio, inside [`run`] or inside any Tokio
//! runtime (`#[tokio::main]`, `#[tokio::test]`, one built by hand).
//!
//! # A tour
//!
//! ```
//! use std::time::Duration;
//!
//! async fn say_after(delay: f64, what: &'static str) -> &'static str {
//!     asyncio::sleep(delay).await;
//!     what
//! }
//!
//! // asyncio.run(main())
//! let greeting = asyncio::run(async {
//!     // asyncio.create_task(coro, name=...)
//!     let hello = asyncio::Task::builder().name("hello").spawn(say_after(0.1, "hello"));
//!     let world = asyncio::create_task(say_after(0.2, "world"));
//!
//!     // the main future is a task too, and every task is listed
//!     assert!(asyncio::current_task().is_some());
//!     assert!(asyncio::all_tasks().len() >= 3);
//!
//!     // await task -> asyncio::Result<T>
//!     format!("{} {}", hello.await.unwrap(), world.await.unwrap())
//! });
//! assert_eq!(greeting, "hello world");
//! ```
//!
//! # What maps to what
//!
//! | asyncio | this crate |
//! |---|---|
//! | `asyncio.run(main())` | [`run`]`(main)` / [`Runner`] |
//! | `asyncio.create_task(coro, name=)` | [`create_task`], [`Task::builder`] |
//! | `asyncio.sleep(delay, result)` | [`sleep`], [`sleep_with`] |
//! | `asyncio.Task` | [`Task<T>`] (owns the result) and [`TaskRef`] (cloneable handle) |
//! | `asyncio.current_task()`, `all_tasks()` | [`current_task`], [`all_tasks`] |
//! | `CancelledError`, `TimeoutError`, `InvalidStateError`, an exception | [`Error`] |
//! | `asyncio.gather(*aws)`, `return_exceptions=True` | [`gather()`], [`gather!`], [`Gather::return_exceptions`](futures::Gather::return_exceptions), [`try_gather`] |
//! | `asyncio.wait_for(aw, timeout)` | [`wait_for`] |
//! | `asyncio.shield(aw)` | [`shield`] |
//! | `asyncio.wait(aws, timeout=, return_when=)` | [`wait`], [`ReturnWhen`], [`FIRST_COMPLETED`], [`FIRST_EXCEPTION`], [`ALL_COMPLETED`] |
//! | `asyncio.as_completed(aws, timeout=)` | [`as_completed`] ([`Iterator`] of futures and [`Stream`](::futures::Stream)) |
//! | `loop.set_exception_handler` | [`set_exception_handler`] |
//! | `asyncio.to_thread(func)` | [`to_thread`] |
//! | `asyncio.run_coroutine_threadsafe(coro, loop)` → `concurrent.futures.Future` | [`run_coroutine_threadsafe`] → [`ConcurrentFuture`] |
//! | `asyncio.get_running_loop()`, `loop.call_soon/call_later/call_at/time/run_in_executor` | [`get_running_loop`], [`Loop`] ([`CallbackHandle`], [`TimerHandle`]) |
//! | a Tokio `JoinHandle` you already have | [`Task::from_join_handle`], [`Builder::wrap`] |
//! | `task.get_stack()`, `task.print_stack()` | [`TaskRef::get_stack`], [`TaskRef::print_stack`] (frames: spawn site, [`framed`] await points, panic location), [`dump_tasks`] |
//! | `asyncio.open_connection`, `open_unix_connection` | [`open_connection`], [`open_unix_connection`] → ([`StreamReader`], [`StreamWriter`]) |
//! | `asyncio.start_server`, `start_unix_server`, `Server` | [`start_server`], [`start_unix_server`], [`Server`] |
//! | `IncompleteReadError`, `LimitOverrunError` | [`IncompleteReadError`], [`LimitOverrunError`], [`ReadUntilError`] |
//! | `asyncio.create_subprocess_exec/_shell`, `Process`, `PIPE`, `DEVNULL`, `STDOUT` | [`create_subprocess_exec`], [`create_subprocess_shell`] ([`Subprocess`]), [`Process`], [`PIPE`], [`DEVNULL`], [`STDOUT`] ([`Redirect`]) |
//! | `loop.set_debug(True)`, `PYTHONASYNCIODEBUG=1`, `loop.slow_callback_duration` | [`Runner::debug`], `ASYNCIO_DEBUG=1`, [`set_slow_callback_duration`] |
//! | `except CancelledError: await cleanup(); raise`, `finally: await cleanup()` | [`on_cancel`], [`finally`] ([`CancelExt`]), [`TaskRef::cancel_requested`] |
//! | `async with asyncio.timeout(d)`, `timeout_at(when)` | [`timeout`], [`timeout_at`] → [`Timeout`] |
//! | `async with asyncio.TaskGroup() as tg`, `ExceptionGroup` | [`task_group`] → [`TaskGroup`], [`ExceptionGroup`] |
//! | `asyncio.Event` | [`Event`] |
//! | `asyncio.Lock`, `async with lock:` | [`Lock`], [`LockGuard`] (`let _g = lock.acquire().await;`), [`OwnedLockGuard`] |
//! | `asyncio.Semaphore`, `asyncio.BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`], [`SemaphorePermit`] |
//! | `asyncio.Condition` | [`Condition`], [`ConditionGuard`] (`g = g.wait().await`) |
//! | `asyncio.Barrier`, `BrokenBarrierError` | [`Barrier`], [`Error::BrokenBarrier`] |
//! | `asyncio.Queue`, `LifoQueue`, `PriorityQueue` | [`Queue`], [`LifoQueue`], [`PriorityQueue`] (all a [`queue::GenericQueue`]) |
//! | `QueueFull`, `QueueEmpty`, `QueueShutDown` | [`PutError`], [`GetError`] |
//!
//! Delays and timeouts take a [`Duration`](std::time::Duration) or plain
//! seconds (`sleep(0.5)`), see [`Seconds`].
//!
//! # Cancellation, the Rust way
//!
//! asyncio cancels a task by raising `CancelledError` inside it at its next
//! `await`. Rust futures cannot catch anything: [`TaskRef::cancel`] drops the
//! task's future at its next suspension point, running its destructors, and
//! the task ends cancelled. Cleanup that awaits (asyncio's `except
//! CancelledError:` / `finally:`) is written with [`on_cancel`] and
//! [`finally`]: a cancellation reaches them first and their cleanups run to
//! their end before the future is dropped; [`timeout`] scopes, [`wait_for`]
//! and [`task_group`]s cancel what they run the same way. A value the future
//! returned is never lost to a late cancel. Awaiting a task by value ties it
//! to the awaiter (cancelling the awaiter cancels the task and waits for its
//! cleanups, as in asyncio); `(&mut task).await` does not. See
//! `docs/differences.md` for every deliberate difference.
//!
//! # Panics in tasks, and the panic hook
//!
//! A panic inside a task of ours is the task's exception: it is caught at the
//! task's edge, the task ends with [`Error::Panicked`], and whoever awaits
//! the task (or calls [`Task::result`], [`TaskRef::exception`], ...) gets it.
//! As in asyncio, nothing is printed when it happens. A panic nobody saw is
//! reported through the [exception handler](set_exception_handler) as
//! `Task exception was never retrieved`, with its message and location, once
//! the task has ended and its last [`Task`] handle is gone (awaiting,
//! `result()`, `exception()`, or `cancel()` once the task ended count as
//! seeing it: a panic raised after a `cancel()`, while the task handles it,
//! is reported like any other; [`TaskRef`]s are not handles). The combinators see what asyncio's retrieve: every
//! child of a [`gather()`], an awaited [`shield`]'s or [`wait_for`]'s task,
//! the tasks [`wait`] with [`FIRST_EXCEPTION`] saw end but the last;
//! [`as_completed`] only what it handed out (see `docs/differences.md`).
//!
//! This is done by a panic hook that the crate installs when it creates its
//! first task, and that wraps the hook installed before it:
//! - a panic while one of our tasks is being polled (or its future dropped)
//!   is recorded in the task (its location is the last frame of
//!   [`TaskRef::get_stack`]) and not passed on;
//! - every other panic goes to the previous hook unchanged: panics outside
//!   our tasks, in a done callback (also reported as `Exception in
//!   callback`), and in the main task of [`run`], whose panic goes on to
//!   `run`'s caller.
//!
//! A hook installed *after* the crate's (`std::panic::set_hook`) replaces it:
//! panics in tasks are then printed by that hook, and their location is not
//! recorded (no `<panic>` frame, no `panicked at` in the report), but they
//! are still the tasks' errors and still reported when never retrieved. To
//! log task panics, use [`set_exception_handler`] rather than a panic hook.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! let reports = Arc::new(Mutex::new(Vec::new()));
//! let sink = reports.clone();
//! asyncio::set_exception_handler(Some(move |ctx: &asyncio::ExceptionContext| {
//!     let task = ctx.task().map(|t| t.get_name());
//!     sink.lock().unwrap().push((ctx.message().to_string(), task));
//! }));
//! asyncio::run(async {
//!     // Seen through the await: nothing printed, nothing reported.
//!     let seen = asyncio::Task::builder().name("seen").spawn(async { panic!("seen") });
//!     assert!(seen.await.unwrap_err().is_panic());
//!     // Never seen: reported once the task ended and its handle is gone.
//!     let (tx, rx) = tokio::sync::oneshot::channel();
//!     let lost = asyncio::Task::builder().name("lost").spawn(async { panic!("lost") });
//!     lost.add_done_callback(move |_| drop(tx.send(())));
//!     let _ = rx.await;
//!     drop(lost);
//! });
//! asyncio::set_exception_handler(None::<fn(&asyncio::ExceptionContext)>);
//! assert_eq!(
//!     *reports.lock().unwrap(),
//!     [("Task exception was never retrieved".to_string(), Some("lost".to_string()))]
//! );
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod combinators;
mod error;
pub mod futures;
mod lock;
pub mod queue;
mod report;
mod runtime;
mod scope;
mod stack;
mod streams;
#[cfg(unix)]
mod subprocess;
#[doc(hidden)]
pub mod support;
mod sync;
mod sync_shim;
mod task;
mod time;

pub use combinators::as_completed::as_completed;
pub use combinators::gather::{gather, try_gather};
pub use combinators::input::Awaitable;
pub use combinators::input::IntoTask;
pub use combinators::shield::shield;
pub use combinators::wait::{ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, ReturnWhen, wait};
pub use combinators::wait_for::wait_for;
pub use error::{
    CancelledError, Error, ExceptionGroup, FailedError, InvalidStateError, PanicError, Result,
    TimeoutError,
};
pub use queue::{GetError, LifoQueue, PriorityQueue, PutError, Queue};
pub use report::{
    ExceptionContext, call_exception_handler, reset_exception_handler, set_exception_handler,
    set_slow_callback_duration, slow_callback_duration,
};
pub use runtime::event_loop::{CallbackHandle, Loop, TimerHandle, get_running_loop};
pub use runtime::runner::{Runner, run};
pub use runtime::threads::{ConcurrentFuture, run_coroutine_threadsafe, to_thread};
pub use scope::{
    CancelExt, GroupBuilder, IntoDeadline, TaskGroup, Timeout, finally, on_cancel, task_group,
    timeout, timeout_at,
};
pub use stack::{Frame, FramedExt, dump_tasks, framed, framed_as};
pub use streams::{
    IncompleteReadError, LimitOverrunError, ReadUntilError, Server, StreamReader, StreamWriter,
    open_connection, start_server,
};
#[cfg(unix)]
pub use streams::{open_unix_connection, start_unix_server};
#[cfg(unix)]
pub use subprocess::{
    DEVNULL, PIPE, Process, Redirect, STDOUT, Subprocess, create_subprocess_exec,
    create_subprocess_shell,
};
pub use sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, OwnedLockGuard,
    Semaphore, SemaphorePermit,
};
pub use task::{Builder, CallbackId, Task, TaskId, TaskRef, all_tasks, create_task, current_task};
pub use time::{Seconds, sleep, sleep_with};

/// The Rust blocks of the README and of `docs/*.md`, compiled and run by
/// `cargo test --doc` so that the documentation cannot go stale.
#[cfg(doctest)]
mod doc_files {
    #[doc = include_str!("../README.md")]
    mod readme {}
    #[doc = include_str!("../docs/porting.md")]
    mod porting {}
    #[doc = include_str!("../docs/differences.md")]
    mod differences {}
    #[doc = include_str!("../docs/design.md")]
    mod design {}
    #[doc = include_str!("../docs/performance.md")]
    mod performance {}
    #[doc = include_str!("../docs/reliability.md")]
    mod reliability {}
}
