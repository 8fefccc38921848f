//! Cancel scopes against the raw Tokio way of doing the same, same process,
//! interleaved rounds (raw, ours, raw, ours, ...), medians per operation:
//!
//! 1. A timeout scope around a ready future vs `tokio::time::timeout`, and
//!    two floors: the clock read both make, and that read plus the one
//!    shared allocation a cloneable handle would need without reuse.
//! 2. A task group of N children vs `asyncio::gather` of the same N, on the
//!    multi-thread (2 workers) and the current-thread runtime, N = 100
//!    (repeated 1000 times per sample) and 10k (10 times). The two share
//!    each round's runtime and take turns in chunks of a few ms (see
//!    `time_pair`); the per-round ratio is the figure to read.
//! 3. Cancelling N tasks that each run one awaited cleanup: `on_cancel` vs a
//!    `CancellationToken` per task + `select!`.
//!
//! `cargo bench -p asyncio-benches --bench scope` runs them all;
//! `-- timeout`, `-- group` or `-- cleanup` runs one (several may be given),
//! `-- --rounds R` sets the number of interleaved rounds (default 15).
//! For the group: `-- group multi` (or `current`) keeps one runtime,
//! `--n 100` one size, and `--profile gather` (or `group`) runs one side
//! only, with no report (a steady load for `perf record`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asyncio::CancelExt;
use tokio_util::sync::CancellationToken;

#[path = "spawn_common/mod.rs"]
mod spawn_common;
use spawn_common::Flavor;

/// One timed run: wall-clock time, and the CPU time of every thread of the
/// process meanwhile (the runtime's threads included). On a machine shared
/// with other work, the CPU time leaves out the time the threads waited for
/// a core, so it moves less than the wall-clock time.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Times a future from inside the runtime (both clocks).
async fn timed(fut: impl std::future::Future<Output = ()>) -> Sample {
    let (cpu0, start) = (cpu_threads(), Instant::now());
    fut.await;
    let wall = start.elapsed();
    Sample {
        wall,
        cpu: cpu_since(&cpu0),
    }
}

/// The CPU time of each thread of the process so far, by thread id (ns).
fn cpu_threads() -> Vec<(u64, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, stat.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The CPU time the threads of the process spent since `then`, thread by
/// thread: a thread that exited meanwhile (a runtime's thread of an earlier
/// sample) drops out of both readings instead of making the sum go back.
fn cpu_since(then: &[(u64, u64)]) -> Duration {
    let ns = cpu_threads()
        .into_iter()
        .map(|(tid, now)| {
            let before = then
                .iter()
                .find(|(t, _)| *t == tid)
                .map_or(0, |(_, ns)| *ns);
            now.saturating_sub(before)
        })
        .sum();
    Duration::from_nanos(ns)
}

/// Times `f` on a fresh multi-thread runtime (2 workers), as the main task
/// of an `asyncio::Runner` so that both contenders run inside one of our
/// tasks (the cost a task of ours pays is what is measured).
fn time<F: std::future::Future<Output = ()>>(make: impl FnOnce() -> F) -> Sample {
    let fut = make();
    asyncio::Runner::new()
        .worker_threads(2)
        .run(async move { timed(fut).await })
}

/// Times `reps` runs of `make()` in a row, on a fresh runtime of `flavor`,
/// as the main task of an `asyncio::Runner`.
fn time_on<F: std::future::Future<Output = ()>>(
    flavor: Flavor,
    reps: usize,
    make: impl Fn() -> F,
) -> Sample {
    let runner = match flavor {
        Flavor::Multi => asyncio::Runner::new().worker_threads(2),
        Flavor::Current => asyncio::Runner::new().current_thread(),
    };
    runner.run(async move {
        timed(async {
            for _ in 0..reps {
                make().await;
            }
        })
        .await
    })
}

/// Median, lowest and highest of `v`, per operation, in ns.
fn stats(v: &mut [Duration], ops: usize) -> [f64; 3] {
    v.sort();
    let per_op = |d: Duration| d.as_nanos() as f64 / ops as f64;
    [per_op(v[v.len() / 2]), per_op(v[0]), per_op(v[v.len() - 1])]
}

/// Runs each case once to warm up, then `rounds` interleaved rounds (case
/// 1, case 2, ..., case 1, ...). Prints per operation (`ops` a sample) the
/// median, lowest and highest sample of both clocks, and the ratios to the
/// first case of the medians and of the lowest samples.
fn compare(
    title: &str,
    n: usize,
    ops: usize,
    rounds: usize,
    cases: &[(&str, &dyn Fn(usize) -> Sample)],
) {
    let mut samples = vec![Vec::new(); cases.len()];
    for (_, f) in cases {
        f(n); // warm-up
    }
    for _ in 0..rounds {
        for (k, (_, f)) in cases.iter().enumerate() {
            samples[k].push(f(n));
        }
    }
    let names: Vec<&str> = cases.iter().map(|(name, _)| *name).collect();
    report(title, n, ops, rounds, &names, &samples);
}

/// Prints what [`compare`] says of `samples` (one `Vec` a case, one sample
/// a round), and the per-round ratios to the first case.
fn report(
    title: &str,
    n: usize,
    ops: usize,
    rounds: usize,
    names: &[&str],
    samples: &[Vec<Sample>],
) {
    let stats: Vec<[[f64; 3]; 2]> = samples
        .iter()
        .map(|v| {
            let mut wall: Vec<Duration> = v.iter().map(|s| s.wall).collect();
            let mut cpu: Vec<Duration> = v.iter().map(|s| s.cpu).collect();
            [stats(&mut wall, ops), stats(&mut cpu, ops)]
        })
        .collect();
    println!(
        "\n{title} (N = {n}, {rounds} interleaved rounds; ns per op: median [lowest..highest])"
    );
    for (name, st) in names.iter().zip(&stats) {
        let [wall, cpu] = st;
        let [base_wall, base_cpu] = &stats[0];
        println!(
            "  {name:<28} wall {:>8.1} [{:.1}..{:.1}]  cpu {:>8.1} [{:.1}..{:.1}]",
            wall[0], wall[1], wall[2], cpu[0], cpu[1], cpu[2]
        );
        println!(
            "  {:<28} ratio to first: wall median {:.2}x, lowest {:.2}x; cpu median {:.2}x, lowest {:.2}x",
            "",
            wall[0] / base_wall[0],
            wall[1] / base_wall[1],
            cpu[0] / base_cpu[0],
            cpu[1] / base_cpu[1],
        );
    }
    // Per-round ratios to the first case (same round, back to back): less
    // exposed to a slow stretch of the machine than the ratio of medians.
    for (k, name) in names.iter().enumerate().skip(1) {
        let ratios = |clock: fn(&Sample) -> Duration| {
            let mut r: Vec<f64> = samples[k]
                .iter()
                .zip(&samples[0])
                .map(|(s, b)| clock(s).as_secs_f64() / clock(b).as_secs_f64())
                .collect();
            r.sort_by(f64::total_cmp);
            [r[r.len() / 2], r[0], r[r.len() - 1]]
        };
        let [w, c] = [ratios(|s| s.wall), ratios(|s| s.cpu)];
        println!(
            "  {name:<28} per-round ratio to first: wall {:.2}x [{:.2}..{:.2}], cpu {:.2}x [{:.2}..{:.2}]",
            w[0], w[1], w[2], c[0], c[1], c[2]
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

/// The group against gather, paired: one fresh runtime of `flavor` a
/// round, on which the two take turns in chunks of `chunk` runs (gather,
/// group, group, gather, ...) until each did `reps` runs; a side's sample
/// is the sum of its chunks. Both meet the same stretch of a shared
/// machine (a chunk is a few ms), which a sample a side (each on its own
/// runtime, one after the other) does not ensure.
fn time_pair(flavor: Flavor, reps: usize, chunk: usize, n: usize) -> [Sample; 2] {
    let runner = match flavor {
        Flavor::Multi => asyncio::Runner::new().worker_threads(2),
        Flavor::Current => asyncio::Runner::new().current_thread(),
    };
    runner.run(async move {
        let mut total = [Sample {
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
        }; 2];
        for c in 0..reps.div_ceil(chunk) {
            let order = if c % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let s = timed(async {
                    for _ in 0..chunk {
                        match side {
                            0 => ours_gather(n).await,
                            _ => ours_group(n).await,
                        }
                    }
                })
                .await;
                total[side].wall += s.wall;
                total[side].cpu += s.cpu;
            }
        }
        total
    })
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
    let rounds = match args.iter().position(|a| a == "--rounds") {
        Some(i) => args[i + 1].parse().expect("--rounds takes a number"),
        None if quick => 1,
        None => 15,
    };
    let n = if quick { 100 } else { 10_000 };
    let picked = ["timeout", "group", "cleanup"];
    let only: Vec<&str> = picked
        .into_iter()
        .filter(|w| args.iter().any(|a| a == w))
        .collect();
    let run = |what: &str| only.is_empty() || only.contains(&what);
    if run("timeout") {
        // 4M ops (≈ 120 ms a sample), so that the CPU clock's granularity
        // is small beside a sample.
        compare(
            "timeout scope around a ready future",
            n * 400,
            n * 400,
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
    }
    if run("group") {
        // Each sample runs the workload `reps` times (≈ 100 ms a side, so
        // that the CPU clock's granularity is small beside it), in chunks
        // of `chunk` runs (a few ms) taken in turn with the other side.
        let sizes = if quick {
            [(10, 1, 1), (100, 1, 1)]
        } else {
            [(100, 1000, 50), (n, 10, 1)]
        };
        // `multi` / `current` keep one runtime; `--n N` keeps one size.
        let flavors: Vec<Flavor> = [Flavor::Multi, Flavor::Current]
            .into_iter()
            .filter(|f| {
                let name = format!("{f:?}").to_lowercase();
                !args.iter().any(|a| a == "multi" || a == "current") || args.contains(&name)
            })
            .collect();
        let only_n: Option<usize> = args
            .iter()
            .position(|a| a == "--n")
            .map(|i| args[i + 1].parse().expect("--n takes a number"));
        // `--profile gather|group`: run that side only, `rounds` samples, no
        // report (a steady load for `perf record`).
        let profile = args
            .iter()
            .position(|a| a == "--profile")
            .map(|i| args[i + 1].clone());
        for flavor in flavors {
            for (n, reps, chunk) in sizes {
                if only_n.is_some_and(|m| m != n) {
                    continue;
                }
                if let Some(side) = &profile {
                    for _ in 0..rounds {
                        match side.as_str() {
                            "gather" => time_on(flavor, reps, || ours_gather(n)),
                            "group" => time_on(flavor, reps, || ours_group(n)),
                            _ => panic!("--profile takes gather or group"),
                        };
                    }
                    continue;
                }
                time_pair(flavor, chunk, chunk, n); // warm-up
                let mut samples = [Vec::new(), Vec::new()];
                for _ in 0..rounds {
                    let [gather, group] = time_pair(flavor, reps, chunk, n);
                    samples[0].push(gather);
                    samples[1].push(group);
                }
                report(
                    &format!(
                        "task group of N children vs gather of N, {flavor:?}, x{reps} in chunks of {chunk}, paired"
                    ),
                    n,
                    n * reps,
                    rounds,
                    &["asyncio::gather", "asyncio::task_group"],
                    &samples,
                );
            }
        }
    }
    if run("cleanup") {
        compare(
            "cancel N tasks, one awaited cleanup each",
            n,
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
}
