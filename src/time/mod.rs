//! Time: [`Seconds`] (how every delay and timeout is given), [`sleep`] and
//! [`sleep_with`].
//!
//! A leaf: imports nothing from the crate.

mod seconds;
mod sleep;

pub use seconds::Seconds;
pub use sleep::{Sleep, sleep, sleep_with};
