#!/bin/sh
# bench_pertitle.sh — per-title ladder vs the fixed (auto) ladder, same
# inputs, same machine (tests/bench/bench_pertitle.py says what it measures
# and how BD-rate is computed). Inputs: three generated 1080p30 20 s clips
# of low, medium and high complexity, and cockatoo.mp4 / balle-jbart.mp4
# (tests/media/fetch.sh):
#
#   low      a still photograph (a frame of cockatoo.mp4, scaled up) panned
#            slowly (8 px/s): soft detail, little motion
#   medium   testsrc2 with light temporal noise (the encode benchmark's input)
#   high     testsrc2 under heavy temporal noise (grain on every pixel)
#
#   tests/bench/bench_pertitle.sh [BUILD_DIR]        (PRESET=veryfast)
#
# Inputs and outputs go to tests/bench/out/ (ignored by git); the table is
# tests/bench/out/pertitle/results.md, to be copied into docs/BENCHMARKS.md.
# Not a test: it never asserts.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
out=$here/out/pertitle
mkdir -p "$out"
command -v /usr/bin/time >/dev/null || { echo "bench_pertitle: install the 'time' package" >&2; exit 1; }
[ -x "$build/bin/streamscale-worker" ] || cmake --build "$build" -j"$(nproc)" >/dev/null
"$root/tests/media/fetch.sh" "$root/tests/media/cache" >/dev/null
cache=$root/tests/media/cache
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
make() { # name, video filter, ffmpeg input args...
    f=$here/out/pt_$1.mp4
    vf=$2
    shift 2
    if [ ! -s "$f" ]; then
        echo "bench_pertitle: making $f (once)"
        ff "$@" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=20" -t 20 -vf "$vf" \
            -c:v libx264 -preset veryfast -crf 16 -pix_fmt yuv420p -c:a aac -b:a 128k "$f.tmp.mp4"
        mv "$f.tmp.mp4" "$f"
    fi
}
if [ ! -s "$here/out/pt_still.png" ]; then
    ff -i "$cache/cockatoo.mp4" -ss 5 -frames:v 1 -vf "scale=2400:1350:flags=bicubic" "$here/out/pt_still.png"
fi
make low "crop=1920:1080:x='8*t':y=100,format=yuv420p" -loop 1 -framerate 30 -i "$here/out/pt_still.png"
make medium "noise=alls=2:allf=t" -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=20"
make high "noise=alls=12:allf=t+u" -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=20"
exec /usr/bin/python3 "$here/bench_pertitle.py" --worker "$build/bin/streamscale-worker" --out "$out" \
    --preset "${PRESET:-veryfast}" \
    low="$here/out/pt_low.mp4" medium="$here/out/pt_medium.mp4" high="$here/out/pt_high.mp4" \
    cockatoo="$cache/cockatoo.mp4" balle="$cache/balle-jbart.mp4"
