//! The orders a queue can keep: [`Fifo`], [`Lifo`], [`Priority`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

mod sealed {
    pub trait Sealed {}
}

/// The order in which a [`GenericQueue`](super::GenericQueue) hands out its
/// items: [`Fifo`] ([`Queue`](super::Queue)), [`Lifo`]
/// ([`LifoQueue`](super::LifoQueue)) or [`Priority`]
/// ([`PriorityQueue`](super::PriorityQueue)). Sealed: asyncio's subclassing
/// hooks (`_init`, `_put`, `_get`) are not part of this crate's API.
///
/// ```
/// fn first<O: asyncio::queue::Order<u32>>(q: &asyncio::queue::GenericQueue<u32, O>) -> u32 {
///     q.get_nowait().unwrap()
/// }
/// let q = asyncio::LifoQueue::new(0);
/// q.put_nowait(1).unwrap();
/// q.put_nowait(2).unwrap();
/// assert_eq!(first(&q), 2);
/// ```
pub trait Order<T>: sealed::Sealed {
    /// Where the items are kept.
    #[doc(hidden)]
    type Store;
    #[doc(hidden)]
    fn store() -> Self::Store;
    #[doc(hidden)]
    fn push(store: &mut Self::Store, item: T);
    #[doc(hidden)]
    fn pop(store: &mut Self::Store) -> Option<T>;
    #[doc(hidden)]
    fn len(store: &Self::Store) -> usize;
}

/// First in, first out: [`Queue`](super::Queue).
///
/// ```
/// let q: asyncio::queue::GenericQueue<u8, asyncio::queue::Fifo> = asyncio::Queue::new(0);
/// q.put_nowait(1).unwrap();
/// q.put_nowait(2).unwrap();
/// assert_eq!(q.get_nowait(), Ok(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Fifo;

/// Last in, first out: [`LifoQueue`](super::LifoQueue).
///
/// ```
/// let q: asyncio::queue::GenericQueue<u8, asyncio::queue::Lifo> = asyncio::LifoQueue::new(0);
/// q.put_nowait(1).unwrap();
/// q.put_nowait(2).unwrap();
/// assert_eq!(q.get_nowait(), Ok(2));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifo;

/// Smallest first, as asyncio's `heapq`: [`PriorityQueue`](super::PriorityQueue).
/// Equal items come out in no particular order.
///
/// ```
/// let q: asyncio::queue::GenericQueue<u8, asyncio::queue::Priority> =
///     asyncio::PriorityQueue::new(0);
/// q.put_nowait(3).unwrap();
/// q.put_nowait(1).unwrap();
/// assert_eq!(q.get_nowait(), Ok(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl sealed::Sealed for Fifo {}
impl sealed::Sealed for Lifo {}
impl sealed::Sealed for Priority {}

impl<T> Order<T> for Fifo {
    type Store = VecDeque<T>;
    fn store() -> Self::Store {
        VecDeque::new()
    }
    fn push(store: &mut Self::Store, item: T) {
        store.push_back(item);
    }
    fn pop(store: &mut Self::Store) -> Option<T> {
        store.pop_front()
    }
    fn len(store: &Self::Store) -> usize {
        store.len()
    }
}

impl<T> Order<T> for Lifo {
    type Store = Vec<T>;
    fn store() -> Self::Store {
        Vec::new()
    }
    fn push(store: &mut Self::Store, item: T) {
        store.push(item);
    }
    fn pop(store: &mut Self::Store) -> Option<T> {
        store.pop()
    }
    fn len(store: &Self::Store) -> usize {
        store.len()
    }
}

impl<T: Ord> Order<T> for Priority {
    type Store = BinaryHeap<Reverse<T>>;
    fn store() -> Self::Store {
        BinaryHeap::new()
    }
    fn push(store: &mut Self::Store, item: T) {
        store.push(Reverse(item));
    }
    fn pop(store: &mut Self::Store) -> Option<T> {
        store.pop().map(|Reverse(t)| t)
    }
    fn len(store: &Self::Store) -> usize {
        store.len()
    }
}
