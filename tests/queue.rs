//! `asyncio::Queue`, `LifoQueue`, `PriorityQueue`, as CPython's
//! `test_queues.py` checks them.

use std::sync::{Arc, Mutex};

use asyncio::{GetError, LifoQueue, PriorityQueue, PutError, Queue};

/// Lets every other task run until it blocks (paused clock).
async fn idle() {
    asyncio::sleep(0.001).await;
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn queues_and_their_futures_are_send_and_sync() {
    assert_send_sync::<Queue<String>>();
    assert_send_sync::<LifoQueue<String>>();
    assert_send_sync::<PriorityQueue<String>>();
    assert_send_sync::<asyncio::queue::Get<'static, String>>();
    assert_send_sync::<asyncio::queue::Put<'static, String>>();
    assert_send_sync::<PutError<String>>();
}

/// test_queues.py::QueueBasicTests::test_empty, test_full, test_maxsize
#[test]
fn qsize_empty_full_and_maxsize_follow_the_items() {
    let q = Queue::new(2);
    assert!(q.empty());
    assert!(!q.full());
    assert_eq!(q.maxsize(), 2);
    q.put_nowait(1).unwrap();
    assert_eq!(q.qsize(), 1);
    q.put_nowait(2).unwrap();
    assert!(q.full());
    let unbounded = Queue::new(0);
    for i in 0..1000 {
        unbounded.put_nowait(i).unwrap();
    }
    assert!(!unbounded.full());
    assert_eq!(unbounded.qsize(), 1000);
}

/// test_queues.py::QueueBasicTests::test_order, LifoQueueTests::test_order,
/// PriorityQueueTests::test_order
#[test]
fn each_queue_hands_out_items_in_its_order() {
    let items = [1, 3, 2];
    let fifo = Queue::new(0);
    let lifo = LifoQueue::new(0);
    let prio = PriorityQueue::new(0);
    for i in items {
        fifo.put_nowait(i).unwrap();
        lifo.put_nowait(i).unwrap();
        prio.put_nowait(i).unwrap();
    }
    let fifo: Vec<_> = std::iter::from_fn(|| fifo.get_nowait().ok()).collect();
    let lifo: Vec<_> = std::iter::from_fn(|| lifo.get_nowait().ok()).collect();
    let prio: Vec<_> = std::iter::from_fn(|| prio.get_nowait().ok()).collect();
    assert_eq!(fifo, [1, 3, 2]);
    assert_eq!(lifo, [2, 3, 1]);
    assert_eq!(prio, [1, 2, 3]);
}

/// test_queues.py::QueueGetTests::test_nonblocking_get_exception,
/// QueuePutTests::test_nonblocking_put_exception: the errors print asyncio's
/// names and give the item back.
#[test]
fn nowait_errors_print_asyncios_names_and_give_the_item_back() {
    let q = Queue::new(1);
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    assert_eq!(GetError::Empty.to_string(), "QueueEmpty");
    q.put_nowait(String::from("a")).unwrap();
    let err = q.put_nowait(String::from("b")).unwrap_err();
    assert_eq!(err.to_string(), "QueueFull");
    assert_eq!(format!("{err:?}"), "Full(..)");
    assert_eq!(err.into_inner(), "b");
    q.shutdown(false);
    let err = q.put_nowait(String::from("c")).unwrap_err();
    assert_eq!(err.to_string(), "QueueShutDown");
    assert_eq!(err, PutError::ShutDown(String::from("c")));
}

/// test_queues.py::QueuePutTests::test_blocking_put_wait and
/// QueueBasicTests::test_maxsize: put waits while full.
#[tokio::test(start_paused = true)]
async fn put_waits_while_the_queue_is_full() {
    let q = Arc::new(Queue::new(1));
    q.put(0).await.unwrap();
    let putter = asyncio::create_task({
        let q = q.clone();
        async move { q.put(1).await }
    });
    idle().await;
    assert!(!putter.done());
    asyncio::sleep(1).await;
    assert_eq!(q.get().await, Ok(0));
    putter.await.unwrap().unwrap();
    assert_eq!(q.get_nowait(), Ok(1));
}

/// test_queues.py::QueueGetTests::test_blocking_get_wait
#[tokio::test(start_paused = true)]
async fn get_waits_while_the_queue_is_empty() {
    let q = Arc::new(Queue::new(0));
    let getter = asyncio::create_task({
        let q = q.clone();
        async move { q.get().await }
    });
    asyncio::sleep(1).await;
    assert!(!getter.done());
    q.put_nowait("x").unwrap();
    assert_eq!(getter.await.unwrap(), Ok("x"));
}

type Log = Arc<Mutex<Vec<(u32, i32)>>>;

fn getter(q: &Arc<Queue<i32>>, log: &Log, id: u32) -> asyncio::Task<()> {
    let (q, log) = (q.clone(), log.clone());
    asyncio::create_task(async move {
        let item = q.get().await.unwrap();
        log.lock().unwrap().push((id, item));
    })
}

/// test_queues.py::QueuePutTests::test_put_with_waiting_getters: put wakes
/// the getters first come, first served.
#[tokio::test(start_paused = true)]
async fn waiting_getters_are_served_first_come_first_served() {
    let q = Arc::new(Queue::new(0));
    let log: Log = Arc::default();
    let tasks: Vec<_> = (1..=3).map(|i| getter(&q, &log, i)).collect();
    idle().await;
    for i in [10, 20, 30] {
        q.put_nowait(i).unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), [(1, 10), (2, 20), (3, 30)]);
}

/// test_queues.py::QueueGetTests::test_get_with_waiting_putters: get wakes
/// the putters in order.
#[tokio::test(start_paused = true)]
async fn waiting_putters_are_served_first_come_first_served() {
    let q = Arc::new(Queue::new(1));
    q.put_nowait(0).unwrap();
    let putters: Vec<_> = (1..=3)
        .map(|i| {
            let q = q.clone();
            asyncio::create_task(async move { q.put(i).await })
        })
        .collect();
    idle().await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(q.get().await.unwrap());
    }
    for p in putters {
        p.await.unwrap().unwrap();
    }
    assert_eq!(got, [0, 1, 2, 3]);
}

/// asyncio gives a woken getter no reservation: a `get_nowait` can take the
/// item first; the woken getter then waits again (at the back).
#[tokio::test(start_paused = true)]
async fn an_item_is_not_reserved_for_the_getter_it_woke() {
    let q = Arc::new(Queue::new(0));
    let log: Log = Arc::default();
    let first = getter(&q, &log, 1);
    let second = getter(&q, &log, 2);
    idle().await;
    q.put_nowait(1).unwrap(); // wakes `first`
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_nowait(), Ok(1)); // taken before `first` ran
    idle().await; // `first` looks, finds nothing, parks behind `second`
    q.put_nowait(2).unwrap();
    q.put_nowait(3).unwrap();
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(*log.lock().unwrap(), [(2, 2), (1, 3)]);
}

/// test_queues.py::QueuePutTests::test_get_cancel_drop_one_pending_reader
/// and test_get_cancel_drop_many_pending_readers: a cancelled get takes no
/// item.
#[tokio::test(start_paused = true)]
async fn a_cancelled_get_takes_no_item() {
    let q = Arc::new(Queue::new(0));
    let log: Log = Arc::default();
    let cancelled: Vec<_> = (1..=3).map(|i| getter(&q, &log, i)).collect();
    idle().await;
    for t in &cancelled {
        t.cancel();
    }
    for t in cancelled {
        assert!(t.await.unwrap_err().is_cancelled());
    }
    q.put_nowait(7).unwrap();
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get().await, Ok(7));
    assert!(log.lock().unwrap().is_empty());
}

/// test_queues.py::QueueGetTests::test_get_cancelled_race: a getter woken
/// by a put and cancelled before it ran wakes the next getter, which gets
/// the item.
#[tokio::test(start_paused = true)]
async fn a_woken_getter_cancelled_before_it_ran_wakes_the_next() {
    let q = Arc::new(Queue::new(0));
    let log: Log = Arc::default();
    let woken = getter(&q, &log, 1);
    let next = getter(&q, &log, 2);
    idle().await;
    q.put_nowait(5).unwrap(); // wakes `woken`
    woken.cancel();
    assert!(woken.await.unwrap_err().is_cancelled());
    // Fails (times out) instead of hanging if the wake-up were lost.
    asyncio::wait_for(next, 10)
        .await
        .expect("the next getter is served");
    assert_eq!(*log.lock().unwrap(), [(2, 5)]);
}

/// test_queues.py::QueuePutTests::test_put_cancel_drop: a cancelled put
/// inserts nothing.
#[tokio::test(start_paused = true)]
async fn a_cancelled_put_inserts_nothing() {
    let q = Arc::new(Queue::new(1));
    q.put_nowait(0).unwrap();
    let putter = asyncio::create_task({
        let q = q.clone();
        async move { q.put(1).await }
    });
    idle().await;
    putter.cancel();
    assert!(putter.await.unwrap_err().is_cancelled());
    assert_eq!(q.get_nowait(), Ok(0));
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    // The unfinished count saw one put only.
    q.task_done();
    q.join().await;
}

/// test_queues.py::QueuePutTests::test_put_cancelled_race: a putter woken
/// by a get and cancelled before it ran wakes the next putter.
#[tokio::test(start_paused = true)]
async fn a_woken_putter_cancelled_before_it_ran_wakes_the_next() {
    let q = Arc::new(Queue::new(1));
    q.put_nowait(0).unwrap();
    let woken = asyncio::create_task({
        let q = q.clone();
        async move { q.put(1).await }
    });
    let next = asyncio::create_task({
        let q = q.clone();
        async move { q.put(2).await }
    });
    idle().await;
    assert_eq!(q.get_nowait(), Ok(0)); // wakes `woken`
    woken.cancel();
    assert!(woken.await.unwrap_err().is_cancelled());
    // Fails (times out) instead of hanging if the wake-up were lost.
    asyncio::wait_for(next, 10)
        .await
        .expect("the next putter is served")
        .unwrap();
    assert_eq!(q.get_nowait(), Ok(2));
    assert!(q.empty());
}

/// A get and a put under `wait_for` that time out take and insert nothing.
#[tokio::test(start_paused = true)]
async fn a_get_or_put_that_times_out_changes_nothing() {
    let q = Queue::new(1);
    assert!(
        asyncio::wait_for(q.get(), 1)
            .await
            .unwrap_err()
            .is_timeout()
    );
    q.put_nowait(1).unwrap();
    assert!(
        asyncio::wait_for(q.put(2), 1)
            .await
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.get_nowait(), Ok(1));
    assert!(format!("{q:?}").contains("getters: 0, putters: 0"));
}

/// test_queues.py::QueueGetTests::test_why_are_getters_waiting and
/// QueuePutTests::test_why_are_putters_waiting: producer and consumer on a
/// small queue never deadlock.
#[tokio::test(start_paused = true)]
async fn producers_and_consumers_on_a_queue_of_one_finish() {
    let q = Arc::new(Queue::new(1));
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let q = q.clone();
            asyncio::create_task(async move {
                for i in 0..10 {
                    q.put(p * 100 + i).await.unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            asyncio::create_task(async move {
                let mut n = 0;
                for _ in 0..10 {
                    q.get().await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    asyncio::gather(producers).await.unwrap();
    let counts = asyncio::gather(consumers).await.unwrap();
    assert_eq!(counts.iter().sum::<i32>(), 30);
}

/// test_queues.py::QueueJoinTests::test_task_done_underflow, test_task_done:
/// the count is of items put (no get needed), and one call too many panics
/// with asyncio's message.
#[test]
fn task_done_more_times_than_items_put_panics_with_asyncios_message() {
    let q = Queue::new(0);
    q.put_nowait(1).unwrap();
    q.task_done(); // legal without a get, as in asyncio
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.task_done())).unwrap_err();
    assert_eq!(
        err.downcast_ref::<&str>(),
        Some(&"task_done() called too many times")
    );
}

/// test_queues.py::QueueJoinTests::test_join_empty_queue, test_task_done:
/// join returns at once with nothing unfinished, else when every item put
/// is marked done.
#[tokio::test(start_paused = true)]
async fn join_waits_until_every_item_put_is_marked_done() {
    let q = Arc::new(Queue::new(0));
    q.join().await;
    for i in 0..3 {
        q.put_nowait(i).unwrap();
    }
    let joiner = asyncio::create_task({
        let q = q.clone();
        async move { q.join().await }
    });
    for _ in 0..3 {
        q.get().await.unwrap();
        idle().await;
        assert!(!joiner.done());
    }
    q.task_done();
    q.task_done();
    idle().await;
    assert!(!joiner.done());
    q.task_done();
    joiner.await.unwrap();
}

/// test_queues.py::QueueShutdownTests::test_shutdown_empty: put fails at
/// once, a waiting get fails.
#[tokio::test(start_paused = true)]
async fn shutdown_of_an_empty_queue_fails_puts_and_waiting_gets() {
    let q = Arc::new(Queue::<i32>::new(0));
    let getter = asyncio::create_task({
        let q = q.clone();
        async move { q.get().await }
    });
    idle().await;
    q.shutdown(false);
    assert_eq!(getter.await.unwrap(), Err(GetError::ShutDown));
    assert_eq!(q.put(1).await, Err(PutError::ShutDown(1)));
    assert_eq!(q.get().await, Err(GetError::ShutDown));
    q.join().await;
}

/// test_queues.py::QueueShutdownTests::test_shutdown_nonempty: the items
/// left can still be got, then get fails; join waits for their task_done;
/// a waiting put fails without inserting.
#[tokio::test(start_paused = true)]
async fn shutdown_lets_gets_drain_the_items_left_and_fails_waiting_puts() {
    let q = Arc::new(Queue::new(1));
    q.put_nowait(1).unwrap();
    let putter = asyncio::create_task({
        let q = q.clone();
        async move { q.put(2).await }
    });
    idle().await;
    q.shutdown(false);
    assert_eq!(putter.await.unwrap(), Err(PutError::ShutDown(2)));
    let joiner = asyncio::create_task({
        let q = q.clone();
        async move { q.join().await }
    });
    assert_eq!(q.get().await, Ok(1));
    assert_eq!(q.get().await, Err(GetError::ShutDown));
    idle().await;
    assert!(!joiner.done());
    q.task_done();
    joiner.await.unwrap();
}

/// test_queues.py::QueueShutdownTests::test_shutdown_immediate: the items
/// are removed and count as done; gets fail at once; task_done beyond the
/// rest panics.
#[tokio::test(start_paused = true)]
async fn an_immediate_shutdown_empties_the_queue_and_counts_the_items_done() {
    let q = Queue::new(0);
    for i in 0..3 {
        q.put_nowait(i).unwrap();
    }
    q.shutdown(true);
    assert!(q.empty());
    assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
    assert_eq!(q.get().await, Err(GetError::ShutDown));
    q.join().await;
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.task_done()));
    assert!(again.is_err());
}

/// test_queues.py::QueueShutdownTests::test_shutdown_immediate_with_unfinished:
/// items got before the shutdown still hold join up until marked done.
#[tokio::test(start_paused = true)]
async fn after_an_immediate_shutdown_join_waits_for_the_items_already_got() {
    let q = Arc::new(Queue::new(0));
    for i in 0..3 {
        q.put_nowait(i).unwrap();
    }
    assert_eq!(q.get_nowait(), Ok(0));
    let joiner = asyncio::create_task({
        let q = q.clone();
        async move { q.join().await }
    });
    q.shutdown(true);
    idle().await;
    assert!(!joiner.done());
    q.task_done();
    joiner.await.unwrap();
}

/// A second shutdown, immediate, still drains (asyncio's `shutdown` can be
/// called again).
#[test]
fn a_later_immediate_shutdown_still_drains_the_queue() {
    let q = Queue::new(0);
    q.put_nowait(1).unwrap();
    q.shutdown(false);
    q.shutdown(true);
    assert!(q.empty());
}

/// Items removed by an immediate shutdown are dropped, exactly once.
#[test]
fn items_removed_by_an_immediate_shutdown_are_dropped() {
    let item = Arc::new(());
    let q = Queue::new(0);
    q.put_nowait(item.clone()).unwrap();
    q.shutdown(true);
    assert_eq!(Arc::strong_count(&item), 1);
}

/// A task whose `get` waits inside `on_cancel(get, cleanup)`; the cleanup
/// logs `(id, -1)`, the item got logs `(id, item)`.
fn getter_with_cleanup(q: &Arc<Queue<i32>>, log: &Log, id: u32) -> asyncio::Task<()> {
    let (q, log) = (q.clone(), log.clone());
    asyncio::create_task(async move {
        let l = log.clone();
        let item = asyncio::on_cancel(q.get(), move || async move {
            l.lock().unwrap().push((id, -1));
        })
        .await
        .unwrap();
        log.lock().unwrap().push((id, item));
    })
}

/// Two getters wait, each inside `on_cancel`; the first is cancelled (after
/// a put woke it, if `woken`). It ends cancelled without the item, its
/// cleanup runs, and the second getter gets the item.
async fn cancel_the_first_of_two_getters_inside_on_cancel(woken: bool) {
    let q = Arc::new(Queue::new(0));
    let log: Log = Arc::default();
    let first = getter_with_cleanup(&q, &log, 1);
    let next = getter_with_cleanup(&q, &log, 2);
    idle().await;
    if woken {
        q.put_nowait(7).unwrap(); // wakes `first`
    }
    assert!(first.cancel());
    assert!(first.await.unwrap_err().is_cancelled());
    if !woken {
        assert_eq!(*log.lock().unwrap(), [(1, -1)]);
        q.put_nowait(7).unwrap();
    }
    // Fails (times out) instead of hanging if the wake-up were lost.
    asyncio::wait_for(next, 10)
        .await
        .expect("the next getter is served");
    assert_eq!(*log.lock().unwrap(), [(1, -1), (2, 7)]);
    assert!(q.empty());
}

/// test_queues.py::QueuePutTests::test_get_cancel_drop_one_pending_reader,
/// through `on_cancel`: the cancelled task's get takes no item, its
/// cleanup runs, and the next getter gets the item.
#[tokio::test(start_paused = true)]
async fn a_get_cancelled_inside_on_cancel_takes_no_item_and_runs_the_cleanup() {
    cancel_the_first_of_two_getters_inside_on_cancel(false).await;
}

/// test_queues.py::QueueGetTests::test_get_cancelled_race, through
/// `on_cancel`: a getter woken by a put and cancelled before it ran ends
/// cancelled without the item, its cleanup runs, and the next getter gets
/// the item.
#[tokio::test(start_paused = true)]
async fn a_woken_get_cancelled_inside_on_cancel_leaves_the_item_to_the_next() {
    cancel_the_first_of_two_getters_inside_on_cancel(true).await;
}

/// A get and a put run under a `timeout` scope that expires take and
/// insert nothing; the next getter and putter are served.
#[tokio::test(start_paused = true)]
async fn a_get_or_put_cancelled_by_a_timeout_scope_changes_nothing() {
    let q = Arc::new(Queue::new(1));
    let r = asyncio::timeout(1).run(q.get()).await;
    assert!(r.unwrap_err().is_timeout());
    q.put_nowait(1).unwrap();
    let r = asyncio::timeout(1).run(q.put(2)).await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(q.qsize(), 1);
    assert!(format!("{q:?}").contains("getters: 0, putters: 0"));
    // A putter queued behind the cancelled one is served by the next get.
    let putter = asyncio::create_task({
        let q = q.clone();
        async move { q.put(3).await }
    });
    idle().await;
    assert_eq!(q.get_nowait(), Ok(1));
    asyncio::wait_for(putter, 10)
        .await
        .expect("the next putter is served")
        .unwrap();
    assert_eq!(q.get_nowait(), Ok(3));
    assert!(q.empty());
}

/// test_queues.py::QueuePutTests::test_put_cancel_drop, through a
/// `timeout` scope around `on_cancel`: the put inserts nothing, the
/// cleanup runs before the scope returns, and `join` sees one item only.
#[tokio::test(start_paused = true)]
async fn a_put_cancelled_by_a_timeout_scope_inside_on_cancel_inserts_nothing() {
    let q = Queue::new(1);
    q.put_nowait(0).unwrap();
    let cleaned = Mutex::new(false);
    let r = asyncio::timeout(1)
        .run(asyncio::on_cancel(q.put(1), || async {
            *cleaned.lock().unwrap() = true;
        }))
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(*cleaned.lock().unwrap());
    assert_eq!(q.get_nowait(), Ok(0));
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    q.task_done();
    q.join().await;
}
