//! `gather`, `gather!`, `try_gather`, as asyncio behaves.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::Error;
use futures::FutureExt;
use tokio::time::Instant;

use common::{say_after, settle};

/// The `say_after` gather example, reproduced exactly: three `say_after`
/// tasks print `1-2-1-3-1-2-1-1-3-2-2-3-2-3-3-` and the gather returns
/// `['Done.', 'Done.', 'Done.']` in input order, as CPython prints.
#[tokio::test(start_paused = true)]
async fn say_after_example_prints_cpythons_output() {
    let out = Arc::new(Mutex::new(String::new()));
    let say_after = |delay, what| say_after(&out, delay, what);
    let result = asyncio::gather([say_after(3, "3-"), say_after(1, "1-"), say_after(2, "2-")])
        .await
        .unwrap();
    out.lock().unwrap().push_str(&format!("{result:?}"));
    assert_eq!(
        *out.lock().unwrap(),
        r#"1-2-1-3-1-2-1-1-3-2-2-3-2-3-3-["Done.", "Done.", "Done."]"#
    );
}

/// Results in argument order whatever the completion order.
#[tokio::test(start_paused = true)]
async fn results_in_input_order_whatever_completion_order() {
    let r = asyncio::gather([
        asyncio::sleep_with(0.3, 1),
        asyncio::sleep_with(0.1, 2),
        asyncio::sleep_with(0.2, 3),
    ])
    .await;
    assert_eq!(r, Ok(vec![1, 2, 3]));
}

/// Inputs are scheduled as tasks when gather is called; they run
/// even if the gather is never awaited.
#[tokio::test(start_paused = true)]
async fn inputs_run_when_gather_is_called_even_if_never_awaited() {
    let ran = Arc::new(AtomicUsize::new(0));
    let inputs: Vec<_> = (0..3)
        .map(|_| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        })
        .collect();
    let g = asyncio::gather(inputs);
    let children = g.tasks();
    assert!(children.iter().all(|c| asyncio::all_tasks().contains(c)));
    asyncio::sleep(0.01).await;
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    drop(g); // finished children: nothing to cancel
    assert!(children.iter().all(|c| c.done() && !c.cancelled()));
}

/// Empty input resolves to `Ok(vec![])` at the first poll.
#[tokio::test(start_paused = true)]
async fn empty_input_is_ok_empty_at_once() {
    let g = asyncio::gather(Vec::<asyncio::Task<u8>>::new());
    assert_eq!(g.now_or_never(), Some(Ok(vec![])));
    assert_eq!(asyncio::gather!().now_or_never(), Some(Ok(())));
}

/// When every child is already done, gather resolves at its first
/// poll.
#[tokio::test(start_paused = true)]
async fn all_children_done_resolves_at_first_poll() {
    let a = asyncio::create_task(async { 1 });
    let b = asyncio::create_task(async { 2 });
    settle(&a).await;
    settle(&b).await;
    assert_eq!(asyncio::gather([a, b]).now_or_never(), Some(Ok(vec![1, 2])));
}

/// The first panic ends the gather at once with that error;
/// the other children keep running and finish.
#[tokio::test(start_paused = true)]
async fn first_panic_returns_at_once_and_siblings_keep_running() {
    let start = Instant::now();
    let slow = asyncio::create_task(asyncio::sleep_with(10, 1));
    let slow_ref = slow.to_ref();
    let bad = asyncio::create_task(async {
        asyncio::sleep(1).await;
        panic!("boom");
    });
    let err = asyncio::gather([slow, bad]).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    match err {
        Error::Panicked(p) => assert_eq!(p.message(), "boom"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!slow_ref.done());
    settle(&slow_ref).await;
    assert!(
        !slow_ref.cancelled(),
        "a sibling of the failure is not cancelled"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

/// "first" is in completion order, not input order.
#[tokio::test(start_paused = true)]
async fn first_error_is_first_in_completion_order() {
    let late = asyncio::create_task(async {
        asyncio::sleep(2).await;
        panic!("late");
    });
    let early = asyncio::create_task(async {
        asyncio::sleep(1).await;
        panic!("early");
    });
    match asyncio::gather([late, early]).await {
        Err(Error::Panicked(p)) => assert_eq!(p.message(), "early"),
        other => panic!("unexpected {other:?}"),
    }
}

/// A child cancelled from outside ends the gather with
/// `Err(Cancelled)`, carrying the child's message.
#[tokio::test(start_paused = true)]
async fn child_cancelled_from_outside_ends_gather_with_cancelled() {
    let a = asyncio::create_task(asyncio::sleep_with(5, 1));
    let b = asyncio::create_task(asyncio::sleep_with(5, 2));
    let b_ref = b.to_ref();
    let g = asyncio::create_task(asyncio::gather([a, b]));
    asyncio::sleep(1).await;
    b_ref.cancel_with("childmsg");
    match g.await.unwrap() {
        Err(Error::Cancelled(c)) => assert_eq!(c.message(), Some("childmsg")),
        other => panic!("unexpected {other:?}"),
    }
}

/// With `return_exceptions`, gather waits for every child
/// and puts each error at its child's position.
#[tokio::test(start_paused = true)]
async fn return_exceptions_waits_for_all_and_places_errors() {
    let start = Instant::now();
    let ok_late = asyncio::create_task(asyncio::sleep_with(3, 3));
    let ok = asyncio::create_task(asyncio::sleep_with(1, 1));
    let bad = asyncio::create_task(async {
        asyncio::sleep(2).await;
        panic!("exc");
    });
    let cancelled = asyncio::create_task(asyncio::sleep_with(10, 4));
    cancelled.cancel_with("m");
    let results = asyncio::gather([ok_late, ok, bad, cancelled])
        .return_exceptions()
        .await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(results[0], Ok(3));
    assert_eq!(results[1], Ok(1));
    assert!(matches!(&results[2], Err(Error::Panicked(p)) if p.message() == "exc"));
    assert!(matches!(&results[3], Err(Error::Cancelled(_))));
}

/// Dropping an unfinished gather cancels the children still
/// pending, and only those.
#[tokio::test(start_paused = true)]
async fn dropping_unfinished_gather_cancels_pending_children() {
    let quick = asyncio::create_task(asyncio::sleep_with(0.1, 0));
    let slow1 = asyncio::create_task(asyncio::sleep_with(10, 1));
    let slow2 = asyncio::create_task(asyncio::sleep_with(10, 2));
    let refs = [quick.to_ref(), slow1.to_ref(), slow2.to_ref()];
    let mut g = asyncio::gather([quick, slow1, slow2]);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut g)
            .await
            .is_err()
    );
    drop(g);
    for r in &refs {
        settle(r).await;
    }
    assert!(!refs[0].cancelled());
    assert!(refs[1].cancelled() && refs[2].cancelled());
}

/// Cancelling the task that awaits a gather cancels every child.
#[tokio::test(start_paused = true)]
async fn cancelling_the_awaiting_task_cancels_all_children() {
    let g = asyncio::gather((0..5).map(|i| asyncio::sleep_with(10, i)));
    let children = g.tasks();
    let outer = asyncio::create_task(g);
    asyncio::sleep(1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    for c in &children {
        settle(c).await;
        assert!(c.cancelled());
    }
}

/// A gather dropped before its children started: their bodies never
/// run.
#[tokio::test(start_paused = true)]
async fn gather_dropped_before_children_start_never_runs_them() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let g = asyncio::gather([async move { r.store(true, Ordering::SeqCst) }]);
    let children = g.tasks();
    drop(g);
    settle(&children[0]).await;
    assert!(children[0].cancelled());
    assert!(!ran.load(Ordering::SeqCst));
}

/// A gather that already failed cancels nothing when dropped.
#[tokio::test(start_paused = true)]
async fn dropping_after_the_first_error_leaves_siblings_running() {
    let slow = asyncio::create_task(asyncio::sleep_with(5, 1));
    let slow_ref = slow.to_ref();
    let bad = asyncio::create_task(async { panic!("x") });
    let mut g = asyncio::gather([slow, bad]);
    assert!((&mut g).await.unwrap_err().is_panic());
    drop(g);
    settle(&slow_ref).await;
    assert!(!slow_ref.cancelled());
}

/// Tasks and plain futures are accepted; spawned children
/// are tasks of ours, with names, listed by `all_tasks`.
#[tokio::test(start_paused = true)]
async fn tasks_and_futures_are_accepted_and_children_are_our_tasks() {
    let named = asyncio::Task::builder()
        .name("named")
        .spawn(asyncio::sleep_with(0.1, 1));
    let g = asyncio::gather([named]);
    assert_eq!(g.tasks()[0].get_name(), "named");
    assert_eq!(g.await.unwrap(), [1]);

    let g = asyncio::gather([asyncio::sleep_with(0.1, 2)]);
    let child = g.tasks().remove(0);
    assert!(child.get_name().starts_with("Task-"));
    assert!(asyncio::all_tasks().contains(&child));
    assert_eq!(g.await.unwrap(), [2]);
}

/// Gathering shields: cancelling the gather cancels the wrappers
/// (here: the tasks running the shields), not the shielded tasks.
#[tokio::test(start_paused = true)]
async fn cancelling_a_gather_of_shields_spares_the_shielded_tasks() {
    let inner = asyncio::create_task(asyncio::sleep_with(2, 7));
    let inner_ref = inner.to_ref();
    let g = asyncio::gather([asyncio::shield(inner)]);
    let wrapper = g.tasks().remove(0);
    let outer = asyncio::create_task(g);
    asyncio::sleep(1).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    settle(&wrapper).await;
    assert!(wrapper.cancelled());
    settle(&inner_ref).await;
    assert!(!inner_ref.cancelled());
}

/// `gather!` mixes output types; results in argument order.
#[tokio::test(start_paused = true)]
async fn gather_macro_mixes_types_in_argument_order() {
    let t = asyncio::create_task(asyncio::sleep_with(0.3, "task"));
    let (a, b, c) = asyncio::gather!(t, asyncio::sleep_with(0.1, 2u8), async { vec![3.0f64] })
        .await
        .unwrap();
    assert_eq!((a, b, c), ("task", 2, vec![3.0]));
}

/// `gather!` takes twelve arguments of different types.
#[tokio::test(start_paused = true)]
async fn gather_macro_takes_twelve_arguments() {
    let r = asyncio::gather!(
        async { 1u8 },
        async { 2u16 },
        async { 3u32 },
        async { 4u64 },
        async { 5i8 },
        async { 6i16 },
        async { 7i32 },
        async { 8i64 },
        async { 9usize },
        async { "10" },
        async { 11.0f32 },
        async { '1' },
    )
    .await
    .unwrap();
    assert_eq!(r, (1, 2, 3, 4, 5, 6, 7, 8, 9, "10", 11.0, '1'));
}

/// `gather!`: the first panic ends it at once, siblings keep running;
/// dropping it unfinished cancels the pending children.
#[tokio::test(start_paused = true)]
async fn gather_macro_has_gather_semantics() {
    let slow = asyncio::create_task(asyncio::sleep_with(5, 1u8));
    let slow_ref = slow.to_ref();
    let err = asyncio::gather!(slow, async {
        asyncio::sleep(1).await;
        panic!("tuple boom");
    })
    .await;
    let err: Error = err.map(|(_, ())| ()).unwrap_err();
    assert!(err.is_panic());
    settle(&slow_ref).await;
    assert!(!slow_ref.cancelled());

    let pending = asyncio::create_task(asyncio::sleep(5));
    let pending_ref = pending.to_ref();
    let mut g = asyncio::gather!(pending, async { 1 });
    assert!(futures::poll!(&mut g).is_pending());
    drop(g);
    settle(&pending_ref).await;
    assert!(pending_ref.cancelled());
}

#[derive(Debug, PartialEq)]
enum AppError {
    Bad(u32),
    Asyncio(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Asyncio(e)
    }
}

/// `try_gather`: `Ok` values in input order.
#[tokio::test(start_paused = true)]
async fn try_gather_collects_ok_values_in_input_order() {
    let r: Result<Vec<u32>, AppError> = asyncio::try_gather([
        asyncio::sleep_with(0.2, Ok(1)),
        asyncio::sleep_with(0.1, Ok(2)),
    ])
    .await;
    assert_eq!(r, Ok(vec![1, 2]));
}

/// `try_gather`: the first `Err` (completion order) ends it at once, like a
/// raised exception in gather; siblings keep running.
#[tokio::test(start_paused = true)]
async fn try_gather_first_err_ends_it_and_siblings_keep_running() {
    let start = Instant::now();
    let slow = asyncio::create_task(asyncio::sleep_with(5, Ok::<u32, AppError>(1)));
    let slow_ref = slow.to_ref();
    let failing = asyncio::create_task(asyncio::sleep_with(1, Err(AppError::Bad(2))));
    let r = asyncio::try_gather([slow, failing]).await;
    assert_eq!(r, Err(AppError::Bad(2)));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    settle(&slow_ref).await;
    assert!(!slow_ref.cancelled());
}

/// `try_gather`: a panic or a cancellation is converted into `E`.
#[tokio::test(start_paused = true)]
async fn try_gather_converts_panics_and_cancellations() {
    let panicking = asyncio::create_task(async {
        asyncio::sleep(1).await;
        if true {
            panic!("p");
        }
        Ok::<u8, AppError>(0)
    });
    let r = asyncio::try_gather([panicking]).await;
    assert!(matches!(r, Err(AppError::Asyncio(Error::Panicked(_)))));

    let cancelled = asyncio::create_task(asyncio::sleep_with(5, Ok::<u8, AppError>(0)));
    cancelled.cancel();
    let r = asyncio::try_gather([cancelled]).await;
    assert!(matches!(r, Err(AppError::Asyncio(Error::Cancelled(_)))));
}

/// The cancellation tree: an outer task awaits a gather of tasks, each
/// awaiting a `wait_for` of a shielded task. One `wait_for` times out
/// first (its child finishes with `Err(Timeout)`); then the outer task is
/// cancelled. Exactly: the outer and the still-waiting child end cancelled,
/// the timed-out child finished, and both shielded tasks run to completion.
#[tokio::test(start_paused = true)]
async fn cancellation_tree_outer_gather_wait_for_shield() {
    let start = Instant::now();
    let inner0 = asyncio::Task::builder()
        .name("inner0")
        .spawn(asyncio::sleep_with(5, 0u8));
    let inner1 = asyncio::Task::builder()
        .name("inner1")
        .spawn(asyncio::sleep_with(5, 1u8));
    let (i0, i1) = (inner0.to_ref(), inner1.to_ref());
    let child0 = asyncio::Task::builder()
        .name("child0")
        .spawn(async move { asyncio::wait_for(asyncio::shield(inner0), 10).await });
    let child1 = asyncio::Task::builder()
        .name("child1")
        .spawn(async move { asyncio::wait_for(asyncio::shield(inner1), 0.5).await });
    let (c0, c1) = (child0.to_ref(), child1.to_ref());
    let outer = asyncio::Task::builder()
        .name("outer")
        .spawn(asyncio::gather([child0, child1]));
    let outer_ref = outer.to_ref();

    asyncio::sleep(1).await;
    assert!(
        c1.done() && !c1.cancelled(),
        "child1's wait_for timed out at 0.5 s"
    );
    outer_ref.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    settle(&c0).await;
    assert!(c0.cancelled(), "child0 was cancelled through the gather");
    assert!(
        !i0.done() && !i1.done(),
        "the shields kept the inner tasks alive"
    );
    settle(&i0).await;
    settle(&i1).await;
    assert!(!i0.cancelled() && !i1.cancelled());
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

/// Races on the multi-thread runtime: a gather awaited inside a task, with
/// children finishing on both workers and one panicking, always ends with
/// the panic, and a plain gather of many tasks always collects everything.
#[test]
fn multi_thread_races_end_correctly() {
    for _ in 0..50 {
        asyncio::Runner::new().worker_threads(2).run(async {
            let g = asyncio::create_task(async {
                let mut tasks: Vec<asyncio::Task<u32>> = (0..64)
                    .map(|i| asyncio::create_task(async move { i }))
                    .collect();
                tasks.push(asyncio::create_task(async { panic!("race") }));
                asyncio::gather(tasks).await
            });
            assert!(g.await.unwrap().unwrap_err().is_panic());

            let all = asyncio::create_task(async {
                asyncio::gather((0..1000u32).map(|i| async move {
                    tokio::task::yield_now().await;
                    i
                }))
                .await
            });
            let v = all.await.unwrap().unwrap();
            assert_eq!(v, (0..1000).collect::<Vec<_>>());
        });
    }
}

/// A gather of 20 000 tasks awaited inside a task on the multi-thread
/// runtime completes (the case where `join_all` goes quadratic).
#[test]
fn large_gather_inside_a_task_completes() {
    asyncio::Runner::new().worker_threads(2).run(async {
        let n = 20_000u32;
        let t =
            asyncio::create_task(
                async move { asyncio::gather((0..n).map(|i| async move { i })).await },
            );
        assert_eq!(t.await.unwrap().unwrap().len(), n as usize);
    });
}

/// For `gather!`: `.return_exceptions()` waits for every child and
/// puts each outcome at its position, whatever the types.
#[tokio::test(start_paused = true)]
async fn gather_macro_return_exceptions() {
    let cancelled = asyncio::create_task(asyncio::sleep_with(10, 'c'));
    cancelled.cancel();
    let (n, s, boom, c) = asyncio::gather!(
        asyncio::sleep_with(2, 1u8),
        async { "two".to_string() },
        async {
            asyncio::sleep(1).await;
            panic!("boom")
        },
        cancelled
    )
    .return_exceptions()
    .await;
    assert_eq!(n, Ok(1));
    assert_eq!(s.as_deref(), Ok("two"));
    let _: asyncio::Result<()> = boom.clone();
    assert_eq!(boom.unwrap_err().to_string(), "task panicked: boom");
    assert!(c.unwrap_err().is_cancelled());
}

/// Converting a gather that was already polled keeps what it collected.
#[tokio::test(start_paused = true)]
async fn return_exceptions_after_a_partial_poll_keeps_results() {
    let mut g = asyncio::gather([asyncio::sleep_with(0, 1), asyncio::sleep_with(5, 2)]);
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(1), &mut g)
            .await
            .is_err()
    );
    assert_eq!(g.return_exceptions().await, [Ok(1), Ok(2)]);

    let mut t = asyncio::gather!(asyncio::sleep_with(0, 'a'), asyncio::sleep_with(5, 2u8));
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(1), &mut t)
            .await
            .is_err()
    );
    assert_eq!(t.return_exceptions().await, (Ok('a'), Ok(2)));
}

/// Dropping an unfinished `gather!(..).return_exceptions()` cancels the
/// children still pending.
#[tokio::test(start_paused = true)]
async fn dropping_gather_macro_return_exceptions_cancels_pending() {
    let slow = asyncio::create_task(asyncio::sleep(10));
    let r = slow.to_ref();
    let all = asyncio::gather!(slow, async { 1 }).return_exceptions();
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(1), all)
            .await
            .is_err()
    );
    while !r.done() {
        asyncio::sleep(0).await;
    }
    assert!(r.cancelled());
}
