//! Producers, a bounded `Queue`, workers in a task group, `join()`, then
//! `shutdown()`: the queue example of Python's asyncio documentation, as a
//! pipeline.
//!
//! `examples/pipeline.py` is the Python twin (Python 3.13); both print the
//! same lines, checked by `tests/example_pipeline.rs`.
//!
//! ```sh
//! cargo run --example pipeline
//! ```

use std::sync::{Arc, Mutex};

use asyncio::{GetError, Queue};

/// How long each job takes, in milliseconds (no two workers finish at
/// the same moment, so the order of the lines is the same on every run).
const COSTS_MS: [u64; 10] = [34, 49, 42, 51, 27, 12, 55, 57, 23, 37];

type Log = Arc<Mutex<Vec<String>>>;

async fn producer(p: usize, queue: Arc<Queue<usize>>, log: Log) {
    for i in 0..5 {
        let job = p * 5 + i;
        // Waits while the queue holds 3 jobs.
        queue.put(job).await.expect("not shut down yet");
        log.lock()
            .unwrap()
            .push(format!("producer-{p} put job {job}"));
    }
}

async fn worker(w: usize, queue: Arc<Queue<usize>>, log: Log) {
    loop {
        let job = match queue.get().await {
            Ok(job) => job,
            Err(GetError::ShutDown) => {
                log.lock()
                    .unwrap()
                    .push(format!("worker-{w} stops: queue shut down"));
                return;
            }
            Err(GetError::Empty) => unreachable!("get waits instead"),
        };
        let cost = COSTS_MS[job];
        asyncio::sleep(std::time::Duration::from_millis(cost)).await;
        log.lock()
            .unwrap()
            .push(format!("worker-{w} did job {job} in {cost} ms"));
        queue.task_done();
    }
}

/// The whole pipeline; returns the lines it logged.
pub async fn pipeline() -> Vec<String> {
    let log: Log = Arc::default();
    let queue = Arc::new(Queue::new(3));
    // The workers belong together: the group waits for all of them, and
    // one panicking would cancel the others and the body.
    asyncio::task_group(|tg| {
        let (queue, log) = (queue.clone(), log.clone());
        async move {
            for w in 0..3 {
                tg.create_task(worker(w, queue.clone(), log.clone()));
            }
            let producers: Vec<_> = (0..2)
                .map(|p| asyncio::create_task(producer(p, queue.clone(), log.clone())))
                .collect();
            asyncio::gather(producers).await.unwrap();
            // Every job put has been got and marked done.
            queue.join().await;
            log.lock().unwrap().push("all jobs done".to_string());
            // The workers' next get fails: they stop, and the group ends.
            queue.shutdown(false);
        }
    })
    .await
    .expect("no worker failed");
    log.lock().unwrap().clone()
}

#[allow(dead_code)] // the test includes this file for `pipeline` only
fn main() {
    for line in asyncio::run(pipeline()) {
        println!("{line}");
    }
}
