//! `shield`, as asyncio behaves.

mod common;

use std::time::Duration;

use asyncio::Error;
use futures::FutureExt;
use tokio::time::Instant;

use common::settle;

/// The inner result comes through the shield.
#[tokio::test(start_paused = true)]
async fn result_comes_through() {
    assert_eq!(asyncio::shield(asyncio::sleep_with(1, 42)).await, Ok(42));
}

/// The inner panic comes through the shield.
#[tokio::test(start_paused = true)]
async fn panic_comes_through() {
    let r = asyncio::shield(async {
        asyncio::sleep(1).await;
        panic!("inner failure");
    })
    .await;
    assert!(matches!(r, Err(Error::Panicked(p)) if p.message() == "inner failure"));
}

/// The inner task's cancellation comes through the shield (the
/// message is kept: see docs/differences.md).
#[tokio::test(start_paused = true)]
async fn inner_cancellation_comes_through() {
    let inner = asyncio::create_task(asyncio::sleep(10));
    let r = inner.to_ref();
    let s = asyncio::create_task(asyncio::shield(inner));
    asyncio::sleep(1).await;
    r.cancel_with("inner msg");
    match s.await.unwrap() {
        Err(Error::Cancelled(c)) => assert_eq!(c.message(), Some("inner msg")),
        other => panic!("unexpected {other:?}"),
    }
}

/// Dropping the shield leaves the inner task running to completion;
/// it is observed through a `TaskRef`.
#[tokio::test(start_paused = true)]
async fn dropping_the_shield_leaves_the_inner_running() {
    let s = asyncio::shield(asyncio::sleep_with(2, 1));
    let inner = s.to_ref();
    drop(s);
    settle(&inner).await;
    assert!(inner.done() && !inner.cancelled());
}

/// Cancelling the task that awaits the shield: that task ends
/// cancelled, the inner runs on to completion.
#[tokio::test(start_paused = true)]
async fn cancelling_the_awaiter_spares_the_inner() {
    let start = Instant::now();
    let inner = asyncio::create_task(asyncio::sleep_with(3, 1));
    let inner_ref = inner.to_ref();
    let awaiter = asyncio::create_task(asyncio::shield(inner));
    asyncio::sleep(1).await;
    awaiter.cancel();
    assert!(awaiter.await.unwrap_err().is_cancelled());
    assert!(!inner_ref.done());
    settle(&inner_ref).await;
    assert!(!inner_ref.cancelled());
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

/// A shield of an already-done task resolves at its first poll.
#[tokio::test(start_paused = true)]
async fn already_done_inner_resolves_at_once() {
    let t = asyncio::create_task(async { 5 });
    settle(&t).await;
    assert_eq!(asyncio::shield(t).now_or_never(), Some(Ok(5)));
}

/// A plain future is run as a separate task, scheduled when
/// `shield` is called.
#[tokio::test(start_paused = true)]
async fn plain_future_runs_as_a_separate_task() {
    let me = asyncio::create_task(async {
        let me = asyncio::current_task().unwrap();
        let s = asyncio::shield(async { asyncio::current_task().unwrap() });
        assert!(asyncio::all_tasks().contains(&s.to_ref()));
        let inner = s.to_ref();
        let seen = s.await.unwrap();
        seen != me && seen == inner
    });
    assert!(me.await.unwrap());
}

/// Shielding a gather: cancelling the awaiter cancels neither the
/// gather nor its children.
#[tokio::test(start_paused = true)]
async fn shielding_a_gather_keeps_it_and_its_children_alive() {
    let g = asyncio::gather([asyncio::sleep_with(2, 1), asyncio::sleep_with(2, 2)]);
    let children = g.tasks();
    let s = asyncio::shield(g);
    let gather_task = s.to_ref();
    let awaiter = asyncio::create_task(s);
    asyncio::sleep(1).await;
    awaiter.cancel();
    assert!(awaiter.await.unwrap_err().is_cancelled());
    settle(&gather_task).await;
    assert!(!gather_task.cancelled());
    assert!(children.iter().all(|c| c.done() && !c.cancelled()));
}

/// `into_task` gives the inner task back, to be awaited later.
#[tokio::test(start_paused = true)]
async fn into_task_gives_the_inner_back() {
    let s = asyncio::shield(asyncio::sleep_with(1, 3));
    assert_eq!(s.into_task().await, Ok(3));
}
