//! The registry behind [`all_tasks`]: every pending task of
//! ours, on every runtime.
//!
//! # Design
//! A fixed array of [`SHARDS`] shards, each a `Mutex` over a tiny slab
//! (`Vec<Option<Weak<..>>>` plus a free list). A thread picks its shard once
//! (round robin, kept in a thread-local), so two workers spawning at the same
//! time lock different shards: there is no lock that all workers share on the
//! spawn path. The task remembers its `(shard, slot)` pair, so leaving the
//! registry is O(1) with no hashing, from whatever thread drops the task's
//! last handle (usually the one that awaited it, see the invariants below).
//!
//! `all_tasks` is the slow path: it locks the shards one after the other and
//! filters by runtime id. It never holds two shard locks at once and never
//! calls user code under a lock.
//!
//! # Invariants
//! 5. **The registry lists every live core; `all_tasks` shows the pending
//!    ones.** The task is inserted while its core is built (before it is
//!    spawned) and leaves when its last handle is dropped (`Header::drop`),
//!    not when it ends: in the common case, a task awaited by the task that
//!    created it, that is the creating thread, whose own shard it locks,
//!    instead of whichever worker ran the task last. `all_tasks` filters out
//!    the done ones (the state word), so a task disappears from it as soon as
//!    it ends.
//!
//! And, for the registry itself:
//! - A task is inserted before it is spawned and removed exactly once, when
//!   its core is dropped (its last handle went away, invariant 5). An entry
//!   may thus outlive the task's end: `all_tasks` filters by state.
//! - `slot` is written once, before the task is spawned (so before anyone
//!   can remove it).
//! - No handle is dropped while a shard is locked: dropping the last one
//!   removes its entry, which locks its shard (`collect` upgrades under the
//!   lock and filters after unlocking).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, Weak};

use tokio::runtime::Handle;

use super::TaskRef;
use super::core::AnyCore;
use super::current::with_current;

type Entry = Weak<dyn AnyCore>;

/// Number of shards: a power of two comfortably above the core counts this
/// crate targets, so that threads rarely share one.
const SHARDS: usize = 32;

#[derive(Default)]
struct Slab {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
}

static REGISTRY: LazyLock<[Mutex<Slab>; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::default()));

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

fn lock(shard: usize) -> std::sync::MutexGuard<'static, Slab> {
    // A panic never happens while a shard is locked (no user code runs under
    // it), but do not let a poisoned lock stop the registry either.
    crate::lock::lock(&REGISTRY[shard])
}

/// Where a task sits in the registry: the shard in the low bits, the index
/// in the shard above them (one `u32`, to keep the task header small).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot(u32);

const SHARD_BITS: u32 = SHARDS.trailing_zeros();

impl Slot {
    fn new(shard: usize, index: usize) -> Self {
        let index = u32::try_from(index)
            .ok()
            .filter(|i| *i < (1 << (32 - SHARD_BITS)))
            .expect("asyncio: more than 134 million pending tasks created on one thread");
        Slot(index << SHARD_BITS | shard as u32)
    }

    fn shard(self) -> usize {
        (self.0 & (SHARDS as u32 - 1)) as usize
    }

    fn index(self) -> usize {
        (self.0 >> SHARD_BITS) as usize
    }
}

/// Registers a task; returns where, for [`remove`].
pub(crate) fn insert(task: Entry) -> Slot {
    let shard = SHARD.with(|s| *s);
    let mut slab = lock(shard);
    let index = match slab.free.pop() {
        Some(i) => {
            slab.entries[i as usize] = Some(task);
            i as usize
        }
        None => {
            slab.entries.push(Some(task));
            slab.entries.len() - 1
        }
    };
    Slot::new(shard, index)
}

/// Unregisters a task. Returns the registry's reference, to be dropped by the
/// caller outside the lock.
pub(crate) fn remove(slot: Slot) -> Option<Entry> {
    let mut slab = lock(slot.shard());
    let entry = slab.entries[slot.index()].take();
    slab.free.push(slot.index() as u32);
    entry
}

/// Every registered task for which `keep` says yes.
pub(crate) fn collect(mut keep: impl FnMut(&TaskRef) -> bool) -> Vec<TaskRef> {
    let mut out = Vec::new();
    for shard in 0..SHARDS {
        let slab = lock(shard);
        out.extend(
            slab.entries
                .iter()
                .flatten()
                .filter_map(|w| w.upgrade().map(TaskRef::from_core)),
        );
    }
    // Unlocked: a handle dropped here may be a task's last, and dropping it
    // removes the task's entry, locking its shard.
    out.retain(|t| keep(t));
    out
}

/// The pending tasks created by this crate on the current runtime (on every
/// runtime when called outside one), the calling task included.
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::Task::builder().name("sleeper").spawn(asyncio::sleep(10));
///     let names: Vec<String> = asyncio::all_tasks().iter().map(|t| t.get_name()).collect();
///     assert!(names.contains(&"sleeper".to_string()));
///     t.cancel();
/// });
/// ```
pub fn all_tasks() -> Vec<TaskRef> {
    let runtime = with_current(|cur| cur.and_then(|t| t.core().header().runtime))
        .or_else(|| Handle::try_current().ok().map(|h| h.id()));
    collect(|t| !t.done() && (runtime.is_none() || t.core().header().runtime == runtime))
}

#[cfg(test)]
mod tests {
    use super::{SHARDS, lock};
    use crate::{Runner, TaskId};

    /// Whether the registry has an entry for task `id` (live or not).
    fn has_entry(id: TaskId) -> bool {
        // As `collect`: upgrade under the lock, look (and drop) after it.
        let live: Vec<_> = (0..SHARDS)
            .flat_map(|shard| {
                let slab = lock(shard);
                let cores: Vec<_> = slab
                    .entries
                    .iter()
                    .flatten()
                    .filter_map(|w| w.upgrade())
                    .collect();
                cores
            })
            .collect();
        live.iter().any(|core| core.header().id == id)
    }

    /// A task leaves `all_tasks` when it ends, and the registry when its
    /// last handle is dropped; dropping that handle (here, after the
    /// registry upgraded it) does not deadlock.
    #[test]
    fn entry_lives_as_long_as_a_handle() {
        Runner::new().current_thread().run(async {
            let mut task = crate::create_task(async { 7 });
            let id = task.id();
            assert!(crate::all_tasks().iter().any(|t| t.id() == id));
            assert_eq!((&mut task).await.unwrap(), 7);
            let handle = task.to_ref();
            drop(task);
            assert!(!crate::all_tasks().iter().any(|t| t.id() == id));
            assert!(has_entry(id), "a handle is alive: the entry stays");
            drop(handle);
            assert!(!has_entry(id), "the last handle is gone: so is the entry");
        });
    }
}
