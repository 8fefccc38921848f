//! `asyncio::Semaphore` and `asyncio::BoundedSemaphore`, as CPython's
//! `test_locks.py::SemaphoreTests` checks them.

use std::sync::{Arc, Mutex};

use asyncio::{BoundedSemaphore, Semaphore};

/// Lets every other task run until it blocks (paused clock).
async fn idle() {
    asyncio::sleep(0.001).await;
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn semaphores_and_permits_are_send_and_sync() {
    assert_send_sync::<Semaphore>();
    assert_send_sync::<BoundedSemaphore>();
    assert_send_sync::<asyncio::SemaphorePermit<'static>>();
}

type Log = Arc<Mutex<Vec<u32>>>;

/// A task that takes a permit, logs, and keeps it (forgotten).
fn taker(sem: &Arc<Semaphore>, log: &Log, i: u32) -> asyncio::Task<()> {
    let (sem, log) = (sem.clone(), log.clone());
    asyncio::create_task(async move {
        sem.acquire().await.forget();
        log.lock().unwrap().push(i);
    })
}

/// test_locks.py::SemaphoreTests::test_initial_value_zero
#[test]
fn a_semaphore_of_zero_starts_locked() {
    let sem = Semaphore::new(0);
    assert!(sem.locked());
    assert_eq!(sem.value(), 0);
}

/// test_locks.py::SemaphoreTests::test_semaphore_value: bad values are
/// refused before anything is built.
#[test]
#[should_panic(expected = "Semaphore initial value must be at most")]
fn a_value_over_the_maximum_is_refused() {
    let _ = Semaphore::new(usize::MAX);
}

/// test_locks.py::SemaphoreTests::test_acquire: acquire lowers the count,
/// at 0 it queues; waiters are served in order.
#[tokio::test(start_paused = true)]
async fn acquire_lowers_the_count_and_waiters_are_served_in_order() {
    let sem = Arc::new(Semaphore::new(2));
    let log: Log = Arc::default();
    let tasks: Vec<_> = (1..=4).map(|i| taker(&sem, &log, i)).collect();
    idle().await;
    assert_eq!(*log.lock().unwrap(), [1, 2]);
    assert!(sem.locked());
    sem.release();
    idle().await;
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
    sem.release();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), [1, 2, 3, 4]);
    assert_eq!(sem.value(), 0);
}

/// test_locks.py::SemaphoreTests::test_acquire_fifo_order_2 and _4: several
/// releases made before the woken waiters ran are handed out in FIFO order,
/// and a newcomer waits behind them.
#[tokio::test(start_paused = true)]
async fn releases_before_the_waiters_ran_go_to_them_in_order_not_to_a_newcomer() {
    let sem = Arc::new(Semaphore::new(0));
    let log: Log = Arc::default();
    let a = taker(&sem, &log, 1);
    let b = taker(&sem, &log, 2);
    idle().await;
    sem.release();
    sem.release();
    sem.release();
    // One permit is free, but the two woken waiters have theirs reserved.
    let newcomer = taker(&sem, &log, 3);
    a.await.unwrap();
    b.await.unwrap();
    newcomer.await.unwrap();
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

/// asyncio's `locked()`: true while earlier waiters are queued.
#[tokio::test(start_paused = true)]
async fn locked_is_true_while_waiters_are_queued() {
    let sem = Arc::new(Semaphore::new(0));
    let log: Log = Arc::default();
    let a = taker(&sem, &log, 1);
    idle().await;
    sem.release(); // handed to `a`, which has not run
    assert!(sem.locked());
    assert_eq!(sem.value(), 0);
    a.await.unwrap();
}

/// A plain Semaphore may be released beyond its initial value.
#[test]
fn a_plain_semaphore_can_be_released_beyond_its_initial_value() {
    let sem = Semaphore::new(1);
    sem.release();
    sem.release();
    assert_eq!(sem.value(), 3);
}

/// test_locks.py::SemaphoreTests::test_acquire_cancel: a waiter cancelled
/// before it was woken leaves; the count is unchanged.
#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_and_the_count_is_unchanged() {
    let sem = Arc::new(Semaphore::new(0));
    let log: Log = Arc::default();
    let a = taker(&sem, &log, 1);
    idle().await;
    a.cancel();
    assert!(a.await.unwrap_err().is_cancelled());
    assert_eq!(sem.value(), 0);
    sem.release();
    assert_eq!(sem.value(), 1);
}

/// test_locks.py::SemaphoreTests::test_acquire_cancel_before_awoken,
/// test_acquire_hang, test_acquire_fifo_order_3: a waiter cancelled after a
/// release woke it gives the permit to the next waiter; cancelled waiters
/// never get permits.
#[tokio::test(start_paused = true)]
async fn a_woken_waiter_cancelled_before_it_ran_gives_its_permit_to_the_next() {
    let sem = Arc::new(Semaphore::new(0));
    let log: Log = Arc::default();
    let a = taker(&sem, &log, 1);
    let b = taker(&sem, &log, 2);
    let c = taker(&sem, &log, 3);
    idle().await;
    sem.release(); // to a
    a.cancel();
    b.cancel();
    assert!(a.await.unwrap_err().is_cancelled());
    assert!(b.await.unwrap_err().is_cancelled());
    // Fails (times out) instead of hanging if the permit were lost.
    asyncio::wait_for(c, 10)
        .await
        .expect("the next waiter gets the permit");
    assert_eq!(*log.lock().unwrap(), [3]);
    assert_eq!(sem.value(), 0);
}

/// test_locks.py::SemaphoreTests::test_acquire_no_hang: a holder that
/// cancels a waiter as it releases does not make later acquires hang.
#[tokio::test(start_paused = true)]
async fn cancelling_a_waiter_while_releasing_does_not_hang_later_acquires() {
    let sem = Arc::new(Semaphore::new(1));
    let log: Log = Arc::default();
    let held = sem.acquire().await;
    let a = taker(&sem, &log, 1);
    idle().await;
    a.cancel();
    drop(held);
    assert!(a.await.unwrap_err().is_cancelled());
    sem.acquire().await.forget();
    assert_eq!(sem.value(), 0);
}

/// An acquire under `wait_for` that times out holds no permit.
#[tokio::test(start_paused = true)]
async fn an_acquire_that_times_out_holds_no_permit() {
    let sem = Semaphore::new(1);
    let p = sem.acquire().await;
    assert!(asyncio::wait_for(sem.acquire(), 1).await.is_err());
    drop(p);
    assert_eq!(sem.value(), 1);
}

/// test_locks.py::SemaphoreTests::test_release_not_acquired
#[test]
fn a_bounded_semaphore_released_too_many_times_panics_with_asyncios_message() {
    let sem = BoundedSemaphore::new(1);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sem.release())).unwrap_err();
    assert_eq!(
        err.downcast_ref::<&str>(),
        Some(&"BoundedSemaphore released too many times")
    );
    assert_eq!(sem.value(), 1);
    sem.try_acquire().unwrap().forget();
    sem.release();
    assert_eq!(sem.value(), 1);
}

/// `async with sem:` whose body also calls `release()`: the exit's release
/// raises in asyncio; the permit's drop panics here.
#[test]
fn a_bounded_permit_given_back_after_an_extra_release_panics() {
    let sem = BoundedSemaphore::new(1);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = sem.try_acquire().unwrap();
        sem.release();
    }))
    .unwrap_err();
    assert_eq!(
        err.downcast_ref::<&str>(),
        Some(&"BoundedSemaphore released too many times")
    );
    assert_eq!(sem.value(), 1);
}

#[test]
fn bounded_permits_come_back_on_drop() {
    let sem = BoundedSemaphore::new(2);
    let a = sem.try_acquire().unwrap();
    let b = sem.try_acquire().unwrap();
    assert!(sem.locked());
    drop(a);
    drop(b);
    assert_eq!(sem.value(), 2);
}

/// test_locks.py::SemaphoreTests::test_acquire_cancel_before_awoken,
/// through `on_cancel`: a waiter woken by a release and cancelled (with
/// `TaskRef::cancel`) before it ran holds no permit, its cleanup runs, and
/// the permit goes to the next waiter.
#[tokio::test(start_paused = true)]
async fn an_acquire_cancelled_inside_on_cancel_gives_its_permit_to_the_next() {
    let sem = Arc::new(Semaphore::new(0));
    let log: Log = Arc::default();
    let woken = asyncio::create_task({
        let (sem, log) = (sem.clone(), log.clone());
        async move {
            let l = log.clone();
            asyncio::on_cancel(sem.acquire(), move || async move {
                l.lock().unwrap().push(0);
            })
            .await
            .forget();
            log.lock().unwrap().push(1);
        }
    });
    let next = taker(&sem, &log, 2);
    idle().await;
    sem.release(); // to `woken`
    assert!(woken.cancel());
    assert!(woken.await.unwrap_err().is_cancelled());
    // Fails (times out) instead of hanging if the permit were lost.
    asyncio::wait_for(next, 10)
        .await
        .expect("the next waiter gets the permit");
    assert_eq!(*log.lock().unwrap(), [0, 2]);
    assert_eq!(sem.value(), 0);
}

/// test_locks.py::SemaphoreTests::test_acquire_cancel, through a `timeout`
/// scope around `on_cancel`: the acquire holds no permit, the cleanup runs
/// before the scope returns, and the count is unchanged.
#[tokio::test(start_paused = true)]
async fn an_acquire_cancelled_by_a_timeout_scope_holds_no_permit() {
    let sem = Semaphore::new(1);
    let p = sem.acquire().await;
    let cleaned = Mutex::new(false);
    let r = asyncio::timeout(1)
        .run(asyncio::on_cancel(sem.acquire(), || async {
            *cleaned.lock().unwrap() = true;
        }))
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(*cleaned.lock().unwrap());
    assert_eq!(sem.value(), 0);
    drop(p);
    assert_eq!(sem.value(), 1);
    sem.acquire().await.forget();
    assert_eq!(sem.value(), 0);
}
