//! The crate's side of the comparison with CPython's asyncio: the same
//! workloads as `benches/python/twins.py`, line for line, with the same N.
//!
//! Everything runs under one `asyncio::run`, on the current-thread runtime
//! by default: one thread, like asyncio's event loop, which is the fair
//! comparison (`--threads 2` runs it on a two-worker runtime instead).
//! Each workload runs once to warm up, then `--reps` times (default 5),
//! timed from inside the main task. Run without `--bench` or `--reps` (as
//! `cargo test --benches` does) or with `--test`, each workload runs once,
//! small, as a check that it works.
//!
//! Output, one line per workload, tab-separated (machine-readable, parsed by
//! `benches/compare.py`):
//!
//! ```text
//! twin <TAB> workload <TAB> N <TAB> ns per op of each rep, comma-separated
//! ```
//!
//! `cargo bench -p asyncio-benches --bench python_twins [-- --reps 7 --only queue_1_1]`;
//! `python3 benches/compare.py` runs this and the Python side and prints
//! one table.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Queue bound in the pipeline workloads (`asyncio.Queue(maxsize=64)`).
const QUEUE_MAXSIZE: usize = 64;
/// Tasks contending for the lock.
const LOCK_TASKS: usize = 4;

type Workload = fn(usize) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Name, N (operations per rep), workload. Same names, same N, same order as
/// `WORKLOADS` in `benches/python/twins.py`.
const WORKLOADS: &[(&str, usize, Workload)] = &[
    ("create_task_await", 10_000, |n| {
        Box::pin(create_task_await(n))
    }),
    ("gather", 10_000, |n| Box::pin(gather(n))),
    ("wait_for", 10_000, |n| Box::pin(wait_for(n))),
    ("cancel_storm", 10_000, |n| Box::pin(cancel_storm(n))),
    ("to_thread_sequential", 1_000, |n| {
        Box::pin(to_thread_sequential(n))
    }),
    ("to_thread_burst", 1_000, |n| Box::pin(to_thread_burst(n))),
    ("queue_1_1", 20_000, |n| Box::pin(queue_pipeline(n, 1, 1))),
    ("queue_4_4", 20_000, |n| Box::pin(queue_pipeline(n, 4, 4))),
    ("lock_contention", 10_000, |n| Box::pin(lock_contention(n))),
    ("task_group_fan_out", 10_000, |n| {
        Box::pin(task_group_fan_out(n))
    }),
];

// ---------------------------------------------------------------- workloads

async fn ident(i: usize) -> usize {
    black_box(i)
}

/// `create_task` N times, then await each task in order.
async fn create_task_await(n: usize) {
    let tasks: Vec<_> = (0..n).map(|i| asyncio::create_task(ident(i))).collect();
    for t in tasks {
        black_box(t.await.unwrap());
    }
}

/// `gather` of N coroutines (each becomes a task).
async fn gather(n: usize) {
    let results = asyncio::gather((0..n).map(ident)).await.unwrap();
    assert_eq!(results.len(), n);
}

/// `wait_for` of a coroutine that returns at once, N times in a row.
async fn wait_for(n: usize) {
    for i in 0..n {
        black_box(asyncio::wait_for(ident(i), 1.0).await.unwrap());
    }
}

/// N tasks parked in `sleep(3600)`; each cancelled, then each awaited.
async fn cancel_storm(n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| asyncio::create_task(asyncio::sleep(3600)))
        .collect();
    asyncio::sleep(0).await; // every task starts and parks
    for t in &tasks {
        t.cancel();
    }
    for t in tasks {
        assert!(t.await.unwrap_err().is_cancelled());
    }
}

fn ident_blocking(i: usize) -> usize {
    black_box(i)
}

/// `to_thread` N times, one after the other (one thread handoff and back
/// per call).
async fn to_thread_sequential(n: usize) {
    for i in 0..n {
        black_box(asyncio::to_thread(move || ident_blocking(i)).await.unwrap());
    }
}

/// `gather` of N `to_thread` calls (all submitted at once).
async fn to_thread_burst(n: usize) {
    let results = asyncio::gather((0..n).map(|i| asyncio::to_thread(move || ident_blocking(i))))
        .await
        .unwrap();
    assert_eq!(results.len(), n);
}

async fn producer(q: Arc<asyncio::Queue<usize>>, count: usize) {
    for i in 0..count {
        q.put(i).await.unwrap();
    }
}

async fn consumer(q: Arc<asyncio::Queue<usize>>, count: usize) {
    for _ in 0..count {
        black_box(q.get().await.unwrap());
        q.task_done();
    }
}

/// N items through a bounded queue: `producers` tasks put, `consumers`
/// tasks get (and `task_done`); the main task awaits them all, then `join`s.
async fn queue_pipeline(n: usize, producers: usize, consumers: usize) {
    let q = Arc::new(asyncio::Queue::new(QUEUE_MAXSIZE));
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        tasks.push(asyncio::create_task(consumer(q.clone(), n / consumers)));
    }
    for _ in 0..producers {
        tasks.push(asyncio::create_task(producer(q.clone(), n / producers)));
    }
    for t in tasks {
        t.await.unwrap();
    }
    q.join().await;
}

async fn lock_worker(lock: Arc<asyncio::Lock>, count: usize) {
    for _ in 0..count {
        let _held = lock.acquire().await;
        asyncio::sleep(0).await; // yield while holding it: the others queue up
    }
}

/// `LOCK_TASKS` tasks taking the lock N times in all, each holding it
/// across one `sleep(0)`.
async fn lock_contention(n: usize) {
    let lock = Arc::new(asyncio::Lock::new());
    let tasks: Vec<_> = (0..LOCK_TASKS)
        .map(|_| asyncio::create_task(lock_worker(lock.clone(), n / LOCK_TASKS)))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// One task group with N children (each returns at once); the group waits
/// for them all.
async fn task_group_fan_out(n: usize) {
    asyncio::task_group(|tg| async move {
        for i in 0..n {
            tg.create_task(ident(i));
        }
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------- harness

struct Args {
    reps: usize,
    threads: usize,
    only: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        reps: 5,
        threads: 0,
        only: Vec::new(),
    };
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing:
    // then (and with `--test`) each workload runs once, small, as a check.
    let (mut timed, mut test) = (false, false);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        timed |= a == "--bench" || a == "--reps";
        let mut value = |flag: &str| {
            it.next()
                .unwrap_or_else(|| panic!("{flag} needs a value, e.g. `{flag} 3`"))
        };
        match a.as_str() {
            "--reps" => args.reps = value("--reps").parse().expect("--reps takes a number"),
            "--threads" => {
                args.threads = value("--threads")
                    .parse()
                    .expect("--threads takes a number (0 = current-thread runtime)")
            }
            "--only" => args.only.push(value("--only")),
            "--test" => test = true,
            _ => {} // `--bench` from cargo, criterion-style flags: ignored
        }
    }
    if test || !timed {
        args.reps = 0;
    }
    for name in &args.only {
        assert!(
            WORKLOADS.iter().any(|(w, _, _)| w == name),
            "--only {name}: no such workload; the workloads are: {}",
            WORKLOADS
                .iter()
                .map(|(w, _, _)| *w)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    args
}

fn main() {
    let args = parse_args();
    let runner = match args.threads {
        0 => asyncio::Runner::new(),
        t => asyncio::Runner::new().worker_threads(t),
    };
    let runtime = match args.threads {
        0 => "current-thread".to_string(),
        t => format!("multi-thread, {t} workers"),
    };
    println!("# python twins, {runtime}");
    runner.run(async move {
        for &(name, n, work) in WORKLOADS {
            if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
                continue;
            }
            if args.reps == 0 {
                // The smoke run (`cargo test --benches`): once, small.
                work(n / 100).await;
                continue;
            }
            work(n).await; // warm-up
            let mut samples = Vec::with_capacity(args.reps);
            for _ in 0..args.reps {
                let start = Instant::now();
                work(n).await;
                samples.push(format!(
                    "{:.1}",
                    start.elapsed().as_nanos() as f64 / n as f64
                ));
            }
            println!("twin\t{name}\t{n}\t{}", samples.join(","));
        }
    });
}
