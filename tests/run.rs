//! `asyncio::run` and `Runner`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use asyncio::{ExceptionContext, Runner, Task, TaskRef};
use common::say_after;

/// Run returns main's value.
#[test]
fn run_returns_mains_value() {
    assert_eq!(asyncio::run(async { 40 + 2 }), 42);
}

/// main may borrow from the caller's stack and need not be Send: it runs on
/// the calling thread.
#[test]
fn main_may_borrow_and_be_not_send() {
    let greeting = String::from("hello");
    let rc = std::rc::Rc::new(5);
    let out = asyncio::run(async {
        asyncio::sleep(0).await;
        format!("{greeting} {rc}")
    });
    assert_eq!(out, "hello 5");
}

/// A panic in main comes out of run unchanged (same payload).
#[test]
#[should_panic(expected = "main failed")]
fn a_panic_in_main_propagates() {
    asyncio::run(async {
        asyncio::sleep(0).await;
        panic!("main failed");
    });
}

/// Run inside a running runtime panics with asyncio's message.
#[tokio::test]
#[should_panic(expected = "asyncio::run() cannot be called from a running event loop")]
async fn run_inside_a_runtime_panics() {
    asyncio::run(async {});
}

/// Runner::run says who it is.
#[tokio::test]
#[should_panic(expected = "asyncio::Runner::run() cannot be called from a running event loop")]
async fn runner_run_inside_a_runtime_panics() {
    Runner::new().run(async {});
}

/// Main runs as a task of ours, listed in all_tasks.
#[test]
fn main_is_a_task() {
    asyncio::run(async {
        let me = asyncio::current_task().expect("main is a task");
        assert!(asyncio::all_tasks().contains(&me));
        assert!(me.get_name().starts_with("Task-"));
    });
}

/// A cancelled main task makes run panic with a clear message.
#[test]
#[should_panic(expected = "asyncio::run(): the main task was cancelled")]
fn cancelling_main_panics_out_of_run() {
    asyncio::run(async {
        asyncio::current_task().unwrap().cancel();
        asyncio::sleep(1).await;
    });
}

/// At the end of run, leftover tasks are cancelled once and
/// awaited (their destructors have run when run returns); also when main
/// panicked.
#[test]
fn leftover_tasks_are_cancelled_and_awaited() {
    for main_panics in [false, true] {
        let cleaned = Arc::new(AtomicBool::new(false));
        let leftover: Arc<Mutex<Option<TaskRef>>> = Arc::default();
        let (c, l) = (cleaned.clone(), leftover.clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            asyncio::run(async move {
                struct Cleanup(Arc<AtomicBool>);
                impl Drop for Cleanup {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let (started, has_started) = tokio::sync::oneshot::channel();
                let t = asyncio::create_task(async move {
                    let _cleanup = Cleanup(c);
                    let _ = started.send(());
                    asyncio::sleep(3600).await;
                });
                *l.lock().unwrap() = Some(t.to_ref());
                has_started.await.unwrap();
                if main_panics {
                    panic!("main gave up");
                }
            })
        }));
        assert_eq!(outcome.is_err(), main_panics);
        assert!(cleaned.load(Ordering::SeqCst));
        assert!(leftover.lock().unwrap().as_ref().unwrap().cancelled());
    }
}

/// A leftover that ends with a panic while being cancelled is
/// reported to the exception handler; one that just ends cancelled is not.
#[test]
fn a_leftover_panicking_during_shutdown_is_reported() {
    let reports: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = reports.clone();
    asyncio::set_exception_handler(Some(move |ctx: &ExceptionContext| {
        r.lock().unwrap().push(format!(
            "{} / {} / {}",
            ctx.message(),
            ctx.task().map(|t| t.get_name()).unwrap_or_default(),
            ctx.exception().map(|e| e.to_string()).unwrap_or_default()
        ));
    }));
    asyncio::run(async {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("cleanup failed");
            }
        }
        let (started, has_started) = tokio::sync::oneshot::channel();
        let _bomb = Task::builder().name("bomb").spawn(async {
            let _b = Bomb;
            let _ = started.send(());
            asyncio::sleep(3600).await;
        });
        let _quiet = Task::builder().name("quiet").spawn(asyncio::sleep(3600));
        has_started.await.unwrap();
    });
    asyncio::set_exception_handler(None::<fn(&ExceptionContext)>);
    assert_eq!(
        *reports.lock().unwrap(),
        [
            "unhandled exception during asyncio.run() shutdown / bomb / task panicked: cleanup failed"
        ]
    );
}

/// A task created while the leftovers are being cancelled is not
/// waited for; run still returns.
#[test]
fn tasks_created_during_shutdown_do_not_block_run() {
    asyncio::run(async {
        struct SpawnOnDrop;
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let _ = asyncio::create_task(asyncio::sleep(3600));
            }
        }
        let (started, has_started) = tokio::sync::oneshot::channel();
        let _t = asyncio::create_task(async {
            let _s = SpawnOnDrop;
            let _ = started.send(());
            asyncio::sleep(3600).await;
        });
        has_started.await.unwrap();
    });
}

/// Every run builds a new runtime; runs can follow each other.
#[test]
fn runs_follow_each_other() {
    let a = asyncio::run(async { tokio::runtime::Handle::current().id() });
    let b = asyncio::run(async { tokio::runtime::Handle::current().id() });
    let _ = (a, b); // ids may be reused once a runtime is gone; both runs worked
}

/// Runner::current_thread runs every task on the calling thread.
#[test]
fn current_thread_runner() {
    let caller = std::thread::current().id();
    Runner::new().current_thread().run(async move {
        let t = asyncio::create_task(async { std::thread::current().id() });
        assert_eq!(t.await.unwrap(), caller);
    });
}

/// `asyncio::run` is asyncio's one-thread event loop: a task created by main
/// runs on the calling thread and not before main reaches an `await` that
/// yields, however long main keeps busy first; created tasks then start in
/// creation order.
#[test]
fn run_starts_a_child_only_when_its_creator_awaits() {
    let caller = std::thread::current().id();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    asyncio::run(async move {
        let push = |l: &Arc<Mutex<Vec<String>>>, s: &str| l.lock().unwrap().push(s.to_owned());
        let children: Vec<Task<()>> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let l = l.clone();
                asyncio::create_task(async move {
                    assert_eq!(std::thread::current().id(), caller);
                    push(&l, &format!("{name} starts"));
                })
            })
            .collect();
        // On a multi-thread runtime the children would run in this pause.
        std::thread::sleep(std::time::Duration::from_millis(20));
        push(&l, "main awaits");
        asyncio::sleep(0).await;
        push(&l, "main resumes");
        for c in children {
            c.await.unwrap();
        }
    });
    assert_eq!(
        *log.lock().unwrap(),
        ["main awaits", "a starts", "b starts", "main resumes"]
    );
}

/// A port of an asyncio program, run with `asyncio::run` as the Python one
/// is, prints in the same order as CPython 3.13 does:
///
/// ```python
/// async def say_after(delay, what):
///     for i in range(5):
///         await asyncio.sleep(delay)
///         print(what, end='')
///     return "Done."
///
/// async def main():
///     print(await asyncio.gather(
///         say_after(3, '3-'), say_after(1, '1-'), say_after(2, '2-')))
///
/// asyncio.run(main())
/// # 1-2-1-3-1-2-1-1-3-2-2-3-2-3-3-['Done.', 'Done.', 'Done.']
/// ```
///
/// Tokio's paused clock makes the timing exact.
#[test]
fn the_gather_example_prints_in_cpythons_order() {
    let out: Arc<Mutex<String>> = Arc::default();
    let o = out.clone();
    let result = asyncio::run(async move {
        tokio::time::pause();
        asyncio::gather!(
            say_after(&o, 3, "3-"),
            say_after(&o, 1, "1-"),
            say_after(&o, 2, "2-")
        )
        .await
    });
    assert_eq!(*out.lock().unwrap(), "1-2-1-3-1-2-1-1-3-2-2-3-2-3-3-");
    assert_eq!(result.unwrap(), ("Done.", "Done.", "Done."));
}

/// Runner::worker_threads(n) gives n workers that really run tasks in
/// parallel: n tasks that each wait until all n have arrived all get there,
/// each on its own thread, none on the calling thread (which drives main).
#[test]
fn worker_threads_runs_tasks_on_n_workers_in_parallel() {
    let caller = std::thread::current().id();
    for n in [1, 3] {
        let (workers, threads) = Runner::new().worker_threads(n).run(async move {
            let arrived = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
            let tasks: Vec<Task<(bool, std::thread::ThreadId)>> = (0..n)
                .map(|_| {
                    let arrived = arrived.clone();
                    asyncio::create_task(async move {
                        // Blocks this worker until n tasks are in here at once.
                        let (count, cv) = &*arrived;
                        let mut c = count.lock().unwrap();
                        *c += 1;
                        cv.notify_all();
                        let (c, timeout) = cv
                            .wait_timeout_while(c, std::time::Duration::from_secs(30), |c| *c < n)
                            .unwrap();
                        drop(c);
                        (!timeout.timed_out(), std::thread::current().id())
                    })
                })
                .collect();
            let mut threads = Vec::new();
            for t in tasks {
                let (all_arrived, thread) = t.await.unwrap();
                assert!(all_arrived, "{n} tasks never ran at the same time");
                threads.push(thread);
            }
            (
                tokio::runtime::Handle::current().metrics().num_workers(),
                threads,
            )
        });
        assert_eq!(workers, n);
        let distinct: std::collections::HashSet<_> = threads.iter().collect();
        assert_eq!(distinct.len(), n);
        assert!(!distinct.contains(&caller));
    }
}

/// `current_thread()` after `worker_threads(n)` goes back to one thread.
#[test]
fn current_thread_undoes_worker_threads() {
    let caller = std::thread::current().id();
    Runner::new()
        .worker_threads(2)
        .current_thread()
        .run(async move {
            let t = asyncio::create_task(async { std::thread::current().id() });
            assert_eq!(t.await.unwrap(), caller);
            assert_eq!(tokio::runtime::Handle::current().metrics().num_workers(), 1);
        });
}

/// worker_threads(0) is refused with a message that says what to do.
#[test]
#[should_panic(expected = "n must be at least 1")]
fn zero_worker_threads_panics() {
    let _ = Runner::new().worker_threads(0);
}

/// Shutdown gives blocking threads a bounded grace period: a thread
/// that never finishes does not keep run from returning.
#[test]
fn shutdown_timeout_bounds_the_wait_for_blocking_threads() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    Runner::new().shutdown_timeout(0.05).run(async move {
        tokio::task::spawn_blocking(move || {
            let _ = rx.recv(); // blocked until the test ends
        });
        asyncio::sleep(0).await;
    });
    drop(tx);
}

/// Like an aborted task, a main task whose cancel was requested is not
/// resumed past its suspension point, even if what it waits for arrives.
/// One thread, so that the cancel surely comes while main is suspended (on
/// several, `_other` may run while main is still in its first poll, before
/// it reaches `rx`: then main has no suspension point left and runs to its
/// end, which still ends it cancelled, as a task that is cancelled while it
/// returns).
#[test]
fn a_cancelled_main_is_not_resumed() {
    let resumed = Arc::new(AtomicBool::new(false));
    let r = resumed.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Runner::new().current_thread().run(async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let main = asyncio::current_task().unwrap();
            let _other = asyncio::create_task(async move {
                main.cancel();
                let _ = tx.send(());
            });
            let _ = rx.await;
            r.store(true, Ordering::SeqCst);
        })
    }));
    assert!(outcome.is_err());
    assert!(!resumed.load(Ordering::SeqCst));
}
