#!/bin/sh
# bench_encode.sh — `streamscale-worker encode` vs the ffmpeg command line
# (one process, split filter, same rungs, preset, CRF, caps, keyframe grid,
# segment length, CMAF/fMP4 HLS output), side by side on the same inputs:
# a generated 1080p 60 s clip (testsrc2 + light temporal noise + sine, ~7 Mb/s) and
# cockatoo.mp4 (tests/media/fetch.sh). Reports medians of RUNS runs of wall
# time, CPU time and peak RSS (/usr/bin/time -v, package `time`), their
# ratios, bytes and PSNR/SSIM per rung. Not a test: it never asserts a time.
#
#   tests/bench/bench_encode.sh [BUILD_DIR]     (RUNS=3 PRESET=veryfast CRF=23)
#
# Output and inputs go to tests/bench/out/ (ignored by git); the table is
# tests/bench/out/encode/results.md, to be copied into docs/BENCHMARKS.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
out=$here/out/encode
mkdir -p "$out"
command -v /usr/bin/time >/dev/null || { echo "bench_encode: install the 'time' package" >&2; exit 1; }
[ -x "$build/bin/streamscale-worker" ] || cmake --build "$build" -j"$(nproc)" >/dev/null
"$root/tests/media/fetch.sh" "$root/tests/media/cache" >/dev/null
clip=$here/out/bench_1080p60s.mp4
if [ ! -s "$clip" ]; then
    echo "bench_encode: making $clip (once)"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=60,noise=alls=2:allf=t" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=60" \
        -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p -c:a aac -b:a 192k "$clip.tmp.mp4"
    mv "$clip.tmp.mp4" "$clip"
fi
exec python3 "$here/bench_encode.py" --worker "$build/bin/streamscale-worker" --out "$out" \
    --runs "${RUNS:-3}" --preset "${PRESET:-veryfast}" --crf "${CRF:-23}" \
    gen1080p="$clip" cockatoo="$root/tests/media/cache/cockatoo.mp4"
