//! asyncio's queues: [`Queue`] (first in, first out), [`LifoQueue`] (last
//! in, first out), [`PriorityQueue`] (smallest first), all one
//! [`GenericQueue`] with a different [`Order`], and their errors
//! [`PutError`] / [`GetError`].
//!
//! They have asyncio's methods and rules: `maxsize` (`0`: unbounded),
//! `qsize`, `empty`, `full`, `put`/`put_nowait`, `get`/`get_nowait`,
//! `task_done`/`join`, and `shutdown` (asyncio 3.13). See [`GenericQueue`]
//! for the details, and for when a Tokio channel is the better choice.
//!
//! ```
//! asyncio::run(async {
//!     let fifo = asyncio::Queue::new(0);
//!     let lifo = asyncio::LifoQueue::new(0);
//!     let prio = asyncio::PriorityQueue::new(0);
//!     for i in [2, 3, 1] {
//!         fifo.put(i).await.unwrap();
//!         lifo.put(i).await.unwrap();
//!         prio.put(i).await.unwrap();
//!     }
//!     let drain = |get: &dyn Fn() -> Result<i32, asyncio::GetError>| {
//!         std::iter::from_fn(|| get().ok()).collect::<Vec<_>>()
//!     };
//!     assert_eq!(drain(&|| fifo.get_nowait()), [2, 3, 1]);
//!     assert_eq!(drain(&|| lifo.get_nowait()), [1, 3, 2]);
//!     assert_eq!(drain(&|| prio.get_nowait()), [1, 2, 3]);
//! });
//! ```

mod core;
mod error;
mod order;

pub use self::core::{GenericQueue, Get, Put};
pub use error::{GetError, PutError};
pub use order::{Fifo, Lifo, Order, Priority};

/// A first in, first out queue: asyncio's `asyncio.Queue`. The methods are
/// [`GenericQueue`]'s.
///
/// ```
/// let q = asyncio::Queue::new(0);
/// q.put_nowait("first").unwrap();
/// q.put_nowait("second").unwrap();
/// assert_eq!(q.get_nowait(), Ok("first"));
/// ```
pub type Queue<T> = GenericQueue<T, Fifo>;

/// A last in, first out queue: asyncio's `asyncio.LifoQueue`. The methods
/// are [`GenericQueue`]'s.
///
/// ```
/// let q = asyncio::LifoQueue::new(0);
/// q.put_nowait("first").unwrap();
/// q.put_nowait("second").unwrap();
/// assert_eq!(q.get_nowait(), Ok("second"));
/// ```
pub type LifoQueue<T> = GenericQueue<T, Lifo>;

/// A queue that hands out its smallest item first: asyncio's
/// `asyncio.PriorityQueue` (a binary heap, as asyncio's `heapq`; equal items
/// come out in no particular order). Items are typically
/// `(priority, data)` tuples. The methods are [`GenericQueue`]'s.
///
/// `T`'s `Ord` runs while the queue's internal lock is held: it must not
/// use the same queue.
///
/// ```
/// let q = asyncio::PriorityQueue::new(0);
/// q.put_nowait((2, "later")).unwrap();
/// q.put_nowait((1, "sooner")).unwrap();
/// assert_eq!(q.get_nowait(), Ok((1, "sooner")));
/// ```
pub type PriorityQueue<T> = GenericQueue<T, Priority>;
