#!/usr/bin/env bash
# streamscale test command: install what is missing (apt-get, npm), build
# with -Wall -Wextra -Werror, run every test with ctest.
#
#   tests/run.sh [--no-sanitize] [ctest args...]
#
# By default the build is instrumented with ASan+UBSan (as CI runs it) in
# build-test/, and the daemons are built once more with ThreadSanitizer in
# build-tsan/ for the concurrency tests (ctest label tsan). SS_LONG_TESTS=1 in the environment also runs the long soak
# and peer comparisons (run by hand; see docs/BENCHMARKS.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sanitize=ON
if [ "${1:-}" = "--no-sanitize" ]; then sanitize=OFF; shift; fi

# Every package list the tests need: build, run, test and test-*.txt.
sets="build run test"
for f in deploy/packages/test-*.txt; do
    [ -e "$f" ] && sets="$sets $(basename "$f" .txt)"
done
# shellcheck disable=SC2086
deploy/deps.sh $sets

# npm packages for the browser tests (playwright-core, players), if any.
if [ -f tests/browser/package.json ] && ! command -v npm >/dev/null; then
    deploy/deps.sh nodejs
fi
if [ -f tests/browser/package.json ]; then
    (cd tests/browser && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
        npm ci --no-audit --no-fund --loglevel=error; touch node_modules; fi)
fi

tests/media/fetch.sh >/dev/null

# ThreadSanitizer: only the daemons the concurrency tests start (ctest's
# tsan/ tests run them from build-tsan/; see tests/CMakeLists.txt).
tsan_dir=""
if [ "$sanitize" = ON ]; then
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSS_SANITIZE=thread -DSS_WERROR=ON \
        -DSS_TESTS=ON >/dev/null
    cmake --build build-tsan -j"$(nproc)" --target streamscale-coordinator streamscale-worker \
        ss_queue_worker
    tsan_dir=$root/build-tsan
fi

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DSS_SANITIZE=$sanitize -DSS_WERROR=ON -DSS_TESTS=ON \
    -DSS_TSAN_BUILD_DIR="$tsan_dir" >/dev/null
cmake --build build-test -j"$(nproc)"

# ASan: libav*/libx264 are not instrumented; leak checks stay on for our code.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
# -j2: a test that mostly waits (tests/CMakeLists.txt, SS_LIGHT_TESTS) may
# run beside another such test; every other test takes both slots and runs
# alone.
ctest --test-dir build-test --output-on-failure --timeout 900 -j2 "$@"
