#!/usr/bin/env python3
"""bench_queue.py — the queue's figures (issue 4, "Figures to report"):
streamscale's real worker daemon with a no-op executor
(tests/tools/ss_queue_worker.c: same config, queue code, leases, registry)
side by side with BullMQ (tests/bench/bullmq, npm bullmq + ioredis) on the
same redis-server, the same machine, in the same run, with
`redis-benchmark` EVALSHA of a trivial script as the ceiling.

    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-bench -j2
    (cd tests/bench/bullmq && npm install --no-audit --no-fund)
    /usr/bin/python3 tests/bench/bench_queue.py --build build-bench --runs 5
    /usr/bin/python3 tests/bench/bench_queue.py --build build-bench --only soak

What is measured (docs/BENCHMARKS.md, "Queue: throughput, latency, soak"):

throughput  N no-op jobs are queued first (streamscale: the enqueue script,
            pipelined, built exactly as POST /v1/jobs builds them; BullMQ:
            addBulk with the same payload, the canonical spec JSON), then
            the consumers start: streamscale `ss_queue_worker` with `slots`
            1, 8, 50 in one process, or 8 processes × 1 slot; BullMQ one
            Worker with concurrency 1, 8, 50, or 8 processes × 1. jobs/s =
            N / (last completion − first claim), both read back from Redis
            (streamscale started_ms/finished_ms, BullMQ processedOn/
            finishedOn), so process start-up is not counted. Also CPU per
            job: the consumers' (from /proc, or node's process.cpuUsage)
            and redis-server's (INFO cpu), over the consume phase only.
ceiling     redis-benchmark, EVALSHA of `return 1`, with 1, 8, 50 clients.
enqueue     jobs/s into an empty queue: the enqueue script one round trip
            at a time and 64 in flight, POST /v1/jobs over 1 and 8
            keep-alive connections (tests/tools/ss_queue_load.c), BullMQ's
            queue.add one at a time and 64 in flight, and addBulk.
latency     notify → claim at a light rate (20 jobs/s, one idle worker):
            streamscale with the default claim_delay_ms and with 0, the time
            from sending the enqueue to the claim script having run (a
            keyspace notification, µs) and started_ms − created_ms (Redis
            TIME, ms); BullMQ add → processor start (µs, in-process) and
            processedOn − timestamp (ms).
commands    INFO commandstats per job, one run of each configuration per
            side: the submit phase (streamscale's pipelined enqueue script,
            BullMQ's addBulk) and the consume phase apart, every command a
            script runs counted (its time is also inside the script's
            evalsha). Not in the default set.
scripts     where Redis spends its time per job: one streamscale run (8
            slots) and one BullMQ run (concurrency 8) with SLOWLOG recording
            every command (slowlog-log-slower-than 0); execution µs per
            call and per job, by script (streamscale's scripts named from
            common/lua, BullMQ's by their key count). Not in the default set.
soak        tests/integration/test_queue_soak.py's run (2,000 jobs, 4
            workers, SIGKILL + restart every few seconds).

Figures are medians over --runs runs; each run does every configuration
once, streamscale and BullMQ back to back (their order alternating), so
both see the same machine. The machine is shared and noisy: compare the
ratios, and the CPU per job, more than absolute rates. Never asserts.
"""
import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BULL = os.path.join(HERE, "bullmq")

SPAN_SS = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local first, last = nil, nil
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', ARGV[1] .. id, 'started_ms', 'finished_ms')
  local s, f = tonumber(h[1]), tonumber(h[2])
  if s and (not first or s < first) then first = s end
  if f and (not last or f > last) then last = f end
end
return {#ids, tostring(first), tostring(last)}
"""

SPAN_BULL = SPAN_SS.replace("'started_ms', 'finished_ms'", "'processedOn', 'finishedOn'")

QUEUE_WAIT = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', ARGV[1] .. id, 'created_ms', 'started_ms')
  out[#out + 1] = id
  out[#out + 1] = tostring(tonumber(h[2]) - tonumber(h[1]))
end
return out
"""


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"),
                    help="build folder with bin/ and tests/ (default build-bench)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=10000, help="jobs per throughput run")
    ap.add_argument("--only", default="ceiling,throughput,enqueue,latency",
                    help="comma list of: ceiling, throughput, enqueue, latency, commands, scripts, soak")
    ap.add_argument("--no-bullmq", action="store_true", help="streamscale only")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH",
                    help="also measure this ss_queue_worker binary (e.g. a build with a proposed "
                         "change) in the throughput and latency runs, as its own column; repeatable")
    ap.add_argument("--worker-env", default="",
                    help="extra worker settings for every streamscale run, KEY=V,KEY=V "
                         "(STREAMSCALE_ prefix added when missing)")
    ap.add_argument("--claim-delays", default="default,0",
                    help="claim_delay_ms values for the latency runs (default = the worker's own)")
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--latency-rate", type=float, default=20)
    ap.add_argument("--configs", default="1,8,50,8x1",
                    help="throughput configurations, comma list of: 1, 8, 50 (slots / concurrency "
                         "in one process), 8x1 (8 processes x 1)")
    ap.add_argument("--out", default=None, help="write the raw results as JSON here")
    return ap.parse_args()


ARGS = parse_args()
ARGS.build = os.path.abspath(ARGS.build)
os.environ["SS_BUILD_DIR"] = ARGS.build
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from lib.harness import Harness, RedisClient, wait_until  # noqa: E402

LOAD = os.path.join(ARGS.build, "tests", "ss_queue_load")


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def proc_cpu_s(pid):
    """user+system CPU seconds of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_s(r):
    info = r("INFO", "cpu")
    tot = 0.0
    for line in info.splitlines():
        k, _, v = line.partition(":")
        if k in ("used_cpu_sys", "used_cpu_user"):
            tot += float(v)
    return tot


def run_json(argv, timeout=600, **kw):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s%s" % (p.returncode, " ".join(map(str, argv)),
                                                  p.stdout[-2000:], p.stderr[-2000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def worker_env(extra=None):
    env = {"STREAMSCALE_LOG_LEVEL": "info", "STREAMSCALE_CPU_THRESHOLD": "100"}
    for kv in filter(None, ARGS.worker_env.split(",")):
        k, _, v = kv.partition("=")
        k = k.strip().upper()
        env[k if k.startswith("STREAMSCALE_") else "STREAMSCALE_" + k] = v
    env.update(extra or {})
    return env


def start_ss_worker(h, name, rport, env, binary=None):
    if binary:
        scratch = h.path(name + "-scratch")
        os.makedirs(scratch, exist_ok=True)
        e = {"STREAMSCALE_REDIS": "redis://127.0.0.1:%d/0" % rport, "STREAMSCALE_ID": name,
             "STREAMSCALE_SCRATCH_DIR": scratch, "STREAMSCALE_STORAGE": "file://" + h.path("out") + "/",
             "STREAMSCALE_FILE_ROOTS": h.tmp}
        e.update(env)
        return h.start(name, [binary], env=e)
    return h.queue_worker(name, rport, extra=env, wait_ready=False)


# ---- streamscale ---------------------------------------------------------

def command_stats(r):
    """INFO commandstats as {command: (calls, usec)}; commands run by a
    script are counted on their own too (their time is also in the
    script's evalsha entry)."""
    out = {}
    for line in r("INFO", "commandstats").splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, _, rest = line[len("cmdstat_"):].partition(":")
        kv = dict(x.split("=", 1) for x in rest.split(","))
        out[name] = (int(kv["calls"]), int(kv["usec"]))
    return out


def ss_throughput(h, rport, r, n, slots, procs, tag, binary=None, stats=None):
    r("FLUSHALL")
    if stats is not None:
        r("CONFIG", "RESETSTAT")
    enq = run_json([LOAD, "enqueue", "--port", rport, "--n", n, "--depth", 64, "--tag", tag])
    assert enq["created"] == n, enq
    if stats is not None:
        stats["submit"] = command_stats(r)
        r("CONFIG", "RESETSTAT")
    r0 = redis_cpu_s(r)
    names = ["tp%d" % k for k in range(procs)]
    ps = [start_ss_worker(h, nm, rport, worker_env({"STREAMSCALE_SLOTS": str(slots)}), binary)
          for nm in names]
    t0 = time.monotonic()
    wait_until(lambda: h.assert_alive() or int(r("ZCARD", "{ss}:st:completed")) >= n, 600,
               "%d completions" % n, interval=0.01)
    wall = time.monotonic() - t0
    wcpu = sum(proc_cpu_s(p.pid) for p in ps)
    rcpu = redis_cpu_s(r) - r0
    if stats is not None:
        stats["consume"] = command_stats(r)
    for nm in names:
        h.stop(nm)
    done, first, last = r("EVAL", SPAN_SS, 1, "{ss}:st:completed", "{ss}:job:")
    span = (int(last) - int(first)) / 1000.0
    return {"per_s": n / span, "span_s": span, "wall_s": wall, "completed": done,
            "client_cpu_us": wcpu / n * 1e6, "redis_cpu_us": rcpu / n * 1e6,
            "enqueue_pipelined_per_s": enq["per_s"]}


# ---- BullMQ --------------------------------------------------------------

def node(mode, rport, **kw):
    argv = ["node", os.path.join(BULL, "bench.js"), mode, "--port", rport]
    for k, v in kw.items():
        argv += ["--" + k, v]
    return [str(a) for a in argv]


def bull_throughput(h, rport, r, n, conc, procs, payload, stats=None):
    r("FLUSHALL")
    if stats is not None:
        r("CONFIG", "RESETSTAT")
    fill = run_json(node("fill", rport, n=n, payload=payload))
    if stats is not None:
        stats["submit"] = command_stats(r)
    ps = []
    for k in range(procs):
        ps.append(subprocess.Popen(node("consumer", rport, concurrency=conc), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, start_new_session=True))
    for p in ps:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit("BullMQ consumer did not start: %r" % line)
    if stats is not None:
        r("CONFIG", "RESETSTAT")
    r0 = redis_cpu_s(r)
    for p in ps:
        p.stdin.write("go\n")
        p.stdin.flush()
    t0 = time.monotonic()
    wait_until(lambda: int(r("ZCARD", "bull:bench:completed")) >= n, 600,
               "%d BullMQ completions" % n, interval=0.01)
    wall = time.monotonic() - t0
    rcpu = redis_cpu_s(r) - r0
    if stats is not None:
        stats["consume"] = command_stats(r)
    ccpu = 0.0
    for p in ps:
        p.stdin.write("stop\n")
        p.stdin.flush()
        ccpu += json.loads(p.stdout.readline())["client_cpu_s"]
        p.wait(timeout=30)
    done, first, last = r("EVAL", SPAN_BULL, 1, "bull:bench:completed", "bull:bench:")
    span = (int(last) - int(first)) / 1000.0
    return {"per_s": n / span, "span_s": span, "wall_s": wall, "completed": done,
            "client_cpu_us": ccpu / n * 1e6, "redis_cpu_us": rcpu / n * 1e6,
            "enqueue_bulk_per_s": fill["per_s"]}


# ---- where Redis spends its time ------------------------------------------

BULL_SCRIPTS = {"11": "moveToActive", "14": "moveToFinished", "9": "addStandardJob",
                "2": "extendLock/removeJob", "1": "extendLocks/getCounts/other"}


def ss_script_names():
    return {sha: name for name, sha in run_json([LOAD, "shas"]).items()}


def script_costs(h, rport, r, who, payload, n=2000):
    """Redis execution µs by script over one run of n jobs, 8 consumers.
    Redis 7 also logs the commands a script runs; their time is inside the
    script's own entry, so only top-level script calls (and blocking pops)
    are counted."""
    r("CONFIG", "SET", "slowlog-max-len", str(n * 100))
    r("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        r("SLOWLOG", "RESET")
        if who == "ss":
            ss_throughput(h, rport, r, n, 8, 1, "scripts-%d" % time.time())
        else:
            bull_throughput(h, rport, r, n, 8, 1, payload)
        entries = r("SLOWLOG", "GET", str(n * 100))
    finally:
        r("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        r("CONFIG", "SET", "slowlog-max-len", "128")
    names = ss_script_names()
    cost = {}
    for e in entries:
        us, argv = int(e[2]), e[3]
        cmd = argv[0].upper()
        if cmd == "EVALSHA":
            if who == "ss":
                name = names.get(argv[1], "sha " + argv[1][:8])
            else:
                name = BULL_SCRIPTS.get(argv[2], "keys=" + argv[2])
        elif cmd.startswith("B") and cmd.endswith("POP") or cmd in ("BZPOPMIN", "BRPOPLPUSH", "BLMOVE"):
            name = cmd
        else:
            continue
        c = cost.setdefault(name, [0, 0])
        c[0] += 1
        c[1] += us
    return cost


# ---- ceiling -------------------------------------------------------------

def ceiling(rport, r, clients, n=100000):
    sha = r("SCRIPT", "LOAD", "return 1")
    p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(rport), "-c", str(clients),
                        "-n", str(n), "--csv", "EVALSHA", sha, "0"],
                       capture_output=True, text=True, timeout=300)
    for line in p.stdout.splitlines():
        cols = [c.strip('"') for c in line.split(",")]
        if cols and cols[0].upper().startswith("EVALSHA"):
            return float(cols[1])
    raise SystemExit("redis-benchmark: no figure in %r %r" % (p.stdout, p.stderr))


# ---- main ----------------------------------------------------------------

def table(title, head, rows):
    log("\n" + title)
    log("| " + " | ".join(head) + " |")
    log("|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(head))) + "|")
    for row in rows:
        log("| " + " | ".join(row) + " |")


def fmt(x, d=0):
    return "-" if x is None else ("{:,.%df}" % d).format(x)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    vers = {}
    for k, argv in (("redis", ["redis-server", "--version"]), ("node", ["node", "--version"])):
        try:
            vers[k] = subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            vers[k] = "?"
    try:
        with open(os.path.join(BULL, "node_modules", "bullmq", "package.json")) as f:
            vers["bullmq"] = json.load(f)["version"]
        with open(os.path.join(BULL, "node_modules", "ioredis", "package.json")) as f:
            vers["ioredis"] = json.load(f)["version"]
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_at_start": load, **vers}


def main():
    only = set(ARGS.only.split(","))
    bull = not ARGS.no_bullmq
    if bull and not os.path.isdir(os.path.join(BULL, "node_modules", "bullmq")):
        raise SystemExit("BullMQ is not installed: (cd %s && npm install --no-audit --no-fund), "
                         "or pass --no-bullmq" % BULL)
    res = {"machine": machine(), "args": vars(ARGS)}
    log("machine: %s" % json.dumps(res["machine"]))
    if "soak" in only:
        from test_queue_soak import run_soak  # noqa: E402
        res["soak"] = run_soak()
    configs = [c for k, c in (("1", ("1", 1, 1)), ("8", ("8", 8, 1)), ("50", ("50", 50, 1)),
                              ("8x1", ("8 procs x 1", 1, 8)))
               if k in ARGS.configs.split(",")]
    with Harness("bench-queue") as h:
        rport = h.redis()
        r = RedisClient(rport)
        url = h.coordinator(redis_port=rport, token="bench-token")
        # the payload BullMQ carries: streamscale's canonical spec of a bench job
        run_json([LOAD, "enqueue", "--port", rport, "--n", 1, "--tag", "payload"])
        spec = r("HGET", "{ss}:job:" + r("ZRANGE", "{ss}:jobs", 0, 0)[0], "spec")
        payload = h.path("payload.json")
        with open(payload, "w") as f:
            f.write(spec)

        if "ceiling" in only:
            res["ceiling"] = {}
            for c in (1, 8, 50):
                res["ceiling"][c] = med([ceiling(rport, r, c) for _ in range(ARGS.runs)])
            table("Ceiling: redis-benchmark EVALSHA `return 1` (calls/s, median of %d)" % ARGS.runs,
                  ["clients", "EVALSHA/s"], [[str(c), fmt(v)] for c, v in res["ceiling"].items()])

        if "throughput" in only:
            variants = [("ss", None)] + [tuple(v.split("=", 1)) for v in ARGS.variant]
            whos = [v[0] for v in variants] + (["bull"] if bull else [])
            tp = {name: {who: [] for who in whos} for name, _, _ in configs}
            for run in range(ARGS.runs):
                for name, conc, procs in configs:
                    # every contender back to back, the order rotating per run
                    k = run % len(whos)
                    for who in whos[k:] + whos[:k]:
                        if who == "bull":
                            x = bull_throughput(h, rport, r, ARGS.n, conc, procs, payload)
                        else:
                            x = ss_throughput(h, rport, r, ARGS.n, conc, procs,
                                              "tp-%d-%s-%s" % (run, name.replace(" ", ""), who),
                                              dict(variants)[who])
                        tp[name][who].append(x)
                        log("run %d  %-12s %-8s %8.0f jobs/s  client %5.0f µs/job  redis %5.0f µs/job"
                            % (run + 1, name, who, x["per_s"], x["client_cpu_us"], x["redis_cpu_us"]))
            res["throughput"] = tp
            for who in [v[0] for v in variants]:
                rows = []
                for name, _, _ in configs:
                    ss, bl = tp[name][who], tp[name].get("bull", [])
                    ratios = [a["per_s"] / b["per_s"] for a, b in zip(ss, bl)]
                    rows.append([name, fmt(med([x["per_s"] for x in ss])),
                                 fmt(med([x["per_s"] for x in bl])),
                                 fmt(med(ratios), 2) + "×" if ratios else "-",
                                 "%s / %s" % (fmt(med([x["client_cpu_us"] for x in ss])),
                                              fmt(med([x["client_cpu_us"] for x in bl]))),
                                 "%s / %s" % (fmt(med([x["redis_cpu_us"] for x in ss])),
                                              fmt(med([x["redis_cpu_us"] for x in bl])))])
                table("Throughput [%s], %d no-op jobs, consumers = slots / concurrency "
                      "(jobs/s, median of %d runs)" % (who, ARGS.n, ARGS.runs),
                      ["consumers", who, "BullMQ", "%s / BullMQ (median of per-run ratios)" % who,
                       "consumer CPU µs/job %s / bull" % who, "redis CPU µs/job %s / bull" % who], rows)

        if "enqueue" in only:
            en = {k: [] for k in ("script_seq", "script_64", "http_1", "http_8",
                                  "bull_add_seq", "bull_add_64", "bull_add_bulk")}
            for run in range(ARGS.runs):
                for depth, key in ((1, "script_seq"), (64, "script_64")):
                    r("FLUSHALL")
                    en[key].append(run_json([LOAD, "enqueue", "--port", rport, "--n", 5000, "--depth",
                                              depth, "--tag", "en-%d" % run])["per_s"])
                for conns, key in ((1, "http_1"), (8, "http_8")):
                    r("FLUSHALL")
                    en[key].append(run_json([LOAD, "http", "--url", url, "--token", "bench-token", "--n",
                                             3000, "--conns", conns, "--tag", "http-%d" % run])["per_s"])
                if bull:
                    r("FLUSHALL")
                    b = run_json(node("enqueue", rport, n=3000, payload=payload))
                    en["bull_add_seq"].append(b["add_seq_per_s"])
                    en["bull_add_64"].append(b["add_64_per_s"])
                    en["bull_add_bulk"].append(b["add_bulk_per_s"])
                log("run %d  enqueue: %s" % (run + 1, {k: round(v[-1]) for k, v in en.items() if v}))
            res["enqueue"] = en
            m = {k: med(v) for k, v in en.items()}
            table("Enqueue into an empty queue (jobs/s, median of %d runs)" % ARGS.runs,
                  ["path", "streamscale", "BullMQ", "ratio"],
                  [["one at a time (script / queue.add)", fmt(m["script_seq"]), fmt(m["bull_add_seq"]),
                    fmt(m["script_seq"] / m["bull_add_seq"], 2) + "×" if m["bull_add_seq"] else "-"],
                   ["64 in flight (pipelined script / 64 queue.add)", fmt(m["script_64"]),
                    fmt(m["bull_add_64"]),
                    fmt(m["script_64"] / m["bull_add_64"], 2) + "×" if m["bull_add_64"] else "-"],
                   ["bulk (pipelined script / addBulk 1000)", fmt(m["script_64"]), fmt(m["bull_add_bulk"]),
                    fmt(m["script_64"] / m["bull_add_bulk"], 2) + "×" if m["bull_add_bulk"] else "-"],
                   ["HTTP POST /v1/jobs, 1 connection", fmt(m["http_1"]), "-", "-"],
                   ["HTTP POST /v1/jobs, 8 connections", fmt(m["http_8"]), "-", "-"]])

        if "commands" in only:
            res["commands"] = {}
            for name, conc, procs in configs:
                got = {}
                for who in ("ss", "bull") if bull else ("ss",):
                    st = {}
                    if who == "ss":
                        x = ss_throughput(h, rport, r, ARGS.n, conc, procs, "cmd-%s" % name.replace(" ", ""),
                                          stats=st)
                    else:
                        x = bull_throughput(h, rport, r, ARGS.n, conc, procs, payload, stats=st)
                    got[who] = (x, st)
                    log("commands %-12s %-5s %8.0f jobs/s  redis %5.0f µs/job" % (name, who, x["per_s"],
                                                                                 x["redis_cpu_us"]))
                res["commands"][name] = {w: {"run": x, "stats": st} for w, (x, st) in got.items()}
                for phase in ("submit", "consume"):
                    rows = []
                    cmds = sorted(set().union(*(got[w][1][phase] for w in got)),
                                  key=lambda c: -max(got[w][1][phase].get(c, (0, 0))[1] for w in got))
                    for c in cmds:
                        row = [c]
                        for w in got:
                            calls, us = got[w][1][phase].get(c, (0, 0))
                            row += [fmt(calls / ARGS.n, 2), fmt(us / ARGS.n, 1)]
                        rows.append(row)
                    head = ["command"]
                    for w in got:
                        head += ["%s calls/job" % w, "%s µs/job" % w]
                    table("Redis commands per job, %s phase, %s consumers, %d jobs (INFO commandstats; "
                          "a script's commands are also inside its evalsha/evalsha_ro µs)"
                          % (phase, name, ARGS.n), head, rows)

        if "scripts" in only:
            res["scripts"] = {}
            for who in ("ss", "bull") if bull else ("ss",):
                cost = script_costs(h, rport, r, who, payload)
                res["scripts"][who] = cost
                rows = [[name, fmt(c[0]), fmt(c[1] / c[0], 1), fmt(c[1] / 2000, 1)]
                        for name, c in sorted(cost.items(), key=lambda kv: -kv[1][1])]
                table("Redis execution time by script, %s, 2,000 jobs, 8 consumers (SLOWLOG, "
                      "queueing phase included)" % ("streamscale" if who == "ss" else "BullMQ"),
                      ["script", "calls", "µs/call", "µs/job"], rows)

        if "latency" in only:
            delays = [(("ss_default" if d == "default" else "ss_delay" + d), None if d == "default" else d)
                      for d in ARGS.claim_delays.split(",")]
            variants = [(label, None, path) for label, path in
                        (v.split("=", 1) for v in ARGS.variant)]
            delays = [(key, d, None) for key, d in delays] + variants
            lat = {key: [] for key, _, _ in delays}
            lat["bull"] = []
            for run in range(ARGS.runs):
                for key, delay, binary in delays:
                    r("FLUSHALL")
                    env = worker_env({"STREAMSCALE_SLOTS": "1"})
                    if delay is not None:
                        env["STREAMSCALE_CLAIM_DELAY_MS"] = delay
                    start_ss_worker(h, "lat", rport, env, binary)
                    wait_until(lambda: int(r("PUBSUB", "NUMSUB", "{ss}:notify")[1]) >= 1, 30,
                               "the worker's subscription")
                    wait_until(lambda: r("ZCARD", "{ss}:workers") >= 1, 30, "the worker's registry beat")
                    x = run_json([LOAD, "latency", "--port", rport, "--n", ARGS.latency_n, "--rate",
                                  ARGS.latency_rate, "--tag", "lat-%d-%s" % (run, key)])
                    waits = r("EVAL", QUEUE_WAIT, 1, "{ss}:st:completed", "{ss}:job:")
                    rec = sorted(int(v) for v in waits[1::2])
                    h.stop("lat")
                    x.pop("ids")
                    lat_sorted = sorted(x.pop("lat_us"))
                    x["rec_p50_ms"] = rec[(len(rec) - 1) * 50 // 100]
                    x["rec_p99_ms"] = rec[(len(rec) - 1) * 99 // 100]
                    x["p50_us"] = lat_sorted[(len(lat_sorted) - 1) * 50 // 100]
                    lat[key].append(x)
                if bull:
                    r("FLUSHALL")
                    x = run_json(node("latency", rport, n=ARGS.latency_n, rate=ARGS.latency_rate,
                                      payload=payload))
                    x.pop("lat_us")
                    x.pop("rec_ms")
                    lat["bull"].append(x)
                log("run %d  latency p50/p99 µs: %s" % (run + 1, {
                    k: "%d/%d" % (v[-1]["p50_us"], v[-1]["p99_us"]) for k, v in lat.items() if v}))
            res["latency"] = lat
            rows = []
            labels = [(key, ("streamscale, claim_delay_ms " + (d or "default (50)")) if not b
                       else "%s, claim_delay_ms default" % key) for key, d, b in delays]
            for key, label in labels + [("bull", "BullMQ 1 Worker")]:
                v = lat.get(key)
                if not v:
                    continue
                rows.append([label, fmt(med([x["p50_us"] for x in v]) / 1000, 2),
                             fmt(med([x["p99_us"] for x in v]) / 1000, 2),
                             fmt(med([x["max_us"] for x in v]) / 1000, 2),
                             "%s / %s" % (fmt(med([x["rec_p50_ms"] for x in v])),
                                          fmt(med([x["rec_p99_ms"] for x in v])))])
            table("Latency at %g jobs/s, one idle consumer (%d jobs per run, median of %d runs)"
                  % (ARGS.latency_rate, ARGS.latency_n, ARGS.runs),
                  ["consumer", "p50 ms", "p99 ms", "max ms", "recorded p50 / p99 ms"], rows)
        r.close()
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(res, f, indent=1)
        log("\nraw results: %s" % ARGS.out)


if __name__ == "__main__":
    main()
