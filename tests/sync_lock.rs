//! `asyncio::Lock`, as CPython's `test_locks.py::LockTests` checks it.

use std::sync::{Arc, Mutex};

use asyncio::Lock;

/// Lets every other task run until it blocks (paused clock).
async fn idle() {
    asyncio::sleep(0.001).await;
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn lock_and_guards_are_send_and_sync() {
    assert_send_sync::<Lock>();
    assert_send_sync::<asyncio::LockGuard<'static>>();
    assert_send_sync::<asyncio::OwnedLockGuard>();
}

type Log = Arc<Mutex<Vec<u32>>>;

fn waiter(lock: &Arc<Lock>, log: &Log, i: u32) -> asyncio::Task<()> {
    let (lock, log) = (lock.clone(), log.clone());
    asyncio::create_task(async move {
        let _g = lock.acquire().await;
        log.lock().unwrap().push(i);
    })
}

/// test_locks.py::LockTests::test_acquire: the lock is taken at once when
/// free, and waiters get it in FIFO order.
#[tokio::test(start_paused = true)]
async fn waiters_get_the_lock_first_come_first_served() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    assert!(lock.locked());
    let tasks: Vec<_> = (1..=3).map(|i| waiter(&lock, &log, i)).collect();
    idle().await;
    assert!(log.lock().unwrap().is_empty());
    held.release();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
    assert!(!lock.locked());
}

/// No barging (asyncio's `Lock.acquire` fast path needs no live waiter):
/// a task that asks after a release, before the woken waiter ran, queues
/// behind it.
#[tokio::test(start_paused = true)]
async fn a_newcomer_after_a_release_queues_behind_the_woken_waiter() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    let first = waiter(&lock, &log, 1);
    idle().await;
    drop(held);
    assert!(lock.try_acquire().is_none());
    let newcomer = waiter(&lock, &log, 2);
    first.await.unwrap();
    newcomer.await.unwrap();
    assert_eq!(*log.lock().unwrap(), [1, 2]);
}

/// test_locks.py::LockTests::test_acquire_cancel: a cancelled waiter leaves
/// the queue and the lock's state is unchanged.
#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue_and_holds_nothing() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    let cancelled = waiter(&lock, &log, 1);
    let next = waiter(&lock, &log, 2);
    idle().await;
    cancelled.cancel();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert!(lock.locked());
    drop(held);
    next.await.unwrap();
    assert_eq!(*log.lock().unwrap(), [2]);
    assert!(!lock.locked());
}

/// test_locks.py::LockTests::test_finished_waiter_cancelled and
/// test_cancel_release_race: a waiter handed the lock by a release but
/// cancelled before it ran passes the lock to the next waiter.
#[tokio::test(start_paused = true)]
async fn a_woken_waiter_cancelled_before_it_ran_passes_the_lock_on() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    let woken = waiter(&lock, &log, 1);
    let next = waiter(&lock, &log, 2);
    idle().await;
    // Release and cancel in the same step: the lock is handed to `woken`,
    // which never runs again.
    drop(held);
    woken.cancel();
    assert!(woken.await.unwrap_err().is_cancelled());
    // Fails (times out) instead of hanging if the lock were lost.
    asyncio::wait_for(next, 10)
        .await
        .expect("the next waiter gets the lock");
    assert_eq!(*log.lock().unwrap(), [2]);
    assert!(!lock.locked());
}

/// test_locks.py::LockTests::test_cancel_race: a cancelled waiter at the
/// head of the queue is skipped.
#[tokio::test(start_paused = true)]
async fn a_cancelled_head_waiter_is_skipped() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    let head = waiter(&lock, &log, 1);
    let second = waiter(&lock, &log, 2);
    let third = waiter(&lock, &log, 3);
    idle().await;
    head.cancel();
    drop(held);
    second.await.unwrap();
    third.await.unwrap();
    assert!(head.await.unwrap_err().is_cancelled());
    assert_eq!(*log.lock().unwrap(), [2, 3]);
}

/// An acquire under `wait_for` that times out holds nothing.
#[tokio::test(start_paused = true)]
async fn an_acquire_that_times_out_holds_nothing() {
    let lock = Lock::new();
    let held = lock.acquire().await;
    let r = asyncio::wait_for(lock.acquire(), 1).await;
    assert!(r.unwrap_err().is_timeout());
    drop(held);
    assert!(!lock.locked());
    assert!(lock.try_acquire().is_some());
}

/// test_locks.py::LockTests::test_context_manager: the guard releases on
/// every exit, a panic included.
#[tokio::test(start_paused = true)]
async fn the_guard_releases_the_lock_when_the_holder_panics() {
    let lock = Arc::new(Lock::new());
    let t = asyncio::create_task({
        let lock = lock.clone();
        async move {
            let _g = lock.acquire().await;
            asyncio::sleep(0.1).await;
            panic!("inside the lock");
        }
    });
    assert!(t.await.unwrap_err().is_panic());
    assert!(!lock.locked());
}

/// test_locks.py::LockTests::test_release_no_waiters: any task may
/// release: the guard moves to the releasing task.
#[tokio::test(start_paused = true)]
async fn another_task_can_release_an_owned_guard() {
    let lock = Arc::new(Lock::new());
    let guard = lock.clone().acquire_owned().await;
    asyncio::create_task(async move { guard.release() })
        .await
        .unwrap();
    assert!(!lock.locked());
}

#[test]
fn try_acquire_takes_a_free_lock_only() {
    let lock = Lock::new();
    let g = lock.try_acquire().unwrap();
    assert!(lock.try_acquire().is_none());
    assert!(std::ptr::eq(g.lock(), &lock));
    drop(g);
    assert!(lock.try_acquire().is_some());
}

/// test_locks.py::LockTests::test_acquire_cancel and test_cancel_race,
/// through `on_cancel`: the waiting task cancelled with `TaskRef::cancel`
/// holds nothing, its cleanup runs, and the next waiter gets the lock.
#[tokio::test(start_paused = true)]
async fn an_acquire_cancelled_inside_on_cancel_holds_nothing_and_runs_the_cleanup() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    let cancelled = asyncio::create_task({
        let (lock, log) = (lock.clone(), log.clone());
        async move {
            let l = log.clone();
            let _g = asyncio::on_cancel(lock.acquire(), move || async move {
                l.lock().unwrap().push(0);
            })
            .await;
            log.lock().unwrap().push(1);
        }
    });
    let next = waiter(&lock, &log, 2);
    idle().await;
    assert!(cancelled.cancel());
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(*log.lock().unwrap(), [0]);
    drop(held);
    // Fails (times out) instead of hanging if the lock were kept.
    asyncio::wait_for(next, 10)
        .await
        .expect("the next waiter gets the lock");
    assert_eq!(*log.lock().unwrap(), [0, 2]);
    assert!(!lock.locked());
}

/// test_locks.py::LockTests::test_acquire_cancel, through a `timeout`
/// scope: an acquire whose scope expires holds nothing; the next waiter
/// gets the lock, and the lock ends free.
#[tokio::test(start_paused = true)]
async fn an_acquire_cancelled_by_a_timeout_scope_holds_nothing() {
    let lock = Arc::new(Lock::new());
    let log: Log = Arc::default();
    let held = lock.acquire().await;
    let r = asyncio::timeout(1).run(lock.acquire()).await;
    assert!(r.unwrap_err().is_timeout());
    let next = waiter(&lock, &log, 2);
    idle().await;
    drop(held);
    asyncio::wait_for(next, 10)
        .await
        .expect("the next waiter gets the lock");
    assert_eq!(*log.lock().unwrap(), [2]);
    assert!(!lock.locked());
}
