//! `Loop::time()` at the start of a process. Its own test binary, so this is
//! the process's first reading of loop time.

/// The first `Loop::time()` of a process is not negative (it was a hair
/// below zero, and on a paused clock below zero by as long as the runtime
/// had existed), and the readings that follow never go down.
#[tokio::test(start_paused = true)]
async fn first_loop_time_of_a_process_is_not_negative() {
    let lp = asyncio::get_running_loop();
    let first = lp.time();
    assert!(first >= 0.0, "{first}");
    let mut last = first;
    for _ in 0..3 {
        asyncio::sleep(0.5).await;
        let t = lp.time();
        assert!(t >= last, "{t} < {last}");
        last = t;
    }
    // Another runtime, on the real clock, built after the first reading.
    let real = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        asyncio::Loop::from(rt.handle().clone()).time()
    })
    .join()
    .unwrap();
    assert!(real >= 0.0, "{real}");
}
