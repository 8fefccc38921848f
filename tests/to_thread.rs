//! `asyncio::to_thread`, as asyncio behaves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

/// The closure's value comes back to the awaiter, and it ran on
/// another thread than the awaiting one.
#[test]
fn tt01_returns_the_value_from_another_thread() {
    asyncio::Runner::new().current_thread().run(async {
        let caller = std::thread::current().id();
        let (value, thread) = asyncio::to_thread(|| (6 * 7, std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_ne!(thread, caller);
    });
}

/// The closure's panic reaches the awaiter as `Err(Panicked)` with
/// its message, and the runtime keeps working.
#[test]
fn tt02_panic_becomes_panicked_error() {
    asyncio::run(async {
        let err = asyncio::to_thread(|| -> u32 { panic!("bad row {}", 7) })
            .await
            .unwrap_err();
        match &err {
            asyncio::Error::Panicked(p) => assert_eq!(p.message(), "bad row 7"),
            other => panic!("expected a panic error, got {other:?}"),
        }
        assert_eq!(asyncio::to_thread(|| 1).await.unwrap(), 1);
    });
}

/// The closure is called exactly once.
#[test]
fn tt03_called_exactly_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    asyncio::run(async move {
        asyncio::to_thread(move || c.fetch_add(1, Ordering::SeqCst))
            .await
            .unwrap();
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Concurrent calls run concurrently (4 closures meet at a barrier:
/// run one after the other, they would never get past it).
#[test]
fn tt04_concurrent_calls_run_concurrently() {
    asyncio::run(async {
        let barrier = Arc::new(Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let barrier = barrier.clone();
                asyncio::create_task(asyncio::to_thread(move || {
                    barrier.wait();
                    i
                }))
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap().unwrap();
        }
        assert_eq!(sum, 6);
    });
}

/// (Our equivalent of copying the context) Inside the closure,
/// `current_task()` is the task that awaited `to_thread`, with its name; it
/// is gone again once the closure returned (the pool thread is reused).
#[test]
fn tt05_calling_task_visible_in_closure() {
    asyncio::Runner::new().worker_threads(1).run(async {
        let task = asyncio::Task::builder().name("loader").spawn(async {
            let me = asyncio::current_task().unwrap();
            let seen = asyncio::to_thread(asyncio::current_task).await.unwrap();
            (me, seen)
        });
        let (me, seen) = task.await.unwrap();
        assert_eq!(seen.as_ref(), Some(&me));
        assert_eq!(seen.unwrap().get_name(), "loader");

        // A raw blocking job afterwards (same pool) sees no task.
        for _ in 0..4 {
            let after = tokio::task::spawn_blocking(asyncio::current_task)
                .await
                .unwrap();
            assert!(after.is_none());
        }
    });
}

/// The scope is restored also when the closure panics.
#[test]
fn tt05_scope_restored_after_panic() {
    asyncio::Runner::new().worker_threads(1).run(async {
        for _ in 0..4 {
            let _ = asyncio::to_thread(|| panic!("boom")).await;
            let after = tokio::task::spawn_blocking(asyncio::current_task)
                .await
                .unwrap();
            assert!(after.is_none());
        }
    });
}

/// Tasks created inside a `to_thread` closure land on the caller's runtime.
#[test]
fn create_task_inside_closure_uses_callers_runtime() {
    asyncio::run(async {
        let inner = asyncio::to_thread(|| asyncio::create_task(async { 5 }))
            .await
            .unwrap();
        assert_eq!(inner.await.unwrap(), 5);
    });
}

/// Cancelling the awaiting task ends it at once, but the thread is not
/// interrupted: the closure runs to its end.
#[test]
fn tt06_cancel_does_not_stop_the_thread() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (finished_tx, finished_rx) = mpsc::channel::<&str>();
    asyncio::run(async move {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let mut waiter = asyncio::create_task(asyncio::to_thread(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            finished_tx.send("finished anyway").unwrap();
        }));
        started_rx.await.unwrap();
        assert!(waiter.cancel());
        assert!((&mut waiter).await.unwrap_err().is_cancelled());
        release_tx.send(()).unwrap(); // the thread was still there, blocked
    });
    assert_eq!(
        finished_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "finished anyway"
    );
}

/// `to_thread` is lazy (nothing runs until it is awaited) and needs a
/// running loop when awaited.
#[test]
fn tt07_lazy_until_awaited() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let fut = asyncio::to_thread(move || c.fetch_add(1, Ordering::SeqCst));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    asyncio::run(async move { fut.await.unwrap() });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Awaited outside a runtime: asyncio's "no running event loop".
#[test]
#[should_panic(expected = "no running event loop")]
fn tt07_outside_runtime_panics() {
    let _ = futures::executor::block_on(asyncio::to_thread(|| 1));
}

/// Works under `#[tokio::test]` with a paused clock (the blocking job holds
/// auto-advance back), without `asyncio::run`.
#[tokio::test(start_paused = true)]
async fn works_in_tokio_test_with_paused_clock() {
    let start = tokio::time::Instant::now();
    let v = asyncio::to_thread(|| {
        std::thread::sleep(Duration::from_millis(5));
        "slept"
    })
    .await
    .unwrap();
    assert_eq!(v, "slept");
    asyncio::sleep(3).await;
    assert!(start.elapsed() >= Duration::from_secs(3));
}

/// Many jobs at once on the multi-thread runtime: each value comes back to
/// its own awaiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_each_value_to_its_awaiter() {
    let tasks: Vec<_> = (0..200u64)
        .map(|i| asyncio::create_task(asyncio::to_thread(move || i * i)))
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), (i * i) as u64);
    }
}

/// Runs `n + 1` closures at once on `runner`, each holding its thread until
/// released, and returns the most that ran at the same time. The first `n`
/// to start are all held; one is released, and only then may the last one
/// start (a closure that starts counts itself in before it reports).
fn most_at_once(runner: asyncio::Runner, n: usize) -> usize {
    runner.run(async move {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let mut gates = Vec::new();
        let mut calls = Vec::new();
        for i in 0..=n {
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            gates.push(gate_tx);
            let (running, most, started_tx) = (running.clone(), most.clone(), started_tx.clone());
            calls.push(asyncio::create_task(asyncio::to_thread(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                started_tx.send(i).unwrap();
                gate_rx.recv().unwrap();
                running.fetch_sub(1, Ordering::SeqCst);
            })));
        }
        let mut started = Vec::new();
        for _ in 0..n {
            started.push(started_rx.recv().await.unwrap());
        }
        gates[started[0]].send(()).unwrap();
        let last = started_rx.recv().await.unwrap();
        assert!(!started.contains(&last));
        for gate in &gates {
            let _ = gate.send(());
        }
        for call in calls {
            call.await.unwrap().unwrap();
        }
        most.load(Ordering::SeqCst)
    })
}

/// `Runner::max_blocking_threads(n)`: at most `n` closures run at once (as
/// asyncio's `ThreadPoolExecutor(max_workers=n)`), the next one waits for a
/// free thread; the workers of a multi-thread runtime are not counted.
#[test]
fn max_blocking_threads_bounds_the_closures_running_at_once() {
    assert_eq!(
        most_at_once(asyncio::Runner::new().max_blocking_threads(2), 2),
        2
    );
    assert_eq!(
        most_at_once(asyncio::Runner::new().max_blocking_threads(1), 1),
        1
    );
    let runner = asyncio::Runner::new()
        .worker_threads(2)
        .max_blocking_threads(3);
    assert_eq!(most_at_once(runner, 3), 3);
}

/// The default is asyncio's default executor size, `min(32, cpus + 4)`
/// (`concurrent.futures.ThreadPoolExecutor`, Python 3.13).
#[test]
fn the_default_pool_has_asyncios_default_executor_size() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = (cpus + 4).min(32);
    assert_eq!(most_at_once(asyncio::Runner::new(), n), n);
}

/// No thread at all could run nothing: refused at once, as Tokio does.
#[test]
#[should_panic(expected = "asyncio::Runner::max_blocking_threads(n): n must be at least 1")]
fn max_blocking_threads_zero_panics() {
    let _ = asyncio::Runner::new().max_blocking_threads(0);
}

/// A dropped (cancelled) `to_thread` whose closure still waits for a free thread is
/// never started (asyncio cancels the work item still queued in its
/// executor; checked with CPython 3.13 and `ThreadPoolExecutor(1)`); one
/// already running is not interrupted (`tt06`). With one thread, the queue
/// is first come, first served: a closure queued after it runs only once
/// the cancelled one was taken off the queue or run.
#[test]
fn a_cancelled_to_thread_still_queued_never_starts() {
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ran.clone();
    asyncio::Runner::new()
        .max_blocking_threads(1)
        .run(async move {
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let mut holder = asyncio::create_task(asyncio::to_thread(move || {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            }));
            started_rx.await.unwrap(); // the one thread is busy
            let r = ran.clone();
            let mut queued = Box::pin(asyncio::to_thread(move || {
                r.lock().unwrap().push("queued");
            }));
            // Its first poll submits the closure, behind the holder; dropping
            // it is what a cancellation of its awaiter (or a timeout) does.
            assert!(futures::poll!(queued.as_mut()).is_pending());
            drop(queued);
            gate_tx.send(()).unwrap();
            (&mut holder).await.unwrap().unwrap();
            let r = ran.clone();
            asyncio::to_thread(move || r.lock().unwrap().push("after"))
                .await
                .unwrap();
        });
    assert_eq!(*seen.lock().unwrap(), ["after"]);
}

/// `run_in_executor`: a future never awaited still runs its function (an
/// asyncio future nobody awaits), one given up after its first poll while
/// queued does not.
#[test]
fn run_in_executor_dropped_unpolled_runs_and_given_up_while_queued_does_not() {
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ran.clone();
    asyncio::Runner::new()
        .max_blocking_threads(1)
        .run(async move {
            let lp = asyncio::get_running_loop();
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let holder = lp.run_in_executor(move || {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            });
            started_rx.await.unwrap();
            let r = ran.clone();
            drop(lp.run_in_executor(move || r.lock().unwrap().push("unpolled")));
            let r = ran.clone();
            let mut given_up =
                Box::pin(lp.run_in_executor(move || r.lock().unwrap().push("given up")));
            assert!(futures::poll!(given_up.as_mut()).is_pending());
            drop(given_up);
            gate_tx.send(()).unwrap();
            holder.await.unwrap();
            let r = ran.clone();
            lp.run_in_executor(move || r.lock().unwrap().push("after"))
                .await
                .unwrap();
        });
    assert_eq!(*seen.lock().unwrap(), ["unpolled", "after"]);
}
