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
//! Output, one line per workload (parsed by `benches/ab.sh`):
//!
//! ```text
//! ab <TAB> workload/flavor/N <TAB> raw ns per task <TAB> ours ns per task
//! ```
//!
//! (medians over the rounds). `cargo bench -p asyncio-benches --bench
//! ab_task -- --rounds 15`; without `--bench` or `--rounds` (as `cargo test
//! --benches` does) each workload runs once, small.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Multi,
    Current,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Multi => "multi",
            Flavor::Current => "current",
        }
    }
}

/// Times `fut` as the main future of a fresh raw Tokio runtime.
fn time_raw<F: Future<Output = ()>>(flavor: Flavor, fut: F) -> Duration {
    let rt = match flavor {
        Flavor::Multi => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Flavor::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .unwrap();
    rt.block_on(async move {
        let start = Instant::now();
        fut.await;
        start.elapsed()
    })
}

/// Times `fut` as the main task of a fresh `asyncio::Runner`.
fn time_ours<F: Future<Output = ()>>(flavor: Flavor, fut: F) -> Duration {
    let runner = match flavor {
        Flavor::Multi => asyncio::Runner::new().worker_threads(2),
        Flavor::Current => asyncio::Runner::new().current_thread(),
    };
    runner.run(async move {
        let start = Instant::now();
        fut.await;
        start.elapsed()
    })
}

async fn raw_spawn_await(n: usize) {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        handles.push(tokio::spawn(async move { black_box(i) }));
    }
    for h in handles {
        black_box(h.await.unwrap());
    }
}

async fn ours_spawn_await(n: usize) {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(asyncio::create_task(async move { black_box(i) }));
    }
    for t in tasks {
        black_box(t.await.unwrap());
    }
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
            let per_task = |d: Duration| d.as_nanos() as f64 / n as f64;
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
                time_raw(flavor, raw(n)); // warm-up
                time_ours(flavor, ours(n));
                let (mut r, mut o) = (Vec::new(), Vec::new());
                for _ in 0..rounds {
                    r.push(per_task(time_raw(flavor, raw(n))));
                    o.push(per_task(time_ours(flavor, ours(n))));
                }
                println!(
                    "ab\t{name}/{}/{n}\t{:.1}\t{:.1}",
                    flavor.name(),
                    median(&mut r),
                    median(&mut o)
                );
            }
        }
    }
}
