#!/usr/bin/env bash
# Build cost of protean's macros: a generated domain of N aggregates written with the
# macros, against the same domain written by hand with serde derives (see generate.py
# for what each crate holds). Not a cargo bench: CI does not run it.
#
#   benches/build_cost/run.sh [N] [MODES] [ROUNDS]
#
# N: aggregates (default 100). MODES: any of debug, release, check (default all three).
# ROUNDS: timed builds per crate and mode (default 3).
#
# For each mode it first builds every crate untimed (dependencies, protean included, are
# built then, in each crate's own target dir under target/build-cost/), then times an
# incremental rebuild of the user's crate only, `touch src/lib.rs` then `cargo build`
# (debug), `cargo build --release` or `cargo check`, alternating the crates (A B A B A B),
# and prints every time, the medians, the spread and each protean crate's ratio to the
# hand-written one. The machine should be otherwise idle (CARGO_BUILD_JOBS is honoured,
# default 2).
#
# To compare with another protean (an earlier commit), list variants as label=path in
# BUILD_COST_OPT_MACROS=1 builds the proc macros of both crates optimized (see
# generate.py).
#
# To compare with another protean (an earlier commit), list variants as label=path in
# BUILD_COST_VARIANTS (default: this worktree, unlabelled); their crates are timed in
# the same alternation, e.g.
#   mkdir -p target/build-cost/base-src && git archive HEAD~3 | tar -x -C target/build-cost/base-src
#   BUILD_COST_VARIANTS="base=target/build-cost/base-src now=." benches/build_cost/run.sh
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
N="${1:-100}"
MODES="${2:-debug release check}"
ROUNDS="${3:-3}"
OUT="${BUILD_COST_OUT:-$ROOT/target/build-cost}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

CRATES=()
for variant in ${BUILD_COST_VARIANTS:-=$ROOT}; do
    label="${variant%%=*}"
    src="$(cd "${variant#*=}" && pwd)"
    crate="protean_domain${label:+_$label}"
    python3 "$HERE/generate.py" "$N" "$OUT" "$src" "$crate" >/dev/null
    echo "$crate: protean at $src"
    CRATES+=("$crate")
done
CRATES+=(hand_domain)

cargo_args() {
    case "$1" in
        debug) echo "build" ;;
        release) echo "build --release" ;;
        check) echo "check" ;;
        *) echo "unknown mode $1" >&2; exit 2 ;;
    esac
}

# Seconds taken by one rebuild of crate $1 in mode $2.
timed() {
    local dir="$OUT/$1" args start end
    args="$(cargo_args "$2")"
    touch "$dir/src/lib.rs"
    start=$(date +%s.%N)
    (cd "$dir" && cargo $args -q 2>/dev/null) || { echo "build of $1 ($2) failed" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.2f..%.2f", lo, hi}'; }

echo "N=$N aggregates, $ROUNDS rounds, CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS, $(rustc --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in $MODES; do
    for c in "${CRATES[@]}"; do
        (cd "$OUT/$c" && cargo $(cargo_args "$mode") -q 2>&1 | tail -5)
    done
    declare -A times=()
    for _ in $(seq "$ROUNDS"); do
        for c in "${CRATES[@]}"; do
            times[$c]="${times[$c]:-} $(timed "$c" "$mode")"
        done
    done
    hand=$(median ${times[hand_domain]})
    for c in "${CRATES[@]}"; do
        m=$(median ${times[$c]})
        printf '%-8s %-24s median %6.2f s  spread %s  runs %s  vs hand %.2fx\n' "$mode" "$c" "$m" \
            "$(spread ${times[$c]})" "$(printf '%.2f ' ${times[$c]})" "$(echo "$m / $hand" | bc -l)"
    done
    unset times
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
