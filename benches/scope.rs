//! Cancel scopes against the raw Tokio way of doing the same, same process,
//! interleaved rounds (raw, ours, raw, ours, ...), medians per operation:
//!
//! 1. A timeout scope around a ready future vs `tokio::time::timeout`, and
//!    two floors: the clock read both make, and that read plus the one
//!    shared allocation a cloneable handle would need without reuse.
//! 2. A task group of N children vs `asyncio::gather` of the same N.
//! 3. Cancelling N tasks that each run one awaited cleanup: `on_cancel` vs a
//!    `CancellationToken` per task + `select!`.
//!
//! `cargo bench -p asyncio-benches --bench scope` (`-- timeout`: only the
//! workloads whose title contains `timeout`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asyncio::CancelExt;
use tokio_util::sync::CancellationToken;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times `f` on a fresh multi-thread runtime (2 workers), as the main task
/// of an `asyncio::Runner` so that both contenders run inside one of our
/// tasks (the cost a task of ours pays is what is measured).
fn time<F: std::future::Future<Output = ()>>(make: impl FnOnce() -> F) -> Duration {
    let fut = make();
    asyncio::Runner::new().worker_threads(2).run(async move {
        let start = Instant::now();
        fut.await;
        start.elapsed()
    })
}

fn compare(title: &str, n: usize, rounds: usize, cases: &[(&str, &dyn Fn(usize) -> Duration)]) {
    let mut samples = vec![Vec::new(); cases.len()];
    for (_, f) in cases {
        f(n); // warm-up
    }
    for _ in 0..rounds {
        for (k, (_, f)) in cases.iter().enumerate() {
            samples[k].push(f(n));
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    println!("\n{title} (N = {n}, {rounds} interleaved rounds, medians)");
    for ((name, _), m) in cases.iter().zip(&medians) {
        println!(
            "  {name:<34} {:>9.1} ns/op   ratio vs first {:.2}x",
            m.as_nanos() as f64 / n as f64,
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

async fn raw_timeout(n: usize) {
    for i in 0..n {
        let r = tokio::time::timeout(Duration::from_secs(1), std::future::ready(i)).await;
        black_box(r.unwrap());
    }
}

async fn ours_timeout(n: usize) {
    for i in 0..n {
        let r = asyncio::timeout(1).run(std::future::ready(i)).await;
        black_box(r.unwrap());
    }
}

/// The floor of any timeout scope that fixes its deadline when it is made,
/// as `asyncio.timeout()` and `tokio::time::timeout` do: one clock read.
async fn floor_clock(n: usize) {
    for i in 0..n {
        black_box(tokio::time::Instant::now());
        black_box(std::future::ready(i).await);
    }
}

/// The floor of a timeout scope whose handle is shared with its run (a
/// `Timeout` is a cloneable handle that outlives the run): a clock read and
/// one shared allocation, cloned for the run.
async fn floor_clock_arc(n: usize) {
    for i in 0..n {
        let shared = Arc::new((tokio::time::Instant::now(), AtomicUsize::new(0)));
        let run = shared.clone();
        black_box(std::future::ready(i).await);
        drop(black_box(run));
        drop(black_box(shared));
    }
}

async fn ours_gather(n: usize) {
    let r = asyncio::gather((0..n).map(|i| async move { black_box(i) })).await;
    black_box(r.unwrap());
}

async fn ours_group(n: usize) {
    let r = asyncio::task_group(move |tg| async move {
        let tasks: Vec<_> = (0..n)
            .map(|i| tg.create_task(async move { black_box(i) }))
            .collect();
        tasks
    })
    .await;
    for t in r.unwrap() {
        black_box(t.result().unwrap());
    }
}

/// Raw: each task selects on its token; on cancel it runs the cleanup.
async fn raw_token_cleanup(n: usize) {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let token = CancellationToken::new();
        let t = token.clone();
        let c = cleaned.clone();
        let s = started.clone();
        let h = tokio::spawn(async move {
            s.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = t.cancelled() => {
                    tokio::task::yield_now().await;
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        tasks.push((token, h));
    }
    wait_started(&started, n).await;
    for (token, _) in &tasks {
        token.cancel();
    }
    for (_, h) in tasks {
        h.await.unwrap();
    }
    assert_eq!(cleaned.load(Ordering::Relaxed), n);
}

async fn ours_on_cancel(n: usize) {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let c = cleaned.clone();
        let s = started.clone();
        tasks.push(asyncio::create_task(
            async move {
                s.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(60)).await
            }
            .on_cancel(move || async move {
                tokio::task::yield_now().await;
                c.fetch_add(1, Ordering::Relaxed);
            }),
        ));
    }
    wait_started(&started, n).await;
    for t in &tasks {
        t.cancel();
    }
    for t in tasks {
        let _ = t.await;
    }
    assert_eq!(cleaned.load(Ordering::Relaxed), n);
}

/// Both contenders cancel only once every task runs (so both clean up).
async fn wait_started(started: &AtomicUsize, n: usize) {
    while started.load(Ordering::Relaxed) < n {
        tokio::task::yield_now().await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--test" || a == "--quick");
    // `-- timeout` (any word not starting with `-`): only the workloads
    // whose title contains it.
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let (rounds, n) = if quick { (1, 100) } else { (15, 10_000) };
    let compare = |title: &str, n, rounds, cases: &[(&str, &dyn Fn(usize) -> Duration)]| {
        if filter.is_empty() || filter.iter().any(|f| title.contains(f.as_str())) {
            compare(title, n, rounds, cases);
        }
    };
    compare(
        "timeout scope around a ready future",
        n * 10,
        rounds,
        &[
            ("tokio::time::timeout", &|n| time(|| raw_timeout(n))),
            ("asyncio::timeout(..).run", &|n| time(|| ours_timeout(n))),
            ("floor: clock read", &|n| time(|| floor_clock(n))),
            ("floor: clock read + shared Arc", &|n| {
                time(|| floor_clock_arc(n))
            }),
        ],
    );
    compare(
        "task group of N children vs gather of N",
        n,
        rounds,
        &[
            ("asyncio::gather", &|n| time(|| ours_gather(n))),
            ("asyncio::task_group", &|n| time(|| ours_group(n))),
        ],
    );
    compare(
        "cancel N tasks, one awaited cleanup each",
        n,
        rounds,
        &[
            ("CancellationToken + select!", &|n| {
                time(|| raw_token_cleanup(n))
            }),
            ("on_cancel", &|n| time(|| ours_on_cancel(n))),
        ],
    );
}
