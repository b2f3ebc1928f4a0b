#!/bin/sh
# bench_upload.sh — upload speed of streamscale's S3 backend (ss_s3tool, the
# same storage_put_async/storage_wait path the worker uses) against rclone
# (Debian's rclone, `rclone copy --transfers 16` and `--transfers 100`), on
# the same local S3 server (OpenStack Swift + s3api, SigV4 verified), in the
# same run, on the same machine.
#
#   tests/bench/bench_upload.sh [BUILD_DIR]      (default: build)
#   RUNS=3 LADDER_FILES=600 BIG_MB=200 tests/bench/bench_upload.sh build-s3
#
# Data: a packaged-ladder-like folder (LADDER_FILES files of 50-400 KB in
# rendition folders) and one BIG_MB MiB file. Each configuration uploads
# each data set RUNS times to a fresh prefix; the table shows medians (MB/s
# = 10^6 bytes/s, files/s) and the ratio streamscale / other (> 1: we are
# faster). Needs deploy/packages/test-s3.txt. Never asserts a time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
case "$build" in /*) ;; *) build="$src/$build" ;; esac
[ -x "$build/tests/ss_s3tool" ] || { echo "bench: build first ($build/tests/ss_s3tool missing)" >&2; exit 2; }
command -v rclone >/dev/null || { echo "bench: rclone missing (deploy/deps.sh test-s3)" >&2; exit 2; }
# rclone 1.60 fails before any request when AWS_CA_BUNDLE is set (see shared NOTES).
unset AWS_CA_BUNDLE
export SS_BUILD_DIR="$build" SS_SOURCE_DIR="$src"
exec /usr/bin/python3 - "$src" "$build" <<'EOF'
import os, random, signal, statistics, subprocess, sys, time, json
src, build = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, "tests", "integration"))
from lib.s3server import SwiftS3, harness

RUNS = int(os.environ.get("RUNS", "3"))
NFILES = int(os.environ.get("LADDER_FILES", "600"))
BIG_MB = int(os.environ.get("BIG_MB", "200"))
TOOL = os.path.join(build, "tests", "ss_s3tool")
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def make_data(root):
    rnd = random.Random(42)
    ladder = os.path.join(root, "ladder")
    total = 0
    rungs = ["240p", "360p", "480p", "720p", "1080p", "audio"]
    for i in range(NFILES):
        d = os.path.join(ladder, rungs[i % len(rungs)])
        os.makedirs(d, exist_ok=True)
        n = rnd.randint(50_000, 400_000)
        with open(os.path.join(d, "seg_%05d.m4s" % (i // len(rungs))), "wb") as f:
            f.write(os.urandom(n))
        total += n
    big = os.path.join(root, "big")
    os.makedirs(big)
    with open(os.path.join(big, "source.mp4"), "wb") as f:
        for _ in range(BIG_MB):
            f.write(os.urandom(1 << 20))
    return {"ladder": (ladder, NFILES, total), "big": (big, 1, BIG_MB << 20)}


with harness.Harness("bench_upload") as h:
    data = make_data(h.path("data"))
    s3 = SwiftS3(h).start()
    c = s3.client()
    c.create_bucket(Bucket="bench")
    env = dict(os.environ, **s3.env())
    renv = dict(os.environ, RCLONE_CONFIG_SS_TYPE="s3", RCLONE_CONFIG_SS_PROVIDER="Other",
                RCLONE_CONFIG_SS_ACCESS_KEY_ID=s3.access_key,
                RCLONE_CONFIG_SS_SECRET_ACCESS_KEY=s3.secret_key,
                RCLONE_CONFIG_SS_ENDPOINT=s3.endpoint, RCLONE_CONFIG_SS_REGION=s3.region,
                RCLONE_CONFIG_SS_FORCE_PATH_STYLE="true", RCLONE_CONFIG="/dev/null")
    renv.pop("AWS_CA_BUNDLE", None)
    configs = [
        ("streamscale (16 parallel)", "ss", ["--parallel", "16"]),
        ("rclone --transfers 16", "rclone", ["--transfers", "16"]),
        ("rclone --transfers 100", "rclone", ["--transfers", "100"]),
        ("rclone --transfers 16, multipart 8M x16", "rclone",
         ["--transfers", "16", "--s3-upload-cutoff", "32M", "--s3-chunk-size", "8M",
          "--s3-upload-concurrency", "16"]),
    ]
    n = [0]

    def once(kind, args, path):
        n[0] += 1
        prefix = "run%04d" % n[0]
        t0 = time.monotonic()
        if kind == "ss":
            r = subprocess.run([TOOL, "--endpoint", s3.endpoint, "--region", s3.region,
                                "--allow-private"] + args + ["put", "s3://bench/%s/" % prefix, path],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ok = r.returncode == 0 and json.loads(r.stdout)["ok"]
        else:
            r = subprocess.run(["rclone", "copy", path, "ss:bench/%s" % prefix] + args,
                               env=renv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ok = r.returncode == 0
        dt = time.monotonic() - t0
        if not ok:
            raise SystemExit("bench: %s %s failed: %s %s" % (kind, args, r.stdout[-500:], r.stderr[-1500:]))
        # Not timed: check the count and free the server's disk.
        subprocess.run([TOOL, "--endpoint", s3.endpoint, "--region", s3.region, "--allow-private",
                        "rm", "s3://bench/", prefix + "/"], env=env, stdout=subprocess.DEVNULL,
                       check=True)
        return dt

    results = {}
    for ds in ("ladder", "big"):
        path, files, size = data[ds]
        for name, kind, args in configs:
            if ds == "ladder" and "multipart" in name:
                continue   # no file is over the multipart cutoff
            times = [once(kind, args, path) for _ in range(RUNS)]
            med = statistics.median(times)
            results[(ds, name)] = (size / med / 1e6, files / med, med, times)

    print("\nupload to a local Swift+s3api (SigV4), %d runs each, medians; machine: %d cpus" %
          (RUNS, os.cpu_count()))
    print("%-7s %-42s %9s %9s %8s %18s" % ("data", "uploader", "MB/s", "files/s", "time s", "streamscale/this"))
    for ds in ("ladder", "big"):
        path, files, size = data[ds]
        base = results[(ds, configs[0][0])]
        label = "%s (%d files, %.0f MB)" % (ds, files, size / 1e6)
        print(label)
        for name, _, _ in configs:
            if (ds, name) not in results:
                continue
            mbps, fps, med, times = results[(ds, name)]
            print("%-7s %-42s %9.1f %9.1f %8.2f %18.2f" % ("", name, mbps, fps, med, base[0] / mbps))
EOF
