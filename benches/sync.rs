//! The synchronization primitives and the queue against their Tokio
//! counterparts: same process, interleaved A/B rounds, medians and ratios
//! printed. Tasks are spawned with `tokio::spawn` on both sides, so only
//! the primitive differs.
//!
//! - `Queue` (bounded, 64) 1 producer / 1 consumer and 4 / 4 vs
//!   `tokio::sync::mpsc::channel(64)` (4 consumers share the receiver
//!   through a `tokio::sync::Mutex`, as a port of asyncio code would);
//! - `Lock` acquire/release vs `tokio::sync::Mutex<()>`, alone and with 4
//!   tasks contending;
//! - `Semaphore` acquire/release vs `tokio::sync::Semaphore`, alone and 8
//!   tasks on 2 permits;
//! - `Event` set with 1,000 waiters vs `tokio::sync::Notify::notify_waiters`.
//!
//! `cargo bench -p asyncio-benches --bench sync [-- --only SUBSTRING]`
//! (`--only` keeps the workloads whose title contains it; `--only
//! uncontended` runs one more table: `Semaphore`, `Lock` and their Tokio
//! counterparts, one task, four-way interleaved, with the spread of the
//! per-round ratios).

#[path = "spawn_common/mod.rs"]
mod spawn_common;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use spawn_common::{Flavor, median, runtime};
use tokio::runtime::Runtime;

const CAP: usize = 64;

// ------------------------------------------------------------------ queue

async fn ours_queue(n: usize, producers: usize, consumers: usize) {
    let q = Arc::new(asyncio::Queue::new(CAP));
    let per_p = n / producers;
    let per_c = n / consumers;
    let mut hs = Vec::new();
    for _ in 0..consumers {
        let q = q.clone();
        hs.push(tokio::spawn(async move {
            for _ in 0..per_c {
                black_box(q.get().await.unwrap());
            }
        }));
    }
    for _ in 0..producers {
        let q = q.clone();
        hs.push(tokio::spawn(async move {
            for i in 0..per_p {
                q.put(i).await.unwrap();
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
}

async fn raw_mpsc(n: usize, producers: usize, consumers: usize) {
    let (tx, rx) = tokio::sync::mpsc::channel(CAP);
    let per_p = n / producers;
    let per_c = n / consumers;
    let mut hs = Vec::new();
    if consumers == 1 {
        let mut rx = rx;
        hs.push(tokio::spawn(async move {
            for _ in 0..per_c {
                black_box(rx.recv().await.unwrap());
            }
        }));
    } else {
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..consumers {
            let rx = rx.clone();
            hs.push(tokio::spawn(async move {
                for _ in 0..per_c {
                    black_box(rx.lock().await.recv().await.unwrap());
                }
            }));
        }
    }
    for _ in 0..producers {
        let tx = tx.clone();
        hs.push(tokio::spawn(async move {
            for i in 0..per_p {
                tx.send(i).await.unwrap();
            }
        }));
    }
    drop(tx);
    for h in hs {
        h.await.unwrap();
    }
}

// ------------------------------------------------------------ lock, sem

/// `tasks` tasks, each taking and giving back `$prim` `n / tasks` times
/// (yielding in between when several contend).
macro_rules! contend {
    ($prim:expr, |$p:ident| $acquire:expr, $n:expr, $tasks:expr) => {{
        let prim = Arc::new($prim);
        let (n, tasks): (usize, usize) = ($n, $tasks);
        let hs: Vec<_> = (0..tasks)
            .map(|_| {
                let prim = prim.clone();
                tokio::spawn(async move {
                    for _ in 0..n / tasks {
                        let $p = &*prim;
                        let held = $acquire;
                        black_box(&held);
                        drop(held);
                        if tasks > 1 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    }};
}

async fn ours_lock(n: usize, tasks: usize) {
    contend!(asyncio::Lock::new(), |l| l.acquire().await, n, tasks)
}

async fn raw_mutex(n: usize, tasks: usize) {
    contend!(tokio::sync::Mutex::new(()), |m| m.lock().await, n, tasks)
}

async fn ours_semaphore(n: usize, tasks: usize, permits: usize) {
    contend!(
        asyncio::Semaphore::new(permits),
        |s| s.acquire().await,
        n,
        tasks
    )
}

async fn raw_semaphore(n: usize, tasks: usize, permits: usize) {
    contend!(
        tokio::sync::Semaphore::new(permits),
        |s| s.acquire().await.unwrap(),
        n,
        tasks
    )
}

// ------------------------------------------------------------------ event

const WAITERS: usize = 1_000;

/// Waits until `ready` reaches `n` (every waiter registered).
async fn all_ready(ready: &AtomicUsize, n: usize) {
    while ready.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
}

async fn ours_event(rounds: usize) {
    for _ in 0..rounds {
        let ev = Arc::new(asyncio::Event::new());
        let ready = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (ev, ready) = (ev.clone(), ready.clone());
                tokio::spawn(async move {
                    let w = ev.wait();
                    ready.fetch_add(1, Ordering::Release);
                    w.await;
                })
            })
            .collect();
        all_ready(&ready, WAITERS).await;
        ev.set();
        for h in hs {
            h.await.unwrap();
        }
    }
}

async fn raw_notify(rounds: usize) {
    for _ in 0..rounds {
        let notify = Arc::new(tokio::sync::Notify::new());
        let ready = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (notify, ready) = (notify.clone(), ready.clone());
                tokio::spawn(async move {
                    let n = notify.notified();
                    let mut n = std::pin::pin!(n);
                    n.as_mut().enable();
                    ready.fetch_add(1, Ordering::Release);
                    n.await;
                })
            })
            .collect();
        all_ready(&ready, WAITERS).await;
        notify.notify_waiters();
        for h in hs {
            h.await.unwrap();
        }
    }
}

// ---------------------------------------------------------------- harness

type Work = (
    &'static str,
    fn(usize) -> Pin<Box<dyn Future<Output = ()> + Send>>,
);

fn run_once(rt: &Runtime, n: usize, f: &Work) -> Duration {
    let start = Instant::now();
    rt.block_on((f.1)(n));
    start.elapsed()
}

/// Interleaved rounds (ours, raw; raw, ours; ...); prints per-op medians
/// and the ratio ours / raw.
fn interleaved(
    rt: &Runtime,
    title: &str,
    n: usize,
    ops_per_n: usize,
    rounds: usize,
    ours: Work,
    raw: Work,
) {
    if only().is_some_and(|o| !title.contains(o.as_str())) {
        return;
    }
    let both = [ours, raw];
    for w in &both {
        run_once(rt, n, w); // warm-up
    }
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate which side runs first, so that neither always follows
        // the other.
        for i in 0..2 {
            let k = (round + i) % 2;
            samples[k].push(run_once(rt, n, &both[k]).as_secs_f64());
        }
    }
    let ops = (n * ops_per_n) as f64;
    let m: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    println!("\n{title} ({rounds} interleaved rounds, medians)");
    for ((name, _), m) in both.iter().zip(&m) {
        println!("  {name:<34} {:>9.1} ns/op", m * 1e9 / ops);
    }
    println!("  ratio ours / raw: {:.2}x", m[0] / m[1]);
}

/// The `--only` filter: `None` runs everything.
fn only() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--only")?;
    args.get(i + 1).cloned()
}

/// Uncontended acquire + release, one task: our `Semaphore` and `Lock` and
/// Tokio's `Semaphore` and `Mutex<()>`, four-way interleaved in each round.
/// Prints each median and, for our semaphore against each other column,
/// the median and the spread (min–max) of the per-round ratios.
fn uncontended_four_way(flavor: Flavor, n: usize, rounds: usize, pooled: &mut [Vec<f64>; 3]) {
    let rt = runtime(flavor);
    let works: [Work; 4] = [
        ("asyncio::Semaphore", |n| Box::pin(ours_semaphore(n, 1, 1))),
        ("asyncio::Lock", |n| Box::pin(ours_lock(n, 1))),
        ("tokio::sync::Semaphore", |n| {
            Box::pin(raw_semaphore(n, 1, 1))
        }),
        ("tokio::sync::Mutex<()>", |n| Box::pin(raw_mutex(n, 1))),
    ];
    for w in &works {
        run_once(&rt, n, w); // warm-up
    }
    let mut samples: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        // Each round starts with the next column, so that no column always
        // runs first (after the previous round's last) or last.
        for i in 0..works.len() {
            let k = (round + i) % works.len();
            samples[k].push(run_once(&rt, n, &works[k]).as_secs_f64() * 1e9 / n as f64);
        }
    }
    println!(
        "\n{flavor:?}: uncontended acquire + release, one task ({rounds} four-way interleaved rounds, rotating order)"
    );
    for ((name, _), s) in works.iter().zip(&samples) {
        let mut s = s.clone();
        println!("  {name:<24} median {:>6.1} ns/op", median(&mut s));
    }
    for (k, (name, _)) in works.iter().enumerate().skip(1) {
        let mut r: Vec<f64> = samples[0]
            .iter()
            .zip(&samples[k])
            .map(|(a, b)| a / b)
            .collect();
        pooled[k - 1].extend(&r);
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(0.0, f64::max);
        println!(
            "  asyncio::Semaphore / {name:<24} per-round ratio median {:.3}x, min {lo:.3}x, max {hi:.3}x",
            median(&mut r)
        );
    }
}

fn ratios(flavor: Flavor) {
    let rt = runtime(flavor);
    println!("\n===== {flavor:?} runtime =====");
    let q = 200_000;
    interleaved(
        &rt,
        "bounded queue, 1 producer / 1 consumer",
        q,
        1,
        15,
        ("asyncio::Queue", |n| Box::pin(ours_queue(n, 1, 1))),
        ("tokio::sync::mpsc", |n| Box::pin(raw_mpsc(n, 1, 1))),
    );
    interleaved(
        &rt,
        "bounded queue, 4 producers / 4 consumers",
        q,
        1,
        15,
        ("asyncio::Queue", |n| Box::pin(ours_queue(n, 4, 4))),
        ("mpsc + Mutex<Receiver>", |n| Box::pin(raw_mpsc(n, 4, 4))),
    );
    interleaved(
        &rt,
        "bounded queue, 4 producers / 1 consumer",
        q,
        1,
        15,
        ("asyncio::Queue", |n| Box::pin(ours_queue(n, 4, 1))),
        ("tokio::sync::mpsc", |n| Box::pin(raw_mpsc(n, 4, 1))),
    );
    let l = 1_000_000;
    interleaved(
        &rt,
        "lock acquire + release, one task",
        l,
        1,
        15,
        ("asyncio::Lock", |n| Box::pin(ours_lock(n, 1))),
        ("tokio::sync::Mutex<()>", |n| Box::pin(raw_mutex(n, 1))),
    );
    interleaved(
        &rt,
        "lock acquire + release + yield, 4 tasks",
        l / 4,
        1,
        15,
        ("asyncio::Lock", |n| Box::pin(ours_lock(n, 4))),
        ("tokio::sync::Mutex<()>", |n| Box::pin(raw_mutex(n, 4))),
    );
    interleaved(
        &rt,
        "semaphore acquire + release, one task",
        l,
        1,
        15,
        ("asyncio::Semaphore", |n| Box::pin(ours_semaphore(n, 1, 1))),
        ("tokio::sync::Semaphore", |n| {
            Box::pin(raw_semaphore(n, 1, 1))
        }),
    );
    interleaved(
        &rt,
        "semaphore acquire + release + yield, 8 tasks, 2 permits",
        l / 4,
        1,
        15,
        ("asyncio::Semaphore", |n| Box::pin(ours_semaphore(n, 8, 2))),
        ("tokio::sync::Semaphore", |n| {
            Box::pin(raw_semaphore(n, 8, 2))
        }),
    );
    interleaved(
        &rt,
        "event: 1,000 waiters, set, all woken (per waiter)",
        20,
        WAITERS,
        15,
        ("asyncio::Event", |n| Box::pin(ours_event(n))),
        ("tokio::sync::Notify", |n| Box::pin(raw_notify(n))),
    );
}

fn main() {
    // `cargo test --benches` runs this binary with `--test`: keep it instant.
    if std::env::args().any(|a| a == "--test") {
        let rt = runtime(Flavor::Multi);
        rt.block_on(ours_queue(1_000, 4, 4));
        rt.block_on(raw_mpsc(1_000, 4, 4));
        rt.block_on(ours_lock(1_000, 4));
        rt.block_on(ours_semaphore(1_000, 8, 2));
        rt.block_on(ours_event(1));
        rt.block_on(raw_notify(1));
        return;
    }
    if only().as_deref() == Some("uncontended") {
        let names = [
            "asyncio::Lock",
            "tokio::sync::Semaphore",
            "tokio::sync::Mutex<()>",
        ];
        let mut pooled = [Default::default(), Default::default()];
        for _ in 0..3 {
            for (f, flavor) in [Flavor::Current, Flavor::Multi].into_iter().enumerate() {
                uncontended_four_way(flavor, 1_000_000, 16, &mut pooled[f]);
            }
        }
        for (f, flavor) in [Flavor::Current, Flavor::Multi].into_iter().enumerate() {
            println!("\n{flavor:?}, all rounds pooled: asyncio::Semaphore / ...");
            for (name, r) in names.iter().zip(pooled[f].iter_mut()) {
                r.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let q = |p: f64| r[((r.len() - 1) as f64 * p).round() as usize];
                println!(
                    "  {name:<24} median {:.3}x, quartiles {:.3}x-{:.3}x ({} rounds)",
                    q(0.5),
                    q(0.25),
                    q(0.75),
                    r.len()
                );
            }
        }
        return;
    }
    ratios(Flavor::Multi);
    ratios(Flavor::Current);
}
