#!/usr/bin/env bash
# The Sentinel fault test of the suite (tests/redis/failover.rs), with more rounds: the
# primary is killed at random moments N times (default 100; the suite runs 20) under
# publishers on two nodes and readers that resume on either; it prints what the readers
# saw. Needs redis-server, redis-tools, redis-sentinel.
#
#   bash bench/failover-rounds.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
SSEKIT_FAILOVER_ROUNDS=${1:-100} cargo test --release --features redis --test redis -- \
  --exact failover::failovers_at_random_moments_never_resume_at_the_wrong_place --nocapture
