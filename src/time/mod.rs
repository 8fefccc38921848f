//! Time: [`Seconds`] (how every delay and timeout is given), [`sleep`] and
//! [`sleep_with`], and the one private `Deadline` every timeout of the
//! crate runs on (`sleep`, `wait`, `wait_for`, `as_completed`).
//!
//! A leaf: imports nothing from the crate.

mod deadline;
mod seconds;
mod sleep;

pub(crate) use deadline::{Budget, Deadline, instant_after};
pub use seconds::Seconds;
pub use sleep::{Sleep, sleep, sleep_with};
