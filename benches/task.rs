//! The task core against raw Tokio, same process.
//!
//! 1. `create_task` + await vs `tokio::spawn` + `JoinHandle` await, 10k and
//!    100k tasks, multi-thread (2 workers) and current-thread runtimes. The
//!    driver runs as the main task of a runtime (`block_on`), as `#[tokio::main]`
//!    and `asyncio::run` both do. Criterion measures each variant; then an
//!    interleaved A/B pass (raw, ours, raw, ours, ...) prints medians and the
//!    ratio, because run-to-run drift on this machine is as large as the
//!    budget (see `shared/perf-baseline.md` §5). Two *floors* run beside
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
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use tokio::runtime::Runtime;

const N_SMALL: usize = 10_000;
const N_LARGE: usize = 100_000;

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Multi,
    Current,
}

fn runtime(flavor: Flavor) -> Runtime {
    match flavor {
        Flavor::Multi => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Flavor::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .unwrap()
}

/// Raw Tokio: spawn `n` tasks, then await each handle in order.
async fn raw_spawn_await(n: usize) {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        handles.push(tokio::spawn(async move { black_box(i) }));
    }
    for h in handles {
        black_box(h.await.unwrap());
    }
}

/// Ours: the same with `create_task` and `task.await`.
async fn ours_spawn_await(n: usize) {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(asyncio::create_task(async move { black_box(i) }));
    }
    for t in tasks {
        black_box(t.await.unwrap());
    }
}

// ------------------------------------------------------------------ floors
//
// What any task object with asyncio's features costs on top of raw Tokio,
// whatever its design: the floor under the 1.15x target. Each floor is raw
// Tokio plus only the shared state the contract cannot do without.

/// Floor 1: one shared object per task that keeps the outcome after the
/// await (`Task.result()`, `done()` from any `TaskRef`), written by the task
/// and read by the awaiter: one allocation and two uncontended lock pairs.
async fn floor_outcome(n: usize) {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let slot = Arc::new(Mutex::new(None));
        let s = slot.clone();
        let h = tokio::spawn(async move {
            *s.lock().unwrap() = Some(black_box(i));
        });
        tasks.push((slot, h));
    }
    for (slot, h) in tasks {
        h.await.unwrap();
        black_box(slot.lock().unwrap().take());
    }
}

/// A registry as small as `all_tasks()` allows: per-thread shards of
/// `Weak`s, one uncontended lock to enter and one to leave.
type FloorEntry = Weak<Mutex<Option<usize>>>;

/// One shard: entries and the free list.
type FloorShard = Mutex<(Vec<Option<FloorEntry>>, Vec<usize>)>;

struct FloorRegistry {
    shards: [FloorShard; 32],
}

static FLOOR_REGISTRY: std::sync::LazyLock<FloorRegistry> =
    std::sync::LazyLock::new(|| FloorRegistry {
        shards: std::array::from_fn(|_| Mutex::default()),
    });

thread_local! {
    static FLOOR_SHARD: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 32
    };
}

fn floor_insert(w: FloorEntry) -> (usize, usize) {
    let shard = FLOOR_SHARD.with(|s| *s);
    let mut g = FLOOR_REGISTRY.shards[shard].lock().unwrap();
    let index = match g.1.pop() {
        Some(i) => {
            g.0[i] = Some(w);
            i
        }
        None => {
            g.0.push(Some(w));
            g.0.len() - 1
        }
    };
    (shard, index)
}

fn floor_remove((shard, index): (usize, usize)) {
    let mut g = FLOOR_REGISTRY.shards[shard].lock().unwrap();
    let w = g.0[index].take();
    g.1.push(index);
    drop(g);
    drop(w);
}

/// Floor 2: floor 1 plus that registry (the task enters it when created
/// and leaves it when it ends).
async fn floor_outcome_registry(n: usize) {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let slot = Arc::new(Mutex::new(None));
        let at = floor_insert(Arc::downgrade(&slot));
        let s = slot.clone();
        let h = tokio::spawn(async move {
            *s.lock().unwrap() = Some(black_box(i));
            floor_remove(at);
        });
        tasks.push((slot, h));
    }
    for (slot, h) in tasks {
        h.await.unwrap();
        black_box(slot.lock().unwrap().take());
    }
}

/// Runs `make()` as the main future of a fresh runtime of `flavor` — for
/// `ours`, as the main *task* (the way `asyncio::run` does) — and times it.
fn time_main<F: Future<Output = ()>>(
    flavor: Flavor,
    ours: bool,
    make: impl FnOnce() -> F,
) -> Duration {
    let fut = make();
    if ours {
        let runner = match flavor {
            Flavor::Multi => asyncio::Runner::new().worker_threads(2),
            Flavor::Current => asyncio::Runner::new().current_thread(),
        };
        runner.run(async move {
            let start = Instant::now();
            fut.await;
            start.elapsed()
        })
    } else {
        runtime(flavor).block_on(async move {
            let start = Instant::now();
            fut.await;
            start.elapsed()
        })
    }
}

fn spawn_await(c: &mut Criterion) {
    for flavor in [Flavor::Multi, Flavor::Current] {
        let mut group = c.benchmark_group(format!("spawn_await/{flavor:?}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3));
        for n in [N_SMALL, N_LARGE] {
            group.throughput(criterion::Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("tokio", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| time_main(flavor, false, || raw_spawn_await(n)))
                        .sum()
                })
            });
            group.bench_with_input(BenchmarkId::new("asyncio", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| time_main(flavor, true, || ours_spawn_await(n)))
                        .sum()
                })
            });
            group.bench_with_input(BenchmarkId::new("floor_outcome", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| time_main(flavor, false, || floor_outcome(n)))
                        .sum()
                })
            });
            group.bench_with_input(BenchmarkId::new("floor_registry", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| time_main(flavor, false, || floor_outcome_registry(n)))
                        .sum()
                })
            });
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The interleaved A/B pass: `rounds` alternations, per-task medians, ratio.
fn interleaved(rounds: usize) {
    println!("\ninterleaved A/B, {rounds} rounds, median ns per task (ratio = asyncio / tokio):");
    for flavor in [Flavor::Multi, Flavor::Current] {
        for n in [N_SMALL, N_LARGE] {
            let (mut raw, mut ours) = (Vec::new(), Vec::new());
            let (mut floor1, mut floor2) = (Vec::new(), Vec::new());
            let per_task = |d: Duration| d.as_nanos() as f64 / n as f64;
            for _ in 0..rounds {
                raw.push(per_task(time_main(flavor, false, || raw_spawn_await(n))));
                floor1.push(per_task(time_main(flavor, false, || floor_outcome(n))));
                floor2.push(per_task(time_main(flavor, false, || {
                    floor_outcome_registry(n)
                })));
                ours.push(per_task(time_main(flavor, true, || ours_spawn_await(n))));
            }
            let (r, o) = (median(&mut raw), median(&mut ours));
            let (f1, f2) = (median(&mut floor1), median(&mut floor2));
            println!(
                "  spawn+await {flavor:?} n={n:>6}: tokio {r:7.1}  asyncio {o:7.1}  ratio {:.3}   \
                 floors: outcome slot {f1:7.1} ({:.3}), + registry {f2:7.1} ({:.3})",
                o / r,
                f1 / r,
                f2 / r
            );
        }
    }
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
