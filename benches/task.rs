//! The task core against raw Tokio, same process.
//!
//! 1. `create_task` + await vs `tokio::spawn` + `JoinHandle` await, 10k and
//!    100k tasks, multi-thread (2 workers) and current-thread runtimes. The
//!    driver runs as the main task of a runtime (`block_on`), as `#[tokio::main]`
//!    and `asyncio::run` both do. Criterion measures each variant; then an
//!    interleaved A/B pass (raw, ours, raw, ours, ...) prints medians and the
//!    ratio, because run-to-run drift on this machine is as large as the
//!    budget (see `docs/performance.md`). Two *floors* run beside
//!    them: raw Tokio plus only the shared state any task object with
//!    asyncio's features needs (an outcome slot; then also a registry entry),
//!    to show how much of the gap no design can remove.
//! 2. Registry under contention: two workers spawning and awaiting at once.
//! 3. `all_tasks()` with 10k pending tasks.
//! 4. Bytes per parked task (RSS delta over 100k tasks, each in a fresh child
//!    process so the allocator starts clean), ours minus raw.
//!
//! `cargo bench --bench task` runs everything; `-- --quick` shortens the
//! criterion part.

use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group};

#[path = "spawn_common/mod.rs"]
mod spawn_common;
use spawn_common::*;

/// One criterion variant: `work` on `n` tasks, timed as the main future
/// (`ours`: as the main task of a `Runner`).
fn bench_variant<F, Fut>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    flavor: Flavor,
    n: usize,
    ours: bool,
    work: F,
) where
    F: Fn(usize) -> Fut + Copy,
    Fut: Future<Output = ()>,
{
    group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_main(flavor, ours, || work(n)))
                .sum()
        })
    });
}

fn spawn_await(c: &mut Criterion) {
    for flavor in [Flavor::Multi, Flavor::Current] {
        let mut group = c.benchmark_group(format!("spawn_await/{flavor:?}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3));
        for n in [N_SMALL, N_LARGE] {
            group.throughput(criterion::Throughput::Elements(n as u64));
            bench_variant(&mut group, "tokio", flavor, n, false, raw_spawn_await);
            bench_variant(&mut group, "asyncio", flavor, n, true, ours_spawn_await);
            bench_variant(&mut group, "floor_outcome", flavor, n, false, floor_outcome);
            bench_variant(
                &mut group,
                "floor_registry",
                flavor,
                n,
                false,
                floor_outcome_registry,
            );
        }
        group.finish();
    }
}

/// Two workers spawning and awaiting `n` tasks each, at the same time.
async fn contended<F, Fut>(n: usize, spawn_await: F)
where
    F: Fn(usize) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let a = tokio::spawn(spawn_await(n));
    let b = tokio::spawn(spawn_await(n));
    a.await.unwrap();
    b.await.unwrap();
}

async fn ours_contended_leaf(n: usize) {
    // Runs inside a raw Tokio task: wrap in a task of ours so that the
    // children inherit the runtime from their parent (the common case).
    asyncio::create_task(ours_spawn_await(n)).await.unwrap();
}

fn registry_contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_contention/Multi");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let n = N_SMALL * 5;
    group.throughput(criterion::Throughput::Elements(2 * n as u64));
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_main(Flavor::Multi, false, || contended(n, raw_spawn_await)))
                .sum()
        })
    });
    group.bench_function("asyncio", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_main(Flavor::Multi, true, || contended(n, ours_contended_leaf)))
                .sum()
        })
    });
    group.finish();
}

fn all_tasks_cost(c: &mut Criterion) {
    let rt = runtime(Flavor::Multi);
    let tasks: Vec<_> = rt.block_on(async {
        (0..N_SMALL)
            .map(|_| asyncio::create_task(asyncio::sleep(3600)))
            .collect()
    });
    c.bench_function("all_tasks/10k pending", |b| {
        b.iter(|| rt.block_on(async { black_box(asyncio::all_tasks().len()) }))
    });
    for t in &tasks {
        t.cancel();
    }
}

criterion_group!(benches, spawn_await, registry_contention, all_tasks_cost);

/// The interleaved passes: spawn + await with the floors (shared with
/// `task_mimalloc.rs`), then two workers spawning at once.
fn interleaved(rounds: usize) {
    interleaved_spawn_await(rounds);
    let n = N_SMALL * 5;
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(
            time_main(Flavor::Multi, false, || contended(n, raw_spawn_await)).as_nanos() as f64
                / (2 * n) as f64,
        );
        ours.push(
            time_main(Flavor::Multi, true, || contended(n, ours_contended_leaf)).as_nanos() as f64
                / (2 * n) as f64,
        );
    }
    let (r, o) = (median(&mut raw), median(&mut ours));
    println!(
        "  two workers spawning at once, n=2x{n}: tokio {r:7.1}  asyncio {o:7.1}  ratio {:.3}",
        o / r
    );
}

// ---------------------------------------------------------------- memory

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Child process: park `N_LARGE` tasks (each on its own never-sent oneshot)
/// and print the RSS growth per task.
fn park_child(ours: bool) {
    let rt = runtime(Flavor::Multi);
    let mut senders = Vec::with_capacity(N_LARGE);
    let mut tasks_ours = Vec::new();
    let mut tasks_raw = Vec::new();
    let before = rss_bytes();
    rt.block_on(async {
        for _ in 0..N_LARGE {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            senders.push(tx);
            if ours {
                tasks_ours.push(asyncio::create_task(async move {
                    let _ = rx.await;
                }));
            } else {
                tasks_raw.push(tokio::spawn(async move {
                    let _ = rx.await;
                }));
            }
        }
        // let every task reach its await
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let after = rss_bytes();
    println!("{}", (after.saturating_sub(before)) as f64 / N_LARGE as f64);
    std::process::exit(0);
}

fn memory(rounds: usize) {
    let exe = std::env::current_exe().unwrap();
    let run = |variant: &str| -> Option<f64> {
        let out = std::process::Command::new(&exe)
            .env("ASYNCIO_BENCH_PARK", variant)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.extend(run("tokio"));
        ours.extend(run("asyncio"));
    }
    if raw.is_empty() || ours.is_empty() {
        println!("memory: could not run the child processes");
        return;
    }
    let (r, o) = (median(&mut raw), median(&mut ours));
    println!(
        "\nRSS per parked task (100k, multi-thread, own oneshot), median of {rounds}: tokio {r:.0} B  asyncio {o:.0} B  extra {:.0} B",
        o - r
    );
}

fn main() {
    if let Ok(variant) = std::env::var("ASYNCIO_BENCH_PARK") {
        park_child(variant == "asyncio");
    }
    let quick = std::env::args().any(|a| a == "--quick");
    if !std::env::args().any(|a| a == "--no-criterion") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    interleaved(if quick { 5 } else { 15 });
    memory(if quick { 3 } else { 5 });
}
