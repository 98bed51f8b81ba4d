#!/usr/bin/env bash
# The Redis deployments side by side, in one run (BENCHMARKS.md, "Redis deployments"):
# publishes and deliveries per second through one Redis and through a three-primary
# cluster, with and without confirm_by_replicas(1) on a primary with a replica, and a
# failover as a client sees it. Starts every server itself on loopback ports 17000-17999,
# in a temporary directory, and stops them at the end. Needs redis-server, redis-tools,
# redis-sentinel.
#
#   bash bench/redis-deployments.sh [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
dir=$(mktemp -d)
trap 'pkill -f "redis-(server|sentinel) .*:17[0-9][0-9][0-9]" 2>/dev/null || true; sleep 1; rm -rf "$dir"' EXIT
cargo build -q --release -p ssekit-bench --features redis --bin redis_deployments
run() { target/release/redis_deployments "$@"; }
server() { # port, extra args…
  local port=$1; shift
  mkdir -p "$dir/$port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --dir "$dir/$port" --repl-diskless-sync-delay 0 \
    --daemonize yes --logfile "$dir/$port/log" "$@"
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
}

server 17001
for port in 17101 17102 17103; do server $port --cluster-enabled yes --cluster-require-full-coverage no; done
redis-cli -p 17101 --cluster create 127.0.0.1:17101 127.0.0.1:17102 127.0.0.1:17103 --cluster-replicas 0 \
  --cluster-yes >/dev/null
until redis-cli -p 17101 cluster info | grep -q cluster_state:ok; do sleep 0.1; done
server 17201
server 17202 --replicaof 127.0.0.1 17201
for port in 17301 17302 17303; do
  mkdir -p "$dir/$port"
  printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor bench 127.0.0.1 17201 2\nsentinel down-after-milliseconds bench 1000\nsentinel failover-timeout bench 5000\n' \
    "$port" "$dir/$port" >"$dir/$port/sentinel.conf"
  redis-sentinel "$dir/$port/sentinel.conf" --daemonize yes --logfile "$dir/$port/log"
done
sentinels=127.0.0.1:17301,127.0.0.1:17302,127.0.0.1:17303

echo "== one Redis"
run throughput --redis redis://127.0.0.1:17001/ --seconds "$seconds"
echo "== three-primary cluster"
run throughput --cluster 127.0.0.1:17101,127.0.0.1:17102,127.0.0.1:17103 --seconds "$seconds"
echo "== primary + replica through Sentinel"
run throughput --sentinel $sentinels --master bench --seconds "$seconds"
echo "== primary + replica through Sentinel, confirm_by_replicas(1)"
run throughput --sentinel $sentinels --master bench --confirm 1 --seconds "$seconds"
echo "== the cost of asking the server its replication id on every append (INFO replication in a script)"
redis-benchmark -p 17001 -n 200000 -q EVAL "return 1" 0 | tr "\r" "\n" | tail -1
redis-benchmark -p 17001 -n 200000 -q EVAL "return string.match(redis.call('INFO','replication'),'master_replid:(%x+)')" 0 | tr "\r" "\n" | tail -1
echo "== failover (the sentinels learn of the replica first)"
sleep 10
run failover --sentinel $sentinels --master bench --seconds 12
