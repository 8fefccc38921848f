//! Edges of cancellation with cleanup: `finally` when its future panics,
//! `wait_for` on a task whose awaiter is cancelled, panics that happen
//! after a cancel (still reported when nobody reads them), and the cancel
//! paths under panicking cleanups, panicking destructors, repeated and
//! racing cancels. Each test names the CPython behaviour or test
//! (`test_tasks.py`, `test_waitfor.py`, `test_taskgroups.py`) it mirrors,
//! where there is one. Timed tests on Tokio's paused clock; races on the
//! multi-thread runtime.

mod common;
mod reports;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asyncio::{CancelExt, Runner, Task};
use tokio::time::Instant;

use common::{entries, log, push, settle};
use reports::{capture, lost_reports_for, reports_for};

/// A value whose destructor panics.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// The text of a task's panic.
fn panic_text(e: &asyncio::Error) -> String {
    assert!(e.is_panic(), "expected a panic, got {e:?}");
    e.to_string()
}

/// Ended, neither cancelled nor with a value (these tasks only end so by a
/// panic); read without counting as seeing the panic.
fn ended_panicked(t: &asyncio::TaskRef) -> bool {
    t.done() && !t.cancelled() && !format!("{t}").contains("result=")
}

/// `n` rounds of a race, or 50 times more with `ASYNCIO_STRESS=1`.
fn rounds(n: usize) -> usize {
    match std::env::var_os("ASYNCIO_STRESS") {
        Some(_) => n * 50,
        None => n,
    }
}

/// A counter shared by a test's tasks and cleanups.
fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn count(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

// ------------------------------------------------------------ (a) finally

/// `try: await body() finally: await cleanup()` runs the cleanup when the
/// body raises, and the exception goes on after it (the language's
/// `finally`, which asyncio code relies on).
#[tokio::test(start_paused = true)]
async fn finally_runs_its_cleanup_to_its_end_when_the_future_panics() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(
        async move {
            asyncio::sleep(0.1).await;
            if t0.elapsed() > Duration::ZERO {
                panic!("body failed");
            }
            5u8
        }
        .finally(move || async move {
            push(&l, "closing");
            asyncio::sleep(1).await;
            push(&l, "closed");
        }),
    );
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("body failed"), "{err}");
    assert_eq!(entries(&log), ["closing", "closed"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
}

/// The same when the future panics at its very first poll, and when the
/// `Finally` is polled outside any task (nothing can cancel it there).
#[test]
fn finally_cleans_up_after_a_panic_at_the_first_poll_also_outside_a_task() {
    let log = log();
    let l = log.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let caught = rt.block_on(async {
        let fut = asyncio::finally(async { panic!("at once") }, move || async move {
            asyncio::sleep(0.5).await;
            push(&l, "cleaned");
        });
        // Polled in place, in a plain `block_on`: no task, no scope.
        let fut: std::pin::Pin<Box<dyn Future<Output = ()>>> = Box::pin(fut);
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(fut)).await
    });
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"at once"));
    assert_eq!(entries(&log), ["cleaned"]);
}

/// A panic in the future's destructor while a cancel drops it is an
/// exception raised inside the `try:` body: the `finally` cleanup runs, and
/// the task ends panicked (asyncio: an exception raised while handling a
/// cancel replaces the `CancelledError`).
#[tokio::test(start_paused = true)]
async fn finally_cleans_up_when_the_futures_destructor_panics_during_a_cancel() {
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(
        async {
            let _guard = PanicOnDrop("destructor failed");
            asyncio::sleep(10).await;
        }
        .finally(move || async move {
            asyncio::sleep(1).await;
            push(&l, "cleaned");
        }),
    );
    asyncio::sleep(0.1).await;
    assert!(task.cancel());
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("destructor failed"), "{err}");
    assert_eq!(entries(&log), ["cleaned"]);
}

/// The same when the destructor of a future that returned panics: the
/// cleanup runs, then the panic goes on (the value is lost with it, as a
/// `return` is when the `try:` block raises on its way out).
#[tokio::test(start_paused = true)]
async fn finally_cleans_up_when_the_futures_destructor_panics_after_it_returned() {
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(
        async {
            let _guard = PanicOnDrop("late destructor");
            asyncio::sleep(0.1).await;
            7u8
        }
        .finally(move || async move { push(&l, "cleaned") }),
    );
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("late destructor"), "{err}");
    assert_eq!(entries(&log), ["cleaned"]);
}

/// A panic of the cleanup that runs after the future panicked replaces the
/// future's panic, as an exception raised in a `finally:` block replaces
/// the one being handled.
#[tokio::test(start_paused = true)]
async fn a_panic_of_the_cleanup_replaces_the_futures_panic() {
    let task = asyncio::create_task(
        async {
            asyncio::sleep(0.1).await;
            panic!("first");
        }
        .finally(|| async {
            asyncio::sleep(0.1).await;
            panic!("second");
        }),
    );
    let err = task.await.unwrap_err();
    let text = panic_text(&err);
    assert!(text.contains("second") && !text.contains("first"), "{text}");
}

/// The future's panic payload is dropped when the cleanup's panic replaces
/// it; a payload whose destructor panics too does not take anything down:
/// the task still ends once, panicked with the cleanup's panic.
#[tokio::test(start_paused = true)]
async fn a_replaced_panic_payload_whose_destructor_panics_is_contained() {
    capture();
    let task = Task::builder().name("edges-payload-drop").spawn(
        async {
            asyncio::sleep(0.1).await;
            std::panic::panic_any(PanicOnDrop("payload destructor"));
        }
        .finally(|| async {
            asyncio::sleep(0.1).await;
            panic!("from the cleanup");
        }),
    );
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("from the cleanup"), "{err}");
}

/// `on_cancel` is `except CancelledError:`: a panic of its future is not a
/// cancellation, so the cleanup does not run; the panic goes on.
#[tokio::test(start_paused = true)]
async fn on_cancel_runs_no_cleanup_when_the_future_panics() {
    let ran = counter();
    let r = ran.clone();
    let task = asyncio::create_task(
        async {
            asyncio::sleep(0.1).await;
            panic!("not a cancel");
        }
        .on_cancel(move || async move {
            r.fetch_add(1, Ordering::SeqCst);
        }),
    );
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("not a cancel"));
    assert_eq!(count(&ran), 0);
}

/// Nor when its future's destructor panics while a cancel drops it: the
/// exception raised while the cancel is handled is not a `CancelledError`.
#[tokio::test(start_paused = true)]
async fn on_cancel_runs_no_cleanup_when_the_futures_destructor_panics_during_the_cancel() {
    let ran = counter();
    let r = ran.clone();
    let task = asyncio::create_task(
        async {
            let _guard = PanicOnDrop("dropped badly");
            asyncio::sleep(10).await;
        }
        .on_cancel(move || async move {
            r.fetch_add(1, Ordering::SeqCst);
        }),
    );
    asyncio::sleep(0.1).await;
    task.cancel();
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("dropped badly"));
    assert_eq!(count(&ran), 0);
}

/// A `finally` whose future panics inside a cancelled task: the cleanup is
/// not interrupted by the cancel and the panic wins (the task ends
/// panicked, as a task raising in its `finally:` while cancelled does).
#[tokio::test(start_paused = true)]
async fn a_cancel_during_the_cleanup_after_a_panic_waits_and_the_panic_wins() {
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(
        async {
            asyncio::sleep(0.1).await;
            panic!("body");
        }
        .finally(move || async move {
            asyncio::sleep(1).await;
            push(&l, "cleaned");
        }),
    );
    asyncio::sleep(0.5).await;
    assert!(task.cancel());
    asyncio::sleep(0.1).await;
    assert!(!task.done(), "the cleanup still runs");
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("body"));
    assert_eq!(entries(&log), ["cleaned"]);
}

/// A `finally` whose future panics inside a task group's body: the cleanup
/// runs, then the panic fails the group, which cancels the child (its
/// cleanup runs) and reports the body's panic (test_taskgroups.py
/// test_taskgroup_08 family: the body's exception is one of the group's).
#[tokio::test(start_paused = true)]
async fn a_panic_in_a_finally_inside_a_group_body_cleans_up_then_fails_the_group() {
    let log = log();
    let (l1, l2) = (log.clone(), log.clone());
    let r = asyncio::task_group(|tg| async move {
        tg.create_task(asyncio::sleep(10).on_cancel(move || async move {
            asyncio::sleep(0.2).await;
            push(&l1, "child cleaned");
        }));
        async {
            asyncio::sleep(0.1).await;
            panic!("body");
        }
        .finally(move || async move {
            asyncio::sleep(0.5).await;
            push(&l2, "body cleaned");
        })
        .await
    })
    .await;
    let Err(asyncio::Error::Group(g)) = r else {
        panic!("expected a group error, got {r:?}")
    };
    assert_eq!(g.errors().len(), 1);
    // The `finally:` block runs inside the body, before the panic leaves
    // it and the group cancels the child.
    assert_eq!(entries(&log), ["body cleaned", "child cleaned"]);
}

// ------------------------------------------------------- (b) wait_for(task)

/// A task whose child cancel-cleanup awaits; counts the cleanups and ends.
fn child_with_slow_cleanup(
    cleanups: &Arc<AtomicUsize>,
    ends: &Arc<AtomicUsize>,
    log: &common::Log,
) -> Task<u8> {
    let (c, l) = (cleanups.clone(), log.clone());
    let end = CountOnDrop(ends.clone()); // moved in: counted even if never polled
    asyncio::create_task(async move {
        let _end = end;
        asyncio::sleep(60)
            .on_cancel(move || async move {
                push(&l, "child cleanup started");
                asyncio::sleep(1).await;
                c.fetch_add(1, Ordering::SeqCst);
                push(&l, "child cleanup ended");
            })
            .await;
        1u8
    })
}

/// Counts one when dropped (a future's end, whichever way it ended).
struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `fut`, telling `tx` once its first poll returned.
async fn after_first_poll<F: Future + Unpin>(
    mut fut: F,
    tx: tokio::sync::oneshot::Sender<()>,
) -> F::Output {
    let mut tx = Some(tx);
    std::future::poll_fn(|cx| {
        let polled = std::pin::Pin::new(&mut fut).poll(cx);
        if let Some(tx) = tx.take() {
            let _ = tx.send(());
        }
        polled
    })
    .await
}

/// Copies the first counter into the second when dropped.
struct CopyOnDrop(Arc<AtomicUsize>, Arc<AtomicUsize>);

impl Drop for CopyOnDrop {
    fn drop(&mut self) {
        self.1.store(count(&self.0), Ordering::SeqCst);
    }
}

/// asyncio's `await wait_for(task, 10)` in a task that is cancelled: the
/// cancel is passed on to `task`, and the awaiter waits for its end (its
/// `except CancelledError:` handler included) before it ends cancelled
/// itself, as with `await task` (test_waitfor.py
/// test_cancel_wait_for / test_wait_for_cancellation_race_condition).
#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_for_on_a_task_waits_for_the_tasks_cleanup() {
    let t0 = Instant::now();
    let (cleanups, ends, log) = (counter(), counter(), log());
    let child = child_with_slow_cleanup(&cleanups, &ends, &log);
    let child_ref = child.to_ref();
    let l = log.clone();
    let outer = asyncio::create_task(async move {
        let r = asyncio::wait_for(child, 10).await;
        push(&l, format!("outer got {r:?}"));
    });
    asyncio::sleep(0.1).await;
    assert!(outer.cancel());
    asyncio::sleep(0.5).await;
    assert!(
        !outer.done(),
        "the outer task waits for the child's cleanup"
    );
    assert!(!child_ref.done());
    let err = outer.await.unwrap_err();
    assert!(err.is_cancelled());
    assert!(child_ref.cancelled());
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
    assert_eq!(
        entries(&log),
        ["child cleanup started", "child cleanup ended"]
    );
    assert_eq!((count(&cleanups), count(&ends)), (1, 1));
}

/// The same with the `wait_for` inside an `on_cancel` of the outer task:
/// the child's cleanup runs first, then the outer one (innermost first).
#[tokio::test(start_paused = true)]
async fn the_awaiters_own_cleanup_runs_after_the_waited_tasks_cleanup() {
    let (cleanups, ends, log) = (counter(), counter(), log());
    let child = child_with_slow_cleanup(&cleanups, &ends, &log);
    let l = log.clone();
    let outer = asyncio::create_task(async move {
        asyncio::wait_for(child, 10)
            .on_cancel(move || async move { push(&l, "outer cleanup") })
            .await
    });
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert_eq!(
        entries(&log),
        [
            "child cleanup started",
            "child cleanup ended",
            "outer cleanup"
        ]
    );
    assert_eq!((count(&cleanups), count(&ends)), (1, 1));
}

/// The child is created inside the awaiting task and enters its scope only
/// after the `wait_for` began: the cancel still waits for its cleanup.
#[tokio::test(start_paused = true)]
async fn a_wait_for_on_a_task_created_in_place_waits_for_the_cleanup_it_starts_later() {
    let (cleanups, ends, log) = (counter(), counter(), log());
    let (c, e, l) = (cleanups.clone(), ends.clone(), log.clone());
    let outer = asyncio::create_task(async move {
        let child = child_with_slow_cleanup(&c, &e, &l);
        asyncio::wait_for(child, 10).await
    });
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert_eq!((count(&cleanups), count(&ends)), (1, 1));
}

/// The timeout path is unchanged: the child is cancelled, its cleanup runs
/// to its end, then `Err(Timeout)` (test_waitfor.py test_wait_for_timeout
/// family).
#[tokio::test(start_paused = true)]
async fn a_timed_out_wait_for_on_a_task_still_waits_for_its_cleanup() {
    let t0 = Instant::now();
    let (cleanups, ends, log) = (counter(), counter(), log());
    let child = child_with_slow_cleanup(&cleanups, &ends, &log);
    let err = asyncio::wait_for(child, 0.1).await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
    assert_eq!((count(&cleanups), count(&ends)), (1, 1));
}

/// `await asyncio.wait_for(asyncio.current_task(), 1)` raises
/// `RuntimeError: Task cannot await on itself` at once and leaves the task
/// running (Python 3.13). Here: `Err(InvalidState)` with that message, and
/// the task is not cancelled, neither then nor when the `WaitFor` is
/// dropped.
#[tokio::test(start_paused = true)]
async fn wait_for_on_the_current_tasks_own_handle_is_refused_and_cancels_nothing() {
    let (tx, rx) = tokio::sync::oneshot::channel::<Task<u8>>();
    let task = asyncio::create_task(async move {
        let me = rx.await.unwrap();
        let err = asyncio::wait_for(me, 1).await.unwrap_err();
        assert!(err.is_invalid_state(), "{err:?}");
        assert!(err.to_string().contains("cannot await on itself"), "{err}");
        asyncio::sleep(0.5).await; // would end here if it had been cancelled
        9u8
    });
    let r = task.to_ref();
    // The task's own handle, and a TaskRef kept here to read the outcome.
    tx.send(task).unwrap();
    settle(&r).await;
    assert!(!r.cancelled());
    assert_eq!(r.result_as::<u8>().unwrap(), 9);
}

/// With a zero timeout too: the first poll already answers.
#[tokio::test(start_paused = true)]
async fn wait_for_on_the_current_tasks_own_handle_with_zero_timeout_cancels_nothing() {
    let (tx, rx) = tokio::sync::oneshot::channel::<Task<u8>>();
    let task = asyncio::create_task(async move {
        let me = rx.await.unwrap();
        assert!(
            asyncio::wait_for(me, 0)
                .await
                .unwrap_err()
                .is_invalid_state()
        );
        asyncio::sleep(0.5).await;
        3u8
    });
    let r = task.to_ref();
    tx.send(task).unwrap();
    settle(&r).await;
    assert_eq!(r.result_as::<u8>().unwrap(), 3);
}

/// On two workers: the outer task's cancel (from a third thread) races the
/// child's own completion. Whichever wins, each task ends exactly once,
/// each cleanup that started ran to its end exactly once, and the outer
/// task never ends before the child.
#[test]
fn cancels_of_a_wait_for_racing_the_tasks_completion_end_everything_once() {
    race_the_awaiters_cancel_with_the_childs_end(true);
}

/// The same race with `task.await` (by value) in place of `wait_for`.
#[test]
fn cancels_of_a_by_value_await_racing_the_tasks_completion_end_everything_once() {
    race_the_awaiters_cancel_with_the_childs_end(false);
}

fn race_the_awaiters_cancel_with_the_childs_end(with_wait_for: bool) {
    let rt = common::multi_thread_runtime();
    let rounds = rounds(300);
    let outcomes = rt.block_on(async move {
        let mut seen = [0usize; 2];
        for i in 0..rounds {
            let (started, ended, child_ends, outer_ends) =
                (counter(), counter(), counter(), counter());
            let (s, e, ce) = (started.clone(), ended.clone(), child_ends.clone());
            let end = CountOnDrop(ce); // moved in: counted even if never polled
            let child = asyncio::create_task(async move {
                let _end = end;
                async {
                    // Spin a little so the cancel lands at varying points.
                    for _ in 0..(i % 7) {
                        tokio::task::yield_now().await;
                    }
                    2u8
                }
                .on_cancel(move || async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    e.fetch_add(1, Ordering::SeqCst);
                })
                .await
            });
            let child_ref = child.to_ref();
            let oe = outer_ends.clone();
            let cr = child_ref.clone();
            let cleaned_when_outer_ended = counter();
            let started_when_outer_ended = counter();
            let end = (
                CountOnDrop(oe),
                CopyOnDrop(ended.clone(), cleaned_when_outer_ended.clone()),
                CopyOnDrop(started.clone(), started_when_outer_ended.clone()),
            );
            // Every other round the outer task has entered a scope before
            // (its root exists, so its cancel is a signal from the start).
            let scoped = i % 2 == 0;
            // The cancel is sent once the wait's first poll returned: a
            // cancel landing in the very poll that starts the wait (before
            // the await is registered anywhere) drops the outer task at
            // once, as it would before an `on_cancel` entered in that poll
            // (see docs/differences.md).
            let (started_waiting, has_started_waiting) = tokio::sync::oneshot::channel::<()>();
            let outer = asyncio::create_task(async move {
                let _end = end;
                if scoped {
                    async {}.on_cancel(|| async {}).await;
                }
                let wait: std::pin::Pin<Box<dyn Future<Output = asyncio::Result<u8>> + Send>> =
                    match with_wait_for {
                        true => Box::pin(asyncio::wait_for(child, 10)),
                        false => Box::pin(std::future::IntoFuture::into_future(child)),
                    };
                let r = after_first_poll(wait, started_waiting).await;
                assert!(cr.done(), "the wait ended before the child");
                r
            });
            let o = outer.to_ref();
            let _ = has_started_waiting.await;
            let canceller = std::thread::spawn(move || {
                for _ in 0..(i % 5) * 20 {
                    std::hint::spin_loop();
                }
                o.cancel()
            });
            let r = outer.await;
            canceller.join().unwrap();
            settle(&child_ref).await;
            assert!(child_ref.done());
            assert_eq!(count(&child_ends), 1);
            assert_eq!(count(&outer_ends), 1);
            assert_eq!(count(&started), count(&ended), "a cleanup was cut");
            assert!(count(&started) <= 1, "a cleanup ran twice");
            if count(&started) == 1 {
                assert!(child_ref.cancelled());
                // Only the outer task's cancel reaches the child: the outer
                // task waited for the cleanup before it ended.
                {
                    assert_eq!(
                        count(&cleaned_when_outer_ended),
                        1,
                        "round {i}: {r:?}, started when the outer ended: {}",
                        count(&started_when_outer_ended)
                    );
                }
            }
            match r {
                Ok(Ok(2)) => seen[0] += 1,
                Err(e) if e.is_cancelled() => seen[1] += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        seen
    });
    assert_eq!(outcomes.iter().sum::<usize>(), rounds);
}

// ------------------------------------- (c) a panic after a cancel is reported

fn run_captured<F: Future>(fut: F) -> F::Output {
    capture();
    Runner::new().run(fut)
}

fn lost(name: &str) -> usize {
    lost_reports_for(name).len()
}

/// A task that panics in its cleanup once cancelled.
fn panics_when_cancelled(name: &str) -> Task<()> {
    Task::builder()
        .name(name)
        .spawn(asyncio::sleep(60).on_cancel(|| async {
            asyncio::sleep(0.01).await;
            panic!("raised while handling the cancel");
        }))
}

/// `task.cancel()` clears asyncio's `_log_traceback`, but the exception the
/// task then raises in its `except CancelledError:` handler sets it again:
/// nobody reading it, it is "Task exception was never retrieved" (Python
/// 3.13, checked by hand).
#[test]
fn a_panic_after_a_cancel_is_reported_when_nobody_reads_it() {
    run_captured(async {
        let t = panics_when_cancelled("edges-lost-after-cancel");
        asyncio::sleep(0.01).await;
        assert!(t.cancel());
        let r = t.to_ref();
        drop(t);
        settle(&r).await;
        assert!(ended_panicked(&r));
    });
    assert_eq!(lost("edges-lost-after-cancel"), 1);
}

/// The same with the handle dropped after the end.
#[test]
fn a_panic_after_a_cancel_is_reported_when_the_handle_goes_later() {
    run_captured(async {
        let t = panics_when_cancelled("edges-lost-after-cancel-2");
        asyncio::sleep(0.01).await;
        t.cancel();
        settle(&t).await;
        drop(t);
    });
    assert_eq!(lost("edges-lost-after-cancel-2"), 1);
}

/// A destructor panicking while a plain cancel drops the future: the task
/// ends panicked after the cancel, and that panic too is reported when
/// nobody reads it.
#[test]
fn a_destructor_panic_during_a_plain_cancel_is_reported_when_nobody_reads_it() {
    run_captured(async {
        let t = Task::builder().name("edges-lost-destructor").spawn(async {
            let _g = PanicOnDrop("destructor during cancel");
            asyncio::sleep(60).await;
        });
        asyncio::sleep(0.01).await;
        t.cancel();
        settle(&t).await;
        assert!(ended_panicked(&t));
    });
    assert_eq!(lost("edges-lost-destructor"), 1);
}

/// `cancel()` on a task that already ended still counts as reading it
/// (asyncio's `cancel()` clears `_log_traceback` whatever the state).
#[test]
fn a_cancel_after_the_panic_still_counts_as_reading_it() {
    run_captured(async {
        let t = Task::builder()
            .name("edges-cancel-after-end")
            .spawn(async { panic!("early") });
        settle(&t).await;
        assert!(!t.cancel());
    });
    assert_eq!(lost("edges-cancel-after-end"), 0);
}

/// `await task` in a task that is cancelled: the awaited task is cancelled
/// and the awaiter, woken by its end, reads the exception its handler
/// raised (asyncio: the awaiter then raises it): not reported.
#[test]
fn a_by_value_awaiter_reads_the_panic_raised_after_its_cancel() {
    run_captured(async {
        let outer = asyncio::create_task(async {
            let child = panics_when_cancelled("edges-read-by-awaiter");
            child.await
        });
        asyncio::sleep(0.01).await;
        outer.cancel();
        // The awaiter hands the panic over (a value is never lost to the
        // cancel): the outer task returns it.
        match outer.await {
            Ok(Err(e)) => assert!(e.is_panic(), "{e:?}"),
            other => panic!("unexpected {other:?}"),
        }
    });
    assert_eq!(lost("edges-read-by-awaiter"), 0);
}

/// `wait_for(task)` in a task that is cancelled: the same.
#[test]
fn a_wait_for_awaiter_reads_the_panic_raised_after_its_cancel() {
    run_captured(async {
        let outer = asyncio::create_task(async {
            let child = panics_when_cancelled("edges-read-by-wait-for");
            asyncio::wait_for(child, 10).await
        });
        asyncio::sleep(0.01).await;
        outer.cancel();
        let _ = outer.await;
    });
    assert_eq!(lost("edges-read-by-wait-for"), 0);
}

/// `wait_for(task, timeout)` timing out: it cancels the task and reads how
/// it ended, so a panic raised in the task's handler is seen (asyncio's
/// `wait_for` raises it).
#[test]
fn a_timed_out_wait_for_returns_the_panic_raised_after_its_cancel() {
    run_captured(async {
        let child = panics_when_cancelled("edges-wait-for-timeout");
        let err = asyncio::wait_for(child, 0.01).await.unwrap_err();
        assert!(err.is_panic(), "{err:?}");
    });
    assert_eq!(lost("edges-wait-for-timeout"), 0);
}

/// A by-value await dropped without ever being polled: nothing waited for
/// the task, so a panic it raises after the cancel is reported (asyncio: a
/// task cancelled and never awaited).
#[test]
fn a_panic_after_the_cancel_of_an_unpolled_await_is_reported() {
    run_captured(async {
        let t = panics_when_cancelled("edges-unpolled-join");
        let r = t.to_ref();
        asyncio::sleep(0.01).await;
        drop(std::future::IntoFuture::into_future(t));
        settle(&r).await;
        assert!(ended_panicked(&r));
    });
    assert_eq!(lost("edges-unpolled-join"), 1);
}

/// `ConcurrentFuture::cancel()`: asyncio's chained future stops copying the
/// task's outcome once the concurrent future is cancelled, so an exception
/// the task raises while handling the cancel is never retrieved (Python
/// 3.13, checked by hand).
#[test]
fn a_panic_after_a_concurrent_futures_cancel_is_reported() {
    capture();
    let rt = common::multi_thread_runtime();
    let lp = asyncio::Loop::from(rt.handle().clone());
    let fut = asyncio::run_coroutine_threadsafe(
        asyncio::sleep(60).on_cancel(|| async {
            asyncio::sleep(0.01).await;
            panic!("after the concurrent cancel");
        }),
        &lp,
    );
    let r = fut.task().clone();
    r.set_name("edges-concurrent-cancel");
    rt.block_on(asyncio::sleep(0.01));
    assert!(fut.cancel());
    drop(fut);
    rt.block_on(settle(&r));
    assert!(ended_panicked(&r));
    drop(rt);
    assert_eq!(lost("edges-concurrent-cancel"), 1);
}

/// `asyncio.run()` cancels the tasks left over when main returns and
/// reports those that end with an exception as "unhandled exception during
/// asyncio.run() shutdown", once, and not also as never retrieved.
#[test]
fn a_leftover_that_panics_in_its_cleanup_at_shutdown_is_reported_once() {
    run_captured(async {
        let t = panics_when_cancelled("edges-leftover");
        asyncio::sleep(0.01).await;
        drop(t);
    });
    let reports = reports_for("edges-leftover");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        reports[0].0,
        "unhandled exception during asyncio.run() shutdown"
    );
}

// ------------------------------------------------- breaking the cancel paths

/// A cleanup that panics after a cancel: the task ends once, panicked, and
/// the runtime goes on (on two workers, many at once).
#[test]
fn panicking_cleanups_of_cancelled_tasks_end_each_task_once_and_spare_the_runtime() {
    let rt = common::multi_thread_runtime();
    rt.block_on(async {
        let (ends, entered) = (counter(), counter());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let end = CountOnDrop(ends.clone());
            let entered = entered.clone();
            tasks.push(asyncio::create_task(async move {
                let _end = end;
                async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    asyncio::sleep(60).await
                }
                .on_cancel(move || async move {
                    tokio::task::yield_now().await;
                    if i % 2 == 0 {
                        panic!("cleanup {i} failed");
                    }
                    let _g = PanicOnDrop("cleanup destructor");
                })
                .await
            }));
        }
        // Every cleanup entered (a cancel before that runs none).
        while count(&entered) < 200 {
            tokio::task::yield_now().await;
        }
        for t in &tasks {
            t.cancel();
            t.cancel(); // twice: changes nothing
        }
        for t in tasks {
            let e = t.await.unwrap_err();
            assert!(e.is_panic(), "{e:?}");
        }
        assert_eq!(count(&ends), 200);
        // The runtime still runs tasks.
        assert_eq!(asyncio::create_task(async { 1 }).await.unwrap(), 1);
    });
}

/// A cleanup that panics inside a timeout scope: the panic goes on through
/// the scope (no `Err(Timeout)`), the task ends panicked, and an outer
/// `finally` still cleans up first (innermost first).
#[tokio::test(start_paused = true)]
async fn a_cleanup_panicking_at_a_timeout_goes_through_the_scope_and_outer_finally_runs() {
    let log = log();
    let (l1, l2) = (log.clone(), log.clone());
    let task = asyncio::create_task(
        async move {
            asyncio::timeout(0.1)
                .run(asyncio::sleep(10).on_cancel(move || async move {
                    push(&l1, "inner");
                    panic!("inner cleanup failed");
                }))
                .await
        }
        .finally(move || async move {
            asyncio::sleep(0.1).await;
            push(&l2, "outer");
        }),
    );
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("inner cleanup failed"));
    assert_eq!(entries(&log), ["inner", "outer"]);
}

/// A group child whose cleanup panics while the group shuts down after
/// another failure: both failures are reported, every child ends once
/// (test_taskgroups.py test_taskgroup_07 family: an exception raised in a
/// child's cancel handler joins the group's errors).
#[tokio::test(start_paused = true)]
async fn a_child_cleanup_panicking_during_a_group_shutdown_is_one_more_failure() {
    let ends = counter();
    let (e1, e2) = (CountOnDrop(ends.clone()), CountOnDrop(ends.clone()));
    let r = asyncio::task_group(|tg| async move {
        tg.create_task(async move {
            let _end = e1;
            asyncio::sleep(10)
                .on_cancel(|| async {
                    asyncio::sleep(0.1).await;
                    panic!("cleanup failed");
                })
                .await
        });
        tg.create_task(async move {
            let _end = e2;
            asyncio::sleep(0.1).await;
            panic!("first failure");
        });
    })
    .await;
    let Err(asyncio::Error::Group(g)) = r else {
        panic!("expected a group error, got {r:?}")
    };
    let texts: Vec<String> = g.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("first failure"), "{texts:?}");
    assert!(texts[1].contains("cleanup failed"), "{texts:?}");
    assert_eq!(count(&ends), 2);
}

/// Nested `on_cancel` / `finally` / `on_cancel` in a cancelled task,
/// cancelled again during the innermost cleanup and during the `finally`
/// cleanup: nothing is interrupted, nothing runs twice, innermost first,
/// and the task ends cancelled once (test_tasks.py
/// test_cancel_inner_future / test_cancel_both_task_and_inner_future
/// family).
#[tokio::test(start_paused = true)]
async fn cancels_during_nested_cleanups_run_each_cleanup_once_innermost_first() {
    let log = log();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let task = asyncio::create_task(
        async move {
            asyncio::sleep(10)
                .on_cancel(move || async move {
                    asyncio::sleep(0.2).await;
                    push(&l1, "on_cancel");
                })
                .finally(move || async move {
                    asyncio::sleep(0.2).await;
                    push(&l2, "finally");
                })
                .await;
            5u8
        }
        .on_cancel(move || async move { push(&l3, "outer") }),
    );
    asyncio::sleep(0.1).await;
    assert!(task.cancel());
    asyncio::sleep(0.1).await;
    assert!(task.cancel(), "during the inner cleanup");
    asyncio::sleep(0.2).await;
    assert!(task.cancel(), "during the finally cleanup");
    let err = task.await.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(entries(&log), ["on_cancel", "finally", "outer"]);
}

/// A kept `on_cancel` that is no longer polled (the losing branch of a
/// `select!` over `&mut`): the cancellation of the task reaches it, but
/// its cleanup can only run when it is polled, so the cancellation waits
/// (the task goes on) until it is polled again, which runs the cleanup,
/// or dropped, which runs none; then the task ends cancelled at its next
/// suspension point. asyncio has no twin (a coroutine is never half
/// awaited); see docs/differences.md.
#[tokio::test(start_paused = true)]
async fn a_kept_on_cancel_no_longer_polled_holds_the_cancel_until_polled_or_dropped() {
    let log = log();
    let (l1, l2) = (log.clone(), log.clone());
    let task = asyncio::create_task(async move {
        let guarded = asyncio::sleep(10).on_cancel(move || async move {
            asyncio::sleep(0.1).await;
            push(&l1, "cleanup");
        });
        let mut guarded = std::pin::pin!(guarded);
        tokio::select! {
            _ = &mut guarded => unreachable!(),
            _ = asyncio::sleep(0.1) => {}
        }
        // Cancelled now: this sleep is not interrupted, the kept future
        // holds the cancellation.
        asyncio::sleep(1).await;
        push(&l2, "went on");
        // Polled again: it runs its cleanup; then the cancellation goes on.
        guarded.await;
        unreachable!("cancelled");
    });
    asyncio::sleep(0.5).await;
    assert!(task.cancel());
    asyncio::sleep(0.1).await;
    assert!(!task.done());
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["went on", "cleanup"]);
}

/// The same, with the kept future dropped instead: no cleanup, and the
/// task ends cancelled at its next suspension point.
#[tokio::test(start_paused = true)]
async fn a_kept_on_cancel_dropped_releases_the_held_cancel() {
    let ran = counter();
    let log = log();
    let l = log.clone();
    let r = ran.clone();
    let task = asyncio::create_task(async move {
        let mut guarded = Box::pin(asyncio::sleep(10).on_cancel(move || async move {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::select! {
            _ = &mut guarded => unreachable!(),
            _ = asyncio::sleep(0.1) => {}
        }
        asyncio::sleep(1).await;
        drop(guarded);
        push(&l, "dropped");
        asyncio::sleep(0).await; // the cancellation takes effect here
        push(&l, "not reached");
    });
    asyncio::sleep(0.5).await;
    task.cancel();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["dropped"]);
    assert_eq!(count(&ran), 0);
}

/// A timeout scope inside a `finally` cleanup that runs after a panic: the
/// cleanup's own timeout still works, then the original panic goes on.
#[tokio::test(start_paused = true)]
async fn a_timeout_inside_a_finally_cleanup_after_a_panic_still_fires() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(
        async {
            asyncio::sleep(0.1).await;
            panic!("body");
        }
        .finally(move || async move {
            let r = asyncio::timeout(0.5).run(asyncio::sleep(60)).await;
            push(
                &l,
                format!("cleanup timed out: {}", r.unwrap_err().is_timeout()),
            );
        }),
    );
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("body"));
    assert_eq!(entries(&log), ["cleanup timed out: true"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(600));
}

/// A `finally` whose future panics while a cancel from another thread
/// lands, on two workers: the cleanup runs exactly once and to its end,
/// the task ends exactly once (panicked, or cancelled when the cancel won
/// before the panic), never with the cleanup cut.
#[test]
fn finally_panics_racing_cancels_clean_up_exactly_once() {
    let rt = common::multi_thread_runtime();
    rt.block_on(async {
        for i in 0..rounds(300) {
            let (started, ended, ends) = (counter(), counter(), counter());
            let (s, e) = (started.clone(), ended.clone());
            let end = CountOnDrop(ends.clone());
            let task = asyncio::create_task(async move {
                let _end = end;
                async move {
                    for _ in 0..(i % 5) {
                        tokio::task::yield_now().await;
                    }
                    if i < 1000 {
                        panic!("body {i}");
                    }
                }
                .finally(move || async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    e.fetch_add(1, Ordering::SeqCst);
                })
                .await
            });
            let r = task.to_ref();
            let canceller = std::thread::spawn(move || r.cancel());
            let out = task.await;
            canceller.join().unwrap();
            assert_eq!(count(&ends), 1);
            assert_eq!(count(&started), count(&ended), "round {i}: cut");
            assert!(count(&started) <= 1, "round {i}: twice");
            match out {
                Err(e) if e.is_panic() => assert_eq!(count(&ended), 1),
                Err(e) if e.is_cancelled() => {}
                other => panic!("round {i}: {other:?}"),
            }
        }
    });
}

/// `wait_for(task)` inside a timeout scope that fires first: the scope's
/// cancellation is passed on to the task and waits for its cleanup, then
/// the scope reports `Err(Timeout)` (asyncio: `async with timeout(0.1):
/// await wait_for(task, 10)`).
#[tokio::test(start_paused = true)]
async fn an_enclosing_timeout_waits_for_the_cleanup_of_the_task_wait_for_waits_for() {
    let t0 = Instant::now();
    let (cleanups, ends, log) = (counter(), counter(), log());
    let child = child_with_slow_cleanup(&cleanups, &ends, &log);
    let r = asyncio::timeout(0.1)
        .run(asyncio::wait_for(child, 10))
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
    assert_eq!((count(&cleanups), count(&ends)), (1, 1));
}

/// The main task of `run`: a `finally` whose future panics runs its
/// cleanup, then the panic goes on to `run`'s caller.
#[test]
fn finally_in_the_main_task_cleans_up_before_the_panic_leaves_run() {
    let log = log();
    let l = log.clone();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        asyncio::run(asyncio::finally(
            async {
                asyncio::sleep(0.01).await;
                panic!("main failed");
            },
            move || async move {
                asyncio::sleep(0.01).await;
                push(&l, "cleaned");
            },
        ))
    }));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main failed"));
    assert_eq!(entries(&log), ["cleaned"]);
}

/// Waits (on the real clock, up to 10 s: the machine may be busy) until
/// no task of ours is left.
async fn until_no_task_is_left() {
    for _ in 0..10_000 {
        if asyncio::all_tasks().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Cleanup bookkeeping for the combination test: each cleanup counts its
/// start and end.
#[derive(Clone, Default)]
struct Cleanups {
    started: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
}

impl Cleanups {
    /// A cleanup that yields `yields` times in the middle.
    fn cleanup(
        &self,
        yields: usize,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static {
        let (s, e) = (self.started.clone(), self.ended.clone());
        move || {
            Box::pin(async move {
                s.fetch_add(1, Ordering::SeqCst);
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                e.fetch_add(1, Ordering::SeqCst);
            })
        }
    }
}

/// On two workers, a task nesting `finally`, a task group, `on_cancel`,
/// timeout scopes and a `wait_for` on a task, cancelled from another thread
/// at varying moments: every task ends exactly once, no cleanup runs twice
/// or is cut, and the outer task ends only after every cleanup that
/// started inside it ended.
#[test]
fn nested_scopes_cancelled_from_another_thread_end_once_and_clean_up_once() {
    let rt = common::multi_thread_runtime();
    rt.block_on(async {
        for i in 0..rounds(200) {
            let c = Cleanups::default();
            let ends = [counter(), counter(), counter(), counter()];
            let ended_at_outer_end = counter();
            let (cc, e1, e2, e3) = (
                c.clone(),
                CountOnDrop(ends[1].clone()),
                CountOnDrop(ends[2].clone()),
                CountOnDrop(ends[3].clone()),
            );
            let outer_end = (
                CountOnDrop(ends[0].clone()),
                CopyOnDrop(c.ended.clone(), ended_at_outer_end.clone()),
            );
            let outer = asyncio::create_task(async move {
                let _end = outer_end;
                let c2 = cc.clone();
                asyncio::finally(
                    asyncio::task_group(move |tg| async move {
                        let c3 = c2.clone();
                        tg.create_task(async move {
                            let _end = e1;
                            asyncio::timeout(if i % 3 == 0 { 0.0 } else { 60.0 })
                                .run(asyncio::sleep(60).on_cancel(c3.cleanup(i % 4)))
                                .await
                        });
                        let c4 = c2.clone();
                        let waited = asyncio::create_task(async move {
                            let _end = e2;
                            async {
                                for _ in 0..(i % 6) {
                                    tokio::task::yield_now().await;
                                }
                                3u8
                            }
                            .finally(c4.cleanup(i % 3))
                            .await
                        });
                        let _end = e3;
                        asyncio::wait_for(waited, 60).on_cancel(c2.cleanup(1)).await
                    }),
                    cc.cleanup(i % 2),
                )
                .await
            });
            let o = outer.to_ref();
            let canceller = std::thread::spawn(move || {
                for _ in 0..(i % 9) * 30 {
                    std::hint::spin_loop();
                }
                o.cancel()
            });
            let r = outer.await;
            canceller.join().unwrap();
            // A task the outer one did not wait for (the waited-for task
            // when the cancel came before `wait_for` was polled: it was
            // dropped, not awaited, so it runs on; or one cancelled before
            // its first poll, which Tokio drops a moment later) ends soon
            // after.
            until_no_task_is_left().await;
            let ends: Vec<usize> = ends.iter().map(|e| count(e)).collect();
            let left: Vec<String> = asyncio::all_tasks()
                .iter()
                .map(|t| format!("{t}"))
                .collect();
            assert_eq!(ends, [1, 1, 1, 1], "round {i}: {r:?}, left: {left:?}");
            assert_eq!(
                count(&c.started),
                count(&c.ended),
                "round {i}: a cleanup was cut"
            );
            assert_eq!(
                count(&ended_at_outer_end),
                count(&c.ended),
                "round {i}: the outer task ended before a cleanup inside it: {r:?}"
            );
            assert!(asyncio::all_tasks().is_empty(), "round {i}");
        }
    });
}

/// On two workers: a timeout scope (zero: it fires at its first poll) over
/// a by-value await of a task that enters its first scope (a `finally`) on
/// another worker at that very moment. Either the task's scope is entered
/// in time, and the timeout scope waits for its cleanup before it returns,
/// or it is refused (the scope had already dropped the await) and no
/// cleanup runs: the scope never returns while a cleanup it owes runs on.
#[test]
fn a_scope_that_dropped_its_await_refuses_the_awaited_tasks_late_first_scope() {
    let rt = common::multi_thread_runtime();
    rt.block_on(async {
        for i in 0..rounds(400) {
            let c = Cleanups::default();
            let (cc, c2, ends) = (c.clone(), c.clone(), counter());
            let w_ref: Arc<std::sync::Mutex<Option<asyncio::TaskRef>>> = Arc::default();
            let wr = w_ref.clone();
            let end = CountOnDrop(ends.clone());
            let outer = asyncio::create_task(async move {
                let r = asyncio::timeout(0)
                    .run(async move {
                        let w = asyncio::create_task(async move {
                            let _end = end;
                            async {
                                for _ in 0..(i % 4) {
                                    tokio::task::yield_now().await;
                                }
                            }
                            .finally(cc.cleanup(1))
                            .await
                        });
                        *wr.lock().unwrap() = Some(w.to_ref());
                        for _ in 0..(i % 3) {
                            std::hint::spin_loop();
                        }
                        w.await
                    })
                    .await;
                (r.map(|_| ()), count(&c2.started), count(&c2.ended))
            });
            let (r, started, ended) = outer.await.unwrap();
            assert_eq!(started, ended, "round {i}: the scope returned first: {r:?}");
            until_no_task_is_left().await;
            let w = w_ref.lock().unwrap().clone();
            assert_eq!(
                count(&ends),
                1,
                "round {i}: {r:?}, started {started}, the awaited task: {:?}",
                w.map(|w| (format!("{w}"), w.done(), w.cancel_requested()))
            );
            assert_eq!(count(&c.started), count(&c.ended), "round {i}");
        }
    });
}

/// The waiting task's cancel message reaches the task `wait_for` waits
/// for (asyncio: the awaiter's `cancel(msg)` cancels its `_fut_waiter` with
/// `msg`), and its cleanup sees it.
#[tokio::test(start_paused = true)]
async fn wait_for_passes_the_waiting_tasks_cancel_message_on() {
    let log = log();
    let l = log.clone();
    let child = asyncio::create_task(asyncio::sleep(60).on_cancel(move || async move {
        let me = asyncio::current_task().unwrap();
        let why = me.cancel_requested().unwrap();
        push(&l, why.message().unwrap_or("none"));
    }));
    let child_ref = child.to_ref();
    let outer = asyncio::create_task(async move { asyncio::wait_for(child, 10).await });
    asyncio::sleep(0.1).await;
    outer.cancel_with("shutting down");
    match outer.await {
        Err(asyncio::Error::Cancelled(e)) => assert_eq!(e.message(), Some("shutting down")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(child_ref.cancelled());
    assert_eq!(entries(&log), ["shutting down"]);
}

/// A kept by-value await (`task.into_future()` polled in a `select!` over
/// `&mut`, then no longer polled) holds the cancellation as a kept
/// `on_cancel` does: the awaited task is cancelled, and waited for, only
/// once the await is polled again.
#[tokio::test(start_paused = true)]
async fn a_kept_by_value_await_holds_the_cancel_until_it_is_polled_again() {
    let (cleanups, ends, log) = (counter(), counter(), log());
    let child = child_with_slow_cleanup(&cleanups, &ends, &log);
    let l = log.clone();
    let outer = asyncio::create_task(async move {
        let mut join = std::future::IntoFuture::into_future(child);
        // Let the child enter its scope, then wait on it a little.
        asyncio::sleep(0.05).await;
        tokio::select! {
            _ = &mut join => unreachable!(),
            _ = asyncio::sleep(0.1) => {}
        }
        asyncio::sleep(1).await; // cancelled meanwhile: not interrupted
        push(&l, "went on");
        let _ = join.await; // passes the cancel on, waits for the cleanup
        unreachable!("cancelled");
    });
    asyncio::sleep(0.5).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert_eq!(
        entries(&log),
        ["went on", "child cleanup started", "child cleanup ended"]
    );
    assert_eq!((count(&cleanups), count(&ends)), (1, 1));
}

/// A timeout scope whose deadline passes while a `finally` cleans up after
/// a panic: the cleanup is not interrupted (a cleanup runs shielded, see
/// docs/differences.md), and the panic, not `Err(Timeout)`, comes out of
/// the scope once the cleanup ended.
#[tokio::test(start_paused = true)]
async fn a_deadline_during_a_cleanup_after_a_panic_lets_the_panic_through() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(async move {
        asyncio::timeout(0.5)
            .run(
                async {
                    asyncio::sleep(0.1).await;
                    panic!("body");
                }
                .finally(move || async move {
                    asyncio::sleep(1).await;
                    push(&l, "cleaned");
                }),
            )
            .await
    });
    let err = task.await.unwrap_err();
    assert!(panic_text(&err).contains("body"), "{err}");
    assert_eq!(entries(&log), ["cleaned"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
}
