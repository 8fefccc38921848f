//! Awaiting a task by value inside a cancel scope: the awaited task is
//! cancelled with the awaiter, and the awaiter's cancellation waits for the
//! awaited task's end (its cleanups included), as asyncio's `await task`.
//!
//! `Join` (the future of `task.await`) holds an [`AwaitScope`] and calls it
//! after each poll that found the task pending. It registers only once the
//! awaited task has a cancel scope of its own (a cleanup to wait for): a
//! `task.await` on a task without any costs one branch.

use std::sync::Arc;
use std::task::Context;

use super::node::{self, Node, Registration};

/// The awaiter's side of a by-value task await.
#[derive(Default)]
pub(crate) struct AwaitScope {
    node: Option<Arc<Node>>,
    reg: Option<Registration>,
    /// The awaited task was cancelled for the awaiter.
    cancel_sent: bool,
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
    /// After a poll that found the awaited task pending. `scoped`: the
    /// awaited task has cleanups that a cancel would run.
    pub(crate) fn pending(&mut self, scoped: bool, cx: &Context<'_>) -> AwaitAction {
        if self.node.is_none() {
            if !scoped {
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
