//! `task_group` / `TaskGroup`. Each test names the CPython test
//! (`test_taskgroups.py::TestTaskGroup`) it mirrors, where there is one.
//! Timed tests run on Tokio's paused clock; races on the multi-thread
//! runtime.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::{CancelExt, Error, TaskRef};
use tokio::time::Instant;

use common::{entries, log, push};

/// The messages of a group error's members.
fn messages(err: &Error) -> Vec<String> {
    match err {
        Error::Group(g) => g.errors().iter().map(|e| e.to_string()).collect(),
        other => panic!("expected a group error, got {other:?}"),
    }
}

/// test_taskgroup_01: the group waits for every child; results are read
/// from the tasks.
#[tokio::test(start_paused = true)]
async fn the_group_waits_for_every_child_and_returns_the_bodys_value() {
    let t0 = Instant::now();
    let (a, b) = asyncio::task_group(|tg| async move {
        let a = tg.create_task(asyncio::sleep_with(0.1, 42));
        let b = tg.create_task(asyncio::sleep_with(0.2, 11));
        (a, b)
    })
    .await
    .unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(200));
    assert_eq!(a.result().unwrap() + b.result().unwrap(), 53);
}

/// test_taskgroup_24, test_taskgroup_25: children created by children, and
/// while the group waits, are waited for too.
#[tokio::test(start_paused = true)]
async fn children_created_by_children_while_the_group_waits_are_waited_for() {
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    asyncio::task_group(move |tg| async move {
        let tg2 = tg.clone();
        tg.create_task(async move {
            asyncio::sleep(1).await;
            let d2 = d.clone();
            tg2.create_task(async move {
                asyncio::sleep(1).await;
                d2.fetch_add(1, Ordering::SeqCst);
            });
            d.fetch_add(1, Ordering::SeqCst);
        });
    })
    .await
    .unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 2);
}

/// test_taskgroup_03: a child cancelled by hand is not a failure.
#[tokio::test(start_paused = true)]
async fn a_cancelled_child_is_not_a_failure() {
    let r = asyncio::task_group(|tg| async move {
        let t = tg.create_task(asyncio::sleep(10));
        let u = tg.create_task(asyncio::sleep_with(1, "u"));
        asyncio::sleep(0.1).await;
        t.cancel();
        (t.to_ref(), u)
    })
    .await;
    let (t, u) = r.unwrap();
    assert!(t.cancelled());
    assert_eq!(u.result().unwrap(), "u");
}

/// test_taskgroup_04, test_cancel_children_on_child_error: the first failure
/// cancels the others and the body; every failure is listed.
#[tokio::test(start_paused = true)]
async fn the_first_failure_cancels_the_body_and_the_other_children() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let sibling: Arc<Mutex<Option<TaskRef>>> = Arc::default();
    let s = sibling.clone();
    let r = asyncio::task_group(move |tg| async move {
        *s.lock().unwrap() = Some(tg.create_task(asyncio::sleep(10)).to_ref());
        tg.create_task(async {
            asyncio::sleep(0.5).await;
            panic!("child failed");
        });
        asyncio::sleep(10).await;
        push(&l, "body went on");
    })
    .await;
    let err = r.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unhandled errors in a TaskGroup (1 sub-exception)"
    );
    assert_eq!(messages(&err), ["task panicked: child failed"]);
    assert!(sibling.lock().unwrap().as_ref().unwrap().cancelled());
    assert!(entries(&log).is_empty());
    assert_eq!(t0.elapsed(), Duration::from_millis(500));
}

/// test_taskgroup_19 (and source order): children's failures in the order
/// they happened, the body's last.
#[tokio::test(start_paused = true)]
async fn every_failure_is_listed_children_in_order_then_the_body() {
    let r = asyncio::task_group(|tg| async move {
        tg.create_task(async {
            asyncio::sleep(0.1).await;
            panic!("first");
        });
        // Fails while being cancelled (its cleanup panics).
        tg.create_task(asyncio::sleep(10).on_cancel(|| async { panic!("second, in cleanup") }));
        asyncio::sleep(0.05).await;
        panic!("body");
    })
    .await;
    let err = r.unwrap_err();
    let m = messages(&err);
    assert_eq!(m.last().map(String::as_str), Some("task panicked: body"));
    assert!(m.len() >= 2, "{m:?}");
}

/// test_taskgroup_09, test_taskgroup_10: a body that panics cancels the
/// children and is reported.
#[tokio::test(start_paused = true)]
async fn a_panicking_body_cancels_the_children_and_is_reported() {
    let child: Arc<Mutex<Option<TaskRef>>> = Arc::default();
    let c = child.clone();
    let r = asyncio::task_group(move |tg| async move {
        *c.lock().unwrap() = Some(tg.create_task(asyncio::sleep(10)).to_ref());
        asyncio::sleep(0.1).await;
        panic!("body failed");
    })
    .await;
    assert_eq!(messages(&r.unwrap_err()), ["task panicked: body failed"]);
    assert!(child.lock().unwrap().as_ref().unwrap().cancelled());
}

/// A body that panics before its first await (while it is being built or
/// at its first poll) is reported the same way.
#[tokio::test(start_paused = true)]
async fn a_body_that_panics_at_once_is_reported() {
    let r = asyncio::task_group(|_tg| -> std::future::Ready<()> { panic!("at once") }).await;
    assert_eq!(messages(&r.unwrap_err()), ["task panicked: at once"]);
}

/// `try_create_task`: `Ok(v)` is the task's output, `Err(e)` fails the
/// group with `Error::Failed` carrying `e`.
#[tokio::test(start_paused = true)]
async fn try_create_task_fails_the_group_with_the_childs_error() {
    let r = asyncio::task_group(|tg| async move {
        let ok = tg.try_create_task(async { Ok::<_, std::io::Error>(3) });
        assert_eq!(ok.await.unwrap(), 3);
        tg.try_create_task(async {
            asyncio::sleep(0.1).await;
            Err::<(), _>(std::io::Error::other("refused"))
        });
        asyncio::sleep(10).await;
    })
    .await;
    let Err(Error::Group(g)) = r else {
        panic!("expected a group error")
    };
    assert_eq!(g.errors().len(), 1);
    let Error::Failed(e) = &g.errors()[0] else {
        panic!("expected Failed, got {:?}", g.errors()[0])
    };
    assert_eq!(e.to_string(), "refused");
    assert_eq!(
        e.downcast_ref::<std::io::Error>().unwrap().kind(),
        std::io::ErrorKind::Other
    );
}

/// The `try_create_task` child's own outcome is the failure, too.
#[tokio::test(start_paused = true)]
async fn a_failed_child_task_reports_error_failed() {
    let child: Arc<Mutex<Option<asyncio::Task<()>>>> = Arc::default();
    let c = child.clone();
    let _ = asyncio::task_group(move |tg| async move {
        *c.lock().unwrap() = Some(tg.try_create_task(async { Err::<(), _>(std::fmt::Error) }));
    })
    .await;
    let task = child.lock().unwrap().take().unwrap();
    assert!(task.done() && !task.cancelled());
    let err = task.await.unwrap_err();
    assert!(err.is_failed(), "{err:?}");
}

/// test_taskgroup_no_create_task_after_failure
#[tokio::test(start_paused = true)]
async fn create_task_on_a_group_shutting_down_panics() {
    let r = asyncio::task_group(|tg| async move {
        tg.create_task(async { panic!("fail") });
        let tg2 = tg.clone();
        // Runs in the body's cleanup, after the failure cancelled it.
        asyncio::sleep(10)
            .on_cancel(move || async move {
                let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tg2.create_task(async {});
                }));
                let msg = refused.unwrap_err();
                let msg = msg.downcast_ref::<&str>().copied().unwrap_or_default();
                assert!(msg.starts_with("TaskGroup is shutting down"), "{msg}");
            })
            .await;
    })
    .await;
    assert_eq!(messages(&r.unwrap_err()), ["task panicked: fail"]);
}

/// test_taskgroup_finished
#[tokio::test(start_paused = true)]
#[should_panic(expected = "TaskGroup is finished")]
async fn create_task_on_a_finished_group_panics() {
    let tg = asyncio::task_group(|tg| async move { tg }).await.unwrap();
    tg.create_task(async {});
}

/// test_taskgroup_task_name
#[tokio::test(start_paused = true)]
async fn the_builder_names_children() {
    asyncio::task_group(|tg| async move {
        let t = tg.builder().name("named").spawn(async {});
        assert_eq!(t.get_name(), "named");
    })
    .await
    .unwrap();
}

/// test_taskgroup_23: a finished child leaves the group at once.
#[tokio::test(start_paused = true)]
async fn finished_children_leave_the_group_at_once() {
    asyncio::task_group(|tg| async move {
        for _ in 0..100 {
            tg.create_task(asyncio::sleep(0.01)).await.unwrap();
        }
        let dbg = format!("{tg:?}");
        assert!(dbg.contains("tasks: 0"), "{dbg}");
    })
    .await
    .unwrap();
}

/// test_taskgroup_11, test_taskgroup_12: a nested group's errors become one
/// member of the outer group's.
#[tokio::test(start_paused = true)]
async fn a_nested_groups_error_is_one_member_of_the_outer_group() {
    let r = asyncio::task_group(|tg| async move {
        tg.create_task(async {
            let inner = asyncio::task_group(|tg| async move {
                tg.create_task(async { panic!("deep") });
            })
            .await;
            if let Err(e) = inner {
                // A child that fails with the inner group's error.
                std::panic::resume_unwind(Box::new(e.to_string()));
            }
        });
        let inner = asyncio::task_group(|tg| async move {
            tg.create_task(async { panic!("in body") });
            asyncio::sleep(10).await;
        })
        .await;
        assert!(inner.unwrap_err().is_group());
        asyncio::sleep(10).await;
    })
    .await;
    let err = r.unwrap_err();
    assert!(err.is_group());
}

/// test_taskgroup_08, test_taskgroup_15: when the group shuts down, a
/// child's cleanup runs to its end (awaiting) before the group resolves.
#[tokio::test(start_paused = true)]
async fn children_clean_up_before_the_group_resolves() {
    let t0 = Instant::now();
    let log = log();
    let l = log.clone();
    let r = asyncio::task_group(move |tg| async move {
        tg.create_task(asyncio::sleep(10).on_cancel(move || async move {
            asyncio::sleep(1).await;
            push(&l, "child closed");
        }));
        asyncio::sleep(0.5).await;
        panic!("body");
    })
    .await;
    assert!(r.unwrap_err().is_group());
    assert_eq!(entries(&log), ["child closed"]);
    assert_eq!(t0.elapsed(), Duration::from_millis(1500));
}

/// The body's own cleanup runs after a child's failure.
#[tokio::test(start_paused = true)]
async fn the_bodys_cleanup_runs_after_a_childs_failure() {
    let log = log();
    let l = log.clone();
    let r = asyncio::task_group(move |tg| async move {
        tg.create_task(async {
            asyncio::sleep(0.1).await;
            panic!("child");
        });
        asyncio::sleep(10)
            .on_cancel(move || async move {
                asyncio::sleep(0.2).await;
                push(&l, "body cleaned up");
            })
            .await;
    })
    .await;
    assert_eq!(messages(&r.unwrap_err()), ["task panicked: child"]);
    assert_eq!(entries(&log), ["body cleaned up"]);
}

/// test_cancellation, test_taskgroup_07: cancelling the awaiting task
/// cancels the body and all children and waits for their cleanups.
#[tokio::test(start_paused = true)]
async fn cancelling_the_awaiting_task_cancels_everything_and_waits() {
    let log = log();
    let (l1, l2) = (log.clone(), log.clone());
    let outer = asyncio::create_task(asyncio::task_group(move |tg| async move {
        tg.create_task(asyncio::sleep(10).on_cancel(move || async move {
            asyncio::sleep(1).await;
            push(&l1, "child");
        }));
        asyncio::sleep(10)
            .on_cancel(move || async move {
                asyncio::sleep(0.5).await;
                push(&l2, "body");
            })
            .await;
    }));
    asyncio::sleep(0.1).await;
    let r = outer.to_ref();
    assert!(r.cancel());
    asyncio::sleep(0.9).await;
    assert!(
        !r.done(),
        "the group is still waiting for the child's cleanup"
    );
    let err = outer.await.unwrap_err();
    assert!(err.is_cancelled());
    let mut e = entries(&log);
    e.sort();
    assert_eq!(e, ["body", "child"]);
}

/// test_taskgroup_08: errors take priority over an outside cancel.
#[tokio::test(start_paused = true)]
async fn a_failure_during_an_outside_cancel_is_reported_as_a_group_error() {
    let outer = asyncio::create_task(asyncio::task_group(|tg| async move {
        tg.create_task(asyncio::sleep(10).on_cancel(|| async { panic!("cleanup failed") }));
        asyncio::sleep(10).await;
    }));
    asyncio::sleep(0.1).await;
    outer.cancel();
    let r = outer.await.unwrap();
    assert_eq!(messages(&r.unwrap_err()), ["task panicked: cleanup failed"]);
}

/// Every child ends exactly once, and every cleanup runs exactly once, when
/// a child failure races the other children finishing and cleaning up, on
/// the multi-thread runtime.
#[test]
fn failures_racing_completions_end_each_child_once_and_clean_up_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for round in 0..200 {
            let ended = Arc::new(AtomicUsize::new(0));
            let cleaned = Arc::new(AtomicUsize::new(0));
            let polled = Arc::new(AtomicUsize::new(0));
            let returned = Arc::new(AtomicUsize::new(0));
            let (e, c, p, rd) = (
                ended.clone(),
                cleaned.clone(),
                polled.clone(),
                returned.clone(),
            );
            let r = asyncio::task_group(move |tg| async move {
                for i in 0..8 {
                    let (c, p, rd) = (c.clone(), p.clone(), rd.clone());
                    let t = tg.create_task(async move {
                        let v = async move {
                            // Counted once the protected future started:
                            // from then on it returns or cleans up.
                            p.fetch_add(1, Ordering::SeqCst);
                            for _ in 0..(i + round) % 4 {
                                tokio::task::yield_now().await;
                            }
                        }
                        .on_cancel(move || async move {
                            tokio::task::yield_now().await;
                            c.fetch_add(1, Ordering::SeqCst);
                        })
                        .await;
                        rd.fetch_add(1, Ordering::SeqCst);
                        v
                    });
                    let e = e.clone();
                    t.add_done_callback(move |_| {
                        e.fetch_add(1, Ordering::SeqCst);
                    });
                }
                tg.create_task(async move {
                    for _ in 0..round % 3 {
                        tokio::task::yield_now().await;
                    }
                    panic!("racing failure");
                });
            })
            .await;
            assert!(r.unwrap_err().is_group());
            // Callbacks run after the end, possibly on another worker:
            // wait for them through the counter, not a bounded loop.
            while ended.load(Ordering::SeqCst) < 8 {
                tokio::task::yield_now().await;
            }
            assert_eq!(ended.load(Ordering::SeqCst), 8);
            let polled = polled.load(Ordering::SeqCst);
            let done = cleaned.load(Ordering::SeqCst) + returned.load(Ordering::SeqCst);
            // Every protected future that started returned or cleaned up;
            // none did both or cleaned up twice (at most one a child). One
            // never polled may still clean up: the cancel came between its
            // registration and its first poll.
            assert!(
                done >= polled && done <= 8,
                "round {round}: {done} vs {polled}"
            );
        }
        assert!(asyncio::all_tasks().is_empty());
    });
}

/// test_taskgroup_17: a cancel that arrives while the group waits for its
/// children (the body already returned) cancels them, waits for their
/// cleanups, and ends the group with the cancellation, not the body's value.
#[tokio::test(start_paused = true)]
async fn a_cancel_while_the_group_waits_for_its_children_ends_it_cancelled() {
    let log = log();
    let l = log.clone();
    let scope = asyncio::timeout(1);
    let r = scope
        .run(asyncio::task_group(move |tg| async move {
            tg.create_task(asyncio::sleep(10).on_cancel(move || async move {
                asyncio::sleep(0.1).await;
                push(&l, "child cleaned up");
            }));
            "body value"
        }))
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(entries(&log), ["child cleaned up"]);
}

/// A `create_task` that panics because it is called outside any runtime (a
/// clone of the group sent to a plain thread) leaves no phantom child
/// behind: the group still ends when its body and real children have.
#[tokio::test(start_paused = true)]
async fn a_create_task_that_panics_outside_a_runtime_does_not_keep_the_group_waiting() {
    let group = asyncio::task_group(|tg| async move {
        let child = tg.create_task(asyncio::sleep_with(1, 2));
        let t = tg.clone();
        let panicked = std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                t.create_task(async {});
            }))
            .is_err()
        })
        .join()
        .unwrap();
        assert!(panicked, "create_task outside a runtime must panic");
        child
    });
    let child = tokio::time::timeout(Duration::from_secs(60), group)
        .await
        .expect("the group waited for a child that was never spawned")
        .unwrap();
    assert_eq!(child.result().unwrap(), 2);
}

/// Children that join after others have ended (and taken their places in
/// the group's table) are the ones a later failure cancels; the ended ones
/// keep their results.
#[tokio::test(start_paused = true)]
async fn a_failure_cancels_the_children_that_joined_after_others_ended() {
    let seen: Arc<Mutex<(Vec<TaskRef>, Vec<TaskRef>)>> = Arc::default();
    let s = seen.clone();
    let t0 = Instant::now();
    let r = asyncio::task_group(|tg| async move {
        for i in 0..3 {
            let t = tg.create_task(async move { i });
            while !t.done() {
                asyncio::sleep(0).await;
            }
            s.lock().unwrap().0.push(t.to_ref());
        }
        for _ in 0..3 {
            let t = tg.create_task(asyncio::sleep(10));
            s.lock().unwrap().1.push(t.to_ref());
        }
        asyncio::sleep(1).await;
        tg.create_task(async { panic!("boom") });
        asyncio::sleep(10).await;
    })
    .await;
    assert_eq!(messages(&r.unwrap_err()), ["task panicked: boom"]);
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    let (ended, later) = &*seen.lock().unwrap();
    assert!(ended.iter().all(|t| t.done() && !t.cancelled()));
    assert_eq!(later.len(), 3);
    assert!(later.iter().all(|t| t.cancelled()));
}

// A multi-thread runtime of two workers: the body's children run on the
// other worker while it creates more, and the group watches them after the
// body's poll (`Shared::watch` in `src/scope/task_group.rs`).
use common::multi_thread_runtime as two_workers;

/// Children that ended, returning or failing, before the group watched
/// them are counted and their failures reported, also past the batch the
/// body's poll holds (1024), each once.
#[test]
fn children_ended_before_the_late_watch_are_counted_and_their_failures_kept() {
    two_workers().block_on(async {
        for _ in 0..20 {
            let r = asyncio::task_group(|tg| async move {
                for i in 0..3000 {
                    // Refused once the group saw a failure.
                    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        match i % 1000 {
                            999 => tg.try_create_task(async move {
                                Err::<usize, _>(std::io::Error::other(format!("bad {i}")))
                            }),
                            _ => tg.create_task(async move { i }),
                        };
                    }));
                    if made.is_err() {
                        break;
                    }
                }
            })
            .await;
            // Which failure the group sees first depends on which worker
            // ran which child when (a failing child still running at its
            // batch's watch is seen through its callback, later); the
            // others may be reported too, or end cancelled. Each failure
            // is reported once, and nothing else is.
            let errors = messages(&r.unwrap_err());
            assert!(!errors.is_empty());
            for (k, e) in errors.iter().enumerate() {
                assert!(
                    ["bad 999", "bad 1999", "bad 2999"].contains(&e.as_str()),
                    "{errors:?}"
                );
                assert!(!errors[..k].contains(e), "reported twice: {errors:?}");
            }
        }
    });
}

/// The group's done callback runs before those the body added to a child
/// in the same poll, as when the group registered it at the spawn: a
/// callback of the body sees the group already shutting down (or done).
#[test]
fn the_groups_callback_runs_before_the_bodys_on_a_late_watched_child() {
    two_workers().block_on(async {
        let go = Arc::new(asyncio::Event::new());
        let seen = Arc::new(Mutex::new(String::new()));
        let (g, s) = (go.clone(), seen.clone());
        let r = asyncio::task_group(|tg| async move {
            let t = tg.create_task(async move {
                g.wait().await;
                panic!("boom");
            });
            let tg2 = tg.clone();
            t.add_done_callback(move |_| *s.lock().unwrap() = format!("{tg2:?}"));
            // The child fails only after this poll (in which the group
            // watches it): a child that ends during the poll that made it
            // has run its callbacks before the group learns of its end.
            asyncio::sleep(0).await;
            go.set();
            asyncio::sleep(10).await;
        })
        .await;
        assert_eq!(messages(&r.unwrap_err()), ["task panicked: boom"]);
        // The group's callback, first, may end the group while the child's
        // worker is still about to run the body's: wait for it (bounded).
        let start = std::time::Instant::now();
        while seen.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(10) {
            tokio::task::yield_now().await;
        }
        // Not `Open`: the group's callback ran first (the group may even
        // have finished by the time the body's runs, on another worker).
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.contains("ShuttingDown") || seen.contains("Finished"),
            "{seen}"
        );
    });
}

/// A failure (from a child created outside the body's poll, watched at
/// once) while the body creates children cancels every one of them, the
/// ones not watched yet included: the group ends.
#[test]
fn a_failure_racing_the_bodys_creation_cancels_every_child() {
    two_workers().block_on(async {
        for round in 0..100 {
            let r = tokio::time::timeout(
                Duration::from_secs(20),
                asyncio::task_group(|tg| async move {
                    let t = tg.clone();
                    tokio::spawn(async move {
                        for _ in 0..round % 5 {
                            tokio::task::yield_now().await;
                        }
                        t.create_task(async { panic!("racing failure") });
                    });
                    for _ in 0..500 {
                        // Refused once the group is shutting down.
                        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            tg.create_task(asyncio::sleep(1000));
                        }));
                        if made.is_err() {
                            break;
                        }
                    }
                    asyncio::sleep(1000).await;
                }),
            )
            .await
            .expect("the group must end: every child cancelled");
            assert!(r.unwrap_err().is_group(), "round {round}");
        }
    });
}

/// A child's output whose destructor panics, dropped by the group: the
/// body dropped its handle after the child ended, so the group's late
/// watch holds the last reference to the child. The panic is reported, not
/// thrown into the task awaiting the group, and the group ends `Ok`.
#[test]
fn a_childs_output_destructor_panicking_when_the_group_lets_it_go_is_contained() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("output destructor");
        }
    }
    two_workers().block_on(async {
        for _ in 0..50 {
            let r = asyncio::task_group(|tg| async move {
                let t = tg.create_task(async { PanicOnDrop });
                // Same poll: wait for the child to end on the other worker.
                let start = std::time::Instant::now();
                while !t.done() && start.elapsed() < Duration::from_secs(5) {
                    std::thread::yield_now();
                }
                drop(t);
            })
            .await;
            assert!(r.is_ok(), "{r:?}");
        }
    });
}
