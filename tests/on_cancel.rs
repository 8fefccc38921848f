//! Cancellation that lets code clean up: `on_cancel`, `finally`,
//! `TaskRef::cancel_requested`, and the rule that a returned value is never
//! lost to a late cancel. Each test names the CPython test
//! (`test_tasks.py::BaseTaskTests`, `test_taskgroups.py::TestTaskGroup`) it
//! mirrors, where there is one. Timed tests on Tokio's paused clock; races
//! on the multi-thread runtime.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::{CancelExt, Error};
use tokio::time::Instant;

use common::{entries, log, push};

/// test_taskgroup_15 (the cleanup awaits; the task stays pending
/// meanwhile), test_yield_future_passes_cancel (the handler runs, then the
/// task ends cancelled).
#[tokio::test(start_paused = true)]
async fn a_cancelled_task_runs_its_awaiting_cleanup_before_it_ends_cancelled() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(asyncio::sleep(10).on_cancel(move || async move {
        push(&l, "closing");
        asyncio::sleep(1).await;
        push(&l, "closed");
    }));
    asyncio::sleep(0.1).await;
    assert!(task.cancel());
    asyncio::sleep(0.5).await;
    assert!(!task.done(), "done() is false while the cleanup runs");
    assert_eq!(entries(&log), ["closing"]);
    let err = task.await.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(entries(&log), ["closing", "closed"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
}

/// test_task_cancel_message_getter: the cleanup sees why it runs.
#[tokio::test(start_paused = true)]
async fn the_cleanup_sees_the_cancel_message() {
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(asyncio::sleep(10).on_cancel(move || async move {
        let me = asyncio::current_task().unwrap();
        let e = me.cancel_requested().expect("a cancel was requested");
        push(&l, e.message().unwrap_or("none"));
    }));
    asyncio::sleep(0.1).await;
    assert_eq!(task.cancel_requested(), None);
    task.cancel_with("shutting down");
    assert_eq!(
        task.cancel_requested().unwrap().message(),
        Some("shutting down")
    );
    match task.await {
        Err(Error::Cancelled(e)) => assert_eq!(e.message(), Some("shutting down")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(entries(&log), ["shutting down"]);
}

/// `cancel_requested` is `None` once the task ended.
#[tokio::test(start_paused = true)]
async fn cancel_requested_is_none_after_the_end() {
    let task = asyncio::create_task(asyncio::sleep(10));
    asyncio::sleep(0).await;
    task.cancel();
    let r = task.to_ref();
    let _ = task.await;
    assert_eq!(r.cancel_requested(), None);
}

/// A further cancel while the cleanup runs does not interrupt it (CPython's
/// would: a deliberate difference).
#[tokio::test(start_paused = true)]
async fn a_second_cancel_does_not_interrupt_the_cleanup() {
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(asyncio::sleep(10).on_cancel(move || async move {
        asyncio::sleep(1).await;
        push(&l, "cleanup finished");
    }));
    asyncio::sleep(0.1).await;
    assert!(task.cancel());
    asyncio::sleep(0.5).await;
    assert!(task.cancel(), "still pending: cancel() returns true");
    assert!(!task.done());
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["cleanup finished"]);
}

/// test_cancel_yield: without any `on_cancel`, the future is dropped at its
/// next suspension point, as before.
#[tokio::test(start_paused = true)]
async fn without_on_cancel_a_cancelled_task_is_dropped_at_once() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let task = asyncio::create_task(async move {
        let _guard = dropped_tx; // dropped with the future
        asyncio::sleep(10).await;
    });
    asyncio::sleep(0.1).await;
    task.cancel();
    assert!(dropped_rx.await.is_err());
    assert!(task.await.unwrap_err().is_cancelled());
}

/// Nested `on_cancel`s in a cancelled task: innermost cleanup first.
#[tokio::test(start_paused = true)]
async fn nested_cleanups_of_a_cancelled_task_run_innermost_first() {
    let log = log();
    let (a, b) = (log.clone(), log.clone());
    let task = asyncio::create_task(
        async move {
            asyncio::sleep(10)
                .on_cancel(move || async move {
                    asyncio::sleep(0.1).await;
                    push(&a, "inner");
                })
                .await;
        }
        .on_cancel(move || async move { push(&b, "outer") }),
    );
    asyncio::sleep(0.1).await;
    task.cancel();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["inner", "outer"]);
}

/// `finally` in a cancelled task runs its cleanup once.
#[tokio::test(start_paused = true)]
async fn finally_cleans_up_once_when_the_task_is_cancelled() {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let task = asyncio::create_task(asyncio::sleep(10).finally(move || async move {
        m.fetch_add(1, Ordering::SeqCst);
    }));
    asyncio::sleep(0.1).await;
    task.cancel();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

/// A cancel that arrives while a `finally` cleans up after a normal
/// completion waits for the cleanup; the value is then kept by the
/// `finally`, and the task ends cancelled at its next suspension point.
#[tokio::test(start_paused = true)]
async fn a_cancel_during_a_finally_after_completion_waits_for_the_cleanup() {
    let log = log();
    let l = log.clone();
    let l2 = log.clone();
    let task = asyncio::create_task(async move {
        let v = asyncio::sleep_with(0.1, 5)
            .finally(move || async move {
                asyncio::sleep(1).await;
                push(&l, "released");
            })
            .await;
        push(&l2, format!("got {v}"));
        asyncio::sleep(10).await;
    });
    asyncio::sleep(0.5).await;
    task.cancel();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["released", "got 5"]);
}

/// Dropping an `OnCancel` from outside (here by `select!`) runs no cleanup.
#[tokio::test(start_paused = true)]
async fn an_outside_drop_runs_no_cleanup() {
    let log = log();
    let l = log.clone();
    let task = asyncio::create_task(async move {
        tokio::select! {
            _ = asyncio::sleep(10).on_cancel(move || async move { push(&l, "cleanup") }) => {}
            _ = asyncio::sleep(1) => {}
        }
    });
    task.await.unwrap();
    assert!(entries(&log).is_empty());
}

/// test_cancel_at_end: a task that cancels itself and then returns ends
/// finished with its value (CPython: cancelled; a deliberate difference).
#[tokio::test(start_paused = true)]
async fn a_task_that_cancels_itself_and_returns_keeps_its_value() {
    let task = asyncio::create_task(async {
        asyncio::current_task().unwrap().cancel();
        12
    });
    assert_eq!(task.await.unwrap(), 12);
}

/// test_cancel_current_task: a task that cancels itself and then awaits is
/// cancelled at that await.
#[tokio::test(start_paused = true)]
async fn a_task_that_cancels_itself_and_awaits_is_cancelled() {
    let task = asyncio::create_task(async {
        asyncio::current_task().unwrap().cancel();
        asyncio::sleep(0).await;
        12
    });
    assert!(task.await.unwrap_err().is_cancelled());
}

/// The main task of `asyncio::run` cleans up too when it is cancelled.
#[test]
fn the_main_task_of_run_cleans_up_when_cancelled() {
    let log = log();
    let l = log.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        asyncio::run(async move {
            let me = asyncio::current_task().unwrap();
            asyncio::create_task(async move {
                asyncio::sleep(0.01).await;
                me.cancel();
            });
            asyncio::sleep(10)
                .on_cancel(move || async move {
                    asyncio::sleep(0.01).await;
                    push(&l, "main cleaned up");
                })
                .await;
        })
    }));
    assert!(r.is_err(), "run() of a cancelled main task panics");
    assert_eq!(entries(&log), ["main cleaned up"]);
}

/// No value is lost to a late cancel: a value returned while a cancel
/// arrives from another thread is kept (a task running `queue.get()`
/// cannot lose its item), on the multi-thread runtime.
#[test]
fn a_value_returned_as_a_cancel_arrives_is_never_lost() {
    common::multi_thread_runtime().block_on(async {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let rx = Arc::new(Mutex::new(rx));
        let sent = 2000u32;
        for i in 0..sent {
            tx.send(i).unwrap();
        }
        let mut received = Vec::new();
        let mut cancelled = 0;
        for i in 0..sent {
            let rx = rx.clone();
            // Takes one item (like a queue's get) and returns it.
            let task = asyncio::create_task(async move {
                for _ in 0..i % 3 {
                    tokio::task::yield_now().await;
                }
                rx.lock().unwrap().try_recv().ok()
            });
            let r = task.to_ref();
            let canceller = std::thread::spawn(move || r.cancel());
            match task.await {
                Ok(Some(v)) => received.push(v),
                Ok(None) => unreachable!("every task finds an item"),
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            }
            canceller.join().unwrap();
        }
        // Every item taken was handed back: none dropped with a cancelled task.
        let left = std::iter::from_fn(|| rx.lock().unwrap().try_recv().ok()).count();
        assert_eq!(received.len() + left, sent as usize);
        assert_eq!(received.len() + cancelled, sent as usize);
    });
}

// What happened to each task of the race tests below, one flag word each.
const STARTED: u8 = 1;
const RETURNED: u8 = 2;
const CLEANED: u8 = 4;
const TWICE: u8 = 8;
const ENDED: u8 = 16;
const ENDED_TWICE: u8 = 32;

fn story_flags(n: usize) -> Arc<Vec<std::sync::atomic::AtomicU8>> {
    Arc::new((0..n).map(|_| Default::default()).collect())
}

/// No cleanup ran twice; a protected future that returned did not clean
/// up; one that started and did not return did.
fn assert_cleaned_up_as_promised(f: u8, story: &str) {
    assert!(f & TWICE == 0, "{story}");
    assert!(f & RETURNED == 0 || f & CLEANED == 0, "{story}");
    assert!(f & STARTED == 0 || f & (RETURNED | CLEANED) != 0, "{story}");
}

/// Cancels the `i`-th task of a race from a new thread (which yields first
/// for two tasks in three).
fn cancel_from_a_thread(task: asyncio::TaskRef, i: usize) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        if i % 3 != 0 {
            std::thread::yield_now();
        }
        task.cancel()
    })
}

/// Cancel racing completion racing cleanup, on the multi-thread runtime in
/// a loop, each task's story recorded in its own flags: every task ends
/// exactly once; no cleanup runs twice; a protected future that returned
/// never cleans up; one that started and did not return cleans up.
#[test]
fn cancels_racing_completion_and_cleanup_end_each_task_once_and_clean_up_once() {
    common::multi_thread_runtime().block_on(async {
        for round in 0..5 {
            let n = 2000;
            let flags = story_flags(n);
            let mut tasks = Vec::new();
            for i in 0..n {
                let (f1, f2, f3) = (flags.clone(), flags.clone(), flags.clone());
                let task = asyncio::create_task(async move {
                    async move {
                        f1[i].fetch_or(STARTED, Ordering::SeqCst);
                        for _ in 0..(i + round) % 4 {
                            tokio::task::yield_now().await;
                        }
                        f1[i].fetch_or(RETURNED, Ordering::SeqCst);
                    }
                    .on_cancel(move || async move {
                        if i % 2 == 0 {
                            tokio::task::yield_now().await;
                        }
                        if f2[i].fetch_or(CLEANED, Ordering::SeqCst) & CLEANED != 0 {
                            f2[i].fetch_or(TWICE, Ordering::SeqCst);
                        }
                    })
                    .await;
                });
                task.add_done_callback(move |_| {
                    if f3[i].fetch_or(ENDED, Ordering::SeqCst) & ENDED != 0 {
                        f3[i].fetch_or(ENDED_TWICE, Ordering::SeqCst);
                    }
                });
                let canceller = cancel_from_a_thread(task.to_ref(), i);
                tasks.push((task, canceller));
            }
            for (task, canceller) in tasks {
                canceller.join().unwrap();
                let r = task.to_ref();
                let _ = task.await;
                common::settle(&r).await; // its done callbacks ran
            }
            for (i, f) in flags.iter().enumerate() {
                let f = f.load(Ordering::SeqCst);
                let story = format!("round {round}, task {i}: flags {f:#08b}");
                assert!(f & ENDED != 0 && f & ENDED_TWICE == 0, "{story}");
                assert_cleaned_up_as_promised(f, &story);
            }
        }
        assert!(asyncio::all_tasks().is_empty());
    });
}

/// test_yield_future_passes_cancel: awaiting a task by value inside a task
/// that is cancelled cancels the awaited task and waits for its cleanup;
/// the awaiter's own cleanup runs after it.
#[tokio::test(start_paused = true)]
async fn awaiting_a_task_by_value_passes_the_cancel_on_and_waits_for_its_cleanup() {
    let t0 = Instant::now();
    let log = log();
    let (a, b) = (log.clone(), log.clone());
    let inner = asyncio::create_task(asyncio::sleep(10).on_cancel(move || async move {
        asyncio::sleep(1).await;
        push(&a, "inner cleaned up");
    }));
    let inner_ref = inner.to_ref();
    let outer = asyncio::create_task(
        async move {
            let _ = inner.await;
            unreachable!("the inner task was cancelled");
        }
        .on_cancel(move || async move { push(&b, "outer cleaned up") }),
    );
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert!(inner_ref.cancelled());
    assert_eq!(entries(&log), ["inner cleaned up", "outer cleaned up"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
}

/// A task that runs `first`, sleeps 10 s, and when cancelled cleans up for
/// 1 s, then logs "inner cleaned up".
fn slow_cleanup_task(
    log: &common::Log,
    first: impl FnOnce() + Send + 'static,
) -> asyncio::Task<()> {
    let log = log.clone();
    asyncio::create_task(
        async move {
            first();
            asyncio::sleep(10).await;
        }
        .on_cancel(move || async move {
            asyncio::sleep(1).await;
            push(&log, "inner cleaned up");
        }),
    )
}

/// test_yield_future_passes_cancel, with the awaited task created in place:
/// the awaiter's first poll finds it not yet started (no cleanup scope
/// yet); the task enters its `on_cancel` later, and the awaiter, which has
/// no scope of its own, still waits for that cleanup when cancelled.
#[tokio::test(start_paused = true)]
async fn awaiting_a_task_created_in_place_waits_for_the_cleanup_it_starts_later() {
    let t0 = Instant::now();
    let log = log();
    let a = log.clone();
    let outer = asyncio::create_task(async move {
        let inner = slow_cleanup_task(&a, || {});
        let _ = inner.await;
        unreachable!("the inner task was cancelled");
    });
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["inner cleaned up"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
}

/// test_yield_future_passes_cancel through a chain of tasks each created
/// in place and awaited by value: only the innermost has a cleanup, and
/// every awaiter waits for it.
#[tokio::test(start_paused = true)]
async fn a_chain_of_tasks_awaited_by_value_waits_for_the_innermost_cleanup() {
    let t0 = Instant::now();
    let log = log();
    let a = log.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let outer = asyncio::create_task(async move {
        let mid = asyncio::create_task(async move {
            let inner = slow_cleanup_task(&a, || {});
            tx.send(inner.to_ref()).unwrap();
            let _ = inner.await;
            unreachable!("the inner task was cancelled");
        });
        let mid_ref = mid.to_ref();
        let _ = mid.await;
        unreachable!("the middle task {mid_ref} was cancelled");
    });
    let inner = rx.await.unwrap();
    asyncio::sleep(0.1).await;
    outer.cancel_with("stop");
    let err = outer.await.unwrap_err();
    assert!(err.is_cancelled());
    assert!(inner.cancelled());
    match inner.exception() {
        Err(Error::Cancelled(e)) => assert_eq!(e.message(), Some("stop"), "passed down the chain"),
        other => panic!("expected the inner task cancelled, got {other:?}"),
    }
    assert_eq!(entries(&log), ["inner cleaned up"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1100));
}

/// A cancel that comes right after the awaited task entered its cleanup
/// scope, before the awaiter runs again, is still waited for.
#[tokio::test(start_paused = true)]
async fn a_cancel_right_after_the_awaited_task_entered_its_scope_waits_for_the_cleanup() {
    let t0 = Instant::now();
    let log = log();
    let a = log.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let outer = asyncio::create_task(async move {
        let inner = slow_cleanup_task(&a, move || tx.send(()).unwrap());
        let _ = inner.await;
    });
    rx.await.unwrap(); // the inner task is in its `on_cancel` now
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["inner cleaned up"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1000));
}

/// A by-value await inside a timeout scope of the awaiter: the scope's
/// expiry waits for the awaited task's cleanup, which started after the
/// await's first poll.
#[tokio::test(start_paused = true)]
async fn a_timeout_scope_around_a_by_value_await_waits_for_the_cleanup_started_later() {
    let t0 = Instant::now();
    let log = log();
    let a = log.clone();
    let r = asyncio::timeout(0.5)
        .run(async move {
            let inner = slow_cleanup_task(&a, || {});
            inner.await
        })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(entries(&log), ["inner cleaned up"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1500));
}

/// An awaited task that never enters a cancel scope: the awaiter's cancel
/// cancels it and does not wait (there is no cleanup to wait for).
#[tokio::test(start_paused = true)]
async fn awaiting_a_task_without_cleanups_by_value_is_cancelled_with_the_awaiter() {
    let t0 = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let outer = asyncio::create_task(async move {
        let inner = asyncio::create_task(asyncio::sleep(10));
        tx.send(inner.to_ref()).unwrap();
        let _ = inner.await;
    });
    let inner = rx.await.unwrap();
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    common::settle(&inner).await;
    assert!(inner.cancelled());
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
}

/// An awaited task with a cleanup scope that ended before the awaiter's
/// cancel: nothing is left to wait for, the awaiter ends at once.
#[tokio::test(start_paused = true)]
async fn a_task_awaited_by_value_that_ended_does_not_delay_the_awaiters_cancel() {
    let t0 = Instant::now();
    let log = log();
    let (a, b) = (log.clone(), log.clone());
    let outer = asyncio::create_task(async move {
        let inner = asyncio::create_task(async { 5 }.on_cancel(move || async move {
            push(&a, "inner cleaned up");
        }));
        let v = inner.await.unwrap();
        push(&b, if v == 5 { "got 5" } else { "wrong value" });
        asyncio::sleep(10).await;
    });
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert_eq!(entries(&log), ["got 5"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
}

/// By-value awaits of tasks created in place, cancelled from another thread
/// at any point, on the multi-thread runtime in a loop: every task ends
/// once, every cleanup that was entered runs once, and the awaiter never
/// ends before the cleanup of the task it awaited.
#[test]
fn by_value_awaits_cancelled_from_another_thread_wait_for_every_entered_cleanup() {
    const ENTERED: u8 = 1;
    const CLEANED: u8 = 2;
    const TWICE: u8 = 4;
    const EARLY: u8 = 8;
    const OUTER_ENDED: u8 = 16;
    const INNER_ENDED: u8 = 32;
    const ENDED_TWICE: u8 = 64;
    const CREATED: u8 = 128;
    let rt = common::multi_thread_runtime();
    rt.block_on(async {
        let n = 3000;
        let flags: Arc<Vec<std::sync::atomic::AtomicU8>> =
            Arc::new((0..n).map(|_| Default::default()).collect());
        let ends = |f: &std::sync::atomic::AtomicU8, bit: u8| {
            if f.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
                f.fetch_or(ENDED_TWICE, Ordering::SeqCst);
            }
        };
        let mut tasks = Vec::new();
        for i in 0..n {
            let fl = flags.clone();
            let outer = asyncio::create_task(async move {
                for _ in 0..i % 3 {
                    tokio::task::yield_now().await;
                }
                let (f1, f2, f3) = (fl.clone(), fl.clone(), fl.clone());
                let inner = asyncio::create_task(
                    async move {
                        f1[i].fetch_or(ENTERED, Ordering::SeqCst);
                        asyncio::sleep(3600).await;
                    }
                    .on_cancel(move || async move {
                        if i % 2 == 0 {
                            tokio::task::yield_now().await;
                        }
                        if f2[i].fetch_or(CLEANED, Ordering::SeqCst) & CLEANED != 0 {
                            f2[i].fetch_or(TWICE, Ordering::SeqCst);
                        }
                    }),
                );
                f3[i].fetch_or(CREATED, Ordering::SeqCst);
                inner.add_done_callback(move |_| ends(&f3[i], INNER_ENDED));
                // Awaited in this same poll: a `Task` dropped unawaited
                // would go on running.
                let _ = inner.await;
            });
            let f = flags.clone();
            outer.add_done_callback(move |_| {
                let now = f[i].load(Ordering::SeqCst);
                if now & ENTERED != 0 && now & CLEANED == 0 {
                    f[i].fetch_or(EARLY, Ordering::SeqCst);
                }
                ends(&f[i], OUTER_ENDED);
            });
            let r = outer.to_ref();
            let canceller = std::thread::spawn(move || {
                for _ in 0..i % 4 {
                    std::thread::yield_now();
                }
                r.cancel()
            });
            tasks.push((outer, canceller));
        }
        for (outer, canceller) in tasks {
            canceller.join().unwrap();
            let r = outer.to_ref();
            assert!(outer.await.unwrap_err().is_cancelled());
            common::settle(&r).await;
        }
        while !asyncio::all_tasks().is_empty() {
            asyncio::sleep(0.001).await;
        }
        for (i, f) in flags.iter().enumerate() {
            let f = f.load(Ordering::SeqCst);
            let story = format!("task {i}: flags {f:#b}");
            // No inner task when the cancel came before the outer's await.
            let ends = if f & CREATED != 0 {
                OUTER_ENDED | INNER_ENDED
            } else {
                OUTER_ENDED
            };
            assert_eq!(
                f & (OUTER_ENDED | INNER_ENDED | ENDED_TWICE),
                ends,
                "{story}"
            );
            assert_eq!(f & TWICE, 0, "{story}");
            assert_eq!(
                f & EARLY,
                0,
                "the awaiter ended before the cleanup: {story}"
            );
            assert!(f & ENTERED == 0 || f & CLEANED != 0, "{story}");
        }
    });
}

/// `(&mut task).await` does not pass the cancel on (asyncio's
/// `await asyncio.wait([t])`, test_yield_wait_does_not_shield_cancel).
#[tokio::test(start_paused = true)]
async fn awaiting_a_task_by_reference_does_not_pass_the_cancel_on() {
    let mut inner = asyncio::create_task(asyncio::sleep_with(1, 5));
    let inner_ref = inner.to_ref();
    let outer = asyncio::create_task(async move {
        // A scope in the task, and the task awaited by reference beside it.
        let _ = tokio::join!(asyncio::sleep(10).on_cancel(|| async {}), (&mut inner));
    });
    asyncio::sleep(0.1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert!(!inner_ref.cancelled());
    common::settle(&inner_ref).await;
    assert_eq!(inner_ref.result_as::<i32>().unwrap(), 5);
}

/// An `on_cancel` whose future cancels its own task at its first poll,
/// then waits; its cleanup logs `cleaned`.
fn cancels_its_task_at_its_first_poll(
    log: &common::Log,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let l = log.clone();
    asyncio::on_cancel(
        async {
            asyncio::current_task().unwrap().cancel();
            asyncio::sleep(1).await;
        },
        move || async move { push(&l, "cleaned") },
    )
}

/// The task ends cancelled, after the cleanup ran once.
async fn assert_cleaned_then_cancelled<T: Send + 'static>(
    task: asyncio::Task<T>,
    log: &common::Log,
) {
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    assert_eq!(entries(log), ["cleaned"]);
}

/// An `on_cancel` entered during the first poll of an enclosing timeout
/// scope, whose task is cancelled during that same poll (before the scope
/// around it had registered anywhere), still runs its cleanup: asyncio runs
/// the `except CancelledError:` handler of a `try:` inside `async with
/// timeout():` when the task cancels itself there.
#[tokio::test(start_paused = true)]
async fn a_cleanup_entered_in_the_first_poll_of_a_timeout_scope_runs_when_that_poll_cancels_the_task()
 {
    let log = log();
    let guarded = cancels_its_task_at_its_first_poll(&log);
    let task = asyncio::create_task(async move { asyncio::timeout(10).run(guarded).await });
    assert_cleaned_then_cancelled(task, &log).await;
}

/// The same inside `wait_for`, whose scope is made only when a scope inside
/// asks for it.
#[tokio::test(start_paused = true)]
async fn a_cleanup_entered_in_the_first_poll_of_wait_for_runs_when_that_poll_cancels_the_task() {
    let log = log();
    let guarded = cancels_its_task_at_its_first_poll(&log);
    let task = asyncio::create_task(async move { asyncio::wait_for(guarded, 10).await });
    assert_cleaned_then_cancelled(task, &log).await;
}

/// Nested: the `on_cancel` is two lazily registered scopes deep.
#[tokio::test(start_paused = true)]
async fn a_cleanup_two_unregistered_scopes_deep_runs_when_the_first_poll_cancels_the_task() {
    let log = log();
    let guarded = cancels_its_task_at_its_first_poll(&log);
    let task = asyncio::create_task(async move {
        asyncio::timeout(10)
            .run(asyncio::wait_for(guarded, 10))
            .await
    });
    assert_cleaned_then_cancelled(task, &log).await;
}

/// A cancel from another thread racing the first poll of a task whose
/// `on_cancel` sits inside a timeout scope and a `wait_for` (scopes that
/// register with the task only when needed): a protected future that
/// started and did not return always cleans up, once; every task ends once.
#[test]
fn cancels_racing_the_first_poll_inside_lazily_registered_scopes_never_cut_a_started_cleanup() {
    common::multi_thread_runtime().block_on(async {
        for round in 0..6 {
            let n = 2000;
            let flags = story_flags(n);
            let mut tasks = Vec::new();
            for i in 0..n {
                let (f1, f2) = (flags.clone(), flags.clone());
                let protected = async move {
                    f1[i].fetch_or(STARTED, Ordering::SeqCst);
                    for _ in 0..(i + round) % 3 {
                        tokio::task::yield_now().await;
                    }
                    f1[i].fetch_or(RETURNED, Ordering::SeqCst);
                }
                .on_cancel(move || async move {
                    if f2[i].fetch_or(CLEANED, Ordering::SeqCst) & CLEANED != 0 {
                        f2[i].fetch_or(TWICE, Ordering::SeqCst);
                    }
                });
                let task = if (i + round) % 2 == 0 {
                    asyncio::create_task(async move {
                        let _ = asyncio::timeout(60).run(protected).await;
                    })
                } else {
                    asyncio::create_task(async move {
                        let _ = asyncio::wait_for(protected, 60).await;
                    })
                };
                let canceller = cancel_from_a_thread(task.to_ref(), i);
                tasks.push((task, canceller));
            }
            for (task, canceller) in tasks {
                canceller.join().unwrap();
                let _ = task.await;
            }
            for (i, f) in flags.iter().enumerate() {
                let f = f.load(Ordering::SeqCst);
                let story = format!("round {round}, task {i}: flags {f:#06b}");
                assert_cleaned_up_as_promised(f, &story);
            }
        }
        assert!(asyncio::all_tasks().is_empty());
    });
}
