//! Every task ends exactly once, whatever its code does: also when a panic's
//! payload panics as it is dropped, when the future panics as it is dropped
//! after returning a value whose destructor panics too. (A value returned as
//! a cancel arrives is no longer discarded: the task keeps it, see
//! `tests/on_cancel.rs`.) Each case is checked for
//! each thing that used to break: the task's end (`done()`, its awaiter's
//! error), `all_tasks()`, the done callbacks, `current_task()` on the thread
//! afterwards, and `asyncio::run` returning.
//!
//! The exception handler is process-wide and the tests of this file run in
//! parallel threads: one capturing handler is installed once, and each test
//! looks only at the reports about its own, uniquely named tasks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use asyncio::{Runner, Task};

mod reports;

use reports::{capture, reports_for};

/// A panic payload whose destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload exploded");
    }
}

/// A value whose destructor panics with `msg`.
struct Loud(&'static str);

impl Drop for Loud {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// A future that returns a [`Loud`] at once and panics as it is dropped.
struct ReturnsLoudThenPanicsOnDrop;

impl Future for ReturnsLoudThenPanicsOnDrop {
    type Output = Loud;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Loud> {
        Poll::Ready(Loud("the returned value exploded"))
    }
}

impl Drop for ReturnsLoudThenPanicsOnDrop {
    fn drop(&mut self) {
        panic!("the future exploded");
    }
}

/// Both runtimes the crate offers.
fn runners() -> [(&'static str, Runner); 2] {
    [
        ("current-thread", Runner::new().current_thread()),
        ("multi-thread", Runner::new().worker_threads(2)),
    ]
}

/// Runs `main` with `runner` on a thread of its own and fails, instead of
/// hanging the test suite, if `asyncio::run` does not come back.
fn run_or_fail<T: Send + 'static>(
    runner: Runner,
    main: impl Future<Output = T> + Send + 'static,
) -> T {
    capture();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(runner.run(main));
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("asyncio::run did not return: a task never ended")
}

/// What was observed of a task that was spawned, awaited by reference and
/// then checked.
struct Seen {
    error: asyncio::Error,
    done: bool,
    listed: bool,
    callback_ran: bool,
}

/// Spawns `fut` as a task called `name`, with a done callback, awaits it by
/// reference and records what is observable afterwards.
async fn spawn_and_look<F>(name: String, fut: F) -> Seen
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let ran = Arc::new(AtomicBool::new(false));
    let mut task = Task::builder().name(&name).spawn(fut);
    let flag = ran.clone();
    task.add_done_callback(move |_| flag.store(true, Ordering::SeqCst));
    let error = match (&mut task).await {
        Ok(_) => panic!("{name}: the task returned"),
        Err(e) => e,
    };
    // On the multi-thread runtime the await can see the task ended while
    // the thread that ended it is still running its done callbacks (see
    // docs/differences.md, "done callbacks and an awaiter on another
    // thread"): wait for them, with a bound, rather than race them.
    let start = std::time::Instant::now();
    while !ran.load(Ordering::SeqCst) && start.elapsed() < std::time::Duration::from_secs(10) {
        tokio::task::yield_now().await;
    }
    Seen {
        error,
        done: task.done(),
        listed: asyncio::all_tasks().contains(&task.to_ref()),
        callback_ran: ran.load(Ordering::SeqCst),
    }
}

/// `std::panic::panic_any(Bomb)`: the task ends panicked all the same, its
/// awaiter gets the panic, it leaves `all_tasks()`, its callback runs, and
/// the payload's own panic is reported through the exception handler.
#[test]
fn a_panic_payload_whose_drop_panics_still_ends_the_task_panicked() {
    for (flavor, runner) in runners() {
        let name = format!("bomb-{flavor}");
        let seen = run_or_fail(
            runner,
            spawn_and_look(name.clone(), async { std::panic::panic_any(Bomb) }),
        );
        assert!(seen.error.is_panic(), "{flavor}: {:?}", seen.error);
        assert!(seen.done, "{flavor}");
        assert!(!seen.listed, "{flavor}");
        assert!(seen.callback_ran, "{flavor}");
        let reports = reports_for(&name);
        assert!(
            reports.iter().any(
                |(m, text)| m == "Exception in the destructor of a panic payload"
                    && text.contains("the payload exploded")
            ),
            "{flavor}: {reports:?}"
        );
    }
}

/// A future that panics as it is dropped after returning a value that panics
/// as it is dropped: the task ends with the future's panic, and the value's
/// panic is reported.
#[test]
fn a_future_that_panics_on_drop_after_returning_a_panicking_value_ends_panicked() {
    for (flavor, runner) in runners() {
        let name = format!("loud-{flavor}");
        let seen = run_or_fail(
            runner,
            spawn_and_look(name.clone(), ReturnsLoudThenPanicsOnDrop),
        );
        match &seen.error {
            asyncio::Error::Panicked(e) => assert_eq!(e.message(), "the future exploded"),
            other => panic!("{flavor}: {other:?}"),
        }
        assert!(seen.done && !seen.listed && seen.callback_ran, "{flavor}");
        let reports = reports_for(&name);
        assert!(
            reports.iter().any(|(m, text)| m
                == "Exception in the destructor of a discarded task result"
                && text.contains("the returned value exploded")),
            "{flavor}: {reports:?}"
        );
    }
}

/// After such a task, the thread that ran it no longer claims to be running
/// it: a raw Tokio task on the same (only) thread has no current task.
#[test]
fn current_task_is_restored_after_a_destructor_panic_in_the_harness() {
    let outside = run_or_fail(Runner::new().current_thread(), async {
        let _ = asyncio::create_task(async { std::panic::panic_any::<Bomb>(Bomb) }).await;
        let _ = asyncio::create_task(ReturnsLoudThenPanicsOnDrop).await;
        tokio::spawn(async { asyncio::current_task().map(|t| t.get_name()) })
            .await
            .unwrap()
    });
    assert_eq!(outside, None);
}

/// `asyncio::run` whose main returns while holding such a task (so that the
/// task stays registered) comes back: the shutdown does not wait forever for
/// a task that cannot end.
#[test]
fn asyncio_run_returns_with_such_a_task_left_behind() {
    for (flavor, runner) in runners() {
        let name = format!("left-{flavor}");
        let task = run_or_fail(runner, async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = Task::builder().name(name).spawn(async move {
                let _ = tx.send(());
                std::panic::panic_any(Bomb)
            });
            let _ = rx.await;
            task
        });
        assert!(task.done(), "{flavor}");
    }
}
