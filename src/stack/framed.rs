//! Marked await points: [`Framed`] records, while a task is suspended in
//! it, where it is awaited, in the task's diagnostic records.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project::{pin_project, pinned_drop};

use super::frame::await_name;
use crate::TaskId;
use crate::task::diag::{AwaitName as FrameName, AwaitSlot, DiagEntry};
use crate::task::with_current;

thread_local! {
    /// While a `Framed` is polled: (its depth + 1, its address), i.e. where
    /// the next marked future down goes and who its parent is.
    static LEVEL: Cell<(u32, usize)> = const { Cell::new((0, 0)) };
}

/// Marks an await point: while the current task is suspended inside `fut`,
/// its stack ([`TaskRef::get_stack`](crate::TaskRef::get_stack)) shows a frame with this call's location,
/// named after `fut`'s type. Takes anything awaitable, tasks included.
///
/// No allocation per poll; outside a task of ours it simply polls `fut`.
///
/// ```
/// asyncio::Runner::new().current_thread().run(async {
///     let task = asyncio::create_task(async {
///         asyncio::framed(asyncio::sleep(10)).await; let line = line!();
///         line
///     });
///     asyncio::sleep(0.01).await;
///     let stack = task.get_stack(None);
///     assert_eq!(stack.last().unwrap().name(), "Sleep");
///     task.cancel();
/// });
/// ```
///
/// # Cancel safety
/// As cancel safe as `fut`: dropping the [`Framed`] drops `fut` and removes
/// its frame from the task's stack, nothing more.
///
/// # Panics
/// Not by itself: a panic of `fut` goes through unchanged.
#[track_caller]
pub fn framed<F: IntoFuture>(fut: F) -> Framed<F::IntoFuture> {
    Framed::new(
        fut.into_future(),
        FrameName::Type(std::any::type_name::<F::IntoFuture>),
    )
}

/// [`framed`] with an explicit frame name.
///
/// ```
/// asyncio::Runner::new().current_thread().run(async {
///     let task = asyncio::create_task(asyncio::framed_as("waiting for the lock", asyncio::sleep(10)));
///     asyncio::sleep(0.01).await;
///     assert_eq!(task.get_stack(None)[1].name(), "waiting for the lock");
///     task.cancel();
/// });
/// ```
///
/// # Cancel safety
/// As cancel safe as `fut`: dropping the [`Framed`] drops `fut` and removes
/// its frame from the task's stack, nothing more.
///
/// # Panics
/// Not by itself: a panic of `fut` goes through unchanged.
#[track_caller]
pub fn framed_as<F: IntoFuture>(label: &'static str, fut: F) -> Framed<F::IntoFuture> {
    Framed::new(fut.into_future(), FrameName::Label(label))
}

/// `fut.framed()` and `fut.framed_as(label)`: [`framed`] and [`framed_as`]
/// as methods, on anything awaitable.
///
/// ```
/// use asyncio::FramedExt;
///
/// async fn fetch() -> u32 {
///     asyncio::sleep(0.01).framed_as("network").await;
///     7
/// }
///
/// asyncio::run(async {
///     assert_eq!(fetch().framed().await, 7);
/// });
/// ```
pub trait FramedExt: IntoFuture + Sized {
    /// See [`framed`].
    ///
    /// ```
    /// use asyncio::FramedExt;
    /// asyncio::run(async { asyncio::sleep(0).framed().await });
    /// ```
    ///
    /// # Cancel safety
    /// As cancel safe as `self`: dropping the [`Framed`] drops it and
    /// removes its frame from the task's stack, nothing more.
    #[track_caller]
    fn framed(self) -> Framed<Self::IntoFuture> {
        Framed::new(
            self.into_future(),
            FrameName::Type(std::any::type_name::<Self::IntoFuture>),
        )
    }

    /// See [`framed_as`].
    ///
    /// ```
    /// use asyncio::FramedExt;
    /// asyncio::run(async { asyncio::sleep(0).framed_as("nap").await });
    /// ```
    ///
    /// # Cancel safety
    /// As cancel safe as `self`: dropping the [`Framed`] drops it and
    /// removes its frame from the task's stack, nothing more.
    #[track_caller]
    fn framed_as(self, label: &'static str) -> Framed<Self::IntoFuture> {
        Framed::new(self.into_future(), FrameName::Label(label))
    }
}

impl<F: IntoFuture> FramedExt for F {}

const UNSET: u32 = u32::MAX;

/// A future marked as an await point: see [`framed`].
///
/// # Cancel safety
/// As cancel safe as the future it wraps: dropping a `Framed` drops that
/// future and removes its frame from the task's stack, nothing more.
///
/// # Panics
/// Not by itself; a panic of the wrapped future goes through unchanged (its
/// frame stays in the panicked task's traceback).
///
/// ```
/// let fut: asyncio::futures::Framed<_> = asyncio::framed(async { 1 });
/// assert_eq!(asyncio::run(fut), 1);
/// ```
#[pin_project(PinnedDrop)]
#[must_use = "futures do nothing unless awaited"]
pub struct Framed<F> {
    #[pin]
    inner: F,
    at: &'static Location<'static>,
    name: FrameName,
    /// The depth of its slot, while it has one.
    depth: u32,
    /// The side-table entry of the task it was last polled in: looked up
    /// once, not at every poll.
    entry: Option<(TaskId, Arc<DiagEntry>)>,
}

impl<F> Framed<F> {
    #[track_caller]
    fn new(inner: F, name: FrameName) -> Self {
        Framed {
            inner,
            at: Location::caller(),
            name,
            depth: UNSET,
            entry: None,
        }
    }
}

impl<F> fmt::Debug for Framed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("name", &await_name(self.name))
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Puts the thread's level back when the inner poll returns or unwinds.
struct LevelGuard((u32, usize));

impl Drop for LevelGuard {
    fn drop(&mut self) {
        LEVEL.with(|l| l.set(self.0));
    }
}

impl<F: Future> Future for Framed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let owner = std::ptr::from_ref::<Self>(&self) as usize;
        let this = self.project();
        let entry = this.entry;
        let entered = with_current(|cur| {
            let task = cur?;
            let id = task.id();
            if entry.as_ref().is_none_or(|(tid, _)| *tid != id) {
                let extra = task.core().header().diag.entry_or_insert(id, true)?;
                *entry = Some((id, extra));
            }
            let (_, extra) = entry.as_ref()?;
            let (depth, parent) = LEVEL.with(Cell::get);
            let slot = AwaitSlot {
                owner,
                parent,
                at: this.at,
                name: *this.name,
            };
            extra.write(depth, slot);
            LEVEL.with(|l| l.set((depth + 1, owner)));
            Some((depth, parent))
        });
        let Some((depth, parent)) = entered else {
            return this.inner.poll(cx);
        };
        *this.depth = depth;
        let guard = LevelGuard((depth, parent));
        let out = this.inner.poll(cx);
        drop(guard);
        if out.is_ready() {
            leave(depth, owner, entry.as_ref());
            *this.depth = UNSET;
        }
        out
    }
}

#[pinned_drop]
impl<F> PinnedDrop for Framed<F> {
    fn drop(self: Pin<&mut Self>) {
        // While a panic unwinds out of the task the frame stays: it is part
        // of the panicked task's traceback.
        if self.depth != UNSET && !std::thread::panicking() {
            let owner = std::ptr::from_ref::<Self>(&self) as usize;
            leave(self.depth, owner, self.entry.as_ref());
        }
    }
}

/// Clears the slot `owner` wrote, if the task it wrote it in is being
/// polled here (a future dropped with its finished task needs no clearing:
/// a done task shows no await frames).
fn leave(depth: u32, owner: usize, entry: Option<&(TaskId, Arc<DiagEntry>)>) {
    let Some((id, extra)) = entry else { return };
    if with_current(|cur| cur.is_some_and(|t| t.id() == *id)) {
        extra.clear(depth, owner);
    }
}
