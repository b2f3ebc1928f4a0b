#!/usr/bin/env python3
"""bench_redis_ack.py — what acknowledged writes cost (redis_wait_replicas,
docs/OPERATIONS.md "High availability"): the same runs against a master
with one replica on loopback, with redis_wait_replicas 0 and 1 back to
back, repeated --runs times (medians).

    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j2 --target streamscale-coordinator ss_queue_worker ss_queue_load
    /usr/bin/python3 tests/bench/bench_redis_ack.py --build build --runs 3

submit   N POST /v1/jobs over 1 keep-alive connection (one request in
         flight: the per-submit latency is 1 / rate) and over 8
         (tests/tools/ss_queue_load.c http); the coordinator WAITs after
         each new job when redis_wait_replicas is 1.
finish   N no-op jobs queued first, then one ss_queue_worker with 8 slots
         runs them (jobs/s from the first claim to the last completion, as
         tests/bench/bench_queue.py measures); with redis_wait_replicas 1
         each final report is followed by a WAIT before the slot counts as
         free.
The ratio column is wait-1 / wait-0 throughput. Never asserts.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

ARGS = None


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build folder with the binaries")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000, help="jobs per measurement")
    return ap.parse_args()


def run_json(argv):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (p.returncode, " ".join(map(str, argv)), p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def span_s(r):
    """First claim to last completion, from the job records (Redis TIME)."""
    first, last = None, None
    for jid in r("ZRANGE", "{ss}:st:completed", 0, -1):
        s, f = (int(x) for x in r("HMGET", "{ss}:job:" + jid, "started_ms", "finished_ms"))
        first = s if first is None else min(first, s)
        last = f if last is None else max(last, f)
    return (last - first) / 1000.0


def main():
    global ARGS
    ARGS = parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(ARGS.build)
    from lib.harness import Harness, RedisClient, free_port, wait_until  # noqa: E402
    load = os.path.join(os.environ["SS_BUILD_DIR"], "tests", "ss_queue_load")
    res = {}
    with Harness("bench-redis-ack") as h:
        mport = h.redis("master")
        rport = free_port()
        h.start("replica", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save",
                            "", "--appendonly", "no", "--dir", h.tmp, "--replicaof", "127.0.0.1",
                            str(mport)])
        rep = None

        def linked():
            nonlocal rep
            rep = rep or RedisClient(rport)
            return "master_link_status:up" in rep("INFO", "replication")
        wait_until(linked, 20, "the replica")
        r = RedisClient(mport)
        for run in range(ARGS.runs):
            for wait in ("0", "1"):
                env = {"STREAMSCALE_REDIS_WAIT_REPLICAS": wait, "STREAMSCALE_LOG_LEVEL": "warn"}
                url = h.coordinator("coord", redis_port=mport, extra=env)
                for conns in (1, 8):
                    r("FLUSHALL")
                    out = run_json([load, "http", "--url", url, "--token", "test-token", "--n",
                                    ARGS.n, "--conns", conns, "--tag", "ack%s%d%d" % (wait, conns, run)])
                    assert out["created"] == ARGS.n, out
                    res.setdefault(("submit", conns, wait), []).append(out["per_s"])
                h.stop("coord")
                r("FLUSHALL")
                enq = run_json([load, "enqueue", "--port", mport, "--n", ARGS.n, "--depth", 64,
                                "--tag", "fin%s%d" % (wait, run)])
                assert enq["created"] == ARGS.n, enq
                h.queue_worker("qw", mport, extra=dict(env, STREAMSCALE_SLOTS="8",
                                                       STREAMSCALE_CPU_THRESHOLD="100"),
                               wait_ready=False)
                wait_until(lambda: int(r("ZCARD", "{ss}:st:completed")) >= ARGS.n, 600,
                           "completions", interval=0.01)
                h.stop("qw")
                res.setdefault(("finish", 8, wait), []).append(ARGS.n / span_s(r))
    print("\n### Acknowledged writes (WAIT 1 after each write), master + 1 replica on loopback,"
          " medians of %d runs, %d jobs each\n" % (ARGS.runs, ARGS.n))
    print("| path | connections/slots | wait 0 /s | wait 1 /s | ratio | per op, wait 0 → 1 |")
    print("|---|---|---|---|---|---|")
    for what, k in (("submit (POST /v1/jobs)", 1), ("submit (POST /v1/jobs)", 8),
                    ("finish (worker report)", 8)):
        key = "submit" if what.startswith("submit") else "finish"
        a = statistics.median(res[(key, k, "0")])
        b = statistics.median(res[(key, k, "1")])
        per = "%.2f → %.2f ms" % (1000.0 / a, 1000.0 / b) if k == 1 else ""
        print("| %s | %d | %.0f | %.0f | %.2f | %s |" % (what, k, a, b, b / a, per))


if __name__ == "__main__":
    main()
