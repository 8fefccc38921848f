//! `current_task()` and `all_tasks()`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use asyncio::{Task, TaskRef};

/// Inside one of our tasks, current_task() is that task.
#[tokio::test(start_paused = true)]
async fn current_task_is_the_running_task() {
    let task = Task::builder()
        .name("me")
        .spawn(async { asyncio::current_task().unwrap() });
    let r = task.to_ref();
    assert_eq!(task.await.unwrap(), r);
}

/// Not one of ours: a bare block_on, a raw tokio::spawn, a plain thread.
#[test]
fn current_task_is_none_outside_our_tasks() {
    assert!(asyncio::current_task().is_none());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert!(asyncio::current_task().is_none());
        let raw = tokio::spawn(async { asyncio::current_task().is_none() });
        assert!(raw.await.unwrap());
    });
}

/// `current_task()` follows the task whose step is running as tasks
/// interleave.
#[tokio::test(start_paused = true)]
async fn current_task_switches_as_tasks_interleave() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let mk = |name: &'static str| {
        let seen = seen.clone();
        Task::builder().name(name).spawn(async move {
            for _ in 0..2 {
                seen.lock()
                    .unwrap()
                    .push(asyncio::current_task().unwrap().get_name());
                asyncio::sleep(0).await;
            }
        })
    };
    let (a, b) = (mk("a"), mk("b"));
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["a", "b", "a", "b"]);
}

/// `all_tasks()` lists the pending tasks (the caller and tasks not yet
/// started included) and drops them once they end.
#[tokio::test(start_paused = true)]
async fn all_tasks_lists_exactly_the_pending_tasks() {
    let me = Task::builder().name("main").spawn(async {
        let not_started = Task::builder().name("not-started").spawn(asyncio::sleep(1));
        let quick = Task::builder().name("quick").spawn(async {});
        let names = |tasks: Vec<TaskRef>| -> HashSet<String> {
            tasks.iter().map(|t| t.get_name()).collect()
        };
        assert_eq!(
            names(asyncio::all_tasks()),
            HashSet::from(["main", "not-started", "quick"].map(String::from))
        );
        quick.await.unwrap();
        assert_eq!(
            names(asyncio::all_tasks()),
            HashSet::from(["main", "not-started"].map(String::from))
        );
        not_started.cancel();
        let _ = not_started.await;
        names(asyncio::all_tasks())
    });
    assert_eq!(me.await.unwrap(), HashSet::from(["main".to_string()]));
    assert!(asyncio::all_tasks().is_empty());
}

/// all_tasks() is per runtime: tasks on another runtime are not listed;
/// outside every runtime it lists the tasks of all runtimes.
#[test]
fn all_tasks_is_per_runtime() {
    let rt_a = tokio::runtime::Runtime::new().unwrap();
    let rt_b = tokio::runtime::Runtime::new().unwrap();
    let a = Task::builder()
        .name("on-a")
        .spawn_on(asyncio::sleep(3600), rt_a.handle());
    let b = Task::builder()
        .name("on-b")
        .spawn_on(asyncio::sleep(3600), rt_b.handle());
    let names_on = |rt: &tokio::runtime::Runtime| -> Vec<String> {
        rt.block_on(async { asyncio::all_tasks().iter().map(|t| t.get_name()).collect() })
    };
    assert_eq!(names_on(&rt_a), ["on-a"]);
    assert_eq!(names_on(&rt_b), ["on-b"]);
    let everywhere: HashSet<String> = asyncio::all_tasks().iter().map(|t| t.get_name()).collect();
    assert!(everywhere.contains("on-a") && everywhere.contains("on-b"));
    a.cancel();
    b.cancel();
    // Dropping a runtime drops its tasks: they end cancelled and leave the registry.
    let (a, b) = (a.to_ref(), b.to_ref());
    drop(rt_a);
    drop(rt_b);
    assert!(a.cancelled() && b.cancelled());
    assert!(!asyncio::all_tasks().iter().any(|t| *t == a || *t == b));
}

/// all_tasks() racing tasks that end, on the multi-thread runtime: it never
/// lists a task twice, and once every task has ended only the caller is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_tasks_racing_tasks_ending() {
    let main = Task::builder().name("race-main").spawn(async {
        for round in 0..50 {
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    asyncio::create_task(async move {
                        if (i + round) % 3 == 0 {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            let snapshot = asyncio::all_tasks();
            let unique: HashSet<_> = snapshot.iter().map(|t| t.id()).collect();
            assert_eq!(unique.len(), snapshot.len());
            for t in tasks {
                t.await.unwrap();
            }
        }
        let left = asyncio::all_tasks();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].get_name(), "race-main");
    });
    main.await.unwrap();
}
