#!/usr/bin/env bash
# Load benchmarks: every scenario against every server, twice; results in
# target/bench/results.json, charts in target/bench/*.svg, copied to docs/bench/.
#
#   scripts/bench.sh                 full run (about 20–30 minutes on 2 cores)
#   scripts/bench.sh --scale 0.1     a tenth of the connections and events
#   scripts/bench.sh --quick         smoke run, one pass (< 30 s of measuring)
#
# Extra arguments go to the load generator (see bench/src/bin/loadgen.rs), e.g.
# `--servers ssekit-axum,raw-tcp --scenarios a,d`. Servers run pinned to core 0,
# the load generator to core 1 (it re-runs itself under `taskset -c 1`).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=2
for arg in "$@"; do
  [ "$arg" = "--quick" ] && runs=1
done

# 10 000 connections need 10 000 descriptors in the load generator and in each server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 10100 ]; then
  echo "warning: ulimit -n is $(ulimit -n); the 10 000-connection scenarios need about 10 100 per process" >&2
fi

# The servers: the demo apps are examples of the root package (built with every
# feature, as for the runs in BENCHMARKS.md), the comparison servers and the load
# generator binaries of the unpublished bench/ package. loadgen finds the demos in
# target/release/examples/ and the comparison servers in target/release/.
cargo build --release --all-features --example demo --example demo_actix --example demo_hyper
cargo build --release -p ssekit-bench --bins
loadgen="${CARGO_TARGET_DIR:-target}/release/loadgen"

mkdir -p target/bench docs/bench
"$loadgen" --runs "$runs" --out target/bench/results.json "$@"
"$loadgen" --report target/bench/results.json > target/bench/report.md
"$loadgen" --chart target/bench/results.json target/bench
cp target/bench/*.svg docs/bench/
echo "results: target/bench/results.json  tables: target/bench/report.md  charts: docs/bench/*.svg"
