#!/usr/bin/env python3
"""bench_backlog.py — big backlogs: what N queued jobs cost and whether the
API and the claim stay flat as N grows (docs/BENCHMARKS.md, "Big
backlogs").

    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j2 --target streamscale-coordinator ss_queue_load
    (cd tests/bench/bullmq && npm ci --no-audit --no-fund)    # for the BullMQ column
    /usr/bin/python3 tests/bench/bench_backlog.py --build build --sizes 10000,100000
    /usr/bin/python3 tests/bench/bench_backlog.py --build build --sizes 1000000   # ~6 GB of Redis
    /usr/bin/python3 tests/bench/bench_backlog.py --build build --sizes 10000,100000,1000000 \
        --stream-node-max-bytes 512 --expire     # deploy/redis.conf's setting (~2.6 GB at 1M)

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
  expire      with --expire: every job is then made a completed job that
              ended 30 days ago (a helper script: state, finished_ms and the
              st:completed index, as finish.lua leaves them), and the
              retention script runs as the coordinator's reaper runs it
              (expire.lua, 1,000 jobs a call) until nothing is left: per
              call ms p50 / p99 / max (how long Redis is busy with one call:
              the stall every other client sees), the first and last tenth of
              the calls' medians (flat or not as the backlog shrinks), jobs
              forgotten per second, and Redis memory left per job.
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
    ap.add_argument("--expire", action="store_true",
                    help="also time the retention pass (expire.lua) over all N jobs, made completed")
    ap.add_argument("--stream-node-max-bytes", type=int, default=None,
                    help="CONFIG SET on the bench's Redis (deploy/redis.conf uses 512; Redis's "
                         "default 4096)")
    args = ap.parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import Harness, RedisClient  # noqa: E402
    load = os.path.join(os.environ["SS_BUILD_DIR"], "tests", "ss_queue_load")
    bull = os.path.join(HERE, "bullmq")
    have_bull = os.path.isdir(os.path.join(bull, "node_modules"))
    shas = run_json([load, "shas"])
    rows, exp_rows = [], []
    for n in [int(x) for x in args.sizes.split(",")]:
        with Harness("bench-backlog-%d" % n) as h:
            rport = h.redis()
            r = RedisClient(rport)
            if args.stream_node_max_bytes:
                r("CONFIG", "SET", "stream-node-max-bytes", str(args.stream_node_max_bytes))
            bull_bytes = None
            if have_bull:
                run_json([load, "enqueue", "--port", rport, "--n", 1, "--tag", "payload"])
                payload = h.path("payload.json")
                with open(payload, "w") as f:
                    f.write(r("HGET", "{ss}:job:" + r("ZRANGE", "{ss}:jobs", 0, 0)[0], "spec"))
                r("FLUSHALL")
                # BullMQ on a Redis of its own, stopped after: a synchronous
                # FLUSHALL of a million jobs outlasts the client's timeout
                bport = h.redis("redis-bullmq")
                br = RedisClient(bport)
                m0 = used_memory(br)
                run_json(["node", os.path.join(bull, "bench.js"), "fill", "--port", bport, "--n", n,
                          "--payload", payload])
                bull_bytes = (used_memory(br) - m0) / n
                br.close()
                h.stop("redis-bullmq")
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
            if args.expire:
                exp = expire_pass(r, shas)
                exp_rows.append((n, exp))
                print("N %d expire: %d jobs in %d calls, %.1f s (%.0f jobs/s); per call p50/p99/max "
                      "%.1f/%.1f/%.1f ms, first/last tenth p50 %.1f/%.1f ms; %.0f bytes freed per job" %
                      ((n,) + tuple(exp[k] for k in ("jobs", "calls", "secs", "per_s", "p50", "p99",
                                                      "max", "first", "last", "freed_bytes"))),
                      flush=True)
            r.close()
    print("\n| queued jobs | Redis bytes/job | BullMQ bytes/job | enqueue /s (pipelined) | "
          "list p50 / p99 (ms) | /v1/queue p50 / p99 (ms) | claim p50 / p99 (µs) |")
    print("|---|---|---|---|---|---|---|")
    for n, sb, bb, eps, li, qu, cl in rows:
        print("| %d | %.0f | %s | %.0f | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f |" %
              (n, sb, "%.0f" % bb if bb else "—", eps, li[0], li[1], qu[0], qu[1], cl[0], cl[1]))
    if exp_rows:
        print("\n| ended jobs | expire calls (1,000 each) | total s | jobs/s | per call p50 / p99 / max "
              "(ms) | first / last tenth p50 (ms) |")
        print("|---|---|---|---|---|---|")
        for n, e in exp_rows:
            print("| %d | %d | %.1f | %.0f | %.1f / %.1f / %.1f | %.1f / %.1f |" %
                  (n, e["calls"], e["secs"], e["per_s"], e["p50"], e["p99"], e["max"], e["first"],
                   e["last"]))


# Every job still indexed as queued or running becomes a job that completed
# AGE_MS ago, as finish.lua leaves one (state, finished_ms, the st:completed
# index); the priority lists are emptied. A batch per call.
MAKE_ENDED = """
local P, ago, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local moved = 0
for _, st in ipairs({'queued', 'running'}) do
  local ids = redis.call('ZRANGE', P .. 'st:' .. st, 0, n - 1)
  for _, id in ipairs(ids) do
    redis.call('HSET', P .. 'job:' .. id, 'state', 'completed', 'finished_ms', ago, 'stage', 'done',
               'token', '', 'lease_ms', 0)
    redis.call('ZADD', P .. 'st:completed', ago, id)
    redis.call('ZREM', P .. 'st:' .. st, id)
    redis.call('ZREM', P .. 'processing', id)
    moved = moved + 1
  end
  n = n - #ids
  if n <= 0 then break end
end
if moved == 0 then redis.call('DEL', P .. 'q:high', P .. 'q:normal', P .. 'q:low') end
return moved
"""

AGE_MS = 30 * 86400 * 1000


def expire_pass(r, shas):
    ago = int(time.time() * 1000) - AGE_MS
    while int(r("EVAL", MAKE_ENDED, 0, "{ss}:", ago, 10000)) > 0:
        pass
    lua = os.path.join(HERE, "..", "..", "common", "lua")
    with open(os.path.join(lua, "_lib.lua")) as f, open(os.path.join(lua, "expire.lua")) as g:
        sha = r("SCRIPT", "LOAD", f.read() + g.read())   # as common/CMakeLists.txt builds it
    if sha != shas["expire"]:
        print("note: common/lua differs from the build's scripts; timing the source's expire.lua",
              flush=True)
    m0 = used_memory(r)
    cutoff = ago + 86400 * 1000   # retention_days 29: every one of them is due
    per, total = [], 0
    t0 = time.monotonic()
    while True:
        t = time.monotonic()
        n = int(r("EVALSHA", sha, 1, "{ss}:jobs", "{ss}:", cutoff, 1000))
        per.append((time.monotonic() - t) * 1000)
        total += n
        if n == 0:
            per.pop()
            break
    secs = time.monotonic() - t0
    tenth = max(1, len(per) // 10)
    left = used_memory(r)
    return {"jobs": total, "calls": len(per), "secs": secs, "per_s": total / secs if secs else 0,
            "p50": statistics.median(per), "p99": pct(per, 0.99), "max": max(per),
            "first": statistics.median(per[:tenth]), "last": statistics.median(per[-tenth:]),
            "freed_bytes": (m0 - left) / max(1, total)}


if __name__ == "__main__":
    main()
