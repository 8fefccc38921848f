//! Wrapping existing Tokio code: `Task::from_join_handle`, `Builder::wrap`,
//! `From<JoinHandle<T>>`, and the whole crate under `#[tokio::main]` /
//! `#[tokio::test]` (both flavours) without `asyncio::run`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::Task;

/// Sets a flag when dropped: shows that an aborted Tokio task's future was
/// dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn names() -> Vec<String> {
    asyncio::all_tasks().iter().map(|t| t.get_name()).collect()
}

/// A Tokio task adopted with a name is listed by all_tasks (TK: named
/// tasks), returns its value, and leaves the list when done.
#[tokio::test]
async fn adopted_task_is_named_listed_and_returns() {
    let raw = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        "served"
    });
    let task = Task::builder().name("conn-1").wrap(raw);
    assert_eq!(task.get_name(), "conn-1");
    assert!(names().contains(&"conn-1".to_string()));
    let r = task.to_ref();
    assert_eq!(task.await.unwrap(), "served");
    assert!(r.done() && !r.cancelled());
    assert!(!names().contains(&"conn-1".to_string()));
}

/// `cancel()` on the adopted task aborts the Tokio task (its future is
/// dropped) and the task ends cancelled, with the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_aborts_the_tokio_task() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let raw = tokio::spawn(async move {
        let _flag = flag;
        std::future::pending::<()>().await
    });
    let raw_abort = raw.abort_handle();
    let mut task = Task::from_join_handle(raw);
    asyncio::sleep(0.01).await;
    assert!(task.cancel_with("shutting down"));
    match (&mut task).await {
        Err(asyncio::Error::Cancelled(e)) => assert_eq!(e.message(), Some("shutting down")),
        other => panic!("expected cancelled, got {other:?}"),
    }
    while !raw_abort.is_finished() {
        asyncio::sleep(0.001).await;
    }
    assert!(dropped.load(Ordering::SeqCst));
}

/// Done callbacks of the adopted task fire once, in order, after its end.
#[tokio::test]
async fn callbacks_fire() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let task: Task<u8> = tokio::spawn(async { 1 }).into();
    for i in 0..2 {
        let log = log.clone();
        task.add_done_callback(move |t| log.lock().unwrap().push((i, t.done())));
    }
    assert_eq!(task.await.unwrap(), 1);
    asyncio::sleep(0).await;
    assert_eq!(*log.lock().unwrap(), [(0, true), (1, true)]);
}

/// A panic in the Tokio task becomes `Err(Panicked)` with its message.
#[tokio::test]
async fn panic_becomes_panicked() {
    let task = Task::from_join_handle(tokio::spawn(async { panic!("handler crashed") }));
    match task.await {
        Err(asyncio::Error::Panicked(p)) => assert_eq!(p.message(), "handler crashed"),
        other => panic!("expected a panic, got {other:?}"),
    }
}

/// A Tokio task aborted by its original owner ends the adopted task cancelled.
#[tokio::test]
async fn abort_from_elsewhere_ends_cancelled() {
    let raw = tokio::spawn(std::future::pending::<()>());
    let abort = raw.abort_handle();
    let mut task = Task::from_join_handle(raw);
    abort.abort();
    assert!((&mut task).await.unwrap_err().is_cancelled());
    assert!(task.cancelled());
}

/// The adopted task records where it was adopted and shows a readable coro.
#[tokio::test]
async fn adopted_task_introspection() {
    let task = Task::from_join_handle(tokio::spawn(async { 1u32 }));
    let line = line!() - 1;
    assert_eq!(task.spawned_at().line(), line);
    assert!(
        task.get_coro().contains("JoinHandleTask<u32>"),
        "{}",
        task.get_coro()
    );
    task.await.unwrap();
}

/// Adopting outside a runtime: asyncio's "no running event loop".
#[test]
#[should_panic(expected = "no running event loop")]
fn adopt_outside_runtime_panics() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let raw = rt.spawn(async {});
    let _ = Task::from_join_handle(raw);
}

/// The crate's core calls under a Tokio runtime we did not build: tasks,
/// names, current/all tasks, cancel, sleep, to_thread, callbacks, the loop.
async fn everything_works_here() {
    let me_outside = asyncio::current_task();
    assert!(
        me_outside.is_none(),
        "the #[tokio::...] main future is not a task of ours"
    );

    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let child = Task::builder().name("child").spawn(async move {
        let me = asyncio::current_task().unwrap();
        let _ = wait.await; // pending until listed
        me.get_name()
    });
    assert!(names().contains(&"child".to_string()));
    go.send(()).unwrap();
    assert_eq!(child.await.unwrap(), "child");

    let mut victim = asyncio::create_task(asyncio::sleep(3600));
    assert!(victim.cancel());
    assert!((&mut victim).await.unwrap_err().is_cancelled());

    let from_thread = asyncio::create_task(async {
        asyncio::to_thread(|| asyncio::current_task().map(|t| t.id())).await
    });
    let id = from_thread.id();
    assert_eq!(from_thread.await.unwrap().unwrap(), Some(id));

    let (tx, rx) = tokio::sync::oneshot::channel();
    asyncio::get_running_loop().call_later(0.01, move || tx.send(5).unwrap());
    assert_eq!(rx.await.unwrap(), 5);

    let lp = asyncio::get_running_loop();
    let fut = asyncio::run_coroutine_threadsafe(asyncio::sleep_with(0.01, 7), &lp);
    assert_eq!(fut.await.unwrap(), 7);

    let adopted = Task::builder()
        .name("adopted")
        .wrap(tokio::spawn(async { 8 }));
    assert_eq!(adopted.await.unwrap(), 8);
}

/// `#[tokio::test]` (current_thread flavour), no `asyncio::run`.
#[tokio::test]
async fn under_tokio_test_current_thread() {
    everything_works_here().await;
}

/// `#[tokio::test]` (multi_thread flavour), no `asyncio::run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tokio_test_multi_thread() {
    everything_works_here().await;
}

/// `#[tokio::test(start_paused = true)]`: sleeps on the paused clock.
#[tokio::test(start_paused = true)]
async fn under_tokio_test_paused() {
    let start = tokio::time::Instant::now();
    let t = asyncio::create_task(asyncio::sleep_with(3600, "an hour later"));
    assert_eq!(t.await.unwrap(), "an hour later");
    assert!(start.elapsed() >= Duration::from_secs(3600));
}

#[tokio::main(flavor = "current_thread")]
async fn tokio_main_current_thread() {
    everything_works_here().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_main_multi_thread() {
    everything_works_here().await;
}

/// `#[tokio::main]` (both flavours), no `asyncio::run`.
#[test]
fn under_tokio_main_both_flavours() {
    tokio_main_current_thread();
    tokio_main_multi_thread();
}

/// `all_tasks()` inside a runtime lists that runtime's tasks only.
#[test]
fn all_tasks_is_per_runtime() {
    let a = tokio::runtime::Runtime::new().unwrap();
    let b = tokio::runtime::Runtime::new().unwrap();
    let in_a = a.block_on(async {
        Task::builder()
            .name("only-in-a")
            .spawn(asyncio::sleep(3600))
    });
    let seen_from_b = b.block_on(async { names() });
    assert!(!seen_from_b.contains(&"only-in-a".to_string()));
    let seen_from_a = a.block_on(async { names() });
    assert!(seen_from_a.contains(&"only-in-a".to_string()));
    in_a.cancel();
}

/// Cancel racing the adopted task's end, on the multi-thread runtime, in a
/// loop: `cancel()` false means it returned; true means it ends cancelled,
/// or finished with its value if the value came as the cancel did (a
/// returned value is never lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_races_adopted_completion() {
    for i in 0..300u32 {
        let mut task = Task::from_join_handle(tokio::spawn(async move { i }));
        if i % 2 == 0 {
            tokio::task::yield_now().await;
        }
        let cancelled = task.cancel();
        match (&mut task).await {
            Ok(v) => assert_eq!(v, i),
            Err(e) => assert!(cancelled && e.is_cancelled(), "{e:?}"),
        }
    }
}
