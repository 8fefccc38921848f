//! `asyncio::Event`, as CPython's `test_locks.py::EventTests` checks it.

use std::sync::{Arc, Mutex};

use asyncio::Event;

/// Lets every other task run until it blocks: on the paused clock the
/// timer only fires once the runtime is idle.
async fn idle() {
    asyncio::sleep(0.001).await;
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn event_is_send_and_sync() {
    assert_send_sync::<Event>();
}

/// test_locks.py::EventTests::test_clear
#[test]
fn a_new_event_is_unset_set_sets_it_and_clear_resets_it() {
    let ev = Event::new();
    assert!(!ev.is_set());
    ev.set();
    assert!(ev.is_set());
    ev.clear();
    assert!(!ev.is_set());
}

/// test_locks.py::EventTests::test_wait_on_set
#[tokio::test(start_paused = true)]
async fn wait_on_a_set_event_returns_at_once() {
    let ev = Event::new();
    ev.set();
    let t0 = tokio::time::Instant::now();
    ev.wait().await;
    assert_eq!(t0.elapsed(), std::time::Duration::ZERO);
}

/// test_locks.py::EventTests::test_wait: set wakes every waiter, in the
/// order they started waiting; a later waiter does not block.
#[tokio::test(start_paused = true)]
async fn set_wakes_every_waiter_in_the_order_they_came() {
    let ev = Arc::new(Event::new());
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 1..=3 {
        let (ev, order) = (ev.clone(), order.clone());
        tasks.push(asyncio::create_task(async move {
            ev.wait().await;
            order.lock().unwrap().push(i);
        }));
    }
    idle().await;
    assert!(order.lock().unwrap().is_empty());
    ev.set();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [1, 2, 3]);
    // A task that waits after the set does not block.
    ev.wait().await;
}

/// test_locks.py::EventTests::test_clear_with_waiters: a waiter woken by
/// set returns although clear ran before it resumed; a second set does
/// nothing.
#[tokio::test(start_paused = true)]
async fn a_woken_waiter_returns_even_if_the_event_was_cleared_before_it_ran() {
    let ev = Arc::new(Event::new());
    let waiter = asyncio::create_task({
        let ev = ev.clone();
        async move { ev.wait().await }
    });
    idle().await;
    ev.set();
    ev.clear();
    ev.set();
    ev.clear();
    assert!(!ev.is_set());
    waiter.await.unwrap();
    assert!(!ev.is_set());
}

/// test_locks.py::EventTests::test_wait_cancel: a cancelled wait leaves
/// the event as it was and the other waiters waiting.
#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_leaves_the_event_unchanged() {
    let ev = Arc::new(Event::new());
    let cancelled = asyncio::create_task({
        let ev = ev.clone();
        async move { ev.wait().await }
    });
    let other = asyncio::create_task({
        let ev = ev.clone();
        async move { ev.wait().await }
    });
    idle().await;
    assert!(cancelled.cancel());
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert!(!ev.is_set());
    assert!(!other.done());
    ev.set();
    other.await.unwrap();
}

/// A wait under `wait_for` that times out takes nothing.
#[tokio::test(start_paused = true)]
async fn a_wait_that_times_out_leaves_the_event_unchanged() {
    let ev = Event::new();
    let r = asyncio::wait_for(ev.wait(), 0.5).await;
    assert!(r.unwrap_err().is_timeout());
    assert!(!ev.is_set());
    ev.set();
    ev.wait().await;
}

/// Set from a plain thread wakes waiters on a multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_from_another_thread_wakes_the_waiters() {
    let ev = Arc::new(Event::new());
    let waiters: Vec<_> = (0..50)
        .map(|_| {
            let ev = ev.clone();
            asyncio::create_task(async move { ev.wait().await })
        })
        .collect();
    let setter = {
        let ev = ev.clone();
        std::thread::spawn(move || ev.set())
    };
    setter.join().unwrap();
    asyncio::gather(waiters).await.unwrap();
}
