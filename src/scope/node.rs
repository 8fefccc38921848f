//! The cancel scope: the one mechanism behind a task's cancellation with
//! cleanup, [`on_cancel`](crate::on_cancel) / [`finally`](crate::finally),
//! [`timeout`](crate::timeout) scopes and a [`TaskGroup`](crate::TaskGroup)'s
//! shutdown.
//!
//! # The model
//! A cancel *scope* is a [`Node`]: a region of code that can be cancelled as
//! a whole. Scopes nest the way the futures that make them are polled: each
//! scope polls what it runs with itself as this thread's *current scope*
//! (`enter`), and a scope polled for the first time inside another one
//! *registers* with it, as its child, before any scope can register with
//! it in turn (invariant 7). The scopes are:
//!
//! | scope | polls in place | cancelled on its own by |
//! |---|---|---|
//! | a task's root (one per task, made at the first registration) | (the task's future) | `TaskRef::cancel` |
//! | `OnCancel` / `Finally` | the protected future | nothing: only by its parent |
//! | a timeout scope (`Timeout::run`, node made lazily) | the future it limits | its deadline |
//! | a task group (`task_group`) | the body (children are tasks, each with its own root) | the first failure |
//! | `wait_for`'s plain input (`InScope`, node made lazily) | the input future | the timeout |
//! | a by-value task await (`Join`, `AwaitScope`) | (a task handle: it cancels that task and waits for its end) | nothing: only by its parent |
//!
//! A cancellation is a *signal first, a drop after*: cancelling a scope marks
//! it and, through the registered children, every scope under it, and wakes
//! each one's poller. A scope that finds itself cancelled and has no live
//! child left (every protected future under it has finished its cleanup)
//! *drops what it runs*, and then reports: `OnCancel` runs its cleanup, a
//! timeout scope returns `Err(Timeout)`, a group returns its errors, a task
//! root ends the task cancelled. A scope cancelled *by its parent* (not on
//! its own) does not report anything: it stays pending for ever and leaves
//! its parent, which now has one live child less ("the cancellation goes
//! on"). Children leave before their parent can finish, so cleanups run
//! innermost first.
//!
//! A timeout scope and `wait_for`'s plain input are *lazy* ([`LazyScope`]):
//! they make their node and register only when something needs it, that is
//! when a scope polled inside asks for its parent (`current_parent`, which
//! then registers every lazy scope around it, outermost first, before it
//! answers), or — for a timeout scope — after the poll that left its future
//! pending (its deadline must reach it from then on). Until then nothing
//! under it owes a cleanup: a future that is ready at its first poll costs
//! no node, no lock and no registration, and `wait_for`'s input, pending
//! with no scope inside, is simply dropped by a timeout or by a
//! cancellation of the enclosing scope.
//!
//! A cleanup runs *shielded*: it is polled with no current scope, so nothing
//! around it can cancel it, and an `OnCancel` or timeout scope inside it
//! belongs to it alone.
//!
//! # States of one scope
//! ```text
//!                 cancel_own() / cancel_inherited()
//!   ACTIVE ────────────────────────────────▶ CANCELLED (own and/or inherited)
//!     │                                         │  live children == 0
//!     │ what it runs returned                   ▼
//!     └──────────────▶ finished ◀──────── dropped what it runs, reported
//! ```
//! Both flags only go from `false` to `true`; `live` counts the registered
//! children, which leave through their [`Registration`]'s drop.
//!
//! # Invariants
//! 1. **One lock a scope, never two at once.** A node's state is behind its
//!    own mutex; no code holds two node locks, or a node lock and any other
//!    lock of the crate. A cancellation is passed down *after* the parent's
//!    lock is released, wakers are woken and the idle hook called after it,
//!    and no user code (poll, destructor, cleanup) runs under a node lock.
//! 2. **Registration and cancellation meet under the parent's lock.** A child
//!    that registers with an already cancelled parent is cancelled
//!    (inherited) by `register` itself; a child registered before the
//!    parent's cancel is in the list the cancel walks. So no child misses a
//!    cancellation of its parent.
//! 3. **A scope drops what it runs only when no child is live.** It checks
//!    `cancelled && live == 0` after every poll of what it runs (children
//!    leave during that poll, in place), and a live child keeps it waiting.
//!    A task root, which has no poller, is told instead: the last child to
//!    leave a cancelled root calls its idle hook (which aborts the task).
//!    The poller decides with `claim_drop`, which dooms the scope in the
//!    same lock (invariant 7), as the idle hook dooms a root: a
//!    registration that comes after the decision (a by-value await's hold,
//!    which the awaited task's first scope makes on the awaiter's behalf,
//!    from another thread) is refused, rather than accepted by a scope that
//!    no longer waits for it.
//! 4. **A cancelled scope's poller is always woken.** `cancel_*` takes the
//!    stored waker and wakes it, and every poll stores the current one first
//!    (`set_waker`), so a cancellation that lands between a poll's check and
//!    its return is seen at the next poll.
//! 5. **A value is never lost to a cancellation.** Every scope, when what it
//!    runs returns a value, hands the value on (`OnCancel` returns it, a
//!    timeout scope returns `Ok`, a group its body's value), whether or not
//!    a cancellation came meanwhile; the cancellation then reaches the
//!    enclosing code at its next suspension point.
//! 6. **Cleanups run exactly once, unless dropped from outside.** An
//!    `OnCancel` moves `Running → Cleaning → Done` once; its cleanup runs
//!    once it was *entered* (first polled, and registered) and a
//!    cancellation reached it before its future completed (or, for
//!    `finally`, after the future returned, or panicked in a poll or in its
//!    destructor: the panic is held and goes on once the cleanup ended) —
//!    also when the cancellation came between the registration and the
//!    future's first poll, as asyncio runs an `except CancelledError:`
//!    handler whose `try:` body was cancelled at its first `await`. An
//!    `on_cancel` whose future panics runs no cleanup (`except
//!    CancelledError:` does not catch other exceptions). A future dropped by
//!    code outside the scopes (a `select!`, the runtime shutting down) runs
//!    no cleanup.
//! 7. **No cleanup is promised that an abort would cut.** A task root whose
//!    idle hook ran (the task is aborted: its future is dropped when the
//!    current poll returns) is *doomed*, and so is a root made for a task
//!    already cancelled, and any scope whose poller decided to drop what it
//!    runs (`claim_drop`, invariant 3); registering with a doomed scope is
//!    refused and dooms the newcomer, and an `OnCancel` refused so never
//!    polls its future (so it owes no cleanup). A timeout scope or group
//!    refused so runs on without a parent until the abort drops it. This
//!    holds because **a scope registers (or is refused) before any scope
//!    registers with it**: `OnCancel`, a group and a by-value await
//!    register at their first poll before they poll anything; a lazy scope
//!    registers when a scope inside first asks for it, within that scope's
//!    `current_parent` call (so before that scope registers, and before its
//!    protected future is polled), or after a poll in which no scope inside
//!    asked for it (so nothing inside owes a cleanup yet). A doomed root
//!    therefore dooms the whole chain down to the `OnCancel`, which then
//!    never polls its future; and a chain registered before the doom keeps
//!    the root waiting (a live child) until its cleanups ran.

use std::cell::{Cell, RefCell};
use std::task::Waker;

use tokio::time::Instant;

use super::deadline::Shared;
use crate::sync_shim::{Arc, Mutex, MutexGuard, Weak};

/// Called, unlocked, when the last live child leaves a cancelled scope that
/// has no poller of its own (a task's root: it aborts the task).
pub(crate) type IdleHook = Arc<dyn Fn() + Send + Sync>;

/// One cancel scope (see the module docs).
pub(crate) struct Node {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Cancelled on its own (deadline, group failure, task cancel).
    own: bool,
    /// Cancelled because its parent was.
    inherited: bool,
    /// Registered children (a slab: `free` holds the empty slots).
    children: Vec<Option<Arc<Node>>>,
    free: Vec<usize>,
    /// How many children are registered.
    live: usize,
    /// The poller's waker (invariant 4).
    waker: Option<Waker>,
    /// Invariant 3, for scopes without a poller.
    idle: Option<IdleHook>,
    /// A timeout scope's deadline (none for other scopes).
    timer: Shared,
    /// The scope this one is registered with (weak: the parent holds the
    /// child while it is registered).
    parent: Option<Weak<Node>>,
    /// What this scope runs is about to be dropped from outside (its task
    /// was aborted): a scope that registers now is refused (invariant 7).
    doomed: bool,
}

/// What a scope sees of itself, read in one lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Status {
    pub(crate) own: bool,
    pub(crate) inherited: bool,
    pub(crate) live: usize,
}

impl Status {
    pub(crate) fn cancelled(self) -> bool {
        self.own || self.inherited
    }

    /// Invariant 3: cancelled, and no child is still cleaning up.
    pub(crate) fn must_drop(self) -> bool {
        self.cancelled() && self.live == 0
    }
}

impl Node {
    pub(crate) fn new() -> Arc<Node> {
        Node::with_state(State::default())
    }

    fn with_state(state: State) -> Arc<Node> {
        Arc::new(Node {
            state: Mutex::new(state),
        })
    }

    /// A scope without a poller: `idle` runs when it is cancelled and its
    /// last live child leaves (invariant 3).
    pub(crate) fn with_idle_hook(idle: IdleHook) -> Arc<Node> {
        Node::with_state(State {
            idle: Some(idle),
            ..State::default()
        })
    }

    /// A timeout scope's node: expiring it marks `timer` expired.
    fn with_timer(timer: Shared) -> Arc<Node> {
        Node::with_state(State {
            timer,
            ..State::default()
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }

    pub(crate) fn status(&self) -> Status {
        let s = self.lock();
        Status {
            own: s.own,
            inherited: s.inherited,
            live: s.live,
        }
    }

    /// Stores the poller's waker (invariant 4).
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let old = store_waker(&mut self.lock().waker, waker);
        drop(old); // outside the lock
    }

    /// Makes `child` a child of `self` (invariant 2); it leaves when the
    /// returned registration is dropped. `Err(Doomed)` (and `child` doomed
    /// too) if what `self` runs is being dropped from outside (invariant 7).
    pub(crate) fn register(self: &Arc<Self>, child: &Arc<Node>) -> Result<Registration, Doomed> {
        let (slot, cancelled) = {
            let mut s = self.lock();
            if s.doomed {
                drop(s);
                child.lock().doomed = true;
                return Err(Doomed);
            }
            let entry = Some(child.clone());
            let slot = match s.free.pop() {
                Some(i) => {
                    s.children[i] = entry;
                    i
                }
                None => {
                    s.children.push(entry);
                    s.children.len() - 1
                }
            };
            s.live += 1;
            (slot, s.own || s.inherited)
        };
        child.lock().parent = Some(Arc::downgrade(self));
        if cancelled {
            child.cancel_inherited();
        }
        Ok(Registration {
            parent: self.clone(),
            slot,
        })
    }

    /// Invariant 3, as the poller's decision: cancelled and no child live,
    /// so the poller drops what it runs now. The scope is doomed from then
    /// on (invariant 7), under the same lock: a registration that comes
    /// later (a by-value await's hold, made on the awaiter's behalf by the
    /// awaited task's first scope, `await_task.rs`) is refused instead of
    /// joining a scope that no longer waits for anything.
    pub(crate) fn claim_drop(&self) -> bool {
        let mut s = self.lock();
        let drop_now = (s.own || s.inherited) && s.live == 0;
        if drop_now {
            s.doomed = true;
        }
        drop_now
    }

    /// Marks a scope whose future is being dropped from outside.
    pub(crate) fn doom(&self) {
        self.lock().doomed = true;
    }

    pub(crate) fn is_doomed(&self) -> bool {
        self.lock().doomed
    }

    /// Cancels this scope on its own account. `false` if it already was.
    pub(crate) fn cancel_own(&self) -> bool {
        self.cancel(true)
    }

    /// Cancels this scope because its parent was cancelled.
    pub(crate) fn cancel_inherited(&self) -> bool {
        self.cancel(false)
    }

    fn cancel(&self, own: bool) -> bool {
        let (children, waker, idle) = {
            let mut s = self.lock();
            let flag = if own { s.own } else { s.inherited };
            if flag {
                return false;
            }
            let first = !(s.own || s.inherited);
            if own {
                s.own = true;
            } else {
                s.inherited = true;
            }
            if !first {
                // The children were told by the first cancellation.
                return true;
            }
            let children: Vec<Arc<Node>> = s.children.iter().flatten().cloned().collect();
            let idle = (s.live == 0).then(|| s.idle.clone()).flatten();
            if idle.is_some() {
                s.doomed = true;
            }
            (children, s.waker.take(), idle)
        };
        // Invariant 1: passed down, woken and reported unlocked.
        for child in children {
            child.cancel_inherited();
        }
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(idle) = idle {
            idle();
        }
        true
    }

    /// Gives a timeout scope's node the deadline its handle was linked to,
    /// when that is not the one the node was made with (see
    /// `Timeout::run`); the old one is returned, to be dropped by the caller
    /// outside the lock.
    pub(crate) fn replace_timer(&self, timer: Shared) -> Shared {
        std::mem::replace(&mut self.lock().timer, timer)
    }

    /// The deadline fired: cancels the scope on its own account.
    pub(crate) fn expire(&self) {
        let timer = self.lock().timer.clone();
        if timer.is_some() {
            timer.mark_expired();
        }
        self.cancel_own();
    }

    /// This scope's deadline is due: first fires every enclosing timeout
    /// scope whose deadline is due too (outermost first), so that the
    /// outermost one reports the expiry and the inner ones pass it on, as
    /// asyncio converts only at the outermost scope; then fires this one.
    pub(crate) fn expire_with_ancestors(&self, now: Instant) {
        let mut due = Vec::new();
        let mut next = self.lock().parent.as_ref().and_then(Weak::upgrade);
        while let Some(node) = next {
            let (timer, parent) = {
                let s = node.lock();
                (s.timer.clone(), s.parent.as_ref().and_then(Weak::upgrade))
            };
            // Invariant 1: the deadline's lock is taken after the node's.
            if timer.is_some() && timer.when().is_some_and(|d| d <= now) {
                due.push(node);
            }
            next = parent;
        }
        for node in due.into_iter().rev() {
            node.expire();
        }
        self.expire();
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.status();
        f.debug_struct("CancelScope")
            .field("cancelled", &s.cancelled())
            .field("live_children", &s.live)
            .finish()
    }
}

/// Puts `waker` in `slot` unless the one there wakes the same task; the
/// waker it replaces, to be dropped once the lock is released.
pub(crate) fn store_waker(slot: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match slot {
        Some(w) if w.will_wake(waker) => None,
        _ => slot.replace(waker.clone()),
    }
}

/// [`Node::register`] refused: the parent's future is being dropped.
#[derive(Debug)]
pub(crate) struct Doomed;

/// A child's place in its parent; dropping it leaves the parent.
pub(crate) struct Registration {
    parent: Arc<Node>,
    slot: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let (child, waker, idle) = {
            let mut s = self.parent.lock();
            let child = s.children[self.slot].take();
            s.free.push(self.slot);
            s.live -= 1;
            let idle = s.live == 0 && (s.own || s.inherited);
            // The poller re-checks after its poll anyway (invariant 3); a
            // child leaving outside a poll (dropped elsewhere) wakes it.
            let waker = if idle { s.waker.take() } else { None };
            let hook = if idle { s.idle.clone() } else { None };
            if hook.is_some() {
                s.doomed = true;
            }
            (child, waker, hook)
        };
        drop(child);
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(idle) = idle {
            idle();
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("slot", &self.slot)
            .finish()
    }
}

// ------------------------------------------------------- the current scope

/// A registered scope (or one that never registers: refused, or outside
/// any scope that could cancel it), or a cleanup.
enum Ctx {
    Scope(Arc<Node>),
    /// A cleanup: nothing outside can cancel it.
    Shielded,
}

/// This thread's scope context: what owns something (an `Arc`, a vector)
/// is here; the words a lazy scope touches at every poll are in [`Hot`].
struct Tls {
    /// The innermost registered scope being polled (`None`: none; in a
    /// task, the task's root is the parent then).
    current: Cell<Option<Ctx>>,
    /// The timeout scopes around the innermost not yet registered one
    /// (moved here when it entered).
    timers: RefCell<Vec<TimerSlot>>,
    /// The shared states of any of them, by id, once made (see
    /// [`TimerSlot`]).
    timers_made: RefCell<Vec<(usize, Shared)>>,
    /// The not yet registered scopes that registered during their poll,
    /// because a scope inside asked for them: their node and registration,
    /// handed to them when their poll ends. Ids increase.
    made: RefCell<Vec<Made>>,
}

/// The rest of this thread's scope context: plain words in cells, so that
/// the thread-local has no destructor and each access is one instruction.
/// A timeout scope around a future ready at once touches only these (a
/// vector, or a move of a whole slot, would cost as much as the rest of
/// the scope).
struct Hot {
    /// How many not yet registered scopes ([`LazyScope`]) are being polled
    /// inside `Tls::current`.
    lazy: Cell<usize>,
    /// How many not yet registered scopes are being polled on this thread
    /// (in any context). The `n`-th one, counted from the outermost, has
    /// the id `n`; the one around the scope with id `n` in the same context
    /// has the id `n - 1`.
    depth: Cell<usize>,
    /// The id of the last entry of `Tls::made` (0: none), read without a
    /// borrow when a scope's poll ends.
    made_top: Cell<usize>,
    /// The innermost timeout scope among the not yet registered ones, a
    /// word a cell: its handle's key (0: none), its id, its deadline, and
    /// whether its shared state is on `Tls::timers_made`.
    timer_key: Cell<usize>,
    timer_id: Cell<usize>,
    timer_at: Cell<Option<Instant>>,
    timer_made: Cell<bool>,
}

/// A lazy scope registered during its poll: its id, node, registration.
type Made = (usize, Arc<Node>, Option<Registration>);

/// A not yet registered timeout scope's deadline while the scope is
/// polled (in `Hot::timer_*` for the innermost one, on `timers` for those
/// around it). Its shared state may not exist yet: it is made from `at` by
/// whichever needs it first during the poll, the scope's node (`settle`)
/// or its handle ([`timer_in_poll`]), so that both get the same one, and
/// kept on `timers_made` until the poll ends.
#[derive(Clone, Copy)]
struct TimerSlot {
    /// The lazy scope's id.
    id: usize,
    /// Which handle the scope belongs to ([`Timed::key`]).
    key: usize,
    at: Option<Instant>,
    /// Its shared state is on `timers_made`.
    made: bool,
}

/// What a timeout scope's first poll tells its [`LazyScope`] about its
/// handle, whose shared state may not exist yet.
pub(crate) struct Timed {
    /// The handle's address: it cannot move while its run borrows it, so
    /// no other live handle has it.
    pub(crate) key: usize,
    /// The deadline the handle was made with.
    pub(crate) at: Option<Instant>,
}

/// The shared state of the timeout scope of handle `key` if that scope is
/// in its first poll on this thread (made now if `make`, else only if it
/// exists), so that a handle linked during that poll shares its node's.
pub(crate) fn timer_in_poll(key: usize, make: bool) -> Option<Shared> {
    TLS.try_with(|t| with_timer_slot(t, |s| s.key == key, |t, s| slot_shared(t, s, make)))
        .ok()
        .flatten()
        .flatten()
}

/// Runs `f` on the slot of the first not yet registered timeout scope of
/// this thread, innermost first, that `pick` picks; what `f` changes in it
/// is written back. No user code runs meanwhile (making a shared state only
/// takes one from a pool), so the borrows cannot clash.
fn with_timer_slot<R>(
    t: &Tls,
    pick: impl Fn(&TimerSlot) -> bool,
    f: impl FnOnce(&Tls, &mut TimerSlot) -> R,
) -> Option<R> {
    let h = HOT.with(Hot::timer_top);
    if let Some(mut top) = h.filter(&pick) {
        let r = f(t, &mut top);
        HOT.with(|h| h.timer_made.set(top.made));
        return Some(r);
    }
    let (i, mut slot) = {
        let timers = t.timers.borrow();
        let i = timers.iter().rposition(&pick)?;
        (i, timers[i])
    };
    let r = f(t, &mut slot);
    t.timers.borrow_mut()[i].made = slot.made;
    Some(r)
}

/// The shared state of `slot`: made now if `make` and there is none yet.
fn slot_shared(t: &Tls, slot: &mut TimerSlot, make: bool) -> Option<Shared> {
    if slot.made {
        let made = t.timers_made.borrow();
        return made
            .iter()
            .rev()
            .find(|m| m.0 == slot.id)
            .map(|m| m.1.clone());
    }
    if !make {
        return None;
    }
    let shared = Shared::new(slot.at);
    t.timers_made.borrow_mut().push((slot.id, shared.clone()));
    slot.made = true;
    Some(shared)
}

/// Takes the shared state of the scope with id `id` off `timers_made`.
#[cold]
fn take_timer_made(id: usize) -> Shared {
    let taken = TLS.try_with(|t| {
        let mut made = t.timers_made.borrow_mut();
        let i = made.iter().rposition(|m| m.0 == id)?;
        Some(made.remove(i).1)
    });
    taken.ok().flatten().unwrap_or_default()
}

impl Hot {
    /// The innermost not yet registered timeout scope's slot.
    fn timer_top(&self) -> Option<TimerSlot> {
        let key = self.timer_key.get();
        (key != 0).then(|| TimerSlot {
            id: self.timer_id.get(),
            key,
            at: self.timer_at.get(),
            made: self.timer_made.get(),
        })
    }
}

/// Moves the innermost timeout scope's slot to `timers` (its key is
/// `key`): a timeout scope inside it enters.
#[cold]
fn spill_timer(h: &Hot, key: usize) {
    let slot = TimerSlot {
        id: h.timer_id.get(),
        key,
        at: h.timer_at.get(),
        made: h.timer_made.get(),
    };
    let _ = TLS.try_with(|t| t.timers.borrow_mut().push(slot));
}

/// Puts the slot of the timeout scope around the innermost one back in its
/// place: the innermost one's poll ended.
#[cold]
fn unspill_timer(h: &Hot) {
    let slot = TLS.try_with(|t| t.timers.borrow_mut().pop()).ok().flatten();
    let slot = slot.expect("asyncio: a timeout scope's slot was moved on entry");
    h.timer_key.set(slot.key);
    h.timer_id.set(slot.id);
    h.timer_at.set(slot.at);
    h.timer_made.set(slot.made);
}

/// Puts a linked handle's shared state where `settle` finds it.
#[cold]
fn put_timer_made(h: &Hot, id: usize, shared: Shared) {
    let _ = TLS.try_with(|t| t.timers_made.borrow_mut().push((id, shared)));
    h.timer_made.set(true);
}

thread_local! {
    static TLS: Tls = const {
        Tls {
            current: Cell::new(None),
            timers: RefCell::new(Vec::new()),
            timers_made: RefCell::new(Vec::new()),
            made: RefCell::new(Vec::new()),
        }
    };
    static HOT: Hot = const {
        Hot {
            lazy: Cell::new(0),
            depth: Cell::new(0),
            made_top: Cell::new(0),
            timer_key: Cell::new(0),
            timer_id: Cell::new(0),
            timer_at: Cell::new(None),
            timer_made: Cell::new(false),
        }
    };
}

/// Runs `f` (one poll) with `ctx` as the current scope, restoring the
/// previous one afterwards, also on unwind.
fn enter_ctx<R>(ctx: Ctx, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Ctx>, usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            let (prev, lazy) = (self.0.take(), self.1);
            let _ = TLS.try_with(|t| t.current.set(prev));
            HOT.with(|h| h.lazy.set(lazy));
        }
    }
    let prev = TLS.with(|t| t.current.replace(Some(ctx)));
    let _restore = Restore(prev, HOT.with(|h| h.lazy.replace(0)));
    f()
}

/// One poll of what `node` runs.
pub(crate) fn enter<R>(node: &Arc<Node>, f: impl FnOnce() -> R) -> R {
    enter_ctx(Ctx::Scope(node.clone()), f)
}

/// One poll of a cleanup (shielded).
pub(crate) fn enter_shielded<R>(f: impl FnOnce() -> R) -> R {
    enter_ctx(Ctx::Shielded, f)
}

/// A scope that registers with the enclosing one only when it must: when a
/// scope polled inside asks for its parent (`current_parent`), or when its
/// owner calls [`register_now`](Self::register_now) (after a poll that left
/// what it runs pending). Its node is made then too. Until then nothing
/// under it can owe a cleanup, so a future that is ready at its first poll
/// costs no node and no lock of any scope. Either way the scope is
/// registered, or refused, before any scope registers with it
/// (invariant 7).
#[derive(Default)]
pub(crate) struct LazyScope {
    node: Option<Arc<Node>>,
    reg: Option<Registration>,
    /// A timeout scope's deadline, given to its node (none for a plain
    /// scope, and for a timeout scope whose handle is not linked yet: see
    /// [`Timed`]).
    timer: Shared,
    /// Registered, refused, or found nothing to register with: settled
    /// (and the node made).
    settled: bool,
}

impl LazyScope {
    /// `timer`: a timeout scope's deadline (`Shared::default()`: a plain
    /// scope).
    pub(crate) fn new(timer: Shared) -> LazyScope {
        LazyScope {
            node: None,
            reg: None,
            timer,
            settled: false,
        }
    }

    /// The node, once made.
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The deadline (outside a poll): the one given to [`new`](Self::new),
    /// or the one made during the first poll.
    pub(crate) fn timer(&self) -> &Shared {
        &self.timer
    }

    /// The deadline, to be replaced (outside a poll).
    pub(crate) fn timer_mut(&mut self) -> &mut Shared {
        &mut self.timer
    }

    /// Whether the scope registered (or was refused, or had nothing to
    /// register with).
    pub(crate) fn settled(&self) -> bool {
        self.settled
    }

    /// One poll of what this scope runs, inside it; `timed` for a timeout
    /// scope.
    pub(crate) fn enter<R>(&mut self, timed: Option<Timed>, f: impl FnOnce() -> R) -> R {
        if self.settled {
            let node = self.node.as_ref().expect("a settled scope has a node");
            return enter(node, f);
        }
        /// The scope, its id, whether it is a timeout scope, and whether the
        /// slot of a timeout scope around it was moved to `timers`.
        struct Restore<'a>(&'a mut LazyScope, usize, bool, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let (this, id, timed, spilled) = (&mut *self.0, self.1, self.2, self.3);
                HOT.with(|h| {
                    h.lazy.set(h.lazy.get() - 1);
                    h.depth.set(id - 1);
                    if timed {
                        if h.timer_made.get() {
                            this.timer = take_timer_made(id);
                        }
                        if spilled {
                            unspill_timer(h);
                        } else {
                            h.timer_key.set(0);
                        }
                    }
                    if h.made_top.get() == id {
                        take_made(h, this);
                    }
                });
            }
        }
        /// Hands the scope the node it made during its poll.
        #[cold]
        fn take_made(h: &Hot, this: &mut LazyScope) {
            let made = TLS.try_with(|t| {
                let mut made = t.made.borrow_mut();
                let top = made.pop();
                h.made_top.set(made.last().map_or(0, |m| m.0));
                top
            });
            let (_, node, reg) = made.ok().flatten().expect("made_top names it");
            this.node = Some(node);
            this.reg = reg;
            this.settled = true;
        }
        let is_timed = timed.is_some();
        let (id, spilled) = HOT.with(|h| {
            h.lazy.set(h.lazy.get() + 1);
            let id = h.depth.get() + 1;
            h.depth.set(id);
            let mut spilled = false;
            if let Some(Timed { key, at }) = timed {
                let outer = h.timer_key.replace(key);
                if outer != 0 {
                    spill_timer(h, outer);
                    spilled = true;
                }
                h.timer_id.set(id);
                h.timer_at.set(at);
                h.timer_made.set(false);
                if self.timer.is_some() {
                    put_timer_made(h, id, std::mem::take(&mut self.timer));
                }
            }
            (id, spilled)
        });
        let _restore = Restore(self, id, is_timed, spilled);
        f()
    }

    /// Registers with the current scope now, making the node (after a poll
    /// that left what it runs pending). A no-op once settled.
    pub(crate) fn register_now(&mut self) -> &Arc<Node> {
        if !self.settled {
            self.settled = true;
            let node = make_node(&self.timer);
            if let Some(parent) = current_parent() {
                self.reg = parent.register(&node).ok();
            }
            self.node = Some(node);
        }
        self.node.as_ref().expect("made above")
    }

    /// Leaves the enclosing scope (what it runs is done or dropped).
    pub(crate) fn leave(&mut self) {
        self.reg = None;
    }
}

fn make_node(timer: &Shared) -> Arc<Node> {
    if timer.is_some() {
        Node::with_timer(timer.clone())
    } else {
        Node::new()
    }
}

/// The scope a scope polled now belongs to: the current scope (registered
/// now if it was not, see [`LazyScope`]); in a task outside any scope, the
/// task's root; else none (nothing can cancel it).
pub(crate) fn current_parent() -> Option<Arc<Node>> {
    let (lazy, depth) = HOT.with(|h| (h.lazy.get(), h.depth.get()));
    if lazy == 0 {
        return registered_parent();
    }
    settle(depth, lazy)
}

/// The innermost registered scope (or the task's root), ignoring the not
/// yet registered ones inside it.
fn registered_parent() -> Option<Arc<Node>> {
    registered_ctx().unwrap_or_else(|OutsideScopes| task_root())
}

/// Outside any scope: in a task, its root is the parent.
struct OutsideScopes;

/// The innermost registered scope (`None` in a cleanup), or
/// `Err(OutsideScopes)`.
fn registered_ctx() -> Result<Option<Arc<Node>>, OutsideScopes> {
    TLS.with(|t| {
        let ctx = t.current.take();
        let node = match &ctx {
            None => Err(OutsideScopes),
            Some(Ctx::Shielded) => Ok(None),
            Some(Ctx::Scope(n)) => Ok(Some(n.clone())),
        };
        t.current.set(ctx);
        node
    })
}

/// Registers the not yet registered scope with id `id`, the `lazy`-th
/// inside the current registered scope (its enclosing unregistered ones
/// first), making its node; its node.
fn settle(id: usize, lazy: usize) -> Option<Arc<Node>> {
    // No borrow is held while registering: it takes locks of other scopes
    // and of the task (never user code), and the recursion borrows again.
    let made = TLS.with(|t| {
        let made = t.made.borrow();
        made.iter().rev().find(|m| m.0 == id).map(|m| m.1.clone())
    });
    if made.is_some() {
        return made;
    }
    // A timeout scope's node shares the deadline with its handle (made now
    // if the handle has not needed it yet).
    let timer = TLS.with(|t| with_timer_slot(t, |s| s.id == id, |t, s| slot_shared(t, s, true)));
    let timer = timer.flatten().unwrap_or_default();
    let parent = if lazy > 1 {
        settle(id - 1, lazy - 1)
    } else {
        registered_parent()
    };
    let node = make_node(&timer);
    let reg = parent.and_then(|p| p.register(&node).ok());
    TLS.with(|t| t.made.borrow_mut().push((id, node.clone(), reg)));
    HOT.with(|h| h.made_top.set(id));
    Some(node)
}

/// Where a scope polled now would register, without making a task root
/// for it yet: a by-value task await leaves this with the awaited task,
/// which registers there only if it ever enters a scope of its own
/// (`await_task.rs`).
pub(crate) enum LazyParent {
    Scope(Arc<Node>),
    /// The task's root, to be made when needed.
    Task(crate::TaskRef),
}

/// [`current_parent`], except that a task root is not made yet (a lazy
/// scope is made: only `wait_for`'s input pays for that).
pub(crate) fn current_parent_lazy() -> Option<LazyParent> {
    if HOT.with(|h| h.lazy.get()) > 0 {
        // Inside a scope not registered yet: it registers now (only
        // `wait_for`'s input and timeout scopes are lazy).
        return current_parent().map(LazyParent::Scope);
    }
    match registered_ctx() {
        Ok(node) => node.map(LazyParent::Scope),
        Err(OutsideScopes) => crate::task::with_current(|task| task.cloned()).map(LazyParent::Task),
    }
}

/// The current task's root scope, made at the first call.
fn task_root() -> Option<Arc<Node>> {
    crate::task::with_current(|task| task.map(|t| t.core().scope_root()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A waker that counts its wakes.
    fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
        struct Count(Arc<AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let n = Arc::new(AtomicUsize::new(0));
        (Waker::from(Arc::new(Count(n.clone()))), n)
    }

    #[test]
    fn a_cancel_reaches_every_registered_descendant_and_wakes_it() {
        let root = Node::new();
        let child = Node::new();
        let grandchild = Node::new();
        let _r1 = root.register(&child).unwrap();
        let _r2 = child.register(&grandchild).unwrap();
        let (w, woken) = counting_waker();
        grandchild.set_waker(&w);
        assert!(root.cancel_own());
        assert!(!root.cancel_own(), "a second cancel changes nothing");
        assert!(child.status().inherited && !child.status().own);
        assert!(grandchild.status().inherited);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_child_registering_with_a_cancelled_parent_is_cancelled_at_once() {
        let root = Node::new();
        root.cancel_own();
        let child = Node::new();
        let _r = root.register(&child).unwrap();
        assert!(child.status().inherited);
    }

    #[test]
    fn a_scope_must_drop_only_when_cancelled_and_no_child_is_live() {
        let root = Node::new();
        let child = Node::new();
        let reg = root.register(&child).unwrap();
        assert!(!root.status().must_drop());
        root.cancel_own();
        assert!(!root.status().must_drop(), "a live child is cleaning up");
        let (w, woken) = counting_waker();
        root.set_waker(&w);
        drop(reg);
        assert!(root.status().must_drop());
        assert_eq!(
            woken.load(Ordering::SeqCst),
            1,
            "the last child leaving wakes the poller"
        );
    }

    #[test]
    fn the_idle_hook_runs_once_the_cancelled_root_is_empty_and_dooms_it() {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let root = Node::with_idle_hook(Arc::new(move || {
            f.fetch_add(1, Ordering::SeqCst);
        }));
        let child = Node::new();
        let reg = root.register(&child).unwrap();
        root.cancel_own();
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        drop(reg);
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        let late = Node::new();
        assert!(
            root.register(&late).is_err(),
            "a doomed root refuses newcomers"
        );
        let later = Node::new();
        assert!(
            late.register(&later).is_err(),
            "and so does a scope it refused"
        );
    }

    #[test]
    fn an_empty_root_runs_its_idle_hook_at_the_cancel() {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let root = Node::with_idle_hook(Arc::new(move || {
            f.fetch_add(1, Ordering::SeqCst);
        }));
        root.cancel_own();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn slots_are_reused() {
        let root = Node::new();
        for _ in 0..10 {
            let child = Node::new();
            let _r = root.register(&child).unwrap();
        }
        assert_eq!(root.lock().children.len(), 1);
    }

    #[test]
    fn a_scope_that_claimed_its_drop_refuses_later_registrations() {
        let scope = Node::new();
        assert!(!scope.claim_drop(), "not cancelled");
        scope.cancel_own();
        let early = Node::new();
        let reg = scope.register(&early).unwrap();
        assert!(!scope.claim_drop(), "a live child keeps it waiting");
        drop(reg);
        assert!(scope.claim_drop());
        let late = Node::new();
        assert!(scope.register(&late).is_err(), "invariant 7");
        assert!(late.is_doomed(), "and the newcomer is doomed");
    }

    #[test]
    fn claims_racing_registrations_on_threads_either_wait_or_refuse() {
        for _ in 0..500 {
            let scope = Node::new();
            scope.cancel_own();
            let child = Node::new();
            std::thread::scope(|s| {
                let registering = s.spawn(|| scope.register(&child).ok());
                let claimed = scope.claim_drop();
                let reg = registering.join().unwrap();
                // Registered first: the scope waits for it; claimed first:
                // the registration is refused. Never both, never neither.
                assert_ne!(claimed, reg.is_some());
            });
        }
    }

    #[test]
    fn cancels_racing_registrations_on_threads_reach_every_child() {
        for _ in 0..200 {
            let root = Node::new();
            let children: Vec<Arc<Node>> = (0..8).map(|_| Node::new()).collect();
            let regs = std::thread::scope(|s| {
                let r = root.clone();
                let canceller = s.spawn(move || r.cancel_own());
                let regs: Vec<_> = children.iter().map(|c| root.register(c).unwrap()).collect();
                assert!(canceller.join().unwrap());
                regs
            });
            for c in &children {
                assert!(
                    c.status().inherited,
                    "invariant 2: no child misses the cancel"
                );
            }
            drop(regs);
        }
    }
}
