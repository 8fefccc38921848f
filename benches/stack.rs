//! Cost of stacks and debug mode, each against its baseline in the same
//! process:
//! - `poll`: one poll of a pending future, marked with `framed` vs plain,
//!   inside a task of ours (the per-poll overhead of a frame);
//! - `yield10`: spawn a task that awaits 10 yields (marked vs plain), await it;
//! - `spawn_await`: spawn + await one task: raw Tokio, ours with debug mode
//!   off, ours with debug mode on (creation backtrace + poll timing).
//!
//! Criterion reports each variant; the `ratios` pass at the end measures
//! all variants interleaved, round after round, and prints medians and
//! ratios (the figures in docs/performance.md).

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use asyncio::FramedExt;
use criterion::{Criterion, criterion_group, criterion_main};

/// Always pending.
struct Pend;

impl Future for Pend {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// Runs `f(iters)` as the main task of a current-thread runner (so inside
/// a task of ours), returning the time it measured.
fn in_task<F: Future<Output = Duration>>(debug: bool, f: F) -> Duration {
    asyncio::Runner::new().current_thread().debug(debug).run(f)
}

fn poll_plain(iters: u64) -> Duration {
    in_task(false, async move {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut f = pin!(Pend);
        let start = Instant::now();
        for _ in 0..iters {
            let _ = black_box(f.as_mut().poll(&mut cx));
        }
        start.elapsed()
    })
}

fn poll_framed(iters: u64) -> Duration {
    in_task(false, async move {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut f = pin!(Pend.framed());
        let start = Instant::now();
        for _ in 0..iters {
            let _ = black_box(f.as_mut().poll(&mut cx));
        }
        start.elapsed()
    })
}

async fn yields(framed: bool) {
    for _ in 0..10 {
        if framed {
            tokio::task::yield_now().framed().await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

fn yield10(framed: bool, iters: u64) -> Duration {
    in_task(false, async move {
        let start = Instant::now();
        for _ in 0..iters {
            asyncio::create_task(yields(framed)).await.unwrap();
        }
        start.elapsed()
    })
}

fn spawn_tokio(iters: u64) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(tokio::spawn(async { 1 }).await.unwrap());
        }
        start.elapsed()
    })
}

fn spawn_ours(debug: bool, iters: u64) -> Duration {
    in_task(debug, async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(asyncio::create_task(async { 1 }).await.unwrap());
        }
        start.elapsed()
    })
}

type Variant = (&'static str, &'static str, fn(u64) -> Duration);

const VARIANTS: [Variant; 7] = [
    ("poll", "plain", poll_plain),
    ("poll", "framed", poll_framed),
    ("yield10", "plain", |n| yield10(false, n)),
    ("yield10", "framed", |n| yield10(true, n)),
    ("spawn_await", "tokio", spawn_tokio),
    ("spawn_await", "debug_off", |n| spawn_ours(false, n)),
    ("spawn_await", "debug_on", |n| spawn_ours(true, n)),
];

fn criterion_benches(c: &mut Criterion) {
    for group in ["poll", "yield10", "spawn_await"] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        for (_, name, f) in VARIANTS.iter().filter(|v| v.0 == group) {
            g.bench_function(*name, |b| b.iter_custom(f));
        }
        g.finish();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// All variants interleaved, 11 rounds; prints median ns/op and ratios.
fn ratios(_: &mut Criterion) {
    let ops = |group: &str| match group {
        "poll" => 200_000,
        "spawn_await" => 2_000,
        _ => 5_000,
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    for _ in 0..11 {
        for (i, (group, _, f)) in VARIANTS.iter().enumerate() {
            let n = ops(group);
            samples[i].push(f(n).as_nanos() as f64 / n as f64);
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    println!("\nmedian ns/op over 11 interleaved rounds (ratio vs the group's first row)");
    let mut base = 0.0;
    let mut last_group = "";
    for ((group, name, _), m) in VARIANTS.iter().zip(&medians) {
        if *group != last_group {
            base = *m;
            last_group = group;
        }
        println!(
            "{group:>12} {name:>10}: {m:>10.1} ns  ({:.2}x, +{:.1} ns)",
            m / base,
            m - base
        );
    }
}

criterion_group!(benches, criterion_benches, ratios);
criterion_main!(benches);
