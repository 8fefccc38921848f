//! Names, coroutine names and reprs.

use asyncio::Task;

async fn named_coroutine() -> u32 {
    asyncio::sleep(1).await;
    7
}

/// An unnamed task is `Task-N`, N from one process-wide counter that
/// only grows, across runtimes and runs.
#[test]
fn automatic_names_come_from_one_growing_counter() {
    let first = asyncio::run(async { asyncio::current_task().unwrap().id() });
    let (second, child) = asyncio::run(async {
        let t = asyncio::create_task(async {});
        (asyncio::current_task().unwrap().id(), t.to_ref())
    });
    assert!(second > first);
    assert!(child.id() > second);
    assert_eq!(child.get_name(), format!("Task-{}", child.id()));
}

/// Explicit names are stored as their `Display` text, and
/// set_name works at any time, also after the end.
#[tokio::test(start_paused = true)]
async fn explicit_names_and_set_name() {
    let mut t = Task::builder().name("worker").spawn(async {});
    assert_eq!(t.get_name(), "worker");
    t.set_name(987654321);
    assert_eq!(t.get_name(), "987654321");
    (&mut t).await.unwrap();
    t.set_name("after the end");
    assert_eq!(t.get_name(), "after the end");
    assert_eq!(t.to_ref().get_name(), "after the end");
}

/// `get_coro` names the future's type, also after completion.
#[tokio::test(start_paused = true)]
async fn get_coro_names_the_future() {
    let mut t = asyncio::create_task(named_coroutine());
    assert!(t.get_coro().contains("named_coroutine"), "{}", t.get_coro());
    (&mut t).await.unwrap();
    assert!(t.get_coro().contains("named_coroutine"));
}

/// The repr in each state: pending, cancelling, finished (with the
/// result where `T: Debug`, with the exception after a panic), cancelled;
/// always with the creation site.
#[tokio::test(start_paused = true)]
async fn reprs_follow_asyncio() {
    let line = line!() + 1;
    let mut t = Task::builder().name("x").spawn(named_coroutine());
    let coro = t.get_coro();
    let at = format!("created at {}:{line}", file!());
    assert_eq!(
        t.to_string(),
        format!("<Task pending name='x' coro=<{coro}> {at}>")
    );
    (&mut t).await.unwrap();
    // the output was taken by the await: no result to show
    assert_eq!(
        format!("{t:?}"),
        format!("<Task finished name='x' coro=<{coro}> {at}>")
    );

    let line = line!() + 1;
    let r = Task::builder().name("r").spawn(async { vec![1, 2] });
    let at = format!("created at {}:{line}", file!());
    while !r.done() {
        asyncio::sleep(0).await;
    }
    let coro = r.get_coro();
    assert_eq!(
        format!("{r:?}"),
        format!("<Task finished name='r' coro=<{coro}> result=[1, 2] {at}>")
    );
    // Display never shows the result, nor does a TaskRef
    assert_eq!(
        r.to_string(),
        format!("<Task finished name='r' coro=<{coro}> {at}>")
    );
    assert_eq!(format!("{:?}", r.to_ref()), r.to_string());

    let mut c = Task::builder().name("c").spawn(asyncio::sleep(10));
    asyncio::sleep(0).await;
    c.cancel();
    assert!(c.to_string().starts_with("<Task cancelling name='c' "));
    let _ = (&mut c).await;
    assert!(c.to_string().starts_with("<Task cancelled name='c' "));

    let mut p = Task::builder().name("p").spawn(async { panic!("bad") });
    let _ = (&mut p).await;
    let s = p.to_string();
    assert!(s.starts_with("<Task finished name='p' "), "{s}");
    assert!(
        s.contains(r#"exception=PanicError { message: "bad" }"#),
        "{s}"
    );
}

/// Formatting a task whose output refers to the task itself does not
/// deadlock (the name has its own lock).
#[tokio::test(start_paused = true)]
async fn debug_of_a_task_whose_output_is_itself() {
    let t = Task::builder()
        .name("selfie")
        .spawn(async { asyncio::current_task().unwrap() });
    while !t.done() {
        asyncio::sleep(0).await;
    }
    let shown = format!("{t:?}");
    assert!(
        shown.contains("result=<Task finished name='selfie'"),
        "{shown}"
    );
}
