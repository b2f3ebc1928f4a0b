#!/usr/bin/env bash
# Build the media test corpus with the ffmpeg CLI (tests and benchmarks may
# use it; the product never does) into DIR (default tests/media/cache/corpus,
# ignored by git). Idempotent: a file that exists is not made again; delete
# DIR to rebuild. Clips are short (2-4 s) and small so the suite stays fast
# on 2 cores. Each file is one kind of source the pipeline must handle:
#
#   basic.mp4          640x360 25 fps H.264 + stereo AAC (the reference case)
#   rotated.mp4        display matrix 90 degrees (a phone video)
#   vfr.mp4            variable frame rate (frames dropped, timestamps kept)
#   noaudio.mp4        video only
#   yuv420p10.mp4      10-bit 4:2:0 (H.264 High 10)
#   yuv422p.mp4        4:2:2 (High 4:2:2)
#   yuv444p.mp4        4:4:4 (High 4:4:4)
#   interlaced.mp4     flagged interlaced (x264 tff)
#   surround.mp4       5.1 AAC
#   mono.mp4           mono AAC at 44.1 kHz
#   odd.mp4            321x241
#   big4k.mp4          3840x2160 (over a 1080p max_pixels limit)
#   truncated.mp4      faststart file with its tail cut off
#   nomoov.mp4         the tail (and so the moov) cut off
#   empty.mp4          0 bytes
#   text.mp4           a text file named .mp4
#   subs.mkv           SRT (eng) + ASS (fre) subtitle tracks
#   movtext.mp4        mov_text subtitle track (ger)
#   sar.mp4            720x576 with SAR 16:15 (4:3 PAL)
#   multiaudio.mp4     two audio tracks, the second one flagged default
#   ntsc.mp4           29.97 fps, 5 s (keyframe grid with 1001 timing)
#   audiolong.mp4      audio 3 s, video 2 s
#   audioshort.mp4     audio 1 s, video 3 s
#   mpeg2.ts           MPEG-2 video + MP2 audio in MPEG-TS, nonzero start
set -euo pipefail
dir=${1:-$(dirname "$0")/cache/corpus}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
src() { # size rate seconds
    echo "-f lavfi -i testsrc2=size=$1:rate=$2:duration=$3"
}
sine() { # seconds [rate]
    echo "-f lavfi -i sine=frequency=440:sample_rate=${2:-48000}:duration=$1"
}
x264="-c:v libx264 -preset ultrafast -crf 28"
aac="-c:a aac -b:a 96k"
make() { # name, then the ffmpeg arguments
    local name=$1
    shift
    [ -s "$dir/$name" ] && return 0
    ff "$@" "$dir/$name.tmp.${name##*.}"
    mv "$dir/$name.tmp.${name##*.}" "$dir/$name"
}

make basic.mp4 $(src 640x360 25 3) $(sine 3) $x264 -pix_fmt yuv420p $aac -ac 2
if [ ! -s "$dir/rotated.mp4" ]; then
    # ffmpeg 5.1's CLI cannot set a display matrix: write the tkhd matrix of
    # the video track (the first trak) for a 90-degree turn ourselves.
    ff $(src 480x270 25 2) $(sine 2) $x264 -pix_fmt yuv420p $aac "$dir/rotated.tmp.mp4"
    python3 - "$dir/rotated.tmp.mp4" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
def find(b, start, end, typ):
    off = start
    while off + 8 <= end:
        size, t = struct.unpack(">I4s", b[off:off + 8])
        if size < 8:
            break
        if t == typ:
            return off, size
        off += size
    raise SystemExit("no %s box" % typ)
moov, ms = find(b, 0, len(b), b"moov")
trak, ts = find(b, moov + 8, moov + ms, b"trak")
tkhd, _ = find(b, trak + 8, trak + ts, b"tkhd")
m = tkhd + (60 if b[tkhd + 8] == 1 else 48)
b[m:m + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
open(p, "wb").write(b)
PY
    mv "$dir/rotated.tmp.mp4" "$dir/rotated.mp4"
fi
make vfr.mp4 $(src 320x240 30 3) $(sine 3) \
    -vf "select='not(eq(mod(n\,5)\,1))*not(eq(mod(n\,7)\,3))'" -fps_mode vfr $x264 -pix_fmt yuv420p $aac
make noaudio.mp4 $(src 320x240 25 2) $x264 -pix_fmt yuv420p
make yuv420p10.mp4 $(src 320x240 25 2) $(sine 2) $x264 -pix_fmt yuv420p10le $aac
make yuv422p.mp4 $(src 320x240 25 2) $(sine 2) $x264 -pix_fmt yuv422p $aac
make yuv444p.mp4 $(src 320x240 25 2) $(sine 2) $x264 -pix_fmt yuv444p $aac
make interlaced.mp4 $(src 720x576 25 2) $(sine 2) -vf "tinterlace=mode=interleave_top,fps=25" \
    -c:v libx264 -preset ultrafast -crf 28 -flags +ildct+ilme -x264-params tff=1 -pix_fmt yuv420p $aac
make surround.mp4 $(src 320x240 25 2) $(sine 2) -af "aformat=channel_layouts=5.1" \
    $x264 -pix_fmt yuv420p -c:a aac -b:a 192k
make mono.mp4 $(src 320x240 25 2) $(sine 2 44100) $x264 -pix_fmt yuv420p $aac -ac 1
make odd.mp4 $(src 321x241 25 2) $(sine 2) $x264 -pix_fmt yuv444p $aac
make big4k.mp4 $(src 3840x2160 5 1) $x264 -pix_fmt yuv420p
if [ ! -s "$dir/truncated.mp4" ]; then
    ff $(src 320x240 25 4) $(sine 4) $x264 -pix_fmt yuv420p $aac -movflags +faststart "$dir/full.tmp.mp4"
    size=$(stat -c %s "$dir/full.tmp.mp4")
    head -c $((size * 55 / 100)) "$dir/full.tmp.mp4" > "$dir/truncated.mp4.tmp"
    mv "$dir/truncated.mp4.tmp" "$dir/truncated.mp4"
    rm -f "$dir/full.tmp.mp4"
fi
if [ ! -s "$dir/nomoov.mp4" ]; then
    ff $(src 320x240 25 3) $(sine 3) $x264 -pix_fmt yuv420p $aac "$dir/full.tmp.mp4"
    size=$(stat -c %s "$dir/full.tmp.mp4")
    head -c $((size * 80 / 100)) "$dir/full.tmp.mp4" > "$dir/nomoov.mp4.tmp"
    mv "$dir/nomoov.mp4.tmp" "$dir/nomoov.mp4"
    rm -f "$dir/full.tmp.mp4"
fi
: > "$dir/empty.mp4"
[ -s "$dir/text.mp4" ] || printf 'This is not a video.\nJust some text in a file named .mp4.\n' > "$dir/text.mp4"
if [ ! -s "$dir/subs.mkv" ]; then
    cat > "$dir/subs.tmp.srt" <<'EOF'
1
00:00:00,500 --> 00:00:01,500
Hello <i>world</i> & friends

2
00:00:02,000 --> 00:00:03,200
Second line
with a break
EOF
    cat > "$dir/subs.tmp.ass" <<'EOF'
[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.20,0:00:01.80,Default,,0,0,0,,{\b1}Bonjour{\b0} le monde\Nligne deux
Dialogue: 0,0:00:02.10,0:00:02.90,Default,,0,0,0,,Au revoir
EOF
    ff $(src 320x240 25 3) $(sine 3) -i "$dir/subs.tmp.srt" -i "$dir/subs.tmp.ass" \
        -map 0:v -map 1:a -map 2:s -map 3:s $x264 -pix_fmt yuv420p $aac -c:s:0 subrip -c:s:1 ass \
        -metadata:s:s:0 language=eng -metadata:s:s:1 language=fre "$dir/subs.tmp.mkv"
    ff -i "$dir/subs.tmp.mkv" -map 0 -c:v copy -c:a copy -c:s mov_text -metadata:s:s:0 language=ger \
        -map -0:s:1 "$dir/movtext.tmp.mp4"
    mv "$dir/movtext.tmp.mp4" "$dir/movtext.mp4"
    mv "$dir/subs.tmp.mkv" "$dir/subs.mkv"
    rm -f "$dir/subs.tmp.srt" "$dir/subs.tmp.ass"
fi
make sar.mp4 $(src 720x576 25 2) $(sine 2) -vf setsar=16/15 $x264 -pix_fmt yuv420p $aac
make multiaudio.mp4 $(src 320x240 25 2) $(sine 2) -f lavfi -i "sine=frequency=1000:duration=2" \
    -map 0:v -map 1:a -map 2:a $x264 -pix_fmt yuv420p $aac -ac 2 \
    -disposition:a:0 0 -disposition:a:1 default -metadata:s:a:0 language=eng -metadata:s:a:1 language=spa
make ntsc.mp4 -f lavfi -i "testsrc2=size=320x240:rate=30000/1001:duration=5" $(sine 5) \
    $x264 -pix_fmt yuv420p $aac
make audiolong.mp4 $(src 320x240 25 2) $(sine 3) $x264 -pix_fmt yuv420p $aac
make audioshort.mp4 $(src 320x240 25 3) $(sine 1) $x264 -pix_fmt yuv420p $aac
make mpeg2.ts $(src 320x240 25 2) $(sine 2) -c:v mpeg2video -q:v 5 -c:a mp2 -output_ts_offset 10
echo "corpus: $dir"
