#!/usr/bin/env python3
"""bench_herd.py — the thundering herd: with N idle subscribed workers, what
one new job costs. N real worker daemons with the no-op executor
(tests/tools/ss_queue_worker: the real queue code, one light process each,
slots 1) wait on one redis-server; jobs then arrive one at a time
(tests/tools/ss_queue_load.c latency: one every 1/rate s, each claimed
before the next is sent), the herd's worst case.

    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j2 --target ss_queue_worker ss_queue_load
    /usr/bin/python3 tests/bench/bench_herd.py --build build --consumers 1,50,200

Per job, over the arrival phase only:
  claim attempts   claim_next runs (the claim script and finish's claim of
                   the next job): Redis's own command count of LINDEX (three
                   per run, scripts included; INFO commandstats) / 3 / jobs
  Redis CPU        redis-server's used_cpu_user+sys during the phase minus
                   what the same N workers cost it idle for as long
                   (registry beats, polls), per job, µs
  latency          enqueue sent -> claim script ran, p50/p99 (µs)
poll_ms is 60 s for the run so that the safety-net poll does not blur the
notification path. Never asserts.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--consumers", default="1,50,200")
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50.0, help="jobs per second")
    return ap.parse_args()


def redis_cpu_s(r):
    tot = 0.0
    for line in r("INFO", "cpu").splitlines():
        k, _, v = line.partition(":")
        if k in ("used_cpu_sys", "used_cpu_user"):
            tot += float(v)
    return tot


def lindex_calls(r):
    for line in r("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_lindex:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def main():
    args = parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import Harness, RedisClient, wait_until  # noqa: E402
    load = os.path.join(os.environ["SS_BUILD_DIR"], "tests", "ss_queue_load")
    rows = []
    for n in [int(x) for x in args.consumers.split(",")]:
        with Harness("bench-herd-%d" % n) as h:
            rport = h.redis()
            r = RedisClient(rport)
            env = {"STREAMSCALE_SLOTS": "1", "STREAMSCALE_POLL_MS": "60000",
                   "STREAMSCALE_LOG_LEVEL": "warn", "STREAMSCALE_REGISTRY_TTL": "30"}
            for k in range(n):
                h.queue_worker("c%d" % k, rport, extra=env, wait_ready=False)
            wait_until(lambda: int(r("ZCARD", "{ss}:workers")) >= n, 120, "%d workers" % n,
                       interval=0.2)
            time.sleep(3)   # every worker's first claim (orphans, empty queue) is done
            secs = args.jobs / args.rate
            c0 = redis_cpu_s(r)
            time.sleep(secs)
            idle = redis_cpu_s(r) - c0
            r("CONFIG", "RESETSTAT")
            c0, l0, t0 = redis_cpu_s(r), lindex_calls(r), time.monotonic()
            p = subprocess.run([load, "latency", "--port", str(rport), "--n", str(args.jobs),
                                "--rate", str(args.rate), "--tag", "herd%d" % n],
                               capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
            lat = json.loads(p.stdout.strip().splitlines()[-1])
            wait_until(lambda: int(r("ZCARD", "{ss}:st:completed")) >= args.jobs, 60, "completions")
            wall = time.monotonic() - t0
            busy = redis_cpu_s(r) - c0
            attempts = (lindex_calls(r) - l0) / 3.0 / args.jobs
            cpu = max(busy - idle * wall / secs, 0) / args.jobs * 1e6
            rows.append((n, attempts, cpu, lat["p50_us"], lat["p99_us"]))
            print("consumers %d: %.2f claim attempts/job, Redis CPU %.0f µs/job (idle "
                  "subtracted), latency p50 %d µs p99 %d µs" % rows[-1], flush=True)
            r.close()
    base = rows[0][2] or 1
    print("\n| consumers | claim attempts / job | Redis CPU / job (µs) | vs 1 consumer | "
          "claim latency p50 / p99 (µs) |")
    print("|---|---|---|---|---|")
    for n, a, c, p50, p99 in rows:
        print("| %d | %.2f | %.0f | %.2f× | %d / %d |" % (n, a, c, c / base, p50, p99))


if __name__ == "__main__":
    main()
