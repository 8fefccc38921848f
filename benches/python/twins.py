"""CPython's side of the comparison: the workloads of `benches/python_twins.rs`,
line for line, with the same N, on asyncio's event loop (or uvloop's).

Everything runs under one `asyncio.run` (one thread: asyncio's event loop).
Each workload runs once to warm up, then `--reps` times (default 5), timed
from inside the main coroutine with `time.perf_counter_ns`. The garbage
collector keeps its defaults: it is part of what asyncio code pays.

Output, one line per workload, tab-separated, the same as the Rust side:

    twin <TAB> workload <TAB> N <TAB> ns per op of each rep, comma-separated

Needs Python 3.9 or later (`asyncio.to_thread`; the task group row needs
3.11 and is left out before); `--loop uvloop` needs
uvloop (`pip install uvloop`).

    python3 benches/python/twins.py [--loop asyncio|uvloop] [--reps 7] [--only queue_1_1]
"""

import argparse
import asyncio
import sys
import time

# Queue bound in the pipeline workloads (`asyncio::Queue::new(64)`).
QUEUE_MAXSIZE = 64
# Tasks contending for the lock.
LOCK_TASKS = 4


# ------------------------------------------------------------------ workloads


async def ident(i):
    return i


async def create_task_await(n):
    """`create_task` N times, then await each task in order."""
    tasks = [asyncio.create_task(ident(i)) for i in range(n)]
    for t in tasks:
        await t


async def gather(n):
    """`gather` of N coroutines (each becomes a task)."""
    results = await asyncio.gather(*map(ident, range(n)))
    assert len(results) == n


async def wait_for(n):
    """`wait_for` of a coroutine that returns at once, N times in a row."""
    for i in range(n):
        await asyncio.wait_for(ident(i), 1.0)


async def cancel_storm(n):
    """N tasks parked in `sleep(3600)`; each cancelled, then each awaited."""
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(n)]
    await asyncio.sleep(0)  # every task starts and parks
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the task was not cancelled")


def ident_blocking(i):
    return i


async def to_thread_sequential(n):
    """`to_thread` N times, one after the other (one thread handoff and back
    per call)."""
    for i in range(n):
        await asyncio.to_thread(ident_blocking, i)


async def to_thread_burst(n):
    """`gather` of N `to_thread` calls (all submitted at once)."""
    results = await asyncio.gather(*(asyncio.to_thread(ident_blocking, i) for i in range(n)))
    assert len(results) == n


async def producer(q, count):
    for i in range(count):
        await q.put(i)


async def consumer(q, count):
    for _ in range(count):
        await q.get()
        q.task_done()


async def queue_pipeline(n, producers, consumers):
    """N items through a bounded queue: `producers` tasks put, `consumers`
    tasks get (and `task_done`); the main task awaits them all, then `join`s."""
    q = asyncio.Queue(QUEUE_MAXSIZE)
    tasks = []
    for _ in range(consumers):
        tasks.append(asyncio.create_task(consumer(q, n // consumers)))
    for _ in range(producers):
        tasks.append(asyncio.create_task(producer(q, n // producers)))
    for t in tasks:
        await t
    await q.join()


async def lock_worker(lock, count):
    for _ in range(count):
        async with lock:
            await asyncio.sleep(0)  # yield while holding it: the others queue up


async def lock_contention(n):
    """`LOCK_TASKS` tasks taking the lock N times in all, each holding it
    across one `sleep(0)`."""
    lock = asyncio.Lock()
    tasks = [asyncio.create_task(lock_worker(lock, n // LOCK_TASKS)) for _ in range(LOCK_TASKS)]
    for t in tasks:
        await t


async def task_group_fan_out(n):
    """One task group with N children (each returns at once); the group waits
    for them all."""
    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            tg.create_task(ident(i))


# Name, N (operations per rep), workload. Same names, same N, same order as
# `WORKLOADS` in `benches/python_twins.rs`.
WORKLOADS = [
    ("create_task_await", 10_000, create_task_await),
    ("gather", 10_000, gather),
    ("wait_for", 10_000, wait_for),
    ("cancel_storm", 10_000, cancel_storm),
    ("to_thread_sequential", 1_000, to_thread_sequential),
    ("to_thread_burst", 1_000, to_thread_burst),
    ("queue_1_1", 20_000, lambda n: queue_pipeline(n, 1, 1)),
    ("queue_4_4", 20_000, lambda n: queue_pipeline(n, 4, 4)),
    ("lock_contention", 10_000, lock_contention),
    ("task_group_fan_out", 10_000, task_group_fan_out),
]


# -------------------------------------------------------------------- harness


async def main(args):
    for name, n, work in WORKLOADS:
        if args.only and name not in args.only:
            continue
        if name == "task_group_fan_out" and not hasattr(asyncio, "TaskGroup"):
            print("# %s left out: asyncio.TaskGroup needs Python 3.11" % name, flush=True)
            continue
        if args.reps == 0:
            await work(n // 100)  # `--test`: once, small
            continue
        await work(n)  # warm-up
        samples = []
        for _ in range(args.reps):
            start = time.perf_counter_ns()
            await work(n)
            samples.append("%.1f" % ((time.perf_counter_ns() - start) / n))
        print("twin\t%s\t%d\t%s" % (name, n, ",".join(samples)), flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", action="append", default=[], metavar="WORKLOAD")
    parser.add_argument("--test", action="store_true", help="each workload once, small")
    args = parser.parse_args()
    names = [w[0] for w in WORKLOADS]
    for name in args.only:
        if name not in names:
            parser.error("--only %s: no such workload; the workloads are: %s" % (name, ", ".join(names)))
    if args.test:
        args.reps = 0
    return args


if __name__ == "__main__":
    if sys.version_info < (3, 9):
        sys.exit("twins.py needs Python 3.9 or later (asyncio.to_thread); this is %s" % sys.version.split()[0])
    args = parse_args()
    version = "%d.%d.%d" % sys.version_info[:3]
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            sys.exit("--loop uvloop needs uvloop (pip install uvloop), not installed for Python %s" % version)
        print("# python twins, CPython %s, uvloop %s" % (version, uvloop.__version__))
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        print("# python twins, CPython %s, asyncio" % version)
    asyncio.run(main(args))
