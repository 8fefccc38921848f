#!/usr/bin/env bash
# A/B of the task workloads (`benches/ab_task.rs`: create_task + await, and
# the cancel storm) between two revisions of the crate, in one session.
#
#   benches/ab.sh <before-rev> [<after-rev>] [--runs K] [--rounds R]
#
# <before-rev>, <after-rev>: any git revision; without <after-rev>, "after"
# is the working tree as it is. Each side is exported with `git archive`
# (no worktree is added to the repository), and the same bench source (this
# checkout's `benches/ab_task.rs` and `benches/spawn_common/`) is built against each in a throwaway
# crate with the `bench` profile's settings (`lto = "thin"`,
# `codegen-units = 1`) and this checkout's `Cargo.lock` (the same Tokio on
# both sides). The two binaries then run alternately, K times each (default
# 5: before, after, before, after, ...), each run doing R interleaved rounds
# of raw Tokio and ours (default 15) and printing medians.
#
# Two tables, wall-clock and CPU time: per workload, the median over the K
# runs of ours (ns per task) for each side, with the lowest..highest run;
# the same for the ratio to raw Tokio measured in the same process; and
# after / before for both. On a machine shared with other work, the ratios
# to raw Tokio and the CPU time are the figures to trust: the first is
# measured in the same process, interleaved, and the second leaves out the
# time the threads waited for a core.
#
# Needs git, cargo, awk, and network access or a warm cargo cache for the
# dependencies. Everything is built under a temporary directory, removed at
# the end (`KEEP=1` keeps it, and prints where); `AB_TARGET=dir` builds in
# `dir` instead, kept between calls (faster when repeating).
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

runs=5
rounds=15
revs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        -h|--help) usage ;;
        *) revs+=("$1"); shift ;;
    esac
done
[ ${#revs[@]} -ge 1 ] && [ ${#revs[@]} -le 2 ] || usage

root=$(git rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/asyncio-ab.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

target="${AB_TARGET:-$work/target}"

export_rev() { # rev dir
    mkdir -p "$2"
    git -C "$root" archive "$1" | tar -x -C "$2"
}

# The crate's source for each side.
before_rev=$(git -C "$root" rev-parse --short "${revs[0]}")
export_rev "$before_rev" "$work/src-before"
if [ ${#revs[@]} -eq 2 ]; then
    after_rev=$(git -C "$root" rev-parse --short "${revs[1]}")
    export_rev "$after_rev" "$work/src-after"
    after_src="$work/src-after"
else
    after_rev="working tree ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src Cargo.toml || echo ', modified'))"
    after_src="$root"
fi

# One throwaway crate per side, the same main.rs, one target dir.
for side in before after; do
    src="$work/src-$side"
    [ "$side" = after ] && src="$after_src"
    dir="$work/ab-$side"
    mkdir -p "$dir/src/spawn_common"
    cp "$root/benches/ab_task.rs" "$dir/src/main.rs"
    cp "$root/benches/spawn_common/mod.rs" "$dir/src/spawn_common/mod.rs"
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    cat > "$dir/Cargo.toml" <<EOF
[package]
name = "ab-$side"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
asyncio = { path = "$src" }
tokio = { version = "1.49", features = ["full"] }

[profile.release]
lto = "thin"
codegen-units = 1

[workspace]
EOF
    echo "building $side ..." >&2
    CARGO_TARGET_DIR="$target" cargo build --quiet --release \
        --manifest-path "$dir/Cargo.toml" >&2
done

echo "before: ${revs[0]} ($before_rev)"
echo "after:  $after_rev"
echo "$runs runs of each, alternating, $rounds interleaved rounds per run; load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"
for k in $(seq 1 "$runs"); do
    for side in before after; do
        "$target/release/ab-$side" --rounds "$rounds" | sed "s/^ab/$side/"
    done
done > "$work/results.tsv"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"

table() { # title, column of raw, column of ours
    awk -F'\t' -v title="$1" -v rc="$2" -v oc="$3" '
    function med(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        lo = a[1]; hi = a[n]
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        if (!($2 in seen)) { seen[$2] = 1; order[++nk] = $2 }
        ours[$1, $2] = ours[$1, $2] " " $oc
        ratio[$1, $2] = ratio[$1, $2] " " ($oc / $rc)
    }
    END {
        printf "\n%s: median of the runs [lowest..highest run]\n", title
        printf "%-28s %22s %22s %7s   %19s %19s %7s\n", "workload/flavor/N", "ours before, ns", "ours after, ns", "a/b", "before / tokio", "after / tokio", "a/b"
        for (k = 1; k <= nk; k++) {
            w = order[k]
            ob = med(ours["before", w]); obl = lo; obh = hi
            oa = med(ours["after", w]); oal = lo; oah = hi
            rb = med(ratio["before", w]); rbl = lo; rbh = hi
            ra = med(ratio["after", w]); ral = lo; rah = hi
            printf "%-28s %6.0f [%5.0f..%5.0f] %6.0f [%5.0f..%5.0f] %6.2fx   %5.2f [%4.2f..%4.2f] %5.2f [%4.2f..%4.2f] %6.2fx\n", w, ob, obl, obh, oa, oal, oah, oa / ob, rb, rbl, rbh, ra, ral, rah, ra / rb
        }
    }' "$work/results.tsv"
}
table "wall-clock time per task" 3 4
table "CPU time per task (all threads of the process)" 5 6
