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
//! *registers* with it, as its child. The scopes are:
//!
//! | scope | polls in place | cancelled on its own by |
//! |---|---|---|
//! | a task's root (one per task, made at the first registration) | (the task's future) | `TaskRef::cancel` |
//! | `OnCancel` / `Finally` | the protected future | nothing: only by its parent |
//! | a timeout scope (`Timeout::run`) | the future it limits | its deadline |
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
//! `wait_for`'s plain input makes its node only when something needs it
//! (`enter_lazy`): when a scope polled inside asks for its parent, or when
//! it is cancelled with such a scope inside. Until then nothing under it
//! owes a cleanup, so a timeout or a cancellation of the enclosing scope
//! simply drops it, and it registers with the enclosing scope only once it
//! has a node and is pending (as every scope registers once pending).
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
//!    `finally`, after the future returned) — also when the cancellation
//!    came between the registration and the future's first poll, as
//!    asyncio runs an `except CancelledError:` handler whose `try:` body was
//!    cancelled at its first `await`. A future dropped by code outside the
//!    scopes (a `select!`, the runtime shutting down) runs no cleanup.
//! 7. **No cleanup is promised that an abort would cut.** A task root whose
//!    idle hook ran (the task is aborted: its future is dropped when the
//!    current poll returns) is *doomed*, and so is a root made for a task
//!    already cancelled; registering with a doomed scope is refused and
//!    dooms the newcomer, and an `OnCancel` refused so never polls its
//!    future (so it owes no cleanup). A timeout scope or group refused so
//!    runs on without a parent until the abort drops it.

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

use tokio::time::Instant;

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
    /// A timeout scope's deadline (`None`: none), and a counter bumped by
    /// every `reschedule`, so that the running scope re-arms its timer.
    deadline: Option<Instant>,
    generation: u64,
    /// A timeout scope's deadline fired.
    expired: bool,
    /// The scope this one is registered with (weak: the parent holds the
    /// child while it is registered).
    parent: Option<Weak<Node>>,
    /// What this scope runs is about to be dropped from outside (its task
    /// was aborted): a scope that registers now is refused (invariant 7).
    doomed: bool,
    /// A timeout scope runs one future: `run` was called.
    entered: bool,
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
        Arc::new(Node {
            state: Mutex::new(State::default()),
        })
    }

    /// A scope without a poller: `idle` runs when it is cancelled and its
    /// last live child leaves (invariant 3).
    pub(crate) fn with_idle_hook(idle: IdleHook) -> Arc<Node> {
        Arc::new(Node {
            state: Mutex::new(State {
                idle: Some(idle),
                ..State::default()
            }),
        })
    }

    pub(crate) fn with_deadline(deadline: Option<Instant>) -> Arc<Node> {
        Arc::new(Node {
            state: Mutex::new(State {
                deadline,
                ..State::default()
            }),
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
        let old = {
            let mut s = self.lock();
            match &s.waker {
                Some(w) if w.will_wake(waker) => None,
                _ => s.waker.replace(waker.clone()),
            }
        };
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

    /// The deadline and its generation (timeout scopes).
    pub(crate) fn deadline(&self) -> (Option<Instant>, u64) {
        let s = self.lock();
        (s.deadline, s.generation)
    }

    /// Moves the deadline and wakes the poller, which re-arms its timer.
    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        let waker = {
            let mut s = self.lock();
            s.deadline = deadline;
            s.generation += 1;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The deadline fired: cancels the scope on its own account.
    pub(crate) fn expire(&self) {
        self.lock().expired = true;
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
            let (deadline, parent) = {
                let s = node.lock();
                (s.deadline, s.parent.as_ref().and_then(Weak::upgrade))
            };
            if deadline.is_some_and(|d| d <= now) {
                due.push(node);
            }
            next = parent;
        }
        for node in due.into_iter().rev() {
            node.expire();
        }
        self.expire();
    }

    /// Marks a timeout scope entered; `false` if it already was.
    pub(crate) fn enter_once(&self) -> bool {
        !std::mem::replace(&mut self.lock().entered, true)
    }

    pub(crate) fn expired(&self) -> bool {
        self.lock().expired
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

/// What code polled now runs inside.
#[derive(Clone)]
enum Ctx {
    /// A scope.
    Scope(Arc<Node>),
    /// A cleanup: nothing outside can cancel it.
    Shielded,
    /// A scope whose node is not made yet (`enter_lazy`): the first
    /// `current_parent` asking for it makes it and puts it here as a
    /// `Scope`, and `enter_lazy` hands it back to its owner.
    Lazy,
}

thread_local! {
    static CURRENT: Cell<Option<Ctx>> = const { Cell::new(None) };
}

/// Runs `f` (one poll) with `ctx` as the current scope, restoring the
/// previous one afterwards, also on unwind.
fn enter_ctx<R>(ctx: Ctx, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Ctx>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = CURRENT.try_with(|c| c.set(prev));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(ctx))));
    f()
}

/// One poll of what `node` runs.
pub(crate) fn enter<R>(node: &Arc<Node>, f: impl FnOnce() -> R) -> R {
    enter_ctx(Ctx::Scope(node.clone()), f)
}

/// One poll of what the scope in `slot` runs, making its node only if a
/// scope polled inside asks for a parent (`current_parent`): a future that
/// starts no scope of its own costs no node. A node made so is in `slot`
/// afterwards, also on unwind.
pub(crate) fn enter_lazy<R>(slot: &mut Option<Arc<Node>>, f: impl FnOnce() -> R) -> R {
    if let Some(node) = slot {
        return enter(node, f);
    }
    struct Restore<'a> {
        prev: Option<Ctx>,
        slot: &'a mut Option<Arc<Node>>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let prev = self.prev.take();
            if let Ok(Some(Ctx::Scope(node))) = CURRENT.try_with(|c| c.replace(prev)) {
                *self.slot = Some(node);
            }
        }
    }
    let _restore = Restore {
        prev: CURRENT.with(|c| c.replace(Some(Ctx::Lazy))),
        slot,
    };
    f()
}

/// One poll of a cleanup (shielded).
pub(crate) fn enter_shielded<R>(f: impl FnOnce() -> R) -> R {
    enter_ctx(Ctx::Shielded, f)
}

/// The scope a scope polled now belongs to: the current scope (made now if
/// it is a lazy one, see `enter_lazy`); in a task outside any scope, the
/// task's root; else none (nothing can cancel it).
pub(crate) fn current_parent() -> Option<Arc<Node>> {
    let ctx = CURRENT.with(|c| {
        let cur = match c.take() {
            Some(Ctx::Lazy) => Some(Ctx::Scope(Node::new())),
            other => other,
        };
        let out = cur.clone();
        c.set(cur);
        out
    });
    match ctx {
        Some(Ctx::Scope(node)) => Some(node),
        Some(Ctx::Shielded) => None,
        Some(Ctx::Lazy) => unreachable!("a lazy scope is made above"),
        None => task_root(),
    }
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
    let ctx = CURRENT.with(|c| {
        let cur = c.take();
        let out = cur.clone();
        c.set(cur);
        out
    });
    match ctx {
        Some(Ctx::Scope(node)) => Some(LazyParent::Scope(node)),
        Some(Ctx::Shielded) => None,
        Some(Ctx::Lazy) => current_parent().map(LazyParent::Scope),
        None => crate::task::with_current(|task| task.cloned()).map(LazyParent::Task),
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
