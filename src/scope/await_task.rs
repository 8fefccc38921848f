//! Awaiting a task by value inside a cancel scope: the awaited task is
//! cancelled with the awaiter, and the awaiter's cancellation waits for the
//! awaited task's end (its cleanups included), as asyncio's `await task`.
//!
//! `Join` (the future of `task.await`) holds an [`AwaitScope`] and calls it
//! after each poll that found the task pending. Once the awaited task has a
//! cancel scope of its own (it is *scoped*: a cleanup to wait for), the
//! await registers a node in the awaiter's current scope, which keeps that
//! scope (and so the awaiter's cancellation) waiting, and passes a
//! cancellation of it on to the task.
//!
//! # An awaited task that enters its first scope later
//! The commonest case: `create_task(f).await` finds the new task not yet
//! started, so not scoped. At that first pending poll the await leaves an
//! [`Awaiter`] with the task (its waker and where it would register: the
//! awaiter's current scope, or its task, whose root is not made yet), in
//! place of the task's canceller (one box). When the task enters its first
//! scope (`Core::scope_root`, in the task's own poll), it takes the
//! `Awaiter` back out under its lock and, unlocked, registers a *hold* node
//! in the awaiter's scope on the awaiter's behalf before the scope it is
//! entering registers with its new root. The hold stays registered until
//! the awaited task ends (its root holds the registration, dropped with
//! it), and a cancellation of the awaiter's scope wakes the await through
//! the hold, which then registers as above and cancels the task.
//!
//! This leaves no window: the awaited task's scope is entered only after
//! the hold is registered, and registration and cancellation meet under the
//! parent's lock (`node.rs`, invariant 2). If the awaiter's cancel came
//! first, its scope is doomed (its task is being aborted, invariant 7), the
//! hold is refused, and the awaited task's new root is doomed too: the
//! scope it is entering is refused and owes no cleanup, and the task ends
//! when the dropped await cancels it, as in asyncio a cancel that reaches
//! a task before its `try:` runs no handler. Nothing is lost either way:
//! every task still ends once and every entered cleanup runs once.
//!
//! # Cost
//! An awaited task that never enters a scope costs its by-value await one
//! box, one lock of the task and a waker clone, at the first pending poll
//! only (an await that finds the task done costs nothing more); the
//! awaiter gets no root and no node. Registering a node at every pending
//! await instead (simpler) would give every awaiting task a root and every
//! await a node and three locks. Waking the awaiter when the task becomes
//! scoped (so that it registers itself) would cost the same as the hold
//! but leave a window: a cancel between the task's first scope and the
//! awaiter's next poll would abort the awaiter without waiting.
//!
//! The hold keeps the waker of the await's first pending poll: a `Join`
//! polled later with another waker (moved into a different combinator) is
//! woken through the old one when cancelled, so it relies on that waker
//! still reaching its task, as all of Tokio's do.

use std::sync::Arc;
use std::task::{Context, Waker};

use super::node::{self, LazyParent, Node, Registration};
use super::root::TaskRoot;
use crate::TaskRef;

/// What a by-value await leaves with an awaited task that is not scoped
/// yet (see the module docs).
pub(crate) struct Awaiter {
    waker: Waker,
    parent: LazyParent,
}

impl Awaiter {
    /// The awaited task just made its root `root` (called unlocked, before
    /// the scope that made it registers there): registers the hold in the
    /// awaiter's scope, or dooms `root` if that scope is being dropped.
    pub(crate) fn task_scoped(self, root: &TaskRoot) {
        if root.aborted() {
            return; // the awaited task is being aborted: nothing to hold
        }
        let parent = match self.parent {
            LazyParent::Scope(node) => node,
            LazyParent::Task(task) if task.done() => return,
            LazyParent::Task(task) => task.core().scope_root(),
        };
        let hold = Node::new();
        hold.set_waker(&self.waker);
        match parent.register(&hold) {
            Ok(reg) => root.hold(reg),
            Err(node::Doomed) => root.node().doom(),
        }
    }
}

/// The awaiter's side of a by-value task await.
#[derive(Default)]
pub(crate) struct AwaitScope {
    node: Option<Arc<Node>>,
    reg: Option<Registration>,
    /// The awaited task was cancelled for the awaiter.
    cancel_sent: bool,
    /// An [`Awaiter`] was offered to the awaited task (once).
    left: bool,
    /// The awaited task ended while the awaiter was being cancelled: the
    /// await stays pending for ever (the cancellation goes on).
    gone: bool,
}

/// What the awaiter must do after a pending poll.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AwaitAction {
    /// Keep waiting.
    Wait,
    /// Cancel the awaited task (once), then keep waiting for its end.
    CancelTask,
}

impl AwaitScope {
    /// After a poll that found `task` pending.
    pub(crate) fn pending(&mut self, task: &TaskRef, cx: &Context<'_>) -> AwaitAction {
        if self.node.is_none() {
            // One state load when the awaited task has no cleanups.
            if !task.core().header().state().is_scoped() && !self.leave(task, cx) {
                return AwaitAction::Wait;
            }
            let Some(parent) = node::current_parent() else {
                return AwaitAction::Wait;
            };
            let node = Node::new();
            match parent.register(&node) {
                Ok(reg) => self.reg = Some(reg),
                Err(node::Doomed) => return AwaitAction::Wait,
            }
            self.node = Some(node);
        }
        let node = self.node.as_ref().expect("registered above");
        node.set_waker(cx.waker());
        if node.status().cancelled() && !self.cancel_sent {
            self.cancel_sent = true;
            return AwaitAction::CancelTask;
        }
        AwaitAction::Wait
    }

    /// The first pending poll of an unscoped task: leaves an [`Awaiter`]
    /// with it. `true`: the task became scoped meanwhile, register now.
    fn leave(&mut self, task: &TaskRef, cx: &Context<'_>) -> bool {
        if std::mem::replace(&mut self.left, true) {
            return false;
        }
        let Some(parent) = node::current_parent_lazy() else {
            return false; // nothing can cancel this await
        };
        let awaiter = Awaiter {
            waker: cx.waker().clone(),
            parent,
        };
        match task.core().leave_awaiter(awaiter) {
            Ok(()) => false,
            Err(back) => {
                drop(back);
                task.core().header().state().is_scoped()
            }
        }
    }

    /// The awaited task ended. `true`: hand its result over; `false`: the
    /// awaiter is being cancelled and the task ended cancelled, so the
    /// await stays pending for ever while the enclosing scope goes on.
    pub(crate) fn ended(&mut self, cancelled: bool) -> bool {
        self.reg = None; // leaves the enclosing scope
        if self.cancel_sent && cancelled {
            self.gone = true;
            return false;
        }
        true
    }

    /// The await already gave up its result for the cancellation.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone
    }
}

impl std::fmt::Debug for AwaitScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitScope")
            .field("registered", &self.reg.is_some())
            .field("cancel_sent", &self.cancel_sent)
            .finish()
    }
}
