//! Stress: many tasks, cancels racing completions and cleanups, several OS
//! threads submitting and cancelling at once, large task groups with
//! failures. Everything is counted: nothing lost, nothing run twice,
//! `all_tasks()` empty at the end.
//!
//! CI-sized by default; `ASYNCIO_STRESS=1` multiplies the sizes (1M tasks,
//! 100k cancels, groups of 10k).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use asyncio::CancelExt;

/// `small` by default, `large` under `ASYNCIO_STRESS=1`.
fn size(small: usize, large: usize) -> usize {
    if std::env::var_os("ASYNCIO_STRESS").is_some_and(|v| v == "1") {
        large
    } else {
        small
    }
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
    let n = size(20_000, 1_000_000);
    runtime().block_on(async move {
        let mut sum = 0usize;
        for chunk in 0..n / 1000 {
            let tasks: Vec<_> = (0..1000)
                .map(|i| asyncio::create_task(async move { chunk * 1000 + i }))
                .collect();
            for t in tasks {
                sum += t.await.unwrap();
            }
        }
        assert_eq!(sum, n * (n - 1) / 2);
        assert!(asyncio::all_tasks().is_empty());
    });
}

/// Counters of one run of protected tasks.
#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    returned: AtomicUsize,
    cleaned: AtomicUsize,
    ended: AtomicUsize,
}

/// A task whose protected part starts, yields `yields` times and returns,
/// with an awaiting cleanup; every end and cleanup counted.
fn protected(counts: &Arc<Counts>, yields: usize) -> asyncio::Task<()> {
    let (a, b) = (counts.clone(), counts.clone());
    let task = asyncio::create_task(
        async move {
            a.started.fetch_add(1, Ordering::SeqCst);
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            a.returned.fetch_add(1, Ordering::SeqCst);
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
    let n = size(5_000, 100_000);
    runtime().block_on(async move {
        let counts = Arc::new(Counts::default());
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
}

#[test]
fn eight_threads_submitting_and_cancelling_at_once_lose_nothing() {
    let per_thread = size(500, 20_000);
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
}

#[test]
fn large_groups_with_failures_end_every_child_and_report_every_failure() {
    let n = size(1_000, 10_000);
    runtime().block_on(async move {
        let counts = Arc::new(Counts::default());
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
}
