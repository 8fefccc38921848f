//! `asyncio::run_coroutine_threadsafe` and `ConcurrentFuture`:
//! asyncio's behaviour, from another thread than the loop's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use asyncio::{Loop, run_coroutine_threadsafe};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Callable from a plain thread that belongs to no runtime; the
/// coroutine runs as a task of ours on the loop (current_task is set, the
/// creation site is the call).
#[test]
fn rc01_from_a_plain_thread() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let (value, where_) = std::thread::spawn(move || {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let coro = async { asyncio::current_task().map(|t| t.get_name()) };
        let mut fut = run_coroutine_threadsafe(coro, &lp);
        let line = line!() - 1;
        let at = fut.task().spawned_at();
        assert_eq!((at.file(), at.line()), (file!(), line));
        (fut.result(None).unwrap(), fut.task().get_name())
    })
    .join()
    .unwrap();
    assert_eq!(value, Some(where_));
}

/// The task is listed by `all_tasks()` on its runtime while pending.
#[test]
fn rc01_task_is_listed_on_its_loop() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let mut fut = run_coroutine_threadsafe(asyncio::sleep(30), &lp);
    fut.task().set_name("remote-sleeper");
    let listed = rt.block_on(async { asyncio::all_tasks() });
    assert!(listed.iter().any(|t| t.get_name() == "remote-sleeper"));
    assert!(fut.cancel());
    assert!(fut.result(None).unwrap_err().is_cancelled());
}

/// The value comes back; the coroutine's panic is re-raised as
/// `Err(Panicked)` with its message.
#[test]
fn rc03_value_and_panic() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let mut ok = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 3), &lp);
    assert_eq!(ok.result(5).unwrap(), 3);
    let mut bad = run_coroutine_threadsafe(async { panic!("remote failure") }, &lp);
    match bad.result(5) {
        Err(asyncio::Error::Panicked(p)) => assert_eq!(p.message(), "remote failure"),
        other => panic!("expected a panic, got {other:?}"),
    }
}

/// `result(timeout)` running out gives `Err(Timeout)` and does not
/// cancel the task; `result` can be called again and gets the value.
#[test]
fn rc04_timeout_leaves_task_running() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let mut fut = run_coroutine_threadsafe(
        async move {
            go_rx.await.unwrap();
            "late"
        },
        &lp,
    );
    assert!(fut.result(0.02).unwrap_err().is_timeout());
    assert!(fut.result(0).unwrap_err().is_timeout());
    assert!(!fut.done() && !fut.cancelled() && !fut.task().done());
    go_tx.send(()).unwrap();
    assert_eq!(fut.result(10).unwrap(), "late");
}

/// `cancel()` from the thread cancels the task in the loop and returns
/// true; no pending task remains; `result` gives `Err(Cancelled)`.
#[test]
fn rc04_cancel_from_thread() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let mut fut = run_coroutine_threadsafe(asyncio::sleep(3600), &lp);
    fut.task().set_name("rc04-cancel");
    assert!(fut.result(0.01).unwrap_err().is_timeout());
    assert!(fut.cancel());
    assert!(fut.cancelled() && fut.done());
    assert!(fut.result(None).unwrap_err().is_cancelled());
    // The task itself ends cancelled shortly.
    let task = fut.task().clone();
    rt.block_on(async {
        while !task.done() {
            asyncio::sleep(0.001).await;
        }
    });
    assert!(task.cancelled());
    let left = rt.block_on(async { asyncio::all_tasks() });
    assert!(!left.iter().any(|t| t.get_name() == "rc04-cancel"));
}

/// concurrent.futures: `cancel()` is true again on a cancelled future, false
/// on a finished one.
#[test]
fn cancel_true_when_already_cancelled_false_when_finished() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let fut = run_coroutine_threadsafe(asyncio::sleep(3600), &lp);
    assert!(fut.cancel());
    assert!(fut.cancel());
    let mut done = run_coroutine_threadsafe(async { 1 }, &lp);
    assert_eq!(done.result(None).unwrap(), 1);
    assert!(!done.cancel());
    assert!(!done.cancelled());
}

/// A task cancelled inside the loop makes the future cancelled and
/// `result()` gives `Err(Cancelled)` with the message.
#[test]
fn rc05_cancelled_inside_the_loop() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let mut fut = run_coroutine_threadsafe(asyncio::sleep(3600), &lp);
    let task = fut.task().clone();
    rt.block_on(async move { task.cancel_with("from the loop") });
    match fut.result(10) {
        Err(asyncio::Error::Cancelled(e)) => assert_eq!(e.message(), Some("from the loop")),
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert!(fut.cancelled() && fut.done());
}

/// The output is handed over once; later calls give `InvalidState`.
#[test]
fn output_handed_over_once() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let mut fut = run_coroutine_threadsafe(async { String::from("once") }, &lp);
    assert_eq!(fut.result(None).unwrap(), "once");
    assert!(fut.result(None).unwrap_err().is_invalid_state());
    assert!(fut.result(0).unwrap_err().is_invalid_state());
}

/// Done callbacks run once each, after the end, with the task.
#[test]
fn done_callbacks_fire_once() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let (tx, rx) = mpsc::channel();
    let mut fut = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 9), &lp);
    for i in 0..3 {
        let tx = tx.clone();
        fut.add_done_callback(move |t| tx.send((i, t.done())).unwrap());
    }
    drop(tx);
    assert_eq!(fut.result(None).unwrap(), 9);
    let got: Vec<_> = rx.iter().collect(); // ends when every callback ran (and dropped its sender)
    assert_eq!(got, [(0, true), (1, true), (2, true)]);
    // registered after the end: still called, once
    let (tx, rx) = mpsc::channel();
    fut.add_done_callback(move |_| tx.send(()).unwrap());
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(20)).is_err());
}

/// `result()` on a multi-thread worker (inside `asyncio::run`) blocks safely,
/// also for a task on the same runtime.
#[test]
fn result_on_a_multi_thread_worker_is_safe() {
    asyncio::Runner::new().worker_threads(2).run(async {
        let lp = asyncio::get_running_loop();
        let worker = asyncio::create_task(async move {
            let mut fut = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 5), &lp);
            fut.result(10)
        });
        assert_eq!(worker.await.unwrap().unwrap(), 5);
    });
}

/// On the thread of a current-thread runtime, `result()` would deadlock: it
/// panics and says what to do instead.
#[tokio::test]
#[should_panic(expected = "`.await` the ConcurrentFuture")]
async fn result_in_current_thread_runtime_panics_with_advice() {
    let lp = asyncio::get_running_loop();
    let mut fut = run_coroutine_threadsafe(async { 1 }, &lp);
    let _ = fut.result(None);
}

/// ... and the advice works: awaiting it, or `result()` from `to_thread`.
#[tokio::test]
async fn await_or_to_thread_in_current_thread_runtime() {
    let lp = asyncio::get_running_loop();
    let fut = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 1), &lp);
    assert_eq!(fut.await.unwrap(), 1);
    let mut fut = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 2), &lp);
    let v = asyncio::to_thread(move || fut.result(10)).await.unwrap();
    assert_eq!(v.unwrap(), 2);
    // zero timeout and already-done futures never block, so never panic
    let mut pending = run_coroutine_threadsafe(asyncio::sleep(3600), &lp);
    assert!(pending.result(0).unwrap_err().is_timeout());
    assert!(pending.cancel());
    assert!(pending.result(None).unwrap_err().is_cancelled());
}

/// A loop whose runtime is gone: the task is dropped, the future ends
/// cancelled instead of hanging.
#[test]
fn runtime_shut_down_gives_cancelled() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let mut before = run_coroutine_threadsafe(asyncio::sleep(3600), &lp);
    rt.shutdown_timeout(Duration::from_secs(5));
    assert!(before.result(10).unwrap_err().is_cancelled());
    let mut after = run_coroutine_threadsafe(async { 1 }, &lp);
    assert!(after.result(10).unwrap_err().is_cancelled());
}

/// Many threads submitting at once lose nothing: 8 plain OS threads submit
/// 10k coroutines each; every coroutine runs once and every result arrives
/// exactly once, to the thread that submitted it.
#[test]
fn stress_8_threads_10k_each() {
    const THREADS: usize = 8;
    const EACH: usize = 10_000;
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    let runs = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let lp = lp.clone();
            let runs = runs.clone();
            std::thread::spawn(move || {
                let futs: Vec<_> = (0..EACH)
                    .map(|i| {
                        let runs = runs.clone();
                        run_coroutine_threadsafe(
                            async move {
                                runs.fetch_add(1, Ordering::Relaxed);
                                (t, i)
                            },
                            &lp,
                        )
                    })
                    .collect();
                let mut seen = HashSet::with_capacity(EACH);
                for mut f in futs {
                    let (from, i) = f.result(30).unwrap();
                    assert_eq!(from, t);
                    assert!(seen.insert(i), "result {i} arrived twice");
                    assert!(f.result(0).unwrap_err().is_invalid_state());
                }
                seen.len()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, THREADS * EACH);
    assert_eq!(runs.load(Ordering::Relaxed), THREADS * EACH);
}

/// Cancel racing the end, on the multi-thread runtime, in a loop: `cancel()`
/// true means `result()` is `Err(Cancelled)`; false means the value.
#[test]
fn cancel_races_completion() {
    let rt = runtime();
    let lp = Loop::from(rt.handle().clone());
    for i in 0..500 {
        let mut fut = run_coroutine_threadsafe(async move { i }, &lp);
        if i % 3 == 0 {
            std::thread::yield_now();
        }
        let cancelled = fut.cancel();
        match fut.result(10) {
            Ok(v) => {
                assert!(!cancelled, "cancel() returned true but the value came");
                assert_eq!(v, i);
            }
            Err(e) => {
                assert!(cancelled && e.is_cancelled(), "{e:?}");
                assert!(fut.cancelled());
            }
        }
    }
}

/// After a successful `cancel()`, `result()` is `Cancelled` even if the
/// task's destructor panicked while it was being cancelled.
#[test]
fn cancelled_stays_cancelled_when_a_destructor_panics() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("cleanup failed");
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lp = asyncio::Loop::from(rt.handle().clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut fut = asyncio::run_coroutine_threadsafe(
        async move {
            let _b = Bomb;
            tx.send(()).unwrap();
            std::future::pending::<()>().await;
        },
        &lp,
    );
    rx.recv().unwrap();
    assert!(fut.cancel());
    let task = fut.task().clone();
    while !task.done() {
        std::thread::yield_now();
    }
    assert!(fut.result(None).unwrap_err().is_cancelled());
}

/// On the thread of a current-thread runtime, waiting for the task of
/// *another* runtime cannot deadlock: `result()` blocks and returns (it used
/// to refuse as if the task ran on the caller's runtime).
#[tokio::test]
async fn result_in_current_thread_runtime_waits_for_another_runtimes_task() {
    let other = runtime();
    let lp = Loop::from(other.handle().clone());
    let mut fut = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 3), &lp);
    assert_eq!(fut.result(10).unwrap(), 3);
    // also the task of another current-thread runtime, driven elsewhere
    let (lp_tx, lp_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = std::thread::spawn(move || {
        asyncio::Runner::new().current_thread().run(async move {
            lp_tx.send(asyncio::get_running_loop()).unwrap();
            let _ = stop_rx.await;
        });
    });
    let lp = lp_rx.recv().unwrap();
    let mut fut = run_coroutine_threadsafe(asyncio::sleep_with(0.01, 4), &lp);
    assert_eq!(fut.result(10).unwrap(), 4);
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
    other.shutdown_background();
}

/// On a multi-thread worker, the task of another runtime is waited for
/// safely too.
#[test]
fn result_on_a_multi_thread_worker_waits_for_another_runtimes_task() {
    let other = runtime();
    let lp = Loop::from(other.handle().clone());
    asyncio::Runner::new().worker_threads(2).run(async move {
        let worker = asyncio::create_task(async move {
            run_coroutine_threadsafe(asyncio::sleep_with(0.01, 5), &lp).result(10)
        });
        assert_eq!(worker.await.unwrap().unwrap(), 5);
    });
}
