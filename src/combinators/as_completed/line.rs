//! The line of consumers waiting for an [`as_completed`](crate::as_completed)
//! result: a slab of wakers (one slot per consumer, reused, keyed by slot
//! and generation) and the FIFO order in which they wait, so that the
//! consumer that has waited longest is woken first, one wake-up per result.

use std::collections::VecDeque;
use std::task::Waker;

/// Where a consumer's waker sits in [`Waiters`]: slot and generation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct WaiterKey {
    slot: usize,
    generation: u64,
}

/// The consumers waiting for a result: a slab of wakers (one slot per
/// consumer, reused) and the FIFO order in which they wait.
///
/// Invariants: a slot is in `queue` at most once while it is `queued`;
/// entries of `queue` whose generation no longer matches their slot (the
/// consumer left) are skipped when popped. Each completion pops one live
/// entry, so the queue holds at most one entry per registration.
#[derive(Default)]
pub(super) struct Waiters {
    slots: Vec<WaiterSlot>,
    free: Vec<usize>,
    queue: VecDeque<WaiterKey>,
    next_generation: u64,
}

#[derive(Default)]
struct WaiterSlot {
    generation: u64,
    waker: Option<Waker>,
    queued: bool,
}

impl Waiters {
    /// Puts the consumer `key` (given a slot on first use) at the back of
    /// the queue with `waker`, unless it is queued already (then only its
    /// waker is refreshed: a spurious poll keeps its place).
    /// Returns the waker it replaced, to be dropped outside the lock.
    pub(super) fn wait(&mut self, key: &mut Option<WaiterKey>, waker: &Waker) -> Option<Waker> {
        let k = match *key {
            Some(k) if self.slots[k.slot].generation == k.generation => k,
            _ => {
                self.next_generation += 1;
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.slots.push(WaiterSlot::default());
                    self.slots.len() - 1
                });
                self.slots[slot].generation = self.next_generation;
                let k = WaiterKey {
                    slot,
                    generation: self.next_generation,
                };
                *key = Some(k);
                k
            }
        };
        let entry = &mut self.slots[k.slot];
        let old = match &entry.waker {
            Some(w) if w.will_wake(waker) => None,
            _ => entry.waker.replace(waker.clone()),
        };
        if !entry.queued {
            entry.queued = true;
            self.queue.push_back(k);
        }
        old
    }

    /// The waker of the consumer that has waited longest, taken off the
    /// queue (its slot stays, marked woken, until it resolves or leaves; a
    /// poll that finds nothing queues it again with a fresh waker).
    pub(super) fn pop(&mut self) -> Option<Waker> {
        while let Some(k) = self.queue.pop_front() {
            let entry = &mut self.slots[k.slot];
            if entry.generation == k.generation && entry.queued {
                entry.queued = false;
                return entry.waker.take();
            }
        }
        None
    }

    /// Frees the consumer's slot, if it has one; tells whether it had been
    /// woken (taken off the queue) and not queued again since, and hands
    /// back its waker, to be dropped outside the lock.
    pub(super) fn remove(&mut self, key: &mut Option<WaiterKey>) -> (bool, Option<Waker>) {
        let Some(k) = key.take() else {
            return (false, None);
        };
        let entry = &mut self.slots[k.slot];
        if entry.generation != k.generation {
            return (false, None);
        }
        let entry = std::mem::take(entry);
        self.free.push(k.slot);
        (!entry.queued, entry.waker)
    }
}
