#!/usr/bin/env python3
"""bench_split.py — one title across workers (docs/SPLIT.md): does a split
job get faster with more workers, what does splitting cost, and is the
output the same?

The real system (redis-server, coordinator, worker daemons, file://
storage) encodes one generated title (testsrc2 with light temporal noise
and a 440 Hz tone; the ladder, preset, CRF and segment length as given)
in these set-ups, each on a fresh queue:

  off-1core    1 worker pinned to core 0 (taskset), threads 1, split off
  auto-2x1     2 workers pinned to core 0 and core 1, threads 1, split auto
  auto-4x1     4 workers, threads 1, two pinned to each core, split auto
  off-2core    1 worker on both cores (threads 0 = all), split off
  auto-2core   1 worker on both cores, split auto
  unequal      one worker with threads 2 on both cores, one with threads 1
               pinned to core 1, split auto: how the chunks are shared

Wall time is the job's created -> finished span (Redis server time: from
the submit to the completion). Quality: the top rung's PSNR (measured by
the pipeline) and the total bytes of the renditions, split vs unsplit.
Prints a table and the ratios; never asserts.

    /usr/bin/python3 tests/bench/bench_split.py [--build build] [--seconds 120]
        [--size 1920x1080] [--ladder 360,720,1080] [--chunk-seconds 20]
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
    """workers: list of (cpus or None, threads). Returns a result dict."""
    with Harness("bench-split-" + name) as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token="bench-token")
        api = Api(url, "bench-token", harness=h)
        for i, (cpus, threads) in enumerate(workers):
            p = h.worker("w%d" % i, rport, extra={
                "STREAMSCALE_THREADS": str(threads), "STREAMSCALE_SLOTS": "1",
                "STREAMSCALE_CHUNK_SECONDS": str(args.chunk_seconds),
                "STREAMSCALE_LOG_LEVEL": "info", "STREAMSCALE_POLL_MS": "200",
                "STREAMSCALE_FILE_ROOTS": os.path.dirname(title) + ":" + h.tmp})
            if cpus is not None:
                subprocess.check_call(["taskset", "-a", "-p", "-c", cpus, str(p.pid)],
                                      stdout=subprocess.DEVNULL)
        spec = {"source": "file://" + title, "preset": args.preset, "crf": args.crf,
                "segment_seconds": args.segment_seconds, "split": split,
                "ladder": [{"height": int(x)} for x in args.ladder.split(",")],
                "thumbnails": {"enabled": False, "interval_seconds": 10},
                "idempotency_key": "bench-" + name}
        j = api.submit(spec)
        done = api.wait_state(j["id"], ("completed", "failed", "dead"), 7200)
        if done["state"] != "completed":
            raise SystemExit("%s: %s" % (name, done["error"]))
        with open(os.path.join(h.path("out"), j["id"], "job.json")) as f:
            doc = json.load(f)
        rs = doc["renditions"]
        top = max(rs, key=lambda r: r["height"])
        by = {}
        for it in doc.get("items") or []:
            if it["name"].startswith("c"):
                by[it["worker"]] = by.get(it["worker"], 0) + 1
        return {"name": name, "wall": ts(done["finished_at"]) - ts(done["created_at"]),
                "psnr": top.get("psnr"), "bytes": sum(r["bytes"] for r in rs),
                "chunks": (doc["output"].get("split") or {}).get("chunks", 0), "by": by,
                "cpu": sum(it.get("cpu_seconds", 0) for it in doc.get("items") or [])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--ladder", default="360,720,1080")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--segment-seconds", type=int, default=4)
    ap.add_argument("--chunk-seconds", type=float, default=20)
    ap.add_argument("--only", default="", help="comma-separated set-up names")
    args = ap.parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import Api, Harness  # noqa: E402  (reads SS_BUILD_DIR)

    out = os.path.join(HERE, "out")
    os.makedirs(out, exist_ok=True)
    title = os.path.join(out, "split_%ds_%s.mp4" % (args.seconds, args.size))
    make_title(title, args.seconds, args.size)
    setups = [
        ("off-1core", [("0", 1)], "off"),
        ("auto-2x1", [("0", 1), ("1", 1)], "auto"),
        ("auto-4x1", [("0", 1), ("0", 1), ("1", 1), ("1", 1)], "auto"),
        ("off-2core", [(None, 0)], "off"),
        ("auto-2core", [(None, 0)], "auto"),
        ("unequal", [(None, 2), ("1", 1)], "auto"),
    ]
    only = set(x for x in args.only.split(",") if x)
    res = {}
    for name, workers, split in setups:
        if only and name not in only:
            continue
        r = run(args, name, workers, split, title, Harness, Api)
        res[name] = r
        print("%-11s %7.1f s  chunks %2d  top PSNR %s  bytes %d  item CPU %.1f s  chunks by %s" % (
            name, r["wall"], r["chunks"], r["psnr"], r["bytes"], r["cpu"],
            ", ".join("%s:%d" % kv for kv in sorted(r["by"].items())) or "-"), flush=True)

    def ratio(a, b):
        return res[a]["wall"] / res[b]["wall"] if a in res and b in res else float("nan")
    print()
    print("title: %d s %s, ladder %s, %s CRF %d, %d s segments, chunk_seconds %g" % (
        args.seconds, args.size, args.ladder, args.preset, args.crf, args.segment_seconds,
        args.chunk_seconds))
    print("scaling  off-1core / auto-2x1  = %.2fx faster" % ratio("off-1core", "auto-2x1"))
    print("oversub  off-1core / auto-4x1  = %.2fx faster" % ratio("off-1core", "auto-4x1"))
    print("overhead auto-2core / off-2core = %.3f (%.1f %% slower)" % (
        ratio("auto-2core", "off-2core"), (ratio("auto-2core", "off-2core") - 1) * 100))
    if "off-1core" in res and "auto-2x1" in res and res["off-1core"]["psnr"]:
        a, b = res["off-1core"], res["auto-2x1"]
        print("quality  top-rung PSNR split - unsplit = %+.3f dB; bytes split / unsplit = %.4f" % (
            b["psnr"] - a["psnr"], b["bytes"] / a["bytes"]))


if __name__ == "__main__":
    main()
