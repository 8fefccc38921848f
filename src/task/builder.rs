//! [`Builder`] and [`create_task`]: where a task is born (its core is
//! allocated and registered, then its harness is spawned on Tokio).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::core::Core;
use super::current::with_current;
use super::harness::Harness;
use super::{Task, TaskRef};

/// Options for a new task: [`Task::builder()`].
///
/// ```
/// asyncio::run(async {
///     let t = asyncio::Task::builder().name("tick").spawn(asyncio::sleep(0));
///     assert_eq!(t.to_string().split(' ').nth(2), Some("name='tick'"));
///     let _ = t.await;
/// });
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<Arc<str>>,
}

impl Builder {
    /// The task's name (anything `Display`, as Python's `str(name)`).
    ///
    /// # tokio-console
    /// Built with `RUSTFLAGS="--cfg tokio_unstable"` and this crate's
    /// `tracing` feature, every task is spawned through Tokio's
    /// `task::Builder` with its name (`Task-N` when unnamed), and Tokio
    /// records the line that called `spawn` / `create_task` as its spawn
    /// location, so tokio-console shows both. The name is fixed at spawn: a
    /// later [`set_name`](TaskRef::set_name) is not seen by Tokio. Without
    /// that flag and feature nothing of this is compiled in. A program that
    /// shows its tasks in tokio-console:
    ///
    /// ```text
    /// # Cargo.toml
    /// [dependencies]
    /// asyncio = { version = "0.1", features = ["tracing"] }
    /// console-subscriber = "0.4"
    ///
    /// // src/main.rs
    /// fn main() {
    ///     console_subscriber::init();
    ///     asyncio::run(async {
    ///         let t = asyncio::Task::builder().name("fetch").spawn(asyncio::sleep(60));
    ///         let _ = t.await;
    ///     });
    /// }
    ///
    /// $ RUSTFLAGS="--cfg tokio_unstable" cargo run   # then run `tokio-console`
    /// ```
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::Task::builder().name(42).spawn(async {});
    ///     assert_eq!(t.get_name(), "42");
    /// });
    /// ```
    pub fn name(mut self, name: impl fmt::Display) -> Self {
        self.name = Some(Arc::from(name.to_string()));
        self
    }

    /// Schedules `fut` as a task on the current runtime.
    ///
    /// # Panics
    /// Outside a Tokio runtime (asyncio: `no running event loop`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let t = asyncio::Task::builder().spawn(async { 1 + 1 });
    ///     assert_eq!(t.await.unwrap(), 2);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Inside one of our tasks, the runtime (and debug mode) is the
        // parent's: no need to touch the shared runtime handle.
        let parent =
            with_current(|cur| cur.map(|t| (t.core().header().runtime, t.core().header().debug)));
        let (runtime, debug) = match parent {
            Some((Some(id), debug)) => (id, debug),
            _ => match Handle::try_current() {
                Ok(handle) => (handle.id(), crate::report::runtime_debug(handle.id())),
                Err(_) => panic!(
                    "asyncio: no running event loop: create_task()/spawn() must be called \
                     inside a Tokio runtime (asyncio::run, #[tokio::main], or \
                     Builder::spawn_on with a runtime Handle)"
                ),
            },
        };
        self.spawn_with(fut, Location::caller(), Some(runtime), debug, None)
    }

    /// Schedules `fut` as a task on the runtime of `handle`; callable from any
    /// thread, also one outside every runtime.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let t = asyncio::Task::builder().name("remote").spawn_on(async { 3 }, rt.handle());
    /// assert_eq!(rt.block_on(async { t.await }).unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, fut: F, handle: &Handle) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let debug = crate::report::runtime_debug(handle.id());
        self.spawn_with(
            fut,
            Location::caller(),
            Some(handle.id()),
            debug,
            Some(handle),
        )
    }

    /// `#[track_caller]` down to Tokio's spawn: with `tokio_unstable`, Tokio
    /// (and tokio-console) record the user's call site as the spawn
    /// location, not this file.
    #[track_caller]
    fn spawn_with<F>(
        self,
        fut: F,
        spawned_at: &'static Location<'static>,
        runtime: Option<tokio::runtime::Id>,
        debug: bool,
        on: Option<&Handle>,
    ) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[cfg(all(tokio_unstable, feature = "tracing"))]
        let console_name = self.name.clone();
        let core = Core::<F::Output>::new_registered(
            self.name,
            spawned_at,
            std::any::type_name::<F>,
            runtime,
            debug,
        );
        #[cfg(all(tokio_unstable, feature = "tracing"))]
        let console_name = match console_name {
            Some(name) => name.to_string(),
            // Formatted only on this path: the default build pays nothing.
            None => format!("Task-{}", core.header().id),
        };
        let harness = Harness::new(core.clone(), fut);
        // With `--cfg tokio_unstable` and our `tracing` feature, the name
        // reaches tokio-console through `tokio::task::Builder::name`. It is
        // fixed there at spawn: a later `set_name` does not reach Tokio.
        #[cfg(all(tokio_unstable, feature = "tracing"))]
        let join = {
            let builder = tokio::task::Builder::new().name(&console_name);
            match on {
                Some(handle) => builder.spawn_on(harness, handle),
                None => builder.spawn(harness),
            }
            .expect("asyncio: tokio::task::Builder could not spawn the task")
        };
        #[cfg(not(all(tokio_unstable, feature = "tracing")))]
        let join = spawn_raw(harness, on);
        core.set_abort_handle(join.abort_handle());
        let task = TaskRef(core);
        Task {
            task,
            join: Some(join),
            _output: PhantomData,
        }
    }
}

/// `handle.spawn(fut)`, or `tokio::spawn(fut)` without a handle.
#[cfg(not(all(tokio_unstable, feature = "tracing")))]
#[track_caller]
fn spawn_raw<F>(fut: F, on: Option<&Handle>) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match on {
        Some(handle) => handle.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// Schedules `fut` as a task of ours on the current Tokio runtime and returns
/// its [`Task`]: asyncio's `create_task(coro)`. The task starts at the next
/// scheduling point, not inside this call. The call site is recorded as the
/// task's creation site.
///
/// # Panics
/// Outside a Tokio runtime, with asyncio's `no running event loop`.
///
/// ```
/// asyncio::run(async {
///     let task = asyncio::create_task(async { 6 * 7 });
///     assert_eq!(task.await.unwrap(), 42);
/// });
/// ```
#[track_caller]
pub fn create_task<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::default().spawn(fut)
}
