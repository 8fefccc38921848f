//! A panic inside a task of ours is the task's error, as an exception is in
//! asyncio: nothing is printed when it happens; it is reported through the
//! exception handler ("Task exception was never retrieved", with the message
//! and the location) only when the task's last `Task` handle goes without
//! anyone having seen it, and not at all when it was seen.
//!
//! The exception handler is process-wide and the tests of this file run in
//! parallel threads: one capturing handler is installed once, and each test
//! looks only at the reports about its own, uniquely named tasks.

use asyncio::{Runner, Task};

mod reports;

use reports::{capture, lost_reports_for};

fn run<F: Future>(fut: F) -> F::Output {
    capture();
    Runner::new().worker_threads(2).run(fut)
}

/// Waits for `t` to end, through a done callback.
async fn settle(t: &asyncio::TaskRef) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    t.add_done_callback(move |_| {
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Awaited (by value or by reference), `result()`, `exception()` on the
/// `Task` or through a `TaskRef` in a done callback, `cancel()`: each counts
/// as seeing the panic, so nothing is reported (asyncio's
/// `test_tasks.py::test_exception_was_never_retrieved` family: a retrieved
/// exception is not logged).
#[test]
fn a_panic_that_was_seen_is_not_reported() {
    run(async {
        let t = Task::builder()
            .name("seen-by-value")
            .spawn(async { panic!("x") });
        assert!(t.await.unwrap_err().is_panic());

        let mut t = Task::builder()
            .name("seen-by-ref")
            .spawn(async { panic!("x") });
        assert!((&mut t).await.unwrap_err().is_panic());
        drop(t);

        let t = Task::builder()
            .name("seen-result")
            .spawn(async { panic!("x") });
        settle(&t).await;
        assert!(t.result().unwrap_err().is_panic());
        drop(t);

        let t = Task::builder()
            .name("seen-in-callback")
            .spawn(async { panic!("x") });
        let (tx, rx) = tokio::sync::oneshot::channel();
        t.add_done_callback(move |r| {
            let _ = tx.send(r.exception().unwrap().is_some());
        });
        assert!(rx.await.unwrap());
        drop(t);

        let t = Task::builder()
            .name("seen-cancel")
            .spawn(async { panic!("x") });
        settle(&t).await;
        assert!(!t.cancel());
        drop(t);
    });
    for name in [
        "seen-by-value",
        "seen-by-ref",
        "seen-result",
        "seen-in-callback",
        "seen-cancel",
    ] {
        assert!(lost_reports_for(name).is_empty(), "{name}");
    }
}

/// A panic nobody saw, the handle dropped after the task ended: one report,
/// with the message and the place of the panic; debug mode is off.
#[test]
fn an_unseen_panic_is_reported_once_with_message_and_location() {
    let line = run(async {
        // The panic is on the line of the `spawn` call.
        let t = Task::builder()
            .name("unseen-after")
            .spawn(async { panic!("lost") });
        let line = t.spawned_at().line();
        settle(&t).await;
        drop(t);
        line
    });
    let reports = lost_reports_for("unseen-after");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let text = &reports[0].1;
    assert!(text.contains("task panicked: lost"), "{text}");
    let at = format!("panicked at {}:{line}:", file!());
    assert!(text.contains(&at), "{at} in {text}");
}

/// The handle dropped while the task still runs, the task then panics: one
/// report, when it ends.
#[test]
fn an_unseen_panic_after_the_handle_went_is_reported_once() {
    run(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let t = Task::builder().name("unseen-before").spawn(async move {
            let _ = rx.await;
            panic!("lost later");
        });
        let r = t.to_ref();
        drop(t);
        tx.send(()).unwrap();
        settle(&r).await;
    });
    assert_eq!(lost_reports_for("unseen-before").len(), 1);
}

/// `TaskRef`s are not handles: a panic whose `Task` is still alive is not
/// reported, whatever happens to the `TaskRef`s.
#[test]
fn a_live_task_handle_holds_the_report_back() {
    let t = run(async {
        let t = Task::builder().name("held").spawn(async { panic!("held") });
        settle(&t).await;
        drop(t.to_ref());
        t
    });
    assert!(lost_reports_for("held").is_empty());
    drop(t);
    assert_eq!(lost_reports_for("held").len(), 1);
}
