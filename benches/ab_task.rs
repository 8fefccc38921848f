//! The task workloads whose cost must not change from one version of the
//! crate to another, written against the API every version since 0.1 has
//! (`Runner`, `create_task`, `Task` await, `cancel`, `sleep`), so that
//! `benches/ab.sh` can build this same file against an older revision and
//! run both builds alternately. Each workload runs beside its raw Tokio
//! equivalent, interleaved in the same process (raw, ours, raw, ours, ...),
//! so that each build also reports its ratio to raw Tokio from the same run.
//!
//! - `spawn_await`: `create_task` N times, then await each task in order
//!   (raw: `tokio::spawn` + `JoinHandle`);
//! - `cancel_storm`: N tasks parked in a long sleep, each cancelled, then
//!   each awaited (raw: `abort` + `JoinHandle`).
//!
//! Both on the multi-thread runtime (2 workers) and the current-thread
//! runtime, N = 10k and 100k; the driver is the main task of an
//! `asyncio::Runner` for ours and the main future of a Tokio runtime for
//! raw Tokio (the shape of `asyncio::run` and `#[tokio::main]`).
//!
//! A sample runs the workload over and over (N = 10k ten times) so that it
//! lasts as long as one of 100k tasks, and is timed on two clocks: the wall
//! clock, and the CPU time of the process's threads (which leaves out the
//! time they waited for a core on a machine shared with other work).
//!
//! Output, one line per workload (parsed by `benches/ab.sh`), medians over
//! the rounds, ns per task:
//!
//! ```text
//! ab <TAB> workload/flavor/N <TAB> raw wall <TAB> ours wall <TAB> raw cpu <TAB> ours cpu
//! ```
//!
//! `cargo bench -p asyncio-benches --bench ab_task -- --rounds 15`; without `--bench` or `--rounds` (as `cargo test
//! --benches` does) each workload runs once, small.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "spawn_common/mod.rs"]
mod spawn_common;
use spawn_common::{Flavor, cpu_now, median, ours_spawn_await, raw_spawn_await, runtime};

/// Runs `make()` `reps` times in a row; (wall, CPU) time.
async fn timed<F: Future<Output = ()>>(reps: usize, make: impl Fn() -> F) -> (Duration, Duration) {
    let (cpu0, start) = (cpu_now(), Instant::now());
    for _ in 0..reps {
        make().await;
    }
    let wall = start.elapsed();
    (wall, cpu_now().saturating_sub(cpu0))
}

/// Times `reps` runs of `make()` as the main future of a fresh raw Tokio
/// runtime.
fn time_raw<F: Future<Output = ()>>(
    flavor: Flavor,
    reps: usize,
    make: impl Fn() -> F,
) -> (Duration, Duration) {
    let rt = runtime(flavor);
    rt.block_on(timed(reps, make))
}

/// Times `reps` runs of `make()` as the main task of a fresh
/// `asyncio::Runner`.
fn time_ours<F: Future<Output = ()>>(
    flavor: Flavor,
    reps: usize,
    make: impl Fn() -> F,
) -> (Duration, Duration) {
    let runner = match flavor {
        Flavor::Multi => asyncio::Runner::new().worker_threads(2),
        Flavor::Current => asyncio::Runner::new().current_thread(),
    };
    runner.run(timed(reps, make))
}

/// Lets the tasks started so far run until all `n` have started (and
/// parked): both sides cancel parked tasks, not tasks never polled.
async fn wait_started(started: &AtomicUsize, n: usize) {
    while started.load(Ordering::Relaxed) < n {
        tokio::task::yield_now().await;
    }
}

async fn raw_cancel_storm(n: usize) {
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let s = started.clone();
            tokio::spawn(async move {
                s.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(3600)).await
            })
        })
        .collect();
    wait_started(&started, n).await;
    for h in &handles {
        h.abort();
    }
    for h in handles {
        assert!(h.await.unwrap_err().is_cancelled());
    }
}

async fn ours_cancel_storm(n: usize) {
    let started = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let s = started.clone();
            asyncio::create_task(async move {
                s.fetch_add(1, Ordering::Relaxed);
                asyncio::sleep(3600).await
            })
        })
        .collect();
    wait_started(&started, n).await;
    for t in &tasks {
        t.cancel();
    }
    for t in tasks {
        assert!(t.await.unwrap_err().is_cancelled());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .map(|i| args[i + 1].parse().expect("--rounds takes a number"));
    let smoke = args.iter().any(|a| a == "--test")
        || (rounds.is_none() && !args.iter().any(|a| a == "--bench"));
    let (rounds, sizes) = match smoke {
        true => (1, vec![100]),
        false => (rounds.unwrap_or(15), vec![10_000, 100_000]),
    };
    for flavor in [Flavor::Multi, Flavor::Current] {
        for &n in &sizes {
            // Each sample: as many tasks as one run of the largest N.
            let reps = sizes[sizes.len() - 1] / n;
            let per_task = |d: Duration| d.as_nanos() as f64 / (n * reps) as f64;
            type Pair = (fn(usize) -> BoxFut, fn(usize) -> BoxFut);
            type BoxFut = std::pin::Pin<Box<dyn Future<Output = ()>>>;
            let workloads: [(&str, Pair); 2] = [
                (
                    "spawn_await",
                    (
                        |n| Box::pin(raw_spawn_await(n)),
                        |n| Box::pin(ours_spawn_await(n)),
                    ),
                ),
                (
                    "cancel_storm",
                    (
                        |n| Box::pin(raw_cancel_storm(n)),
                        |n| Box::pin(ours_cancel_storm(n)),
                    ),
                ),
            ];
            for (name, (raw, ours)) in workloads {
                time_raw(flavor, 1, || raw(n)); // warm-up
                time_ours(flavor, 1, || ours(n));
                let mut v: [Vec<f64>; 4] = Default::default();
                for _ in 0..rounds {
                    let (wall, cpu) = time_raw(flavor, reps, || raw(n));
                    v[0].push(per_task(wall));
                    v[2].push(per_task(cpu));
                    let (wall, cpu) = time_ours(flavor, reps, || ours(n));
                    v[1].push(per_task(wall));
                    v[3].push(per_task(cpu));
                }
                let [a, b, c, d] = v.map(|mut v| median(&mut v));
                let flavor = format!("{flavor:?}").to_lowercase();
                println!("ab\t{name}/{flavor}/{n}\t{a:.1}\t{b:.1}\t{c:.1}\t{d:.1}");
            }
        }
    }
}
