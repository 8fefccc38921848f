//! Done callbacks: what a callback is ([`Callback`], [`ChildDone`]), the
//! per-task list, the one place a callback runs ([`run_callback`]) and the
//! drain scheduler for callbacks added to a task already done.
//!
//! # Invariants
//! 4. **Callbacks run once, in order, unlocked.** `Core::complete` takes the
//!    callback list out of `Inner` under the lock and runs it after unlocking;
//!    `add_done_callback` on a done task schedules the callback
//!    ([`schedule_drain`]) instead of running it inline. While a thread runs
//!    a done task's callbacks the state word says `DRAINING` (`state.rs`), and
//!    a callback added meanwhile joins that thread's queue. Each callback runs
//!    under `catch_unwind` ([`run_callback`]); a panic is reported and the
//!    next callback still runs.

use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::runtime::Handle;

use super::{CallbackId, TaskRef};
use crate::report::report_panic;

/// How a combinator (`gather`, `wait`, `as_completed`) hears that one of
/// its children ended, without a boxed closure per child. (Not a wake-up
/// primitive like `tokio::sync::Notify`: a listener for children's ends.)
pub(crate) trait ChildDone: Send + Sync + 'static {
    /// Child `index` of the combinator, `task`, has ended.
    fn child_done(&self, index: usize, task: &TaskRef);
}

/// A done callback.
pub(crate) enum Callback {
    /// A user's callback (`add_done_callback`).
    Boxed(Box<dyn FnOnce(&TaskRef) + Send + 'static>),
    /// A combinator's: child `index` of it ended. No allocation, one `Arc`
    /// clone.
    Child(Arc<dyn ChildDone>, usize),
}

impl Callback {
    fn call(self, task: &TaskRef) {
        match self {
            Callback::Boxed(f) => f(task),
            Callback::Child(watcher, index) => watcher.child_done(index, task),
        }
    }
}

/// The done callbacks of one task, in registration order: the first one,
/// then the others (an empty `Vec` allocates nothing). Most tasks have no
/// callback (`None`, no allocation) or one (one allocation, the common case
/// of a task awaited by a combinator). Invariant: a `Some` list is never
/// empty.
pub(super) struct Callbacks {
    first: (CallbackId, Callback),
    rest: Vec<(CallbackId, Callback)>,
}

impl Callbacks {
    /// Adds `cb` at the end of `slot`'s list.
    pub(super) fn push(slot: &mut Option<Box<Callbacks>>, id: CallbackId, cb: Callback) {
        match slot {
            None => {
                *slot = Some(Box::new(Callbacks {
                    first: (id, cb),
                    rest: Vec::new(),
                }))
            }
            Some(list) => list.rest.push((id, cb)),
        }
    }

    /// Adds `cb` at the front of `slot`'s list.
    pub(super) fn push_first(slot: &mut Option<Box<Callbacks>>, id: CallbackId, cb: Callback) {
        match slot {
            None => Callbacks::push(slot, id, cb),
            Some(list) => {
                let old = mem::replace(&mut list.first, (id, cb));
                list.rest.insert(0, old);
            }
        }
    }

    /// Takes out the callback registered as `id`, if it is in `slot`.
    pub(super) fn remove(slot: &mut Option<Box<Callbacks>>, id: CallbackId) -> Option<Callback> {
        let list = slot.as_deref_mut()?;
        if list.first.0 != id {
            let pos = list.rest.iter().position(|(i, _)| *i == id)?;
            return Some(list.rest.remove(pos).1);
        }
        if list.rest.is_empty() {
            return slot.take().map(|list| list.first.1);
        }
        let next = list.rest.remove(0);
        Some(mem::replace(&mut list.first, next).1)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// The callbacks, in registration order.
    pub(super) fn into_callbacks(self) -> impl Iterator<Item = Callback> {
        std::iter::once(self.first)
            .chain(self.rest)
            .map(|(_, cb)| cb)
    }
}

/// What `AnyCore::push_callback` did.
pub(crate) enum Push {
    /// Queued: it runs after the end (or soon, by the thread draining).
    Queued,
    /// The task is done and nothing is queued; asked to, the caller now
    /// owns the drain (`StartDrain`, the callback is queued first) …
    StartDrain,
    /// … or, not asked to, gets the callback back (`Done`).
    Done(Callback),
}

/// Runs one done callback, containing and reporting its panic.
pub(crate) fn run_callback(task: &TaskRef, cb: Callback) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| cb.call(task))) {
        report_panic("Exception in callback", Some(task), payload);
    }
}

/// Runs the callbacks queued on a task that was already done when they were
/// added: soon, never inline, in order. On the current runtime if there is
/// one; on a thread of its own otherwise, or if the runtime drops the job
/// unrun (it is shutting down): a callback is never lost.
pub(super) fn schedule_drain(task: TaskRef) {
    struct Drain(Option<TaskRef>);
    impl Drain {
        fn run(mut self) {
            if let Some(task) = self.0.take() {
                task.core().drain(&task);
            }
        }
    }
    impl Drop for Drain {
        fn drop(&mut self) {
            if let Some(task) = self.0.take() {
                let drain = move || task.core().drain(&task);
                // A thread, or, if none can be started, here and now.
                let fallback = std::thread::Builder::new()
                    .name("asyncio-callback".into())
                    .spawn(drain);
                if let Err(e) = fallback {
                    eprintln!("asyncio: could not start a thread for done callbacks: {e}");
                }
            }
        }
    }
    let drain = Drain(Some(task));
    match Handle::try_current() {
        Ok(handle) => drop(handle.spawn(async move { drain.run() })),
        Err(_) => drop(drain), // runs on a thread of its own
    }
}

#[cfg(test)]
mod callbacks_tests {
    use super::{Callback, Callbacks};
    use crate::task::CallbackId;
    use std::sync::{Arc, Mutex};

    /// A list of callbacks that each push their number to `log`.
    fn push_n(slot: &mut Option<Box<Callbacks>>, log: &Arc<Mutex<Vec<u64>>>, ids: &[u64]) {
        for &i in ids {
            let log = log.clone();
            let cb = Callback::Boxed(Box::new(move |_| log.lock().unwrap().push(i)));
            Callbacks::push(slot, CallbackId(i), cb);
        }
    }

    /// Runs what is left, in order, without a task (the callbacks above
    /// ignore it): the numbers they pushed.
    fn run(slot: Option<Box<Callbacks>>, log: &Arc<Mutex<Vec<u64>>>) -> Vec<u64> {
        let task = crate::Runner::new()
            .current_thread()
            .run(async { crate::create_task(async {}).to_ref() });
        for cb in slot.map(|c| c.into_callbacks()).into_iter().flatten() {
            cb.call(&task);
        }
        std::mem::take(&mut *log.lock().unwrap())
    }

    /// One callback, then many: registration order is kept, and removal
    /// works for a lone callback and for later ones.
    #[test]
    fn order_and_removal_in_both_shapes() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut slot = None;
        push_n(&mut slot, &log, &[1]);
        assert_eq!(slot.as_ref().map(|c| c.len()), Some(1));
        assert!(Callbacks::remove(&mut slot, CallbackId(9)).is_none());
        assert!(Callbacks::remove(&mut slot, CallbackId(1)).is_some());
        assert!(slot.is_none(), "removing the only callback frees the list");

        push_n(&mut slot, &log, &[1, 2, 3, 4]);
        assert!(Callbacks::remove(&mut slot, CallbackId(2)).is_some());
        assert!(Callbacks::remove(&mut slot, CallbackId(2)).is_none());
        assert_eq!(slot.as_ref().map(|c| c.len()), Some(3));
        assert_eq!(run(slot, &log), [1, 3, 4]);
    }

    /// Removing the first of several keeps the others in order.
    #[test]
    fn removing_the_first_of_several_keeps_the_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut slot = None;
        push_n(&mut slot, &log, &[1, 2, 3, 4]);
        assert!(Callbacks::remove(&mut slot, CallbackId(1)).is_some());
        assert_eq!(run(slot, &log), [2, 3, 4]);
    }
}
