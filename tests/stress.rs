//! Stress: many tasks, cancels racing completions and cleanups, several OS
//! threads submitting and cancelling at once, large task groups with
//! failures. Everything is counted: nothing lost, nothing run twice,
//! `all_tasks()` empty at the end, and memory back to its start (see
//! [`memory_back_to_start`]).
//!
//! CI-sized by default; `ASYNCIO_STRESS=1` multiplies the sizes (1M tasks,
//! 100k cancels, groups of 10k).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use asyncio::CancelExt;

/// `small` by default, `large` under `ASYNCIO_STRESS=1`.
fn size(small: usize, large: usize) -> usize {
    if std::env::var_os("ASYNCIO_STRESS").is_some_and(|v| v == "1") {
        large
    } else {
        small
    }
}

/// The resident memory of this process, in bytes (`VmRSS` of
/// `/proc/self/status`; `None` where there is no such file).
fn resident() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The scenarios run one at a time, so that each measures its own memory.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Rounds measured after the warm-up round.
const ROUNDS: usize = 3;

/// How much the resident memory may grow over the measured rounds. Run
/// again, the same work moves it by up to about 1.2 MiB (the allocator's
/// per-thread arenas warming up as new threads come, fragmentation), up or
/// down; 4 MiB leaves room. It catches a leak of 70 bytes a task in the
/// largest scenario (60k tasks over the measured rounds): a task core that
/// outlived its handles (about 200 bytes) grew it by 12 MiB there, and
/// 100 bytes forgotten in each task by 6.5 MiB. The smaller scenarios
/// catch only larger leaks.
const ALLOWANCE: usize = 4 << 20;

/// Runs `round` (which builds its own runtime and drops it) once to warm
/// up, then [`ROUNDS`] more times, and checks that the memory came back to
/// its start:
///
/// - Exactly, for what the tasks were given: every task's future, cleanup,
///   done callback and output holds a clone of the `Arc` that `round`
///   returns (after its runtime was dropped), which must be the last one.
///   So no future, cleanup, callback or output is kept alive (a task core
///   leaked after its end holds none of them: that shows in the memory).
/// - Within [`ALLOWANCE`], for the whole process: its resident memory.
///   Without `unsafe` (forbidden in this crate) a test cannot wrap the
///   global allocator to count live allocations. Freed memory stays with
///   the allocator, so the resident memory after the first round is the
///   high-water mark of that work; the same work run again reuses it, and
///   anything it leaks (a task core, a scope node, a cycle of `Arc`s)
///   grows it round after round.
///
/// `ASYNCIO_STRESS_MEMORY=1` prints the figures.
fn memory_back_to_start(name: &str, round: impl Fn() -> Arc<Counts>) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let counted = |counts: Arc<Counts>| {
        assert_eq!(
            Arc::strong_count(&counts),
            1,
            "{name}: something the tasks were given is still alive after the runtime was dropped"
        );
    };
    counted(round());
    let start = resident();
    for _ in 0..ROUNDS {
        counted(round());
    }
    let (Some(start), Some(end)) = (start, resident()) else {
        return; // not Linux: counted, not measured
    };
    if std::env::var_os("ASYNCIO_STRESS_MEMORY").is_some_and(|v| v == "1") {
        eprintln!(
            "{name}: resident {} KiB after the warm-up, {} KiB after {ROUNDS} more rounds ({:+} KiB)",
            start / 1024,
            end / 1024,
            (end as isize - start as isize) / 1024
        );
    }
    assert!(
        end <= start + ALLOWANCE,
        "{name}: resident memory grew from {} KiB to {} KiB over {ROUNDS} rounds of the same work",
        start / 1024,
        end / 1024
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn many_tasks_created_and_awaited_each_give_their_value_once() {
    memory_back_to_start("created and awaited", || {
        created_and_awaited(size(20_000, 1_000_000))
    });
}

fn created_and_awaited(n: usize) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    runtime().block_on(async move {
        let mut sum = 0usize;
        for chunk in 0..n / 1000 {
            let tasks: Vec<_> = (0..1000)
                .map(|i| {
                    let c = c.clone();
                    asyncio::create_task(async move { (chunk * 1000 + i, c) })
                })
                .collect();
            for t in tasks {
                sum += t.await.unwrap().0;
            }
        }
        assert_eq!(sum, n * (n - 1) / 2);
        assert!(asyncio::all_tasks().is_empty());
    });
    counts
}

/// Counters of one run of protected tasks.
#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    returned: AtomicUsize,
    cleaned: AtomicUsize,
    ended: AtomicUsize,
}

/// A task whose protected part starts, yields `yields` times and returns
/// (a clone of `counts`), with an awaiting cleanup; every end and cleanup
/// counted.
fn protected(counts: &Arc<Counts>, yields: usize) -> asyncio::Task<Arc<Counts>> {
    let (a, b) = (counts.clone(), counts.clone());
    let task = asyncio::create_task(
        async move {
            a.started.fetch_add(1, Ordering::SeqCst);
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            a.returned.fetch_add(1, Ordering::SeqCst);
            a
        }
        .on_cancel(move || async move {
            tokio::task::yield_now().await;
            b.cleaned.fetch_add(1, Ordering::SeqCst);
        }),
    );
    let c = counts.clone();
    task.add_done_callback(move |_| {
        c.ended.fetch_add(1, Ordering::SeqCst);
    });
    task
}

/// Waits until `counts.ended` reaches `n` (done callbacks may run on
/// another worker just after the awaits returned).
async fn all_ended(counts: &Counts, n: usize) {
    while counts.ended.load(Ordering::SeqCst) < n {
        tokio::task::yield_now().await;
    }
}

/// Every task ended once; every protected future that started returned or
/// cleaned up; no task did both or cleaned up twice (each task has one
/// `on_cancel`, so the two together are at most one a task). A cleanup may
/// run for a future that never started: the cancel came between the
/// `on_cancel`'s registration and its future's first poll.
fn check(counts: &Counts, n: usize) {
    assert_eq!(
        counts.ended.load(Ordering::SeqCst),
        n,
        "every task ended once"
    );
    let started = counts.started.load(Ordering::SeqCst);
    let returned = counts.returned.load(Ordering::SeqCst);
    let cleaned = counts.cleaned.load(Ordering::SeqCst);
    assert!(returned <= started);
    assert!(
        returned + cleaned >= started,
        "a started future neither returned nor cleaned up"
    );
    assert!(
        returned + cleaned <= n,
        "a task returned and cleaned up, or cleaned up twice"
    );
}

#[test]
fn tasks_cancelled_while_completing_clean_up_exactly_once() {
    memory_back_to_start("cancelled while completing", || {
        cancelled_while_completing(size(5_000, 100_000))
    });
}

fn cancelled_while_completing(n: usize) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    runtime().block_on(async move {
        let counts = c;
        let tasks: Vec<_> = (0..n).map(|i| protected(&counts, i % 3)).collect();
        for (i, t) in tasks.iter().enumerate() {
            if i % 2 == 0 {
                tokio::task::yield_now().await;
            }
            t.cancel();
        }
        for t in tasks {
            let _ = t.await;
        }
        all_ended(&counts, n).await;
        check(&counts, n);
        assert!(asyncio::all_tasks().is_empty());
    });
    counts
}

#[test]
fn eight_threads_submitting_and_cancelling_at_once_lose_nothing() {
    memory_back_to_start("eight threads", || eight_threads(size(500, 20_000)));
}

fn eight_threads(per_thread: usize) -> Arc<Counts> {
    let rt = runtime();
    let counts = Arc::new(Counts::default());
    std::thread::scope(|s| {
        for t in 0..8 {
            let handle = rt.handle().clone();
            let counts = counts.clone();
            s.spawn(move || {
                let _guard = handle.enter();
                let tasks: Vec<_> = (0..per_thread)
                    .map(|i| protected(&counts, (i + t) % 4))
                    .collect();
                for (i, task) in tasks.iter().enumerate() {
                    if (i + t) % 3 != 0 {
                        task.cancel();
                    }
                }
                for task in tasks {
                    let _ = handle.block_on(async move { task.await });
                }
            });
        }
    });
    let n = 8 * per_thread;
    rt.block_on(async {
        all_ended(&counts, n).await;
        check(&counts, n);
        assert!(asyncio::all_tasks().is_empty());
    });
    drop(rt);
    counts
}

#[test]
fn large_groups_with_failures_end_every_child_and_report_every_failure() {
    memory_back_to_start("groups with failures", || {
        group_with_failures(size(1_000, 10_000))
    });
}

fn group_with_failures(n: usize) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let outer = counts.clone();
    runtime().block_on(async move {
        let counts = outer;
        let c = counts.clone();
        // Children start their work once all are created, so that no
        // failure can shut the group before the body made them all.
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let r = asyncio::task_group(move |tg| async move {
            for i in 0..n {
                let (a, b, e) = (c.clone(), c.clone(), c.clone());
                let mut go = go_rx.clone();
                let t = tg.create_task(
                    async move {
                        a.started.fetch_add(1, Ordering::SeqCst);
                        let _ = go.wait_for(|go| *go).await;
                        for _ in 0..i % 5 {
                            tokio::task::yield_now().await;
                        }
                        if i % 97 == 96 {
                            panic!("child {i} failed");
                        }
                        a.returned.fetch_add(1, Ordering::SeqCst);
                        a // the output, dropped with the unawaited task's
                    }
                    .on_cancel(move || async move {
                        b.cleaned.fetch_add(1, Ordering::SeqCst);
                    }),
                );
                t.add_done_callback(move |_| {
                    e.ended.fetch_add(1, Ordering::SeqCst);
                });
            }
            go_tx.send_replace(true);
        })
        .await;
        let Err(asyncio::Error::Group(g)) = r else {
            panic!("expected a group error")
        };
        all_ended(&counts, n).await;
        let started = counts.started.load(Ordering::SeqCst);
        let returned = counts.returned.load(Ordering::SeqCst);
        let cleaned = counts.cleaned.load(Ordering::SeqCst);
        let failed = g.errors().len();
        assert!(failed >= 1);
        assert!(g.errors().iter().all(|e| e.is_panic()));
        assert!(returned + cleaned + failed >= started);
        assert!(returned + cleaned + failed <= n);
        assert!(asyncio::all_tasks().is_empty());
    });
    counts
}
