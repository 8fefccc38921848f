//! get_stack / print_stack / dump_tasks (asyncio's `Task.get_stack` /
//! `Task.print_stack`, adapted: see
//! docs/differences.md "Stacks and debug mode").

use std::future::pending;

use asyncio::{Frame, FramedExt, Task, framed, framed_as};
use tokio::sync::oneshot;

/// Lets the tasks spawned so far run until they suspend (current_thread).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn at(f: &Frame) -> (&str, u32) {
    (f.file(), f.line())
}

fn names(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(Frame::name).collect()
}

async fn leaf(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// The spawn site is always the first frame, exact file and line, for
/// create_task and Builder::spawn alike; a task not suspended in a marked
/// await shows only it (asyncio: a pending task shows its own frame).
#[tokio::test]
async fn spawn_site_is_the_first_frame() {
    let la = line!() + 1;
    let a = asyncio::create_task(pending::<()>());
    let lb = line!() + 1;
    let b = Task::builder().name("b").spawn(leaf(oneshot::channel().1));
    settle().await;
    let sa = a.get_stack(None);
    let sb = b.get_stack(None);
    assert_eq!(sa.len(), 1);
    assert_eq!(at(&sa[0]), (file!(), la));
    assert_eq!(sa[0].column(), 13);
    assert_eq!(sa[0].name(), "Pending");
    assert_eq!(sb.len(), 1);
    assert_eq!(at(&sb[0]), (file!(), lb));
    assert_eq!(sb[0].name(), "leaf");
    a.cancel();
    b.cancel();
}

/// Nested marked awaits give nested frames, oldest first; a marked future
/// that completes leaves the stack (asyncio: the live stack follows the task).
#[tokio::test]
async fn nested_framed_awaits_give_nested_frames() {
    let (tx1, rx1) = oneshot::channel::<()>();
    let (tx2, rx2) = oneshot::channel::<()>();
    let (tx3, rx3) = oneshot::channel::<()>();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = lines.clone();
    let spawn_line = line!() + 1;
    let task = asyncio::create_task(async move {
        let outer = async {
            l.lock().unwrap().push(line!() + 1);
            framed_as("inner", leaf(rx1)).await;
            leaf(rx2).await; // unmarked
        };
        l.lock().unwrap().push(line!() + 1);
        outer.framed_as("outer").await;
        l.lock().unwrap().push(line!() + 1);
        framed(leaf(rx3)).await;
    });
    settle().await;
    let stack = task.get_stack(None);
    let l = lines.lock().unwrap().clone();
    assert_eq!(
        names(&stack),
        ["nested_framed_awaits_give_nested_frames", "outer", "inner"]
    );
    assert_eq!(at(&stack[0]), (file!(), spawn_line));
    assert_eq!(at(&stack[1]), (file!(), l[0]));
    assert_eq!(at(&stack[2]), (file!(), l[1]));

    tx1.send(()).unwrap();
    settle().await;
    assert_eq!(names(&task.get_stack(None))[1..], ["outer"]);

    tx2.send(()).unwrap();
    settle().await;
    let stack = task.get_stack(None);
    assert_eq!(names(&stack)[1..], ["leaf"]);
    assert_eq!(at(&stack[1]), (file!(), lines.lock().unwrap()[2]));

    tx3.send(()).unwrap();
    task.await.unwrap();
}

/// A task asking for its own stack sees the marked awaits it is running in
/// (T::test_get_stack calls get_stack from inside the task).
#[tokio::test]
async fn own_stack_while_running() {
    let task = asyncio::create_task(async {
        async { asyncio::current_task().unwrap().get_stack(None) }
            .framed_as("me")
            .await
    });
    let stack = task.await.unwrap();
    assert_eq!(names(&stack)[1..], ["me"]);
}

/// `limit` keeps the newest frames; 0 gives none.
#[tokio::test]
async fn limit_keeps_the_newest_frames() {
    let task = asyncio::create_task(async {
        async { pending::<()>().framed_as("b").await }
            .framed_as("a")
            .await
    });
    settle().await;
    assert_eq!(names(&task.get_stack(None))[1..], ["a", "b"]);
    assert_eq!(names(&task.get_stack(Some(2))), ["a", "b"]);
    assert_eq!(names(&task.get_stack(Some(1))), ["b"]);
    assert_eq!(task.get_stack(Some(10)).len(), 3);
    assert!(task.get_stack(Some(0)).is_empty());
    task.cancel();
}

/// A marked future dropped before it completes (the losing branch of a
/// select) leaves the stack.
#[tokio::test]
async fn dropped_framed_future_leaves_the_stack() {
    let (tx, rx) = oneshot::channel::<()>();
    let task = asyncio::create_task(async move {
        tokio::select! {
            _ = pending::<()>().framed_as("loser") => {}
            _ = leaf(rx) => {}
        }
        pending::<()>().await;
    });
    settle().await;
    assert_eq!(names(&task.get_stack(None))[1..], ["loser"]);
    tx.send(()).unwrap();
    settle().await;
    assert_eq!(task.get_stack(None).len(), 1);
    task.cancel();
}

/// Two marked futures side by side: the level shows the one polled last,
/// and the first one's own children (now stale) are not shown under it.
#[tokio::test]
async fn siblings_do_not_mix_frames() {
    let task = asyncio::create_task(async {
        let a = async { pending::<()>().framed_as("a-child").await }.framed_as("a");
        let b = pending::<()>().framed_as("b");
        futures::join!(a, b);
    });
    settle().await;
    assert_eq!(names(&task.get_stack(None))[1..], ["b"]);
    task.cancel();
}

/// A task that panicked shows the marked awaits it panicked in and the
/// panic's location last (asyncio: a failed task shows its traceback).
#[tokio::test]
async fn panic_location_is_the_last_frame() {
    let spawn_line = line!() + 1;
    let mut task = asyncio::create_task(async {
        async {
            asyncio::sleep(0).await;
            if true {
                panic!("boom"); // PANIC LINE
            }
        }
        .framed_as("work")
        .await;
    });
    let panic_line = spawn_line + 4;
    let _ = (&mut task).await;
    let stack = task.get_stack(None);
    assert_eq!(names(&stack)[1..], ["work", "<panic>"]);
    assert_eq!(at(&stack[0]), (file!(), spawn_line));
    assert_eq!(at(&stack[2]), (file!(), panic_line));
    assert_eq!(stack[2].column(), 17);
    assert_eq!(names(&task.get_stack(Some(1))), ["<panic>"]);
}

/// A caught panic inside a task that then returns normally leaves no panic
/// frame.
#[tokio::test]
async fn caught_panic_leaves_no_frame() {
    let task = asyncio::create_task(async {
        let _ = std::panic::catch_unwind(|| panic!("caught"));
        1
    });
    let r = task.to_ref();
    assert_eq!(task.await.unwrap(), 1);
    assert_eq!(r.get_stack(None).len(), 1);
}

/// A task that finished or was cancelled shows only its spawn site (asyncio
/// shows nothing: see docs/differences.md).
#[tokio::test]
async fn done_tasks_show_only_the_spawn_site() {
    let mut ok = asyncio::create_task(async { framed(asyncio::sleep(0)).await });
    let mut gone = asyncio::create_task(pending::<()>().framed());
    settle().await;
    assert_eq!(gone.get_stack(None).len(), 2);
    gone.cancel();
    let _ = (&mut ok).await;
    let _ = (&mut gone).await;
    assert_eq!(ok.get_stack(None).len(), 1);
    assert_eq!(gone.get_stack(None).len(), 1);
}

fn printed(task: &asyncio::TaskRef, limit: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    task.print_stack(limit, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// print_stack's three layouts, line by line.
#[tokio::test]
async fn print_stack_layouts() {
    let task = Task::builder().name("printer").spawn(async {
        pending::<()>().framed_as("parked").await;
    });
    let spawn_line = line!() - 3;
    let park_line = spawn_line + 1;
    settle().await;
    let r = task.to_ref();
    assert_eq!(
        printed(&r, None),
        [
            format!("Stack for {r} (most recent call last):"),
            format!(
                "  File \"{}\", line {spawn_line}, in print_stack_layouts",
                file!()
            ),
            format!("  File \"{}\", line {park_line}, in parked", file!()),
        ]
    );
    assert_eq!(printed(&r, Some(0)), [format!("No stack for {r}")]);
    task.cancel();

    let mut failed = Task::builder()
        .name("failing")
        .spawn(async { panic!("bad") });
    let line = line!() - 1;
    let _ = (&mut failed).await;
    let r = failed.to_ref();
    assert_eq!(
        printed(&r, None),
        [
            format!("Traceback for {r} (most recent call last):"),
            format!(
                "  File \"{}\", line {line}, in print_stack_layouts",
                file!()
            ),
            format!("  File \"{}\", line {line}, in <panic>", file!()),
            "task panicked: bad".to_string(),
        ]
    );
}

/// dump_tasks prints every pending task of this runtime, in id order.
#[tokio::test]
async fn dump_tasks_prints_every_pending_task() {
    let a = Task::builder()
        .name("dump-a")
        .spawn(pending::<()>().framed_as("a-waits"));
    let b = Task::builder()
        .name("dump-b")
        .spawn(pending::<()>().framed_as("b-waits"));
    let done = Task::builder().name("dump-done").spawn(async {});
    settle().await;
    let mut out = Vec::new();
    asyncio::dump_tasks(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut expected = printed(&a, None).join("\n");
    expected.push_str("\n\n");
    expected.push_str(&printed(&b, None).join("\n"));
    expected.push('\n');
    assert_eq!(text, expected);
    assert!(done.done());
    a.cancel();
    b.cancel();
}

/// Outside a task of ours a marked future just runs.
#[tokio::test]
async fn framed_outside_a_task_just_polls() {
    let v = tokio::spawn(async { framed(async { 5 }).framed_as("x").await })
        .await
        .unwrap();
    assert_eq!(v, 5);
    assert_eq!(framed(async { 6 }).await, 6);
}

/// Stacks read from other threads while the task polls marked futures on
/// the multi-thread runtime: always the spawn frame first, never a frame
/// from elsewhere.
#[test]
fn stack_reads_race_with_polls() {
    asyncio::Runner::new().worker_threads(2).run(async {
        for _ in 0..20 {
            let task = asyncio::create_task(async {
                for _ in 0..200 {
                    async { tokio::task::yield_now().framed_as("inner").await }
                        .framed_as("outer")
                        .await;
                }
            });
            let r = task.to_ref();
            let reader = std::thread::spawn(move || {
                while !r.done() {
                    let stack = r.get_stack(None);
                    assert!(stack[0].name() == "stack_reads_race_with_polls");
                    let rest = names(&stack[1..]).join("/");
                    assert!(
                        ["", "outer", "outer/inner"].contains(&rest.as_str()),
                        "{rest}"
                    );
                }
            });
            task.await.unwrap();
            reader.join().unwrap();
        }
    });
}

/// A panic inside a `to_thread` closure belongs to the closure, not to the
/// task that started it: a closure panicking after its caller panicked does
/// not overwrite the caller's `<panic>` frame.
#[test]
fn a_to_thread_panic_is_not_the_callers() {
    struct Signal(std::sync::mpsc::Sender<()>);
    impl Drop for Signal {
        fn drop(&mut self) {
            let _ = self.0.send(()); // unwinding: the panic hook has run
        }
    }
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (unwound_tx, unwound_rx) = std::sync::mpsc::channel::<()>();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = line!();
    let task = rt.block_on(async move {
        let mut task = asyncio::create_task(async move {
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let mut late = Box::pin(asyncio::to_thread(move || {
                let _signal = Signal(unwound_tx);
                let _ = started_tx.send(());
                let _ = go_rx.recv();
                panic!("late");
            }));
            let _ = futures::poll!(late.as_mut()); // submitted
            started_rx.await.unwrap(); // running: it runs on when dropped
            drop(late);
            panic!("real");
        });
        let _ = (&mut task).await;
        task
    });
    go_tx.send(()).unwrap();
    unwound_rx.recv().unwrap();
    let stack = task.get_stack(None);
    let last = stack.last().unwrap();
    assert_eq!(
        (last.name(), last.line()),
        ("<panic>", base + 13),
        "{stack:?}"
    );
}

/// A destructor that panics while its task is cancelled ends the task
/// panicked, and the stack's last frame is that panic's location.
#[tokio::test(start_paused = true)]
async fn a_destructor_panic_is_the_last_frame() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("cleanup failed"); // this line is recorded
        }
    }
    let line = line!() - 3;
    let mut task = asyncio::create_task(async {
        let _b = Bomb;
        asyncio::sleep(10).await;
    });
    tokio::task::yield_now().await;
    task.cancel();
    assert!((&mut task).await.unwrap_err().is_panic());
    let stack = task.get_stack(None);
    let last = stack.last().unwrap();
    assert_eq!(
        (last.name(), last.file(), last.line()),
        ("<panic>", file!(), line)
    );
}
