//! Helpers shared by the combinator tests.

use asyncio::TaskRef;

/// Waits until `t` ended, through a done callback: no busy loop, so the
/// paused clock can advance.
pub async fn settle(t: &TaskRef) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    t.add_done_callback(move |_| {
        let _ = tx.send(());
    });
    let _ = rx.await;
}
