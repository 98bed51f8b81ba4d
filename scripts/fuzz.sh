#!/usr/bin/env bash
# Builds every ssekit fuzz target (fuzz/fuzz_targets) and runs each for SECONDS
# (default 60) with cargo-fuzz and libFuzzer; fails if any target crashes.
#
#   scripts/fuzz.sh [SECONDS]
#
# Works on the stable toolchain: cargo-fuzz passes rustc flags that only nightly
# accepts (-Zsanitizer, sancov passes), and RUSTC_BOOTSTRAP=1 lets stable accept
# them for this build. FUZZ_SANITIZER=none skips AddressSanitizer (the default
# is `address`). Crashing inputs land in fuzz/artifacts/<target>/; the corpus
# grows in fuzz/corpus/<target>/ and is reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

# libFuzzer is C++, built by libfuzzer-sys.
if ! command -v c++ >/dev/null; then
  echo "== installing g++"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== building fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"

failed=()
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  echo "== fuzzing $target for ${seconds}s"
  # -timeout: an input that takes over 10 s is a hang, reported as a crash.
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FUZZ FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "FUZZ OK"
