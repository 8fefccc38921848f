//! Threads: `to_thread` vs `spawn_blocking`, and
//! `run_coroutine_threadsafe(..).result()` vs `Handle::spawn` + a std
//! channel. Each pair runs the same workload in the same process; besides
//! criterion's own report, an interleaved pass (A, B, A, B, ...) prints the
//! median of the per-round ratios ours / raw Tokio.
//!
//! `cargo bench --bench threads`

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const BURST: usize = 1_000;
const SEQ: usize = 200;
const ROUNDS: usize = 31;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `body` inside a task of ours (as real callers of `to_thread` are),
/// returning the elapsed time of the body.
fn in_task<F, Fut>(rt: &Runtime, body: F) -> Duration
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let task = asyncio::Task::builder().spawn_on(
        async move {
            let start = Instant::now();
            body().await;
            start.elapsed()
        },
        rt.handle(),
    );
    rt.block_on(async { task.await }).unwrap()
}

fn to_thread_seq(rt: &Runtime) -> Duration {
    in_task(rt, || async {
        for i in 0..SEQ {
            black_box(asyncio::to_thread(move || i).await.unwrap());
        }
    })
}

fn spawn_blocking_seq(rt: &Runtime) -> Duration {
    in_task(rt, || async {
        for i in 0..SEQ {
            black_box(tokio::task::spawn_blocking(move || i).await.unwrap());
        }
    })
}

fn to_thread_burst(rt: &Runtime) -> Duration {
    in_task(rt, || async {
        let jobs = (0..BURST).map(|i| asyncio::to_thread(move || i));
        for out in futures::future::join_all(jobs).await {
            black_box(out.unwrap());
        }
    })
}

fn spawn_blocking_burst(rt: &Runtime) -> Duration {
    in_task(rt, || async {
        let jobs = (0..BURST).map(|i| tokio::task::spawn_blocking(move || i));
        for out in futures::future::join_all(jobs).await {
            black_box(out.unwrap());
        }
    })
}

fn threadsafe_seq(lp: &asyncio::Loop) -> Duration {
    let start = Instant::now();
    for i in 0..SEQ {
        let mut fut = asyncio::run_coroutine_threadsafe(async move { i }, lp);
        black_box(fut.result(None).unwrap());
    }
    start.elapsed()
}

fn raw_channel_seq(rt: &Runtime) -> Duration {
    let start = Instant::now();
    for i in 0..SEQ {
        let (tx, rx) = mpsc::channel();
        rt.handle().spawn(async move {
            let _ = tx.send(i);
        });
        black_box(rx.recv().unwrap());
    }
    start.elapsed()
}

fn threadsafe_burst(lp: &asyncio::Loop) -> Duration {
    let start = Instant::now();
    let futs: Vec<_> = (0..BURST)
        .map(|i| asyncio::run_coroutine_threadsafe(async move { i }, lp))
        .collect();
    for mut f in futs {
        black_box(f.result(None).unwrap());
    }
    start.elapsed()
}

fn raw_channel_burst(rt: &Runtime) -> Duration {
    let start = Instant::now();
    let rxs: Vec<_> = (0..BURST)
        .map(|i| {
            let (tx, rx) = mpsc::channel();
            rt.handle().spawn(async move {
                let _ = tx.send(i);
            });
            rx
        })
        .collect();
    for rx in rxs {
        black_box(rx.recv().unwrap());
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A, B, A, B, ...: prints both medians (ns per operation) and the median of
/// the per-round ratios A/B.
fn interleaved(
    label: &str,
    n: usize,
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) {
    for _ in 0..2 {
        a();
        b(); // warm-up
    }
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let da = a().as_secs_f64();
        let db = b().as_secs_f64();
        ta.push(da * 1e9 / n as f64);
        tb.push(db * 1e9 / n as f64);
        ratios.push(da / db);
    }
    println!(
        "interleaved {label}: asyncio {:.0} ns/op, tokio {:.0} ns/op, ratio {:.3}x (median of {ROUNDS} rounds)",
        median(ta),
        median(tb),
        median(ratios)
    );
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let lp = asyncio::Loop::from(rt.handle().clone());

    let mut g = c.benchmark_group("threads");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("to_thread burst 1k", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| to_thread_burst(&rt)).sum())
    });
    g.bench_function("spawn_blocking burst 1k", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| spawn_blocking_burst(&rt)).sum())
    });
    g.bench_function("run_coroutine_threadsafe burst 1k", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| threadsafe_burst(&lp)).sum())
    });
    g.bench_function("Handle::spawn + mpsc burst 1k", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_channel_burst(&rt)).sum())
    });
    g.finish();

    interleaved(
        "to_thread vs spawn_blocking, burst of 1k",
        BURST,
        || to_thread_burst(&rt),
        || spawn_blocking_burst(&rt),
    );
    interleaved(
        "to_thread vs spawn_blocking, sequential",
        SEQ,
        || to_thread_seq(&rt),
        || spawn_blocking_seq(&rt),
    );
    interleaved(
        "run_coroutine_threadsafe().result() vs Handle::spawn + mpsc, burst of 1k",
        BURST,
        || threadsafe_burst(&lp),
        || raw_channel_burst(&rt),
    );
    interleaved(
        "run_coroutine_threadsafe().result() vs Handle::spawn + mpsc, sequential",
        SEQ,
        || threadsafe_seq(&lp),
        || raw_channel_seq(&rt),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
