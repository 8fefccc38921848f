//! `asyncio::Barrier`, as CPython's `test_locks.py::BarrierTests` checks it.

use std::sync::Arc;

use asyncio::{Barrier, Error};

/// Lets every other task run until it blocks (paused clock).
async fn idle() {
    asyncio::sleep(0.001).await;
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn barrier_is_send_and_sync() {
    assert_send_sync::<Barrier>();
}

fn waiter(b: &Arc<Barrier>) -> asyncio::Task<asyncio::Result<usize>> {
    let b = b.clone();
    asyncio::create_task(async move { b.wait().await })
}

/// test_locks.py::BarrierTests::test_barrier_parties
#[test]
#[should_panic(expected = "parties must be > 0")]
fn a_barrier_of_zero_parties_is_refused() {
    let _ = Barrier::new(0);
}

/// test_locks.py::BarrierTests::test_filling_tasks_check_return_value and
/// test_filling_task_by_task: each wait gets its arrival index; n_waiting
/// counts the arrivals.
#[tokio::test(start_paused = true)]
async fn every_party_gets_its_arrival_index() {
    let b = Arc::new(Barrier::new(3));
    let first = waiter(&b);
    idle().await;
    assert_eq!(b.n_waiting(), 1);
    let second = waiter(&b);
    idle().await;
    assert_eq!(b.n_waiting(), 2);
    assert!(!first.done());
    // The last arrival does not block.
    assert_eq!(b.wait().await, Ok(2));
    assert_eq!(first.await.unwrap(), Ok(0));
    assert_eq!(second.await.unwrap(), Ok(1));
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
}

/// test_locks.py::BarrierTests::test_filling_one_task_twice
#[tokio::test(start_paused = true)]
async fn a_barrier_of_one_never_blocks() {
    let b = Barrier::new(1);
    assert_eq!(b.wait().await, Ok(0));
    assert_eq!(b.wait().await, Ok(0));
}

/// test_locks.py::BarrierTests::test_filling_tasks_wait_twice and
/// test_blocking_tasks_while_draining: the barrier is cyclic.
#[tokio::test(start_paused = true)]
async fn the_barrier_fills_again_after_a_round() {
    let b = Arc::new(Barrier::new(2));
    for _ in 0..3 {
        let t = waiter(&b);
        idle().await;
        assert_eq!(b.wait().await, Ok(1));
        assert_eq!(t.await.unwrap(), Ok(0));
    }
}

/// test_locks.py::BarrierTests::test_filling_tasks_cancel_one: a waiter
/// cancelled while the barrier fills leaves it; it is not broken.
#[tokio::test(start_paused = true)]
async fn a_waiter_cancelled_while_filling_leaves_without_breaking_it() {
    let b = Arc::new(Barrier::new(3));
    let cancelled = waiter(&b);
    let stays = waiter(&b);
    idle().await;
    assert_eq!(b.n_waiting(), 2);
    cancelled.cancel();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(b.n_waiting(), 1);
    assert!(!b.broken());
    // Indices follow the count at arrival, so they can repeat (asyncio's
    // `[1, 1, 2]`).
    let third = waiter(&b);
    idle().await;
    assert_eq!(b.wait().await, Ok(2));
    assert_eq!(stays.await.unwrap(), Ok(1));
    assert_eq!(third.await.unwrap(), Ok(1));
}

/// test_locks.py::BarrierTests::test_reset_barrier_while_tasks_waiting:
/// reset sends the waiters away broken; the barrier is usable again.
#[tokio::test(start_paused = true)]
async fn reset_sends_the_waiters_away_and_the_barrier_fills_again() {
    let b = Arc::new(Barrier::new(3));
    let w1 = waiter(&b);
    let w2 = waiter(&b);
    idle().await;
    b.reset().await;
    assert_eq!(w1.await.unwrap(), Err(Error::BrokenBarrier));
    assert_eq!(w2.await.unwrap(), Err(Error::BrokenBarrier));
    assert!(!b.broken());
    assert_eq!(b.n_waiting(), 0);
    let a = waiter(&b);
    let c = waiter(&b);
    idle().await;
    assert_eq!(b.wait().await, Ok(2));
    assert_eq!(a.await.unwrap(), Ok(0));
    assert_eq!(c.await.unwrap(), Ok(1));
}

/// test_locks.py::BarrierTests::test_reset_barrier: a reset with nobody
/// waiting leaves the barrier filling.
#[tokio::test(start_paused = true)]
async fn reset_with_nobody_waiting_changes_nothing() {
    let b = Barrier::new(1);
    b.reset().await;
    assert!(!b.broken());
    assert_eq!(b.wait().await, Ok(0));
}

/// test_locks.py::BarrierTests::test_abort_barrier and
/// test_abort_barrier_when_exception_then_resetting: abort breaks the
/// barrier for the waiters and every later wait; reset repairs it.
#[tokio::test(start_paused = true)]
async fn abort_breaks_the_barrier_until_a_reset() {
    let b = Arc::new(Barrier::new(2));
    let w = waiter(&b);
    idle().await;
    b.abort().await;
    assert!(b.broken());
    let e = w.await.unwrap().unwrap_err();
    assert!(e.is_broken_barrier());
    assert_eq!(e.to_string(), "Abort or reset of barrier");
    assert_eq!(b.wait().await, Err(Error::BrokenBarrier));
    assert_eq!(b.n_waiting(), 0);
    b.reset().await;
    assert!(!b.broken());
    let w = waiter(&b);
    idle().await;
    assert_eq!(b.wait().await, Ok(1));
    assert_eq!(w.await.unwrap(), Ok(0));
}

/// A wait under `wait_for` that times out leaves the barrier.
#[tokio::test(start_paused = true)]
async fn a_wait_that_times_out_leaves_the_barrier() {
    let b = Barrier::new(2);
    assert!(
        asyncio::wait_for(b.wait(), 1)
            .await
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
}

/// Many rounds on two threads: every round hands out each index once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_on_two_threads_hand_out_each_index_once() {
    const PARTIES: usize = 4;
    const ROUNDS: usize = 500;
    let b = Arc::new(Barrier::new(PARTIES));
    let tasks: Vec<_> = (0..PARTIES)
        .map(|_| {
            let b = b.clone();
            asyncio::create_task(async move {
                let mut sum = 0;
                for _ in 0..ROUNDS {
                    sum += b.wait().await.unwrap();
                }
                sum
            })
        })
        .collect();
    let sums = asyncio::gather(tasks).await.unwrap();
    assert_eq!(
        sums.iter().sum::<usize>(),
        ROUNDS * (0..PARTIES).sum::<usize>()
    );
}
