#!/usr/bin/env python3
"""bench_split.py — one title across workers (docs/SPLIT.md): does a split
job get faster with more workers, what does splitting cost, and is the
output the same?

The real system (redis-server, coordinator, worker daemons, file://
storage) encodes one generated title (testsrc2 with light temporal noise
and a 440 Hz tone; the ladder, preset, CRF and segment length as given)
in these set-ups, each on a fresh queue:

  off-1core    1 worker pinned to core 0 (taskset), threads 1, split off
  auto-1x1     the same worker, split auto: the overhead of splitting on
               one core (chunk pre-roll, the audio's own pass, finalize)
  auto-2x1     2 workers pinned to core 0 and core 1, threads 1, split auto
  auto-4x1     4 workers, threads 1, one per core where the machine has 4
               cores, else two per core (oversubscribed: says so)
  off-2core    1 worker on both cores (threads 0 = all), split off
  auto-2core   1 worker on both cores, split auto (its slot runs one
               chunk at a time with both cores, the audio item beside
               c0: the default below 4 cores, docs/SPLIT.md "Several
               items at once"; each chunk's encode goes on into the next,
               chain_chunks: "A run that goes on into the next chunk")
  auto-2core-nochain  the same with chain_chunks false: every chunk a run
               of its own (drain, new decoder and encoders, pre-roll)
  auto-2core-2items  the same with items_per_slot 2: two items of the
               job at once, a core each (the default before: docs/BENCHMARKS.md)
  auto-2core-1item  the same with items_per_slot 1 (on 2 cores as the
               default; kept for the older commands in docs/BENCHMARKS.md)
  auto-2core-stagger  the same with stagger_items: one chunk at a time
               with both cores, the next one started once the running
               one's input is done (its encoders drain); the audio item
               beside one chunk
  auto-2core-s2 the same worker with slots 2 (two items at once, each
               with cores / slots threads, but a later job could take the
               other slot), split auto
  unequal      one worker with threads 2, one with threads 1, split auto:
               how the chunks are shared (2:1 expected: `threads` is a
               budget of busy cores, docs/OPERATIONS.md). With 3 cores or
               more they are pinned to cores 0-1 and core 2 (two machines);
               on 2 cores neither is pinned and they share both (pinning
               the one-thread worker to a core the other also uses makes
               the share depend on where the scheduler puts the threads),
               and they run in the bench's session: with autogroup
               scheduling two sessions get even CPU whatever their threads;
               there threads 2 covers both cores, so it has no budget (as
               threads 0) and about 3:1 is expected
  slots-2to1   one worker with 2 slots (threads 1) on cores 0-1, one with
               1 slot on core 2 (needs 3 cores; skipped below): 2:1 by slots

Page faults: the minor faults of the worker daemons over the job (a
fresh buffer costs one per page it touches; keep_memory keeps freed ones).
Wall time is the job's created -> finished span (Redis server time: from
the submit to the completion). Worker CPU is the user + system CPU of
every worker daemon of the set-up over the job (/proc/PID/stat), the
figure to compare on a shared machine: the other tenants' load stretches
wall time far more than it changes the work done. Quality: the top rung's PSNR and SSIM
(measured by the pipeline) and the total bytes of the renditions, split vs
unsplit. Prints a table and the ratios; never asserts.

    /usr/bin/python3 tests/bench/bench_split.py [--build build] [--seconds 120]
        [--size 1920x1080] [--ladder 360,720,1080] [--chunk-seconds 12]
        [--only off-1core,auto-1x1,auto-2x1] [--warm N]
--warm N runs the same job N times on the set-up's workers before the
measured one (by default every set-up measures its fresh workers' first
job, which also pays for first touching the memory it needs).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def proc_cpu(pid):
    """User + system CPU seconds of a live process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_faults(pid):
    """Minor page faults of a live process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def start_workers(h, rport, workers, title, extra=None):
    """Worker daemons w0, w1, ... from (cpus, threads[, slots]) tuples, each
    pinned with taskset to cpus (None: not pinned), reading the title's
    folder. Returns their pids."""
    pids = []
    for i, w in enumerate(workers):
        cpus, threads, slots = (tuple(w) + (1,))[:3]
        env = {"STREAMSCALE_THREADS": str(threads), "STREAMSCALE_SLOTS": str(slots),
               "STREAMSCALE_LOG_LEVEL": "info", "STREAMSCALE_POLL_MS": "200",
               "STREAMSCALE_FILE_ROOTS": os.path.dirname(title) + ":" + h.tmp}
        env.update(extra or {})
        p = h.worker("w%d" % i, rport, extra=env)
        pids.append(p.pid)
        if cpus is not None:
            subprocess.check_call(["taskset", "-a", "-p", "-c", cpus, str(p.pid)],
                                  stdout=subprocess.DEVNULL)
    return pids


def make_title(path, seconds, size):
    if os.path.exists(path):
        return
    subprocess.check_call([
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=%s:rate=30:duration=%d" % (size, seconds),
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=%d" % seconds,
        "-vf", "noise=alls=2:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
        "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", path + ".tmp.mp4"])
    os.rename(path + ".tmp.mp4", path)


def run(args, name, workers, split, title, Harness, Api):
    """workers: list of (cpus or None, threads[, slots]). Returns a result dict."""
    with Harness("bench-split-" + name) as h:
        # workers sharing cores share them by threads only in one
        # scheduling group (see "unequal" above)
        h.new_session = not (name == "unequal" and all(w[0] is None for w in workers))
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token="bench-token")
        api = Api(url, "bench-token", harness=h)
        env = {"STREAMSCALE_CHUNK_SECONDS": str(args.chunk_seconds)}
        if name.endswith("-2items"):
            env["STREAMSCALE_ITEMS_PER_SLOT"] = "2"
        if name.endswith("-1item"):
            env["STREAMSCALE_ITEMS_PER_SLOT"] = "1"
        if name.endswith("-stagger"):
            env["STREAMSCALE_STAGGER_ITEMS"] = "true"
        if name.endswith("-nochain"):
            env["STREAMSCALE_CHAIN_CHUNKS"] = "false"
        if args.keep_memory:
            env["STREAMSCALE_KEEP_MEMORY"] = args.keep_memory
        pids = start_workers(h, rport, workers, title, env)
        spec = {"source": "file://" + title, "preset": args.preset, "crf": args.crf,
                "segment_seconds": args.segment_seconds, "split": split,
                "ladder": [{"height": int(x)} for x in args.ladder.split(",")],
                "thumbnails": {"enabled": False, "interval_seconds": 10}}
        # --warm N: the same job N times first, not measured (the workers'
        # heaps, arenas and thread stacks as after some work)
        for k in range(args.warm):
            w = api.submit(dict(spec, idempotency_key="bench-%s-warm%d" % (name, k)))
            if api.wait_state(w["id"], ("completed", "failed", "dead"), 7200)["state"] != "completed":
                raise SystemExit("%s: warm-up job failed" % name)
        cpu0 = sum(proc_cpu(p) for p in pids)
        flt0 = sum(proc_faults(p) for p in pids)
        j = api.submit(dict(spec, idempotency_key="bench-" + name))
        done = api.wait_state(j["id"], ("completed", "failed", "dead"), 7200)
        if done["state"] != "completed":
            raise SystemExit("%s: %s" % (name, done["error"]))
        # every worker process's CPU (all items, the plan, finalize, the
        # daemon's own): far steadier than wall time on a shared machine
        worker_cpu = sum(proc_cpu(p) for p in pids) - cpu0
        faults = sum(proc_faults(p) for p in pids) - flt0
        with open(os.path.join(h.path("out"), j["id"], "job.json")) as f:
            doc = json.load(f)
        rs = doc["renditions"]
        top = max(rs, key=lambda r: r["height"])
        by, kinds = {}, {}
        for it in doc.get("items") or []:
            kind = "chunks" if it["name"][:1] == "c" and it["name"][1:].isdigit() else it["name"]
            kinds[kind] = kinds.get(kind, 0) + it.get("cpu_seconds", 0)
            if kind == "chunks":
                by[it["worker"]] = by.get(it["worker"], 0) + 1
        return {"name": name, "wall": ts(done["finished_at"]) - ts(done["created_at"]),
                "psnr": top.get("psnr"), "ssim": top.get("ssim"), "bytes": sum(r["bytes"] for r in rs),
                "chunks": (doc["output"].get("split") or {}).get("chunks", 0), "by": by,
                "cpu": sum(it.get("cpu_seconds", 0) for it in doc.get("items") or []), "kinds": kinds,
                "worker_cpu": worker_cpu, "faults": faults}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--ladder", default="360,720,1080")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--segment-seconds", type=int, default=4)
    ap.add_argument("--chunk-seconds", type=float, default=12)
    ap.add_argument("--only", default="", help="comma-separated set-up names, run in that order")
    ap.add_argument("--warm", type=int, default=0,
                    help="run the job this many times on the same workers before the measured one")
    ap.add_argument("--keep-memory", default="", choices=("", "true", "false"),
                    help="the workers' keep_memory setting (default: theirs)")
    args = ap.parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import Api, Harness  # noqa: E402  (reads SS_BUILD_DIR)

    out = os.path.join(HERE, "out")
    os.makedirs(out, exist_ok=True)
    title = os.path.join(out, "split_%ds_%s.mp4" % (args.seconds, args.size))
    make_title(title, args.seconds, args.size)
    ncpu = len(os.sched_getaffinity(0))
    four = [(str(c), 1) for c in range(4)] if ncpu >= 4 else [("0", 1), ("0", 1), ("1", 1), ("1", 1)]
    setups = [
        ("off-1core", [("0", 1)], "off"),
        ("auto-1x1", [("0", 1)], "auto"),
        ("auto-2x1", [("0", 1), ("1", 1)], "auto"),
        ("auto-4x1", four, "auto"),
        ("off-2core", [(None, 0)], "off"),
        ("auto-2core", [(None, 0)], "auto"),
        ("auto-2core-nochain", [(None, 0)], "auto"),
        ("auto-2core-2items", [(None, 0)], "auto"),
        ("auto-2core-1item", [(None, 0)], "auto"),
        ("auto-2core-stagger", [(None, 0)], "auto"),
        ("auto-2core-s2", [(None, 0, 2)], "auto"),
        ("unequal", [("0,1", 2), ("2", 1)] if ncpu >= 3 else [(None, 2), (None, 1)], "auto"),
    ]
    if ncpu >= 3:
        setups.append(("slots-2to1", [("0,1", 1, 2), ("2", 1, 1)], "auto"))
    only = [x for x in args.only.split(",") if x]
    if only:   # in the order given (a later set-up runs on a warmer, maybe busier, machine)
        setups = sorted((s for s in setups if s[0] in only), key=lambda s: only.index(s[0]))
    res = {}
    for name, workers, split in setups:
        r = run(args, name, workers, split, title, Harness, Api)
        res[name] = r
        print("%-11s %7.1f s  worker CPU %6.1f s  page faults %dk  chunks %2d  top PSNR %s  SSIM %s  "
              "bytes %d  item CPU %.1f s  chunks by %s" % (
            name, r["wall"], r["worker_cpu"], r["faults"] // 1000, r["chunks"], r["psnr"], r["ssim"],
            r["bytes"], r["cpu"],
            ", ".join("%s:%d" % kv for kv in sorted(r["by"].items())) or "-"), flush=True)
        if r["kinds"]:
            print("%-11s item CPU by kind: %s" % (name, ", ".join(
                "%s %.2f s" % kv for kv in sorted(r["kinds"].items()))), flush=True)

    def ratio(a, b):
        return res[a]["wall"] / res[b]["wall"] if a in res and b in res else float("nan")
    print()
    print("title: %d s %s, ladder %s, %s CRF %d, %d s segments, chunk_seconds %g%s" % (
        args.seconds, args.size, args.ladder, args.preset, args.crf, args.segment_seconds,
        args.chunk_seconds, ", after %d warm-up job(s) per set-up" % args.warm if args.warm else ""))
    print("machine: %d cores%s" % (ncpu, "" if ncpu >= 4 else " (auto-4x1 runs two workers per core)"))
    print("scaling  off-1core / auto-2x1  = %.2fx faster (target >= 1.8)" % ratio("off-1core", "auto-2x1"))
    print("scaling  off-1core / auto-4x1  = %.2fx faster" % ratio("off-1core", "auto-4x1"))
    print("overhead auto-1x1 / off-1core  = %.3f (%.1f %% slower; target <= 5 %%)" % (
        ratio("auto-1x1", "off-1core"), (ratio("auto-1x1", "off-1core") - 1) * 100))
    print("overhead auto-2core / off-2core = %.3f (%.1f %% slower)" % (
        ratio("auto-2core", "off-2core"), (ratio("auto-2core", "off-2core") - 1) * 100))

    def cpu_ratio(a, b):
        return (res[a]["worker_cpu"] / res[b]["worker_cpu"]
                if a in res and b in res and res[b]["worker_cpu"] else float("nan"))
    print("overhead auto-2core-nochain / off-2core = %.3f (every chunk a run of its own)" % ratio("auto-2core-nochain", "off-2core"))
    print("overhead auto-2core-2items / off-2core = %.3f (two items at once)" % ratio("auto-2core-2items", "off-2core"))
    print("overhead auto-2core-1item / off-2core = %.3f (items_per_slot 1)" % ratio("auto-2core-1item", "off-2core"))
    print("overhead auto-2core-stagger / off-2core = %.3f (staggered items)" % ratio("auto-2core-stagger", "off-2core"))
    for a, b in (("auto-1x1", "off-1core"), ("auto-2core", "off-2core"),
                 ("auto-2core-nochain", "off-2core"), ("auto-2core-2items", "off-2core"),
                 ("auto-2core-1item", "off-2core"),
                 ("auto-2core-stagger", "off-2core")):
        print("CPU      %-10s / %-9s = %.3f (worker processes' user+sys; %.1f %% more)" % (
            a, b, cpu_ratio(a, b), (cpu_ratio(a, b) - 1) * 100))
    base = res.get("off-1core")
    for name, r in res.items():
        if base and name != "off-1core" and r["chunks"] and base["psnr"] and r["psnr"]:
            print("quality  %-10s top rung PSNR %+.3f dB, SSIM %+.5f, bytes %.4fx vs off-1core" % (
                name, r["psnr"] - base["psnr"], (r["ssim"] or 0) - (base["ssim"] or 0),
                r["bytes"] / base["bytes"]))
    for name in ("unequal", "slots-2to1"):
        if name in res and len(res[name]["by"]) == 2:
            a, b = (res[name]["by"].get(w, 0) for w in ("w0", "w1"))
            print("sharing  %-10s w0 %d : w1 %d chunks = %.2f (2:1 expected)" % (
                name, a, b, a / b if b else float("inf")))


if __name__ == "__main__":
    main()
