//! Cancel-safety loops on the multi-thread runtime: gets, puts and acquires
//! cancelled at random points (dropped by a zero timeout, by losing a
//! `select!`, or their task cancelled through `TaskRef::cancel`), with every
//! item counted exactly once and no permit lost.
//!
//! Ten thousand operations by default (about a second); `ASYNCIO_STRESS=1`
//! runs 100,000 per test.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::{BoundedSemaphore, GetError, Lock, Queue, Semaphore};

fn ops() -> usize {
    match std::env::var("ASYNCIO_STRESS") {
        Ok(v) if v == "1" => 100_000,
        _ => 10_000,
    }
}

/// xorshift64*: enough randomness for choosing cancellation points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn yields(n: u64) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// Runs `fut` to the end, or drops it at a random point. `None`: dropped
/// before it finished.
async fn maybe_cancelled<F: Future>(fut: F, rng: &mut Rng) -> Option<F::Output> {
    match rng.below(4) {
        0 => Some(fut.await),
        // Polled once, then dropped if not ready.
        1 => asyncio::wait_for(fut, 0).await.ok(),
        // Dropped after a few scheduler turns, perhaps after a wake-up it
        // had not yet used.
        _ => {
            let turns = rng.below(4);
            tokio::select! {
                out = fut => Some(out),
                () = yields(turns) => None,
            }
        }
    }
}

/// Fails instead of hanging if a wake-up is lost.
async fn deadline<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(120), fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: stuck for 120 s (a lost wake-up?)"),
    }
}

/// Every item a put reported inserted is got exactly once, whatever gets
/// and puts were cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_gets_and_puts_lose_and_duplicate_no_item() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    let per_producer = ops() / PRODUCERS;
    let q = Arc::new(Queue::new(4));
    let inserted = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::new(Mutex::new(Vec::new()));

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let (q, got) = (q.clone(), got.clone());
            asyncio::create_task(async move {
                let mut rng = Rng::new(1000 + c as u64);
                loop {
                    if rng.below(8) == 0 {
                        // Cancelled through its task; the item is recorded
                        // in the same poll that took it.
                        let t = asyncio::create_task({
                            let (q, got) = (q.clone(), got.clone());
                            async move {
                                let r = q.get().await;
                                if let Ok(item) = r {
                                    got.lock().unwrap().push(item);
                                }
                                r
                            }
                        });
                        yields(rng.below(3)).await;
                        t.cancel();
                        if let Ok(Err(GetError::ShutDown)) = t.await {
                            break;
                        }
                        continue;
                    }
                    match maybe_cancelled(q.get(), &mut rng).await {
                        Some(Ok(item)) => got.lock().unwrap().push(item),
                        Some(Err(GetError::ShutDown)) => break,
                        Some(Err(GetError::Empty)) => unreachable!("get never says Empty"),
                        None => {}
                    }
                }
            })
        })
        .collect();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (q, inserted) = (q.clone(), inserted.clone());
            asyncio::create_task(async move {
                let mut rng = Rng::new(p as u64 + 1);
                for i in 0..per_producer {
                    let id = p * per_producer + i;
                    if rng.below(8) == 0 {
                        let t = asyncio::create_task({
                            let (q, inserted) = (q.clone(), inserted.clone());
                            async move {
                                if q.put(id).await.is_ok() {
                                    inserted.lock().unwrap().push(id);
                                }
                            }
                        });
                        yields(rng.below(3)).await;
                        t.cancel();
                        let _ = t.await;
                        continue;
                    }
                    if let Some(Ok(())) = maybe_cancelled(q.put(id), &mut rng).await {
                        inserted.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();

    deadline("producers", asyncio::gather(producers))
        .await
        .unwrap();
    q.shutdown(false);
    deadline("consumers", asyncio::gather(consumers))
        .await
        .unwrap();

    assert!(q.empty(), "the consumers drained the queue");
    let mut inserted = std::mem::take(&mut *inserted.lock().unwrap());
    let mut got = std::mem::take(&mut *got.lock().unwrap());
    inserted.sort_unstable();
    got.sort_unstable();
    assert!(inserted.len() > per_producer, "most puts went through");
    assert_eq!(got, inserted, "every inserted item got exactly once");
    assert!(format!("{q:?}").contains("getters: 0, putters: 0"));
}

/// Counts a holder while alive. Declared after the permit it stands for,
/// so it is dropped (and counted down) before the permit goes back.
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(holders: &'a AtomicUsize, permits: usize) -> Self {
        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(now <= permits, "{now} holders of {permits} permits");
        Held(holders)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holders never exceed the permits and no permit is lost, whatever
/// acquires were cancelled (and holders cancelled while holding).
macro_rules! permits_survive_cancelled_acquires {
    ($name:ident, $permits:expr, $make:expr, |$p:ident| $acquire:expr, |$v:ident| $value:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            const WORKERS: usize = 8;
            let permits: usize = $permits;
            let per_worker = ops() / WORKERS;
            let prim = Arc::new($make);
            let holders = Arc::new(AtomicUsize::new(0));
            let taken = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..WORKERS)
                .map(|w| {
                    let (prim, holders, taken) = (prim.clone(), holders.clone(), taken.clone());
                    asyncio::create_task(async move {
                        let mut rng = Rng::new(77 + w as u64);
                        for _ in 0..per_worker {
                            if rng.below(8) == 0 {
                                // Cancelled through its task, waiting or holding.
                                let t = asyncio::create_task({
                                    let (prim, holders, taken) =
                                        (prim.clone(), holders.clone(), taken.clone());
                                    async move {
                                        let $p = &*prim;
                                        let _permit = $acquire;
                                        let _held = Held::new(&holders, permits);
                                        taken.fetch_add(1, Ordering::SeqCst);
                                        tokio::task::yield_now().await;
                                    }
                                });
                                yields(rng.below(3)).await;
                                t.cancel();
                                let _ = t.await;
                                continue;
                            }
                            let $p = &*prim;
                            if let Some(_permit) =
                                maybe_cancelled(async { $acquire }, &mut rng).await
                            {
                                let _held = Held::new(&holders, permits);
                                taken.fetch_add(1, Ordering::SeqCst);
                                yields(rng.below(2)).await;
                            }
                        }
                    })
                })
                .collect();
            deadline("workers", asyncio::gather(workers)).await.unwrap();
            assert!(taken.load(Ordering::SeqCst) > 0);
            assert_eq!(holders.load(Ordering::SeqCst), 0);
            let $v = &*prim;
            assert_eq!($value, permits, "every permit is back");
        }
    };
}

permits_survive_cancelled_acquires!(
    cancelled_semaphore_acquires_lose_no_permit,
    3,
    Semaphore::new(3),
    |s| s.acquire().await,
    |s| s.value()
);

permits_survive_cancelled_acquires!(
    cancelled_bounded_semaphore_acquires_lose_no_permit_and_never_overflow,
    2,
    BoundedSemaphore::new(2),
    |s| s.acquire().await,
    |s| s.value()
);

permits_survive_cancelled_acquires!(
    cancelled_lock_acquires_never_let_two_tasks_hold_the_lock,
    1,
    Lock::new(),
    |l| l.acquire().await,
    |l| usize::from(!l.locked())
);
