//! `wait_for`: Python 3.12 behaviour.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asyncio::Error;
use futures::FutureExt;
use tokio::time::Instant;

use common::settle;

/// Sets a flag when dropped: shows that a future's destructors ran.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The result of the inner comes back; its error too.
#[tokio::test(start_paused = true)]
async fn returns_the_result_and_propagates_the_error() {
    assert_eq!(asyncio::wait_for(asyncio::sleep_with(1, 5), 2).await, Ok(5));
    let bad = asyncio::create_task(async { panic!("inner") });
    assert!(asyncio::wait_for(bad, 2).await.unwrap_err().is_panic());
}

/// `None` waits forever, with no timer.
#[tokio::test(start_paused = true)]
async fn none_waits_forever() {
    let start = Instant::now();
    assert_eq!(
        asyncio::wait_for(asyncio::sleep_with(1000, 1), None).await,
        Ok(1)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1000));
    assert_eq!(
        asyncio::wait_for(async { 2 }, f64::INFINITY).await,
        Ok(2),
        "infinite seconds means no timeout"
    );
}

/// On timeout a plain future is dropped (its destructors have run)
/// before `Err(Timeout)` comes back, at the deadline.
#[tokio::test(start_paused = true)]
async fn timeout_drops_the_future_before_returning() {
    let start = Instant::now();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let r = asyncio::wait_for(
        async move {
            let _flag = flag;
            asyncio::sleep(10).await;
        },
        1.5,
    )
    .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}

/// On timeout a task is cancelled and has *ended* when `Err(Timeout)`
/// comes back.
#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_task_and_waits_for_its_end() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let task = asyncio::create_task(async move {
        let _flag = flag;
        asyncio::sleep(10).await;
    });
    let r = task.to_ref();
    assert!(asyncio::wait_for(task, 1).await.unwrap_err().is_timeout());
    assert!(r.done() && r.cancelled());
    assert!(dropped.load(Ordering::SeqCst));
}

/// A result ready at the deadline is returned, not lost (Python 3.11's
/// choice, kept here; see `docs/differences.md`).
#[tokio::test(start_paused = true)]
async fn result_ready_at_the_deadline_is_returned() {
    assert_eq!(
        asyncio::wait_for(asyncio::sleep_with(1, "v"), 1).await,
        Ok("v")
    );
    // a task woken by the same timer tick as the deadline
    let task = asyncio::create_task(asyncio::sleep_with(1, 8));
    assert_eq!(asyncio::wait_for(task, 1).await, Ok(8));
}

/// A zero timeout returns a ready result (future ready at once, task
/// already done), without advancing time.
#[tokio::test(start_paused = true)]
async fn zero_timeout_returns_a_ready_result() {
    let start = Instant::now();
    assert_eq!(asyncio::wait_for(async { 1 }, 0).await, Ok(1));
    let t = asyncio::create_task(async { 2 });
    settle(&t).await;
    assert_eq!(asyncio::wait_for(t, 0).await, Ok(2));
    assert_eq!(asyncio::wait_for(async { 3 }, -1).await, Ok(3));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// A zero (or negative) timeout on a pending inner cancels it and
/// returns `Err(Timeout)` at once, with no timer (Tokio would round a zero
/// timer up to 1 ms).
#[tokio::test(start_paused = true)]
async fn zero_timeout_on_a_pending_inner_times_out_at_once() {
    let start = Instant::now();
    assert!(
        asyncio::wait_for(asyncio::sleep(1), 0)
            .now_or_never()
            .expect("resolves at its first poll")
            .unwrap_err()
            .is_timeout()
    );
    let task = asyncio::create_task(asyncio::sleep(1));
    let r = task.to_ref();
    assert!(asyncio::wait_for(task, -5).await.unwrap_err().is_timeout());
    assert!(r.cancelled());
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// A plain future is polled in place: inside the caller's task, no
/// new task, and it may be neither `Send` nor `'static`.
#[tokio::test(start_paused = true)]
async fn plain_future_runs_in_the_callers_task() {
    let outer = asyncio::create_task(async {
        let me = asyncio::current_task().unwrap();
        let before = asyncio::all_tasks().len();
        let seen = asyncio::wait_for(
            async {
                assert_eq!(asyncio::all_tasks().len(), before);
                asyncio::current_task().unwrap()
            },
            1,
        )
        .await
        .unwrap();
        seen == me
    });
    assert!(outer.await.unwrap());

    let local = Rc::new(7); // not Send
    let borrowed = &local;
    assert_eq!(asyncio::wait_for(async { **borrowed }, 1).await, Ok(7));
}

/// Cancelling the awaiter cancels the inner: a task is cancelled, a
/// future dropped.
#[tokio::test(start_paused = true)]
async fn cancelling_the_awaiter_cancels_the_inner() {
    let inner = asyncio::create_task(asyncio::sleep(10));
    let inner_ref = inner.to_ref();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let outer = asyncio::create_task(async move {
        let _ = asyncio::wait_for(inner, 5).await;
    });
    let outer2 = asyncio::create_task(async move {
        let _ = asyncio::wait_for(
            async move {
                let _flag = flag;
                asyncio::sleep(10).await;
            },
            None,
        )
        .await;
    });
    asyncio::sleep(1).await;
    outer.cancel();
    outer2.cancel();
    assert!(outer.await.unwrap_err().is_cancelled());
    assert!(outer2.await.unwrap_err().is_cancelled());
    settle(&inner_ref).await;
    assert!(inner_ref.cancelled());
    assert!(dropped.load(Ordering::SeqCst));
}

/// An inner task cancelled by someone else gives `Err(Cancelled)`,
/// not `Err(Timeout)`.
#[tokio::test(start_paused = true)]
async fn inner_cancelled_by_someone_else_is_cancelled_not_timeout() {
    let inner = asyncio::create_task(asyncio::sleep(10));
    let r = inner.to_ref();
    let w = asyncio::create_task(asyncio::wait_for(inner, 5));
    asyncio::sleep(1).await;
    r.cancel_with("other");
    match w.await.unwrap() {
        Err(Error::Cancelled(c)) => assert_eq!(c.message(), Some("other")),
        other => panic!("unexpected {other:?}"),
    }
}

/// `wait_for(shield(task), t)` times out, the task runs on; also
/// with `t = 0`.
#[tokio::test(start_paused = true)]
async fn shielded_task_survives_the_timeout() {
    for timeout in [0.5, 0.0] {
        let task = asyncio::create_task(asyncio::sleep_with(1, 9));
        let r = task.to_ref();
        let res = asyncio::wait_for(asyncio::shield(task), timeout).await;
        assert!(res.unwrap_err().is_timeout());
        assert!(!r.cancelled());
        settle(&r).await;
        assert!(!r.cancelled());
    }
}

/// The clock starts at the first poll, not when `wait_for` is called.
#[tokio::test(start_paused = true)]
async fn the_clock_starts_at_the_first_poll() {
    let start = Instant::now();
    let inner = tokio::time::sleep_until(start + Duration::from_secs(3));
    let w = asyncio::wait_for(inner, 2);
    asyncio::sleep(2).await;
    assert_eq!(
        w.await,
        Ok(()),
        "deadline is 2 s + 2 s, the inner ends at 3 s"
    );
}

/// On timeout, a task running a gather is cancelled (which cancels
/// the gather's child); `wait_for` returns only after the task ended, at the
/// deadline.
#[tokio::test(start_paused = true)]
async fn returns_only_once_the_task_ended() {
    let start = Instant::now();
    let task = asyncio::create_task(asyncio::gather([asyncio::sleep_with(10, 1)]));
    let r = task.to_ref();
    assert!(asyncio::wait_for(task, 2).await.unwrap_err().is_timeout());
    assert!(r.done());
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// Races on the multi-thread runtime: a task finishing around the deadline
/// gives either its value or a timeout after its end, never a lost wakeup.
#[test]
fn multi_thread_deadline_races() {
    asyncio::Runner::new().worker_threads(2).run(async {
        for i in 0..200u64 {
            let task = asyncio::create_task(asyncio::sleep_with(Duration::from_micros(i * 5), i));
            let r = task.to_ref();
            match asyncio::wait_for(task, Duration::from_micros(500)).await {
                Ok(v) => assert_eq!(v, i),
                Err(e) => {
                    assert!(e.is_timeout());
                    assert!(r.done());
                }
            }
        }
    });
}

/// A NaN timeout is refused while the task is still the caller's: the task
/// is dropped as it is (and runs on), not cancelled as a timed-out one.
#[tokio::test]
async fn nan_timeout_panics_without_cancelling_the_task() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = asyncio::create_task(async move {
        let _ = rx.await;
        7
    });
    let r = task.to_ref();
    let msg = common::panic_message(|| asyncio::wait_for(task, f64::NAN));
    assert!(msg.contains("NaN"), "{msg}");
    tx.send(()).unwrap();
    settle(&r).await;
    assert!(!r.cancelled());
}

/// `wait_for` is a timeout scope over a plain future: at the timeout the
/// future's `on_cancel` cleanup runs to its end (it may await) before
/// `Err(Timeout)`.
#[tokio::test(start_paused = true)]
async fn a_timeout_runs_the_inputs_cleanup_before_returning() {
    use asyncio::CancelExt;
    let t0 = tokio::time::Instant::now();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = log.clone();
    let r = asyncio::wait_for(
        asyncio::sleep(10).on_cancel(move || async move {
            asyncio::sleep(0.5).await;
            l.lock().unwrap().push("closed");
        }),
        1,
    )
    .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(*log.lock().unwrap(), ["closed"]);
    assert_eq!(t0.elapsed(), std::time::Duration::from_millis(1500));
}

/// A task cancelled while it waits in `wait_for` cleans up inside the
/// input, and ends cancelled (the timeout does not report it).
#[tokio::test(start_paused = true)]
async fn a_cancel_of_the_waiting_task_reaches_the_inputs_cleanup() {
    use asyncio::CancelExt;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = log.clone();
    let guarded = asyncio::sleep(10).on_cancel(move || async move {
        asyncio::sleep(0.1).await;
        l.lock().unwrap().push("closed");
    });
    let task = asyncio::create_task(async move { asyncio::wait_for(guarded, 5).await });
    asyncio::sleep(1).await;
    task.cancel();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(*log.lock().unwrap(), ["closed"]);
}

/// A future that starts an `on_cancel` only after its first pending poll;
/// its cleanup logs "closed".
fn starts_a_cleanup_late(
    log: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
) -> impl std::future::Future<Output = ()> + Send {
    use asyncio::CancelExt;
    async move {
        asyncio::sleep(0.5).await;
        asyncio::sleep(10)
            .on_cancel(move || async move {
                asyncio::sleep(0.1).await;
                log.lock().unwrap().push("closed");
            })
            .await
    }
}

/// An `on_cancel` that the input starts only after its first pending poll
/// (its scope is made then) still has its cleanup run by the timeout.
#[tokio::test(start_paused = true)]
async fn a_timeout_runs_the_cleanup_of_a_scope_started_after_the_first_poll() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = asyncio::wait_for(starts_a_cleanup_late(log.clone()), 1).await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(*log.lock().unwrap(), ["closed"]);
}

/// A task cancelled while it waits in `wait_for` reaches an `on_cancel` the
/// input started only after its first pending poll.
#[tokio::test(start_paused = true)]
async fn a_cancel_of_the_waiting_task_reaches_a_cleanup_started_late() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let guarded = starts_a_cleanup_late(log.clone());
    let task = asyncio::create_task(async move { asyncio::wait_for(guarded, 5).await });
    asyncio::sleep(1).await;
    task.cancel();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(*log.lock().unwrap(), ["closed"]);
}
