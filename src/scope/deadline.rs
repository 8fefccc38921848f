//! A timeout scope's deadline: the state its `Timeout` handles and its run
//! share (when, whether it fired, whether the scope was entered, the run's
//! waker), apart from its cancel-scope node, which the run makes only when
//! something needs it.
//!
//! The shared block is the one allocation a timeout scope around a ready
//! future would need (`tokio::time::timeout` needs none), and an allocation
//! and its free cost as much as the rest of the scope together. So the
//! blocks are reused: the last handle dropped puts its block back into a
//! small per-thread pool (`Shared`'s `Drop`), and the next scope made on
//! that thread takes it from there and resets it. A block is put back with
//! no atomic write unless its run went pending (then its waker is dropped
//! first).

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tokio::time::Instant;

/// The deadline state (see the module docs).
pub(crate) struct Deadline {
    state: Mutex<State>,
    /// Which run entered the scope ([`FREE`], [`RUN`] or [`CARRIED`]),
    /// outside the lock.
    entered: AtomicU8,
    /// The run stored a waker (it went pending): a block given back must
    /// drop it (a waker may hold its task's memory).
    waited: AtomicBool,
}

#[derive(Default)]
struct State {
    at: Option<Instant>,
    /// Bumped by every `reschedule`, so that the run re-arms its timer.
    generation: u64,
    /// The deadline fired.
    expired: bool,
    /// The run's waker, woken by a `reschedule`.
    waker: Option<Waker>,
}

/// No run entered the scope (as far as this block knows).
const FREE: u8 = 0;
/// The run of a handle that was linked to this block entered it.
const RUN: u8 = 1;
/// The block was made for a handle whose run had begun before (see
/// [`Deadline::carry_run`]).
const CARRIED: u8 = 2;

/// How many blocks a thread keeps for reuse.
const POOL_SIZE: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Arc<Deadline>>> = const { RefCell::new(Vec::new()) };
}

/// A counted handle on a [`Deadline`] (or none: `Shared::default()`, for
/// a scope that is not a timeout scope); the last one dropped gives the
/// block back to this thread's pool. One word.
#[derive(Default)]
pub(crate) struct Shared(Option<Arc<Deadline>>);

impl Shared {
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Whether both are the same block (or both none).
    pub(crate) fn same(&self, other: &Shared) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }

    pub(crate) fn new(at: Option<Instant>) -> Shared {
        let pooled = POOL
            .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .ok()
            .flatten();
        // A pooled block is unique and holds no waker (see `drop`).
        let reused = pooled.and_then(|mut block| {
            let d = Arc::get_mut(&mut block)?;
            *state_mut(d) = State {
                at,
                ..State::default()
            };
            *d.entered.get_mut() = FREE;
            Some(block)
        });
        let block = reused.unwrap_or_else(|| {
            Arc::new(Deadline {
                state: Mutex::new(State {
                    at,
                    ..State::default()
                }),
                entered: AtomicU8::new(FREE),
                waited: AtomicBool::new(false),
            })
        });
        Shared(Some(block))
    }
}

impl Clone for Shared {
    fn clone(&self) -> Shared {
        Shared(self.0.clone())
    }
}

impl Deref for Shared {
    type Target = Deadline;

    fn deref(&self) -> &Deadline {
        self.0.as_ref().expect("asyncio: deadline used after drop")
    }
}

impl Drop for Shared {
    #[inline]
    fn drop(&mut self) {
        if let Some(block) = self.0.take() {
            release(block);
        }
    }
}

/// Drops one handle on a block: the last one gives it back to the pool.
#[inline(never)]
fn release(mut block: Arc<Deadline>) {
    if Arc::strong_count(&block) > 1 {
        return; // another handle lives on
    }
    // The only handle left: what the others did before they were
    // dropped (their release decrement, read above) is visible now.
    fence(Ordering::Acquire);
    if block.waited.load(Ordering::Relaxed) {
        // Its run went pending: drop the waker now (outside the pool's
        // borrow: dropping a waker may run arbitrary code, which may drop
        // another timeout scope). The rest is reset when it is reused.
        let Some(d) = Arc::get_mut(&mut block) else {
            return;
        };
        *d.waited.get_mut() = false;
        let waker = state_mut(d).waker.take();
        drop(waker);
    }
    let full = POOL
        .try_with(|p| match p.try_borrow_mut() {
            Ok(mut p) if p.len() < POOL_SIZE => {
                p.push(block);
                None
            }
            _ => Some(block),
        })
        .unwrap_or(None);
    drop(full); // freed outside the borrow
}

/// The state of a block only this thread holds: no lock needed.
fn state_mut(d: &mut Deadline) -> &mut State {
    d.state.get_mut().unwrap_or_else(PoisonError::into_inner)
}

impl Deadline {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }

    /// The deadline and its generation.
    pub(crate) fn get(&self) -> (Option<Instant>, u64) {
        let s = self.lock();
        (s.at, s.generation)
    }

    pub(crate) fn when(&self) -> Option<Instant> {
        self.lock().at
    }

    /// Moves the deadline and wakes the run, which re-arms its timer.
    pub(crate) fn set(&self, at: Option<Instant>) {
        let waker = {
            let mut s = self.lock();
            s.at = at;
            s.generation += 1;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Stores the run's waker (for `set`).
    pub(crate) fn set_waker(&self, waker: &Waker) {
        self.waited.store(true, Ordering::Relaxed);
        let old = super::node::store_waker(&mut self.lock().waker, waker);
        drop(old); // outside the lock
    }

    pub(crate) fn mark_expired(&self) {
        self.lock().expired = true;
    }

    pub(crate) fn expired(&self) -> bool {
        self.lock().expired
    }

    /// Marks the scope entered by a run; `false` if another run entered it
    /// first. `first_handle`: the run is of the handle this block was made
    /// for, whose own run may have been carried in already.
    pub(crate) fn enter_run(&self, first_handle: bool) -> bool {
        match self
            .entered
            .compare_exchange(FREE, RUN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(was) => first_handle && was == CARRIED,
        }
    }

    /// The handle this block was made for had begun its run before: the
    /// scope is entered, so that no clone can run it again.
    pub(crate) fn carry_run(&self) {
        let _ = self
            .entered
            .compare_exchange(FREE, CARRIED, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_comes_back_reset_and_shared_blocks_stay_out_of_the_pool() {
        let t = Instant::now();
        let a = Shared::new(Some(t));
        assert!(a.enter_run(false));
        assert!(!a.enter_run(true), "entered by a run already");
        a.mark_expired();
        a.set(None);
        let b = a.clone();
        drop(a);
        assert_eq!(b.get(), (None, 1), "a clone keeps the block");
        drop(b);
        let c = Shared::new(Some(t));
        assert_eq!(c.get(), (Some(t), 0));
        assert!(!c.expired());
        assert!(c.enter_run(false), "reset: not entered");
        let d = Shared::new(None);
        d.carry_run();
        assert!(
            !d.enter_run(false),
            "a clone's run after the first handle's"
        );
        assert!(d.enter_run(true), "the first handle's own run, carried");
    }
}
