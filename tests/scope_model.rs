//! The cancel scopes against a reference model (property test).
//!
//! proptest generates random trees: a root task whose future nests
//! `on_cancel` / `finally` wrappers, `timeout` scopes (a deadline or none,
//! some moved by `reschedule` from another task while they run), task
//! groups (children that return, panic, or fail through
//! `try_create_task`'s `Err`, and bodies that panic), tasks created and
//! awaited by value, and cancels of chosen tasks at chosen times. The leaf
//! work is `asyncio::sleep`, and every cleanup awaits a sleep of its own.
//! Each tree runs on a current-thread runtime with Tokio's paused clock and
//! records what happened, with the time: each task's start and end (and how
//! it ended), each cleanup's start and end, what each timeout scope, group
//! and by-value await returned. [`Model`] computes the same record from
//! the tree alone, following the rules of the scopes (the crate docs of
//! `on_cancel`, `timeout`, `task_group` and `docs/differences.md`, which
//! follow Python 3.13's asyncio where nothing else is said); the two must
//! be equal, each cleanup must have run at most once, `all_tasks()` must be
//! empty at the end and nothing may have been reported.
//!
//! Times are whole milliseconds drawn at random, so that two timers rarely
//! fire at the same instant. Where the outcome would depend on the order of
//! two events at one instant (a cancel landing just as a sleep ends), the
//! model says so and the case is discarded (about 1 tree in 100), rather
//! than guessing an order the crate does not promise. The model names each
//! rule it applies, and a second test checks that the generated trees reach
//! every one of them.
//!
//! Not covered: cancels arriving from another thread (`tests/stress.rs`,
//! `tests/on_cancel.rs` race those), scopes inside cleanups, `wait_for`,
//! `shield`, a by-value await of a task that enters its first scope after
//! the await began (every awaited task here enters a scope at its first
//! poll; `tests/on_cancel.rs` covers the later case), and `create_task` on
//! a group that is shutting down.
//!
//! `PROPTEST_CASES` sets the number of cases (1000 by default). A failure
//! prints the smallest tree found (no regressions file is written: turn a
//! failure into a named test in `tests/on_cancel.rs`, `tests/timeout.rs` or
//! `tests/task_group.rs`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asyncio::{Error, TaskRef};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::time::Instant;

/// Milliseconds since the case started.
type Ms = u64;

fn ms(n: Ms) -> Duration {
    Duration::from_millis(n)
}

// ------------------------------------------------------------------ trees

/// What a task's or a scope's future does.
#[derive(Clone, Debug)]
enum Node {
    /// `asyncio::sleep`.
    Sleep(Ms),
    /// One after the other.
    Seq(Vec<Node>),
    /// `on_cancel(body, cleanup)`; the cleanup sleeps `cleanup` ms.
    OnCancel {
        id: usize,
        body: Box<Node>,
        cleanup: Ms,
    },
    /// `finally(body, cleanup)`.
    Finally {
        id: usize,
        body: Box<Node>,
        cleanup: Ms,
    },
    /// `timeout(delay).run(body)`; `resched: (at, new)`: at `at` ms after
    /// the scope was made, another task moves its deadline to `new` ms
    /// after that (`None`: no deadline).
    Timeout {
        id: usize,
        delay: Option<Ms>,
        resched: Option<(Ms, Option<Ms>)>,
        body: Box<Node>,
    },
    /// `task_group`: the body creates `children`, runs `body`, then panics
    /// if `body_panics`.
    Group {
        id: usize,
        body: Box<Node>,
        body_panics: bool,
        children: Vec<TaskSpec>,
    },
    /// `create_task(task)` and `task.await` by value.
    Await { id: usize, task: Box<TaskSpec> },
}

/// A task: runs `body`, then ends as `end` says.
#[derive(Clone, Debug)]
struct TaskSpec {
    id: usize,
    body: Node,
    end: End,
    /// Another task cancels this one so many ms after its creation.
    cancel_after: Option<Ms>,
    /// The body runs inside an `on_cancel` with an empty cleanup, so that
    /// the task has a cancel scope from its first poll on.
    wrapped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Return,
    Panic,
    /// `Err` of a `try_create_task` child.
    Fail,
}

/// Gives every scope and task its own number, in tree order.
fn number(node: &mut Node, next: &mut usize) {
    let mut take = || {
        *next += 1;
        *next
    };
    match node {
        Node::Sleep(_) => {}
        Node::Seq(nodes) => nodes.iter_mut().for_each(|n| number(n, next)),
        Node::OnCancel { id, body, .. }
        | Node::Finally { id, body, .. }
        | Node::Timeout { id, body, .. } => {
            *id = take();
            number(body, next);
        }
        Node::Group {
            id, body, children, ..
        } => {
            *id = take();
            for c in children {
                number_task(c, next);
            }
            number(body, next);
        }
        Node::Await { id, task } => {
            *id = take();
            number_task(task, next);
        }
    }
}

fn number_task(task: &mut TaskSpec, next: &mut usize) {
    *next += 1;
    task.id = *next;
    number(&mut task.body, next);
}

// ------------------------------------------------------------ what we see

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum How {
    Returned,
    Panicked,
    Failed,
    Cancelled,
}

/// One failure in a group's `ExceptionGroup`: who, and how.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    Panic(String),
    Fail(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    TaskStart(usize),
    TaskEnd(usize, How),
    CleanupStart(usize),
    CleanupEnd(usize),
    /// `Ok`, with `expired()`.
    TimeoutOk(usize, bool),
    TimeoutErr(usize),
    GroupOk(usize),
    GroupErr(usize, Vec<Failure>),
    /// What `task.await` returned.
    Awaited(usize, How),
    /// (Model only.) A timer fires: a sleep ends, a cleanup's sleep ends,
    /// a canceller or a rescheduler wakes up, a deadline fires.
    Timer,
}

/// Everything that happened, with its time, sorted (the order of events at
/// one instant is not compared: only causes and effects at distinct times).
type Record = Vec<(Ms, Ev)>;

// ------------------------------------------------------------- the model

/// How a node's future ended.
#[derive(Clone, Copy, Debug)]
enum Exit {
    /// It returned, at this time.
    Value(Ms),
    /// A cancellation went through it: everything inside had cleaned up by
    /// this time, and the cancellation goes on to the enclosing scope.
    Cancelled(Ms),
}

impl Exit {
    fn at(self) -> Ms {
        match self {
            Exit::Value(t) | Exit::Cancelled(t) => t,
        }
    }
}

/// What the scope a node starts in does to it.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// It runs; the enclosing scope is cancelled at this time, if ever.
    Runs(Option<Ms>),
    /// The enclosing scope (not a task's root) is cancelled already: a
    /// scope that registers now is cancelled at once (`node.rs`
    /// invariant 2), and an `on_cancel` entered so runs its cleanup without
    /// polling its future (invariant 6).
    Already,
    /// The enclosing scope is a task's root, cancelled, whose last cleanup
    /// ended: the task is being aborted, its future is dropped when this
    /// poll returns, and a scope that registers now is refused
    /// (invariant 7: an `on_cancel` never polls its future, and runs no
    /// cleanup where asyncio would run the handler: `docs/differences.md`,
    /// "A cleanup belongs to an `on_cancel` that was entered").
    Doomed,
    /// Polled once, inside a scope that is dropped from outside when this
    /// poll returns: no cleanup runs.
    Dropped,
}

/// One run of a node.
struct Run {
    exit: Exit,
    record: Record,
}

/// One run of a task.
struct TaskRun {
    end: Ms,
    how: How,
    record: Record,
}

/// The rules, as a pure function of the tree. `tie` is set when the outcome
/// could depend on the order of two events at the same instant; and the
/// model lists every timer that fires (`Ev::Timer`): a case where two fire
/// at one instant is discarded too. So everything that happens at one
/// instant is the consequence of one timer, in an order the crate fixes
/// (a cancel reaches the scopes, the cleanups start, the tasks without
/// cleanups end), and "a cancellation at `c` reached a node that ended at
/// `c`" means that it ended because of it.
#[derive(Default)]
struct Model {
    tie: Cell<bool>,
    /// The rules applied (for the test that the trees reach them all).
    rules: RefCell<BTreeSet<&'static str>>,
}

impl Model {
    fn rule(&self, name: &'static str) {
        self.rules.borrow_mut().insert(name);
    }

    /// `a` comes strictly before `b`; a tie is noted.
    fn before(&self, a: Ms, b: Ms) -> bool {
        if a == b {
            self.tie.set(true);
        }
        a < b
    }

    /// A cancellation at `c` reached a node before it ended at `end`, or
    /// ended it.
    fn reached(c: Option<Ms>, end: Ms) -> bool {
        c.is_some_and(|c| c <= end)
    }

    /// The fate of a node started at `t` after a sibling returned, in a
    /// scope that the parent's fate `fate` describes (`root`: a task's root).
    fn later(&self, fate: Fate, t: Ms, root: bool) -> Fate {
        match fate {
            Fate::Runs(Some(c)) if c == t => {
                self.tie.set(true);
                fate
            }
            // The sibling returned a value after the cancellation (a
            // `finally` cleanup, or an awaited task, ran past it: invariant
            // 5, the value wins), so this node starts in a cancelled scope.
            Fate::Runs(Some(c)) if c < t => {
                if root {
                    self.rule("starts in a doomed root");
                    Fate::Doomed
                } else {
                    self.rule("starts in a cancelled scope");
                    Fate::Already
                }
            }
            Fate::Runs(c) => Fate::Runs(c),
            _ => unreachable!("no node returns a value under {fate:?}"),
        }
    }

    fn task(&self, spec: &TaskSpec, t0: Ms, outside: Option<Ms>) -> TaskRun {
        let own = spec.cancel_after.map(|k| t0 + k);
        if own.is_some() && own == outside {
            self.tie.set(true);
        }
        let cancel = min(outside, own);
        if cancel == Some(t0) {
            // Cancelled in the instant it is made: only after two events
            // at one instant (a cancel and a sleep's end), a discarded case.
            self.tie.set(true);
            return TaskRun {
                end: t0,
                how: How::Cancelled,
                record: vec![(t0, Ev::TaskEnd(spec.id, How::Cancelled))],
            };
        }
        let mut record = vec![(t0, Ev::TaskStart(spec.id))];
        // A wrapped body's enclosing scope is the wrapper, not the root; the
        // wrapper's cleanup is empty and takes no time.
        let run = self.eval(&spec.body, t0, Fate::Runs(cancel), !spec.wrapped);
        record.extend(run.record);
        let (end, how) = match run.exit {
            // A value (or the panic, or the `Err`, that follows it) wins
            // over a cancel that came meanwhile (invariant 5).
            Exit::Value(t) => (
                {
                    if Self::reached(cancel, t) {
                        self.rule("task returns after its cancel");
                    }
                    t
                },
                match spec.end {
                    End::Return => How::Returned,
                    End::Panic => How::Panicked,
                    End::Fail => How::Failed,
                },
            ),
            Exit::Cancelled(t) => (t, How::Cancelled),
        };
        record.push((end, Ev::TaskEnd(spec.id, how)));
        if let Some(k) = own.filter(|&k| k <= end) {
            record.push((k, Ev::Timer)); // the canceller, while the task runs
        }
        TaskRun { end, how, record }
    }

    /// A task created at `t0` that is dropped unpolled.
    fn unstarted(&self, spec: &TaskSpec, t0: Ms) -> Record {
        self.rule("task dropped unpolled with its maker");
        vec![(t0, Ev::TaskEnd(spec.id, How::Cancelled))]
    }

    fn eval(&self, node: &Node, t0: Ms, fate: Fate, root: bool) -> Run {
        let done = |exit, record| Run { exit, record };
        match node {
            Node::Sleep(d) => match fate {
                Fate::Runs(Some(c)) if c == t0 || self.before(c, t0 + d) => {
                    done(Exit::Cancelled(c), vec![])
                }
                Fate::Runs(_) => done(Exit::Value(t0 + d), vec![(t0 + d, Ev::Timer)]),
                _ => done(Exit::Cancelled(t0), vec![]),
            },
            Node::Seq(nodes) => {
                let (mut t, mut record) = (t0, vec![]);
                for (i, n) in nodes.iter().enumerate() {
                    let f = if i == 0 {
                        fate
                    } else {
                        self.later(fate, t, root)
                    };
                    let run = self.eval(n, t, f, root);
                    record.extend(run.record);
                    match run.exit {
                        Exit::Value(t1) => t = t1,
                        cancelled => return done(cancelled, record),
                    }
                }
                done(Exit::Value(t), record)
            }
            Node::OnCancel { id, body, cleanup } | Node::Finally { id, body, cleanup } => {
                let always = matches!(node, Node::Finally { .. });
                let clean = |t: Ms, record: &mut Record| {
                    record.push((t, Ev::CleanupStart(*id)));
                    record.push((t + cleanup, Ev::CleanupEnd(*id)));
                    record.push((t + cleanup, Ev::Timer));
                    t + cleanup
                };
                match fate {
                    Fate::Doomed => {
                        self.rule("on_cancel refused by a doomed root");
                        done(Exit::Cancelled(t0), vec![])
                    }
                    Fate::Dropped => {
                        self.rule("on_cancel dropped from outside");
                        let run = self.eval(body, t0, Fate::Dropped, false);
                        done(Exit::Cancelled(t0), run.record)
                    }
                    Fate::Already => {
                        self.rule("on_cancel entered cancelled cleans up at once");
                        let mut record = vec![];
                        let t = clean(t0, &mut record);
                        done(Exit::Cancelled(t), record)
                    }
                    Fate::Runs(c) => {
                        let mut run = self.eval(body, t0, Fate::Runs(c), false);
                        run.exit = match run.exit {
                            Exit::Value(t) if !always => Exit::Value(t),
                            // `finally` after a normal end: the cleanup runs
                            // shielded, a cancel meanwhile waits for it.
                            Exit::Value(t) => {
                                let end = clean(t, &mut run.record);
                                if c.is_some_and(|c| t < c && c < end) {
                                    self.rule("finally cleanup outlives a cancel");
                                }
                                Exit::Value(end)
                            }
                            // Innermost first: the body's cleanups ended.
                            Exit::Cancelled(t) => {
                                self.rule("cleanup after a cancel");
                                Exit::Cancelled(clean(t, &mut run.record))
                            }
                        };
                        run
                    }
                }
            }
            Node::Timeout {
                id,
                delay,
                resched,
                body,
            } => {
                let c = match fate {
                    Fate::Doomed | Fate::Dropped => {
                        self.rule("timeout dropped from outside");
                        // The scope polls its future before it registers,
                        // so the future's first poll happens, and then all
                        // of it is dropped.
                        let run = self.eval(body, t0, Fate::Dropped, false);
                        return done(Exit::Cancelled(t0), run.record);
                    }
                    // It polls its future once, and registers with the
                    // cancelled scope (so is cancelled) as soon as a scope
                    // inside asks for it, or after that poll: a scope its
                    // future enters in that poll finds it cancelled already.
                    Fate::Already => {
                        self.rule("timeout entered cancelled");
                        let run = self.eval(body, t0, Fate::Already, false);
                        return done(Exit::Cancelled(run.exit.at()), run.record);
                    }
                    Fate::Runs(c) => c,
                };
                let first = delay.map(|d| t0 + d);
                let deadline = match *resched {
                    // Moved before it fired: a deadline already past fires
                    // at once.
                    Some((at, new)) if first.is_none_or(|d| self.before(t0 + at, d)) => {
                        self.rule("timeout rescheduled");
                        new.map(|n| (t0 + n).max(t0 + at))
                    }
                    // Moved after it fired (or never ran so long): no effect.
                    _ => first,
                };
                let mut run = self.eval(body, t0, Fate::Runs(min(c, deadline)), false);
                let t1 = run.exit.at();
                let expired = deadline.is_some_and(|d| d <= t1);
                if let Some(d) = deadline.filter(|_| expired) {
                    run.record.push((d, Ev::Timer));
                }
                if let Some((at, _)) = resched.filter(|&(at, _)| t0 + at <= t1) {
                    run.record.push((t0 + at, Ev::Timer));
                }
                run.exit = match run.exit {
                    // A result that raced the deadline is kept.
                    Exit::Value(t) => {
                        self.rule(if expired {
                            "timeout keeps a value that raced its deadline"
                        } else {
                            "timeout returns a value"
                        });
                        run.record.push((t, Ev::TimeoutOk(*id, expired)));
                        Exit::Value(t)
                    }
                    // Cancelled from outside (also when its own deadline
                    // fired first): the cancellation goes on.
                    Exit::Cancelled(t) if Self::reached(c, t) => {
                        self.rule(if expired {
                            "timeout expired and cancelled from outside passes it on"
                        } else {
                            "timeout cancelled from outside passes it on"
                        });
                        Exit::Cancelled(t)
                    }
                    Exit::Cancelled(t) => {
                        self.rule("timeout expires");
                        assert!(expired, "cancelled by nothing");
                        run.record.push((t, Ev::TimeoutErr(*id)));
                        Exit::Value(t)
                    }
                };
                run
            }
            Node::Group {
                id,
                body,
                body_panics,
                children,
            } => match fate {
                // Refused by the doomed root, the group still runs its
                // body's first poll (which makes the children), as a doomed
                // scope: what registers inside is refused too. The drop
                // then cancels the children, unpolled.
                Fate::Doomed | Fate::Dropped => {
                    self.rule("group dropped from outside");
                    let mut record: Record = children
                        .iter()
                        .flat_map(|c| self.unstarted(c, t0))
                        .collect();
                    let inner = if matches!(fate, Fate::Doomed) {
                        Fate::Doomed
                    } else {
                        Fate::Dropped
                    };
                    record.extend(self.eval(body, t0, inner, false).record);
                    done(Exit::Cancelled(t0), record)
                }
                // Registers, is cancelled at once, and never polls its body.
                Fate::Already => {
                    self.rule("group entered cancelled never polls its body");
                    done(Exit::Cancelled(t0), vec![])
                }
                Fate::Runs(c) => self.group(*id, body, *body_panics, children, t0, c),
            },
            Node::Await { id, task } => match fate {
                Fate::Runs(c) => {
                    // The task enters its wrapper scope at its first poll,
                    // before the await: the await passes a cancellation of
                    // the awaiter on, and waits for the task's end.
                    let run = self.task(task, t0, c);
                    let mut record = run.record;
                    if run.how == How::Cancelled && Self::reached(c, run.end) {
                        self.rule("await passes the cancel on and waits");
                        return done(Exit::Cancelled(run.end), record);
                    }
                    if Self::reached(c, run.end) {
                        self.rule("await returns what the task returned after the cancel");
                    }
                    // The awaited task returned (or panicked) although the
                    // awaiter was cancelled meanwhile: the await returns it.
                    record.push((run.end, Ev::Awaited(*id, run.how)));
                    done(Exit::Value(run.end), record)
                }
                // The task is made, and cancelled unpolled when the await is
                // dropped.
                _ => done(Exit::Cancelled(t0), self.unstarted(task, t0)),
            },
        }
    }

    /// A group that runs, its enclosing scope cancelled at `c` (if ever).
    fn group(
        &self,
        id: usize,
        body: &Node,
        body_panics: bool,
        children: &[TaskSpec],
        t0: Ms,
        c: Option<Ms>,
    ) -> Run {
        // Runs the children (made by the body's first poll) and the body,
        // each cancelled at its time; the body's panic follows its value.
        let pass = |cancel: &dyn Fn(Option<usize>) -> Option<Ms>| {
            let kids: Vec<TaskRun> = children
                .iter()
                .enumerate()
                .map(|(i, spec)| self.task(spec, t0, cancel(Some(i))))
                .collect();
            let body = self.eval(body, t0, Fate::Runs(cancel(None)), false);
            (kids, body)
        };
        let failures = |kids: &[TaskRun], body: &Run| {
            let mut f: Vec<(Ms, Option<usize>)> = kids
                .iter()
                .enumerate()
                .filter(|(_, k)| matches!(k.how, How::Panicked | How::Failed))
                .map(|(i, k)| (k.end, Some(i)))
                .collect();
            if let (true, Exit::Value(t)) = (body_panics, body.exit) {
                f.push((t, None));
            }
            f.sort();
            for w in f.windows(2) {
                if w[0].0 == w[1].0 {
                    self.tie.set(true);
                }
            }
            f
        };
        // First pass: nothing failed yet; the first failure shuts the group
        // down (unless the enclosing cancellation came first).
        let (kids, body_run) = pass(&|_| c);
        let first = failures(&kids, &body_run)
            .first()
            .copied()
            .filter(|&(f, _)| c.is_none_or(|c| self.before(f, c)));
        let (kids, body_run) = match first {
            None => (kids, body_run),
            // Second pass: everyone but the first to fail is cancelled at
            // that failure (the same as before it).
            Some((f, who)) => pass(&|me| if me == who { c } else { min(c, Some(f)) }),
        };
        let mut record: Record = kids.iter().flat_map(|k| k.record.clone()).collect();
        record.extend(body_run.record.clone());
        let end = kids
            .iter()
            .map(|k| k.end)
            .chain([body_run.exit.at()])
            .max()
            .unwrap_or(t0);
        // Every failure, the children's in the order they happened, then
        // the body's.
        let all = failures(&kids, &body_run);
        let mut errors: Vec<Failure> = all
            .iter()
            .filter_map(|&(_, who)| who)
            .map(|i| {
                let name = format!("child {}", children[i].id);
                match kids[i].how {
                    How::Failed => Failure::Fail(name),
                    _ => Failure::Panic(name),
                }
            })
            .collect();
        if all.iter().any(|&(_, who)| who.is_none()) {
            self.rule("group body panics");
            errors.push(Failure::Panic(format!("body {id}")));
        }
        if errors.len() > 1 {
            self.rule("group reports several failures");
        }
        if first.is_some() {
            self.rule("group shuts down at its first failure");
        }
        let exit = if !errors.is_empty() {
            record.push((end, Ev::GroupErr(id, errors)));
            Exit::Value(end)
        } else if Self::reached(c, end) {
            // Cancelled from outside with nothing failed: it goes on.
            self.rule("group cancelled from outside passes it on");
            Exit::Cancelled(end)
        } else {
            self.rule("group returns the body's value");
            record.push((end, Ev::GroupOk(id)));
            Exit::Value(end)
        };
        Run { exit, record }
    }
}

fn min(a: Option<Ms>, b: Option<Ms>) -> Option<Ms> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

// ----------------------------------------------------------- the real run

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a run shares: the record and every task made.
#[derive(Clone)]
struct Env {
    origin: Instant,
    record: Arc<Mutex<Record>>,
    tasks: Arc<Mutex<Vec<TaskRef>>>,
}

impl Env {
    fn rec(&self, ev: Ev) {
        let since = self.origin.elapsed();
        assert_eq!(
            since.subsec_nanos() % 1_000_000,
            0,
            "the paused clock moves in whole milliseconds"
        );
        let t = since.as_millis() as Ms;
        self.record.lock().unwrap().push((t, ev));
    }
}

/// A `try_create_task` child's error.
#[derive(Debug)]
struct ChildError(usize);

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "child {}", self.0)
    }
}

impl std::error::Error for ChildError {}

fn exec(node: Node, env: Env) -> BoxFut<()> {
    Box::pin(async move {
        match node {
            Node::Sleep(d) => asyncio::sleep(ms(d)).await,
            Node::Seq(nodes) => {
                for n in nodes {
                    exec(n, env.clone()).await;
                }
            }
            Node::OnCancel { id, body, cleanup } => {
                asyncio::on_cancel(exec(*body, env.clone()), cleanup_of(id, cleanup, env)).await
            }
            Node::Finally { id, body, cleanup } => {
                asyncio::finally(exec(*body, env.clone()), cleanup_of(id, cleanup, env)).await
            }
            Node::Timeout {
                id,
                delay,
                resched,
                body,
            } => {
                let scope = asyncio::timeout(delay.map(ms));
                if let Some((at, new)) = resched {
                    let (s, made) = (scope.clone(), Instant::now());
                    tokio::spawn(async move {
                        tokio::time::sleep(ms(at)).await;
                        s.reschedule(new.map(|n| made + ms(n)));
                    });
                }
                match scope.run(exec(*body, env.clone())).await {
                    Ok(()) => env.rec(Ev::TimeoutOk(id, scope.expired())),
                    Err(e) => {
                        assert!(e.is_timeout(), "{e}");
                        env.rec(Ev::TimeoutErr(id));
                    }
                }
            }
            Node::Group {
                id,
                body,
                body_panics,
                children,
            } => {
                let e = env.clone();
                let r = asyncio::task_group(move |tg| async move {
                    for c in children {
                        spawn(c, Some(&tg), &e, None);
                    }
                    exec(*body, e).await;
                    if body_panics {
                        panic!("body {id}");
                    }
                })
                .await;
                match r {
                    Ok(()) => env.rec(Ev::GroupOk(id)),
                    Err(Error::Group(g)) => {
                        let errors = g
                            .errors()
                            .iter()
                            .map(|e| match e {
                                Error::Panicked(p) => Failure::Panic(p.message().to_owned()),
                                Error::Failed(f) => Failure::Fail(f.to_string()),
                                other => panic!("not a failure: {other:?}"),
                            })
                            .collect();
                        env.rec(Ev::GroupErr(id, errors));
                    }
                    Err(other) => panic!("a group returned {other:?}"),
                }
            }
            Node::Await { id, task } => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                // Dropping the join (the await) cancels the task.
                let join = spawn(*task, None, &env, Some(tx)).into_future();
                let _ = rx.await; // the task entered its scope
                let how = match join.await {
                    Ok(()) => How::Returned,
                    Err(e) if e.is_panic() => How::Panicked,
                    Err(e) if e.is_cancelled() => How::Cancelled,
                    Err(e) => panic!("an await returned {e:?}"),
                };
                env.rec(Ev::Awaited(id, how));
            }
        }
    })
}

fn cleanup_of(id: usize, d: Ms, env: Env) -> impl FnOnce() -> BoxFut<()> {
    move || {
        Box::pin(async move {
            env.rec(Ev::CleanupStart(id));
            asyncio::sleep(ms(d)).await;
            env.rec(Ev::CleanupEnd(id));
        })
    }
}

/// Makes the task `spec` (a child of `group`, or a plain task), records its
/// start and end, and starts its canceller.
fn spawn(
    spec: TaskSpec,
    group: Option<&asyncio::TaskGroup>,
    env: &Env,
    started: Option<tokio::sync::oneshot::Sender<()>>,
) -> asyncio::Task<()> {
    let TaskSpec {
        id,
        body,
        end,
        cancel_after,
        wrapped,
    } = spec;
    let e = env.clone();
    let inner = async move {
        if let Some(tx) = started {
            let _ = tx.send(());
        }
        e.rec(Ev::TaskStart(id));
        exec(body, e).await;
        match end {
            End::Return => Ok(()),
            End::Panic => panic!("child {id}"),
            End::Fail => Err(ChildError(id)),
        }
    };
    let fut: BoxFut<Result<(), ChildError>> = if wrapped {
        Box::pin(asyncio::on_cancel(inner, || async {}))
    } else {
        Box::pin(inner)
    };
    let task = match group {
        Some(tg) if end == End::Fail => tg.try_create_task(fut),
        Some(tg) => tg.create_task(async move { fut.await.expect("returns Ok") }),
        None => asyncio::create_task(async move { fut.await.expect("returns Ok") }),
    };
    let r = task.to_ref();
    env.tasks.lock().unwrap().push(r.clone());
    let e = env.clone();
    r.add_done_callback(move |t| {
        let how = if t.cancelled() {
            How::Cancelled
        } else {
            match t.exception() {
                Ok(None) => How::Returned,
                Ok(Some(Error::Panicked(_))) => How::Panicked,
                Ok(Some(Error::Failed(_))) => How::Failed,
                other => panic!("task {id} ended with {other:?}"),
            }
        };
        e.rec(Ev::TaskEnd(id, how));
    });
    if let Some(k) = cancel_after {
        tokio::spawn(async move {
            tokio::time::sleep(ms(k)).await;
            r.cancel();
        });
    }
    task
}

/// Waits until `t` ended and its done callbacks (registered before) ran.
async fn settle(t: &TaskRef) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    t.add_done_callback(move |_| {
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// What the exception handler was given (nothing is expected).
static REPORTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `root` on a fresh paused runtime; its record, sorted.
fn run_real(root: TaskSpec) -> Record {
    asyncio::set_exception_handler(Some(|ctx: &asyncio::ExceptionContext| {
        REPORTS.lock().unwrap().push(ctx.to_string());
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let record = Arc::new(Mutex::new(Vec::new()));
    let rec = record.clone();
    rt.block_on(async move {
        let env = Env {
            origin: Instant::now(),
            record: rec,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let root = spawn(root, None, &env, None);
        // Every task made ends (tasks may make tasks while we wait).
        let mut seen = 0;
        loop {
            let tasks: Vec<TaskRef> = env.tasks.lock().unwrap().clone();
            if tasks.len() == seen && tasks.iter().all(|t| t.done()) {
                break;
            }
            seen = tasks.len();
            for t in &tasks {
                settle(t).await;
            }
        }
        drop(root);
        assert!(
            asyncio::all_tasks().is_empty(),
            "tasks left: {:?}",
            asyncio::all_tasks()
        );
    });
    drop(rt);
    let mut record = std::mem::take(&mut *record.lock().unwrap());
    record.sort();
    record
}

fn run_model(root: &TaskSpec) -> Option<Record> {
    let model = Model::default();
    let mut record = model.task(root, 0, None).record;
    let mut timers: Vec<Ms> = record
        .iter()
        .filter(|(_, e)| *e == Ev::Timer)
        .map(|&(t, _)| t)
        .collect();
    timers.sort();
    if model.tie.get() || timers.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    record.retain(|(_, e)| *e != Ev::Timer);
    record.sort();
    Some(record)
}

/// Checks one tree: `Err` says what differs.
fn check(root: TaskSpec) -> Result<(), TestCaseError> {
    let Some(expected) = run_model(&root) else {
        return Err(TestCaseError::reject("two events at one instant"));
    };
    let got = run_real(root);
    let mut cleanups: Vec<usize> = got
        .iter()
        .filter_map(|(_, e)| match e {
            Ev::CleanupStart(id) => Some(*id),
            _ => None,
        })
        .collect();
    let n = cleanups.len();
    cleanups.sort();
    cleanups.dedup();
    prop_assert_eq!(cleanups.len(), n, "a cleanup ran twice");
    prop_assert_eq!(&got, &expected, "the crate (left) and the model (right)");
    let reports = std::mem::take(&mut *REPORTS.lock().unwrap());
    prop_assert!(reports.is_empty(), "reports: {:?}", reports);
    Ok(())
}

// -------------------------------------------------------------- strategies

fn end(fail: bool) -> impl Strategy<Value = End> {
    let fail_weight = if fail { 2 } else { 0 };
    prop_oneof![6 => Just(End::Return), 2 => Just(End::Panic), fail_weight => Just(End::Fail)]
}

fn task_spec(
    body: impl Strategy<Value = Node>,
    fail: bool,
    wrapped: Option<bool>,
) -> impl Strategy<Value = TaskSpec> {
    let wrapped = match wrapped {
        Some(w) => Just(w).boxed(),
        None => any::<bool>().boxed(),
    };
    (
        body,
        end(fail),
        proptest::option::weighted(0.5, 1..600u64),
        wrapped,
    )
        .prop_map(|(body, end, cancel_after, wrapped)| TaskSpec {
            id: 0,
            body,
            end,
            cancel_after,
            wrapped,
        })
}

fn tree() -> impl Strategy<Value = Node> {
    let leaf = (1..300u64).prop_map(Node::Sleep);
    leaf.prop_recursive(4, 24, 3, |inner| {
        let boxed = || inner.clone().prop_map(Box::new);
        prop_oneof![
            2 => prop::collection::vec(inner.clone(), 2..=3).prop_map(Node::Seq),
            // A `finally` whose long cleanup a cancellation often lands in,
            // so that what follows starts in a cancelled scope.
            2 => (1..100u64, 200..800u64, prop::collection::vec(inner.clone(), 1..=2)).prop_map(
                |(work, cleanup, rest)| {
                    let head = Node::Finally {
                        id: 0,
                        body: Box::new(Node::Sleep(work)),
                        cleanup,
                    };
                    Node::Seq([head].into_iter().chain(rest).collect())
                }
            ),
            2 => (boxed(), 1..400u64).prop_map(|(body, cleanup)| Node::OnCancel {
                id: 0,
                body,
                cleanup
            }),
            2 => (boxed(), 1..400u64).prop_map(|(body, cleanup)| Node::Finally {
                id: 0,
                body,
                cleanup
            }),
            2 => (
                boxed(),
                proptest::option::weighted(0.8, 1..400u64),
                proptest::option::weighted(
                    0.3,
                    (1..400u64, proptest::option::weighted(0.8, 1..400u64))
                ),
            )
                .prop_map(|(body, delay, resched)| Node::Timeout {
                    id: 0,
                    delay,
                    resched,
                    body
                }),
            2 => (
                boxed(),
                proptest::bool::weighted(0.15),
                prop::collection::vec(task_spec(inner.clone(), true, None), 0..=3),
            )
                .prop_map(|(body, body_panics, children)| Node::Group {
                    id: 0,
                    body,
                    body_panics,
                    children
                }),
            1 => task_spec(inner.clone(), false, Some(true))
                .prop_map(|task| Node::Await {
                    id: 0,
                    task: Box::new(task)
                }),
        ]
    })
}

fn root_task() -> impl Strategy<Value = TaskSpec> {
    task_spec(tree(), false, None).prop_map(|mut t| {
        number_task(&mut t, &mut 0);
        t
    })
}

#[test]
fn random_trees_of_scopes_do_what_the_model_says() {
    let config = Config {
        // 1000 cases take a few seconds in a debug build.
        cases: match std::env::var_os("PROPTEST_CASES") {
            Some(_) => Config::default().cases,
            None => 1000,
        },
        // No regressions file: a failure prints the smallest tree, to be
        // made a named test.
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&root_task(), check)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Every rule of the model is reached by some of the generated trees (so
/// the property above is not vacuous where it matters).
#[test]
fn the_generated_trees_reach_every_rule_of_the_model() {
    use proptest::strategy::ValueTree;
    const RULES: &[&str] = &[
        "starts in a doomed root",
        "starts in a cancelled scope",
        "task returns after its cancel",
        "task dropped unpolled with its maker",
        "on_cancel refused by a doomed root",
        "on_cancel entered cancelled cleans up at once",
        "finally cleanup outlives a cancel",
        "cleanup after a cancel",
        "timeout dropped from outside",
        "timeout entered cancelled",
        "timeout rescheduled",
        "timeout keeps a value that raced its deadline",
        "timeout returns a value",
        "timeout expired and cancelled from outside passes it on",
        "timeout cancelled from outside passes it on",
        "timeout expires",
        "group dropped from outside",
        "group entered cancelled never polls its body",
        "group body panics",
        "group reports several failures",
        "group shuts down at its first failure",
        "group cancelled from outside passes it on",
        "group returns the body's value",
        "await passes the cancel on and waits",
        "await returns what the task returned after the cancel",
    ];
    let mut runner = TestRunner::deterministic();
    let trees = root_task();
    let mut seen = BTreeSet::new();
    for _ in 0..3000 {
        let tree = trees.new_tree(&mut runner).unwrap().current();
        let model = Model::default();
        model.task(&tree, 0, None);
        seen.extend(model.rules.into_inner());
    }
    let missing: Vec<_> = RULES.iter().filter(|r| !seen.contains(*r)).collect();
    assert!(missing.is_empty(), "no tree reached {missing:?}");
    let unlisted: Vec<_> = seen.iter().filter(|r| !RULES.contains(r)).collect();
    assert!(unlisted.is_empty(), "rules not listed here: {unlisted:?}");
}

/// A task (id 1) cancelled while a `finally` cleanup (id 2) runs, that
/// then reaches `next` (ids from 3 on): the tree, numbered.
fn after_a_finally(wrapped: bool, next: Node) -> TaskSpec {
    let mut t = TaskSpec {
        id: 0,
        body: Node::Seq(vec![
            Node::Finally {
                id: 0,
                body: Box::new(Node::Sleep(10)),
                cleanup: 100,
            },
            next,
        ]),
        end: End::Return,
        cancel_after: Some(50), // during the cleanup
        wrapped,
    };
    number_task(&mut t, &mut 0);
    t
}

fn on_cancel(body: Node) -> Node {
    Node::OnCancel {
        id: 0,
        body: Box::new(body),
        cleanup: 7,
    }
}

/// Checks one fixed tree, which must be free of ties.
fn check_fixed(tree: TaskSpec) -> Record {
    let expected = run_model(&tree).expect("a tree without ties");
    check(tree).unwrap();
    expected
}

#[test]
fn an_on_cancel_reached_after_the_tasks_last_cleanup_is_refused() {
    let r = check_fixed(after_a_finally(false, on_cancel(Node::Sleep(5))));
    assert!(!r.iter().any(|(_, e)| *e == Ev::CleanupStart(3)), "{r:?}");
    assert!(r.contains(&(110, Ev::TaskEnd(1, How::Cancelled))), "{r:?}");
}

#[test]
fn an_on_cancel_in_a_timeout_reached_after_the_tasks_last_cleanup_runs_no_cleanup() {
    let next = Node::Timeout {
        id: 0,
        delay: Some(1000),
        resched: None,
        body: Box::new(on_cancel(Node::Sleep(5))),
    };
    let r = check_fixed(after_a_finally(false, next));
    assert!(!r.iter().any(|(_, e)| *e == Ev::CleanupStart(5)), "{r:?}");
}

#[test]
fn an_on_cancel_reached_in_a_cancelled_scope_cleans_up_at_once() {
    let r = check_fixed(after_a_finally(true, on_cancel(Node::Sleep(5))));
    assert!(r.contains(&(110, Ev::CleanupStart(3))), "{r:?}");
    assert!(r.contains(&(117, Ev::TaskEnd(1, How::Cancelled))), "{r:?}");
}

/// A task group inside a timeout scope, both entered after the task's
/// cancel while the task goes on (a `finally` cleanup outlived the cancel,
/// inside the task's own `on_cancel`): the timeout scope registers with the
/// cancelled scope as soon as the group asks for it, so the group finds it
/// cancelled, never polls its body and makes no child.
#[test]
fn a_group_in_a_timeout_entered_in_a_cancelled_scope_makes_no_child() {
    let next = Node::Timeout {
        id: 0,
        delay: None,
        resched: None,
        body: Box::new(Node::Group {
            id: 0,
            body: Box::new(Node::Sleep(1)),
            body_panics: false,
            children: vec![TaskSpec {
                id: 0,
                body: Node::Sleep(1),
                end: End::Return,
                cancel_after: None,
                wrapped: false,
            }],
        }),
    };
    let r = check_fixed(after_a_finally(true, next));
    assert!(!r.iter().any(|(_, e)| *e == Ev::TaskStart(5)), "{r:?}");
    assert!(
        !r.iter().any(|(_, e)| *e == Ev::TaskEnd(5, How::Cancelled)),
        "{r:?}"
    );
    assert!(r.contains(&(110, Ev::TaskEnd(1, How::Cancelled))), "{r:?}");
}
