//! A FIFO list of parked wakers, each known by a ticket.
//!
//! The hand-written waiting of the crate (the queues' getters and putters,
//! [`Condition`](crate::Condition)'s waiters) parks here. Tickets grow by one
//! per push and entries leave only from the front (a wake-up) or from
//! anywhere (a waiter that went away), so the list stays sorted by ticket
//! and a waiter finds its entry by binary search. A ticket no longer in the
//! list means the waiter was woken: whoever removed the entry owes it a wake.
//!
//! The list lives inside the owner's `Mutex`; wakers taken out of it are
//! woken (and old wakers dropped) by the caller after that lock is released.

use std::collections::VecDeque;
use std::task::Waker;

#[derive(Debug, Default)]
pub(crate) struct WaitList {
    entries: VecDeque<(u64, Waker)>,
    next: u64,
}

impl WaitList {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Parks `waker` at the back; returns its ticket.
    pub(crate) fn push(&mut self, waker: &Waker) -> u64 {
        let ticket = self.next;
        self.next += 1;
        self.entries.push_back((ticket, waker.clone()));
        ticket
    }

    fn position(&self, ticket: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&ticket, |e| e.0).ok()
    }

    /// Refreshes the waker of a parked ticket. `None`: the ticket is not
    /// parked any more (it was woken). `Some(old)`: still parked; `old` is the
    /// replaced waker, to be dropped after the owner's lock is released.
    pub(crate) fn refresh(&mut self, ticket: u64, waker: &Waker) -> Option<Option<Waker>> {
        let i = self.position(ticket)?;
        let slot = &mut self.entries[i].1;
        if slot.will_wake(waker) {
            Some(None)
        } else {
            Some(Some(std::mem::replace(slot, waker.clone())))
        }
    }

    /// Removes a parked ticket. `None` if it was not parked (it was woken).
    pub(crate) fn remove(&mut self, ticket: u64) -> Option<Waker> {
        let i = self.position(ticket)?;
        self.entries.remove(i).map(|e| e.1)
    }

    /// Parks the waiter whose ticket is in `ticket`: refreshes its waker if
    /// it is still parked; else (first wait, or woken and someone else used
    /// the wake-up) parks it again at the back. Returns a replaced waker, to
    /// be dropped after the owner's lock is released.
    pub(crate) fn park(&mut self, ticket: &mut Option<u64>, waker: &Waker) -> Option<Waker> {
        if let Some(old) = ticket.and_then(|t| self.refresh(t, waker)) {
            return old;
        }
        *ticket = Some(self.push(waker));
        None
    }

    /// A waiter going away. Still parked: it leaves the list, and its waker
    /// comes back first (to drop). Woken already, and `pass_on` (what woke
    /// it still holds): the next waiter's waker comes back second (to
    /// wake), so the wake-up is not lost. Both after the owner's lock.
    pub(crate) fn leave(&mut self, ticket: u64, pass_on: bool) -> (Option<Waker>, Option<Waker>) {
        match self.remove(ticket) {
            Some(parked) => (Some(parked), None),
            None if pass_on => (None, self.pop()),
            None => (None, None),
        }
    }

    /// Takes the oldest parked waker out (the caller wakes it).
    pub(crate) fn pop(&mut self) -> Option<Waker> {
        self.entries.pop_front().map(|e| e.1)
    }

    /// Takes every parked waker out, oldest first.
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.entries.drain(..).map(|e| e.1).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Wakes what a list operation took out, after the lock is gone.
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        w.wake();
    }
}
