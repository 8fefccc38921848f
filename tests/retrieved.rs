//! Which panics the combinators count as seen: exactly those whose
//! exception asyncio's combinators retrieve (CPython 3.13's
//! `asyncio/tasks.py`), so that "Task exception was never retrieved" is
//! reported for the same tasks as in asyncio.
//!
//! - `gather`: its done callback calls `fut.exception()` on every child,
//!   also after the gather already ended ("Mark exception retrieved"); only
//!   a gather never awaited leaves one exception unseen (asyncio reports it
//!   as the gathering future's);
//! - `shield`: what the inner task raised while the shield was awaited is
//!   seen, also if the awaiter then gave up; a task that raises after the
//!   awaiter gave up is not;
//! - `wait`: looks at nothing, except that `FIRST_EXCEPTION` calls
//!   `f.exception()` on each task that ends while it waits, but the last;
//! - `as_completed`: what the user awaits is seen, nothing else;
//! - `wait_for(task)`: the awaiter waits for the task it cancelled, so what
//!   the task raised is seen.
//!
//! The exception handler is process-wide and the tests of this file run in
//! parallel threads: each test looks only at the reports about its own,
//! uniquely named tasks, after its runtime has shut down.

use asyncio::{Runner, Task, TaskRef};
use tokio::sync::oneshot;

mod reports;

use reports::{capture, lost_reports_for};

fn run<F: Future>(fut: F) -> F::Output {
    capture();
    Runner::new().run(fut)
}

/// Waits for `t` to end, through a done callback.
async fn settle(t: &TaskRef) {
    let (tx, rx) = oneshot::channel();
    t.add_done_callback(move |_| {
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// A task called `name` that panics at once.
fn boom(name: &str) -> Task<u8> {
    Task::builder().name(name).spawn(async { panic!("boom") })
}

/// A task called `name` that panics when the returned sender is used.
fn boom_later(name: &str) -> (Task<u8>, oneshot::Sender<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let t = Task::builder().name(name).spawn(async move {
        let _ = rx.await;
        panic!("boom later")
    });
    (t, tx)
}

fn lost(name: &str) -> usize {
    lost_reports_for(name).len()
}

/// `gather(ta, tb)`, ta raising at once and tb later: asyncio reports
/// nothing (gather's `_done_callback` marks tb's exception retrieved after
/// the outer future is done).
#[test]
fn gather_sees_the_panic_of_a_child_that_ends_after_it_returned() {
    run(async {
        let (tb, go) = boom_later("gather-late-b");
        let b = tb.to_ref();
        let err = asyncio::gather([boom("gather-late-a"), tb])
            .await
            .unwrap_err();
        assert!(err.is_panic());
        go.send(()).unwrap();
        settle(&b).await;
    });
    assert_eq!(lost("gather-late-a"), 0);
    assert_eq!(lost("gather-late-b"), 0);
}

/// The same through `gather!`.
#[test]
fn gather_macro_sees_the_panic_of_a_child_that_ends_after_it_returned() {
    run(async {
        let (tb, go) = boom_later("gather-macro-late-b");
        let b = tb.to_ref();
        let r = asyncio::gather!(boom("gather-macro-late-a"), tb).await;
        assert!(r.unwrap_err().is_panic());
        go.send(()).unwrap();
        settle(&b).await;
    });
    assert_eq!(lost("gather-macro-late-a"), 0);
    assert_eq!(lost("gather-macro-late-b"), 0);
}

/// `try_gather`: a child returning `Err` ends it (asyncio: a raised
/// exception); a sibling that panics afterwards is seen, as in gather.
#[test]
fn try_gather_sees_the_panic_of_a_child_that_ends_after_it_returned() {
    run(async {
        let (tx, rx) = oneshot::channel::<()>();
        let tb = Task::builder().name("try-gather-late-b").spawn(async move {
            let _ = rx.await;
            if true {
                panic!("boom later");
            }
            Ok::<u8, asyncio::Error>(1)
        });
        let b = tb.to_ref();
        let ta = asyncio::create_task(async {
            Err::<u8, _>(asyncio::Error::from(asyncio::TimeoutError::new()))
        });
        assert!(asyncio::try_gather([ta, tb]).await.is_err());
        tx.send(()).unwrap();
        settle(&b).await;
    });
    assert_eq!(lost("try-gather-late-b"), 0);
}

/// A gather awaited, then dropped (its awaiter gave up) after a child
/// panicked but before it looked again: asyncio's awaiting task still reads
/// the gathering future's exception, and the callbacks marked every child's.
#[test]
fn a_gather_dropped_after_it_was_awaited_leaves_no_panic_unseen() {
    run(async {
        let (ta, go_a) = boom_later("gather-dropped-a");
        let (tb, go_b) = boom_later("gather-dropped-b");
        let (a, b) = (ta.to_ref(), tb.to_ref());
        let mut g = asyncio::gather([ta, tb]);
        assert!(futures::poll!(&mut g).is_pending());
        go_a.send(()).unwrap();
        go_b.send(()).unwrap();
        settle(&a).await;
        settle(&b).await;
        drop(g);
    });
    assert_eq!(lost("gather-dropped-a"), 0);
    assert_eq!(lost("gather-dropped-b"), 0);
}

/// A gather never awaited: asyncio reports the first exception once (as
/// "_GatheringFuture exception was never retrieved") and marks the others;
/// here the report names the child whose panic it is.
#[test]
fn a_gather_never_awaited_reports_one_panic() {
    run(async {
        let (ta, tb) = (boom("gather-unawaited-a"), boom("gather-unawaited-b"));
        let (a, b) = (ta.to_ref(), tb.to_ref());
        let g = asyncio::gather([ta, tb]);
        settle(&a).await;
        settle(&b).await;
        drop(g);
    });
    assert_eq!(lost("gather-unawaited-a"), 1);
    assert_eq!(lost("gather-unawaited-b"), 0);
}

/// `return_exceptions=True` never awaited: the gathering future gets a
/// result, not an exception, and every child's exception was marked: asyncio
/// reports nothing.
#[test]
fn a_return_exceptions_gather_never_awaited_reports_nothing() {
    run(async {
        let ta = boom("gather-all-unawaited-a");
        let a = ta.to_ref();
        let g = asyncio::gather([ta]).return_exceptions();
        settle(&a).await;
        drop(g);
    });
    assert_eq!(lost("gather-all-unawaited-a"), 0);
}

/// `shield`: the awaiter gives up after the inner task panicked (asyncio:
/// `_inner_done_callback` passed the exception on, or marked it retrieved
/// when the outer was already cancelled): nothing is reported.
#[test]
fn a_shield_that_was_awaited_sees_the_panic_that_ended_its_task() {
    run(async {
        let (t, go) = boom_later("shield-seen");
        let r = t.to_ref();
        let mut s = asyncio::shield(t);
        assert!(futures::poll!(&mut s).is_pending());
        go.send(()).unwrap();
        settle(&r).await;
        drop(s);
    });
    assert_eq!(lost("shield-seen"), 0);
}

/// `shield`: the awaiter gave up first, the inner task panics afterwards:
/// asyncio removed the shield's callback and reports it.
#[test]
fn a_shield_given_up_before_its_task_panicked_leaves_the_panic_unseen() {
    run(async {
        let (t, go) = boom_later("shield-unseen");
        let r = t.to_ref();
        let mut s = asyncio::shield(t);
        assert!(futures::poll!(&mut s).is_pending());
        drop(s);
        go.send(()).unwrap();
        settle(&r).await;
    });
    assert_eq!(lost("shield-unseen"), 1);
}

/// `wait(ALL_COMPLETED)` and `wait(FIRST_COMPLETED)` look at no exception:
/// a task in `done` never looked at is reported, as in asyncio.
#[test]
fn wait_leaves_the_panics_of_done_tasks_unseen() {
    run(async {
        for (name, when) in [
            ("wait-all", asyncio::ALL_COMPLETED),
            ("wait-first", asyncio::FIRST_COMPLETED),
        ] {
            let (done, pending) = asyncio::wait([boom(name)], when, None).await;
            assert_eq!((done.len(), pending.len()), (1, 0));
        }
    });
    assert_eq!(lost("wait-all"), 1);
    assert_eq!(lost("wait-first"), 1);
}

/// `wait(FIRST_EXCEPTION)`: its `_on_completion` calls `f.exception()` on
/// each task that ends while it waits, except the last one (`counter <= 0`
/// short-circuits); a task that ends after it returned is not looked at.
#[test]
fn wait_first_exception_sees_the_panics_that_ended_it_but_the_last() {
    run(async {
        let (late, go) = boom_later("wait-fe-late");
        let l = late.to_ref();
        let waiting = asyncio::create_task(asyncio::sleep_with(3600, 0u8));
        let (done, pending) = asyncio::wait(
            [boom("wait-fe-first"), late, waiting],
            asyncio::FIRST_EXCEPTION,
            None,
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 2));
        go.send(()).unwrap();
        settle(&l).await;
        pending[1].cancel();

        let ok = asyncio::create_task(async { 1u8 });
        let (last, go) = boom_later("wait-fe-last");
        let r = last.to_ref();
        let w = asyncio::create_task(asyncio::wait([ok, last], asyncio::FIRST_EXCEPTION, None));
        go.send(()).unwrap();
        settle(&r).await;
        let (done, _) = w.await.unwrap();
        assert_eq!(done.len(), 2);
    });
    assert_eq!(lost("wait-fe-first"), 0);
    assert_eq!(lost("wait-fe-late"), 1);
    assert_eq!(lost("wait-fe-last"), 1);
}

/// `as_completed`: the result the user awaited is seen; one never taken is
/// reported, as asyncio reports a task still in `_done` never awaited.
#[test]
fn as_completed_sees_only_what_is_taken() {
    run(async {
        let (late, go) = boom_later("as-completed-untaken");
        let l = late.to_ref();
        let mut it = asyncio::as_completed([boom("as-completed-taken"), late], None);
        let first = Iterator::next(&mut it).unwrap().await;
        assert!(first.unwrap_err().is_panic());
        go.send(()).unwrap();
        settle(&l).await;
        drop(it);
    });
    assert_eq!(lost("as-completed-taken"), 0);
    assert_eq!(lost("as-completed-untaken"), 1);
}

/// `wait_for(task)` given up by its awaiter after the task panicked: the
/// awaiting asyncio task waits for the task it cancels and reads its
/// exception, so nothing is reported.
#[test]
fn wait_for_a_task_sees_its_panic_when_given_up() {
    run(async {
        let (t, go) = boom_later("wait-for-dropped");
        let r = t.to_ref();
        let mut w = Box::pin(asyncio::wait_for(t, 3600));
        assert!(futures::poll!(w.as_mut()).is_pending());
        go.send(()).unwrap();
        settle(&r).await;
        drop(w);
    });
    assert_eq!(lost("wait-for-dropped"), 0);
}

/// A task awaited by reference (`(&mut t).await`, the handle survives) whose
/// await handed over the panic: seen, also once the handle is dropped.
#[test]
fn a_task_whose_await_handed_over_its_panic_is_not_reported_when_dropped() {
    run(async {
        let mut t = boom("awaited-by-ref");
        assert!((&mut t).await.unwrap_err().is_panic());
        drop(t);
    });
    assert_eq!(lost("awaited-by-ref"), 0);
}

/// Polls `awaiting` once (pending: it now waits for `task`), lets the task
/// panic (`go`) and waits for its end, then drops `awaiting` unread.
async fn give_up_after_the_end<F: Future>(awaiting: F, go: oneshot::Sender<()>, task: &TaskRef) {
    let mut awaiting = std::pin::pin!(awaiting);
    assert!(futures::poll!(awaiting.as_mut()).is_pending());
    go.send(()).unwrap();
    settle(task).await;
}

/// `await t` in task A, t raises, then A is cancelled before it resumes:
/// asyncio reports nothing (A's wakeup reads `t.result()` whatever happens
/// to A; checked with CPython 3.13). Here: a `task.await` polled while the
/// task was pending, dropped once the task ended panicking.
#[test]
fn an_await_dropped_after_its_task_panicked_saw_the_panic() {
    run(async {
        let (t, go) = boom_later("join-dropped-after-end");
        let r = t.to_ref();
        give_up_after_the_end(std::future::IntoFuture::into_future(t), go, &r).await;
    });
    assert_eq!(lost("join-dropped-after-end"), 0);
}

/// The same with `(&mut t).await`: the await was waiting when the task
/// ended panicking, then lost a `select!` (or its task was cancelled).
#[test]
fn an_await_by_reference_dropped_after_its_task_panicked_saw_the_panic() {
    run(async {
        let (mut t, go) = boom_later("join-ref-dropped-after-end");
        let r = t.to_ref();
        give_up_after_the_end(std::future::IntoFuture::into_future(&mut t), go, &r).await;
        drop(t);
    });
    assert_eq!(lost("join-ref-dropped-after-end"), 0);
}

/// Awaits that never waited saw nothing: an await given up before the task
/// ended (by reference, so the task is not cancelled), or created and
/// dropped unpolled after the end, leave the panic unseen.
#[test]
fn an_await_that_never_waited_for_the_end_leaves_the_panic_unseen() {
    run(async {
        let (mut t, go) = boom_later("join-ref-given-up-before-end");
        let r = t.to_ref();
        {
            let mut join = Box::pin(std::future::IntoFuture::into_future(&mut t));
            assert!(futures::poll!(join.as_mut()).is_pending());
        }
        go.send(()).unwrap();
        settle(&r).await;
        drop(t);

        let t = boom("join-never-polled");
        settle(&t.to_ref()).await;
        drop(std::future::IntoFuture::into_future(t));
    });
    assert_eq!(lost("join-ref-given-up-before-end"), 1);
    assert_eq!(lost("join-never-polled"), 1);
}
