#!/usr/bin/env bash
# bench_chain.sh BUILD_DIR [--seconds S] [--size WxH] [--ladder L] [--threads N]
#                [--chunk-threads N] [--reps R]
#
# A chunk run that goes on into the next chunk (docs/SPLIT.md): the same
# generated title (bench_split.py's: testsrc2 with light temporal noise and
# a tone, 30 fps) through `streamscale-worker encode` three ways, runs
# interleaved, medians of wall and CPU seconds (user + sys, /usr/bin/time)
# and their ratios to `--split off`:
#   off       one process (--split off)
#   chain     --split auto: a pool thread that ends a chunk goes on with the
#             next unclaimed one (its decoder and encoders kept)
#   own       --split auto --no-chain: every chunk its own run (drain,
#             fresh decoder and encoders, pre-roll), as before
# With --threads 1, or --chunk-threads equal to --threads (one chunk at a
# time with every thread, as a worker on 2 cores runs a split job), the
# pool has one thread: `chain` is one run through every chunk. Each encode's output is checked with lib/check_output.py.
set -euo pipefail
build=${1:?usage: bench_chain.sh BUILD_DIR [--seconds S] [--size WxH] [--ladder L] [--threads N] [--reps R]}
shift
seconds=60 size=1280x720 ladder=360,720 threads=2 chunk_threads=1 reps=3
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --ladder) ladder=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --chunk-threads) chunk_threads=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
worker=$(cd "$build" && pwd)/bin/streamscale-worker
tmp=$(mktemp -d /tmp/ss-bench-chain-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src=$here/out/chain-title-${seconds}s-$size.mp4
mkdir -p "$here/out"
if [ ! -f "$src" ]; then
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=$size:rate=30:duration=$seconds" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$seconds" \
        -vf noise=alls=2:allf=t -c:v libx264 -preset veryfast -crf 16 -g 60 -pix_fmt yuv420p \
        -c:a aac -b:a 128k "$src.tmp.mp4"
    mv "$src.tmp.mp4" "$src"
fi
declare -A args=([off]="--split off" [chain]="--split auto --chunk-threads $chunk_threads"
                 [own]="--split auto --chunk-threads $chunk_threads --no-chain")
for r in $(seq "$reps"); do
    for m in off chain own; do
        out=$tmp/$m-$r
        # shellcheck disable=SC2086
        /usr/bin/time -f "%e %U %S" -o "$tmp/$m-$r.time" "$worker" encode "$src" "$out" \
            --ladder "$ladder" --threads "$threads" --no-thumbnails ${args[$m]} 2>/dev/null
        cont=$(python3 -c "
import json, sys; sys.path.insert(0, '$here/../integration')
from lib import check_output
p = check_output.check('$out', '$src')
assert not p, p
items = json.load(open('$out/job.json')).get('items', {})
print('%d of %d chunks continued' % (sum(1 for v in items.values() if v.get('continued')),
                                      sum(1 for k in items if k.startswith('c'))))
")
        read -r e u s < "$tmp/$m-$r.time"
        echo "$m run $r: wall $e s, cpu $(echo "$u + $s" | bc) s ($cont)"
        echo "$e $(echo "$u + $s" | bc)" >> "$tmp/$m.all"
        rm -rf "$out"
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ow=$(cut -d' ' -f1 "$tmp/off.all" | median)
oc=$(cut -d' ' -f2 "$tmp/off.all" | median)
echo "title ${seconds}s $size, ladder $ladder, --threads $threads --chunk-threads $chunk_threads, $reps runs each (medians):"
for m in off chain own; do
    w=$(cut -d' ' -f1 "$tmp/$m.all" | median)
    c=$(cut -d' ' -f2 "$tmp/$m.all" | median)
    printf "  %-6s wall %7.2f s (%.3fx off)  cpu %7.2f s (%.3fx off)\n" "$m" "$w" \
        "$(echo "$w / $ow" | bc -l)" "$c" "$(echo "$c / $oc" | bc -l)"
done
