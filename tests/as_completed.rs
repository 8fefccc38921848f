//! `as_completed`, as asyncio behaves.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

use common::settle;

/// The iterator form yields results in completion order.
#[tokio::test(start_paused = true)]
async fn iterator_yields_in_completion_order() {
    let start = Instant::now();
    let mut seen = Vec::new();
    for next in asyncio::as_completed(
        [
            asyncio::sleep_with(3, 3),
            asyncio::sleep_with(1, 1),
            asyncio::sleep_with(2, 2),
        ],
        None,
    ) {
        seen.push((next.await.unwrap(), start.elapsed().as_secs()));
    }
    assert_eq!(seen, [(1, 1), (2, 2), (3, 3)]);
}

/// The stream form yields each task's result, errors
/// included, in completion order, without raising.
#[tokio::test(start_paused = true)]
async fn stream_yields_results_and_errors_in_completion_order() {
    let bad = asyncio::create_task(async {
        asyncio::sleep(2).await;
        panic!("bad");
    });
    let good = asyncio::create_task(asyncio::sleep_with(1, 1));
    let results: Vec<_> = StreamExt::collect(asyncio::as_completed([bad, good], None)).await;
    assert_eq!(results[0], Ok(1));
    assert!(results[1].as_ref().unwrap_err().is_panic());
}

/// The k-th item *awaited* gets the k-th result to complete,
/// whatever order the items were taken in.
#[tokio::test(start_paused = true)]
async fn results_bind_to_await_order() {
    let mut it = asyncio::as_completed(
        [asyncio::sleep_with(1, 'a'), asyncio::sleep_with(2, 'b')],
        None,
    );
    let first = Iterator::next(&mut it).unwrap();
    let second = Iterator::next(&mut it).unwrap();
    assert_eq!(second.await, Ok('a'));
    assert_eq!(first.await, Ok('b'));
}

/// After the timeout every remaining item is `Err(Timeout)`; results
/// completed before come first; nothing is cancelled.
#[tokio::test(start_paused = true)]
async fn timeout_turns_remaining_items_into_timeouts_and_cancels_nothing() {
    let slow = asyncio::create_task(asyncio::sleep_with(10, 10));
    let slow_ref = slow.to_ref();
    let fast = asyncio::create_task(asyncio::sleep_with(1, 1));
    let start = Instant::now();
    let mut results = Vec::new();
    for next in asyncio::as_completed([slow, fast], 2) {
        results.push(next.await);
    }
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(results[0], Ok(1));
    assert!(results[1].as_ref().unwrap_err().is_timeout());
    assert!(!slow_ref.cancelled());
    settle(&slow_ref).await;
    assert!(!slow_ref.cancelled());
}

/// The stream form: one `Err(Timeout)`, then the stream ends.
#[tokio::test(start_paused = true)]
async fn stream_yields_one_timeout_then_ends() {
    let mut s = asyncio::as_completed(
        [
            asyncio::sleep_with(10, 1),
            asyncio::sleep_with(10, 2),
            asyncio::sleep_with(0.5, 3),
        ],
        1,
    );
    assert_eq!(StreamExt::next(&mut s).await, Some(Ok(3)));
    assert!(
        StreamExt::next(&mut s)
            .await
            .unwrap()
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(StreamExt::next(&mut s).await, None);
}

/// A timeout that is not reached produces no error.
#[tokio::test(start_paused = true)]
async fn unused_timeout_produces_no_error() {
    let results: Vec<_> = StreamExt::collect(asyncio::as_completed(
        [asyncio::sleep_with(1, 1), asyncio::sleep_with(2, 2)],
        5,
    ))
    .await;
    assert_eq!(results, [Ok(1), Ok(2)]);
}

/// Empty input ends the iteration at once, with no error.
#[tokio::test(start_paused = true)]
async fn empty_input_ends_at_once() {
    let mut it = asyncio::as_completed(Vec::<asyncio::Task<u8>>::new(), 1);
    assert_eq!(it.len(), 0);
    assert!(Iterator::next(&mut it).is_none());
    assert_eq!(StreamExt::next(&mut it).await, None);
}

/// As many items as inputs.
#[tokio::test(start_paused = true)]
async fn as_many_items_as_inputs() {
    let it = asyncio::as_completed((0..4).map(|i| async move { i }), None);
    assert_eq!(it.len(), 4);
    let mut got: Vec<u32> = Vec::new();
    for next in it {
        got.push(next.await.unwrap());
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3]);
}

/// Iteration can be resumed after a `break`.
#[tokio::test(start_paused = true)]
async fn iteration_resumes_after_break() {
    let mut it = asyncio::as_completed(
        [
            asyncio::sleep_with(1, 1),
            asyncio::sleep_with(2, 2),
            asyncio::sleep_with(3, 3),
        ],
        None,
    );
    let mut first = Vec::new();
    for next in Iterator::by_ref(&mut it) {
        first.push(next.await.unwrap());
        if first.len() == 1 {
            break;
        }
    }
    assert_eq!(first, [1]);
    let mut rest = Vec::new();
    for next in it {
        rest.push(next.await.unwrap());
    }
    assert_eq!(rest, [2, 3]);
}

/// Awaits all the items at once; the results, sorted.
async fn await_all_at_once<T: Ord, F>(items: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = asyncio::Result<T>>,
{
    let mut results: Vec<T> = futures::future::join_all(items)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    results.sort();
    results
}

/// Several items can be awaited concurrently.
#[tokio::test(start_paused = true)]
async fn items_can_be_awaited_concurrently() {
    let it = asyncio::as_completed(
        [
            asyncio::sleep_with(2, 2),
            asyncio::sleep_with(1, 1),
            asyncio::sleep_with(3, 3),
        ],
        None,
    );
    assert_eq!(await_all_at_once(it).await, [1, 2, 3]);
}

/// Inputs are scheduled when `as_completed` is called; tasks done
/// before the call come first.
#[tokio::test(start_paused = true)]
async fn inputs_run_when_called_and_done_tasks_come_first() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let done_before = asyncio::create_task(async { 0u32 });
    settle(&done_before).await;
    let it = asyncio::as_completed(
        vec![
            asyncio::create_task(asyncio::sleep_with(1, 1u32)),
            done_before,
            asyncio::create_task(async move {
                r.fetch_add(1, Ordering::SeqCst);
                2u32
            }),
        ],
        None,
    );
    asyncio::sleep(0.5).await;
    assert_eq!(ran.load(Ordering::SeqCst), 1, "ran before the first poll");
    let results: Vec<_> = Iterator::collect(it);
    let mut out = Vec::new();
    for next in results {
        out.push(next.await.unwrap());
    }
    assert_eq!(out, [0, 2, 1]);
}

/// Dropping the iterator part-way leaves the remaining tasks running
/// (asyncio semantics; documented).
#[tokio::test(start_paused = true)]
async fn dropping_part_way_leaves_the_rest_running() {
    let slow = asyncio::create_task(asyncio::sleep_with(5, 5));
    let slow_ref = slow.to_ref();
    let mut it = asyncio::as_completed(
        [slow, asyncio::create_task(asyncio::sleep_with(1, 1))],
        None,
    );
    assert_eq!(Iterator::next(&mut it).unwrap().await, Ok(1));
    drop(it);
    settle(&slow_ref).await;
    assert!(!slow_ref.cancelled());
}

/// 200 inputs that each yield once, then return their index: their tasks
/// complete on both workers of the multi-thread runtime.
fn yielding_inputs() -> impl Iterator<Item = impl std::future::Future<Output = u32> + Send> {
    (0..200u32).map(|i| async move {
        tokio::task::yield_now().await;
        i
    })
}

/// Races on the multi-thread runtime: the stream delivers every result
/// exactly once.
#[test]
fn multi_thread_stream_delivers_each_result_once() {
    asyncio::Runner::new().worker_threads(2).run(async {
        for _ in 0..50 {
            let stream = asyncio::as_completed(yielding_inputs(), None);
            let mut got: Vec<u32> =
                StreamExt::collect::<Vec<_>>(StreamExt::map(stream, |r| r.unwrap())).await;
            got.sort();
            assert_eq!(got, (0..200).collect::<Vec<_>>());
        }
    });
}

/// The timeout's clock starts at the first poll even when results are ready
/// then: time spent between items counts.
#[tokio::test(start_paused = true)]
async fn the_clock_starts_at_the_first_poll_even_with_results_ready() {
    let ready = asyncio::create_task(async { 1 });
    let slow = asyncio::create_task(asyncio::sleep_with(10, 2));
    settle(&ready).await;
    let start = Instant::now();
    let mut it = asyncio::as_completed([ready, slow], 1.0);
    assert_eq!(StreamExt::next(&mut it).await, Some(Ok(1)));
    tokio::time::sleep(Duration::from_secs(5)).await; // busy with the first result
    let next = StreamExt::next(&mut it).await.unwrap();
    assert!(next.unwrap_err().is_timeout());
    // Already past the deadline: no fresh second of waiting.
    assert_eq!(start.elapsed().as_secs(), 5);
}

/// Counts the polls of a future.
struct CountPolls<F> {
    inner: std::pin::Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
}

impl<F: std::future::Future> std::future::Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.inner.as_mut().poll(cx)
    }
}

/// At scale: with many items awaited at once, each completion wakes
/// one waiting item, so the work is linear in the number of items (waking
/// every waiter on each completion would poll about n²/2 times).
#[tokio::test(start_paused = true)]
async fn many_items_awaited_at_once_cost_linear_polls() {
    const N: u64 = 2_000;
    let polls = Arc::new(AtomicUsize::new(0));
    let it = asyncio::as_completed(
        (0..N).map(|i| asyncio::sleep_with(Duration::from_millis(i + 1), i)),
        None,
    );
    let items: Vec<_> = Iterator::map(it, |next| CountPolls {
        inner: Box::pin(next),
        polls: polls.clone(),
    })
    .collect();
    assert_eq!(await_all_at_once(items).await, (0..N).collect::<Vec<_>>());
    let polls = polls.load(Ordering::Relaxed) as u64;
    assert!(polls <= 3 * N, "{polls} polls for {N} items");
}

/// A wake counter, to see which waiting item a completion wakes.
struct CountWakes(AtomicUsize);

impl futures::task::ArcWake for CountWakes {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Each completion wakes the item that has waited longest; an item woken
/// for a result and then dropped passes the wake on, so the result is not
/// left with nobody to take it.
#[tokio::test]
async fn a_woken_item_dropped_passes_its_wake_on() {
    use std::future::Future;
    use std::task::{Context, Poll};

    let (tx1, rx1) = tokio::sync::oneshot::channel::<u32>();
    let (tx2, rx2) = tokio::sync::oneshot::channel::<u32>();
    let t1 = asyncio::create_task(async move { rx1.await.unwrap() });
    let t2 = asyncio::create_task(async move { rx2.await.unwrap() });
    let (r1, r2) = (t1.to_ref(), t2.to_ref());
    let mut it = asyncio::as_completed([t1, t2], None);
    let mut a = Box::pin(Iterator::next(&mut it).unwrap());
    let mut b = Box::pin(Iterator::next(&mut it).unwrap());
    let (wa, wb) = (
        Arc::new(CountWakes(AtomicUsize::new(0))),
        Arc::new(CountWakes(AtomicUsize::new(0))),
    );
    let (waker_a, waker_b) = (
        futures::task::waker(wa.clone()),
        futures::task::waker(wb.clone()),
    );
    assert!(
        a.as_mut()
            .poll(&mut Context::from_waker(&waker_a))
            .is_pending()
    );
    assert!(
        b.as_mut()
            .poll(&mut Context::from_waker(&waker_b))
            .is_pending()
    );

    tx1.send(1).unwrap();
    settle(&r1).await;
    assert_eq!(wa.0.load(Ordering::SeqCst), 1, "the first waiter is woken");
    assert_eq!(wb.0.load(Ordering::SeqCst), 0, "and only it");

    drop(a); // woken, but will never take the result
    assert_eq!(wb.0.load(Ordering::SeqCst), 1, "the wake passed on");
    assert_eq!(
        b.as_mut().poll(&mut Context::from_waker(&waker_b)),
        Poll::Ready(Ok(1))
    );
    tx2.send(2).unwrap();
    settle(&r2).await;
    assert_eq!(
        Iterator::count(it),
        0,
        "both items were taken: the second result has no consumer left"
    );
}

/// Races on the multi-thread runtime: many items awaited at once, tasks
/// completing on other workers: every item gets exactly one result (no
/// wake-up lost between completions, claims and re-registrations).
#[test]
fn multi_thread_items_awaited_at_once_each_get_one_result() {
    asyncio::Runner::new().worker_threads(2).run(async {
        for _ in 0..50 {
            let it = asyncio::as_completed(yielding_inputs(), None);
            assert_eq!(await_all_at_once(it).await, (0..200).collect::<Vec<_>>());
        }
    });
}

/// A small xorshift generator: the model test below is random but
/// reproducible (the seed is in the failure message).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One item of the model test below, polled by hand with its own waker.
struct Item<F> {
    fut: std::pin::Pin<Box<F>>,
    waker: std::task::Waker,
    wakes: Arc<CountWakes>,
    /// Wake count at the last poll.
    seen: usize,
    polled: bool,
}

/// Polls `item` once; a result goes to `got`. `true` when it resolved.
fn poll_item<F>(item: &mut Item<F>, got: &mut Vec<usize>) -> bool
where
    F: std::future::Future<Output = asyncio::Result<usize>>,
{
    item.seen = item.wakes.0.load(Ordering::SeqCst);
    item.polled = true;
    let mut cx = std::task::Context::from_waker(&item.waker);
    match item.fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => {
            got.push(r.unwrap());
            true
        }
        std::task::Poll::Pending => false,
    }
}

/// The wake-up protocol of the items and the stream, under random
/// interleavings of polls, completions and drops: whenever a result is
/// ready and some item waits, a waiting item has a wake-up coming, and so
/// does the stream if it waits (nothing is lost); once every task ended,
/// every item still held resolves, each result goes to exactly one
/// consumer. Five tasks, three items taken, the stream reads the rest.
#[tokio::test]
async fn items_never_miss_a_wake_up_under_random_interleavings() {
    use std::task::{Context, Poll};

    const N: usize = 5;
    const ITEMS: usize = 3;
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut senders = Vec::new();
        let mut refs = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..N {
            let (tx, rx) = tokio::sync::oneshot::channel::<usize>();
            let t = asyncio::create_task(async move { rx.await.unwrap() });
            senders.push(Some(tx));
            refs.push(t.to_ref());
            tasks.push(t);
        }
        let mut it = asyncio::as_completed(tasks, None);
        let mut items: Vec<_> = (0..ITEMS)
            .map(|_| {
                let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
                Some(Item {
                    fut: Box::pin(Iterator::next(&mut it).unwrap()),
                    waker: futures::task::waker(wakes.clone()),
                    wakes,
                    seen: 0,
                    polled: false,
                })
            })
            .collect();
        let stream_wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let stream_waker = futures::task::waker(stream_wakes.clone());
        // Wake count at the stream's last poll, if that poll was `Pending`.
        let mut stream_waiting: Option<usize> = None;
        let (mut completed, mut claimed, mut got) = (0, 0, Vec::new());
        let poll_stream = |it: &mut asyncio::futures::AsCompleted<usize>, got: &mut Vec<usize>| {
            let seen = stream_wakes.0.load(Ordering::SeqCst);
            match Stream::poll_next(
                std::pin::Pin::new(it),
                &mut Context::from_waker(&stream_waker),
            ) {
                Poll::Ready(Some(r)) => {
                    got.push(r.unwrap());
                    (None, 1)
                }
                Poll::Ready(None) => (None, 0),
                Poll::Pending => (Some(seen), 0),
            }
        };
        for _ in 0..40 {
            match rng.below(4) {
                3 => {
                    let (waiting, n) = poll_stream(&mut it, &mut got);
                    stream_waiting = waiting;
                    claimed += n;
                }
                0 => {
                    let j = rng.below(ITEMS);
                    if let Some(item) = items[j].as_mut() {
                        if poll_item(item, &mut got) {
                            items[j] = None;
                            claimed += 1;
                        }
                    }
                }
                1 => {
                    let i = rng.below(N);
                    if let Some(tx) = senders[i].take() {
                        tx.send(i).unwrap();
                        settle(&refs[i]).await;
                        completed += 1;
                    }
                }
                _ => {
                    let j = rng.below(ITEMS);
                    if rng.below(4) == 0 {
                        items[j] = None; // dropped, maybe after being woken
                    }
                }
            }
            // Nothing lost: a ready result and a waiting item imply a
            // wake-up on its way to some waiting item.
            let waiting: Vec<&Item<_>> = items.iter().flatten().filter(|i| i.polled).collect();
            if completed > claimed && !waiting.is_empty() {
                assert!(
                    waiting
                        .iter()
                        .any(|i| i.wakes.0.load(Ordering::SeqCst) > i.seen),
                    "seed {seed}: {} results ready, {} items waiting, none woken",
                    completed - claimed,
                    waiting.len()
                );
            }
            if let (true, Some(seen)) = (completed > claimed, stream_waiting) {
                assert!(
                    stream_wakes.0.load(Ordering::SeqCst) > seen,
                    "seed {seed}: a result is ready and the waiting stream was not woken"
                );
            }
        }
        // Every task ends; then only woken items are polled, until none is.
        for (i, tx) in senders.iter_mut().enumerate() {
            if let Some(tx) = tx.take() {
                tx.send(i).unwrap();
                settle(&refs[i]).await;
            }
        }
        loop {
            let woken = items.iter().position(|i| {
                i.as_ref()
                    .is_some_and(|i| !i.polled || i.wakes.0.load(Ordering::SeqCst) > i.seen)
            });
            let Some(j) = woken else { break };
            if poll_item(items[j].as_mut().unwrap(), &mut got) {
                items[j] = None;
            }
        }
        assert!(
            items.iter().all(Option::is_none),
            "seed {seed}: an item still waits although results are left"
        );
        let handed_out = got.len();
        got.sort();
        got.dedup();
        assert_eq!(
            got.len(),
            handed_out,
            "seed {seed}: a result handed out twice"
        );
    }
}

/// The stream waits beside the items, not in their line: a
/// `StreamExt::next` abandoned half-way (here by a timeout) leaves the
/// stream registered, and a completion still wakes the item awaited in
/// another task.
#[tokio::test(start_paused = true)]
async fn an_abandoned_stream_poll_does_not_hold_back_the_items() {
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let t = asyncio::create_task(async move { rx.await.unwrap() });
    let mut it = asyncio::as_completed([t], None);
    let abandoned = tokio::time::timeout(Duration::from_secs(1), StreamExt::next(&mut it)).await;
    assert!(abandoned.is_err(), "nothing to yield yet");
    let item = Iterator::next(&mut it).unwrap();
    let waiter = tokio::spawn(item);
    tokio::task::yield_now().await; // the item is polled and waits
    tx.send(7).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter).await;
    assert_eq!(got.expect("the item was never woken").unwrap(), Ok(7));
    drop(it);
}

/// An item polled once and then kept without being polled keeps its place
/// in line (like `tokio::sync::Notify`'s waiters): the next result is its.
/// Dropping it passes that result on to the next item in line.
#[tokio::test(start_paused = true)]
async fn a_parked_item_keeps_its_turn_until_dropped() {
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let t = asyncio::create_task(async move { rx.await.unwrap() });
    let never = asyncio::create_task(std::future::pending::<u32>());
    let mut it = asyncio::as_completed([t, never], None);
    let mut parked = Box::pin(Iterator::next(&mut it).unwrap());
    let second = Iterator::next(&mut it).unwrap();
    let polled_once = tokio::time::timeout(Duration::from_secs(1), parked.as_mut()).await;
    assert!(polled_once.is_err());
    let mut waiter = tokio::spawn(second);
    tokio::task::yield_now().await; // the second item waits, behind
    tx.send(7).unwrap();
    let early = tokio::time::timeout(Duration::from_secs(10), &mut waiter).await;
    assert!(
        early.is_err(),
        "the result belongs to the item first in line"
    );
    drop(parked);
    let got = tokio::time::timeout(Duration::from_secs(10), waiter).await;
    assert_eq!(got.expect("the turn was not passed on").unwrap(), Ok(7));
    drop(it);
}

/// A NaN timeout is refused before any input is scheduled: no task is
/// created, the future is never polled (it used to run on, detached).
#[tokio::test]
async fn nan_timeout_panics_before_any_input_is_scheduled() {
    let (polled, input) = common::polled_flag();
    let msg = common::panic_message(|| asyncio::as_completed([input], f64::NAN));
    assert!(msg.contains("NaN"), "{msg}");
    assert!(asyncio::all_tasks().is_empty());
    asyncio::sleep(0).await; // one thread: a scheduled input would run now
    assert!(!polled.load(Ordering::SeqCst));
}
