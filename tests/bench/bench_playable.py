#!/usr/bin/env python3
"""bench_playable.py — time to first playable (docs/PLAYABLE.md): how soon
after the submit can a viewer start watching, next to how long the whole
ladder takes?

One generated title (bench_split.py's: testsrc2 with light temporal noise
and a 440 Hz tone; the issue's input is 10 minutes of 1080p30), the ladder,
preset, CRF and segment length as given, in these set-ups:

  split-2x1      ours, split auto: 2 worker daemons pinned to core 0 and
                 core 1 (taskset), threads 1 each (the issue's set-up)
  unsplit-2core  ours as a user has it without early publish: 1 worker on
                 both cores (threads 0 = all), split off; its master is
                 written at the end, so playable = completed
  ffmpeg-cli     the ffmpeg CLI's HLS muxer, one process on both cores
                 (-threads 0), the same ladder, CRF + maxrate/bufsize as our
                 plan, keyframes on the segment grid, fMP4 segments and
                 EVENT playlists that it rewrites after every segment

"Playable" is measured from outside, the same way for all three: a thread
polls the output folder every 50 ms for master.m3u8 whose every variant
playlist lists at least 2 segments that exist. For ours it is also read
from the API (playable_at - created_at). "Completed": the job's finished_at
- created_at (ffmpeg: its exit). Prints a table and the ratios; never
asserts.

    /usr/bin/python3 tests/bench/bench_playable.py [--build build] [--seconds 600]
        [--size 1920x1080] [--ladder 360,720,1080] [--only split-2x1,unsplit-2core,ffmpeg-cli]
"""
import argparse
import datetime
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from bench_split import make_title, start_workers  # noqa: E402


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def playable_now(folder):
    """master.m3u8 whose every variant playlist lists >= 2 stored segments."""
    try:
        with open(os.path.join(folder, "master.m3u8")) as f:
            master = f.read()
    except OSError:
        return False
    uris = [ln for ln in master.splitlines() if ln and not ln.startswith("#")]
    if not uris:
        return False
    for u in uris:
        p = os.path.join(folder, u)
        try:
            with open(p) as f:
                segs = [ln for ln in f.read().splitlines() if ln and not ln.startswith("#")]
        except OSError:
            return False
        if len(segs) < 2 or not all(os.path.isfile(os.path.join(os.path.dirname(p), s)) for s in segs[:2]):
            return False
    return True


class Watch:
    """Polls a folder (found by find()) from t0 until it is playable."""

    def __init__(self, find, t0):
        self.find, self.t0, self.at = find, t0, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            d = self.find()
            if d and playable_now(d):
                self.at = time.time() - self.t0
                return
            time.sleep(0.05)

    def end(self):
        self.stop.set()
        self.thread.join()
        return self.at


def run_ours(args, name, workers, split, title, Harness, Api):
    with Harness("bench-playable-" + name) as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token="bench-token")
        api = Api(url, "bench-token", harness=h)
        start_workers(h, rport, workers, title)
        spec = {"source": "file://" + title, "preset": args.preset, "crf": args.crf,
                "segment_seconds": args.segment_seconds, "split": split,
                "ladder": [{"height": int(x)} for x in args.ladder.split(",")],
                "thumbnails": False, "idempotency_key": "bench-playable-" + name}
        jid = [None]
        t0 = time.time()
        w = Watch(lambda: jid[0] and h.path("out", jid[0]), t0)
        j = api.submit(spec)
        jid[0] = j["id"]
        done = api.wait_state(j["id"], ("completed", "failed", "dead"), 7200)
        seen = w.end()
        if done["state"] != "completed":
            raise SystemExit("%s: %s" % (name, done["error"]))
        created = ts(done["created_at"])
        api_playable = ts(done["playable_at"]) - created if done.get("playable_at") else None
        return {"name": name, "playable": seen, "api_playable": api_playable,
                "completed": ts(done["finished_at"]) - created,
                "chunks": len([i for i in done.get("items") or [] if i["kind"] == "chunk"])}


def run_ffmpeg(args, title, out):
    """The ffmpeg CLI's HLS ladder with EVENT playlists, on both cores."""
    import shutil
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    heights = [int(x) for x in args.ladder.split(",")]
    n = len(heights)
    fc = "[0:v]split=%d%s;" % (n, "".join("[s%d]" % i for i in range(n)))
    fc += ";".join("[s%d]scale=-2:%d[v%d]" % (i, hh, i) for i, hh in enumerate(heights))
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", title,
            "-filter_complex", fc]
    gop = 30 * args.segment_seconds
    for i, hh in enumerate(heights):
        # the cap our plan gives a 16:9 rung at 30 fps (plan_maxrate_kbps)
        ww = (hh * 16 // 9 + 1) // 2 * 2
        maxrate = max(200, round(6000 * (ww * hh / (1920 * 1080)) ** 0.75 / 50) * 50)
        argv += ["-map", "[v%d]" % i, "-map", "0:a", "-c:v:%d" % i, "libx264",
                 "-preset:v:%d" % i, args.preset, "-crf:v:%d" % i, str(args.crf),
                 "-maxrate:v:%d" % i, "%dk" % maxrate, "-bufsize:v:%d" % i, "%dk" % (2 * maxrate)]
    argv += ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-pix_fmt", "yuv420p", "-threads", "0",
             "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
             "-f", "hls", "-hls_time", str(args.segment_seconds), "-hls_playlist_type", "event",
             "-hls_segment_type", "fmp4", "-hls_segment_filename", os.path.join(out, "v%v", "seg_%05d.m4s"),
             "-master_pl_name", "master.m3u8",
             "-var_stream_map", " ".join("v:%d,a:%d" % (i, i) for i in range(n)),
             os.path.join(out, "v%v", "playlist.m3u8")]
    t0 = time.time()
    w = Watch(lambda: out, t0)
    subprocess.check_call(["taskset", "-c", "0,1"] + argv)
    return {"name": "ffmpeg-cli", "playable": w.end(), "api_playable": None,
            "completed": time.time() - t0, "chunks": 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for k, v in (("build", "build"), ("seconds", 600), ("size", "1920x1080"),
                 ("ladder", "360,720,1080"), ("preset", "veryfast"), ("crf", 23),
                 ("segment-seconds", 4), ("only", "")):
        ap.add_argument("--" + k, type=type(v), default=v)
    args = ap.parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import Api, Harness  # noqa: E402  (reads SS_BUILD_DIR)
    work = os.path.join(HERE, "out")
    os.makedirs(work, exist_ok=True)
    title = os.path.join(work, "split_%ds_%s.mp4" % (args.seconds, args.size))
    make_title(title, args.seconds, args.size)
    only = set(x for x in args.only.split(",") if x)
    res = {}
    for name in ("split-2x1", "unsplit-2core", "ffmpeg-cli"):
        if only and name not in only:
            continue
        if name == "split-2x1":
            r = run_ours(args, name, [("0", 1), ("1", 1)], "auto", title, Harness, Api)
        elif name == "unsplit-2core":
            r = run_ours(args, name, [(None, 0)], "off", title, Harness, Api)
        else:
            r = run_ffmpeg(args, title, os.path.join(work, "ffmpeg-hls"))
        res[name] = r
        print("%-14s playable %7s s (API %7s s)  completed %7.1f s  chunks %d" % (
            name, "%.1f" % r["playable"] if r["playable"] is not None else "never",
            "%.1f" % r["api_playable"] if r["api_playable"] is not None else "-",
            r["completed"], r["chunks"]), flush=True)
    print()
    print("title: %d s %s, ladder %s, %s CRF %d, %d s segments; machine: %d cores" % (
        args.seconds, args.size, args.ladder, args.preset, args.crf, args.segment_seconds,
        len(os.sched_getaffinity(0))))
    s = res.get("split-2x1")
    if s and s["playable"] is not None:
        print("split-2x1: first playable after %.1f s (target <= 15 s), completed after %.1f s" % (
            s["playable"], s["completed"]))
        for other in ("unsplit-2core", "ffmpeg-cli"):
            o = res.get(other)
            if o and o["playable"]:
                print("time to first playable: %s / split-2x1 = %.1fx; completed: %.2fx" % (
                    other, o["playable"] / s["playable"], o["completed"] / s["completed"]))


if __name__ == "__main__":
    main()
