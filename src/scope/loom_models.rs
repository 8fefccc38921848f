//! Loom models of the decision between "drop now" and "clean up first"
//! (see `sync_shim.rs` for how to run them).
//!
//! Each model runs the real code of `node.rs`, `root.rs` and the task core
//! (`task/core.rs`, `task/state.rs`) on loom threads, without a Tokio
//! runtime, and checks one race on every interleaving loom explores:
//!
//! - a parent's cancel racing a child's registration, a child's leave and a
//!   grandchild's registration (invariants 2 and 3 of `node.rs`): every
//!   child registered when the cancel lands is cancelled, `live` returns to
//!   0, the idle hook runs exactly once, and never while a child is live;
//! - a scope's poller storing its waker and reading its status, racing the
//!   cancel and the last child's leave (invariant 4): a poller that did not
//!   see "drop now" is woken;
//! - a scope's poller claiming "drop now" (`claim_drop`), racing the cancel
//!   and a late registration (invariants 3 and 7): the registration keeps
//!   the scope waiting or is refused, never joins a dropped scope;
//! - a task root's `set_abort` racing the last cleanup's `abort_now`
//!   (invariant 7): the abort runs exactly once, only after the cancel and
//!   with no cleanup live, and is never lost;
//! - a task's `cancel()` racing its root's creation (`scope_root`, which
//!   sets the state word's `SCOPED` bit) and the spawn installing the abort
//!   (`set_canceller`), with a cleanup registering and leaving: the abort
//!   never cuts a registered cleanup and is never lost, and a returned
//!   value wins over a late cancel (invariant 3 of `task/state.rs`);
//! - a real `on_cancel`, `finally` and nested `on_cancel` (`on_cancel.rs`)
//!   polled on one loom thread the way the harness polls a task (an aborted
//!   task is not polled again, its future is dropped), while a second
//!   thread cancels the task's root and a third installs its abort: each
//!   cleanup runs exactly once, innermost first, before the abort; a value
//!   returned in the meantime is kept; over a future that never returns,
//!   the cancel ends the task (a lost cancel or wake-up leaves every loom
//!   thread blocked, which loom reports as a deadlock).
//!
//! What they do not cover: timeout scopes, groups and `wait_for`'s scope
//! (they need Tokio's timer and spawner), by-value task awaits
//! (`await_task.rs`), and Tokio's side (the `AbortHandle`, the harness):
//! the abort is a counter, a flag that wakes the polling thread, or a
//! `CancellationToken` (the main task's canceller, the one `Canceller`
//! that needs no runtime). The current scope is a thread-local, which
//! loom's threads (run on one OS thread) share: only one thread of a model
//! polls scopes, so `enter` / `current_parent` run, but are not raced.

use std::sync::OnceLock;

use ::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use ::loom::thread;

use super::{Node, TaskRoot};
use crate::sync_shim::model::check;
use crate::sync_shim::{Arc, Weak};

/// A parent whose idle hook counts its runs and checks that no child is
/// live when it runs (invariant 3).
fn parent_with_counted_idle_hook() -> (Arc<Node>, Arc<AtomicUsize>) {
    let fired = Arc::new(AtomicUsize::new(0));
    let me: Arc<OnceLock<Weak<Node>>> = Arc::new(OnceLock::new());
    let (f, m) = (fired.clone(), me.clone());
    let parent = Node::with_idle_hook(Arc::new(move || {
        if let Some(parent) = m.get().and_then(Weak::upgrade) {
            let s = parent.status();
            assert!(
                s.cancelled() && s.live == 0,
                "idle hook ran with {} live children",
                s.live
            );
        }
        f.fetch_add(1, SeqCst);
    }));
    me.set(Arc::downgrade(&parent)).unwrap();
    (parent, fired)
}

/// A waker that counts its wakes.
fn counting_waker() -> (std::task::Waker, Arc<AtomicUsize>) {
    struct Count(Arc<AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let n = Arc::new(AtomicUsize::new(0));
    (std::task::Waker::from(Arc::new(Count(n.clone()))), n)
}

/// Invariants 2 and 3 of `node.rs`: a cancel racing a child that leaves
/// and a child that registers (and leaves).
#[test]
fn loom_models_a_cancel_racing_register_and_leave_reaches_every_child_and_idles_once() {
    check("cancel / register / leave", || {
        let (parent, fired) = parent_with_counted_idle_hook();
        let cancelled = Arc::new(AtomicBool::new(false));
        let early = Node::new();
        let early_reg = parent.register(&early).unwrap();

        let canceller = {
            let (parent, cancelled) = (parent.clone(), cancelled.clone());
            thread::spawn(move || {
                assert!(parent.cancel_own());
                cancelled.store(true, SeqCst);
            })
        };
        let leaver = {
            let (fired, cancelled) = (fired.clone(), cancelled.clone());
            thread::spawn(move || {
                // A cancel that returned has reached every registered child.
                if cancelled.load(SeqCst) {
                    assert!(
                        early.status().inherited,
                        "a registered child missed the cancel"
                    );
                }
                assert_eq!(
                    fired.load(SeqCst),
                    0,
                    "idle hook ran while a child was live"
                );
                drop(early_reg);
            })
        };
        let late = Node::new();
        match parent.register(&late) {
            Ok(reg) => {
                if cancelled.load(SeqCst) {
                    assert!(
                        late.status().inherited,
                        "a registered child missed the cancel"
                    );
                }
                assert_eq!(
                    fired.load(SeqCst),
                    0,
                    "idle hook ran while a child was live"
                );
                drop(reg);
            }
            Err(_) => {
                // Refused: the parent was already cancelled and empty, its
                // hook decided (invariant 7); the newcomer is doomed with it.
                let s = parent.status();
                assert!(s.own && s.live == 0);
                assert!(late.is_doomed());
            }
        }
        canceller.join().unwrap();
        leaver.join().unwrap();

        let s = parent.status();
        assert!(s.own && s.live == 0);
        assert_eq!(fired.load(SeqCst), 1, "idle hook must run exactly once");
        assert!(parent.is_doomed());
    });
}

/// Invariant 2 one level down: the cancel is passed to a child after the
/// parent's lock is released, while a grandchild registers with the child.
#[test]
fn loom_models_a_cancel_reaches_a_grandchild_registering_meanwhile() {
    check("cancel / grandchild register", || {
        let parent = Node::new();
        let child = Node::new();
        let child_reg = parent.register(&child).unwrap();
        let cancelled = Arc::new(AtomicBool::new(false));
        let canceller = {
            let (parent, cancelled) = (parent.clone(), cancelled.clone());
            thread::spawn(move || {
                parent.cancel_own();
                cancelled.store(true, SeqCst);
            })
        };
        let grandchild = Node::new();
        let reg = child.register(&grandchild).unwrap();
        let seen = cancelled.load(SeqCst);
        if seen {
            assert!(grandchild.status().inherited);
        }
        canceller.join().unwrap();
        assert!(child.status().inherited);
        assert!(
            grandchild.status().inherited,
            "the grandchild missed the cancel"
        );
        drop(reg);
        drop(child_reg);
        assert_eq!(parent.status().live, 0);
    });
}

/// Invariant 4: a scope's poller stores its waker, then decides from its
/// status; a cancel of its parent and the last child's leave race it. A
/// poller that did not see "drop now" must be woken.
#[test]
fn loom_models_a_poller_that_misses_drop_now_is_woken() {
    check("poller waker / cancel / leave", || {
        let parent = Node::new();
        let scope = Node::new();
        let _scope_reg = parent.register(&scope).unwrap();
        let inner = Node::new();
        let inner_reg = scope.register(&inner).unwrap();

        let canceller = {
            let parent = parent.clone();
            thread::spawn(move || {
                parent.cancel_own();
            })
        };
        let leaver = thread::spawn(move || drop(inner_reg));

        let (waker, woken) = counting_waker();
        scope.set_waker(&waker);
        let saw_drop_now = scope.status().must_drop();

        canceller.join().unwrap();
        leaver.join().unwrap();
        assert!(scope.status().must_drop());
        assert!(
            saw_drop_now || woken.load(SeqCst) > 0,
            "lost wake-up: the poller waits for ever"
        );
        let _ = inner;
    });
}

/// Invariants 3 and 7: a scope's poller claims "drop now" while its
/// cancel and a late registration (a by-value await's hold, which the
/// awaited task's first scope makes from another thread) race it. The
/// registration either lands first and keeps the scope waiting, or is
/// refused (and the newcomer doomed): never accepted by a scope that
/// dropped what it runs.
#[test]
fn loom_models_a_claimed_drop_refuses_a_late_registration() {
    check("claim_drop / late registration / cancel", || {
        let scope = Node::new();
        let hold = Node::new();
        let canceller = {
            let scope = scope.clone();
            thread::spawn(move || {
                scope.cancel_own();
            })
        };
        let registrar = {
            let (scope, hold) = (scope.clone(), hold.clone());
            thread::spawn(move || scope.register(&hold).ok())
        };
        let claimed = scope.claim_drop();
        canceller.join().unwrap();
        let reg = registrar.join().unwrap();
        if claimed {
            assert!(reg.is_none(), "a registration joined a dropped scope");
            assert!(hold.is_doomed(), "the refused newcomer is doomed");
        }
        let waited = reg.is_some();
        drop(reg);
        if waited {
            // Registered in time: the scope waited, and drops now.
            assert!(scope.claim_drop());
        }
    });
}

/// An abort that counts its calls and checks, when called, that the task
/// was cancelled and no cleanup is live (invariants 3 and 7).
fn counted_abort(node: &Arc<Node>, aborts: &Arc<AtomicUsize>) -> super::AbortFn {
    let (node, aborts) = (node.clone(), aborts.clone());
    Box::new(move || {
        let s = node.status();
        assert!(s.own, "aborted before the task's cancel");
        assert_eq!(s.live, 0, "the abort cut a running cleanup");
        aborts.fetch_add(1, SeqCst);
    })
}

/// Invariant 7: the abort becomes known (`set_abort`, at spawn) while the
/// task's cancel and its last cleanup's leave (`abort_now`) race it.
#[test]
fn loom_models_set_abort_racing_the_last_cleanup_aborts_exactly_once() {
    check("set_abort / cancel / last leave", || {
        let root = TaskRoot::new(None, false);
        let node = root.node().clone();
        let aborts = Arc::new(AtomicUsize::new(0));
        let cleanup = Node::new();
        let reg = node.register(&cleanup).unwrap();

        let spawner = {
            let (root, f) = (root.clone(), counted_abort(&node, &aborts));
            thread::spawn(move || root.set_abort(f))
        };
        let canceller = {
            let root = root.clone();
            thread::spawn(move || root.cancel())
        };
        assert_eq!(aborts.load(SeqCst), 0, "aborted while a cleanup was live");
        drop(reg);

        spawner.join().unwrap();
        canceller.join().unwrap();
        assert_eq!(aborts.load(SeqCst), 1, "the abort must run exactly once");
        assert!(root.aborted());
    });
}

/// Invariant 7: a root made for a task already cancelled (abort asked for,
/// not known yet) refuses a cleanup that registers while the abort becomes
/// known; the abort runs once.
#[test]
fn loom_models_a_root_made_cancelled_refuses_cleanups_and_aborts_once() {
    check("cancelled root / set_abort / register", || {
        let root = TaskRoot::new(None, true);
        root.cancel();
        let node = root.node().clone();
        let aborts = Arc::new(AtomicUsize::new(0));
        let spawner = {
            let (root, f) = (root.clone(), counted_abort(&node, &aborts));
            thread::spawn(move || root.set_abort(f))
        };
        let cleanup = Node::new();
        assert!(
            node.register(&cleanup).is_err(),
            "a doomed root took a cleanup"
        );
        spawner.join().unwrap();
        assert_eq!(aborts.load(SeqCst), 1);
    });
}

/// Invariant 7 with the abort known from the start: the cancel races a
/// cleanup that registers and one that leaves.
#[test]
fn loom_models_a_known_abort_waits_for_every_cleanup() {
    check("known abort / cancel / register / leave", || {
        let aborts = Arc::new(AtomicUsize::new(0));
        // The abort needs the node, the node comes with the root: install
        // it through `set_abort` before any thread starts.
        let root = TaskRoot::new(None, false);
        let node = root.node().clone();
        root.set_abort(counted_abort(&node, &aborts));
        let first = Node::new();
        let first_reg = node.register(&first).unwrap();

        let canceller = {
            let root = root.clone();
            thread::spawn(move || root.cancel())
        };
        let leaver = {
            let aborts = aborts.clone();
            thread::spawn(move || {
                assert_eq!(aborts.load(SeqCst), 0);
                drop(first_reg);
            })
        };
        let second = Node::new();
        if let Ok(reg) = node.register(&second) {
            assert_eq!(aborts.load(SeqCst), 0, "aborted while a cleanup was live");
            drop(reg);
        }
        canceller.join().unwrap();
        leaver.join().unwrap();
        assert_eq!(aborts.load(SeqCst), 1);
        let _ = first;
    });
}

// ----------------------------------------------------- the task core's part

mod task_core {
    use std::panic::Location;

    use ::loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use ::loom::thread;
    use tokio_util::sync::CancellationToken;

    use super::check;
    use crate::sync_shim::Arc;
    use crate::task::Core;
    use crate::task::core::{AnyCore, End};

    fn core() -> Arc<Core<u32>> {
        Core::new_registered(None, Location::caller(), || "model", None, false)
    }

    /// A task's `cancel()` racing the spawn (which installs the abort: the
    /// main task's token here) and a cleanup registering in the task (which
    /// makes the root: `scope_root`, `mark_scoped`) and then leaving.
    #[test]
    fn loom_models_a_task_cancel_racing_its_root_and_spawn_never_cuts_a_cleanup_nor_is_lost() {
        check("task cancel / scope_root / spawn", || {
            let core = core();
            let token = CancellationToken::new();
            let cancelled = Arc::new(AtomicBool::new(false));

            let spawner = {
                let (core, token) = (core.clone(), token.clone());
                thread::spawn(move || core.set_cancel_token(token))
            };
            let canceller = {
                let (core, cancelled) = (core.clone(), cancelled.clone());
                thread::spawn(move || {
                    assert!(core.cancel(None), "a pending task's cancel returns true");
                    cancelled.store(true, SeqCst);
                })
            };
            // The task's poll: a cleanup scope registers outside any other.
            let root = core.scope_root();
            let cleanup = crate::scope::Node::new();
            match root.register(&cleanup) {
                Ok(reg) => {
                    assert!(!token.is_cancelled(), "the abort cut a registered cleanup");
                    if cancelled.load(SeqCst) {
                        assert!(cleanup.status().inherited, "the cleanup missed the cancel");
                    }
                    assert!(!token.is_cancelled(), "the abort cut a registered cleanup");
                    drop(reg); // the cleanup ended
                }
                Err(_) => {
                    // Refused: the task's abort was asked for already.
                    assert!(cleanup.is_doomed());
                }
            }
            spawner.join().unwrap();
            canceller.join().unwrap();

            let state = core.header().state();
            assert!(state.is_scoped() && state.is_cancel_requested());
            assert!(token.is_cancelled(), "the abort was lost");
            assert!(core.aborted());
        });
    }

    /// Invariant 3 of `task/state.rs` with a scope in the task: the future
    /// returns (the harness completes the task) while a cancel arrives and
    /// a cleanup is still registered; the value wins and the cancel either
    /// comes first (and is recorded) or finds the task done.
    #[test]
    fn loom_models_a_returned_value_wins_over_a_cancel_racing_completion() {
        check("task cancel / complete", || {
            let core = core();
            let token = CancellationToken::new();
            core.set_cancel_token(token.clone());
            let root = core.scope_root();
            let cleanup = crate::scope::Node::new();
            let reg = root.register(&cleanup).unwrap();

            let canceller = {
                let core = core.clone();
                thread::spawn(move || core.cancel(None))
            };
            // The future returned: its scopes are gone, then the end.
            drop(reg);
            let ended = core.clone().complete(End::Returned(7));
            let accepted = canceller.join().unwrap();

            let state = core.header().state();
            assert!(state.is_done() && !state.is_cancelled() && !state.is_panicked());
            assert_eq!(format!("{ended:?}"), "Finished");
            assert_eq!(
                core.take_output().unwrap(),
                7,
                "a late cancel lost the value"
            );
            // The abort ran only if the cancel came while the task was
            // pending (then it found no cleanup left, or the last one left).
            if !accepted {
                assert!(!token.is_cancelled());
            }
        });
    }
}

// ------------------------------------------- a real `OnCancel` in a task

mod on_cancel_in_a_task {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake, Waker};

    use ::loom::sync::Notify;
    use ::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use ::loom::thread;

    use super::super::{TaskRoot, finally, node, on_cancel};
    use super::check;
    use crate::sync_shim::Arc;

    /// The task's waker: parks and unparks the loom thread polling it.
    struct Unpark(Notify);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.notify();
        }
    }

    /// Pending once (waking itself at once), then ready.
    fn yield_once() -> impl Future<Output = ()> {
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    /// What one run saw.
    #[derive(Default)]
    struct Seen {
        /// The protected future was polled / returned its value.
        polled: AtomicBool,
        returned: AtomicBool,
        /// Cleanups started and finished, outer and inner.
        started: AtomicUsize,
        finished: AtomicUsize,
        inner_finished: AtomicUsize,
        aborted: AtomicBool,
    }

    fn cleanup(
        seen: &Arc<Seen>,
        inner: bool,
    ) -> impl FnOnce() -> Pin<Box<dyn Future<Output = ()>>> {
        let seen = seen.clone();
        move || {
            Box::pin(async move {
                if !inner {
                    // Nested cleanups run innermost first.
                    assert_eq!(
                        seen.started.load(SeqCst),
                        seen.inner_finished.load(SeqCst),
                        "the outer cleanup started before the inner one ended"
                    );
                }
                seen.started.fetch_add(1, SeqCst);
                yield_once().await; // a cleanup that awaits
                seen.finished.fetch_add(1, SeqCst);
                if inner {
                    seen.inner_finished.fetch_add(1, SeqCst);
                }
            })
        }
    }

    /// One task whose future is `on_cancel` (or `finally`, `always`) over a
    /// future that yields once and returns 7 (or, `!returns`, waits for
    /// ever), optionally nested in a second `on_cancel`, polled the way the harness does, on the main loom
    /// thread; its root scope is cancelled from a second thread while a
    /// third installs the abort (the spawn returning).
    fn task_model(always: bool, nested: bool, returns: bool) {
        let seen = Arc::new(Seen::default());
        let root = TaskRoot::new(None, false);
        let unpark = std::sync::Arc::new(Unpark(Notify::new()));

        let spawner = {
            let (root, seen, unpark) = (root.clone(), seen.clone(), unpark.clone());
            thread::spawn(move || {
                root.set_abort(Box::new(move || {
                    assert_eq!(
                        seen.started.load(SeqCst),
                        seen.finished.load(SeqCst),
                        "the abort cut a running cleanup"
                    );
                    seen.aborted.store(true, SeqCst);
                    unpark.0.notify(); // Tokio's abort schedules the task
                }))
            })
        };
        let canceller = {
            let root = root.clone();
            thread::spawn(move || root.cancel())
        };

        let body = {
            let seen = seen.clone();
            async move {
                seen.polled.store(true, SeqCst);
                yield_once().await;
                if !returns {
                    // A server loop: only a cancellation ends it.
                    std::future::pending::<()>().await;
                }
                seen.returned.store(true, SeqCst);
                7
            }
        };
        let fut: Pin<Box<dyn Future<Output = u32>>> = match (always, nested) {
            (false, false) => Box::pin(on_cancel(body, cleanup(&seen, false))),
            (true, false) => Box::pin(finally(body, cleanup(&seen, false))),
            (false, true) => Box::pin(on_cancel(
                on_cancel(body, cleanup(&seen, true)),
                cleanup(&seen, false),
            )),
            (true, true) => unreachable!(),
        };
        let mut fut = Some(fut);
        let waker = Waker::from(unpark.clone());
        let mut cx = Context::from_waker(&waker);
        // The harness: an aborted task is not polled again, its future is
        // dropped; a task outside any scope has its root as current scope.
        let out = loop {
            if seen.aborted.load(SeqCst) {
                drop(fut.take());
                break None;
            }
            let f = fut.as_mut().unwrap();
            match node::enter(root.node(), || f.as_mut().poll(&mut cx)) {
                Poll::Ready(v) => break Some(v),
                Poll::Pending => unpark.0.wait(),
            }
        };
        drop(fut);
        spawner.join().unwrap();
        canceller.join().unwrap();

        let cleanups = if nested { 2 } else { 1 };
        let (started, finished) = (seen.started.load(SeqCst), seen.finished.load(SeqCst));
        assert_eq!(started, finished, "a cleanup was cut");
        match out {
            Some(v) => {
                // Invariant 5: the value is never lost to the cancel.
                assert_eq!(v, 7);
                assert!(seen.returned.load(SeqCst));
                // `finally` cleans up after a return; `on_cancel` does not.
                assert_eq!(finished, if always { 1 } else { 0 });
            }
            None => {
                assert!(!seen.returned.load(SeqCst), "a returned value was lost");
                // Invariant 6: entered and cancelled before its end, it
                // cleaned up (exactly once); never entered, it owes none.
                if seen.polled.load(SeqCst) {
                    assert_eq!(finished, cleanups, "a cleanup was skipped");
                }
                assert!(finished <= cleanups);
            }
        }
    }

    #[test]
    fn loom_models_on_cancel_in_a_task_cleans_up_once_before_the_abort() {
        check("task: on_cancel / cancel / set_abort", || {
            task_model(false, false, true)
        });
    }

    #[test]
    fn loom_models_finally_in_a_task_cleans_up_once_and_keeps_the_value() {
        check("task: finally / cancel / set_abort", || {
            task_model(true, false, true)
        });
    }

    #[test]
    fn loom_models_nested_on_cancel_in_a_task_cleans_up_innermost_first() {
        check("task: nested on_cancel / cancel / set_abort", || {
            task_model(false, true, true)
        });
    }

    /// A future that never returns: only the cancellation ends the task,
    /// so a cancellation that does not reach it (or a lost wake-up) leaves
    /// every thread waiting, which loom reports as a deadlock.
    #[test]
    fn loom_models_on_cancel_over_a_future_that_never_returns_ends_by_the_cancel() {
        check("task: on_cancel over pending / cancel / set_abort", || {
            task_model(false, false, false)
        });
    }

    /// The same, nested: the inner scope registers with the outer one while
    /// the cancel passes down (invariant 2 one level below the root).
    #[test]
    fn loom_models_nested_on_cancel_over_a_future_that_never_returns_ends_by_the_cancel() {
        check(
            "task: nested on_cancel over pending / cancel / set_abort",
            || task_model(false, true, false),
        );
    }
}
