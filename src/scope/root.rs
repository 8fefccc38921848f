//! A task's root scope: made the first time a scope registers in a task that
//! is outside any other scope, it turns the task's `cancel()` from an abort
//! into a signal while cleanups are pending (see `node.rs`, invariants 3
//! and 7).
//!
//! The task core holds it in place of its canceller (so a task without one
//! pays nothing); the root holds the real abort and calls it when the last
//! cleanup ended.

use crate::sync_shim::{Arc, Mutex, Weak};

use super::node::{Node, Registration};

/// Aborts the task (Tokio's abort, or the main task's token).
pub(crate) type AbortFn = Box<dyn Fn() + Send + Sync>;

/// A task's root scope.
pub(crate) struct TaskRoot {
    node: Arc<Node>,
    abort: Mutex<Abort>,
    /// A by-value await's hold in the awaiter's scope, kept until the task
    /// ends (`await_task.rs`).
    hold: Mutex<Option<Registration>>,
}

enum Abort {
    /// The task is not spawned yet: its abort is not known.
    NotYet,
    Known(AbortFn),
    /// The abort was asked for before it was known: done when it is.
    Requested,
}

impl TaskRoot {
    /// A root for a task whose abort is `abort` (`None`: not known yet).
    /// `cancelled`: the task's cancel was already requested (and its abort
    /// asked for): the root is doomed from the start (invariant 7).
    pub(crate) fn new(abort: Option<AbortFn>, cancelled: bool) -> Arc<TaskRoot> {
        Arc::new_cyclic(|weak: &Weak<TaskRoot>| {
            let w = weak.clone();
            let node = Node::with_idle_hook(Arc::new(move || {
                if let Some(root) = w.upgrade() {
                    root.abort_now();
                }
            }));
            let abort = match abort {
                Some(f) => Abort::Known(f),
                None if cancelled => Abort::Requested,
                None => Abort::NotYet,
            };
            if cancelled {
                node.doom();
            }
            TaskRoot {
                node,
                abort: Mutex::new(abort),
                hold: Mutex::new(None),
            }
        })
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The task's `cancel()`: a signal to the scopes inside; the abort
    /// follows when no cleanup is left (at once if none is running).
    pub(crate) fn cancel(&self) {
        self.node.cancel_own();
    }

    /// The task is spawned: its abort is known now.
    pub(crate) fn set_abort(&self, f: AbortFn) {
        let mut abort = crate::lock::lock(&self.abort);
        if let Abort::Requested = *abort {
            f(); // only schedules the abort: no user code
        }
        *abort = Abort::Known(f);
    }

    /// Whether the abort was asked for (the task's future is about to be
    /// dropped): the main task of `run` is then not polled again.
    pub(crate) fn aborted(&self) -> bool {
        self.node.is_doomed()
    }

    /// Keeps `reg` (a by-value awaiter's hold) until the task ends.
    pub(crate) fn hold(&self, reg: Registration) {
        let old = crate::lock::lock(&self.hold).replace(reg);
        drop(old); // outside the lock (none: a root is made once)
    }

    fn abort_now(&self) {
        let mut abort = crate::lock::lock(&self.abort);
        match &*abort {
            Abort::Known(f) => f(),
            Abort::NotYet => *abort = Abort::Requested,
            Abort::Requested => {}
        }
    }
}

impl std::fmt::Debug for TaskRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRoot")
            .field("node", &self.node)
            .finish()
    }
}
