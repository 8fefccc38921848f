//! Every combinator's future can be awaited inside a spawned task (ours and
//! Tokio's) when its outputs borrow `'static` data (`&'static str`): the
//! futures are `Send` whenever their outputs are. These tests are checked by
//! the compiler first (a future that is not `Send` here does not compile) and
//! then run.

use std::future::Future;

use asyncio::{ALL_COMPLETED, Task};
use futures::StreamExt;

async fn say(what: &'static str) -> &'static str {
    asyncio::sleep(0.001).await;
    what
}

fn task(what: &'static str) -> Task<&'static str> {
    asyncio::create_task(say(what))
}

/// Spawns `make()` both as a task of ours and with `tokio::spawn`, and checks
/// both results.
async fn in_both_spawns<F, Fut, T>(make: F, expected: T)
where
    F: Fn() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + PartialEq + std::fmt::Debug + 'static,
{
    assert_eq!(asyncio::create_task(make()).await.unwrap(), expected);
    assert_eq!(tokio::spawn(make()).await.unwrap(), expected);
}

#[tokio::test]
async fn gather_macro_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async {
            asyncio::gather!(async { "a" }, async { "b" })
                .await
                .unwrap()
        },
        ("a", "b"),
    )
    .await;
    in_both_spawns(
        || async {
            asyncio::gather!(say("a"), task("b"), async { 1u8 })
                .await
                .unwrap()
        },
        ("a", "b", 1),
    )
    .await;
}

#[tokio::test]
async fn gather_macro_return_exceptions_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async {
            let (a, b) = asyncio::gather!(async { "a" }, task("b"))
                .return_exceptions()
                .await;
            (a.unwrap(), b.unwrap())
        },
        ("a", "b"),
    )
    .await;
}

#[tokio::test]
async fn gather_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async { asyncio::gather([say("a"), say("b")]).await.unwrap() },
        vec!["a", "b"],
    )
    .await;
    in_both_spawns(
        || async { asyncio::gather([task("a"), task("b")]).await.unwrap() },
        vec!["a", "b"],
    )
    .await;
    in_both_spawns(
        || async {
            asyncio::gather([task("a"), task("b")])
                .return_exceptions()
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        },
        vec!["a", "b"],
    )
    .await;
}

#[tokio::test]
async fn try_gather_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async {
            asyncio::try_gather([async { Ok::<_, asyncio::Error>("a") }])
                .await
                .unwrap()
        },
        vec!["a"],
    )
    .await;
}

#[tokio::test]
async fn wait_for_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async { asyncio::wait_for(say("a"), 10).await.unwrap() },
        "a",
    )
    .await;
    in_both_spawns(
        || async { asyncio::wait_for(task("a"), 10).await.unwrap() },
        "a",
    )
    .await;
}

#[tokio::test]
async fn shield_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(|| async { asyncio::shield(say("a")).await.unwrap() }, "a").await;
    in_both_spawns(|| async { asyncio::shield(task("a")).await.unwrap() }, "a").await;
}

#[tokio::test]
async fn wait_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async {
            let (done, pending) = asyncio::wait([say("a")], ALL_COMPLETED, None).await;
            assert!(pending.is_empty());
            done[0].result().unwrap()
        },
        "a",
    )
    .await;
    in_both_spawns(
        || async {
            let (done, _) = asyncio::wait([task("a")], ALL_COMPLETED, 10).await;
            done[0].result().unwrap()
        },
        "a",
    )
    .await;
}

#[tokio::test]
async fn as_completed_iterator_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async {
            let mut seen = Vec::new();
            for next in asyncio::as_completed([task("a"), task("a")], 10) {
                seen.push(next.await.unwrap());
            }
            seen
        },
        vec!["a", "a"],
    )
    .await;
}

#[tokio::test]
async fn as_completed_stream_with_str_outputs_runs_inside_spawned_tasks() {
    in_both_spawns(
        || async {
            let mut seen = Vec::new();
            let mut results = asyncio::as_completed([say("a"), say("a")], None);
            while let Some(r) = StreamExt::next(&mut results).await {
                seen.push(r.unwrap());
            }
            seen
        },
        vec!["a", "a"],
    )
    .await;
}

/// A future holding a cleanup closure that returns an `async` block, given
/// to `wait_for` or a timeout scope inside a spawned task: `Send`, with no
/// boxing.
#[tokio::test]
async fn wait_for_and_timeout_over_a_cleanup_returning_an_async_block_run_inside_spawned_tasks() {
    use asyncio::CancelExt;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<&str>::new()));
    in_both_spawns(
        || {
            let l = log.clone();
            let guarded = asyncio::sleep_with(0.001, 7u8).on_cancel(move || async move {
                asyncio::sleep(0.001).await;
                l.lock().unwrap().push("closed");
            });
            async move { asyncio::wait_for(guarded, 1).await.unwrap() }
        },
        7,
    )
    .await;
    in_both_spawns(
        || {
            let l = log.clone();
            let guarded = asyncio::sleep_with(0.001, 7u8).on_cancel(move || async move {
                asyncio::sleep(0.001).await;
                l.lock().unwrap().push("closed");
            });
            async move { asyncio::timeout(1).run(guarded).await.unwrap() }
        },
        7,
    )
    .await;
    assert!(log.lock().unwrap().is_empty());
}
