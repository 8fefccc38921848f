//! Edge cases of the timeout scope's lazy first poll: panics during it,
//! deep nesting with reschedules made inside it, pooled shared states reused
//! across scopes, and handles shared between threads. No CPython test
//! mirrors these: they check this crate's way of making a scope's shared
//! state only when needed. On Tokio's paused clock, except the races (a
//! real multi-thread runtime, with no timed waits).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use asyncio::CancelExt;
use tokio::time::Instant;

/// Polls `inner` each time; panics at the first poll, after `inner`'s
/// first poll (so a scope inside `inner` has registered by then).
struct PanicsOnce<F> {
    inner: Pin<Box<F>>,
    panicked: bool,
}

impl<F: Future> Future for PanicsOnce<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.inner.as_mut().poll(cx);
        if !self.panicked {
            self.panicked = true;
            panic!("first poll");
        }
        r
    }
}

fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let s = info.to_string();
        if !s.contains("first poll") && !s.contains("already been entered") {
            default(info);
        }
    }));
}

/// A run whose first poll panicked after a scope inside registered it, the
/// panic caught around that poll and the run polled again: its handle
/// still moves its deadline and sees its expiry.
#[tokio::test(start_paused = true)]
async fn a_run_polled_again_after_its_first_poll_panicked_keeps_its_handle() {
    quiet_panics();
    let t0 = Instant::now();
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = cleaned.clone();
    let scope = asyncio::timeout(100);
    let mut run = pin!(scope.run(PanicsOnce {
        inner: Box::pin(std::future::pending::<()>().on_cancel(move || async move {
            c.fetch_add(1, Ordering::SeqCst);
        })),
        panicked: false,
    }));
    std::future::poll_fn(|cx| {
        let r = catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx)));
        assert!(r.is_err(), "the first poll panicked");
        Poll::Ready(())
    })
    .await;
    scope.reschedule(t0 + Duration::from_secs(1));
    let r = run.await;
    assert!(r.unwrap_err().is_timeout());
    assert!(scope.expired());
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
}

/// A panic caught inside a scope's first poll, around the first poll of a
/// scope inside it that had registered both: the rest of that first poll
/// sees a consistent context (the outer scope's registration, its deadline
/// moved through its handle), and so do the scopes made later on this
/// thread.
#[tokio::test(start_paused = true)]
async fn a_panic_caught_inside_a_first_poll_leaves_the_scopes_around_it_working() {
    quiet_panics();
    let t0 = Instant::now();
    for round in 0..3 {
        let outer = asyncio::timeout(10);
        let middle = asyncio::timeout(20);
        let r = outer
            .run(async {
                let inner = asyncio::timeout(30);
                {
                    let run = inner.run(PanicsOnce {
                        inner: Box::pin(std::future::pending::<()>().on_cancel(|| async {})),
                        panicked: false,
                    });
                    let mut run = pin!(middle.run(run));
                    std::future::poll_fn(|cx| {
                        let r = catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx)));
                        assert!(r.is_err(), "the innermost first poll panicked");
                        Poll::Ready(())
                    })
                    .await;
                }
                assert!(!outer.expired() && !middle.expired() && !inner.expired());
                assert_eq!(middle.when(), Some(t0 + Duration::from_secs(20)));
                // Still in the outer scope's first poll: a zero timeout
                // inside expires on its own (the outer deadline is not due).
                let zero = asyncio::timeout(0);
                assert!(zero.run(std::future::pending::<()>()).await.is_err());
                assert!(zero.expired() && !outer.expired());
                outer.reschedule(Instant::now());
                std::future::pending::<()>().await
            })
            .await;
        assert!(r.unwrap_err().is_timeout(), "round {round}");
        assert!(outer.expired());
        assert_eq!(outer.when(), Some(t0));
        assert!(!middle.expired());
    }
    // Scopes made afterwards nest as usual: the outer one reports an
    // expiry due for both.
    let outer = asyncio::timeout(0);
    let inner = asyncio::timeout(0);
    let r = outer
        .run(async { inner.run(std::future::pending::<()>()).await })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(outer.expired() && inner.expired());
}

/// Three nested scopes, each deadline moved during the first poll from
/// inside the innermost one: the outer one through the handle its run
/// borrows, the middle one through a clone made there, the innermost due
/// at once. All three are due when the innermost one arms its timer: the
/// outermost reports, the others pass it on, and the cleanups run once.
#[tokio::test(start_paused = true)]
async fn three_nested_scopes_rescheduled_inside_the_first_poll() {
    let t0 = Instant::now();
    for pre_cloned in [false, true] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let outer = asyncio::timeout(100);
        let middle = asyncio::timeout(None::<Duration>);
        let _early = pre_cloned.then(|| middle.clone());
        let inner = asyncio::timeout(0);
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        let r = outer
            .run(
                async {
                    let r = middle
                        .run(
                            async {
                                let r = inner
                                    .run(
                                        async {
                                            outer.reschedule(t0);
                                            middle.clone().reschedule(t0);
                                            assert_eq!(outer.when(), Some(t0));
                                            assert_eq!(middle.when(), Some(t0));
                                            std::future::pending::<()>().await
                                        }
                                        .on_cancel(
                                            move || async move { l3.lock().unwrap().push("inner") },
                                        ),
                                    )
                                    .await;
                                unreachable!("the inner scope passes it on: {r:?}")
                            }
                            .finally(move || async move { l2.lock().unwrap().push("middle") }),
                        )
                        .await;
                    unreachable!("the middle scope passes it on: {r:?}")
                }
                .on_cancel(move || async move { l1.lock().unwrap().push("outer") }),
            )
            .await;
        assert!(r.unwrap_err().is_timeout());
        assert!(outer.expired() && middle.expired() && inner.expired());
        assert_eq!(middle.when(), Some(t0));
        assert_eq!(*log.lock().unwrap(), ["inner", "middle", "outer"]);
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }
}

/// Inner scopes of every kind registering during a timeout scope's first
/// poll (a task group, `wait_for`, a by-value task await, `finally`), with
/// a zero, a past, no, and a later deadline: the scope whose deadline is
/// due reports it, and every cleanup runs once.
#[tokio::test(start_paused = true)]
async fn every_kind_of_inner_scope_in_the_first_poll() {
    tokio::time::advance(Duration::from_secs(5)).await;
    for i in 0..4 {
        for kind in 0..4 {
            let cleanups = Arc::new(AtomicUsize::new(0));
            let c = cleanups.clone();
            let start = Instant::now();
            let at = [
                Some(start),
                Some(start - Duration::from_secs(5)),
                None,
                Some(start + Duration::from_secs(1)),
            ][i];
            let scope = asyncio::timeout_at(at);
            let guarded = async move {
                asyncio::sleep(2).await;
            }
            .finally(move || async move {
                c.fetch_add(1, Ordering::SeqCst);
            });
            let r = match kind {
                0 => scope
                    .run(asyncio::task_group(|tg| async move {
                        tg.create_task(guarded);
                    }))
                    .await
                    .map(drop),
                1 => scope
                    .run(async move { asyncio::wait_for(guarded, 100).await.unwrap() })
                    .await
                    .map(drop),
                2 => scope
                    .run(async move { asyncio::create_task(guarded).await.unwrap() })
                    .await
                    .map(drop),
                _ => scope.run(guarded).await.map(drop),
            };
            let due = at.is_some_and(|at| at <= start);
            let later = at.is_some();
            assert_eq!(r.is_err(), later, "deadline {i}, kind {kind}: {r:?}");
            assert_eq!(scope.expired(), later, "deadline {i}, kind {kind}");
            let took = if due {
                Duration::ZERO
            } else if later {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(2)
            };
            // A task group lets its child run to its first await.
            tokio::task::yield_now().await;
            assert_eq!(start.elapsed(), took, "deadline {i}, kind {kind}");
            // A task cancelled before it started never runs, so neither
            // does its cleanup (a task group's child, an awaited task).
            let entered = !(due && (kind == 0 || kind == 2));
            assert_eq!(
                cleanups.load(Ordering::SeqCst),
                usize::from(entered),
                "deadline {i}, kind {kind}"
            );
        }
    }
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Busy for a moment, without yielding: widens the first poll, so that
/// the other thread's call lands inside it.
fn spin(n: usize) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

/// A hang guard only (the races below finish at once).
async fn no_hang<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("hung")
}

/// Another thread moves a scope's deadline into the past through the very
/// handle the run borrows, or through a clone it makes, while the run's
/// first poll is registering a scope inside it: the run always ends with
/// `Err(Timeout)` at the moved deadline, its handle sees the expiry, and
/// the cleanup inside runs once.
#[test]
fn a_reschedule_from_another_thread_during_the_first_poll_reaches_the_run() {
    multi_thread().block_on(async {
        for i in 0..400 {
            let scope = Arc::new(asyncio::timeout(None::<Duration>));
            let cleanups = Arc::new(AtomicUsize::new(0));
            let (s, c) = (scope.clone(), cleanups.clone());
            let runner = tokio::spawn(async move {
                s.run(async {
                    tokio::join!(
                        std::future::pending::<()>().on_cancel(move || async move {
                            c.fetch_add(1, Ordering::SeqCst);
                        }),
                        async {
                            spin(8000);
                            std::future::pending::<()>().await
                        }
                    )
                })
                .await
            });
            let at = Instant::now();
            spin(2000);
            if i % 2 == 0 {
                scope.reschedule(at);
            } else {
                scope.as_ref().clone().reschedule(at);
            }
            let r = no_hang(runner).await.unwrap();
            assert!(r.unwrap_err().is_timeout(), "round {i}");
            assert!(scope.expired(), "round {i}");
            assert_eq!(scope.when(), Some(at), "round {i}");
            assert_eq!(cleanups.load(Ordering::SeqCst), 1, "round {i}");
        }
    });
}

/// A scope that expires during its first poll (a zero timeout inside fires
/// it, both being due) while another thread links the handle (a clone, a
/// `when`): the expiry is kept whichever shared state the handle ends up
/// with, and the outer scope reports it.
#[test]
fn an_expiry_during_the_first_poll_survives_a_link_from_another_thread() {
    multi_thread().block_on(async {
        for i in 0..400 {
            let scope = Arc::new(asyncio::timeout(0));
            let s = scope.clone();
            let runner = tokio::spawn(async move {
                s.run(async {
                    spin(2000);
                    asyncio::timeout(0).run(std::future::pending::<()>()).await
                })
                .await
            });
            spin(2000);
            let clone = scope.as_ref().clone();
            let r = no_hang(runner).await.unwrap();
            assert!(r.unwrap_err().is_timeout(), "round {i}");
            assert!(scope.expired() && clone.expired(), "round {i}");
        }
    });
}

/// A run polled first on one task, then moved to another task (another
/// worker, maybe) and polled there, while a third task moves its deadline
/// (nearer, then away, then into the past): it ends at the last deadline.
#[test]
// The first task polls the run once and hands it back, unawaited, on purpose.
#[allow(clippy::async_yields_async)]
fn a_run_moved_between_tasks_follows_reschedules_from_a_third() {
    multi_thread().block_on(async {
        for i in 0..200 {
            let scope: &'static asyncio::Timeout = Box::leak(Box::new(asyncio::timeout(100)));
            let cleanups = Arc::new(AtomicUsize::new(0));
            let c = cleanups.clone();
            let mut run = Box::pin(scope.run(std::future::pending::<()>().on_cancel(
                move || async move {
                    c.fetch_add(1, Ordering::SeqCst);
                },
            )));
            let run = tokio::spawn(async move {
                std::future::poll_fn(|cx| {
                    assert!(run.as_mut().poll(cx).is_pending());
                    Poll::Ready(())
                })
                .await;
                run
            })
            .await
            .unwrap();
            let finisher = tokio::spawn(run);
            let mover = tokio::spawn(async move {
                scope.reschedule(Instant::now() + Duration::from_secs(1000));
                tokio::task::yield_now().await;
                scope.clone().reschedule(None::<Instant>);
                tokio::task::yield_now().await;
                scope.reschedule(Instant::now());
            });
            mover.await.unwrap();
            let r = no_hang(finisher).await.unwrap();
            assert!(r.unwrap_err().is_timeout(), "round {i}");
            assert!(scope.expired());
            assert_eq!(cleanups.load(Ordering::SeqCst), 1);
        }
    });
}
