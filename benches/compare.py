#!/usr/bin/env python3
"""The crate against CPython's asyncio (and uvloop), side by side.

Runs the same workloads on both sides and prints one table, ns per
operation, and the ratio CPython asyncio / ours:

- ours: `cargo bench -p asyncio-benches --bench python_twins` (the bench
  profile), everything under one `asyncio::run` on the current-thread
  runtime: one thread, like asyncio's event loop;
- CPython: `benches/python/twins.py` under each `--python` interpreter
  (default: the one running this script), on asyncio's own event loop and,
  when uvloop is installed for that interpreter, on uvloop's.

Needs: cargo (for our side) and Python 3.9 or later (for CPython's side;
the task workloads need nothing beyond the standard library). uvloop is
optional: without it its column is left out. An interpreter that is missing
or too old is skipped with a note, and `--no-python` runs our side only.

The sides run one after the other, `--rounds` times (interleaved: ours,
then each Python column, then again), each process timing `--reps`
repetitions after a warm-up; a cell is the best (the minimum; or, with
`--stat median`, the median) of all repetitions of all rounds. Best-of is
the default because on a shared machine the other load only ever adds time:
the minimum is the closest to what the code costs, on both sides alike.

    python3 benches/compare.py
    python3 benches/compare.py --python python3.11 --python python3.13 --rounds 3
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWINS_PY = os.path.join(ROOT, "benches", "python", "twins.py")
CARGO_BENCH = ["cargo", "bench", "-p", "asyncio-benches", "--bench", "python_twins"]
TARGET = 8.0


def parse_twins(text):
    """`twin <TAB> workload <TAB> N <TAB> ns,ns,...` lines -> {workload: (N, [ns])}."""
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "twin":
            out[parts[1]] = (int(parts[2]), [float(x) for x in parts[3].split(",") if x])
    return out


def run(cmd, what):
    """Runs `cmd` from the repository root; its stdout, or None (with a note) on failure."""
    try:
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        print("note: %s: could not start %s: %s" % (what, cmd[0], e), file=sys.stderr)
        return None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        print("note: %s failed (exit %d):\n%s" % (what, done.returncode, tail), file=sys.stderr)
        return None
    return done.stdout


def python_version(exe):
    """The interpreter's version as a tuple, or None when it cannot run."""
    out = run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], "%s --version" % exe)
    if out is None:
        return None
    return tuple(int(x) for x in out.strip().split("."))


def has_uvloop(exe):
    done = subprocess.run([exe, "-c", "import uvloop"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return done.returncode == 0


def fmt_ns(ns):
    if ns is None:
        return "—"
    if ns >= 100:
        return "{:,.0f}".format(ns)
    return "{:.1f}".format(ns)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[], metavar="EXE",
                        help="interpreter for CPython's side (repeatable; default: the one running this script)")
    parser.add_argument("--no-python", action="store_true", help="our side only")
    parser.add_argument("--no-uvloop", action="store_true", help="leave uvloop out even when installed")
    parser.add_argument("--rounds", type=int, default=3, help="times each side runs (default 3)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per run (default 5)")
    parser.add_argument("--stat", choices=["best", "median"], default="best",
                        help="best-of (default) or median of all repetitions")
    parser.add_argument("--threads", type=int, default=0,
                        help="our side on a multi-thread runtime with this many workers (default 0: current-thread)")
    parser.add_argument("--only", action="append", default=[], metavar="WORKLOAD")
    args = parser.parse_args()
    if not args.python:
        args.python = [sys.executable or "python3"]

    if shutil.which("cargo") is None:
        sys.exit("compare.py needs cargo (https://rustup.rs) to build our side")
    print("building: %s --no-run" % " ".join(CARGO_BENCH), file=sys.stderr)
    if subprocess.run(CARGO_BENCH + ["--no-run"], cwd=ROOT).returncode != 0:
        sys.exit("could not build the python_twins bench")

    passthrough = ["--reps", str(args.reps)]
    for name in args.only:
        passthrough += ["--only", name]

    # The columns: (title, command).
    columns = [("ours", CARGO_BENCH + ["--", "--threads", str(args.threads)] + passthrough)]
    notes = []
    if not args.no_python:
        for exe in args.python:
            version = python_version(exe)
            if version is None:
                notes.append("%s: not found or does not run; its columns are left out" % exe)
                continue
            label = "%d.%d" % version[:2]
            if version < (3, 9):
                notes.append("%s is Python %s; twins.py needs 3.9 or later: left out" % (exe, label))
                continue
            columns.append(("CPython %s asyncio" % label, [exe, TWINS_PY, "--loop", "asyncio"] + passthrough))
            if args.no_uvloop:
                pass
            elif has_uvloop(exe):
                columns.append(("CPython %s uvloop" % label, [exe, TWINS_PY, "--loop", "uvloop"] + passthrough))
            else:
                notes.append("uvloop is not installed for %s (Python %s): its column is left out"
                             " (pip install uvloop to add it)" % (exe, label))
    else:
        notes.append("--no-python: our side only")

    samples = [{} for _ in columns]  # per column: workload -> [ns]
    sizes = {}  # workload -> N
    order = []
    for r in range(args.rounds):
        for k, (title, cmd) in enumerate(columns):
            print("round %d/%d: %s" % (r + 1, args.rounds, title), file=sys.stderr, flush=True)
            out = run(cmd, title)
            if out is None:
                continue
            for name, (n, ns) in parse_twins(out).items():
                if name not in order:
                    order.append(name)
                if sizes.setdefault(name, n) != n:
                    sys.exit("%s: N differs between the sides (%d, %d): the twins are out of step"
                             % (name, sizes[name], n))
                samples[k].setdefault(name, []).extend(ns)

    pick = statistics.median if args.stat == "median" else min
    cell = [{name: pick(v) for name, v in col.items()} for col in samples]

    header = ["workload", "N"] + ["%s (ns/op)" % t for t, _ in columns]
    asyncio_cols = [k for k, (t, _) in enumerate(columns) if t.endswith(" asyncio")]
    for k in asyncio_cols:
        header.append("%s / ours" % columns[k][0].replace(" asyncio", ""))
    rows = []
    misses = []
    for name in order:
        ours = cell[0].get(name)
        row = [name, "{:,}".format(sizes[name])] + [fmt_ns(c.get(name)) for c in cell]
        for k in asyncio_cols:
            theirs = cell[k].get(name)
            if ours is None or theirs is None:
                row.append("—")
                continue
            ratio = theirs / ours
            row.append("%.1f×%s" % (ratio, "" if ratio >= TARGET else " (< %g×)" % TARGET))
            if ratio < TARGET:
                misses.append("%s vs %s" % (name, columns[k][0]))
        rows.append(row)

    runtime = "current-thread" if args.threads == 0 else "multi-thread, %d workers" % args.threads
    print()
    print("%s of %d runs x %d reps per side; ours on the %s runtime" % (args.stat, args.rounds, args.reps, runtime))
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for note in notes:
        print("note: " + note)
    if asyncio_cols:
        if misses:
            print("below the %g× target: %s" % (TARGET, "; ".join(misses)))
        else:
            print("every row at least %g× faster than CPython's asyncio" % TARGET)


if __name__ == "__main__":
    main()
