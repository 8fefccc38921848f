//! Helpers shared by the combinator and runner tests (each test binary uses
//! some of them).
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use asyncio::TaskRef;

/// The `say_after` coroutine of asyncio's classic `gather` example, printing
/// into `out`:
///
/// ```python
/// async def say_after(delay, what):
///     for i in range(5):
///         await asyncio.sleep(delay)
///         print(what, end='')
///     return "Done."
/// ```
pub fn say_after(
    out: &Arc<Mutex<String>>,
    delay: u64,
    what: &'static str,
) -> impl Future<Output = &'static str> + Send + 'static {
    let out = out.clone();
    async move {
        for _ in 0..5 {
            asyncio::sleep(delay).await;
            out.lock().unwrap().push_str(what);
        }
        "Done."
    }
}

/// Waits until `t` ended, through a done callback: no busy loop, so the
/// paused clock can advance.
#[allow(dead_code)] // not every test binary uses every helper
pub async fn settle(t: &TaskRef) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    t.add_done_callback(move |_| {
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// A future that records whether it was ever polled, and its flag.
#[allow(dead_code)] // not every test binary uses every helper
pub fn polled_flag() -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let set = flag.clone();
    (flag, async move {
        set.store(true, std::sync::atomic::Ordering::SeqCst);
    })
}

/// Runs `f`, which must panic, and returns its panic message.
#[allow(dead_code)] // not every test binary uses every helper
pub fn panic_message<R>(f: impl FnOnce() -> R) -> String {
    let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => payload,
    };
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A log of what cleanups and tasks did, in order (shared by the cancel
/// scope tests).
pub type Log = Arc<Mutex<Vec<String>>>;

/// An empty [`Log`].
pub fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// Appends `s` to `log`.
pub fn push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

/// What `log` holds now.
pub fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// A multi-thread runtime with two workers and every driver, for races.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
