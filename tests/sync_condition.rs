//! `asyncio::Condition`, as CPython's `test_locks.py::ConditionTests`
//! checks it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use asyncio::{Condition, Lock};

/// Lets every other task run until it blocks (paused clock).
async fn idle() {
    asyncio::sleep(0.001).await;
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn condition_and_guard_are_send_and_sync() {
    assert_send_sync::<Condition>();
    assert_send_sync::<asyncio::ConditionGuard<'static>>();
}

type Log = Arc<Mutex<Vec<u32>>>;

/// A task that waits once on the condition and logs when it has the lock
/// back.
fn waiter(cond: &Arc<Condition>, log: &Log, i: u32) -> asyncio::Task<()> {
    let (cond, log) = (cond.clone(), log.clone());
    asyncio::create_task(async move {
        let g = cond.acquire().await;
        let g = g.wait().await;
        assert!(g.condition().locked());
        log.lock().unwrap().push(i);
    })
}

/// test_locks.py::ConditionTests::test_wait: wait releases the lock, a
/// notified waiter returns only once the notifier released it, with the
/// lock held again.
#[tokio::test(start_paused = true)]
async fn a_notified_waiter_returns_once_the_notifier_released_the_lock() {
    let cond = Arc::new(Condition::new());
    let log: Log = Arc::default();
    let t = waiter(&cond, &log, 1);
    idle().await;
    assert!(!cond.locked()); // released by wait
    let g = cond.acquire().await;
    g.notify(1);
    idle().await;
    assert!(log.lock().unwrap().is_empty()); // we still hold the lock
    drop(g);
    t.await.unwrap();
    assert_eq!(*log.lock().unwrap(), [1]);
    assert!(!cond.locked());
}

/// test_locks.py::ConditionTests::test_notify: notify(n) wakes n waiters
/// oldest first; more than there are wakes all; none waiting does nothing.
#[tokio::test(start_paused = true)]
async fn notify_n_wakes_n_waiters_oldest_first() {
    let cond = Arc::new(Condition::new());
    let log: Log = Arc::default();
    cond.acquire().await.notify(1); // nobody waits: nothing stored
    let tasks: Vec<_> = (1..=3).map(|i| waiter(&cond, &log, i)).collect();
    idle().await;
    cond.acquire().await.notify(1);
    idle().await;
    assert_eq!(*log.lock().unwrap(), [1]);
    cond.acquire().await.notify(2);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
    let late = waiter(&cond, &log, 4);
    idle().await;
    assert!(!late.done()); // the earlier notifies were not stored
    cond.acquire().await.notify(10);
    late.await.unwrap();
}

/// test_locks.py::ConditionTests::test_notify_all
#[tokio::test(start_paused = true)]
async fn notify_all_wakes_every_waiter() {
    let cond = Arc::new(Condition::new());
    let log: Log = Arc::default();
    let tasks: Vec<_> = (1..=3).map(|i| waiter(&cond, &log, i)).collect();
    idle().await;
    cond.acquire().await.notify_all();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

/// test_locks.py::ConditionTests::test_wait_for: the predicate is checked
/// first and after each wake-up, with the lock held.
#[tokio::test(start_paused = true)]
async fn wait_for_checks_the_predicate_after_each_wakeup() {
    let cond = Arc::new(Condition::new());
    let value = Arc::new(AtomicUsize::new(0));
    let checks = Arc::new(AtomicUsize::new(0));
    let t = asyncio::create_task({
        let (cond, value, checks) = (cond.clone(), value.clone(), checks.clone());
        async move {
            let g = cond.acquire().await;
            let c2 = cond.clone();
            let g = g
                .wait_for(|| {
                    assert!(c2.locked());
                    checks.fetch_add(1, Ordering::SeqCst);
                    value.load(Ordering::SeqCst) == 2
                })
                .await;
            drop(g);
        }
    });
    idle().await;
    assert_eq!(checks.load(Ordering::SeqCst), 1);
    value.store(1, Ordering::SeqCst);
    cond.acquire().await.notify(1);
    idle().await;
    assert_eq!(checks.load(Ordering::SeqCst), 2);
    assert!(!t.done());
    value.store(2, Ordering::SeqCst);
    cond.acquire().await.notify(1);
    t.await.unwrap();
    assert_eq!(checks.load(Ordering::SeqCst), 3);
}

/// test_locks.py::ConditionTests::test_wait_cancel, with the difference of
/// docs/differences.md: a dropped wait holds no lock.
#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_leaves_the_queue_and_holds_no_lock() {
    let cond = Arc::new(Condition::new());
    let log: Log = Arc::default();
    let cancelled = waiter(&cond, &log, 1);
    let other = waiter(&cond, &log, 2);
    idle().await;
    cancelled.cancel();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert!(!cond.locked());
    cond.acquire().await.notify(1); // goes to the remaining waiter
    other.await.unwrap();
    assert_eq!(*log.lock().unwrap(), [2]);
}

/// test_locks.py::ConditionTests::test_cancelled_wakeup and
/// test_cancelled_wakeup_relock (3.13): a waiter notified and then cancelled
/// before it returned passes the notification on.
#[tokio::test(start_paused = true)]
async fn a_notified_waiter_cancelled_before_it_returned_passes_the_notification_on() {
    let cond = Arc::new(Condition::new());
    let log: Log = Arc::default();
    let first = waiter(&cond, &log, 1);
    let second = waiter(&cond, &log, 2);
    idle().await;
    let g = cond.acquire().await;
    g.notify(1); // to `first`
    first.cancel(); // which is cancelled while it waits for the lock
    drop(g);
    assert!(first.await.unwrap_err().is_cancelled());
    // Fails (times out) instead of hanging if the notification were lost.
    asyncio::wait_for(second, 10)
        .await
        .expect("the notification is passed on");
    assert_eq!(*log.lock().unwrap(), [2]);
}

/// test_locks.py::ConditionTests::test_timeout_in_block: `wait_for` around
/// a wait times out; the lock is not held afterwards (see
/// docs/differences.md) and the waiter is gone.
#[tokio::test(start_paused = true)]
async fn a_wait_that_times_out_holds_no_lock_and_leaves_the_queue() {
    let cond = Condition::new();
    let g = cond.acquire().await;
    let r = asyncio::wait_for(g.wait(), 0.5).await;
    assert!(r.unwrap_err().is_timeout());
    assert!(!cond.locked());
    cond.acquire().await.notify_all();
    assert!(format!("{cond:?}").contains("waiters: 0"));
}

/// test_locks.py::ConditionTests::test_explicit_lock: a shared lock is the
/// condition's lock.
#[tokio::test(start_paused = true)]
async fn a_condition_over_a_shared_lock_holds_that_lock() {
    let lock = Arc::new(Lock::new());
    let cond = Condition::with_lock(lock.clone());
    let g = cond.acquire().await;
    assert!(lock.locked());
    assert!(lock.try_acquire().is_none());
    drop(g);
    assert!(!lock.locked());
    let held = lock.acquire().await;
    assert!(cond.locked());
    drop(held);
}

/// Many producers and consumers on several threads: every notification of
/// a counter is seen, nobody hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_and_consumers_on_two_threads_finish() {
    let cond = Arc::new(Condition::new());
    let items = Arc::new(AtomicUsize::new(0));
    const N: usize = 2000;
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let (cond, items) = (cond.clone(), items.clone());
            asyncio::create_task(async move {
                for _ in 0..N / 4 {
                    let g = cond.acquire().await;
                    let g = g.wait_for(|| items.load(Ordering::SeqCst) > 0).await;
                    items.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            })
        })
        .collect();
    for _ in 0..N {
        let g = cond.acquire().await;
        items.fetch_add(1, Ordering::SeqCst);
        g.notify(1);
        drop(g);
        tokio::task::yield_now().await;
    }
    asyncio::gather(consumers).await.unwrap();
    assert_eq!(items.load(Ordering::SeqCst), 0);
}
