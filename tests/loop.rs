//! `asyncio::Loop` and `get_running_loop`: asyncio's loop methods that
//! porters use (`call_soon`, `call_later`, `call_at`, `time`,
//! `run_in_executor`), on Tokio's clock.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use asyncio::Loop;

mod common;

type Log = Arc<Mutex<Vec<&'static str>>>;

fn push(log: &Log, what: &'static str) -> impl FnOnce() + Send + 'static {
    let log = log.clone();
    move || log.lock().unwrap().push(what)
}

/// `get_running_loop()` outside a runtime: asyncio's RuntimeError
/// "no running event loop".
#[test]
#[should_panic(expected = "no running event loop")]
fn get_running_loop_outside_runtime_panics() {
    let _ = asyncio::get_running_loop();
}

/// `Loop` wraps a runtime handle: `From<Handle>`, `handle()`, and
/// `get_running_loop()` returns the loop of the current runtime.
#[tokio::test]
async fn loop_wraps_the_runtime_handle() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Loop>();
    let here = tokio::runtime::Handle::current();
    let lp = asyncio::get_running_loop();
    assert_eq!(lp.handle().id(), here.id());
    assert_eq!(Loop::from(here.clone()).handle().id(), here.id());
}

/// `call_soon` callbacks run soon, in scheduling order on a
/// current-thread runtime, outside any task (current_task() is None).
#[tokio::test]
async fn call_soon_runs_in_order_outside_tasks() {
    let lp = asyncio::get_running_loop();
    let log: Log = Arc::default();
    let outside = Arc::new(Mutex::new(Vec::new()));
    for word in ["a", "b", "c"] {
        let f = push(&log, word);
        let outside = outside.clone();
        lp.call_soon(move || {
            outside
                .lock()
                .unwrap()
                .push(asyncio::current_task().is_none());
            f();
        });
    }
    assert!(log.lock().unwrap().is_empty()); // never inline
    while log.lock().unwrap().len() < 3 {
        asyncio::sleep(0).await;
    }
    assert_eq!(*log.lock().unwrap(), ["a", "b", "c"]);
    assert_eq!(*outside.lock().unwrap(), [true, true, true]);
}

/// `Handle.cancel()`: a cancelled callback never runs; `cancelled()` reports it.
#[tokio::test]
async fn call_soon_cancel() {
    let lp = asyncio::get_running_loop();
    let log: Log = Arc::default();
    let h = lp.call_soon(push(&log, "cancelled"));
    lp.call_soon(push(&log, "kept"));
    assert!(!h.cancelled());
    h.cancel();
    assert!(h.cancelled());
    for _ in 0..5 {
        asyncio::sleep(0).await;
    }
    assert_eq!(*log.lock().unwrap(), ["kept"]);
}

/// `call_soon_threadsafe` from a plain thread reaches the loop.
#[test]
fn call_soon_threadsafe_from_plain_thread() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lp = Loop::from(rt.handle().clone());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for i in 0..100 {
            let tx = tx.clone();
            lp.call_soon_threadsafe(move || tx.send(i).unwrap());
        }
    });
    let mut got: Vec<i32> = (0..100)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

/// `call_later` timers fire in deadline order on the paused clock, each at
/// its time, not in scheduling order.
#[tokio::test(start_paused = true)]
async fn call_later_order_on_paused_clock() {
    let lp = asyncio::get_running_loop();
    let log: Log = Arc::default();
    let t0 = lp.time();
    let seen_at = Arc::new(Mutex::new(Vec::new()));
    for (delay, word) in [(3.0, "third"), (1.0, "first"), (2.0, "second")] {
        let f = push(&log, word);
        let seen_at = seen_at.clone();
        let lp2 = lp.clone();
        let timer = lp.call_later(delay, move || {
            seen_at.lock().unwrap().push(lp2.time() - t0);
            f();
        });
        assert!((timer.when().unwrap() - (t0 + delay)).abs() < 1e-6);
    }
    asyncio::sleep(0.5).await;
    assert!(log.lock().unwrap().is_empty());
    asyncio::sleep(5).await;
    assert_eq!(*log.lock().unwrap(), ["first", "second", "third"]);
    // Each ran at its deadline (Tokio's timer may round up by a millisecond).
    for (at, want) in seen_at.lock().unwrap().iter().zip([1.0, 2.0, 3.0]) {
        assert!(*at > want - 1e-6 && *at < want + 0.01, "{at} vs {want}");
    }
}

/// `call_at(when)` uses `time()`'s scale; ordering, cancel, a time in the
/// past (fires soon) and infinity (never fires, `when()` is None).
#[tokio::test(start_paused = true)]
async fn call_at_order_cancel_past_and_never() {
    let lp = asyncio::get_running_loop();
    let log: Log = Arc::default();
    let now = lp.time();
    lp.call_at(now + 2.0, push(&log, "at+2"));
    let cancelled = lp.call_at(now + 1.5, push(&log, "cancelled"));
    lp.call_at(now + 1.0, push(&log, "at+1"));
    lp.call_at(now - 10.0, push(&log, "past"));
    let never = lp.call_at(f64::INFINITY, push(&log, "never"));
    assert_eq!(never.when(), None);
    cancelled.cancel();
    assert!(cancelled.cancelled());
    asyncio::sleep(3).await;
    assert_eq!(*log.lock().unwrap(), ["past", "at+1", "at+2"]);
    let never_later = lp.call_later(None, push(&log, "never"));
    assert_eq!(never_later.when(), None);
    asyncio::sleep(1000).await;
    assert_eq!(log.lock().unwrap().len(), 3);
}

/// `call_at(NaN)` is a programming error with a clear message.
#[tokio::test]
#[should_panic(expected = "when is NaN")]
async fn call_at_nan_panics() {
    asyncio::get_running_loop().call_at(f64::NAN, || {});
}

/// `loop.time()` follows Tokio's paused clock exactly.
#[tokio::test(start_paused = true)]
async fn time_follows_paused_clock() {
    let lp = asyncio::get_running_loop();
    let t0 = lp.time();
    tokio::time::advance(Duration::from_secs(90)).await;
    assert!((lp.time() - t0 - 90.0).abs() < 1e-6);
    asyncio::sleep(10).await;
    let dt = lp.time() - t0;
    assert!((100.0 - 1e-6..100.01).contains(&dt), "{dt}");
}

/// `time()` read from another thread is the loop's clock, not that thread's.
#[test]
fn time_from_another_thread_is_the_loops_clock() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let lp = Loop::from(rt.handle().clone());
    let t0 = lp.time();
    rt.block_on(tokio::time::advance(Duration::from_secs(3600)));
    let seen = std::thread::spawn(move || lp.time()).join().unwrap();
    assert!((seen - t0 - 3600.0).abs() < 1e-6);
}

/// A panicking callback is reported to the exception handler
/// ("Exception in callback"), and the loop keeps running callbacks.
#[test]
fn panicking_callback_is_reported() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    asyncio::set_exception_handler(Some(move |ctx: &asyncio::ExceptionContext| {
        if let Some(asyncio::Error::Panicked(p)) = ctx.exception() {
            if p.message() == "callback exploded" {
                sink.lock().unwrap().push(ctx.message().to_string());
            }
        }
    }));
    asyncio::Runner::new().current_thread().run(async {
        let lp = asyncio::get_running_loop();
        let log: Log = Arc::default();
        lp.call_soon(|| panic!("callback exploded"));
        lp.call_later(0.01, || panic!("callback exploded"));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let still = push(&log, "still running");
        lp.call_later(0.02, move || {
            still();
            let _ = tx.send(());
        });
        rx.await.unwrap(); // no real-time margin: the last callback ran
        assert_eq!(*log.lock().unwrap(), ["still running"]);
    });
    asyncio::set_exception_handler(None::<fn(&asyncio::ExceptionContext)>);
    assert_eq!(
        *reports.lock().unwrap(),
        ["Exception in callback", "Exception in callback"]
    );
}

/// `run_in_executor` submits at once (no await needed), returns the value,
/// turns a panic into `Err(Panicked)`, and the calling task is visible inside.
#[test]
fn run_in_executor() {
    asyncio::run(async {
        let lp = asyncio::get_running_loop();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = lp.run_in_executor(move || tx.send("ran").unwrap());
        assert_eq!(rx.await.unwrap(), "ran"); // before `job` was ever polled
        job.await.unwrap();

        let me = asyncio::current_task().unwrap();
        let seen = lp.run_in_executor(asyncio::current_task).await.unwrap();
        assert_eq!(seen, Some(me));

        let err = lp.run_in_executor(|| panic!("pool job failed")).await;
        assert!(err.unwrap_err().is_panic());
    });
}

/// `run_in_executor` from a plain thread, on a loop built from a handle.
#[test]
fn run_in_executor_from_plain_thread() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lp = Loop::from(rt.handle().clone());
    let job = std::thread::spawn(move || lp.run_in_executor(|| 2 + 2))
        .join()
        .unwrap();
    assert_eq!(rt.block_on(job).unwrap(), 4);
}

/// A timer on a runtime without Tokio's time driver is refused at once, in
/// the caller, instead of silently never firing.
#[test]
#[should_panic(expected = "timers are disabled")]
fn call_later_without_a_time_driver_panics_in_the_caller() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let lp = asyncio::Loop::from(rt.handle().clone());
    let _ = lp.call_later(1, || {});
}

/// A loop whose runtime has shut down refuses new work at once with
/// asyncio's `Event loop is closed` and drops the callback (it used to hand
/// back a normal handle and drop the callback silently, never run);
/// `is_closed()` tells beforehand. Both runtime flavours.
#[test]
fn closed_loop_refuses_work_with_event_loop_is_closed() {
    type Attempt = fn(&Loop, Box<dyn FnOnce() + Send>);
    let attempts: [(&str, Attempt); 5] = [
        ("call_soon", |lp, f| drop(lp.call_soon(f))),
        ("call_soon_threadsafe", |lp, f| {
            drop(lp.call_soon_threadsafe(f))
        }),
        ("call_later", |lp, f| drop(lp.call_later(1, f))),
        ("call_at", |lp, f| drop(lp.call_at(lp.time() + 1.0, f))),
        ("run_in_executor", |lp, f| drop(lp.run_in_executor(f))),
    ];
    let runtimes = [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    ];
    for rt in runtimes {
        let lp = Loop::from(rt.handle().clone());
        assert!(!lp.is_closed());
        drop(rt);
        assert!(lp.is_closed());
        for (method, attempt) in attempts {
            let owned = Arc::new(());
            let held = owned.clone();
            let msg = common::panic_message(|| attempt(&lp, Box::new(move || drop(held))));
            assert!(msg.starts_with("Event loop is closed"), "{method}: {msg}");
            assert!(msg.contains(method), "{method}: {msg}");
            assert_eq!(Arc::strong_count(&owned), 1, "{method}: callback kept");
        }
    }
}

/// A delay beyond Tokio's 30-year horizon never fires and says so the same
/// way whatever its form: `when()` is `None` for `f64::MAX`, `1e300`,
/// `u64::MAX` seconds, `Duration::MAX` and a 31-year `Duration` alike, and
/// for `call_at` that far ahead (`u64::MAX` seconds and `Duration::MAX` used
/// to give `now + 946,080,000 s`). A delay within the horizon keeps its time.
#[tokio::test(start_paused = true)]
async fn huge_delays_never_fire_and_all_have_no_when() {
    const YEAR: u64 = 86400 * 365;
    let lp = asyncio::get_running_loop();
    let log: Log = Arc::default();
    let now = lp.time();
    let never = [
        lp.call_later(f64::MAX, push(&log, "f64::MAX")),
        lp.call_later(1e300, push(&log, "1e300")),
        lp.call_later(u64::MAX, push(&log, "u64::MAX")),
        lp.call_later(Duration::MAX, push(&log, "Duration::MAX")),
        lp.call_later(Duration::from_secs(31 * YEAR), push(&log, "31 years")),
        lp.call_at(f64::MAX, push(&log, "call_at(f64::MAX)")),
        lp.call_at(now + 1e12, push(&log, "call_at(now + 1e12)")),
    ];
    for timer in &never {
        assert_eq!(timer.when(), None);
    }
    let within = lp.call_later(Duration::from_secs(29 * YEAR), push(&log, "29 years"));
    let when = within.when().unwrap();
    assert!((when - now - (29 * YEAR) as f64).abs() < 1e-3, "{when}");
    tokio::time::advance(Duration::from_secs(32 * YEAR)).await;
    asyncio::sleep(0).await;
    assert_eq!(*log.lock().unwrap(), ["29 years"]);
}
