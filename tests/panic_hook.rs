//! The crate's panic hook and the hooks around it, in one test (a panic
//! hook is process-wide; this binary has this one test only): panics inside
//! our tasks are not passed to the hook that was there before, every other
//! panic is; a hook installed afterwards replaces ours, and a task's panic
//! is then still its error and still reported when never retrieved, only
//! without its location.

use std::sync::{Arc, Mutex};

use asyncio::{ExceptionContext, Runner, Task};

type Seen = Arc<Mutex<Vec<String>>>;

/// A hook that records the panic messages it is given.
fn recording_hook(seen: &Seen) -> Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> {
    let seen = seen.clone();
    Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        seen.lock().unwrap().push(msg);
    })
}

fn has(seen: &Seen, msg: &str) -> bool {
    seen.lock().unwrap().iter().any(|m| m == msg)
}

#[test]
fn panics_in_tasks_skip_the_previous_hook_and_others_reach_it() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    asyncio::set_exception_handler(Some(move |ctx: &ExceptionContext| {
        sink.lock().unwrap().push(ctx.to_string());
    }));

    // The user's hook first; the crate's is installed by the first task.
    let before: Seen = Seen::default();
    std::panic::set_hook(recording_hook(&before));
    Runner::new().worker_threads(2).run(async {
        let t = asyncio::create_task(async { panic!("in a task") });
        assert!(t.await.unwrap_err().is_panic());
        let raw = tokio::spawn(async { panic!("in a raw tokio task") });
        assert!(raw.await.unwrap_err().is_panic());
    });
    let _ = std::thread::spawn(|| panic!("on a plain thread")).join();
    let main = std::panic::catch_unwind(|| {
        Runner::new()
            .current_thread()
            .run(async { panic!("in main") })
    });
    assert!(main.is_err());
    assert!(!has(&before, "in a task"), "{:?}", before.lock().unwrap());
    for msg in ["in a raw tokio task", "on a plain thread", "in main"] {
        assert!(has(&before, msg), "{msg}: {:?}", before.lock().unwrap());
    }

    // A hook installed afterwards replaces ours: it sees the task's panic,
    // which is still the task's error and still reported when unseen, but
    // without the place of the panic.
    let after: Seen = Seen::default();
    std::panic::set_hook(recording_hook(&after));
    let t = Runner::new().current_thread().run(async {
        let t = Task::builder()
            .name("after-hook")
            .spawn(async { panic!("later") });
        let (tx, rx) = tokio::sync::oneshot::channel();
        t.add_done_callback(move |_| {
            let _ = tx.send(());
        });
        let _ = rx.await;
        t
    });
    assert!(has(&after, "later"));
    assert!(t.get_stack(None).iter().all(|f| f.name() != "<panic>"));
    drop(t);
    let _ = std::panic::take_hook();
    let reports = reports.lock().unwrap();
    let lost: Vec<&String> = reports
        .iter()
        .filter(|r| r.contains("name='after-hook'"))
        .collect();
    assert_eq!(lost.len(), 1, "{reports:?}");
    assert!(lost[0].starts_with("Task exception was never retrieved"));
    assert!(lost[0].contains("task panicked: later") && !lost[0].contains("panicked at"));
}
