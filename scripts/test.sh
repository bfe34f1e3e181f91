#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then
#   1. builds (RelWithDebInfo) and runs unit, conformance and integration tests;
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the same tests under ThreadSanitizer;
#   4. builds the libFuzzer targets with clang and runs each for a bounded time.
# Options: --quick (step 1 only), --fuzz-seconds N (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
fuzz_seconds=60
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --fuzz-seconds) fuzz_seconds="$2"; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

jobs=$(nproc)
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "installing dependencies"
scripts/install-deps.sh --test

run_suite() {  # run_suite BUILD_DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 120 -LE fuzz)
}

step "installing MQTT.js for the Node tests (npm ci)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

step "build and test (RelWithDebInfo)"
run_suite build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo

if ((quick)); then
  echo "quick run: sanitizers and fuzzing skipped"
  exit 0
fi

step "build and test under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build/asan -DCMAKE_BUILD_TYPE=Debug -DEDGEMQ_SANITIZE=address,undefined

step "build and test under TSan"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
  run_suite build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEMQ_SANITIZE=thread

step "fuzzing (${fuzz_seconds}s per target)"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEMQ_FUZZ=ON \
  -DEDGEMQ_BUILD_TESTS=OFF -DEDGEMQ_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build build/fuzz --target fuzz_all -j"$jobs"
(cd build/fuzz && ctest --output-on-failure -L fuzz)

step "all tests passed"
