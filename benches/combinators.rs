//! The combinators against their raw-Tokio equivalents, same process,
//! interleaved A/B rounds, medians and ratios printed (then the same
//! workloads through criterion, kept short).
//!
//! - gather of N tasks vs a `JoinSet` and vs `futures::future::join_all` of
//!   `JoinHandle`s, driven from `block_on` and from inside a spawned task
//!   (where `join_all` goes quadratic);
//! - `wait_for` on a ready future vs `tokio::time::timeout`;
//! - `as_completed` (stream) vs `FuturesUnordered` of `JoinHandle`s.
//!
//! `cargo bench --bench combinators`

use std::future::{Future, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- workloads

async fn ours_gather(n: u64) -> u64 {
    let v = asyncio::gather((0..n).map(|i| async move { i }))
        .await
        .unwrap();
    v.len() as u64
}

async fn raw_joinset(n: u64) -> u64 {
    let mut set = JoinSet::new();
    for i in 0..n {
        set.spawn(async move { i });
    }
    let mut count = 0;
    while let Some(r) = set.join_next().await {
        black_box(r.unwrap());
        count += 1;
    }
    count
}

async fn raw_join_all(n: u64) -> u64 {
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
    futures::future::join_all(handles).await.len() as u64
}

async fn ours_as_completed(n: u64) -> u64 {
    let s = asyncio::as_completed((0..n).map(|i| async move { i }), None);
    StreamExt::fold(s, 0, |acc, r| async move {
        black_box(r.unwrap());
        acc + 1
    })
    .await
}

async fn raw_futures_unordered(n: u64) -> u64 {
    let set: FuturesUnordered<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
    set.fold(0, |acc, r| async move {
        black_box(r.unwrap());
        acc + 1
    })
    .await
}

/// Reference: the task core's own cost (spawn + await each in order).
async fn ours_spawn_in_order(n: u64) -> u64 {
    let tasks: Vec<_> = (0..n)
        .map(|i| asyncio::create_task(async move { i }))
        .collect();
    let mut count = 0;
    for t in tasks {
        black_box(t.await.unwrap());
        count += 1;
    }
    count
}

async fn raw_spawn_in_order(n: u64) -> u64 {
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
    let mut count = 0;
    for h in handles {
        black_box(h.await.unwrap());
        count += 1;
    }
    count
}

const WAIT_FOR_OPS: u64 = 1_000_000;

async fn ours_wait_for(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += asyncio::wait_for(ready(black_box(i)), Duration::from_secs(1))
            .await
            .unwrap();
    }
    sum
}

async fn raw_timeout(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += tokio::time::timeout(Duration::from_secs(1), ready(black_box(i)))
            .await
            .unwrap();
    }
    sum
}

async fn bare_await(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += ready(black_box(i)).await;
    }
    sum
}

/// Where the workload's driver runs.
#[derive(Clone, Copy)]
enum Driver {
    /// `block_on` (the `#[tokio::main]` shape).
    BlockOn,
    /// Inside a task spawned on the runtime (a task awaiting the gather).
    Task,
}

fn run_once<F, Fut>(rt: &Runtime, driver: Driver, n: u64, f: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let start = Instant::now();
    let out = match driver {
        Driver::BlockOn => rt.block_on(f(n)),
        Driver::Task => {
            let fut = f(n);
            rt.block_on(async move { tokio::spawn(fut).await.unwrap() })
        }
    };
    let elapsed = start.elapsed();
    black_box(out);
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

type Work = (
    &'static str,
    fn(u64) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>>,
);

/// Interleaved A/B/C rounds; prints per-op medians and ratios vs the fastest
/// raw contender.
fn interleaved(
    rt: &Runtime,
    title: &str,
    driver: Driver,
    n: u64,
    rounds: usize,
    ours: Work,
    raws: &[Work],
) {
    let mut all: Vec<Work> = vec![ours];
    all.extend_from_slice(raws);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); all.len()];
    // warm-up
    for (_, f) in &all {
        run_once(rt, driver, n, f);
    }
    for _ in 0..rounds {
        for (k, (_, f)) in all.iter().enumerate() {
            samples[k].push(run_once(rt, driver, n, f));
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    let best_raw = medians[1..].iter().min().copied().unwrap();
    println!("\n{title} (N = {n}, {rounds} interleaved rounds, medians)");
    for ((name, _), m) in all.iter().zip(&medians) {
        println!(
            "  {name:<28} {:>9.1} ns/op   ratio vs best raw {:.2}x",
            m.as_nanos() as f64 / n as f64,
            m.as_secs_f64() / best_raw.as_secs_f64()
        );
    }
}

fn ratios() {
    let rt = runtime();
    let gather: Work = ("asyncio::gather", |n| Box::pin(ours_gather(n)));
    let joinset: Work = ("JoinSet", |n| Box::pin(raw_joinset(n)));
    let join_all: Work = ("join_all(JoinHandle)", |n| Box::pin(raw_join_all(n)));
    for n in [10_000, 100_000] {
        interleaved(
            &rt,
            "gather, driver in block_on",
            Driver::BlockOn,
            n,
            9,
            gather,
            &[joinset, join_all],
        );
    }
    interleaved(
        &rt,
        "gather, driver in a task",
        Driver::Task,
        10_000,
        9,
        gather,
        &[joinset, join_all],
    );
    // join_all inside a task at 100k is the quadratic case: JoinSet only.
    interleaved(
        &rt,
        "gather, driver in a task",
        Driver::Task,
        100_000,
        9,
        gather,
        &[joinset],
    );
    interleaved(
        &rt,
        "reference: spawn + await in order (task core cost)",
        Driver::BlockOn,
        100_000,
        9,
        ("asyncio::create_task", |n| Box::pin(ours_spawn_in_order(n))),
        &[("tokio::spawn", |n| Box::pin(raw_spawn_in_order(n)))],
    );
    interleaved(
        &rt,
        "wait_for on a ready future (per op)",
        Driver::BlockOn,
        WAIT_FOR_OPS,
        9,
        ("asyncio::wait_for", |n| Box::pin(ours_wait_for(n))),
        &[("tokio::time::timeout", |n| Box::pin(raw_timeout(n)))],
    );
    interleaved(
        &rt,
        "bare await (reference)",
        Driver::BlockOn,
        WAIT_FOR_OPS,
        3,
        ("ready().await", |n| Box::pin(bare_await(n))),
        &[("ready().await (again)", |n| Box::pin(bare_await(n)))],
    );
    interleaved(
        &rt,
        "as_completed (stream) vs FuturesUnordered",
        Driver::BlockOn,
        10_000,
        9,
        ("asyncio::as_completed", |n| Box::pin(ours_as_completed(n))),
        &[("FuturesUnordered(JoinHandle)", |n| {
            Box::pin(raw_futures_unordered(n))
        })],
    );
}

fn criterion_benches(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("gather_10k");
    g.bench_function("asyncio::gather", |b| {
        b.iter(|| rt.block_on(ours_gather(10_000)))
    });
    g.bench_function("JoinSet", |b| b.iter(|| rt.block_on(raw_joinset(10_000))));
    g.bench_function("join_all", |b| b.iter(|| rt.block_on(raw_join_all(10_000))));
    g.finish();
    let mut g = c.benchmark_group("wait_for_ready_1k");
    g.bench_function("asyncio::wait_for", |b| {
        b.iter(|| rt.block_on(ours_wait_for(1_000)))
    });
    g.bench_function("tokio::time::timeout", |b| {
        b.iter(|| rt.block_on(raw_timeout(1_000)))
    });
    g.finish();
    let mut g = c.benchmark_group("as_completed_10k");
    g.bench_function("asyncio::as_completed", |b| {
        b.iter(|| rt.block_on(ours_as_completed(10_000)))
    });
    g.bench_function("FuturesUnordered", |b| {
        b.iter(|| rt.block_on(raw_futures_unordered(10_000)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = criterion_benches
}

fn main() {
    // `cargo test --benches` runs this binary with `--test`: keep it instant.
    if std::env::args().any(|a| a == "--test") {
        let rt = runtime();
        assert_eq!(rt.block_on(ours_gather(100)), 100);
        assert_eq!(rt.block_on(ours_wait_for(10)), 45);
        assert_eq!(rt.block_on(ours_as_completed(100)), 100);
        return;
    }
    ratios();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
