//! `on_cancel` and `finally`: cleanup that may await, run when a
//! cancellation reaches a future (asyncio's `except CancelledError:` and
//! `finally:` blocks).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::pin_project;

use super::node::{self, Node, Registration};

/// Runs `fut`; if a cancellation reaches it while `fut` is pending, drops
/// `fut`, runs `cleanup()` to its end, and only then lets the cancellation go
/// on (asyncio's `except CancelledError: await cleanup(); raise`).
///
/// The cancellation is any of: the task running this future is cancelled
/// ([`TaskRef::cancel`](crate::TaskRef::cancel)); an enclosing
/// [`timeout`](crate::timeout) scope's deadline fires; an enclosing
/// [`task_group`](crate::task_group) shuts down after a failure. The task
/// then ends cancelled, the timeout scope returns `Err(Timeout)`, the group
/// goes on shutting down, each only after the cleanup finished. Several
/// `on_cancel`s nest: the innermost cleanup runs first. A cleanup runs
/// shielded: a further cancellation does not interrupt it (a timeout scope
/// *inside* the cleanup still works, for a cleanup that must not take too
/// long). `fut` and `cleanup` may borrow: the wrapper is not `'static`.
///
/// Resolves to `fut`'s output when `fut` completes. A value `fut` returned
/// is never thrown away, even if a cancellation arrived during that last
/// poll: the cancellation then goes on at the next suspension point.
///
/// The cleanup does not run when `fut` completed, when `fut` was never
/// polled, or when this future is dropped from outside (by a `select!`, by
/// dropping it, by the runtime shutting down): like any Rust future, it
/// cannot await in its destructor. See also [`finally`], which also cleans
/// up after a normal completion.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// asyncio::run(async {
///     let log = Arc::new(Mutex::new(Vec::new()));
///     let l = log.clone();
///     let r = asyncio::timeout(0.1)
///         .run(asyncio::on_cancel(asyncio::sleep(10), || async move {
///             asyncio::sleep(0.01).await; // a goodbye that awaits
///             l.lock().unwrap().push("closed");
///         }))
///         .await;
///     assert!(r.unwrap_err().is_timeout());
///     assert_eq!(*log.lock().unwrap(), ["closed"]);
/// });
/// ```
///
/// # Cancel safety
/// Dropping the `OnCancel` itself (rather than cancelling a scope around it)
/// drops `fut` or the running cleanup without running the rest of the
/// cleanup.
///
/// # Panics
/// A panic of `fut` or of the cleanup goes on to the caller (a task ends
/// panicked); polling again after it resolved panics.
pub fn on_cancel<F, C, CF>(fut: F, cleanup: C) -> OnCancel<F::IntoFuture, C, CF>
where
    F: IntoFuture,
    C: FnOnce() -> CF,
    CF: Future<Output = ()>,
{
    OnCancel::new(fut.into_future(), cleanup, false)
}

/// Runs `fut`, then `cleanup()` to its end, and resolves to `fut`'s output
/// (asyncio's `try: … finally: await cleanup()`). A cancellation that reaches
/// it while `fut` is pending drops `fut` and runs the cleanup as
/// [`on_cancel`] does; one that arrives while the cleanup runs does not
/// interrupt it.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// asyncio::run(async {
///     let log = Arc::new(Mutex::new(Vec::new()));
///     let l = log.clone();
///     let v = asyncio::finally(async { 7 }, || async move {
///         l.lock().unwrap().push("released");
///     })
///     .await;
///     assert_eq!(v, 7);
///     assert_eq!(*log.lock().unwrap(), ["released"]);
/// });
/// ```
///
/// # Cancel safety
/// As [`on_cancel`]: dropping the future itself runs no further cleanup.
///
/// # Panics
/// A panic of `fut` or of the cleanup goes on to the caller; polling again
/// after it resolved panics.
pub fn finally<F, C, CF>(fut: F, cleanup: C) -> Finally<F::IntoFuture, C, CF>
where
    F: IntoFuture,
    C: FnOnce() -> CF,
    CF: Future<Output = ()>,
{
    Finally {
        inner: OnCancel::new(fut.into_future(), cleanup, true),
    }
}

/// [`on_cancel`] and [`finally`] as methods of any future.
///
/// ```
/// use asyncio::CancelExt;
///
/// asyncio::run(async {
///     let v = async { 1 }.on_cancel(|| async {}).await;
///     let w = async { 2 }.finally(|| async {}).await;
///     assert_eq!(v + w, 3);
/// });
/// ```
pub trait CancelExt: IntoFuture + Sized {
    /// See [`on_cancel`].
    ///
    /// ```
    /// use asyncio::CancelExt;
    /// asyncio::run(async {
    ///     assert_eq!(async { 5 }.on_cancel(|| async {}).await, 5);
    /// });
    /// ```
    ///
    /// # Cancel safety
    /// As [`on_cancel`]: dropping the returned future drops `self` (or the
    /// running cleanup) without running the rest of the cleanup.
    ///
    /// # Panics
    /// As [`on_cancel`].
    fn on_cancel<C, CF>(self, cleanup: C) -> OnCancel<Self::IntoFuture, C, CF>
    where
        C: FnOnce() -> CF,
        CF: Future<Output = ()>,
    {
        on_cancel(self, cleanup)
    }

    /// See [`finally`].
    ///
    /// ```
    /// use asyncio::CancelExt;
    /// asyncio::run(async {
    ///     assert_eq!(async { 5 }.finally(|| async {}).await, 5);
    /// });
    /// ```
    ///
    /// # Cancel safety
    /// As [`finally`]: dropping the returned future drops `self` (or the
    /// running cleanup) without running the rest of the cleanup.
    ///
    /// # Panics
    /// As [`finally`].
    fn finally<C, CF>(self, cleanup: C) -> Finally<Self::IntoFuture, C, CF>
    where
        C: FnOnce() -> CF,
        CF: Future<Output = ()>,
    {
        finally(self, cleanup)
    }
}

impl<F: IntoFuture> CancelExt for F {}

/// The future [`on_cancel`] returns.
///
/// ```
/// asyncio::run(async {
///     let guarded: asyncio::futures::OnCancel<_, _, _> = asyncio::on_cancel(async { 1 }, || async {});
///     assert_eq!(guarded.await, 1);
/// });
/// ```
#[pin_project]
#[must_use = "futures do nothing unless awaited"]
pub struct OnCancel<F: Future, C, CF> {
    #[pin]
    stage: Stage<F, CF>,
    cleanup: Option<C>,
    /// This scope, once first polled inside a scope that can cancel it;
    /// `None` before, and for good when nothing can cancel it.
    node: Option<Arc<Node>>,
    /// Its place in the enclosing scope (dropping it leaves).
    reg: Option<Registration>,
    /// Polled once: `node` is settled.
    started: bool,
    /// `finally`: clean up after a normal completion too.
    always: bool,
    /// `finally`: the output, held while the cleanup runs.
    output: Option<F::Output>,
}

#[pin_project(project = StageProj)]
enum Stage<F, CF> {
    Running(#[pin] F),
    Cleaning(#[pin] CF),
    /// The cleanup ran after a cancellation: pending for ever, the enclosing
    /// scope drops it (module invariant 3).
    Cancelled,
    /// Resolved.
    Done,
}

impl<F: Future, C, CF> OnCancel<F, C, CF>
where
    C: FnOnce() -> CF,
    CF: Future<Output = ()>,
{
    fn new(fut: F, cleanup: C, always: bool) -> Self {
        OnCancel {
            stage: Stage::Running(fut),
            cleanup: Some(cleanup),
            node: None,
            reg: None,
            started: false,
            always,
            output: None,
        }
    }
}

impl<F: Future, C, CF> Future for OnCancel<F, C, CF>
where
    C: FnOnce() -> CF,
    CF: Future<Output = ()>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if !*this.started {
            *this.started = true;
            if let Some(parent) = node::current_parent() {
                let node = Node::new();
                match parent.register(&node) {
                    Ok(reg) => {
                        *this.reg = Some(reg);
                        *this.node = Some(node);
                    }
                    Err(node::Doomed) => {
                        // Invariant 7: about to be dropped; `fut` never runs.
                        this.stage.set(Stage::Cancelled);
                        return Poll::Pending;
                    }
                }
            }
        }
        loop {
            match this.stage.as_mut().project() {
                StageProj::Running(fut) => {
                    // `Ready(Some(v))`: it returned `v` (invariant 5: the
                    // value wins); `Ready(None)`: cancelled, every scope
                    // inside is done.
                    let polled = match this.node.as_ref() {
                        // Nothing can cancel it: a plain pass-through.
                        None => fut.poll(cx).map(Some),
                        Some(node) => {
                            node.set_waker(cx.waker());
                            let mut polled = Poll::Ready(None);
                            if !node.status().must_drop() {
                                polled = node::enter(node, || fut.poll(cx)).map(Some);
                                if polled.is_pending() && node.status().must_drop() {
                                    polled = Poll::Ready(None);
                                }
                            }
                            polled
                        }
                    };
                    if let Some(v) = std::task::ready!(polled) {
                        let (stage, always) = (this.stage.as_mut(), *this.always);
                        match finish(stage, this.cleanup, this.output, this.reg, always, v) {
                            Some(v) => return Poll::Ready(v),
                            None => continue,
                        }
                    }
                    // Cancelled and every scope inside is done: drop `fut`,
                    // then start the cleanup.
                    this.stage.set(Stage::Done);
                    let cleanup = this.cleanup.take().expect("asyncio: cleanup taken twice");
                    this.stage.set(Stage::Cleaning(cleanup()));
                }
                StageProj::Cleaning(cleanup) => {
                    std::task::ready!(node::enter_shielded(|| cleanup.poll(cx)));
                    match this.output.take() {
                        Some(v) => {
                            this.stage.set(Stage::Done);
                            *this.reg = None;
                            return Poll::Ready(v);
                        }
                        None => {
                            this.stage.set(Stage::Cancelled);
                            // Leaving a cancelled parent: it goes on (invariant 3).
                            *this.reg = None;
                            return Poll::Pending;
                        }
                    }
                }
                StageProj::Cancelled => return Poll::Pending,
                StageProj::Done => panic!("asyncio: OnCancel polled after it resolved"),
            }
        }
    }
}

/// `fut` returned `v`: hands it back to resolve with it (`on_cancel`,
/// leaving the enclosing scope), or starts the cleanup and holds `v`
/// (`finally`: `None`, poll the cleanup next).
fn finish<F, C, CF>(
    mut stage: Pin<&mut Stage<F, CF>>,
    cleanup: &mut Option<C>,
    output: &mut Option<F::Output>,
    reg: &mut Option<Registration>,
    always: bool,
    v: F::Output,
) -> Option<F::Output>
where
    F: Future,
    C: FnOnce() -> CF,
    CF: Future<Output = ()>,
{
    stage.set(Stage::Done);
    if !always {
        *reg = None;
        return Some(v);
    }
    // `finally`: stays registered while the cleanup runs, so that a cancel
    // of the task waits for it.
    *output = Some(v);
    let cleanup = cleanup.take().expect("asyncio: cleanup taken twice");
    stage.set(Stage::Cleaning(cleanup()));
    None
}

impl<F: Future, C, CF> fmt::Debug for OnCancel<F, C, CF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Running(_) => "running",
            Stage::Cleaning(_) => "cleaning up",
            Stage::Cancelled => "cancelled",
            Stage::Done => "done",
        };
        f.debug_struct("OnCancel")
            .field("stage", &stage)
            .field("finally", &self.always)
            .finish()
    }
}

/// The future [`finally`] returns.
///
/// ```
/// asyncio::run(async {
///     let f: asyncio::futures::Finally<_, _, _> = asyncio::finally(async { 1 }, || async {});
///     assert_eq!(f.await, 1);
/// });
/// ```
#[pin_project]
#[must_use = "futures do nothing unless awaited"]
pub struct Finally<F: Future, C, CF> {
    #[pin]
    inner: OnCancel<F, C, CF>,
}

impl<F: Future, C, CF> Future for Finally<F, C, CF>
where
    C: FnOnce() -> CF,
    CF: Future<Output = ()>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F: Future, C, CF> fmt::Debug for Finally<F, C, CF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
