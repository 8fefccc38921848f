//! A service with a stuck request: a watchdog thread notices and dumps the
//! stack of every pending task, the way one would ask a hung service what
//! it is waiting for. Run it with `cargo run --example stack_dump`.
//!
//! Set `ASYNCIO_DEBUG=1` to also see each task's creation backtrace.

use std::time::Duration;

use asyncio::FramedExt;
use tokio::sync::{Mutex, oneshot};

/// Waits for a reply that never comes (the other side forgot to answer).
async fn fetch_user(reply: oneshot::Receiver<String>) -> String {
    reply.await.unwrap_or_default()
}

async fn handle_request(db: &Mutex<()>, reply: oneshot::Receiver<String>) -> String {
    let _guard = db.lock().framed_as("db.lock()").await;
    fetch_user(reply).framed().await
}

async fn ticker() {
    loop {
        asyncio::sleep(0.05).framed_as("tick").await;
    }
}

fn main() {
    asyncio::run(async {
        let db = std::sync::Arc::new(Mutex::new(()));
        let (_never_answers, reply) = oneshot::channel();
        let stuck = asyncio::Task::builder()
            .name("request-42")
            .spawn(async move { handle_request(&db, reply).framed().await });
        let tick = asyncio::Task::builder().name("ticker").spawn(ticker());

        // The watchdog is a plain thread: it would still run if every worker
        // were blocked. Outside a runtime, dump_tasks covers every runtime.
        let watchdog = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            let stdout = std::io::stdout();
            asyncio::dump_tasks(&mut stdout.lock()).unwrap();
        });
        while !watchdog.is_finished() {
            asyncio::sleep(0.01)
                .framed_as("waiting for the watchdog")
                .await;
        }
        watchdog.join().unwrap();

        stuck.cancel();
        tick.cancel();
        println!("\nrequest-42 cancelled: {}", stuck.await.unwrap_err());
    });
}
