//! `wait`, as asyncio behaves.

mod common;

use std::time::Duration;

use asyncio::{ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, ReturnWhen, Task};
use futures::FutureExt;
use tokio::time::Instant;

use common::settle;

fn sleeper(secs: f64, v: u32) -> Task<u32> {
    asyncio::create_task(asyncio::sleep_with(secs, v))
}

fn panicker(secs: f64) -> Task<u32> {
    asyncio::create_task(async move {
        asyncio::sleep(secs).await;
        panic!("failed after {secs}");
    })
}

fn values(tasks: &[Task<u32>]) -> Vec<u32> {
    tasks.iter().map(|t| t.result().unwrap()).collect()
}

/// ALL_COMPLETED waits for every task; `done` is in
/// completion order, errors stay on the tasks.
#[tokio::test(start_paused = true)]
async fn all_completed_waits_for_every_task_done_in_completion_order() {
    let start = Instant::now();
    let tasks = vec![sleeper(3.0, 3), sleeper(1.0, 1), panicker(2.0)];
    let (done, pending) = asyncio::wait(tasks, ALL_COMPLETED, None).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert!(pending.is_empty());
    assert_eq!(done[0].result(), Ok(1));
    assert!(done[1].exception().unwrap().unwrap().is_panic());
    assert_eq!(done[2].result(), Ok(3));
}

/// FIRST_COMPLETED returns when any task ends; `pending` keeps input
/// order.
#[tokio::test(start_paused = true)]
async fn first_completed_returns_on_the_first_end() {
    let start = Instant::now();
    let tasks = vec![sleeper(5.0, 5), sleeper(1.0, 1), sleeper(3.0, 3)];
    let (done, pending) = asyncio::wait(tasks, FIRST_COMPLETED, None).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(values(&done), [1]);
    assert_eq!(pending.len(), 2);
    let (done, _) = asyncio::wait(pending, ALL_COMPLETED, None).await;
    assert_eq!(values(&done), [3, 5]);
}

/// A cancellation counts as a completion for FIRST_COMPLETED.
#[tokio::test(start_paused = true)]
async fn first_completed_counts_a_cancellation() {
    let a = sleeper(5.0, 1);
    let b = sleeper(5.0, 2);
    let b_ref = b.to_ref();
    let w = asyncio::create_task(asyncio::wait([a, b], FIRST_COMPLETED, None));
    asyncio::sleep(1).await;
    b_ref.cancel();
    let (done, pending) = w.await.unwrap();
    assert!(done.len() == 1 && done[0].cancelled());
    assert!(!pending[0].done());
}

/// FIRST_EXCEPTION returns on a panic; a cancellation does not
/// count.
#[tokio::test(start_paused = true)]
async fn first_exception_fires_on_a_panic_not_on_a_cancellation() {
    let start = Instant::now();
    let cancelled = sleeper(10.0, 0);
    cancelled.cancel();
    let tasks = vec![cancelled, sleeper(5.0, 5), panicker(2.0)];
    let (done, pending) = asyncio::wait(tasks, FIRST_EXCEPTION, None).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(done.len(), 2);
    assert!(done[0].cancelled());
    assert!(done[1].exception().unwrap().unwrap().is_panic());
    assert_eq!(pending.len(), 1);
}

/// With no failure FIRST_EXCEPTION behaves as ALL_COMPLETED.
#[tokio::test(start_paused = true)]
async fn first_exception_without_failure_waits_for_all() {
    let start = Instant::now();
    let (done, pending) =
        asyncio::wait([sleeper(1.0, 1), sleeper(2.0, 2)], FIRST_EXCEPTION, None).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!((values(&done), pending.len()), (vec![1, 2], 0));
}

/// A task that already panicked makes FIRST_EXCEPTION return at once.
#[tokio::test(start_paused = true)]
async fn first_exception_returns_at_once_on_an_earlier_panic() {
    let bad = panicker(0.0);
    settle(&bad).await;
    let (done, pending) = asyncio::wait([sleeper(5.0, 5), bad], FIRST_EXCEPTION, None)
        .now_or_never()
        .expect("resolves at its first poll");
    assert_eq!((done.len(), pending.len()), (1, 1));
}

/// A timeout returns the current split and cancels nothing.
#[tokio::test(start_paused = true)]
async fn timeout_returns_the_split_and_cancels_nothing() {
    let start = Instant::now();
    let (done, pending) =
        asyncio::wait([sleeper(1.0, 1), sleeper(10.0, 10)], ALL_COMPLETED, 2).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(values(&done), [1]);
    assert!(!pending[0].cancelled());
    let late = pending.into_iter().next().unwrap();
    assert_eq!(late.await, Ok(10));
}

/// A zero timeout yields once, then returns the current split,
/// without advancing time.
#[tokio::test(start_paused = true)]
async fn zero_timeout_returns_after_one_yield() {
    let start = Instant::now();
    let quick = asyncio::create_task(async { 1u32 });
    let (done, pending) = asyncio::wait([quick, sleeper(1.0, 2)], ALL_COMPLETED, 0).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(values(&done), [1]);
    assert_eq!(pending.len(), 1);
}

/// Tasks already done count as done at once, without advancing
/// time.
#[tokio::test(start_paused = true)]
async fn already_done_tasks_count_at_once() {
    let a = sleeper(1.0, 1);
    let b = sleeper(2.0, 2);
    settle(&a).await;
    settle(&b).await;
    let start = Instant::now();
    let (done, pending) = asyncio::wait([a, b], ALL_COMPLETED, None)
        .now_or_never()
        .expect("resolves at its first poll");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!((values(&done), pending.len()), (vec![1, 2], 0));
}

/// A task ending at the timeout instant is in `done`.
#[tokio::test(start_paused = true)]
async fn a_task_ending_at_the_timeout_instant_is_done() {
    let (done, pending) = asyncio::wait([sleeper(1.0, 1)], ALL_COMPLETED, 1).await;
    assert_eq!((done.len(), pending.len()), (1, 0));
}

/// Cancelling the task that awaits `wait` cancels none of the tasks.
#[tokio::test(start_paused = true)]
async fn cancelling_the_awaiter_cancels_nothing() {
    let a = sleeper(5.0, 1);
    let r = a.to_ref();
    let w = asyncio::create_task(asyncio::wait([a], ALL_COMPLETED, None));
    asyncio::sleep(1).await;
    w.cancel();
    assert!(w.await.unwrap_err().is_cancelled());
    settle(&r).await;
    assert!(!r.cancelled());
}

/// (Difference) Empty input resolves to two empty vectors at once.
#[tokio::test(start_paused = true)]
async fn empty_input_is_two_empty_vectors() {
    for when in [FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED] {
        let (done, pending) = asyncio::wait(Vec::<Task<u8>>::new(), when, None)
            .now_or_never()
            .expect("resolves at its first poll");
        assert!(done.is_empty() && pending.is_empty());
    }
}

/// Any iterable (an iterator, a generator-like `map`) and plain
/// futures are accepted; futures become tasks of ours.
#[tokio::test(start_paused = true)]
async fn any_iterator_and_plain_futures_are_accepted() {
    let (done, _) = asyncio::wait(
        (1..=3).map(|i| asyncio::sleep_with(f64::from(i) * 0.1, i)),
        ALL_COMPLETED,
        None,
    )
    .await;
    assert_eq!(values(&done), [1, 2, 3]);
    assert!(done.iter().all(|t| t.get_name().starts_with("Task-")));
}

/// The constants are the `ReturnWhen` variants, displayed with
/// asyncio's names; ALL_COMPLETED is the default.
#[test]
fn constants_match_asyncio() {
    assert_eq!(FIRST_COMPLETED, ReturnWhen::FirstCompleted);
    assert_eq!(FIRST_EXCEPTION, ReturnWhen::FirstException);
    assert_eq!(ALL_COMPLETED, ReturnWhen::default());
    assert_eq!(
        [FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED].map(|w| w.to_string()),
        ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"]
    );
}

/// Races on the multi-thread runtime: every task ends up in exactly one of
/// `done` / `pending`, and ALL_COMPLETED never misses a completion.
#[test]
fn multi_thread_races_split_every_task_once() {
    asyncio::Runner::new().worker_threads(2).run(async {
        for _ in 0..100 {
            let tasks: Vec<Task<u32>> = (0..32)
                .map(|i| {
                    asyncio::create_task(async move {
                        tokio::task::yield_now().await;
                        i
                    })
                })
                .collect();
            let (done, pending) = asyncio::wait(tasks, FIRST_COMPLETED, None).await;
            assert_eq!(done.len() + pending.len(), 32);
            assert!(!done.is_empty());
            let (done2, pending2) = asyncio::wait(pending, ALL_COMPLETED, None).await;
            assert!(pending2.is_empty());
            let mut all: Vec<u32> = values(&done).into_iter().chain(values(&done2)).collect();
            all.sort();
            assert_eq!(all, (0..32).collect::<Vec<_>>());
        }
    });
}

/// A NaN timeout is refused before any input is scheduled: no task is
/// created, the future is never polled (it used to run on, detached).
#[tokio::test]
async fn nan_timeout_panics_before_any_input_is_scheduled() {
    let (polled, input) = common::polled_flag();
    let msg = common::panic_message(|| asyncio::wait([input], ALL_COMPLETED, f64::NAN));
    assert!(msg.contains("NaN"), "{msg}");
    assert!(asyncio::all_tasks().is_empty());
    asyncio::sleep(0).await; // one thread: a scheduled input would run now
    assert!(!polled.load(std::sync::atomic::Ordering::SeqCst));
}
