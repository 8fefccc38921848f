//! Timeout scopes: `timeout`, `timeout_at`, `Timeout::{run, when,
//! reschedule, expired}`. Each test names the CPython test
//! (`test_timeouts.py::TimeoutTests`) it mirrors, where there is one. All on
//! Tokio's paused clock.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::{CancelExt, Error};
use tokio::time::Instant;

use common::{entries, log, push};

/// test_timeout_basic
#[tokio::test(start_paused = true)]
async fn a_future_still_pending_at_the_deadline_is_cancelled_and_run_returns_timeout() {
    let scope = asyncio::timeout(0.01);
    let t0 = Instant::now();
    let r = scope.run(asyncio::sleep(10)).await;
    assert!(matches!(r, Err(Error::Timeout(_))));
    assert!(scope.expired());
    assert_eq!(t0.elapsed(), Duration::from_millis(10));
}

/// test_timeout_at_basic
#[tokio::test(start_paused = true)]
async fn timeout_at_takes_a_loop_time_and_when_reports_it() {
    let lp = asyncio::get_running_loop();
    let now = Instant::now();
    let scope = asyncio::timeout_at(lp.time() + 0.01);
    let when = scope.when().unwrap();
    assert!(
        when.duration_since(now).abs_diff(Duration::from_millis(10)) < Duration::from_micros(1)
    );
    let r = scope.run(asyncio::sleep(10)).await;
    assert!(r.unwrap_err().is_timeout());
    assert!(scope.expired());
}

/// test_timeout_disabled, test_timeout_at_disabled
#[tokio::test(start_paused = true)]
async fn no_deadline_never_fires() {
    let scope = asyncio::timeout(None::<Duration>);
    assert_eq!(scope.when(), None);
    assert_eq!(scope.run(asyncio::sleep_with(1000, 1)).await.unwrap(), 1);
    assert!(!scope.expired());
    let scope = asyncio::timeout_at(None);
    assert_eq!(scope.run(asyncio::sleep_with(1000, 2)).await.unwrap(), 2);
    let scope = asyncio::timeout(f64::INFINITY);
    assert_eq!(scope.when(), None);
}

/// test_timeout_not_called: the deadline is fixed when `timeout` is called.
#[tokio::test(start_paused = true)]
async fn the_deadline_is_taken_when_timeout_is_called() {
    let t0 = Instant::now();
    let scope = asyncio::timeout(10);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(scope.when(), Some(t0 + Duration::from_secs(10)));
    let r = scope.run(asyncio::sleep(100)).await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
}

/// test_timeout_zero, test_timeout_zero_sleep_zero
#[tokio::test(start_paused = true)]
async fn a_zero_timeout_fires_at_the_first_suspension() {
    let scope = asyncio::timeout(0);
    assert!(scope.run(asyncio::sleep(0)).await.unwrap_err().is_timeout());
    assert!(scope.expired());
    let scope = asyncio::timeout(0);
    assert!(
        scope
            .run(asyncio::sleep(10))
            .await
            .unwrap_err()
            .is_timeout()
    );
}

/// test_timeout_zero (no-yield case, verified on CPython): a block that
/// never suspends exits normally.
#[tokio::test(start_paused = true)]
async fn a_zero_timeout_lets_a_future_that_is_ready_at_once_return() {
    let scope = asyncio::timeout(0);
    assert_eq!(scope.run(async { 5 }).await.unwrap(), 5);
    assert!(!scope.expired());
}

/// test_timeout_in_the_past_sleep_zero
#[tokio::test(start_paused = true)]
async fn a_deadline_in_the_past_fires_at_the_first_suspension() {
    let lp = asyncio::get_running_loop();
    let scope = asyncio::timeout_at(lp.time() - 11.0);
    assert!(scope.run(asyncio::sleep(0)).await.unwrap_err().is_timeout());
    assert!(scope.expired());
}

/// test_foreign_exception_passed
#[tokio::test(start_paused = true)]
async fn a_panic_inside_passes_through_and_the_scope_has_not_expired() {
    let scope = asyncio::timeout(0.01);
    let s = scope.clone();
    let task = asyncio::create_task(async move {
        let _ = s
            .run(async {
                asyncio::sleep(0).await;
                panic!("foreign");
            })
            .await;
    });
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    assert!(!scope.expired());
}

/// test_nested_timeouts: same deadline; both expire, only the outer one
/// reports `Err(Timeout)`.
#[tokio::test(start_paused = true)]
async fn nested_scopes_with_one_deadline_both_expire_and_only_the_outer_reports() {
    let outer = asyncio::timeout(0.01);
    let inner = asyncio::timeout(0.01);
    let reached = Arc::new(Mutex::new(false));
    let r2 = reached.clone();
    let i = inner.clone();
    let r = outer
        .run(async move {
            let _ = i.run(asyncio::sleep(10)).await;
            *r2.lock().unwrap() = true; // the inner scope must not return
        })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(outer.expired());
    assert!(inner.expired());
    assert!(!*reached.lock().unwrap());
}

/// test_nested_timeouts_concurrent: the outer deadline fires first; the
/// inner scope passes it on and has not expired.
#[tokio::test(start_paused = true)]
async fn an_inner_scope_passes_an_outer_expiry_on_unconverted() {
    let outer = asyncio::timeout(0.002);
    let inner = asyncio::timeout(0.1);
    let i = inner.clone();
    let r = outer
        .run(async move { i.run(asyncio::sleep(1)).await })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(outer.expired());
    assert!(!inner.expired());
}

/// test_nested_timeouts_loop_busy: the inner scope converts its own expiry,
/// the code around it goes on, and the outer scope fires on its own later.
#[tokio::test(start_paused = true)]
async fn an_inner_expiry_is_converted_and_the_outer_scope_fires_later() {
    let t0 = Instant::now();
    let outer = asyncio::timeout(1);
    let inner = asyncio::timeout(0.1);
    let i = inner.clone();
    let r = outer
        .run(async move {
            let inner_r = i.run(asyncio::sleep(10)).await;
            assert!(inner_r.unwrap_err().is_timeout());
            asyncio::sleep(10).await;
        })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(inner.expired() && outer.expired());
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

/// test_reschedule: from inside, from another task; `when()` follows.
#[tokio::test(start_paused = true)]
async fn reschedule_moves_the_deadline_from_inside_and_from_another_task() {
    let t0 = Instant::now();
    let scope = asyncio::timeout(1);
    let inside = scope.clone();
    let outside = scope.clone();
    let mover = asyncio::create_task(async move {
        asyncio::sleep(0.5).await;
        outside.reschedule(t0 + Duration::from_secs(3));
    });
    let r = scope
        .run(async move {
            asyncio::sleep(2).await; // past the first deadline: moved meanwhile
            inside.reschedule(None);
            asyncio::sleep(10).await; // no deadline left
            "done"
        })
        .await;
    assert_eq!(r.unwrap(), "done");
    assert_eq!(scope.when(), None);
    assert!(!scope.expired());
    mover.await.unwrap();
}

/// test_reschedule (earlier): moving the deadline nearer wakes the scope.
#[tokio::test(start_paused = true)]
async fn rescheduling_to_an_earlier_deadline_fires_then() {
    let t0 = Instant::now();
    let scope = asyncio::timeout(100);
    let s = scope.clone();
    asyncio::create_task(async move {
        asyncio::sleep(1).await;
        s.reschedule(Instant::now() + Duration::from_secs(1));
    });
    let r = scope.run(asyncio::sleep(1000)).await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
}

/// CPython refuses `reschedule` before entry (test_timeout_not_entered);
/// here it works, as API.md allows.
#[tokio::test(start_paused = true)]
async fn reschedule_before_run_is_allowed() {
    let t0 = Instant::now();
    let scope = asyncio::timeout(None::<Duration>);
    scope.reschedule(t0 + Duration::from_secs(2));
    assert!(scope.run(asyncio::sleep(5)).await.unwrap_err().is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
}

/// test_timeout_already_entered, test_timeout_double_enter
#[tokio::test(start_paused = true)]
#[should_panic(expected = "Timeout has already been entered")]
async fn running_one_scope_twice_panics() {
    let scope = asyncio::timeout(1);
    let _first = scope.run(async {});
    let _second = scope.clone().run(async {});
}

/// Every order of runs, clones and reschedules on one thread: the second
/// run of a scope panics at `run`, through the same handle or any clone,
/// whether the first run was ready at once (it made no shared state), went
/// pending, or had not been polled.
#[tokio::test(start_paused = true)]
async fn a_second_run_panics_at_run_in_every_order() {
    // (The refused runs' panic messages go to this test's captured output.)
    fn refused(f: impl FnOnce()) -> bool {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => false,
            Err(e) => {
                let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(msg.contains("already been entered"), "{msg}");
                true
            }
        }
    }
    // The first handle ran a ready future (no shared state): then a clone,
    // made afterwards, cannot run, nor can the handle again.
    let scope = asyncio::timeout(1);
    assert_eq!(scope.run(async { 1 }).await.unwrap(), 1);
    let clone = scope.clone();
    assert!(refused(|| drop(clone.run(async {}))));
    assert!(refused(|| drop(scope.run(async {}))));

    // A clone ran first: the first handle cannot.
    let scope = asyncio::timeout(1);
    let clone = scope.clone();
    assert_eq!(clone.run(async { 2 }).await.unwrap(), 2);
    assert!(refused(|| drop(scope.run(async {}))));
    assert!(refused(|| drop(scope.clone().run(async {}))));

    // Rescheduled (so linked) before its run, which went pending.
    let scope = asyncio::timeout(1);
    scope.reschedule(None::<Instant>);
    assert!(scope.run(asyncio::sleep(0.5)).await.is_ok());
    assert!(refused(|| drop(scope.clone().run(async {}))));

    // A run made but never polled still counts.
    let scope = asyncio::timeout(1);
    let run = scope.run(async {});
    assert!(refused(|| drop(scope.clone().run(async {}))));
    drop(run);

    // Clones of clones share it too.
    let scope = asyncio::timeout(1);
    let a = scope.clone();
    let b = a.clone();
    assert!(b.run(async {}).await.is_ok());
    assert!(refused(|| drop(a.run(async {}))));
    assert!(refused(|| drop(scope.run(async {}))));
}

/// A result ready at the poll that sees the deadline is kept (CPython's
/// `timeout()` loses it; `wait_for` keeps it).
#[tokio::test(start_paused = true)]
async fn a_result_ready_at_the_deadline_is_kept() {
    let scope = asyncio::timeout(1);
    let r = scope.run(asyncio::sleep_with(1, "raced")).await;
    assert_eq!(r.unwrap(), "raced");
}

/// test_outer_task_is_not_cancelled
#[tokio::test(start_paused = true)]
async fn the_task_around_an_expired_scope_is_not_cancelled() {
    let task = asyncio::create_task(async {
        let r = asyncio::timeout(0.01).run(asyncio::sleep(10)).await;
        assert!(r.unwrap_err().is_timeout());
        asyncio::sleep(1).await;
        "after"
    });
    assert_eq!(task.await.unwrap(), "after");
}

/// At the deadline the cleanup runs to its end (it may await) before `run`
/// returns `Err(Timeout)`.
#[tokio::test(start_paused = true)]
async fn the_deadline_waits_for_an_awaiting_cleanup() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let r = asyncio::timeout(1)
        .run(asyncio::sleep(10).on_cancel(|| async move {
            push(&l, "cleanup start");
            asyncio::sleep(0.5).await;
            push(&l, "cleanup end");
        }))
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_millis(1500));
    assert_eq!(entries(&log), ["cleanup start", "cleanup end"]);
}

/// Nested `on_cancel`s clean up innermost first; a `finally` between them
/// too.
#[tokio::test(start_paused = true)]
async fn nested_cleanups_run_innermost_first() {
    let log = log();
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    let inner = asyncio::sleep(10).on_cancel(|| async move {
        asyncio::sleep(0.1).await;
        push(&a, "inner");
    });
    let middle = async move {
        inner.await;
        unreachable!("the inner future was cancelled")
    }
    .finally(|| async move {
        asyncio::sleep(0.1).await;
        push(&b, "middle");
    });
    let outer = middle.on_cancel(|| async move { push(&c, "outer") });
    let r = asyncio::timeout(1).run(outer).await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(entries(&log), ["inner", "middle", "outer"]);
}

/// A cleanup is not interrupted by the deadline that caused it, and a
/// timeout scope inside a cleanup still limits it.
#[tokio::test(start_paused = true)]
async fn a_timeout_inside_a_cleanup_limits_it() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let r = asyncio::timeout(1)
        .run(asyncio::sleep(10).on_cancel(|| async move {
            let r = asyncio::timeout(2).run(asyncio::sleep(100)).await;
            push(
                &l,
                format!("goodbye timed out: {}", r.unwrap_err().is_timeout()),
            );
        }))
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    assert_eq!(entries(&log), ["goodbye timed out: true"]);
}

/// `finally` runs its cleanup after a normal completion too, and resolves
/// after it.
#[tokio::test(start_paused = true)]
async fn finally_cleans_up_after_a_normal_completion() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let r = asyncio::timeout(10)
        .run(asyncio::sleep_with(1, 7).finally(|| async move {
            asyncio::sleep(1).await;
            push(&l, "closed");
        }))
        .await;
    assert_eq!(r.unwrap(), 7);
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert_eq!(entries(&log), ["closed"]);
}

/// `on_cancel` does not run its cleanup after a normal completion.
#[tokio::test(start_paused = true)]
async fn on_cancel_does_not_clean_up_after_a_normal_completion() {
    let log = log();
    let l = log.clone();
    let r = asyncio::timeout(10)
        .run(asyncio::sleep_with(1, 7).on_cancel(|| async move { push(&l, "cleanup") }))
        .await;
    assert_eq!(r.unwrap(), 7);
    assert!(entries(&log).is_empty());
}

/// Only the branch with a cleanup waits: `join!` of a protected and an
/// unprotected future, both cancelled by the deadline.
#[tokio::test(start_paused = true)]
async fn a_cleanup_in_one_branch_of_a_join_runs_and_the_scope_waits_for_it() {
    let log = log();
    let l = log.clone();
    let r = asyncio::timeout(1)
        .run(async move {
            tokio::join!(
                asyncio::sleep(10),
                asyncio::sleep(10).on_cancel(|| async move {
                    asyncio::sleep(0.2).await;
                    push(&l, "branch cleanup");
                })
            )
        })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(entries(&log), ["branch cleanup"]);
}

/// Dropping a `run` from outside drops its future without its cleanup.
#[tokio::test(start_paused = true)]
async fn dropping_the_run_from_outside_skips_the_cleanup() {
    let log = log();
    let l = log.clone();
    let scope = asyncio::timeout(10);
    let run = scope.run(asyncio::sleep(10).on_cancel(|| async move {
        push(&l, "cleanup");
    }));
    let r = tokio::time::timeout(Duration::from_secs(1), run).await;
    assert!(r.is_err());
    assert!(entries(&log).is_empty());
}

/// test_timeout_taskgroup: at the deadline a group inside the scope is shut
/// down (its children cancelled), and the scope reports the expiry.
#[tokio::test(start_paused = true)]
async fn a_task_group_inside_a_scope_is_shut_down_at_the_deadline() {
    let scope = asyncio::timeout(1);
    let children = Arc::new(Mutex::new(Vec::new()));
    let c = children.clone();
    let r = scope
        .run(asyncio::task_group(move |tg| async move {
            c.lock()
                .unwrap()
                .push(tg.create_task(asyncio::sleep(10)).to_ref());
            c.lock()
                .unwrap()
                .push(tg.create_task(asyncio::sleep(10)).to_ref());
            asyncio::sleep(10).await;
        }))
        .await;
    assert!(r.unwrap_err().is_timeout());
    for child in children.lock().unwrap().iter() {
        assert!(child.cancelled());
    }
}

// ------------------------------------------------ lazily registered scopes
// A scope around a future registers with the enclosing scope (and makes its
// cancel-scope node) only once the future is pending or a scope inside asks
// for it, and its shared state is reused across scopes of one thread: the
// tests below check each way into such a scope.

/// Rescheduled through the very handle that runs it (no clone), from a
/// branch running beside it, while the future is pending.
#[tokio::test(start_paused = true)]
async fn the_handle_that_runs_a_scope_reschedules_it_while_it_runs() {
    let t0 = Instant::now();
    let scope = asyncio::timeout(10);
    let (r, ()) = tokio::join!(scope.run(asyncio::sleep(5)), async {
        asyncio::sleep(1).await;
        scope.reschedule(t0 + Duration::from_secs(2));
    });
    assert!(r.unwrap_err().is_timeout());
    assert!(scope.expired());
    assert_eq!(scope.when(), Some(t0 + Duration::from_secs(2)));
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
}

/// A clone made after `run` began shares the scope: its `reschedule` moves
/// the running scope's deadline, and it sees the expiry; here the run is in
/// another task, which holds the only other reference to the handle.
#[tokio::test(start_paused = true)]
async fn a_clone_made_after_run_began_moves_the_running_deadline() {
    let t0 = Instant::now();
    let scope = Arc::new(asyncio::timeout(1));
    let runner = scope.clone();
    let run = asyncio::create_task(async move { runner.run(asyncio::sleep(5)).await });
    asyncio::sleep(0.5).await; // the run is pending by now
    let late = (*scope).clone();
    drop(scope);
    late.reschedule(t0 + Duration::from_secs(3));
    assert!(run.await.unwrap().unwrap_err().is_timeout());
    assert!(late.expired());
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
}

/// A clone made inside the run's first poll, from the handle the run
/// borrows, shares the scope with a scope inside that registered in that
/// same poll: the clone's `reschedule` reaches the run.
#[tokio::test(start_paused = true)]
async fn a_clone_made_during_the_first_poll_shares_the_scope() {
    let t0 = Instant::now();
    let scope = asyncio::timeout(10);
    let r = scope
        .run(async {
            // Registers this scope (and makes its shared state) first.
            let inner = asyncio::timeout(None::<Duration>);
            let guarded = inner.run(asyncio::sleep(0).on_cancel(|| async {}));
            let late = scope.clone();
            late.reschedule(t0 + Duration::from_secs(1));
            let _ = guarded.await;
            asyncio::sleep(5).await;
        })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(scope.expired());
    assert_eq!(scope.when(), Some(t0 + Duration::from_secs(1)));
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

/// A `reschedule` from inside the future, through the handle the run
/// borrows, during the run's first poll, is what an inner scope's expiry
/// sees in that same poll: both deadlines are due, so the outer scope
/// reports the expiry and the inner one passes it on.
#[tokio::test(start_paused = true)]
async fn a_reschedule_during_the_first_poll_is_seen_by_an_inner_scope_in_that_poll() {
    let t0 = Instant::now();
    let outer = asyncio::timeout(10);
    let inner = asyncio::timeout(0);
    let r = outer
        .run(async {
            outer.reschedule(t0);
            inner.run(std::future::pending::<()>()).await
        })
        .await;
    assert!(r.unwrap_err().is_timeout(), "the outer scope reports");
    assert!(outer.expired());
    assert!(inner.expired());
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

/// `expired()` and `when()` read from inside the first poll see what that
/// poll did to the scope, before the handle is linked.
#[tokio::test(start_paused = true)]
async fn when_and_expired_during_the_first_poll() {
    let t0 = Instant::now();
    let outer = asyncio::timeout(0);
    let r = outer
        .run(async {
            assert_eq!(outer.when(), Some(t0));
            assert!(!outer.expired());
            // An inner scope due at once expires the outer one too.
            let inner = asyncio::timeout(0);
            let r = inner.run(std::future::pending::<()>()).await;
            unreachable!("cancelled by the outer scope: {r:?}");
        })
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(outer.expired());
}

/// Handles shared between threads: a clone made and run on one worker
/// races the first `run` and poll of the handle on the other (the multi-
/// thread runtime): exactly one of the two runs is allowed, whichever order
/// they come in (a run that goes pending is refused at its first poll at
/// the latest), and a `reschedule` made before a run is polled reaches it.
#[test]
fn clones_and_runs_race_across_threads() {
    // The refused run's panic is expected: keep it out of the output.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("already been entered") {
            default(info);
        }
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    /// The run's result, or `None` if it was refused: at `run`, or, when it
    /// began at the same moment as the other, at its first poll.
    async fn try_run(scope: &asyncio::Timeout) -> Option<asyncio::Result<()>> {
        use futures::FutureExt;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scope.run(asyncio::sleep(0.001).on_cancel(|| async {}))
        }));
        std::panic::AssertUnwindSafe(run.ok()?)
            .catch_unwind()
            .await
            .ok()
    }
    rt.block_on(async {
        for _ in 0..500 {
            let scope = Arc::new(asyncio::timeout(100));
            let other = scope.clone();
            let racer = tokio::spawn(async move {
                let clone = (*other).clone();
                clone.reschedule(None::<Instant>);
                try_run(&clone).await
            });
            let mine = try_run(&scope).await;
            let theirs = racer.await.unwrap();
            assert!(
                mine.is_some() != theirs.is_some(),
                "exactly one run: {mine:?} {theirs:?}"
            );
            if let Some(r) = theirs {
                assert!(r.is_ok(), "rescheduled before its run: {r:?}");
            }
            if let Some(r) = mine {
                assert!(r.is_ok(), "100 s, or no deadline: {r:?}");
            }
            assert!(!scope.expired());
        }
    });
}

/// A scope whose handle is a temporary lives to the end of the statement
/// that awaits its run, and fires.
#[tokio::test(start_paused = true)]
async fn a_temporary_handle_lives_through_the_awaited_run() {
    assert!(
        asyncio::timeout(1)
            .run(asyncio::sleep(5))
            .await
            .unwrap_err()
            .is_timeout()
    );
}
