//! A tour of the crate: each section is the Rust twin of a short Python
//! asyncio snippet, quoted above it. `asyncio::run` is asyncio's one-thread
//! event loop, so the output comes in the order Python prints it.
//!
//! Run it with `cargo run --example tour`.

use std::sync::{Arc, Mutex};

use asyncio::FramedExt;

fn section(title: &str) {
    println!("\n== {title}");
}

// ---------------------------------------------------------------------- run
//
// async def my_routine():
//     await asyncio.sleep(1)
//     print('Done.')
//
// asyncio.run(my_routine())
async fn my_routine() {
    asyncio::sleep(0.1).await;
    println!("Done.");
}

fn tour_run() {
    section("run");
    asyncio::run(my_routine());
}

// -------------------------------------------------------------- create_task
//
// task = asyncio.create_task(my_routine(), name="Name of the task")
async fn tour_create_task() {
    section("create_task");
    let task = asyncio::Task::builder()
        .name("Name of the task")
        .spawn(my_routine());
    println!("created {task}");
    task.await.unwrap();
    let unnamed = asyncio::create_task(async {});
    println!("an unnamed task is called {}", unnamed.get_name());
    unnamed.await.unwrap();
}

// -------------------------------------------------------------------- sleep
//
// async def my_routine(msg):
//     result = await asyncio.sleep(5, ' world')
//     assert msg + result == 'hello world', 'No hello world'
async fn tour_sleep(msg: &str) {
    section("sleep");
    let result = asyncio::sleep_with(0.1, " world").await;
    assert_eq!(format!("{msg}{result}"), "hello world", "No hello world");
    println!("{msg}{result}");
}

// ------------------------------------------------------------------- gather
//
// async def say_after(delay, what):
//     for i in range(5):
//         await asyncio.sleep(delay)
//         print(what, end='')
//     return "Done."
//
// result = await asyncio.gather(say_after(3, '3-'), say_after(1, '1-'), say_after(2, '2-'))
// print(result)   # 1-2-1-3-1-2-1-1-3-2-2-3-2-3-3-['Done.', 'Done.', 'Done.']
async fn say_after_5(delay: f64, what: &'static str) -> &'static str {
    for _ in 0..5 {
        asyncio::sleep(delay).await;
        print!("{what}");
    }
    "Done."
}

async fn tour_gather() {
    section("gather");
    // The Python waits 1, 2, 3 seconds; a tenth of that keeps the tour short.
    // Ties (two tasks due at the same instant) print in the order the timer
    // fires them, which on a real clock may differ from Python's; the exact
    // output is checked on Tokio's paused clock by tests/gather.rs.
    let result = asyncio::gather([
        say_after_5(0.3, "3-"),
        say_after_5(0.1, "1-"),
        say_after_5(0.2, "2-"),
    ])
    .await
    .unwrap();
    println!("{result:?}");
    // return_exceptions=True: errors in place instead of raised
    let cancelled = asyncio::create_task(asyncio::sleep_with(10, "never"));
    cancelled.cancel_with("not needed");
    let results = asyncio::gather([asyncio::create_task(async { "fine" }), cancelled])
        .return_exceptions()
        .await;
    println!("with return_exceptions: {results:?}");
    // mixed types: gather!(a, b)
    let (n, s) = asyncio::gather!(async { 1 }, async { "one" })
        .await
        .unwrap();
    println!("gather!: ({n}, {s:?})");
}

// ----------------------------------------------------------------- wait_for
//
// async def say_after(delay, what):
//     await asyncio.sleep(delay)
//     return "Done."
//
// try:
//     result = await asyncio.wait_for(say_after(5, 'hello'), timeout=2)
//     print(result)
// except asyncio.TimeoutError:
//     print('Timeout exceed')
async fn say_after_once(delay: f64, _what: &str) -> &'static str {
    asyncio::sleep(delay).await;
    "Done."
}

async fn tour_wait_for() {
    section("wait_for");
    match asyncio::wait_for(say_after_once(0.5, "hello"), 0.2).await {
        Ok(result) => println!("{result}"),
        Err(e) if e.is_timeout() => println!("Timeout exceed"),
        Err(e) => panic!("{e}"),
    }
    let result = asyncio::wait_for(say_after_once(0.1, "hello"), 2)
        .await
        .unwrap();
    println!("{result}");
}

// ------------------------------------------------------------------- shield
//
// res = await shield(my_routine())
async fn tour_shield() {
    section("shield");
    let res = asyncio::shield(my_routine()).await;
    println!("shield(my_routine()) -> {res:?}");
    // the awaiter gives up; the shielded task runs on
    let precious = asyncio::Task::builder()
        .name("precious")
        .spawn(my_routine());
    let precious_ref = precious.to_ref();
    let r = asyncio::wait_for(asyncio::shield(precious), 0.01).await;
    println!(
        "wait_for(shield(task), 0.01) -> {r:?}; task cancelled? {}",
        precious_ref.cancelled()
    );
    while !precious_ref.done() {
        asyncio::sleep(0.05).await;
    }
    println!(
        "the shielded task finished: cancelled? {}",
        precious_ref.cancelled()
    );
}

// --------------------------------------------------------------------- wait
//
// done, pending = await asyncio.wait({task}, return_when=FIRST_COMPLETED, timeout=10)
// done, pending = await asyncio.wait({task}, return_when=FIRST_EXCEPTION, timeout=10)
// done, pending = await asyncio.wait({task}, return_when=ALL_COMPLETED, timeout=10)
async fn tour_wait() {
    section("wait");
    for when in [
        asyncio::FIRST_COMPLETED,
        asyncio::FIRST_EXCEPTION,
        asyncio::ALL_COMPLETED,
    ] {
        let fast = asyncio::create_task(asyncio::sleep_with(0.05, "fast"));
        let slow = asyncio::create_task(asyncio::sleep_with(0.2, "slow"));
        let (done, pending) = asyncio::wait([fast, slow], when, 10).await;
        println!("{when}: {} done, {} pending", done.len(), pending.len());
        for t in pending {
            t.cancel();
        }
    }
    // on timeout nothing is cancelled: the task comes back as pending
    let task = asyncio::create_task(asyncio::sleep_with(0.3, "late"));
    let (done, pending) = asyncio::wait([task], asyncio::ALL_COMPLETED, 0.1).await;
    println!(
        "after the timeout: {} done, {} pending",
        done.len(),
        pending.len()
    );
    for t in pending {
        println!("the pending task still finishes: {:?}", t.await);
    }
}

// --------------------------------------------------- current_task, all_tasks
async fn tour_current_and_all_tasks() {
    section("current_task and all_tasks");
    let me = asyncio::current_task().expect("main runs as a task");
    println!("current task: {}", me.get_name());
    let sleeper = asyncio::Task::builder()
        .name("sleeper")
        .spawn(asyncio::sleep(10));
    let mut names: Vec<String> = asyncio::all_tasks().iter().map(|t| t.get_name()).collect();
    names.sort();
    println!("all tasks: {names:?}");
    sleeper.cancel();
}

// --------------------------------------------------------------------- Task
async fn tour_task_methods() {
    section("Task");
    // cancel() / cancelled() / done()
    let mut victim = asyncio::create_task(asyncio::sleep(10));
    println!("cancel() -> {}", victim.cancel());
    let err = (&mut victim).await.unwrap_err();
    println!(
        "awaiting it: {err}; cancelled() -> {}, done() -> {}",
        victim.cancelled(),
        victim.done()
    );

    // result() / exception()
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let mut ok = asyncio::create_task(async move {
        let _ = wait.await; // pending until we say so
        21 * 2
    });
    println!("result() while pending -> {:?}", ok.result().unwrap_err());
    let _ = go.send(());
    let _ = (&mut ok).await; // takes the output
    let adder = asyncio::create_task(async { 1 + 1 });
    while !adder.done() {
        asyncio::sleep(0).await;
    }
    println!("result() -> {:?}", adder.result());
    println!("exception() -> {:?}", adder.exception());
    let failing = asyncio::create_task(async { panic!("something broke") });
    while !failing.done() {
        asyncio::sleep(0).await;
    }
    println!(
        "exception() of a panicked task -> {:?}",
        failing.exception()
    );

    // add_done_callback() / remove_done_callback()
    let log = Arc::new(Mutex::new(Vec::new()));
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let task = asyncio::create_task(async move {
        let _ = wait.await; // pending until the callbacks are sorted out
    });
    let l = log.clone();
    task.add_done_callback(move |t| l.lock().unwrap().push(format!("{} is done", t.get_name())));
    let removed = task.add_done_callback(|_| unreachable!("removed before it could run"));
    println!(
        "remove_done_callback() -> {}",
        task.remove_done_callback(removed)
    );
    let _ = go.send(());
    task.await.unwrap();
    println!("callbacks ran: {:?}", log.lock().unwrap());

    // get_stack() / print_stack(): the spawn site, then the await points
    // marked with framed() that the task is suspended in now
    async fn wait_for_data() {
        asyncio::sleep(10).framed_as("reading").await;
    }
    let waiter = asyncio::Task::builder()
        .name("waiter")
        .spawn(wait_for_data());
    while waiter.get_stack(None).len() < 2 {
        asyncio::sleep(0.001).await; // until it is suspended in `reading`
    }
    for frame in waiter.get_stack(None) {
        println!("get_stack() -> {frame}");
    }
    waiter
        .print_stack(None, &mut std::io::stdout())
        .expect("stdout");
    waiter.cancel();

    // get_name() / set_name() / get_coro()
    let task = asyncio::create_task(my_routine());
    task.set_name("renamed");
    println!("get_name() -> {}", task.get_name());
    println!("get_coro() -> {}", task.get_coro());
    println!("{task}");
    task.await.unwrap();
}

// ---------------------------------------------------------------- to_thread
//
// def a_routine():
//     time.sleep(1)
//     print("Done.")
// asyncio.to_thread(a_routine, args)
fn a_routine(msg: &str) {
    std::thread::sleep(std::time::Duration::from_millis(100)); // blocking work
    println!("{msg}");
}

async fn tour_to_thread() {
    section("to_thread");
    // arguments travel in the closure
    asyncio::to_thread(|| a_routine("Done.")).await.unwrap();
    // the calling task is visible in the thread
    let name = asyncio::to_thread(|| asyncio::current_task().map(|t| t.get_name()))
        .await
        .unwrap();
    println!("called from task {name:?}");
}

// ------------------------------------------------ run_coroutine_threadsafe
//
// coro = asyncio.sleep(1, result=3)
// future = asyncio.run_coroutine_threadsafe(coro, loop)
// print(future.result(timeout))
async fn tour_run_coroutine_threadsafe() {
    section("run_coroutine_threadsafe");
    let lp = asyncio::get_running_loop();
    let timeout = 1.0;
    // a plain OS thread, outside the runtime
    let thread = std::thread::spawn(move || {
        let coro = asyncio::sleep_with(0.1, 3); // lazy: no runtime needed to build it
        let mut future = asyncio::run_coroutine_threadsafe(coro, &lp);
        println!("{}", future.result(timeout).unwrap());
    });
    // join the thread without blocking this task's worker
    asyncio::to_thread(move || thread.join().unwrap())
        .await
        .unwrap();
}

// ------------------------------------------------------------- as_completed
//
// for routine in as_completed(my_routines):
//     first_result = await routine
async fn tour_as_completed() {
    section("as_completed");
    let my_routines = [
        asyncio::sleep_with(0.3, "third"),
        asyncio::sleep_with(0.1, "first"),
        asyncio::sleep_with(0.2, "second"),
    ];
    for routine in asyncio::as_completed(my_routines, None) {
        let result = routine.await.unwrap();
        println!("{result}");
    }
}

fn main() {
    tour_run();
    asyncio::run(async {
        tour_create_task().await;
        tour_sleep("hello").await;
        tour_gather().await;
        tour_wait_for().await;
        tour_shield().await;
        tour_wait().await;
        tour_current_and_all_tasks().await;
        tour_task_methods().await;
        tour_to_thread().await;
        tour_run_coroutine_threadsafe().await;
        tour_as_completed().await;
    });
}
