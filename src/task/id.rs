//! Task and callback ids: process-wide counters, never reused.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identity: unique in the process, never reused, `Display`s as a
/// number.
///
/// ```
/// asyncio::run(async {
///     let a = asyncio::create_task(async {});
///     let b = asyncio::create_task(async {});
///     assert_ne!(a.id(), b.id());
///     assert_eq!(a.id(), a.to_ref().id());
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub(crate) NonZeroU64);

impl TaskId {
    /// The id as a number.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async {});
    ///     assert_eq!(t.id().as_u64().to_string(), t.id().to_string());
    /// });
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Names a registered done callback, for
/// [`remove_done_callback`](crate::TaskRef::remove_done_callback). Unique in the
/// process: an id from one task removes nothing from another.
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::create_task(asyncio::sleep(1));
///     let id = t.add_done_callback(|_| println!("done"));
///     assert_eq!(t.remove_done_callback(id), 1);
///     assert_eq!(t.remove_done_callback(id), 0);
///     t.cancel();
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(pub(super) u64);

impl TaskId {
    /// The next task id.
    pub(super) fn next() -> TaskId {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        TaskId(NonZeroU64::new(id).expect("task id counter wrapped"))
    }
}

impl CallbackId {
    /// The next callback id.
    pub(super) fn next() -> CallbackId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        CallbackId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
