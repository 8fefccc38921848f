//! Edge cases of the timeout scope's lazy first poll: panics during it,
//! deep nesting with reschedules made inside it, pooled shared states reused
//! across scopes, and handles shared between threads. No CPython test
//! mirrors these: they check this crate's way of making a scope's shared
//! state only when needed. On Tokio's paused clock, except the races (a
//! real multi-thread runtime, with no timed waits).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use asyncio::CancelExt;
use tokio::time::Instant;

/// Polls `inner` each time; panics at the first poll, after `inner`'s
/// first poll (so a scope inside `inner` has registered by then).
struct PanicsOnce<F> {
    inner: Pin<Box<F>>,
    panicked: bool,
}

impl<F: Future> Future for PanicsOnce<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.inner.as_mut().poll(cx);
        if !self.panicked {
            self.panicked = true;
            panic!("first poll");
        }
        r
    }
}

fn quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let s = info.to_string();
        if !s.contains("first poll") && !s.contains("already been entered") {
            default(info);
        }
    }));
}

/// A run whose first poll panicked after a scope inside registered it, the
/// panic caught around that poll and the run polled again: its handle
/// still moves its deadline and sees its expiry.
#[tokio::test(start_paused = true)]
async fn a_run_polled_again_after_its_first_poll_panicked_keeps_its_handle() {
    quiet_panics();
    let t0 = Instant::now();
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = cleaned.clone();
    let scope = asyncio::timeout(100);
    let mut run = pin!(scope.run(PanicsOnce {
        inner: Box::pin(std::future::pending::<()>().on_cancel(move || async move {
            c.fetch_add(1, Ordering::SeqCst);
        })),
        panicked: false,
    }));
    std::future::poll_fn(|cx| {
        let r = catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx)));
        assert!(r.is_err(), "the first poll panicked");
        Poll::Ready(())
    })
    .await;
    scope.reschedule(t0 + Duration::from_secs(1));
    let r = run.await;
    assert!(r.unwrap_err().is_timeout());
    assert!(scope.expired());
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
}
