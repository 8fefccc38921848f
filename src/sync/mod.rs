//! asyncio's synchronization primitives: [`Event`], [`Lock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Condition`], [`Barrier`].
//!
//! Each keeps asyncio's names and rules, and is built on Tokio's primitive
//! where that has them already (`Lock` and the semaphores on
//! [`tokio::sync::Semaphore`], which is FIFO-fair and cancel-safe; `Event`
//! and `Barrier` on [`tokio::sync::Notify`]); `Condition`'s waiter queue is
//! written by hand (see its docs for why). Common rules:
//!
//! - none is `Clone`: share them with an [`Arc`](std::sync::Arc);
//! - all are `Send + Sync` and work on the multi-thread runtime, from any
//!   thread (asyncio's are bound to one event loop);
//! - waiters are served first come, first served where asyncio promises it
//!   (`Lock`, the semaphores, `Condition::notify`);
//! - a waiter that is cancelled (its future dropped, its task cancelled, a
//!   [`wait_for`](crate::wait_for) around it timing out) takes nothing with
//!   it: no lock, no permit, no notification (those go to the next waiter).
//!
//! ```
//! use std::sync::Arc;
//!
//! asyncio::run(async {
//!     let lock = Arc::new(asyncio::Lock::new());
//!     let started = Arc::new(asyncio::Event::new());
//!     let worker = asyncio::create_task({
//!         let (lock, started) = (lock.clone(), started.clone());
//!         async move {
//!             let _held = lock.acquire().await;
//!             started.set();
//!             asyncio::sleep(0.01).await;
//!         }
//!     });
//!     started.wait().await;
//!     assert!(lock.locked());
//!     worker.await.unwrap();
//!     assert!(!lock.locked());
//! });
//! ```

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;
pub(crate) mod waitlist;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard, OwnedLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
