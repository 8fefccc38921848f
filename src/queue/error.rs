//! [`PutError`] and [`GetError`]: asyncio's `QueueFull`, `QueueEmpty` and
//! `QueueShutDown`.

use std::fmt;

/// Why a [`put`](super::GenericQueue::put) or
/// [`put_nowait`](super::GenericQueue::put_nowait) did not insert its item,
/// with the item given back.
///
/// `Display` is asyncio's exception name: `QueueFull`, `QueueShutDown`.
///
/// ```
/// let q = asyncio::Queue::new(1);
/// q.put_nowait("a").unwrap();
/// let err = q.put_nowait("b").unwrap_err();
/// assert_eq!(err.to_string(), "QueueFull");
/// assert!(matches!(err, asyncio::PutError::Full("b")));
/// assert_eq!(err.into_inner(), "b");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue is full (asyncio's `QueueFull`); only from `put_nowait`,
    /// `put` waits instead.
    Full(T),
    /// The queue was shut down (asyncio's `QueueShutDown`).
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not inserted.
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// q.shutdown(false);
    /// assert_eq!(q.put_nowait(7).unwrap_err().into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::ShutDown(t) => t,
        }
    }

    /// `true` for [`PutError::Full`].
    ///
    /// ```
    /// let q = asyncio::Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert!(q.put_nowait(2).unwrap_err().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// `true` for [`PutError::ShutDown`].
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// q.shutdown(false);
    /// assert!(q.put_nowait(1).unwrap_err().is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }
}

/// Without `T: Debug`, as Tokio's channel errors: the item is not shown.
impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "QueueFull",
            PutError::ShutDown(_) => "QueueShutDown",
        })
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a [`get`](super::GenericQueue::get) or
/// [`get_nowait`](super::GenericQueue::get_nowait) returned no item.
///
/// `Display` is asyncio's exception name: `QueueEmpty`, `QueueShutDown`.
///
/// ```
/// let q = asyncio::Queue::<u8>::new(0);
/// assert_eq!(q.get_nowait(), Err(asyncio::GetError::Empty));
/// assert_eq!(asyncio::GetError::Empty.to_string(), "QueueEmpty");
/// q.shutdown(false);
/// assert_eq!(q.get_nowait().unwrap_err().to_string(), "QueueShutDown");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GetError {
    /// The queue is empty (asyncio's `QueueEmpty`); only from `get_nowait`,
    /// `get` waits instead.
    Empty,
    /// The queue was shut down, and is empty or was shut down immediately
    /// (asyncio's `QueueShutDown`).
    ShutDown,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetError::Empty => "QueueEmpty",
            GetError::ShutDown => "QueueShutDown",
        })
    }
}

impl std::error::Error for GetError {}
