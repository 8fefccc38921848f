//! A future polled in place inside a cancel scope of its own, cancelled on
//! demand: what `wait_for` runs its (non-task) input in, so that a timeout
//! reaches the `on_cancel`s inside as a cancellation and waits for their
//! cleanups, as a timeout scope does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::pin_project;

use super::node::{self, LazyScope, Node};

/// See the module docs.
#[pin_project(project = InScopeProj)]
pub(crate) struct InScope<F> {
    #[pin]
    fut: Option<F>,
    /// Made and registered only when something needs it.
    scope: LazyScope,
    /// Cancelled from outside and every cleanup ran: pending for ever.
    gone: bool,
}

impl<F> InScope<F> {
    /// The future was dropped (it returned, or was cancelled).
    pub(crate) fn is_dropped(&self) -> bool {
        self.fut.is_none()
    }
}

impl<F: Future> InScope<F> {
    pub(crate) fn new(fut: F) -> Self {
        InScope {
            fut: Some(fut),
            scope: LazyScope::default(),
            gone: false,
        }
    }

    /// Polls the future. `cancel`: cancel it first (on its own account).
    /// `Ready(Some(v))`: it returned (a value wins over a cancel, module
    /// `node` invariant 5); `Ready(None)`: cancelled on its own account and
    /// every cleanup inside ran (the caller reports the timeout); a
    /// cancellation of the enclosing scope makes it pending for ever once
    /// the cleanups ran (it goes on there).
    ///
    /// The node is made lazily (`node::LazyScope`): only when a scope
    /// polled inside asks for its parent, and it registers with the
    /// enclosing scope then. Without one, no scope inside registered,
    /// nothing owes a cleanup: a cancel drops the future at once, and there
    /// is nothing to register with the enclosing scope (its cancellation
    /// drops this future with everything else it runs).
    ///
    /// # Panics
    /// If polled after it resolved.
    pub(crate) fn poll_scoped(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        cancel: bool,
    ) -> Poll<Option<F::Output>> {
        let mut this = self.project();
        if *this.gone {
            return Poll::Pending;
        }
        let Some(node) = this.scope.node().cloned() else {
            if cancel {
                // No scope inside: no cleanup to wait for.
                this.fut.set(None);
                return Poll::Ready(None);
            }
            let fut = this
                .fut
                .as_mut()
                .as_pin_mut()
                .expect("asyncio: polled after completion");
            if let Poll::Ready(v) = this.scope.enter(None, || fut.poll(cx)) {
                this.fut.set(None);
                this.scope.leave();
                return Poll::Ready(Some(v));
            }
            return match this.scope.node().cloned() {
                // A scope inside asked for this one (which registered
                // then): from now on it is a scope like any other.
                Some(node) => {
                    node.set_waker(cx.waker());
                    this.drop_if_cancelled(&node)
                }
                None => Poll::Pending,
            };
        };
        if cancel {
            node.cancel_own();
        }
        node.set_waker(cx.waker());
        if !node.claim_drop() {
            let fut = this
                .fut
                .as_mut()
                .as_pin_mut()
                .expect("asyncio: polled after completion");
            if let Poll::Ready(v) = node::enter(&node, || fut.poll(cx)) {
                this.fut.set(None);
                this.scope.leave();
                return Poll::Ready(Some(v));
            }
            return this.drop_if_cancelled(&node);
        }
        this.finish(&node)
    }
}

impl<F: Future> InScopeProj<'_, F> {
    /// After a pending poll: drops the future if a cancellation allows it.
    fn drop_if_cancelled(&mut self, node: &Arc<Node>) -> Poll<Option<F::Output>> {
        if !node.claim_drop() {
            return Poll::Pending;
        }
        self.finish(node)
    }

    /// Cancelled, every cleanup inside ran: drop the future, report.
    fn finish(&mut self, node: &Arc<Node>) -> Poll<Option<F::Output>> {
        self.fut.set(None);
        let inherited = node.status().inherited;
        self.scope.leave();
        if inherited {
            *self.gone = true;
            return Poll::Pending;
        }
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[test]
    fn a_future_ready_at_its_first_poll_makes_no_scope_node() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut s = pin!(InScope::new(async { 7 }));
        assert!(matches!(
            s.as_mut().poll_scoped(&mut cx, false),
            Poll::Ready(Some(7))
        ));
        assert!(s.scope.node().is_none() && !s.scope.settled());
    }

    #[test]
    fn a_pending_future_without_scopes_inside_makes_no_node_and_a_cancel_drops_it() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut s = pin!(InScope::new(std::future::pending::<()>()));
        assert!(s.as_mut().poll_scoped(&mut cx, false).is_pending());
        assert!(s.scope.node().is_none());
        assert!(matches!(
            s.as_mut().poll_scoped(&mut cx, true),
            Poll::Ready(None)
        ));
        assert!(s.is_dropped());
    }

    #[test]
    fn a_scope_asking_for_its_parent_inside_makes_the_node() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut s = pin!(InScope::new(async {
            assert!(node::current_parent().is_some());
            std::future::pending::<()>().await
        }));
        assert!(s.as_mut().poll_scoped(&mut cx, false).is_pending());
        assert!(s.scope.node().is_some() && s.scope.settled());
    }
}
