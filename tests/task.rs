//! The `Task` object: scheduling, cancellation, result/exception, awaiting.
//! Each test's name is the asyncio behaviour it pins down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use asyncio::{Error, Task};

/// Records whether a value was dropped, and whether its task looked done then.
struct DropProbe {
    dropped: Arc<AtomicBool>,
    task: Option<asyncio::TaskRef>,
    done_when_dropped: Arc<AtomicBool>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
        if let Some(t) = &self.task {
            self.done_when_dropped.store(t.done(), Ordering::SeqCst);
        }
    }
}

/// The task is scheduled at once but its body starts only when the
/// creator yields.
#[tokio::test(start_paused = true)]
async fn body_starts_when_the_creator_yields() {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let task = asyncio::create_task(async move { s.store(true, Ordering::SeqCst) });
    assert!(!started.load(Ordering::SeqCst));
    asyncio::sleep(0).await;
    assert!(started.load(Ordering::SeqCst));
    task.await.unwrap();
}

/// Tasks start in creation order (single-threaded runtime).
#[tokio::test(start_paused = true)]
async fn tasks_start_in_fifo_creation_order() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let order = order.clone();
            asyncio::create_task(async move { order.lock().unwrap().push(i) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

/// A task cancelled before its first step never runs its body and
/// ends cancelled.
#[tokio::test(start_paused = true)]
async fn cancel_before_start_never_runs_the_body() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let mut task = asyncio::create_task(async move { r.store(true, Ordering::SeqCst) });
    assert!(task.cancel());
    let err = (&mut task).await.unwrap_err();
    assert!(err.is_cancelled());
    assert!(!ran.load(Ordering::SeqCst));
    assert!(task.cancelled() && task.done());
}

/// Cancel() is true on every call while pending, false once done.
#[tokio::test(start_paused = true)]
async fn cancel_returns_true_while_pending_false_when_done() {
    let mut task = asyncio::create_task(asyncio::sleep(10));
    assert!(task.cancel());
    assert!(task.cancel());
    let _ = (&mut task).await;
    assert!(!task.cancel());

    let mut finished = asyncio::create_task(async { 1 });
    (&mut finished).await.unwrap();
    assert!(!finished.cancel());
    assert!(!finished.cancelled());
}

/// Cancel() only requests; cancelled() and done() stay false until
/// the task has actually ended.
#[tokio::test(start_paused = true)]
async fn cancelled_and_done_stay_false_until_the_end() {
    let mut task = asyncio::create_task(asyncio::sleep(10));
    asyncio::sleep(0).await; // the task is parked in its sleep
    task.cancel();
    assert!(!task.cancelled());
    assert!(!task.done());
    assert!(task.to_string().starts_with("<Task cancelling "));
    let _ = (&mut task).await;
    assert!(task.cancelled() && task.done());
}

/// The message given to cancel_with reaches the CancelledError;
/// cancel() without one gives none. The last message given wins here.
#[tokio::test(start_paused = true)]
async fn cancel_message_round_trip() {
    let mut task = asyncio::create_task(asyncio::sleep(10));
    task.cancel_with("first");
    task.cancel_with("second");
    match (&mut task).await {
        Err(Error::Cancelled(e)) => assert_eq!(e.message(), Some("second")),
        other => panic!("unexpected {other:?}"),
    }
    // Every later retrieval gives the same message.
    match task.result() {
        Err(Error::Cancelled(e)) => assert_eq!(e.message(), Some("second")),
        other => panic!("unexpected {other:?}"),
    }

    let plain = asyncio::create_task(asyncio::sleep(10));
    plain.cancel();
    match plain.await {
        Err(Error::Cancelled(e)) => assert_eq!(e.message(), None),
        other => panic!("unexpected {other:?}"),
    }
}

/// A task that cancels itself and then returns without awaiting ends
/// finished with its value: a returned value wins over a cancel request
/// (asyncio's test_tasks.py::test_cancel_at_end ends it cancelled: a
/// deliberate difference).
#[tokio::test(start_paused = true)]
async fn self_cancel_then_return_keeps_the_value() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let task = asyncio::create_task(async move {
        asyncio::current_task().unwrap().cancel_with("self");
        DropProbe {
            dropped: d,
            task: None,
            done_when_dropped: Arc::new(AtomicBool::new(false)),
        }
    });
    let r = task.to_ref();
    let value = task.await.expect("the value is kept");
    assert!(!r.cancelled() && r.done());
    assert_eq!(
        r.cancel_requested(),
        None,
        "the request ended with the task"
    );
    assert!(!dropped.load(Ordering::SeqCst), "handed to the awaiter");
    drop(value);
    assert!(dropped.load(Ordering::SeqCst));
}

/// The future and what it owns are dropped before the task is seen done
/// (as Tokio guarantees for JoinHandles), on every kind of end.
#[tokio::test(start_paused = true)]
async fn the_future_is_dropped_before_the_task_is_done() {
    for cancel in [false, true] {
        let dropped = Arc::new(AtomicBool::new(false));
        let done_when_dropped = Arc::new(AtomicBool::new(true));
        let (d, w) = (dropped.clone(), done_when_dropped.clone());
        let mut task = asyncio::create_task(async move {
            let _probe = DropProbe {
                dropped: d,
                task: asyncio::current_task(),
                done_when_dropped: w,
            };
            asyncio::sleep(1).await;
        });
        asyncio::sleep(0).await;
        if cancel {
            task.cancel();
        }
        let _ = (&mut task).await;
        assert!(dropped.load(Ordering::SeqCst));
        assert!(!done_when_dropped.load(Ordering::SeqCst), "cancel={cancel}");
        assert!(task.done());
    }
}

/// Result() and exception() in every state.
#[tokio::test(start_paused = true)]
async fn result_and_exception_in_every_state() {
    // pending
    let pending = asyncio::create_task(asyncio::sleep_with(10, 1));
    let e = pending.result().unwrap_err();
    assert!(e.is_invalid_state());
    assert_eq!(e.to_string(), "Result is not set.");
    let e = pending.exception().unwrap_err();
    assert_eq!(e.to_string(), "Exception is not set.");
    pending.cancel();

    // returned: result() clones, as often as asked
    let mut ok = asyncio::create_task(async { String::from("v") });
    while !ok.done() {
        asyncio::sleep(0).await;
    }
    assert_eq!(ok.result().unwrap(), "v");
    assert_eq!(ok.result().unwrap(), "v");
    assert!(ok.exception().unwrap().is_none());
    // an await takes the output: later reads say so
    assert_eq!((&mut ok).await.unwrap(), "v");
    assert!(ok.result().unwrap_err().is_invalid_state());
    assert!((&mut ok).await.unwrap_err().is_invalid_state());
    assert!(ok.exception().unwrap().is_none());

    // cancelled: both raise CancelledError
    let mut c = asyncio::create_task(asyncio::sleep(10));
    c.cancel();
    let _ = (&mut c).await;
    assert!(c.result().unwrap_err().is_cancelled());
    assert!(c.exception().unwrap_err().is_cancelled());

    // panicked: result() raises it, exception() returns it
    let mut p = asyncio::create_task(async { panic!("kaboom") });
    let _ = (&mut p).await;
    assert_eq!(
        p.result().unwrap_err(),
        Error::Panicked(asyncio::PanicError::new("kaboom"))
    );
    let e = p.exception().unwrap().unwrap();
    assert!(e.is_panic());
}

/// A panic inside a task ends it Panicked with its message and never takes
/// the runtime down: other tasks keep running (multi-thread runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_ends_the_task_not_the_runtime() {
    let survivor = asyncio::create_task(async {
        asyncio::sleep(0.01).await;
        "still here"
    });
    let formatted = asyncio::create_task(async {
        let n = 3;
        panic!("failed with {n}");
    });
    let opaque = asyncio::create_task(async { std::panic::panic_any(42u8) });
    match formatted.await {
        Err(Error::Panicked(e)) => assert_eq!(e.message(), "failed with 3"),
        other => panic!("unexpected {other:?}"),
    }
    match opaque.await {
        Err(Error::Panicked(e)) => assert_eq!(e.message(), "Box<dyn Any>"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(survivor.await.unwrap(), "still here");
}

/// A destructor that panics while the task is being cancelled ends the task
/// Panicked (asyncio: an exception raised while handling the cancel wins).
#[tokio::test(start_paused = true)]
async fn a_destructor_panicking_during_cancel_ends_the_task_panicked() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("cleanup failed");
        }
    }
    let mut task = asyncio::create_task(async {
        let _bomb = Bomb;
        asyncio::sleep(10).await;
    });
    asyncio::sleep(0).await;
    assert!(task.cancel(), "pending: the cancel is accepted");
    match (&mut task).await {
        Err(Error::Panicked(e)) => assert_eq!(e.message(), "cleanup failed"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!task.cancelled());
}

/// Awaiting by value ties the task to its awaiter: when the awaiting future
/// is dropped (here by a timeout), the task is cancelled.
#[tokio::test(start_paused = true)]
async fn dropping_a_by_value_await_cancels_the_task() {
    let task = asyncio::create_task(asyncio::sleep(10));
    let r = task.to_ref();
    let timed_out = tokio::time::timeout(Duration::from_secs(1), task).await;
    assert!(timed_out.is_err());
    while !r.done() {
        asyncio::sleep(0).await;
    }
    assert!(r.cancelled());
}

/// Cancelling an outer task that awaits an inner task by value
/// cancels the inner one too.
#[tokio::test(start_paused = true)]
async fn cancelling_the_awaiter_cancels_the_awaited_task() {
    let inner = asyncio::create_task(asyncio::sleep(10));
    let inner_ref = inner.to_ref();
    let outer = asyncio::create_task(async move { inner.await });
    asyncio::sleep(0).await;
    outer.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    while !inner_ref.done() {
        asyncio::sleep(0).await;
    }
    assert!(inner_ref.cancelled());
}

/// `(&mut task).await` has no tie: dropping it leaves the task running.
#[tokio::test(start_paused = true)]
async fn dropping_a_by_ref_await_leaves_the_task_running() {
    let mut task = asyncio::create_task(asyncio::sleep_with(5, "late"));
    let timed_out = tokio::time::timeout(Duration::from_secs(1), &mut task).await;
    assert!(timed_out.is_err());
    assert!(!task.cancelled());
    assert_eq!(task.await.unwrap(), "late");
}

/// A Task dropped without being awaited keeps running to completion (no
/// garbage-collection footgun as in Python).
#[tokio::test(start_paused = true)]
async fn a_dropped_task_runs_on() {
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let task = asyncio::create_task(async move {
        asyncio::sleep(1).await;
        f.store(true, Ordering::SeqCst);
    });
    let r = task.to_ref();
    drop(task);
    asyncio::sleep(2).await;
    assert!(finished.load(Ordering::SeqCst));
    assert!(r.done() && !r.cancelled());
}

/// The race between cancel() and completion, on the multi-thread runtime:
/// whatever the interleaving, a cancel() that returned false means the task
/// ended before; one that returned true means it ends cancelled, or
/// finished with its value if its future returned during the poll in which
/// the cancel came (a returned value is never lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_completion() {
    let mut cancelled = 0;
    for i in 0..2000u32 {
        let mut task = asyncio::create_task(async move {
            if i % 2 == 0 {
                tokio::task::yield_now().await;
            }
            i
        });
        let r = task.to_ref();
        let canceller = tokio::spawn(async move { r.cancel() });
        let said = canceller.await.unwrap();
        let out = (&mut task).await;
        if said {
            match out {
                Err(e) => {
                    assert!(e.is_cancelled(), "iteration {i}");
                    assert!(task.cancelled());
                    cancelled += 1;
                }
                Ok(v) => {
                    assert_eq!(v, i, "iteration {i}");
                    assert!(!task.cancelled());
                }
            }
        } else {
            assert_eq!(out.unwrap(), i);
            assert!(!task.cancelled());
        }
    }
    // Both outcomes must actually have happened for the test to mean much.
    assert!(cancelled > 0);
}

/// Many tasks on the multi-thread runtime: every output arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_each_output_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<Task<usize>> = (0..10_000)
        .map(|i| {
            let count = count.clone();
            asyncio::create_task(async move {
                count.fetch_add(1, Ordering::Relaxed);
                i
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), i);
    }
    assert_eq!(count.load(Ordering::Relaxed), 10_000);
}

/// Creating a task outside a runtime panics with a message that says
/// what to do.
#[test]
#[should_panic(expected = "no running event loop")]
fn create_task_outside_a_runtime_panics() {
    let _ = asyncio::create_task(async {});
}

/// Builder::spawn_on works from a thread with no runtime.
#[test]
fn spawn_on_from_a_plain_thread() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let handle = rt.handle().clone();
    let task = std::thread::spawn(move || {
        Task::builder().name("remote").spawn_on(
            async { asyncio::current_task().unwrap().get_name() },
            &handle,
        )
    })
    .join()
    .unwrap();
    assert_eq!(rt.block_on(async { task.await }).unwrap(), "remote");
}

/// A task that awaits its own `Task` (by reference, then by value) gets
/// `InvalidState` at once instead of hanging, is not cancelled for it, and
/// goes on to return (asyncio raises `RuntimeError: Task cannot await on
/// itself`).
#[test]
fn a_task_awaiting_itself_gets_invalid_state_instead_of_hanging() {
    for runner in [
        asyncio::Runner::new().current_thread(),
        asyncio::Runner::new().worker_threads(2),
    ] {
        runner.run(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<asyncio::Task<Vec<String>>>();
            let task = asyncio::create_task(async move {
                let mut me = rx.await.unwrap();
                let mut seen = Vec::new();
                let err = (&mut me).await.unwrap_err();
                assert!(err.is_invalid_state(), "{err:?}");
                seen.push(err.to_string());
                assert!(!me.cancelled() && !me.done());
                let err = me.await.unwrap_err(); // by value: no cancel either
                assert!(err.is_invalid_state(), "{err:?}");
                seen.push(err.to_string());
                assert!(
                    seen.iter()
                        .all(|m| m.contains("Task cannot await on itself"))
                );
                seen
            });
            let watch = task.to_ref();
            tx.send(task)
                .unwrap_or_else(|_| panic!("the task is waiting"));
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            watch.add_done_callback(move |t| {
                let _ = done_tx.send(t.cancelled());
            });
            assert!(!done_rx.await.unwrap(), "the task was cancelled");
            // The task returned; its only handle went with it.
            assert!(watch.done() && !watch.cancelled());
            assert!(watch.exception().unwrap().is_none());
        });
    }
}

/// A `cancel()` that returned `true` ends the task cancelled, unless the
/// task panics before the cancel takes effect: a panic wins over a cancel
/// request (as an exception raised while handling the cancel does in
/// asyncio), here a panic in the same poll as the task's own `cancel()`.
#[tokio::test(start_paused = true)]
async fn a_panic_after_an_accepted_cancel_ends_the_task_panicked() {
    let mut task = asyncio::create_task(async {
        assert!(asyncio::current_task().unwrap().cancel());
        panic!("after the cancel");
    });
    match (&mut task).await {
        Err(Error::Panicked(e)) => assert_eq!(e.message(), "after the cancel"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!task.cancelled());
}
