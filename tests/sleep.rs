//! `sleep` / `sleep_with`, on Tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Sleep_with returns its value once the delay has passed; floats,
/// integers and Durations are all seconds.
#[tokio::test(start_paused = true)]
async fn sleep_waits_the_delay_and_returns_the_value() {
    let start = Instant::now();
    assert_eq!(asyncio::sleep_with(1.5, "result").await, "result");
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    asyncio::sleep(2).await;
    assert_eq!(start.elapsed(), Duration::from_millis(3500));
    asyncio::sleep(Duration::from_millis(250)).await;
    assert_eq!(start.elapsed(), Duration::from_millis(3750));
}

/// Sleep(0) yields exactly once and never touches the timer (the
/// paused clock does not move); negative delays behave the same.
#[tokio::test(start_paused = true)]
async fn sleep_zero_yields_once_without_the_timer() {
    let order: Arc<Mutex<Vec<&str>>> = Arc::default();
    let start = Instant::now();
    let mk = |name: &'static str, delay: f64| {
        let order = order.clone();
        asyncio::create_task(async move {
            for _ in 0..2 {
                order.lock().unwrap().push(name);
                asyncio::sleep(delay).await;
            }
        })
    };
    let (a, b) = (mk("a", 0.0), mk("b", -5.0));
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["a", "b", "a", "b"]);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// Sleep(0) never completes without suspending.
#[tokio::test(start_paused = true)]
async fn sleep_zero_suspends() {
    use std::future::Future;
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut s = std::pin::pin!(asyncio::sleep_with(0, 1));
    assert!(s.as_mut().poll(&mut cx).is_pending());
    assert_eq!(s.as_mut().poll(&mut cx), std::task::Poll::Ready(1));
}

/// NaN is refused with a clear message.
#[test]
#[should_panic(expected = "invalid delay: NaN (not a number)")]
fn nan_panics() {
    drop(asyncio::sleep(f64::NAN));
}

/// Building a sleep needs no runtime, and its deadline is taken at the
/// first poll, not when it was built.
#[test]
fn sleep_is_lazy() {
    let nap = asyncio::sleep_with(1, "woke"); // no runtime here
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::advance(Duration::from_secs(10)).await;
        let start = Instant::now();
        assert_eq!(nap.await, "woke");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    });
}

/// An infinite delay never ends.
#[tokio::test(start_paused = true)]
async fn infinite_sleep_never_ends() {
    let forever = tokio::time::timeout(Duration::from_secs(86_400), asyncio::sleep(f64::INFINITY));
    assert!(forever.await.is_err());
}

/// Cancelling a sleeping task ends it promptly, at the current time.
#[tokio::test(start_paused = true)]
async fn cancelling_a_sleeping_task_is_prompt() {
    let start = Instant::now();
    let mut t = asyncio::create_task(asyncio::sleep(3600));
    asyncio::sleep(1).await;
    t.cancel();
    assert!((&mut t).await.unwrap_err().is_cancelled());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

/// Sleep(0) is a cancellation point.
#[tokio::test(start_paused = true)]
async fn sleep_zero_is_a_cancellation_point() {
    let t = asyncio::create_task(async {
        asyncio::current_task().unwrap().cancel();
        asyncio::sleep(0).await;
        unreachable!("cancelled at the sleep(0)");
    });
    assert!(t.await.unwrap_err().is_cancelled());
}
