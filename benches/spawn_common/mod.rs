//! What the task benches share: the runtimes, the spawn + await workloads
//! (raw Tokio, ours) and the *floors*: raw Tokio plus only the shared state
//! that any task object with asyncio's features needs, whatever its design.
//! Included with `#[path]` by `task.rs`, `task_mimalloc.rs`, `scope.rs` and
//! `ab_task.rs`; `benches/ab.sh` builds it (with `ab_task.rs`) against older
//! revisions of the crate too, so it uses only the API every version since
//! 0.1 has (`Runner`, `create_task`, `Task` await).

#![allow(dead_code)] // each bench uses its own subset

use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

pub const N_SMALL: usize = 10_000;
pub const N_LARGE: usize = 100_000;

#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    Multi,
    Current,
}

pub fn runtime(flavor: Flavor) -> Runtime {
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
pub async fn raw_spawn_await(n: usize) {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        handles.push(tokio::spawn(async move { black_box(i) }));
    }
    for h in handles {
        black_box(h.await.unwrap());
    }
}

/// Ours: the same with `create_task` and `task.await`.
pub async fn ours_spawn_await(n: usize) {
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
// Tokio plus only the shared state the public API cannot do without.

/// Floor 1: one shared object per task that keeps the outcome after the
/// await (`Task.result()`, `done()` from any `TaskRef`), written by the task
/// and read by the awaiter: one allocation and two uncontended lock pairs.
pub async fn floor_outcome(n: usize) {
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
pub async fn floor_outcome_registry(n: usize) {
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
pub fn time_main<F: Future<Output = ()>>(
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

/// CPU time used so far by the threads of this process that are alive
/// (Linux: `/proc/self/task/*/schedstat`, which the kernel updates at each
/// scheduler tick and switch, so a sample should last 100 ms or more; zero
/// elsewhere). Read from inside a runtime, its threads are counted. On a
/// machine shared with other work it leaves out the time the threads
/// waited for a core.
pub fn cpu_now() -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = dir
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The interleaved pass of spawn + await: raw Tokio, the two floors and
/// ours, `rounds` alternations each, for both runtime flavours and both
/// sizes; prints per-task medians and ratios to raw Tokio.
pub fn interleaved_spawn_await(rounds: usize) {
    println!("\ninterleaved A/B, {rounds} rounds, median ns per task (ratio = x / tokio):");
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
}
