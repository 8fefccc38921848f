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
//!
//! # Files
//! `frame.rs`: [`Frame`] and the type-name parser that names frames;
//! `framed.rs`: [`Framed`], [`framed`], [`framed_as`], [`FramedExt`], which
//! record marked await points; `print.rs`: `get_stack`, `print_stack` and
//! [`dump_tasks`]. What they read (the await points, the panic location,
//! the debug-mode backtrace) is recorded per task by `crate::task::diag`,
//! together with the panic hook that records a task's panic: the task core
//! needs them and must not import this module.

mod frame;
mod framed;
mod print;

pub use self::frame::Frame;
pub use self::framed::{Framed, FramedExt, framed, framed_as};
pub use self::print::dump_tasks;
