//! The crate's one error type, [`Error`], and its parts.
//!
//! asyncio raises four kinds of exception out of its task API:
//! `CancelledError`, `TimeoutError`, `InvalidStateError`, and whatever the
//! coroutine itself raised. Rust futures return values instead of raising, so
//! the first three are variants of [`Error`], and the fourth, a panic inside a
//! task, is [`Error::Panicked`]. A task that wants to fail *normally* returns a
//! `Result` of its own: that is its output, not an [`Error`].
//!
//! ```
//! use asyncio::Error;
//!
//! asyncio::run(async {
//!     let task = asyncio::create_task(async { panic!("boom") });
//!     let err: Error = task.await.unwrap_err();
//!     assert!(err.is_panic());
//!     assert_eq!(err.to_string(), "task panicked: boom");
//! });
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// `Result<T, asyncio::Error>`.
///
/// ```
/// fn half(x: u32) -> asyncio::Result<u32> {
///     Ok(x / 2)
/// }
/// assert_eq!(half(4).unwrap(), 2);
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the task API can fail with.
///
/// `Clone + Send + Sync + 'static`: the same error can be handed to every
/// awaiter of a task (asyncio hands out the same exception object).
///
/// `Error` is a transparent wrapper: its `Display` is the part's (say
/// `cancelled: shutting down`), and its [`source`](std::error::Error::source)
/// is the part's source (none), so that an error report walking the source
/// chain prints the message once.
///
/// ```
/// use asyncio::Error;
///
/// asyncio::run(async {
///     let task = asyncio::create_task(asyncio::sleep(10));
///     task.cancel_with("shutting down");
///     match task.await {
///         Err(Error::Cancelled(e)) => assert_eq!(e.message(), Some("shutting down")),
///         other => panic!("unexpected {other:?}"),
///     }
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The task was cancelled (asyncio's `CancelledError`).
    Cancelled(CancelledError),
    /// A timeout ran out (asyncio's `TimeoutError`).
    Timeout(TimeoutError),
    /// The operation is not valid in the task's current state (asyncio's
    /// `InvalidStateError`), e.g. `result()` on a pending task.
    InvalidState(InvalidStateError),
    /// The task panicked; the panic was caught and its message kept.
    Panicked(PanicError),
    /// A task group's child failed with an `Err` of its own (see
    /// [`TaskGroup::try_create_task`](crate::TaskGroup::try_create_task)), as
    /// a raised exception fails an asyncio task.
    Failed(FailedError),
    /// A task group failed: every failure of its children and body (asyncio's
    /// `ExceptionGroup`).
    Group(ExceptionGroup),
    /// A [`Barrier`](crate::Barrier) wait failed because the barrier was
    /// aborted, or reset while the task waited (asyncio's
    /// `BrokenBarrierError`).
    BrokenBarrier,
}

impl Error {
    /// `true` for [`Error::Cancelled`].
    ///
    /// ```
    /// assert!(asyncio::Error::from(asyncio::CancelledError::new()).is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled(_))
    }

    /// `true` for [`Error::Timeout`].
    ///
    /// ```
    /// assert!(asyncio::Error::from(asyncio::TimeoutError::new()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// `true` for [`Error::InvalidState`].
    ///
    /// ```
    /// asyncio::run(async {
    ///     let task = asyncio::create_task(asyncio::sleep(1));
    ///     assert!(task.exception().unwrap_err().is_invalid_state());
    /// });
    /// ```
    pub fn is_invalid_state(&self) -> bool {
        matches!(self, Error::InvalidState(_))
    }

    /// `true` for [`Error::Panicked`].
    ///
    /// ```
    /// assert!(asyncio::Error::from(asyncio::PanicError::new("boom")).is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked(_))
    }

    /// `true` for [`Error::Failed`].
    ///
    /// ```
    /// let io = std::io::Error::other("disk full");
    /// assert!(asyncio::Error::from(asyncio::FailedError::new(io)).is_failed());
    /// ```
    pub fn is_failed(&self) -> bool {
        matches!(self, Error::Failed(_))
    }

    /// `true` for [`Error::Group`].
    ///
    /// ```
    /// let group = asyncio::ExceptionGroup::new(vec![asyncio::PanicError::new("boom").into()]);
    /// assert!(asyncio::Error::from(group).is_group());
    /// ```
    pub fn is_group(&self) -> bool {
        matches!(self, Error::Group(_))
    }

    /// `true` for [`Error::BrokenBarrier`].
    ///
    /// ```
    /// assert!(asyncio::Error::BrokenBarrier.is_broken_barrier());
    /// assert_eq!(asyncio::Error::BrokenBarrier.to_string(), "Abort or reset of barrier");
    /// ```
    pub fn is_broken_barrier(&self) -> bool {
        matches!(self, Error::BrokenBarrier)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled(e) => e.fmt(f),
            Error::Timeout(e) => e.fmt(f),
            Error::InvalidState(e) => e.fmt(f),
            Error::Panicked(e) => e.fmt(f),
            Error::Failed(e) => e.fmt(f),
            Error::Group(e) => e.fmt(f),
            Error::BrokenBarrier => f.write_str("Abort or reset of barrier"),
        }
    }
}

/// Transparent: `Display` already is the part's message, so `source()` is
/// the part's own source rather than the part (which would print the same
/// message twice in a chain).
///
/// ```
/// use std::error::Error as _;
///
/// let e = asyncio::Error::from(asyncio::PanicError::new("boom"));
/// assert_eq!(e.to_string(), "task panicked: boom");
/// assert!(e.source().is_none());
/// ```
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Cancelled(e) => e.source(),
            Error::Timeout(e) => e.source(),
            Error::InvalidState(e) => e.source(),
            Error::Panicked(e) => e.source(),
            Error::Failed(e) => e.source(),
            Error::Group(e) => e.source(),
            Error::BrokenBarrier => None,
        }
    }
}

macro_rules! from_part {
    ($($part:ident => $variant:ident),*) => {$(
        impl From<$part> for Error {
            fn from(e: $part) -> Self {
                Error::$variant(e)
            }
        }
    )*};
}
from_part!(CancelledError => Cancelled, TimeoutError => Timeout,
           InvalidStateError => InvalidState, PanicError => Panicked,
           FailedError => Failed, ExceptionGroup => Group);

/// The task was cancelled; carries the message given to
/// [`cancel_with`](crate::TaskRef::cancel_with), if any.
///
/// ```
/// let e = asyncio::CancelledError::with_message("bye");
/// assert_eq!(e.message(), Some("bye"));
/// assert_eq!(e.to_string(), "cancelled: bye");
/// assert_eq!(asyncio::CancelledError::new().to_string(), "cancelled");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CancelledError {
    message: Option<Arc<str>>,
}

impl CancelledError {
    /// A cancellation without a message (`task.cancel()`).
    ///
    /// ```
    /// let e = asyncio::CancelledError::new();
    /// assert_eq!(e.message(), None);
    /// assert_eq!(e.to_string(), "cancelled");
    /// ```
    pub fn new() -> Self {
        Self { message: None }
    }

    /// A cancellation with a message (`task.cancel_with(msg)`).
    ///
    /// ```
    /// let e = asyncio::CancelledError::with_message("maintenance");
    /// assert_eq!(e.to_string(), "cancelled: maintenance");
    /// ```
    pub fn with_message(message: impl Into<Arc<str>>) -> Self {
        Self {
            message: Some(message.into()),
        }
    }

    pub(crate) fn from_message(message: Option<Arc<str>>) -> Self {
        Self { message }
    }

    /// The message passed to `cancel_with`, or `None` for a plain `cancel()`.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(asyncio::sleep(10));
    ///     t.cancel_with("bye");
    ///     let Err(asyncio::Error::Cancelled(e)) = t.await else { panic!("not cancelled") };
    ///     assert_eq!(e.message(), Some("bye"));
    /// });
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl fmt::Display for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "cancelled: {m}"),
            None => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for CancelledError {}

/// A timeout ran out.
///
/// ```
/// assert_eq!(asyncio::TimeoutError::new().to_string(), "timed out");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeoutError {
    _private: (),
}

impl TimeoutError {
    /// A new timeout error.
    ///
    /// ```
    /// let e = asyncio::Error::from(asyncio::TimeoutError::new());
    /// assert!(e.is_timeout());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for TimeoutError {}

/// The operation is not valid in the current state, with asyncio's wording
/// (`"Result is not set."`, `"Exception is not set."`).
///
/// ```
/// let e = asyncio::InvalidStateError::new("Result is not set.");
/// assert_eq!(e.message(), "Result is not set.");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidStateError {
    message: &'static str,
}

impl InvalidStateError {
    /// An invalid-state error with a fixed message.
    ///
    /// ```
    /// let e = asyncio::InvalidStateError::new("Result is not set.");
    /// assert_eq!(e.to_string(), "Result is not set.");
    /// ```
    pub fn new(message: &'static str) -> Self {
        Self { message }
    }

    /// What was invalid.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(asyncio::sleep(10));
    ///     let Err(asyncio::Error::InvalidState(e)) = t.result() else { panic!("not pending") };
    ///     assert_eq!(e.message(), "Result is not set.");
    ///     t.cancel();
    /// });
    /// ```
    pub fn message(&self) -> &str {
        self.message
    }

    pub(crate) fn result_not_set() -> Error {
        Error::InvalidState(Self::new("Result is not set."))
    }

    pub(crate) fn exception_not_set() -> Error {
        Error::InvalidState(Self::new("Exception is not set."))
    }

    pub(crate) fn result_taken() -> Error {
        Error::InvalidState(Self::new(
            "Result was already taken by an await of this task.",
        ))
    }
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for InvalidStateError {}

/// A task panicked. The panic was caught (the runtime keeps running) and its
/// message kept: the payload as `&str` or `String`, else a placeholder.
///
/// ```
/// let e = asyncio::PanicError::new("index out of bounds");
/// assert_eq!(e.message(), "index out of bounds");
/// assert_eq!(e.to_string(), "task panicked: index out of bounds");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicError {
    message: Arc<str>,
}

impl PanicError {
    /// A panic error with the given message.
    ///
    /// ```
    /// let e = asyncio::PanicError::new("boom");
    /// assert_eq!(e.to_string(), "task panicked: boom");
    /// ```
    pub fn new(message: impl Into<Arc<str>>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Builds the error from a caught panic payload.
    pub(crate) fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message: Arc<str> = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Arc::from(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            Arc::from(s.as_str())
        } else {
            Arc::from("Box<dyn Any>")
        };
        Self { message }
    }

    /// The panic message: the payload if it is a `&str` or a `String`, else
    /// `Box<dyn Any>`.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::create_task(async { panic!("bad {}", 42) });
    ///     let Err(asyncio::Error::Panicked(e)) = t.await else { panic!("no panic") };
    ///     assert_eq!(e.message(), "bad 42");
    ///     let t = asyncio::create_task(async { std::panic::panic_any(7u8) });
    ///     let Err(asyncio::Error::Panicked(e)) = t.await else { panic!("no panic") };
    ///     assert_eq!(e.message(), "Box<dyn Any>");
    /// });
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task panicked: {}", self.message)
    }
}

impl std::error::Error for PanicError {}

/// A task failed with an error of its own: the `Err(e)` a
/// [`TaskGroup::try_create_task`](crate::TaskGroup::try_create_task) child
/// returned, kept type-erased (`Display` is `e`'s, `source()` is `e`'s
/// source, [`downcast_ref`](Self::downcast_ref) gives `e` back).
///
/// Two `FailedError`s are equal when they carry the same error (one `Err`
/// handed to several readers), not when their texts match.
///
/// ```
/// let e = asyncio::FailedError::new(std::io::Error::other("disk full"));
/// assert_eq!(e.to_string(), "disk full");
/// assert_eq!(e.downcast_ref::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::Other);
/// assert!(e.downcast_ref::<std::fmt::Error>().is_none());
/// assert_eq!(e.clone(), e);
/// ```
#[derive(Clone)]
pub struct FailedError {
    error: Arc<dyn std::error::Error + Send + Sync + 'static>,
}

impl FailedError {
    /// Wraps the error a task failed with.
    ///
    /// ```
    /// let e = asyncio::FailedError::new(std::fmt::Error);
    /// assert_eq!(e.to_string(), std::fmt::Error.to_string());
    /// ```
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self {
            error: Arc::new(error),
        }
    }

    /// The error, if it is an `E`.
    ///
    /// ```
    /// let e = asyncio::FailedError::new(std::io::Error::other("refused"));
    /// assert_eq!(e.downcast_ref::<std::io::Error>().unwrap().to_string(), "refused");
    /// assert!(e.downcast_ref::<std::fmt::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }

    /// The error, type-erased.
    ///
    /// ```
    /// let e = asyncio::FailedError::new(std::io::Error::other("refused"));
    /// assert_eq!(e.get_ref().to_string(), "refused");
    /// ```
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl fmt::Debug for FailedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FailedError").field(&self.error).finish()
    }
}

impl fmt::Display for FailedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl PartialEq for FailedError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.error, &other.error)
    }
}

impl Eq for FailedError {}

impl std::error::Error for FailedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Every failure of a task group (asyncio's `ExceptionGroup`): the
/// children's in the order they happened, then the body's; each
/// [`Error::Panicked`] or [`Error::Failed`] (a nested group's error comes
/// as the [`Error::Failed`] of the child that returned it, see
/// [`errors`](Self::errors)).
///
/// ```
/// use asyncio::{Error, ExceptionGroup, PanicError};
///
/// let g = ExceptionGroup::new(vec![PanicError::new("a").into(), PanicError::new("b").into()]);
/// assert_eq!(g.errors().len(), 2);
/// assert_eq!(g.to_string(), "unhandled errors in a TaskGroup (2 sub-exceptions)");
/// let one = ExceptionGroup::new(vec![Error::from(PanicError::new("a"))]);
/// assert_eq!(one.to_string(), "unhandled errors in a TaskGroup (1 sub-exception)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionGroup {
    errors: Arc<[Error]>,
}

impl ExceptionGroup {
    /// A group of the given failures, in order.
    ///
    /// ```
    /// let g = asyncio::ExceptionGroup::new(vec![asyncio::PanicError::new("a").into()]);
    /// assert_eq!(g.errors().len(), 1);
    /// ```
    pub fn new(errors: Vec<Error>) -> Self {
        Self {
            errors: errors.into(),
        }
    }

    /// The failures, in the order they happened (the body's last).
    ///
    /// A nested group's failure reaches the outer group as its child's
    /// failure: the `Err(Error::Group(..))` of a
    /// [`try_create_task`](crate::TaskGroup::try_create_task) child is an
    /// [`Error::Failed`] whose `downcast_ref::<asyncio::Error>()` gives the
    /// inner group back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use asyncio::Error;
    ///
    /// let r = asyncio::task_group(|tg| async move {
    ///     tg.try_create_task(asyncio::task_group(|inner| async move {
    ///         inner.create_task(async { panic!("deep") });
    ///     }));
    /// })
    /// .await;
    /// let Err(Error::Group(outer)) = r else { panic!("no group") };
    /// let Error::Failed(f) = &outer.errors()[0] else { panic!("not a failure") };
    /// let Some(Error::Group(inner)) = f.downcast_ref::<Error>() else { panic!("not a group") };
    /// assert!(inner.errors()[0].is_panic());
    /// # }
    /// ```
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }
}

impl fmt::Display for ExceptionGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "unhandled errors in a TaskGroup ({n} sub-exception{s})")
    }
}

impl std::error::Error for ExceptionGroup {}
