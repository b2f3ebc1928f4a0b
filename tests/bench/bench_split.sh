#!/bin/sh
# bench_split.sh — one title across workers: split vs unsplit on the real
# system (tests/bench/bench_split.py says what each set-up is). The issue's
# input is the default: a generated 120 s 1080p30 title, ladder
# 360/720/1080, veryfast, CRF 23, 4 s segments.
#
#   tests/bench/bench_split.sh [BUILD_DIR] [bench_split.py options...]
#
# Not a test: it never asserts. Figures go to docs/BENCHMARKS.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
command -v taskset >/dev/null || { echo "bench_split: needs taskset (util-linux)" >&2; exit 1; }
[ -x "$build/bin/streamscale-worker" ] || cmake --build "$build" -j"$(nproc)" >/dev/null
exec /usr/bin/python3 "$here/bench_split.py" --build "$build" "$@"
