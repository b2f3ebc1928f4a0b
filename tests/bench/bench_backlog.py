#!/usr/bin/env python3
"""bench_backlog.py — big backlogs: what N queued jobs cost and whether the
API and the claim stay flat as N grows (docs/BENCHMARKS.md, "Big
backlogs").

    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j2 --target streamscale-coordinator ss_queue_load
    (cd tests/bench/bullmq && npm ci --no-audit --no-fund)    # for the BullMQ column
    /usr/bin/python3 tests/bench/bench_backlog.py --build build --sizes 10000,100000
    /usr/bin/python3 tests/bench/bench_backlog.py --build build --sizes 1000000   # ~2 GB of Redis

For each N, on a fresh redis-server:
  memory      used_memory after N no-op jobs were queued (ss_queue_load
              enqueue: the coordinator's enqueue script, pipelined) minus
              before, per job; then the same for BullMQ (addBulk of the same
              payload: streamscale's canonical spec of such a job) when
              tests/bench/bullmq/node_modules exists.
  list p99    200 × GET /v1/jobs?state=queued&limit=50 (a new connection each,
              the answer read whole)
  queue p99   200 × GET /v1/queue
  claim       200 claim scripts run one at a time from the backlog (what a
              worker's claim costs: its round trip, µs, p50/p99)
Never asserts.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def used_memory(r):
    for line in r("INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def run_json(argv, cwd=None):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=3600, cwd=cwd)
    if p.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (p.returncode, " ".join(map(str, argv)), p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="10000,100000")
    args = ap.parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import Harness, RedisClient  # noqa: E402
    load = os.path.join(os.environ["SS_BUILD_DIR"], "tests", "ss_queue_load")
    bull = os.path.join(HERE, "bullmq")
    have_bull = os.path.isdir(os.path.join(bull, "node_modules"))
    shas = run_json([load, "shas"])
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        with Harness("bench-backlog-%d" % n) as h:
            rport = h.redis()
            r = RedisClient(rport)
            bull_bytes = None
            if have_bull:
                run_json([load, "enqueue", "--port", rport, "--n", 1, "--tag", "payload"])
                payload = h.path("payload.json")
                with open(payload, "w") as f:
                    f.write(r("HGET", "{ss}:job:" + r("ZRANGE", "{ss}:jobs", 0, 0)[0], "spec"))
                r("FLUSHALL")
                m0 = used_memory(r)
                run_json(["node", os.path.join(bull, "bench.js"), "fill", "--port", rport, "--n", n,
                          "--payload", payload])
                bull_bytes = (used_memory(r) - m0) / n
                r("FLUSHALL")
            m0 = used_memory(r)
            enq = run_json([load, "enqueue", "--port", rport, "--n", n, "--depth", 64,
                            "--tag", "backlog"])
            ss_bytes = (used_memory(r) - m0) / n
            url = h.coordinator(redis_port=rport, token="bench-token",
                                extra={"STREAMSCALE_LOG_LEVEL": "warn"})
            lat = {}
            for name, path in (("list", "/v1/jobs?state=queued&limit=50"), ("queue", "/v1/queue")):
                xs = []
                for _ in range(200):
                    # plain urllib: the harness's http_json also validates the
                    # answer against the schemas, which would be timed too
                    req = urllib.request.Request(url + path,
                                                 headers={"Authorization": "Bearer bench-token"})
                    t0 = time.monotonic()
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        resp.read()
                        st = resp.status
                    xs.append((time.monotonic() - t0) * 1000)
                    assert st == 200, st
                lat[name] = (statistics.median(xs), pct(xs, 0.99))
            # a worker's first claim puts the claim script into Redis's cache
            h.queue_worker("loader", rport, extra={"STREAMSCALE_SLOTS": "1",
                                                  "STREAMSCALE_LOG_LEVEL": "warn"},
                           wait_ready=False)
            while int(r("ZCARD", "{ss}:st:completed")) < 1:
                time.sleep(0.01)
            h.stop("loader")
            claims = []
            for i in range(200):
                t0 = time.monotonic()
                rep = r("EVALSHA", shas["claim"], 1, "{ss}:processing", "{ss}:", "bench-%d" % i,
                        600000, 300000)
                claims.append((time.monotonic() - t0) * 1e6)
                assert rep, "the claim found nothing"
            rows.append((n, ss_bytes, bull_bytes, enq["per_s"], lat["list"], lat["queue"],
                         (statistics.median(claims), pct(claims, 0.99))))
            print("N %d: %.0f bytes/job (BullMQ %s), enqueue %.0f/s, list p50/p99 %.1f/%.1f ms, "
                  "queue %.1f/%.1f ms, claim %.0f/%.0f µs" %
                  (n, ss_bytes, "%.0f" % bull_bytes if bull_bytes else "-", enq["per_s"],
                   lat["list"][0], lat["list"][1], lat["queue"][0], lat["queue"][1],
                   rows[-1][6][0], rows[-1][6][1]), flush=True)
            r.close()
    print("\n| queued jobs | Redis bytes/job | BullMQ bytes/job | enqueue /s (pipelined) | "
          "list p50 / p99 (ms) | /v1/queue p50 / p99 (ms) | claim p50 / p99 (µs) |")
    print("|---|---|---|---|---|---|---|")
    for n, sb, bb, eps, li, qu, cl in rows:
        print("| %d | %.0f | %s | %.0f | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f |" %
              (n, sb, "%.0f" % bb if bb else "—", eps, li[0], li[1], qu[0], qu[1], cl[0], cl[1]))


if __name__ == "__main__":
    main()
