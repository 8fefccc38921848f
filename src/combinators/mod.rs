//! The combinators: asyncio's `gather`, `wait`, `wait_for`, `shield` and
//! `as_completed`.
//!
//! They use the task only through its handles ([`Task`](crate::Task),
//! [`TaskRef`](crate::TaskRef)) and the done-callback hook of
//! `task::core` (through [`children`]), and time only through
//! [`Deadline`](crate::time::Deadline). Nothing below imports them.

pub(crate) mod as_completed;
pub(crate) mod children;
pub(crate) mod gather;
pub(crate) mod input;
pub(crate) mod shield;
pub(crate) mod wait;
pub(crate) mod wait_for;
