#!/usr/bin/env bash
# Every test of ssekit, with the system packages the tests need:
#   redis-server, redis-tools, redis-sentinel   the Redis backplane tests (tests start their own
#                           servers, replicas, sentinels and clusters on loopback)
#   chromium, chromium-driver   the browser tests (a headless Chromium driven over WebDriver)
#
#   bash scripts/test.sh [cargo test arguments…]
#
# When one is missing, it is installed with apt-get if this runs as root on a Debian-like
# system; otherwise the script stops before building anything and names the packages.
# Every test target runs even if an earlier one fails (--no-fail-fast). It tests the crate
# and `conformance/`, the package of the tests that need heavy tools (a browser, property
# tests against a second parser, third-party middleware).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
# The browser tests take any of these (conformance/tests/browser.rs).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null ||
  need+=(chromium)
command -v chromedriver >/dev/null || [ -x /usr/lib/chromium/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${need[*]}"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  else
    echo "error: the tests need the system packages: ${need[*]}" >&2
    echo "       install them (Debian: sudo apt-get install ${need[*]}) and run this again;" >&2
    echo "       'cargo test' without features runs the tests that need none of them" >&2
    exit 1
  fi
fi

cargo test --all-features --no-fail-fast -p ssekit -p ssekit-conformance "$@"
