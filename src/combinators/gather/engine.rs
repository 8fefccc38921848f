//! The engine every gather future runs on: follows the children's progress
//! in input order, ends early on a failure reported by the children watcher,
//! cancels the unfinished children if dropped before it resolved, and
//! counts the children's panics as seen as asyncio's gather does.
//!
//! # Which panics a gather sees
//! asyncio's gather gives every child a done callback that calls
//! `fut.exception()`, also after the gather ended ("Mark exception
//! retrieved"): no child of a gather is ever reported as "Task exception was
//! never retrieved". The one exception a gather leaves unseen is its own,
//! when it is never awaited (reported as the gathering future's). Here the
//! engine marks every child's panic as seen when it ends early or is dropped
//! after a poll (the children it holds may end later: the mark is in place
//! before their last handle goes); resolved `Ok`, it took every child's
//! output, which marks it; a gather dropped without ever being polled
//! leaves the first child found panicked unseen, as the report asyncio makes
//! for its gathering future. `return_exceptions()` has no exception of its
//! own: it marks everything.

use std::convert::Infallible;
use std::task::{Context, Poll};

use crate::combinators::children::{
    ChildWatch, Failed, WakeOn, cancel_pending, mark_retrieved, panicked_or_cancelled,
};
use crate::{Task, TaskRef};

/// The children of one gather, as tasks: all the engine needs to cancel the
/// unfinished ones on drop. Implemented without bounds, so that the futures
/// holding an engine need none on their definitions.
pub(crate) trait ChildTasks {
    fn len(&self) -> usize;
    fn task(&self, i: usize) -> &TaskRef;
}

/// The children of one gather and where their results go.
pub(crate) trait Children: ChildTasks {
    /// What the gather resolves to on success.
    type Output;
    /// What ends it early.
    type Error;
    /// Which finished children end the gather early (`None`: nothing does,
    /// and no callbacks are needed).
    const FAILED: Option<Failed>;

    /// Collects child `i` if it is done; with `cx`, waits for it through its
    /// handle. `Ready(Err)` ends the gather.
    fn poll_child(
        &mut self,
        i: usize,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<(), Self::Error>>;
    /// Everything collected, once every child was.
    fn finish(&mut self) -> Self::Output;
}

/// Where a gather handed over to its `return_exceptions()` form stood.
pub(crate) struct HandOver {
    cursor: usize,
}

impl HandOver {
    pub(crate) fn with_children<C: Children>(self, children: C) -> Engine<C> {
        let mut engine = Engine::new(children);
        engine.cursor = self.cursor;
        engine
    }
}

/// The state machine shared by every gather future.
pub(crate) struct Engine<C: ChildTasks> {
    pub(crate) children: C,
    /// Children before `cursor` are collected.
    pub(crate) cursor: usize,
    /// Created at the first poll that finds an unfinished child.
    watch: Option<ChildWatch>,
    /// The gather has resolved: dropping it cancels nothing.
    finished: bool,
    /// It was polled: dropped unfinished, it leaves no panic unseen.
    polled: bool,
    /// A failure can end it (not `return_exceptions()`): one panic is left
    /// unseen if it is dropped without ever being polled.
    can_fail: bool,
}

impl<C: Children> Engine<C> {
    pub(crate) fn new(children: C) -> Self {
        Engine {
            children,
            cursor: 0,
            watch: None,
            finished: false,
            polled: false,
            can_fail: C::FAILED.is_some(),
        }
    }

    /// For `return_exceptions()`: this engine gives up its children (and
    /// will cancel nothing when dropped); the returned cursor tells the new
    /// engine how far collection got.
    pub(crate) fn hand_over(&mut self) -> (HandOver, &mut C) {
        assert!(
            !self.finished,
            "asyncio: return_exceptions() on a gather that already completed"
        );
        self.finished = true;
        (
            HandOver {
                cursor: self.cursor,
            },
            &mut self.children,
        )
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<C::Output, C::Error>> {
        assert!(
            !self.finished,
            "asyncio: a gather was polled after it completed"
        );
        self.polled = true;
        let out = self.poll_inner(cx);
        if out.is_ready() {
            self.finished = true;
            self.watch = None; // closes it: late callbacks wake no one
            // Resolved `Ok`, every child was collected (taking an output
            // marks it): only an early end leaves children to mark.
            if let Poll::Ready(Err(_)) = &out {
                self.mark_seen(None);
            }
        }
        out
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<C::Output, C::Error>> {
        if let Some(watch) = &self.watch {
            watch.register(cx.waker());
            if let Some(i) = watch.first_failure() {
                return self.fail(i);
            }
        }
        let n = self.children.len();
        while self.cursor < n {
            // Cheap path first: a finished child is read from its core
            // without touching its `JoinHandle` (no coop budget spent).
            let collected = match self.children.poll_child(self.cursor, None) {
                Poll::Ready(r) => r,
                Poll::Pending => match self.children.poll_child(self.cursor, Some(cx)) {
                    Poll::Ready(r) => r,
                    Poll::Pending => break,
                },
            };
            if let Err(e) = collected {
                return Poll::Ready(Err(e));
            }
            self.cursor += 1;
        }
        if self.cursor == n {
            return Poll::Ready(Ok(self.children.finish()));
        }
        if C::FAILED.is_some() && self.watch.is_none() {
            let cursor = self.cursor;
            let children = &self.children;
            let watch = ChildWatch::new(
                (cursor..n).map(|i| (i, children.task(i))),
                C::FAILED.unwrap_or(panicked_or_cancelled),
                WakeOn::OnFailure,
                None, // the engine marks every child itself
                cx.waker(),
            );
            let failed = watch.first_failure();
            self.watch = Some(watch);
            if let Some(i) = failed {
                return self.fail(i);
            }
        }
        Poll::Pending
    }

    /// Ends the gather with the error of child `i`, which failed.
    fn fail(&mut self, i: usize) -> Poll<Result<C::Output, C::Error>> {
        match self.children.poll_child(i, None) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            other => unreachable!(
                "asyncio: gather child {i} was reported failed but is {}",
                if other.is_ready() {
                    "a success"
                } else {
                    "pending"
                }
            ),
        }
    }
}

impl<C: ChildTasks> Engine<C> {
    /// Marks every child's panic (present or to come) as seen, but the one
    /// of child `unseen`.
    fn mark_seen(&self, unseen: Option<usize>) {
        let children = &self.children;
        (0..children.len())
            .filter(|&i| Some(i) != unseen)
            .for_each(|i| mark_retrieved(children.task(i)));
    }
}

impl<C: Children<Error = Infallible>> Engine<C> {
    /// [`poll`](Self::poll) for the engines nothing ends early
    /// (`return_exceptions()`).
    pub(crate) fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<C::Output> {
        self.poll(cx).map(|r| match r {
            Ok(v) => v,
            Err(never) => match never {},
        })
    }
}

impl<C: ChildTasks> Drop for Engine<C> {
    fn drop(&mut self) {
        if self.finished {
            return; // resolved: siblings of a failure keep running
        }
        let children = &self.children;
        let n = children.len();
        // Never polled, it ends with the first panic found (asyncio: the
        // gathering future's exception, reported when never retrieved).
        let unseen = match self.can_fail && !self.polled {
            true => (0..n).find(|&i| children.task(i).panicked()),
            false => None,
        };
        cancel_pending((self.cursor..n).map(|i| children.task(i)));
        self.mark_seen(unseen);
    }
}

/// Appends a collected result, making room for all `len` at the first one
/// (a gather that fails early never allocates for the rest).
pub(crate) fn collect<R>(results: &mut Vec<R>, len: usize, r: R) {
    if results.capacity() == 0 {
        results.reserve_exact(len);
    }
    results.push(r);
}

/// Reads a task's outcome if it is done; with `cx`, waits on its handle.
pub(crate) fn poll_task<T: Send + 'static>(
    task: &mut Task<T>,
    cx: Option<&mut Context<'_>>,
) -> Poll<crate::Result<T>> {
    match task.take_if_done() {
        Some(r) => Poll::Ready(r),
        None => match cx {
            Some(cx) => task.poll_result(cx),
            None => Poll::Pending,
        },
    }
}

/// The `# Cancel safety` and `# Panics` sections of every gather future's
/// rustdoc (`#[doc = gather_future_doc!()]`).
macro_rules! gather_future_doc {
    () => {
        "# Cancel safety
Not cancel safe: dropping it before it resolved (the awaiting task was
cancelled, a `select!` took another branch) cancels the children still
pending, as cancelling asyncio's gather does; dropping it after it resolved
cancels nothing. In a `select!` loop, poll it through `&mut` (it is
`Unpin`) so that one lost race does not cancel the children.

# Panics
If polled again after it resolved."
    };
}
pub(crate) use gather_future_doc;

/// The `Unpin`, `Future` and `Debug` impls of a future that is one
/// [`Engine`], written once. Outputs are moved, never pinned: no structural
/// pinning, so the futures are `Unpin`.
macro_rules! engine_future {
    ($name:ident<$($p:ident),*> where [$($bounds:tt)*] => $out:ty, $poll:ident) => {
        impl<$($p),*> Unpin for $name<$($p),*> where $($bounds)* {}

        impl<$($p),*> Future for $name<$($p),*> where $($bounds)* {
            type Output = $out;

            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<$out> {
                self.engine.$poll(cx)
            }
        }

        impl<$($p),*> fmt::Debug for $name<$($p),*> where $($bounds)* {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("children", &self.engine.children.len())
                    .field("collected", &self.engine.cursor)
                    .finish()
            }
        }
    };
}
pub(crate) use engine_future;
