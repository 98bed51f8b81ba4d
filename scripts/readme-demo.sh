#!/usr/bin/env bash
# Runs the README's first command on a clean clone of this repository, as a new user
# would: `cargo run --example demo --features axum` (with `-- --port 0` added, so that a
# busy port 8080 cannot fail it), waits for the address line, asks `/health`, stops the
# demo. Prints how long the build took from an empty target directory.
#
#   bash scripts/readme-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command_line=$(grep -m1 '^cargo run --example' README.md | sed 's/ *#.*//')
if [ "$command_line" != "cargo run --example demo --features axum" ]; then
  echo "error: the README's first command is now: $command_line (update this script)" >&2
  exit 1
fi

clone=$(mktemp -d)
log=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$clone" "$log"' EXIT
git clone -q . "$clone"
cd "$clone"
# A new user's build: cargo's defaults, whatever CI set for its own builds.
unset CARGO_TARGET_DIR CARGO_INCREMENTAL CARGO_PROFILE_DEV_DEBUG

start=$(date +%s)
$command_line -- --port 0 >"$log" 2>&1 &
pid=$!
address=""
for _ in $(seq 1 600); do   # up to 10 minutes for the first build
  address=$(grep -m1 -o 'http://127.0.0.1:[0-9]*' "$log" || true)
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "error: the demo exited" >&2; exit 1; }
  sleep 1
done
[ -n "$address" ] || { cat "$log"; echo "error: no address line after 10 minutes" >&2; exit 1; }
echo "== the demo answered after $(( $(date +%s) - start )) s (build from an empty target directory, then start)"
health=$(curl -sf --max-time 5 "$address/health")
echo "== GET /health: $health"
case "$health" in
  *'"subscribers":'*) ;;
  *) echo "error: /health did not answer as the contract says" >&2; exit 1 ;;
esac
kill -TERM "$pid"
for _ in $(seq 1 50); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  echo "error: the demo did not stop within 5 s of SIGTERM" >&2
  exit 1
fi
echo "== the demo stopped on SIGTERM"
