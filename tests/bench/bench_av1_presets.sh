#!/bin/sh
# bench_av1_presets.sh — SVT-AV1 preset/speed table (through the ffmpeg CLI's
# libsvtav1, the same library and version the worker links), to choose the
# preset of the AV1 ladder. For each input and each preset: CPU seconds
# (user + sys, so other load on the machine does not count) per minute of
# video, bytes, kbit/s and PSNR-Y against the input; libx264 veryfast CRF 23
# (the H.264 ladder's default) on the same input is the reference row. Not a
# test: it never asserts a time.
#
#   tests/bench/bench_av1_presets.sh      (PRESETS="4 6 8 10 12" CRF=35 SECONDS_LEN=6 SIZE=640x360)
#
# Inputs: a generated clip (testsrc2 + temporal noise) and cockatoo.mp4
# (tests/media/fetch.sh), both scaled to SIZE. Table: tests/bench/out/av1/presets.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/out/av1
mkdir -p "$out"
PRESETS=${PRESETS:-"4 6 8 10 12"}
CRF=${CRF:-35}
SECS=${SECONDS_LEN:-6}
SIZE=${SIZE:-640x360}
"$root/tests/media/fetch.sh" "$root/tests/media/cache" >/dev/null
export SVT_LOG=1

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
gen=$out/gen.y4m
real=$out/cockatoo.y4m
[ -s "$gen" ] || ff -f lavfi -i "testsrc2=size=$SIZE:rate=30:duration=$SECS,noise=alls=4:allf=t" -pix_fmt yuv420p "$gen"
[ -s "$real" ] || ff -i "$root/tests/media/cache/cockatoo.mp4" -t "$SECS" -vf "scale=$SIZE,fps=30" -pix_fmt yuv420p "$real"

cpu() {   # CPU seconds of a command (user + sys of its children)
    /usr/bin/time -f "%U %S" -o "$out/time.txt" "$@"
    awk '{ printf "%.2f", $1 + $2 }' "$out/time.txt"
}
psnr() {
    ffmpeg -nostdin -hide_banner -i "$1" -i "$2" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 |
        sed -n 's/.* y:\([0-9.inf]*\) .*/\1/p' | tail -1
}
row() {   # name file cpu input
    bytes=$(stat -c %s "$2")
    kbps=$(awk -v b="$bytes" -v s="$SECS" 'BEGIN { printf "%.0f", b * 8 / s / 1000 }')
    perm=$(awk -v c="$3" -v s="$SECS" 'BEGIN { printf "%.1f", c * 60 / s }')
    printf "| %s | %s | %s | %s | %s | %s |\n" "$5" "$1" "$perm" "$bytes" "$kbps" "$(psnr "$2" "$4")" >> "$md"
}

md=$out/presets.md
{
    echo "SVT-AV1 $(ffmpeg -hide_banner -h encoder=libsvtav1 >/dev/null 2>&1 && echo "(libsvtav1)") CRF $CRF vs libx264 veryfast CRF 23, $SIZE, $SECS s, $(nproc) cores"
    echo
    echo "| input | encoder | CPU s per min of video | bytes | kbit/s | PSNR-Y dB |"
    echo "|---|---|---:|---:|---:|---:|"
} > "$md"
for input in "$gen" "$real"; do
    tag=$(basename "$input" .y4m)
    c=$(cpu ffmpeg -nostdin -loglevel error -y -i "$input" -c:v libx264 -preset veryfast -crf 23 "$out/$tag-x264.mp4")
    row "x264 veryfast crf 23" "$out/$tag-x264.mp4" "$c" "$input" "$tag"
    for p in $PRESETS; do
        c=$(cpu ffmpeg -nostdin -loglevel error -y -i "$input" -c:v libsvtav1 -preset "$p" -crf "$CRF" -g 120 "$out/$tag-svt$p.mp4")
        row "svt-av1 preset $p crf $CRF" "$out/$tag-svt$p.mp4" "$c" "$input" "$tag"
    done
done
cat "$md"
