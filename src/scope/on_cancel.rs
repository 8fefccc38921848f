//! `on_cancel` and `finally`: cleanup that may await, run when a
//! cancellation reaches a future (asyncio's `except CancelledError:` and
//! `finally:` blocks).

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::report::drop_payload;
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
/// polled, when `fut` panicked (also in its destructor while the
/// cancellation drops it: `except CancelledError:` does not run for
/// another exception), or when this future is dropped from outside (by a
/// `select!`, by dropping it, by the runtime shutting down): like any Rust
/// future, it cannot await in its destructor. See also [`finally`], which
/// also cleans up after a normal completion and after a panic.
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
/// A panic of `fut` goes on to the caller at once, with no cleanup (a task
/// ends panicked); so does a panic of the cleanup. Polling again after it
/// resolved panics.
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
/// interrupt it. A panic of `fut` (in a poll, or in its destructor) is
/// held while the cleanup runs to its end, and then goes on, as an
/// exception leaves a `finally:` block after the block ran.
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
/// A panic of `fut` goes on to the caller once the cleanup ended (a value
/// `fut` returned before its destructor panicked is dropped with it). A
/// panic of the cleanup goes on at once; if `fut` had panicked, the
/// cleanup's panic replaces that one (as an exception raised in a
/// `finally:` block replaces the one being handled), whose payload is
/// dropped (a payload whose destructor panics too is reported through the
/// exception handler, not resumed). Polling again after it resolved panics.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// asyncio::run(async {
///     let log = Arc::new(Mutex::new(Vec::new()));
///     let l = log.clone();
///     let task = asyncio::create_task(asyncio::finally(
///         async {
///             asyncio::sleep(0.01).await;
///             panic!("lost the connection");
///         },
///         || async move {
///             asyncio::sleep(0.01).await; // runs to its end first
///             l.lock().unwrap().push("released");
///         },
///     ));
///     assert!(task.await.unwrap_err().is_panic());
///     assert_eq!(*log.lock().unwrap(), ["released"]);
/// });
/// ```
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
    /// `finally`: the panic of `fut` (its poll or its destructor), held
    /// while the cleanup runs and resumed after it. In a `Mutex` only so
    /// that the future stays `Sync` (it is only reached through
    /// `&mut self`, never locked).
    panic: Mutex<Option<Payload>>,
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
            panic: Mutex::new(None),
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
                StageProj::Running(mut fut) => {
                    let always = *this.always;
                    // `finally` polls `fut` under `catch_unwind`: its
                    // cleanup runs after a panic too (`try: … finally:`
                    // runs for any exception); `on_cancel` lets it go
                    // (`except CancelledError:` runs for a cancel only).
                    let mut poll_fut = |cx: &mut Context<'_>| match always {
                        true => catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))),
                        false => Ok(fut.as_mut().poll(cx)),
                    };
                    let step = match this.node.as_ref() {
                        // Nothing can cancel it: a plain pass-through.
                        None => std::task::ready!(Step::from(poll_fut(cx))),
                        Some(node) => {
                            node.set_waker(cx.waker());
                            if node.claim_drop() {
                                Step::Cancelled
                            } else {
                                match Step::from(node::enter(node, || poll_fut(cx))) {
                                    // Cancelled meanwhile, every scope
                                    // inside done: drop `fut` now.
                                    Poll::Pending if node.claim_drop() => Step::Cancelled,
                                    step => std::task::ready!(step),
                                }
                            }
                        }
                    };
                    let v = match step {
                        // Invariant 5: the value wins over a cancel.
                        Step::Value(v) => v,
                        // Cancelled and every scope inside is done: drop
                        // `fut`, then start the cleanup.
                        Step::Cancelled => {
                            drop_running(this.stage.as_mut(), always, this.panic);
                            start_cleanup(this.stage.as_mut(), this.cleanup);
                            continue;
                        }
                        // `finally` only: drop `fut` too, run the cleanup,
                        // then the panic goes on.
                        Step::Panicked(payload) => {
                            set_panic(this.panic, payload);
                            drop_running(this.stage.as_mut(), always, this.panic);
                            start_cleanup(this.stage.as_mut(), this.cleanup);
                            continue;
                        }
                    };
                    if !always {
                        this.stage.set(Stage::Done);
                        *this.reg = None;
                        return Poll::Ready(v);
                    }
                    // `finally`: holds `v` while the cleanup runs, and stays
                    // registered, so that a cancel of the task waits for it.
                    *this.output = Some(v);
                    drop_running(this.stage.as_mut(), always, this.panic);
                    start_cleanup(this.stage.as_mut(), this.cleanup);
                }
                StageProj::Cleaning(cleanup) => {
                    let polled = match this.panic.get_mut() {
                        Ok(None) | Err(_) => node::enter_shielded(|| cleanup.poll(cx)),
                        // A panic of the cleanup replaces the one held
                        // (as an exception raised in `finally:` replaces
                        // the one being handled); the held payload is
                        // dropped, contained.
                        Ok(Some(_)) => match node::enter_shielded(|| {
                            catch_unwind(AssertUnwindSafe(|| cleanup.poll(cx)))
                        }) {
                            Ok(polled) => polled,
                            Err(again) => {
                                let held = take_panic(this.panic);
                                if let Some(held) = held {
                                    drop_payload(held, None);
                                }
                                resume_unwind(again);
                            }
                        },
                    };
                    std::task::ready!(polled);
                    if let Some(payload) = take_panic(this.panic) {
                        // The cleanup ended: now the panic goes on (the
                        // value `fut` returned before its destructor
                        // panicked, if any, is lost with it). A destructor
                        // that panics here replaces it, as above.
                        let (mut stage, output) = (this.stage.as_mut(), this.output);
                        let dropped = catch_unwind(AssertUnwindSafe(move || {
                            stage.set(Stage::Done);
                            drop(output.take());
                        }));
                        *this.reg = None;
                        match dropped {
                            Ok(()) => resume_unwind(payload),
                            Err(again) => {
                                drop_payload(payload, None);
                                resume_unwind(again);
                            }
                        }
                    }
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

/// How one poll of the protected future went.
enum Step<T> {
    /// It returned.
    Value(T),
    /// Cancelled, and every scope inside is done.
    Cancelled,
    /// It panicked (`finally` only: `on_cancel` does not catch).
    Panicked(Payload),
}

impl<T> Step<T> {
    /// `Pending` for a pending poll.
    fn from(polled: Result<Poll<T>, Payload>) -> Poll<Step<T>> {
        match polled {
            Ok(Poll::Ready(v)) => Poll::Ready(Step::Value(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Step::Panicked(payload)),
        }
    }
}

/// A caught panic's payload.
type Payload = Box<dyn Any + Send>;

/// Holds `payload` to be resumed after the cleanup; one held already (the
/// future's poll panicked, then its destructor did) is replaced, as the
/// harness lets a destructor's panic replace the poll's.
fn set_panic(slot: &mut Mutex<Option<Payload>>, payload: Payload) {
    let old = match slot.get_mut() {
        Ok(held) => held.replace(payload),
        Err(poisoned) => poisoned.into_inner().replace(payload),
    };
    if let Some(old) = old {
        drop_payload(old, None);
    }
}

fn take_panic(slot: &mut Mutex<Option<Payload>>) -> Option<Payload> {
    match slot.get_mut() {
        Ok(held) => held.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

/// Drops the protected future. For `finally` a panic of its destructor is
/// caught and held, to go on after the cleanup (the future's own code
/// raised it); for `on_cancel` it goes on at once, and no cleanup runs
/// (`except CancelledError:` does not run for another exception).
fn drop_running<F, CF>(
    mut stage: Pin<&mut Stage<F, CF>>,
    always: bool,
    panic: &mut Mutex<Option<Payload>>,
) {
    if !always {
        stage.set(Stage::Done);
        return;
    }
    // On unwind, `set` still leaves `Done` in place.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done))) {
        set_panic(panic, payload);
    }
}

/// Starts the cleanup (after the protected future was dropped).
fn start_cleanup<F, C, CF>(mut stage: Pin<&mut Stage<F, CF>>, cleanup: &mut Option<C>)
where
    C: FnOnce() -> CF,
{
    let cleanup = cleanup.take().expect("asyncio: cleanup taken twice");
    stage.set(Stage::Cleaning(cleanup()));
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
