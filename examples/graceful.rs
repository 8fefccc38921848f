//! A server-like program whose workers close their connections with an
//! awaited goodbye when they are cancelled: first by a timeout scope around
//! the whole service, then by a sibling's failure in their task group.
//!
//! Each "connection" is an in-memory duplex pipe whose far end is a client
//! task that records the last line it received. `cargo run --example graceful`.

use std::sync::{Arc, Mutex};

use asyncio::{CancelExt, Error, TaskGroup};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

/// What each client saw last, by worker id.
type Seen = Arc<Mutex<Vec<(usize, String)>>>;

/// A client: reads lines until the server closes, keeps the last one.
async fn client(id: usize, conn: DuplexStream, seen: Seen) {
    let mut lines = BufReader::new(conn).lines();
    let mut last = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        last = line;
    }
    seen.lock().unwrap().push((id, last));
}

/// A worker: serves its connection until cancelled, then says goodbye
/// (an awaited write and shutdown) before the cancellation goes on.
async fn worker(id: usize, conn: DuplexStream) {
    let conn = Arc::new(tokio::sync::Mutex::new(conn));
    let serving = conn.clone();
    async move {
        let mut tick = 0u64;
        loop {
            serving
                .lock()
                .await
                .write_all(format!("tick {tick}\n").as_bytes())
                .await
                .unwrap();
            tick += 1;
            asyncio::sleep(0.05).await;
        }
    }
    .on_cancel(move || async move {
        let mut conn = conn.lock().await;
        // The goodbye may await: the task is not done until it is written.
        let _ = conn
            .write_all(format!("goodbye from worker {id}\n").as_bytes())
            .await;
        let _ = conn.shutdown().await;
    })
    .await
}

/// Starts `n` workers (each with a client) in `tg`.
fn start_workers(tg: &TaskGroup, n: usize, seen: &Seen) -> Vec<asyncio::Task<()>> {
    let mut clients = Vec::new();
    for id in 0..n {
        let (server_end, client_end) = tokio::io::duplex(1024);
        tg.builder()
            .name(format!("worker-{id}"))
            .spawn(worker(id, server_end));
        clients.push(asyncio::create_task(client(id, client_end, seen.clone())));
    }
    clients
}

fn main() {
    asyncio::run(async {
        // 1. The whole service runs under a timeout scope.
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let clients = Arc::new(Mutex::new(Vec::new()));
        let c = clients.clone();
        let r = asyncio::timeout(0.3)
            .run(asyncio::task_group(move |tg| async move {
                *c.lock().unwrap() = start_workers(&tg, 3, &s);
            }))
            .await;
        assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
        let clients: Vec<_> = clients.lock().unwrap().drain(..).collect();
        for client in clients {
            client.await.unwrap();
        }
        report("after the deadline", &seen);

        // 2. A sibling fails: the group cancels the others, which say goodbye.
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let clients = Arc::new(Mutex::new(Vec::new()));
        let c = clients.clone();
        let r = asyncio::task_group(move |tg| async move {
            *c.lock().unwrap() = start_workers(&tg, 3, &s);
            tg.builder().name("flaky").spawn(async {
                asyncio::sleep(0.2).await;
                panic!("the database went away");
            });
        })
        .await;
        match r {
            Err(Error::Group(g)) => println!("group failed: {g}: {}", g.errors()[0]),
            other => panic!("expected a group error, got {other:?}"),
        }
        let clients: Vec<_> = clients.lock().unwrap().drain(..).collect();
        for client in clients {
            client.await.unwrap();
        }
        report("after a sibling's failure", &seen);
    });
}

fn report(when: &str, seen: &Seen) {
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    println!("{when}:");
    for (id, last) in &seen {
        println!("  client {id} last heard: {last}");
        assert_eq!(last, &format!("goodbye from worker {id}"));
    }
}
