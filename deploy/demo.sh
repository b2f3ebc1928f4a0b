#!/usr/bin/env bash
# streamscale demo: install what is missing, build, start a private
# redis-server, the coordinator and one worker on free loopback ports,
# encode a video (yours, or a generated clip) to local storage, and print
# where to watch it. Everything it starts is stopped by pid on exit.
#
#   deploy/demo.sh [VIDEO] [--once] [--build DIR] [--workdir DIR]
#
#   VIDEO          a local video file (default: a generated 20 s 1080p clip)
#   --once         exit after the encode instead of serving it until Ctrl-C
#   --build DIR    build folder (default: build/ in the checkout)
#   --workdir DIR  logs, the generated clip and the output (default: .demo/)
#
# It needs only the build and run packages (deploy/packages/build.txt,
# run.txt): the tests are not built (-DSS_TESTS=OFF; cmocka is a test package).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
video=""
once=0
build="$root/build"
work="$root/.demo"
while [ $# -gt 0 ]; do
    case "$1" in
        --once) once=1 ;;
        --build|--workdir)
            [ $# -ge 2 ] || { echo "demo: $1 needs a folder" >&2; exit 2; }
            if [ "$1" = --build ]; then build=$2; else work=$2; fi
            shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "demo: unknown option $1" >&2; exit 2 ;;
        *) video=$1 ;;
    esac
    shift
done
if [ -n "$video" ] && [ ! -r "$video" ]; then
    echo "demo: cannot read $video" >&2
    exit 1
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "installing missing packages"
"$root/deploy/deps.sh" build run

say "building ($build)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSS_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
bin="$build/bin"

mkdir -p "$work"
work=$(cd "$work" && pwd)     # file:// URLs below need an absolute path
run=$(mktemp -d "$work/run.XXXXXX")
out="$work/out"
mkdir -p "$out" "$run/scratch"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$run/scratch"
}
trap cleanup EXIT INT TERM

# A free loopback port: bash's /dev/tcp fails to connect to a closed port.
# Below the kernel's ephemeral range: a port in it can be taken at any
# moment by an outgoing connection (the daemons' own to Redis), which once
# kept the coordinator from listening.
free_port() {
    local p lo=10000 hi=32767 eph
    if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && [ "$eph" -gt 11000 ]; then
        hi=$((eph - 1))
    fi
    for _ in $(seq 100); do
        p=$(( (RANDOM % (hi - lo + 1)) + lo ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "demo: no free port found" >&2
    return 1
}
# Poll until a command succeeds (a readiness probe, not a fixed sleep).
wait_for() {
    local what=$1; shift
    for _ in $(seq 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "demo: $what did not come up; logs in $run" >&2
    if [ -s "$run/$what.log" ]; then tail -n 15 "$run/$what.log" >&2; fi
    exit 1
}

# PING over bash's /dev/tcp: a readiness probe that needs no redis-cli.
redis_ping() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 &&
        IFS= read -r -t 2 line <&3 && [ "${line%$'\r'}" = "+PONG" ]) 2>/dev/null
}
# Start redis-server on a free port; if it exits (the port was taken between
# the check and the bind, say), show why and try another port.
start_redis() {
    local pid
    for attempt in 1 2 3 4 5; do
        rport=$(free_port)
        say "starting redis-server on 127.0.0.1:$rport"
        redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$run" \
            >"$run/redis.log" 2>&1 &
        pid=$!
        for _ in $(seq 300); do
            if redis_ping "$rport"; then pids+=("$pid"); return 0; fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "demo: redis-server on port $rport did not answer PING (attempt $attempt); its log:" >&2
        tail -n 15 "$run/redis.log" >&2
    done
    echo "demo: redis did not come up; logs in $run" >&2
    exit 1
}
start_redis

token=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
cport=$(free_port)
export STREAMSCALE_REDIS="redis://127.0.0.1:$rport/0"
export STREAMSCALE_API_TOKEN="$token"
export STREAMSCALE_API="http://127.0.0.1:$cport"
say "starting the coordinator on $STREAMSCALE_API"
STREAMSCALE_LISTEN="127.0.0.1:$cport" STREAMSCALE_OUTPUT_DIR="$out" \
    STREAMSCALE_DEFAULT_DESTINATION="file://$out/" \
    "$bin/streamscale-coordinator" >"$run/coordinator.log" 2>&1 &
pids+=($!)
wait_for coordinator curl -sf "$STREAMSCALE_API/healthz"

if [ -z "$video" ]; then
    video="$work/testclip-1080p.mp4"
    if [ ! -s "$video" ]; then
        say "generating a 20 s 1080p test clip with a tone ($video)"
        "$bin/streamscale-worker" testclip "$video" --seconds 20 --size 1920x1080 --rate 30
    fi
fi

# file:// is refused unless file_roots names the folder: the worker may
# read the video's folder and write the output folder, nothing else.
roots="$(cd "$(dirname "$video")" && pwd -P):$out"
say "starting a worker (storage file://$out/, file_roots $roots)"
STREAMSCALE_ID=demo-worker STREAMSCALE_SCRATCH_DIR="$run/scratch" STREAMSCALE_STORAGE="file://$out/" \
    STREAMSCALE_FILE_ROOTS="$roots" STREAMSCALE_CPU_THRESHOLD=100 \
    "$bin/streamscale-worker" >"$run/worker.log" 2>&1 &
pids+=($!)
wait_for worker grep -q "worker ready" "$run/worker.log"

say "submitting $video"
set +e
"$bin/streamscale" submit "$video" --wait | tee "$run/result.txt"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
    echo "demo: the job did not complete (exit $rc); logs in $run" >&2
    exit "$rc"
fi
id=$(sed -n 's/^id: *//p' "$run/result.txt")
echo
say "done: job $id"
echo "  output folder : $out/$id/"
echo "  HLS           : $out/$id/master.m3u8"
echo "  DASH          : $out/$id/manifest.mpd"
echo "  result        : $out/$id/job.json"
echo "  watch it      : $STREAMSCALE_API/#/jobs/$id   (the dashboard plays it with hls.js)"
echo "  or            : ffplay $out/$id/master.m3u8 / mpv $out/$id/manifest.mpd"
echo "  API token     : $token   (the dashboard asks for it once)"
echo "  logs          : $run/"
if [ "$once" = 1 ]; then
    exit 0
fi
say "serving until Ctrl-C"
wait "${pids[1]}"
