//! The runtime edges: [`run`](crate::run) and [`Runner`](crate::Runner)
//! (`runner`), the event-loop facade [`Loop`](crate::Loop) (`event_loop`),
//! and the thread bridges `to_thread`, `run_coroutine_threadsafe` and
//! [`ConcurrentFuture`](crate::ConcurrentFuture) (`threads`).
//!
//! They sit on top: they may use every layer below (the task, reports,
//! time); nothing below imports them.

pub(crate) mod event_loop;
pub(crate) mod runner;
pub(crate) mod threads;
