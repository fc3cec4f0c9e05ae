#!/usr/bin/env bash
# Benchmark 12 of docs/benchmarks.md: the round trips with a metrics recorder and with none,
# both sides in each run, their order alternated from run to run (none then recorder, then
# recorder then none, ...), ROUNDS runs (6 by default).
#
#   bash benches/metrics.sh [ROUNDS]
#
# With BASELINE=DIR, a copy of the repository without the metrics (built in its own target
# folder, BASELINE_TARGET, default DIR/target) is run after each run too, with no recorder:
# the code before the metrics, beside the `none` side.
#
# Prints each run's criterion medians (ns per round trip), then per store the median of
# the runs with their spread (lowest - highest), and the ratios of the medians.
set -euo pipefail
rounds="${1:-6}"
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [[ -n "${BASELINE:-}" ]]; then
  baseline_target="${BASELINE_TARGET:-$BASELINE/target}"
  (cd "$BASELINE" && CARGO_TARGET_DIR="$baseline_target" cargo bench --bench metrics --no-run >/dev/null 2>&1)
fi
cargo bench --bench metrics --no-run >/dev/null 2>&1
median() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$1"
}
results="$(mktemp)"
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then order=none,recorder; else order=recorder,none; fi
  CARGO_TARGET_DIR="$target" PROTEAN_BENCH_METRICS="$order" cargo bench --bench metrics >/dev/null 2>&1
  for store in memory sqlite; do
    for side in none recorder; do
      echo "$round $store $side $(median "$target/criterion/metrics_round_trip_$store/$side/new/estimates.json")" \
        | tee -a "$results"
    done
  done
  if [[ -n "${BASELINE:-}" ]]; then
    (cd "$BASELINE" && CARGO_TARGET_DIR="$baseline_target" PROTEAN_BENCH_METRICS=none \
      cargo bench --bench metrics >/dev/null 2>&1)
    for store in memory sqlite; do
      echo "$round $store baseline $(median "$baseline_target/criterion/metrics_round_trip_$store/none/new/estimates.json")" \
        | tee -a "$results"
    done
  fi
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    _, store, side, median = line.split()
    runs.setdefault((store, side), []).append(float(median))
def fmt(xs):
    return f"{statistics.median(xs):,.0f} ns ({min(xs):,.0f} - {max(xs):,.0f})"
for store in ("memory", "sqlite"):
    none = runs[(store, "none")]
    line = [f"{store}: none {fmt(none)}"]
    for side in ("recorder", "baseline"):
        if (store, side) in runs:
            xs = runs[(store, side)]
            line.append(f"{side} {fmt(xs)}, {side} / none {statistics.median(xs) / statistics.median(none):.3f}")
    print("; ".join(line))
PY
