#!/usr/bin/env python3
"""AV1 vs H.264 ladders from `streamscale-worker encode`, side by side on the
same inputs: BD-rate of the AV1 rungs against the H.264 rungs at equal PSNR
and at equal SSIM (both measured by the worker at the display size, job.json
renditions[].psnr/ssim), per rung and averaged over the ladder, and the
encode CPU seconds per minute of video of each codec.

For each input and each CRF in CRFS the ladder is encoded twice: `--codecs
h264` and `--codecs h264,av1` (the AV1 CRF is 1.5 x the H.264 one, see
docs/MEDIA.md). The AV1 ladder's CPU is the process CPU of the second run
minus the first (SVT-AV1 runs its own threads, so per-thread figures miss
it). BD-rate: Bjontegaard's cubic fit of log(rate) over quality, integrated
over the quality range both curves cover; negative = AV1 needs fewer bits.
Not a test: it never asserts a time.

    tests/bench/bench_av1.py BUILD_DIR [SECONDS]     (CRFS="19 23 27 31")

Inputs: a generated 1080p clip (testsrc2 + temporal noise) and the first
SECONDS (default 6) of cockatoo.mp4 (tests/media/fetch.sh). Table on stdout
and in tests/bench/out/av1/bd.md."""
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "out", "av1")


def ff(*args):
    subprocess.check_call(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + list(args))


def encode(worker, src, out, crf, codecs):
    subprocess.run(["rm", "-rf", out], check=True)
    env = dict(os.environ, SVT_LOG="1")
    subprocess.run([worker, "encode", src, out, "--crf", str(crf), "--codecs", codecs,
                    "--no-thumbnails", "--segment-seconds", "2"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "job.json")) as f:
        return json.load(f)


def polyfit3(xs, ys):
    """Least-squares cubic y = c0 + c1 x + c2 x^2 + c3 x^3."""
    n = 4
    a = [[sum(x ** (i + j) for x in xs) for j in range(n)] for i in range(n)]
    b = [sum(y * x ** i for x, y in zip(xs, ys)) for i in range(n)]
    for c in range(n):   # Gaussian elimination with partial pivoting
        p = max(range(c, n), key=lambda r: abs(a[r][c]))
        a[c], a[p], b[c], b[p] = a[p], a[c], b[p], b[c]
        for r in range(c + 1, n):
            f = a[r][c] / a[c][c]
            for k in range(c, n):
                a[r][k] -= f * a[c][k]
            b[r] -= f * b[c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (b[r] - sum(a[r][k] * x[k] for k in range(r + 1, n))) / a[r][r]
    return x


def integral(c, lo, hi):
    return sum(c[i] / (i + 1) * (hi ** (i + 1) - lo ** (i + 1)) for i in range(4))


def bd_rate(ref, test):
    """ref, test: [(rate, quality)] -> percent rate difference at equal quality."""
    qr, qt = [q for _, q in ref], [q for _, q in test]
    lo, hi = max(min(qr), min(qt)), min(max(qr), max(qt))
    if hi <= lo:
        return None
    cr = polyfit3(qr, [math.log(r) for r, _ in ref])
    ct = polyfit3(qt, [math.log(r) for r, _ in test])
    d = (integral(ct, lo, hi) - integral(cr, lo, hi)) / (hi - lo)
    return (math.exp(d) - 1) * 100


def ssim_db(s):
    return -10 * math.log10(max(1 - s, 1e-10))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 6
    crfs = [int(c) for c in os.environ.get("CRFS", "19 23 27 31").split()]
    worker = os.path.join(build, "bin", "streamscale-worker")
    os.makedirs(OUT, exist_ok=True)
    subprocess.check_call([os.path.join(ROOT, "tests", "media", "fetch.sh"),
                           os.path.join(ROOT, "tests", "media", "cache")], stdout=subprocess.DEVNULL)
    gen = os.path.join(OUT, "gen1080.mp4")
    if not os.path.exists(gen):
        ff("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=%g,noise=alls=2:allf=t" % secs,
           "-f", "lavfi", "-i", "sine=frequency=440:duration=%g" % secs,
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", gen)
    real = os.path.join(OUT, "cockatoo-%gs.mp4" % secs)
    if not os.path.exists(real):
        ff("-i", os.path.join(ROOT, "tests", "media", "cache", "cockatoo.mp4"), "-t", str(secs),
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-c:a", "aac", real)
    lines = ["| input | rung | BD-rate PSNR | BD-rate SSIM | H.264 kbit/s @ CRF 23 | AV1 kbit/s @ CRF 35 |",
             "|---|---|---:|---:|---:|---:|"]
    cpu_lines = ["| input | H.264 ladder CPU s / min | AV1 ladder CPU s / min | ratio |", "|---|---:|---:|---:|"]
    for src in (gen, real):
        tag = os.path.basename(src)
        pts = {}   # rung -> codec -> [(rate, psnr, ssim)]
        cpu_h = cpu_a = dur = 0.0
        mid = {}
        for crf in crfs:
            h = encode(worker, src, os.path.join(OUT, "h"), crf, "h264")
            b = encode(worker, src, os.path.join(OUT, "b"), crf, "h264,av1")
            dur += b["duration"]
            cpu_h += h["timings"]["cpu_seconds"]["process"]
            cpu_a += b["timings"]["cpu_seconds"]["process"] - h["timings"]["cpu_seconds"]["process"]
            for r in b["renditions"]:
                rung = r["name"].replace("av1-", "")
                pts.setdefault(rung, {}).setdefault(r["video_codec"], []).append(
                    (r["video_bitrate_avg"], r["psnr"], r["ssim"]))
                if crf == 23:
                    mid.setdefault(rung, {})[r["video_codec"]] = r["video_bitrate_avg"] / 1000
            print("%s crf %d done" % (tag, crf), file=sys.stderr)
        bp, bs = [], []
        for rung, c in sorted(pts.items(), key=lambda kv: int(kv[0].rstrip("p"))):
            p = bd_rate([(r, q) for r, q, _ in c["h264"]], [(r, q) for r, q, _ in c["av1"]])
            s = bd_rate([(r, ssim_db(q)) for r, _, q in c["h264"]], [(r, ssim_db(q)) for r, _, q in c["av1"]])
            bp += [p] if p is not None else []
            bs += [s] if s is not None else []
            lines.append("| %s | %s | %s | %s | %.0f | %.0f |" % (
                tag, rung, "%.1f %%" % p if p is not None else "n/a", "%.1f %%" % s if s is not None else "n/a",
                mid.get(rung, {}).get("h264", 0), mid.get(rung, {}).get("av1", 0)))
        if bp:
            lines.append("| %s | **mean** | **%.1f %%** | **%.1f %%** | | |" % (
                tag, sum(bp) / len(bp), sum(bs) / len(bs) if bs else float("nan")))
        cpu_lines.append("| %s | %.1f | %.1f | %.1fx |" % (tag, cpu_h * 60 / dur, cpu_a * 60 / dur,
                                                          cpu_a / cpu_h if cpu_h else 0))
    text = "\n".join(lines) + "\n\n" + "\n".join(cpu_lines) + "\n"
    with open(os.path.join(OUT, "bd.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
