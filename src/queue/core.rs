//! [`GenericQueue`]: the queue itself, whatever its order.
//!
//! One `Mutex` guards the items, the two waiter lists (getters, putters),
//! the count of unfinished tasks and the shutdown flag, so every method sees
//! one consistent state, as asyncio's single thread does. Wakers are woken,
//! and items removed by `shutdown(true)` dropped, after the lock is released.
//!
//! The waiting follows asyncio's `Queue` step by step:
//! - a `put` that frees a getter's reason to wait wakes the oldest getter
//!   (and a `get` the oldest putter); the woken task gets no reservation: it
//!   looks again when it runs, and if another task took the item (or slot)
//!   first, it parks again at the back;
//! - a woken getter (putter) that is dropped before it ran passes the wake-up
//!   on to the next one if there still is an item (a free slot);
//! - `shutdown` wakes everyone, and each looks again.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

use super::error::{GetError, PutError};
use super::order::{Fifo, Order};
use crate::lock::lock;
use crate::sync::waitlist::{WaitList, wake_all};

struct State<S> {
    items: S,
    getters: WaitList,
    putters: WaitList,
    unfinished: usize,
    shutdown: bool,
}

/// asyncio's `Queue` with its order as a type parameter: [`Queue`](super::Queue)
/// is `GenericQueue<T, Fifo>`, [`LifoQueue`](super::LifoQueue)
/// `GenericQueue<T, Lifo>`, [`PriorityQueue`](super::PriorityQueue)
/// `GenericQueue<T, Priority>`. Use those names; this one is for code that
/// works with any of them.
///
/// `maxsize` bounds the items held (`0`: unbounded);
/// [`put`](GenericQueue::put) waits while the queue is full,
/// [`get`](GenericQueue::get) while it is empty. Both kinds of waiters are
/// woken first come, first served; as in asyncio, an item is not reserved
/// for the getter it woke: it stays in the queue (and in
/// [`qsize`](GenericQueue::qsize)) until a getter takes it, and a getter
/// that finds it gone waits again at the back. Each successful put counts an
/// unfinished task, [`task_done`](GenericQueue::task_done) counts one down,
/// and [`join`](GenericQueue::join) waits for zero.
/// [`shutdown`](GenericQueue::shutdown) (asyncio 3.13) ends the queue.
///
/// Not `Clone`: share it with an [`Arc`](std::sync::Arc). `Send + Sync`
/// when `T: Send`, multi-thread runtime included.
///
/// # When to use it, and when Tokio's channels fit better
///
/// A [`tokio::sync::mpsc`] channel is the faster choice when one side
/// consumes and nobody needs the queue's state: it has no `qsize`, no
/// LIFO or priority order, no `task_done`/`join`, and its closing is tied to
/// dropping the senders rather than a `shutdown` call, and its receiver is
/// not shared by several consumers without a lock. This queue is written by
/// hand because asyncio's semantics need all of that in one state: several
/// producers and consumers sharing one object, an exact size at any moment,
/// a count of unfinished work, and a shutdown that can drain or discard.
///
/// ```
/// use std::sync::Arc;
///
/// asyncio::run(async {
///     let q = Arc::new(asyncio::Queue::new(2));
///     let consumer = asyncio::create_task({
///         let q = q.clone();
///         async move {
///             let mut seen = Vec::new();
///             while let Ok(item) = q.get().await {
///                 seen.push(item);
///                 q.task_done();
///             }
///             seen
///         }
///     });
///     for i in 0..5 {
///         q.put(i).await.unwrap(); // waits while 2 items are queued
///     }
///     q.join().await; // every item got and marked done
///     q.shutdown(false); // the consumer's next get fails
///     assert_eq!(consumer.await.unwrap(), [0, 1, 2, 3, 4]);
/// });
/// ```
pub struct GenericQueue<T, O: Order<T> = Fifo> {
    state: Mutex<State<O::Store>>,
    maxsize: usize,
    /// Woken (all) when the unfinished count reaches zero.
    finished: Notify,
    _items: PhantomData<fn(T) -> T>,
}

impl<T, O: Order<T>> GenericQueue<T, O> {
    /// A queue holding at most `maxsize` items; `0` means unbounded
    /// (asyncio's `maxsize <= 0`).
    ///
    /// ```
    /// let q = asyncio::Queue::<u32>::new(10);
    /// assert_eq!(q.maxsize(), 10);
    /// let unbounded = asyncio::LifoQueue::<u32>::new(0);
    /// assert!(!unbounded.full());
    /// ```
    pub fn new(maxsize: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: O::store(),
                getters: WaitList::new(),
                putters: WaitList::new(),
                unfinished: 0,
                shutdown: false,
            }),
            maxsize,
            finished: Notify::new(),
            _items: PhantomData,
        }
    }

    /// The number of items in the queue now.
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// q.put_nowait('a').unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn qsize(&self) -> usize {
        O::len(&lock(&self.state).items)
    }

    /// The most items the queue holds (`0`: unbounded).
    ///
    /// ```
    /// assert_eq!(asyncio::Queue::<()>::new(3).maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// Whether the queue holds no item.
    ///
    /// ```
    /// assert!(asyncio::Queue::<()>::new(0).empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items; never for an unbounded one.
    ///
    /// ```
    /// let q = asyncio::Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn full(&self) -> bool {
        self.is_full(&lock(&self.state))
    }

    fn is_full(&self, st: &State<O::Store>) -> bool {
        self.maxsize > 0 && O::len(&st.items) >= self.maxsize
    }

    /// Puts `item` in the queue, waiting while it is full.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`]`(item)` if the queue is shut down, before or
    /// while waiting; the item comes back. Never [`PutError::Full`]: a full
    /// queue is waited on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a `put` dropped while waiting (or its task cancelled,
    /// or a [`wait_for`](crate::wait_for) around it timing out) inserts
    /// nothing (the item is dropped with it) and leaves the putters' queue;
    /// if a `get` had already woken it, the next putter is woken instead.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let q = asyncio::Queue::new(1);
    ///     q.put("x").await.unwrap();
    ///     assert_eq!(q.qsize(), 1);
    /// });
    /// ```
    pub fn put(&self, item: T) -> Put<'_, T, O> {
        Put {
            queue: self,
            item: Some(item),
            ticket: None,
        }
    }

    /// Puts `item` in the queue if there is room now.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`]`(item)` if it is full, [`PutError::ShutDown`]`(item)`
    /// if it is shut down (checked first); the item comes back either way.
    ///
    /// ```
    /// let q = asyncio::Queue::new(1);
    /// assert!(q.put_nowait(1).is_ok());
    /// assert_eq!(q.put_nowait(2), Err(asyncio::PutError::Full(2)));
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        let mut st = lock(&self.state);
        if st.shutdown {
            return Err(PutError::ShutDown(item));
        }
        if self.is_full(&st) {
            return Err(PutError::Full(item));
        }
        let woken = self.insert(&mut st, item);
        drop(st);
        wake_all(woken);
        Ok(())
    }

    /// Inserts, counts the task, takes the oldest getter out to be woken.
    fn insert(&self, st: &mut State<O::Store>, item: T) -> Option<Waker> {
        O::push(&mut st.items, item);
        st.unfinished += 1;
        st.getters.pop()
    }

    /// Takes an item out of the queue, waiting while it is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::ShutDown`] once the queue is shut down and empty (or was
    /// shut down with `immediate`), before or while waiting. Never
    /// [`GetError::Empty`]: an empty queue is waited on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a `get` dropped while waiting (or its task cancelled,
    /// or a [`wait_for`](crate::wait_for) around it timing out) takes no
    /// item and leaves the getters' queue; if a `put` had already woken it,
    /// the next getter is woken instead, so the item is not stranded.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let q = asyncio::Queue::new(0);
    ///     q.put_nowait(5).unwrap();
    ///     assert_eq!(q.get().await, Ok(5));
    /// });
    /// ```
    pub fn get(&self) -> Get<'_, T, O> {
        Get {
            queue: self,
            ticket: None,
        }
    }

    /// Takes an item out if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] if the queue is empty, [`GetError::ShutDown`] if
    /// it is empty and shut down (or shut down with `immediate`).
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// assert_eq!(q.get_nowait(), Err(asyncio::GetError::Empty));
    /// q.put_nowait(1).unwrap();
    /// assert_eq!(q.get_nowait(), Ok(1));
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetError> {
        let mut st = lock(&self.state);
        match O::pop(&mut st.items) {
            Some(item) => {
                let woken = st.putters.pop();
                drop(st);
                wake_all(woken);
                Ok(item)
            }
            None if st.shutdown => Err(GetError::ShutDown),
            None => Err(GetError::Empty),
        }
    }

    /// Marks one unfinished task done (asyncio's `task_done()`): a consumer
    /// calls it once per item it got, when it has finished with it.
    /// [`join`](GenericQueue::join) returns when every item put is marked.
    ///
    /// # Panics
    ///
    /// `task_done() called too many times` when no task is unfinished: more
    /// calls than items ever put (as asyncio counts, an item need not have
    /// been got first; `shutdown(true)` marks the items it discards).
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// q.get_nowait().unwrap();
    /// q.task_done();
    /// let again = std::panic::AssertUnwindSafe(|| q.task_done());
    /// assert!(std::panic::catch_unwind(again).is_err());
    /// ```
    #[track_caller]
    pub fn task_done(&self) {
        let finished = {
            let mut st = lock(&self.state);
            if st.unfinished == 0 {
                None
            } else {
                st.unfinished -= 1;
                Some(st.unfinished == 0)
            }
        };
        match finished {
            None => panic!("task_done() called too many times"),
            Some(true) => self.finished.notify_waiters(),
            Some(false) => {}
        }
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](GenericQueue::task_done); returns at once if none is
    /// unfinished.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only watches the count.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let q = asyncio::Queue::new(0);
    ///     q.join().await; // nothing put: returns at once
    ///     q.put_nowait(1).unwrap();
    ///     q.task_done();
    ///     q.join().await;
    /// });
    /// ```
    pub async fn join(&self) {
        loop {
            let notified = self.finished.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.state).unfinished == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Shuts the queue down (asyncio 3.13's `shutdown`): every `put` fails
    /// from now on with [`PutError::ShutDown`], waiting ones included.
    /// Without `immediate`, `get` goes on returning the items left, then
    /// fails with [`GetError::ShutDown`]. With `immediate`, the items left
    /// are removed (each counts as done for [`join`](GenericQueue::join))
    /// and every `get` fails at once; `join` returns once the items already
    /// got are marked done too. Calling it again is allowed: a later
    /// `shutdown(true)` still empties the queue.
    ///
    /// ```
    /// let q = asyncio::Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// q.shutdown(false);
    /// assert_eq!(q.get_nowait(), Ok(1)); // drained first
    /// assert_eq!(q.get_nowait(), Err(asyncio::GetError::ShutDown));
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        let mut removed = Vec::new();
        let (woken, finished) = {
            let mut st = lock(&self.state);
            st.shutdown = true;
            let mut finished = false;
            if immediate {
                while let Some(item) = O::pop(&mut st.items) {
                    removed.push(item);
                    st.unfinished = st.unfinished.saturating_sub(1);
                }
                finished = st.unfinished == 0;
            }
            let mut woken = st.getters.take_all();
            woken.extend(st.putters.take_all());
            (woken, finished)
        };
        drop(removed);
        wake_all(woken);
        if finished {
            self.finished.notify_waiters();
        }
    }
}

impl<T, O: Order<T>> fmt::Debug for GenericQueue<T, O> {
    /// asyncio's `_format()` fields, without the items (`T` need not be
    /// `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("Queue")
            .field("maxsize", &self.maxsize)
            .field("qsize", &O::len(&st.items))
            .field("getters", &st.getters.len())
            .field("putters", &st.putters.len())
            .field("tasks", &st.unfinished)
            .field("shutdown", &st.shutdown)
            .finish()
    }
}

/// The future of [`GenericQueue::put`].
///
/// # Cancel safety
///
/// Dropped while waiting, it inserts nothing (the item is dropped with it)
/// and passes a wake-up it had received on to the next putter.
///
/// # Panics
///
/// Polled again after it completed.
///
/// ```
/// asyncio::run(async {
///     let q = asyncio::Queue::new(1);
///     let put: asyncio::queue::Put<'_, u8, _> = q.put(1);
///     put.await.unwrap();
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Put<'a, T, O: Order<T> = Fifo> {
    queue: &'a GenericQueue<T, O>,
    item: Option<T>,
    /// Our place among the putters while parked.
    ticket: Option<u64>,
}

// The item is never pinned: it is moved into the queue or given back.
impl<T, O: Order<T>> Unpin for Put<'_, T, O> {}

impl<T, O: Order<T>> Future for Put<'_, T, O> {
    type Output = Result<(), PutError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let q = this.queue;
        let mut st = lock(&q.state);
        if st.shutdown || !q.is_full(&st) {
            let stale = this.ticket.take().and_then(|t| st.putters.remove(t));
            let item = this.item.take().expect("Put polled after completion");
            if st.shutdown {
                drop(st);
                drop(stale);
                return Poll::Ready(Err(PutError::ShutDown(item)));
            }
            let woken = q.insert(&mut st, item);
            drop(st);
            drop(stale);
            wake_all(woken);
            return Poll::Ready(Ok(()));
        }
        let old = st.putters.park(&mut this.ticket, cx.waker());
        drop(st);
        drop(old);
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for Put<'_, T, O> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let q = self.queue;
        let (parked, woken) = {
            let mut st = lock(&q.state);
            // Woken by a get and not using the slot: the next putter.
            let pass_on = !q.is_full(&st) && !st.shutdown;
            st.putters.leave(ticket, pass_on)
        };
        drop(parked);
        wake_all(woken);
    }
}

impl<T, O: Order<T>> fmt::Debug for Put<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("waiting", &self.ticket.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`GenericQueue::get`].
///
/// # Cancel safety
///
/// Dropped while waiting, it takes no item and passes a wake-up it had
/// received on to the next getter.
///
/// ```
/// asyncio::run(async {
///     let q = asyncio::Queue::new(0);
///     q.put_nowait(1).unwrap();
///     let get: asyncio::queue::Get<'_, u8, _> = q.get();
///     assert_eq!(get.await, Ok(1));
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Get<'a, T, O: Order<T> = Fifo> {
    queue: &'a GenericQueue<T, O>,
    /// Our place among the getters while parked.
    ticket: Option<u64>,
}

impl<T, O: Order<T>> Future for Get<'_, T, O> {
    type Output = Result<T, GetError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let q = this.queue;
        let mut st = lock(&q.state);
        if let Some(item) = O::pop(&mut st.items) {
            let stale = this.ticket.take().and_then(|t| st.getters.remove(t));
            let woken = st.putters.pop();
            drop(st);
            drop(stale);
            wake_all(woken);
            return Poll::Ready(Ok(item));
        }
        if st.shutdown {
            let stale = this.ticket.take().and_then(|t| st.getters.remove(t));
            drop(st);
            drop(stale);
            return Poll::Ready(Err(GetError::ShutDown));
        }
        let old = st.getters.park(&mut this.ticket, cx.waker());
        drop(st);
        drop(old);
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for Get<'_, T, O> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let q = self.queue;
        let (parked, woken) = {
            let mut st = lock(&q.state);
            // Woken by a put and not taking the item: the next getter.
            let pass_on = O::len(&st.items) > 0;
            st.getters.leave(ticket, pass_on)
        };
        drop(parked);
        wake_all(woken);
    }
}

impl<T, O: Order<T>> fmt::Debug for Get<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("waiting", &self.ticket.is_some())
            .finish_non_exhaustive()
    }
}
