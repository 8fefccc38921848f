//! Debug mode (asyncio's `loop.set_debug(True)`): slow-poll warnings
//! (`slow_callback_duration`), "Task exception was never retrieved",
//! creation backtraces; and nothing of it when debug mode is off.
//!
//! The exception handler is process-wide and the tests of this file run in
//! parallel threads: one capturing handler is installed once, and each test
//! looks only at the reports about its own, uniquely named tasks.

use std::time::Duration;

use asyncio::{Runner, Task};

mod reports;

use reports::{capture, lost_reports_for, reports_for};

/// A task called `name` that panicked with `msg`, once it has ended.
async fn panicked(name: &str, msg: &'static str) -> Task<()> {
    let t = Task::builder()
        .name(name)
        .spawn(async move { panic!("{msg}") });
    while !t.done() {
        asyncio::sleep(0).await;
    }
    t
}

fn run_debug<F: Future>(debug: bool, fut: F) -> F::Output {
    capture();
    Runner::new().current_thread().debug(debug).run(fut)
}

/// A poll that blocks the worker longer than the slow-callback threshold
/// gives exactly one warning naming the task and its creation site
/// (asyncio: "Executing <Task …> took 0.250 seconds" in debug mode).
#[test]
fn slow_poll_gives_one_warning() {
    let line = run_debug(true, async {
        let line = line!() + 1;
        let t = Task::builder().name("slow-poll").spawn(async {
            std::thread::sleep(Duration::from_millis(250));
        });
        t.await.unwrap();
        line
    });
    let reports = reports_for("slow-poll");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (msg, _) = &reports[0];
    assert!(
        msg.starts_with("Executing <Task pending name='slow-poll'"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("created at {}:{line}>", file!())),
        "{msg}"
    );
    assert!(msg.ends_with(" seconds"), "{msg}");
}

/// The main task's slow poll is reported too: main runs as a task.
#[test]
fn slow_poll_of_the_main_task() {
    let name = run_debug(true, async {
        let me = asyncio::current_task().unwrap();
        me.set_name("slow-main");
        std::thread::sleep(Duration::from_millis(250));
        me.get_name()
    });
    assert_eq!(reports_for(&name).len(), 1);
}

/// Debug mode off: a slow poll is not reported.
#[test]
fn debug_off_no_slow_poll_warning() {
    run_debug(false, async {
        let t = Task::builder().name("slow-quiet").spawn(async {
            std::thread::sleep(Duration::from_millis(250));
        });
        t.await.unwrap();
    });
    assert!(reports_for("slow-quiet").is_empty());
}

/// Debug mode is inherited: a task created by a task created in debug mode
/// is checked too.
#[test]
fn debug_mode_is_inherited() {
    run_debug(true, async {
        let outer = asyncio::create_task(async {
            let inner = Task::builder().name("slow-grandchild").spawn(async {
                std::thread::sleep(Duration::from_millis(150));
            });
            inner.await.unwrap();
        });
        outer.await.unwrap();
    });
    assert_eq!(reports_for("slow-grandchild").len(), 1);
}

/// A panicked task whose handle is dropped after it ended, with nobody
/// having seen the panic: one "Task exception was never retrieved".
#[test]
fn unretrieved_panic_after_end_is_reported_once() {
    run_debug(true, async {
        let t = panicked("lost-after", "lost").await;
        drop(t);
    });
    let reports = lost_reports_for("lost-after");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].0, "Task exception was never retrieved");
    assert!(
        reports[0].1.contains("task panicked: lost"),
        "{}",
        reports[0].1
    );
    // debug mode: the report shows where the task came from
    assert!(reports[0].1.contains("task created at"), "{}", reports[0].1);
}

/// The handle dropped before the task panics: reported when it ends.
#[test]
fn unretrieved_panic_before_end_is_reported_once() {
    run_debug(true, async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let t = Task::builder().name("lost-before").spawn(async move {
            let _ = rx.await;
            panic!("lost later");
        });
        let r = t.to_ref();
        drop(t);
        tx.send(()).unwrap();
        while !r.done() {
            asyncio::sleep(0).await;
        }
    });
    assert_eq!(lost_reports_for("lost-before").len(), 1);
}

/// Awaiting, result(), exception() and cancel() (even on a done task)
/// all count as seeing the panic: no report.
#[test]
fn retrieved_panics_are_not_reported() {
    run_debug(true, async {
        let awaited = Task::builder()
            .name("seen-await")
            .spawn(async { panic!("x") });
        assert!(awaited.await.unwrap_err().is_panic());

        let t = panicked("seen-result", "x").await;
        assert!(t.result().is_err());
        drop(t);

        let t = panicked("seen-exception", "x").await;
        assert!(t.exception().unwrap().is_some());
        drop(t);

        let t = panicked("seen-cancel", "x").await;
        assert!(!t.cancel());
        drop(t);
    });
    for name in ["seen-await", "seen-result", "seen-exception", "seen-cancel"] {
        assert!(lost_reports_for(name).is_empty(), "{name}");
    }
}

/// Debug mode off: a lost panic is reported all the same (asyncio logs
/// "Task exception was never retrieved" whatever the debug mode), without
/// the creation backtrace.
#[test]
fn debug_off_unretrieved_panic_is_reported_too() {
    run_debug(false, async {
        let t = panicked("lost-quiet", "quiet").await;
        drop(t);
    });
    let reports = lost_reports_for("lost-quiet");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        !reports[0].1.contains("task created at"),
        "{}",
        reports[0].1
    );
}

/// Creates a pending task. Never inlined, and the call is not its last
/// instruction (so not a tail call that replaces its frame), so that its name
/// is in the creation backtrace in every profile: in release, the test's own
/// function and its async block are inlined away and their names are not.
#[inline(never)]
fn spawn_pending_task_for_the_backtrace() -> asyncio::Task<()> {
    let task = asyncio::create_task(std::future::pending::<()>());
    std::hint::black_box(&task);
    task
}

/// Debug mode: print_stack and `{:#?}` show the creation backtrace, which
/// runs through the function that created the task; off, they do not.
#[test]
fn creation_backtrace_in_debug_mode_only() {
    for debug in [true, false] {
        let (printed, pretty, plain) = run_debug(debug, async {
            let t = spawn_pending_task_for_the_backtrace();
            let mut out = Vec::new();
            t.print_stack(None, &mut out).unwrap();
            let res = (
                String::from_utf8(out).unwrap(),
                format!("{t:#?}"),
                format!("{t:?}"),
            );
            t.cancel();
            res
        });
        assert_eq!(
            printed.contains("Task created at (most recent call first):"),
            debug
        );
        assert_eq!(
            printed.contains("spawn_pending_task_for_the_backtrace"),
            debug
        );
        assert_eq!(
            pretty.contains("spawn_pending_task_for_the_backtrace"),
            debug
        );
        assert!(!plain.contains('\n'));
        assert_eq!(printed.lines().count() == 2, !debug);
    }
}

/// `ASYNCIO_DEBUG=1` switches debug mode on for `asyncio::run` when the
/// runner does not say; without it, debug mode is off. The test
/// checks the mode it runs under, then runs itself again in a child process
/// with the variable set.
#[test]
fn asyncio_debug_env_switches_debug_mode_on() {
    let env_on = std::env::var_os("ASYNCIO_DEBUG").is_some_and(|v| v == "1");
    let has_backtrace = asyncio::run(async {
        let t = asyncio::create_task(std::future::pending::<()>());
        let mut out = Vec::new();
        t.print_stack(None, &mut out).unwrap();
        t.cancel();
        String::from_utf8(out).unwrap().contains("Task created at")
    });
    assert_eq!(has_backtrace, env_on);
    if !env_on {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["asyncio_debug_env_switches_debug_mode_on", "--exact"])
            .env("ASYNCIO_DEBUG", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}

/// `Runner::debug(true)` reaches tasks created outside our tasks too (a raw
/// Tokio task, a done callback, another thread), not only the ones that
/// inherit it from a parent task.
#[test]
fn runner_debug_reaches_tasks_created_outside_our_tasks() {
    let (from_raw, from_callback) = asyncio::Runner::new().debug(true).run(async {
        let raw = tokio::spawn(async { asyncio::create_task(async {}).to_ref() })
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let t = asyncio::create_task(async {});
        t.add_done_callback(move |_| {
            let _ = tx.send(asyncio::create_task(async {}).to_ref());
        });
        let _ = t.await;
        (raw, rx.await.unwrap())
    });
    for task in [from_raw, from_callback] {
        assert!(format!("{task:#?}").contains("created at (most recent call first)"));
    }
}
