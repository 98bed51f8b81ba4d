#!/usr/bin/env bash
# Server memory per idle SSE connection at 10 000 connections (one server
# process) and at 100 000 (several server processes of the same kind, each with
# its own hub: this sandbox caps a process at 20 000 open files). The tool is
# bench/src/bin/idle_fleet.rs; its lines go to target/bench/idle-100k.txt.
#
#   bench/idle-100k.sh              ssekit-lean (also 19 000 in one process, and
#                                   twice at 100 000), ssekit-axum,
#                                   axum-broadcast, raw-tcp, then ssekit-hyper,
#                                   ssekit-actix, actix-broadcaster
#   bench/idle-100k.sh --core-only  without the last three
#
# A kind is skipped when less than 3.5 GB of memory is available before its
# 100 000-connection run (100 000 x 20 KB is 2 GB for the axum servers).
set -euo pipefail
cd "$(dirname "$0")/.."

extra=1
for arg in "$@"; do
  case "$arg" in
    --core-only) extra=0 ;;
    *) echo "usage: bench/idle-100k.sh [--core-only]" >&2; exit 2 ;;
  esac
done

nice -n 10 cargo build --release --all-features --example demo --example demo_hyper --example demo_actix
nice -n 10 cargo build --release -p ssekit-bench \
  --bin idle_fleet --bin peer_raw_tcp --bin peer_axum_broadcast --bin peer_actix_broadcaster
fleet="${CARGO_TARGET_DIR:-target}/release/idle_fleet"

core=(ssekit-lean ssekit-axum axum-broadcast raw-tcp)
more=(ssekit-hyper ssekit-actix actix-broadcaster)
kinds=("${core[@]}")
[ "$extra" = 1 ] && kinds+=("${more[@]}")

mkdir -p target/bench
out=target/bench/idle-100k.txt
note() { echo "$*" | tee -a "$out"; }
failed=0
# run LABEL IDLE_FLEET_ARGS…
run() {
  local label=$1
  shift
  note "== $label: idle_fleet $* ($(date -u +%H:%M:%S), $(load))"
  if "$fleet" "$@" 2>&1 | tee -a "$out"; then :; else
    note "FAILED: $label (exit ${PIPESTATUS[0]})"
    failed=1
  fi
}
load() { uptime | sed 's/.*load average/load average/'; }
available_gb() { awk '/MemAvailable/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }

note "# $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
note "# ulimit -n $(ulimit -n) (hard $(ulimit -Hn)); ip_local_port_range $(tr '\t' - < /proc/sys/net/ipv4/ip_local_port_range); fs.file-max $(cat /proc/sys/fs/file-max); $(nproc) cores; MemAvailable $(available_gb) GB"

for kind in "${kinds[@]}"; do
  run "$kind 10 000, one process" --servers "$kind" --conns 10000 --procs 1
done
# The most one process may hold here (20 000 open files): ssekit-lean at 19 000.
run "ssekit-lean 19 000, one process" --servers ssekit-lean --conns 19000 --procs 1
# ssekit-lean twice at 100 000, the others once.
for kind in ssekit-lean "${kinds[@]}"; do
  gb=$(available_gb)
  if awk -v gb="$gb" 'BEGIN { exit !(gb < 3.5) }'; then
    note "SKIPPED: $kind 100 000: only $gb GB available"
    failed=1
    continue
  fi
  run "$kind 100 000" --servers "$kind" --conns 100000
done
note "# done $(date -u +%H:%M:%S), $(load)"
exit "$failed"
