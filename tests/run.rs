//! `asyncio::run` and `Runner` (RUN-01..RUN-12).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use asyncio::{ExceptionContext, Runner, Task, TaskRef};

/// RUN-01: run returns main's value.
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

/// RUN-02: a panic in main comes out of run unchanged (same payload).
#[test]
#[should_panic(expected = "main failed")]
fn a_panic_in_main_propagates() {
    asyncio::run(async {
        asyncio::sleep(0).await;
        panic!("main failed");
    });
}

/// RUN-03: run inside a running runtime panics with asyncio's message.
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

/// RUN-08: main runs as a task of ours, listed in all_tasks.
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

/// RUN-09/RUN-10: at the end of run, leftover tasks are cancelled once and
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

/// RUN-09(c): a leftover that ends with a panic while being cancelled is
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

/// RUN-11: a task created while the leftovers are being cancelled is not
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

/// RUN-05: every run builds a new runtime; runs can follow each other.
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

/// Runner::worker_threads sets the worker count.
#[test]
fn worker_threads_runner() {
    let workers = Runner::new()
        .worker_threads(3)
        .run(async { tokio::runtime::Handle::current().metrics().num_workers() });
    assert_eq!(workers, 3);
}

/// worker_threads(0) is refused with a message that says what to do.
#[test]
#[should_panic(expected = "n must be at least 1")]
fn zero_worker_threads_panics() {
    let _ = Runner::new().worker_threads(0);
}

/// RUN-13: shutdown gives blocking threads a bounded grace period: a thread
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
