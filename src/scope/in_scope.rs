//! A future polled in place inside a cancel scope of its own, cancelled on
//! demand: what `wait_for` runs its (non-task) input in, so that a timeout
//! reaches the `on_cancel`s inside as a cancellation and waits for their
//! cleanups, as a timeout scope does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::pin_project;

use super::node::{self, Node, Registration};

/// See the module docs.
#[pin_project]
pub(crate) struct InScope<F> {
    #[pin]
    fut: Option<F>,
    node: Option<Arc<Node>>,
    reg: Option<Registration>,
    registered: bool,
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
            node: None,
            reg: None,
            registered: false,
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
        let node = this.node.get_or_insert_with(Node::new).clone();
        if cancel {
            node.cancel_own();
        }
        node.set_waker(cx.waker());
        if !node.status().must_drop() {
            let fut = this
                .fut
                .as_mut()
                .as_pin_mut()
                .expect("asyncio: polled after completion");
            if let Poll::Ready(v) = node::enter(&node, || fut.poll(cx)) {
                this.fut.set(None);
                *this.reg = None;
                return Poll::Ready(Some(v));
            }
            if !*this.registered {
                // Registered once pending: a future ready at once costs no
                // lock of the enclosing scope.
                *this.registered = true;
                if let Some(parent) = node::current_parent() {
                    *this.reg = parent.register(&node).ok();
                }
            }
            if !node.status().must_drop() {
                return Poll::Pending;
            }
        }
        // Cancelled, every cleanup inside ran: drop the future, report.
        this.fut.set(None);
        let inherited = node.status().inherited;
        *this.reg = None;
        if inherited {
            *this.gone = true;
            return Poll::Pending;
        }
        Poll::Ready(None)
    }
}
