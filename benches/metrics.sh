#!/usr/bin/env bash
# Benchmark 11 of docs/benchmarks.md: the round trips with and without a metrics recorder,
# alternated: none, recorder, none, recorder, ... (PAIRS pairs, 3 by default). Prints each
# run's criterion median (ns per round trip) and, per store, the median of the runs with
# the spread (lowest - highest), and the ratio of the medians.
#
#   bash benches/metrics.sh [PAIRS]
set -euo pipefail
pairs="${1:-3}"
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo bench --bench metrics --no-run >/dev/null 2>&1
results="$(mktemp)"
for ((pair = 1; pair <= pairs; pair++)); do
  for side in none recorder; do
    PROTEAN_BENCH_METRICS="$side" cargo bench --bench metrics >/dev/null 2>&1
    for store in memory sqlite; do
      estimate="$target/criterion/metrics_round_trip_$store/$side/new/estimates.json"
      median="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$estimate")"
      echo "$pair $store $side $median" | tee -a "$results"
    done
  done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    _, store, side, median = line.split()
    runs.setdefault((store, side), []).append(float(median))
for store in ("memory", "sqlite"):
    none, rec = runs[(store, "none")], runs[(store, "recorder")]
    fmt = lambda xs: f"{statistics.median(xs):.0f} ns ({min(xs):.0f} - {max(xs):.0f})"
    ratio = statistics.median(rec) / statistics.median(none)
    print(f"{store}: none {fmt(none)}; recorder {fmt(rec)}; recorder / none = {ratio:.3f}")
PY
