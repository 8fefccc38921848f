//! Done callbacks: `add_done_callback` / `remove_done_callback` as in
//! asyncio, and what this crate promises beyond it (never under a lock,
//! panics contained and reported).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use asyncio::{ExceptionContext, TaskRef};

type Log = Arc<Mutex<Vec<String>>>;

/// Serialises the tests that replace the process-wide exception handler.
static HANDLER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

/// Waits (yielding, never sleeping on a clock) until `cond` holds.
async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never became true");
}

/// Each registration runs exactly once, in registration order,
/// after the task ended, and sees the task done — for every kind of end.
#[tokio::test(start_paused = true)]
async fn callbacks_run_once_in_order_after_every_kind_of_end() {
    for end in ["return", "panic", "cancel"] {
        let log = log();
        let mut task = asyncio::create_task(async move {
            asyncio::sleep(1).await;
            if end == "panic" {
                panic!("boom");
            }
        });
        for i in 0..3 {
            let log = log.clone();
            task.add_done_callback(move |t| push(&log, format!("{i}:{}", t.done())));
        }
        if end == "cancel" {
            asyncio::sleep(0).await;
            task.cancel();
        }
        assert!(log.lock().unwrap().is_empty(), "ran before the end ({end})");
        let _ = (&mut task).await;
        assert_eq!(
            *log.lock().unwrap(),
            ["0:true", "1:true", "2:true"],
            "{end}"
        );
    }
}

/// Registering the same kind of callback twice gives two calls.
#[tokio::test(start_paused = true)]
async fn each_registration_is_one_call() {
    let calls = Arc::new(AtomicUsize::new(0));
    let task = asyncio::create_task(async {});
    for _ in 0..2 {
        let calls = calls.clone();
        task.add_done_callback(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
        });
    }
    task.await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// On a task already done, the callback is scheduled, never called
/// inside add_done_callback; it runs soon after.
#[tokio::test(start_paused = true)]
async fn on_a_done_task_the_callback_is_scheduled_not_inline() {
    let mut task = asyncio::create_task(async { 5 });
    (&mut task).await.unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    task.add_done_callback(move |t| {
        assert!(t.done());
        r.store(true, Ordering::SeqCst);
    });
    assert!(!ran.load(Ordering::SeqCst), "ran inline");
    until(|| ran.load(Ordering::SeqCst)).await;
}

/// Outside any runtime, a callback on a done task still runs (on a thread of
/// its own), never inline.
#[test]
fn on_a_done_task_outside_a_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let task = rt.block_on(async {
        let mut t = asyncio::create_task(async {});
        (&mut t).await.unwrap();
        t
    });
    let (tx, rx) = std::sync::mpsc::channel();
    task.add_done_callback(move |t| tx.send(t.id()).unwrap());
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap(),
        task.id()
    );
}

/// Callbacks run with no crate lock held: one may call back into its task
/// (name, state, a new callback) and cancel another task without deadlock.
#[tokio::test(start_paused = true)]
async fn a_callback_may_reenter_the_crate() {
    let log = log();
    let other = asyncio::create_task(asyncio::sleep(10));
    let other_ref = other.to_ref();
    let task = asyncio::Task::builder().name("first").spawn(async {});
    let l = log.clone();
    task.add_done_callback(move |t: &TaskRef| {
        t.set_name("renamed in callback");
        push(&l, t.get_name());
        push(&l, format!("cancel other: {}", other_ref.cancel()));
        let l2 = l.clone();
        t.add_done_callback(move |t| push(&l2, format!("nested on {}", t.get_name())));
        assert!(!t.cancel()); // done: false, and no deadlock
    });
    task.await.unwrap();
    assert!(other.await.unwrap_err().is_cancelled());
    until(|| log.lock().unwrap().len() == 3).await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "renamed in callback",
            "cancel other: true",
            "nested on renamed in callback"
        ]
    );
}

/// Inside a done callback there is no current task.
#[tokio::test(start_paused = true)]
async fn no_current_task_inside_a_callback() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let task = asyncio::create_task(async {});
    task.add_done_callback(move |_| *s.lock().unwrap() = Some(asyncio::current_task().is_none()));
    task.await.unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

/// A panicking callback is reported to the exception handler and does not
/// stop the callbacks after it, nor the runtime.
#[tokio::test(start_paused = true)]
async fn a_panicking_callback_is_reported_and_contained() {
    let _serial = HANDLER.lock().await;
    let reports: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let r = reports.clone();
    asyncio::set_exception_handler(Some(move |ctx: &ExceptionContext| {
        let task = ctx.task().map(|t| t.get_name()).unwrap_or_default();
        if task == "cb-panics" {
            r.lock().unwrap().push((
                ctx.message().to_string(),
                ctx.exception().map(|e| e.to_string()).unwrap_or_default(),
                task,
            ));
        }
    }));
    let log = log();
    let task = asyncio::Task::builder().name("cb-panics").spawn(async {});
    task.add_done_callback(|_| panic!("callback exploded"));
    let l = log.clone();
    task.add_done_callback(move |_| push(&l, "second ran"));
    task.await.unwrap();
    asyncio::set_exception_handler(None::<fn(&ExceptionContext)>);
    assert_eq!(*log.lock().unwrap(), ["second ran"]);
    assert_eq!(
        *reports.lock().unwrap(),
        [(
            "Exception in callback".to_string(),
            "task panicked: callback exploded".to_string(),
            "cb-panics".to_string()
        )]
    );
}

/// `remove_done_callback` returns how many it removed (0 or 1); a removed
/// callback never runs; an id from another task removes nothing; after the
/// end nothing can be removed.
#[tokio::test(start_paused = true)]
async fn remove_done_callback_counts() {
    let ran = Arc::new(AtomicUsize::new(0));
    let a = asyncio::create_task(asyncio::sleep(1));
    let b = asyncio::create_task(asyncio::sleep(1));
    let r = ran.clone();
    let id = a.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let r = ran.clone();
    let kept = a.add_done_callback(move |_| {
        r.fetch_add(10, Ordering::SeqCst);
    });
    assert_eq!(b.remove_done_callback(id), 0);
    assert_eq!(a.remove_done_callback(id), 1);
    assert_eq!(a.remove_done_callback(id), 0);
    let a_ref = a.to_ref();
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 10);
    assert_eq!(a_ref.remove_done_callback(kept), 0);
}

/// add_done_callback racing the task's end on the multi-thread runtime:
/// every callback runs exactly once, whichever side wins. No time bound: each
/// callback owns a sender, so the channel closes exactly when every callback
/// has run or been dropped, and the count must then be exactly `n`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_done_callback_racing_completion() {
    let n = 2000;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    for i in 0..n {
        let task = asyncio::create_task(async move {
            if i % 2 == 0 {
                tokio::task::yield_now().await;
            }
        });
        let r = task.to_ref();
        let tx = tx.clone();
        tokio::spawn(async move { r.add_done_callback(move |_| tx.send(i).unwrap()) })
            .await
            .unwrap();
        task.await.unwrap();
    }
    drop(tx);
    let mut seen = vec![0u32; n];
    while let Some(i) = rx.recv().await {
        seen[i] += 1;
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "some callback did not run exactly once"
    );
}

/// Callbacks added after the end still run in registration order, one at a
/// time, on the multi-thread runtime too (they share one queue per task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_callbacks_run_in_registration_order() {
    for _ in 0..200 {
        let mut task = asyncio::create_task(async {});
        (&mut task).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        for i in 0..5 {
            let tx = tx.clone();
            task.add_done_callback(move |_| tx.send(i).unwrap());
        }
        drop(tx);
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            got.push(i);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }
}

/// A callback added while the earlier ones are still running (from inside
/// one of them) runs after them, never beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_added_while_draining_runs_after() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&str>();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    // Held until both callbacks are registered: the task cannot end between
    // the two registrations.
    let mut task = asyncio::create_task(async move {
        let _ = wait.await;
    });
    let t1 = tx.clone();
    task.add_done_callback(move |t: &TaskRef| {
        let t2 = t1.clone();
        t.add_done_callback(move |_| t2.send("added during").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
        t1.send("first").unwrap();
    });
    let t3 = tx.clone();
    task.add_done_callback(move |_| t3.send("second").unwrap());
    drop(tx);
    go.send(()).unwrap();
    (&mut task).await.unwrap();
    let mut got = Vec::new();
    while let Some(s) = rx.recv().await {
        got.push(s);
    }
    assert_eq!(got, ["first", "second", "added during"]);
}

/// A callback registered while the runtime shuts down (from a destructor of
/// a task being dropped) is not lost: it runs on a thread of its own.
#[test]
fn a_callback_added_during_shutdown_still_runs() {
    let (tx, rx) = std::sync::mpsc::channel::<&str>();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut done = asyncio::create_task(async {});
        (&mut done).await.unwrap();
        let done = done.to_ref();
        struct AddOnDrop(TaskRef, std::sync::mpsc::Sender<&'static str>);
        impl Drop for AddOnDrop {
            fn drop(&mut self) {
                let tx = self.1.clone();
                self.0.add_done_callback(move |_| tx.send("ran").unwrap());
            }
        }
        let (started, has_started) = tokio::sync::oneshot::channel();
        let guard = AddOnDrop(done, tx);
        let _t = asyncio::create_task(async move {
            let _g = guard;
            let _ = started.send(());
            std::future::pending::<()>().await;
        });
        has_started.await.unwrap();
    });
    drop(rt); // drops the pending task, whose destructor adds the callback
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)),
        Ok("ran")
    );
}

/// A done callback gets a `&TaskRef` and reads the outcome through it, as
/// asyncio's callbacks call `fut.result()` / `fut.exception()`: returned,
/// panicked and cancelled tasks, and a wrong output type.
#[test]
fn a_done_callback_reads_the_outcome_through_the_task_ref() {
    type Seen = (
        asyncio::Result<String>,
        asyncio::Result<u8>,
        asyncio::Result<Option<asyncio::Error>>,
    );
    fn look(t: &TaskRef) -> Seen {
        (t.result_as::<String>(), t.result_as::<u8>(), t.exception())
    }
    asyncio::Runner::new().worker_threads(2).run(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(&str, Seen)>();
        let returned = asyncio::create_task(async { "ok".to_string() });
        let panicked = asyncio::create_task(async { panic!("bad input") });
        let (_gate, wait) = tokio::sync::oneshot::channel::<()>();
        let cancelled = asyncio::create_task(async move {
            let _ = wait.await;
            String::new()
        });
        for (label, task) in [
            ("returned", &returned),
            ("panicked", &panicked),
            ("cancelled", &cancelled),
        ] {
            let tx = tx.clone();
            task.add_done_callback(move |t| {
                let _ = tx.send((label, look(t)));
            });
        }
        drop(tx);
        cancelled.cancel();
        let mut seen = std::collections::HashMap::new();
        while let Some((label, s)) = rx.recv().await {
            seen.insert(label, s);
        }

        let (s, wrong, e) = &seen["returned"];
        assert_eq!(s.as_deref().unwrap(), "ok");
        assert!(wrong.as_ref().unwrap_err().is_invalid_state());
        assert!(e.as_ref().unwrap().is_none());

        let (s, _, e) = &seen["panicked"];
        assert!(s.as_ref().unwrap_err().is_panic());
        let e = e.as_ref().unwrap().as_ref().unwrap();
        assert!(e.is_panic() && e.to_string().contains("bad input"), "{e}");

        let (s, _, e) = &seen["cancelled"];
        assert!(s.as_ref().unwrap_err().is_cancelled());
        assert!(e.as_ref().unwrap_err().is_cancelled());

        // Still readable afterwards, by value and by reference.
        assert_eq!(returned.to_ref().result_as::<String>().unwrap(), "ok");
        assert_eq!(returned.await.unwrap(), "ok");
        let _ = panicked.await;
    });
}

/// `result_as` on a pending task, and after an await took the output:
/// `InvalidState`, as `Task::result`.
#[test]
fn result_as_is_invalid_state_while_pending_and_after_the_output_was_taken() {
    asyncio::Runner::new().current_thread().run(async {
        let mut task = asyncio::create_task(async { 1u32 });
        let r = task.to_ref();
        assert!(r.result_as::<u32>().unwrap_err().is_invalid_state());
        assert!(r.exception().unwrap_err().is_invalid_state());
        assert_eq!((&mut task).await.unwrap(), 1);
        assert!(r.result_as::<u32>().unwrap_err().is_invalid_state());
        assert!(r.exception().unwrap().is_none());
    });
}
