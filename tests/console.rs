//! tokio-console sees our tasks where the user spawned them. Built only with
//! `RUSTFLAGS="--cfg tokio_unstable" cargo test --features tracing --test
//! console` (Tokio's task hooks are unstable); empty otherwise.
#![cfg(all(tokio_unstable, feature = "tracing"))]

use std::sync::{Arc, Mutex};

/// Tokio records the line that called `create_task` / `Builder::spawn` /
/// `spawn_on` as the task's spawn location, not a line of this crate.
#[test]
fn tokio_sees_the_users_spawn_location() {
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let sink = seen.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_task_spawn(move |meta| {
            let at = meta.spawned_at();
            sink.lock()
                .unwrap()
                .push((at.file().to_string(), at.line()));
        })
        .build()
        .unwrap();
    let lines = rt.block_on(async {
        let a = line!() + 1;
        let t1 = asyncio::create_task(async {});
        let b = line!() + 1;
        let t2 = asyncio::Task::builder().name("named").spawn(async {});
        let _ = t1.await;
        let _ = t2.await;
        [a, b]
    });
    let c = line!() + 1;
    let t3 = asyncio::Task::builder().spawn_on(async {}, rt.handle());
    rt.block_on(async { t3.await.unwrap() });
    let seen = seen.lock().unwrap();
    for line in [lines[0], lines[1], c] {
        assert!(
            seen.contains(&(file!().to_string(), line)),
            "line {line} not in {seen:?}"
        );
    }
}
