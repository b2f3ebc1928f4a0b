#!/usr/bin/env python3
"""bench_threads_cpu.py — what `threads` costs in CPU: one local
`streamscale-worker encode` (a generated 720p title, auto ladder) per
set-up, runs interleaved, user+sys CPU and wall of each from wait4; medians
and the CPU ratios against the first set-up. CPU, not wall, is the figure
that stays put on a shared, loaded machine.

  tests/bench/bench_threads_cpu.py --runs 6 \\
      'new-t2=build-rel/bin/streamscale-worker::2' \\
      'new-t0=build-rel/bin/streamscale-worker::0' \\
      'new-t1-core0=build-rel/bin/streamscale-worker:0:1' \\
      'old-t1-core0=/tmp/old/bin/streamscale-worker:0:1'

A set-up is NAME=BINARY:CPUS:THREADS (CPUS: a taskset list, empty for
none). The title is made with ffmpeg (tests only). Not a test: it never
asserts. Figures go to docs/BENCHMARKS.md."""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def one(binary, cpus, threads, src, out):
    shutil.rmtree(out, ignore_errors=True)
    cmd = ([binary, "encode", src, out, "--threads", threads])
    if cpus:
        cmd = ["taskset", "-c", cpus] + cmd
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status:
        raise SystemExit("%s failed (status %d)" % (" ".join(cmd), status))
    return ru.ru_utime + ru.ru_stime, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("setups", nargs="+")
    a = ap.parse_args()
    setups = []
    for s in a.setups:
        name, rest = s.split("=", 1)
        binary, cpus, threads = rest.rsplit(":", 2)
        setups.append((name, binary, cpus, threads))
    with tempfile.TemporaryDirectory(prefix="ss-bench-threads-") as d:
        src = os.path.join(d, "in.mp4")
        subprocess.check_call(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                               "testsrc2=size=%s:rate=30:duration=%d" % (a.size, a.seconds), "-f",
                               "lavfi", "-i", "sine=frequency=440:duration=%d" % a.seconds, "-c:v",
                               "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p",
                               "-c:a", "aac", "-shortest", src])
        res = {s[0]: [] for s in setups}
        for r in range(a.runs):
            for name, binary, cpus, threads in setups:
                cpu, wall = one(binary, cpus, threads, src, os.path.join(d, "out"))
                res[name].append((cpu, wall))
                print("run %d %-14s cpu %6.2f s  wall %6.2f s" % (r + 1, name, cpu, wall), flush=True)
        base = statistics.median(c for c, _ in res[setups[0][0]])
        for name, *_ in setups:
            cpu = statistics.median(c for c, _ in res[name])
            print("%-14s cpu median %6.2f s (%.3fx %s)  wall median %6.2f s  cpu runs %s" % (
                name, cpu, cpu / base, setups[0][0], statistics.median(w for _, w in res[name]),
                " ".join("%.2f" % c for c, _ in res[name])))


if __name__ == "__main__":
    main()
