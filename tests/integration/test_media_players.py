"""Browser playback (issue 5): the encoder's real output in hls.js, dash.js
and Shaka Player, in Debian's chromium driven by playwright-core
(tests/browser/players.mjs on tests/browser/players.html).

Two outputs of `streamscale-worker encode --segment-seconds 2`: a generated
8 s 1280x720 clip with a tone and an English subtitle stream (storyboard
every second), and the real cockatoo.mp4 (14 s, 20 fps, mp3 audio). Both
pass the independent checker (lib/check_output.py, which also decodes every
rendition with ffmpeg). One HTTP server of our own, on a free loopback port,
serves the page, the players' dist files and the outputs with the right
Content-Types, Range support and no caching; it logs every request under
/m/<output>-<run>/ so this file can assert, per player run, what was fetched.

Per output, hls.js (master.m3u8), dash.js (manifest.mpd), Shaka (master.m3u8)
and Shaka (manifest.mpd) each: list every rendition, play past 3 s, switch
to a forced rendition (its init and media segments fetched, the player and
the <video> report its height), show the subtitle cues at the right times,
play to `ended` after a seek to the last second, with no player error, no
failed request and no console error. The storyboard VTT goes through
chromium's WebVTT parser and every #xywh region must lie in the sprite.

If this chromium cannot decode H.264 it says so loudly; the players are then
only checked to parse the manifests and fetch init and media segments, and
decoding rests on the checker's ffmpeg decode of init + segments.
SS_SIMULATE_NO_H264=1 exercises that path on a chromium that can decode.
Artifacts (requests.log, players-summary.json, failure-*.png) are kept in
build/test-artifacts/media-players/."""
import email.utils
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from lib import check_output  # noqa: E402
from lib.harness import BIN, SOURCE, Harness, free_port, main, media, port_open, wait_until  # noqa: E402

BROWSER_DIR = os.path.join(SOURCE, "tests", "browser")
PLAYER_DIST = ("hls.js/dist/", "dashjs/dist/", "shaka-player/dist/")
TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
}
SUBS = [(0.5, 2.5, "Hello from streamscale"), (3.0, 5.0, "Second cue & an ampersand"),
        (5.5, 7.5, "Third cue")]


# ------------------------------------------------------------ the HTTP server

class MediaServer:
    """Serves players.html, the players' dist files and the outputs
    (/m/<output>-<run>/<path>); keeps a log of every request."""

    def __init__(self, outputs, log_path):
        self.outputs = outputs            # name -> folder
        self.log = []                     # dicts, in arrival order
        self.lock = threading.Lock()
        self.log_file = open(log_path, "a", buffering=1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_HEAD(self):
                self.serve(head=True)

            def do_GET(self):
                self.serve(head=False)

            def serve(self, head):
                path = self.path.split("?", 1)[0]
                tag, rel, fs = server.resolve(path)
                rng = self.headers.get("Range")
                status, nbytes = 404, 0
                try:
                    if fs is None or not os.path.isfile(fs):
                        status = 404
                        body = b"not found\n"
                        self.send_response(404)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        if not head:
                            self.wfile.write(body)
                        return
                    size = os.path.getsize(fs)
                    start, end = 0, size - 1
                    status = 200
                    if rng:
                        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                        if not m or (m.group(1) == "" and m.group(2) == ""):
                            status = 416
                        elif m.group(1) == "":
                            start = max(0, size - int(m.group(2)))
                            status = 206
                        else:
                            start = int(m.group(1))
                            if m.group(2) != "":
                                end = min(end, int(m.group(2)))
                            status = 206 if start < size and start <= end else 416
                    if status == 416:
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % size)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    n = end - start + 1
                    self.send_response(status)
                    ext = os.path.splitext(fs)[1]
                    self.send_header("Content-Type", TYPES.get(ext, "application/octet-stream"))
                    self.send_header("Content-Length", str(n))
                    self.send_header("Accept-Ranges", "bytes")
                    self.send_header("Cache-Control", "no-store")
                    self.send_header("Last-Modified", email.utils.formatdate(os.path.getmtime(fs), usegmt=True))
                    if status == 206:
                        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
                    self.end_headers()
                    if not head:
                        with open(fs, "rb") as f:
                            f.seek(start)
                            self.wfile.write(f.read(n))
                        nbytes = n
                except (BrokenPipeError, ConnectionResetError):
                    status = "aborted"
                finally:
                    server.record(self.command, path, tag, rel, status, rng, nbytes)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def resolve(self, path):
        """(run tag, path inside the output, file) for a URL path."""
        parts = path.lstrip("/").split("/")
        if ".." in parts or "" in parts[:-1]:
            return None, None, None
        if path == "/players.html":
            return None, None, os.path.join(BROWSER_DIR, "players.html")
        if parts[0] == "node_modules":
            rest = "/".join(parts[1:])
            if rest.startswith(PLAYER_DIST):
                return None, None, os.path.join(BROWSER_DIR, "node_modules", rest)
            return None, None, None
        if parts[0] == "m" and len(parts) >= 3:
            tag = parts[1]
            folder = self.outputs.get(tag.split("-", 1)[0])
            rel = "/".join(parts[2:])
            return tag, rel, os.path.join(folder, rel) if folder else None
        return None, None, None

    def record(self, method, path, tag, rel, status, rng, nbytes):
        e = {"t": time.time(), "method": method, "path": path, "tag": tag, "rel": rel,
             "status": status, "range": rng, "bytes": nbytes}
        with self.lock:
            self.log.append(e)
            self.log_file.write("%.3f %s %s %s%s %s\n" % (e["t"], method, status, path,
                                                          " [%s]" % rng if rng else "", nbytes))

    def __enter__(self):
        self.thread.start()
        wait_until(lambda: port_open(self.port), 10, "the media server on port %d" % self.port)
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.log_file.close()
        return False

    def entries(self, tag):
        with self.lock:
            return [e for e in self.log if e["tag"] == tag]


# ------------------------------------------------------------ the outputs

def encode(h, name, source, extra=()):
    out = h.path(name)
    log = h.path("encode-%s.log" % name)
    h.logs["encode-" + name] = log
    t = time.monotonic()
    with open(log, "wb") as f:
        r = subprocess.run([os.path.join(BIN, "streamscale-worker"), "encode", source, out,
                            "--segment-seconds", "2", *extra],
                           stdout=f, stderr=subprocess.STDOUT, timeout=300)
    assert r.returncode == 0, "encode %s failed (%s): %s" % (name, r.returncode, h.log_text("encode-" + name)[-2000:])
    print("encoded %s in %.1f s" % (name, time.monotonic() - t))
    with open(os.path.join(out, "job.json")) as f:
        return out, json.load(f)


def describe(name, out, job):
    """What players.mjs expects of an output, from the files themselves."""
    job = job.get("output", job)
    rends = [{"name": r["name"], "width": r["width"], "height": r["height"], "codecs": r["codecs"]}
             for r in job["renditions"]]
    d = {"name": name, "renditions": rends, "audio": bool(job.get("audio")),
         "duration": job["duration"], "fps": job["frame_rate"], "subtitles": None, "thumbs": None}
    subdir = os.path.join(out, "subtitles")
    if os.path.isdir(subdir):
        vtts = sorted(f for f in os.listdir(subdir) if f.endswith(".vtt"))
        if vtts:
            cues = check_output.vtt_times(open(os.path.join(subdir, vtts[0]), encoding="utf-8").read())
            d["subtitles"] = {"file": vtts[0], "count": len(cues),
                              "first": {"start": SUBS[0][0], "end": SUBS[0][1], "text": SUBS[0][2]}}
    sb = os.path.join(out, "thumbs", "storyboard.vtt")
    if os.path.isfile(sb):
        d["thumbs"] = {"cues": len(check_output.vtt_times(open(sb, encoding="utf-8").read()))}
    return d


def subtitled_clip(h):
    clip = h.path("clip.mp4")
    subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                           "--seconds", "8", "--size", "1280x720"], stdout=subprocess.DEVNULL)
    srt = h.path("clip.srt")

    def ts(t):
        return "00:00:%02d,%03d" % (int(t), round((t - int(t)) * 1000))
    with open(srt, "w") as f:
        for i, (a, b, text) in enumerate(SUBS, 1):
            f.write("%d\n%s --> %s\n%s\n\n" % (i, ts(a), ts(b), text))
    src = h.path("clip-subs.mp4")
    subprocess.check_call(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", clip, "-i", srt,
                           "-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text",
                           "-metadata:s:s:0", "language=eng", src])
    return src


def run_browser(h, node, script, env, timeout):
    """Run tests/browser/<script> (it prints "SUMMARY {json}" last, with
    `problems`); its output goes to ours. The summary, or AssertionError
    when it failed, found problems or ran over timeout seconds."""
    t = time.monotonic()
    # its own process group, so a timeout ends node and the chromium it started
    p = subprocess.Popen([node, os.path.join(BROWSER_DIR, script)], cwd=BROWSER_DIR, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        sys.stdout.write(out)
        raise AssertionError("%s ran over %d s" % (script, timeout))
    sys.stdout.write("\n".join(ln for ln in out.splitlines() if not ln.startswith("SUMMARY ")) + "\n")
    lines = [ln for ln in out.splitlines() if ln.startswith("SUMMARY ")]
    assert lines, "%s printed no summary (rc %s)" % (script, p.returncode)
    summary = json.loads(lines[-1][8:])
    print("browser part: %.1f s" % (time.monotonic() - t))
    assert p.returncode == 0 and not summary["problems"], \
        "the players found problems (artifacts in %s):\n  %s" % (h.artifacts, "\n  ".join(summary["problems"]))
    return summary


# ------------------------------------------------------------ assertions on the server's log

def check_requests(srv, out, run):
    """What the server saw for one player run: the manifest, the playing and
    the forced rendition's init and media segments, audio, subtitles; no
    request that failed."""
    tag = run["tag"]
    e = srv.entries(tag)
    rels = [x["rel"] for x in e]
    bad = ["%s -> %s" % (x["rel"], x["status"]) for x in e if x["status"] not in (200, 206, "aborted")]
    assert not bad, "%s: requests that failed: %s" % (tag, bad)
    assert run["manifest"] in rels, "%s: the server never served %s" % (tag, run["manifest"])
    by_h = {r["height"]: r["name"] for r in out["renditions"]}
    for h in (run["initial"], run["target"]):
        name = by_h[h]
        assert name + "/init.mp4" in rels, "%s: %s/init.mp4 never requested" % (tag, name)
        assert any(re.fullmatch(re.escape(name) + r"/seg_\d{5}\.m4s", r) for r in rels), \
            "%s: no media segment of %s requested" % (tag, name)
        if run["manifest"] == "master.m3u8":
            assert name + "/playlist.m3u8" in rels, "%s: %s/playlist.m3u8 never requested" % (tag, name)
    # after the switch, the forced rendition's segments came after the playing one's
    first_target = min(i for i, r in enumerate(rels) if r.startswith(by_h[run["target"]] + "/seg_"))
    first_initial = min(i for i, r in enumerate(rels) if r.startswith(by_h[run["initial"]] + "/seg_"))
    assert first_initial < first_target, "%s: %sp was fetched before the rendition that played first" % (
        tag, run["target"])
    if out["audio"]:
        assert "audio/init.mp4" in rels and any(r.startswith("audio/seg_") for r in rels), \
            "%s: audio init/segments never requested" % tag
    if out["subtitles"]:
        assert "subtitles/" + out["subtitles"]["file"] in rels, "%s: the subtitle .vtt was never fetched" % tag
    for x in e:
        if x["status"] in (200, 206) and x["method"] == "GET" and x["rel"].endswith((".m4s", ".mp4")):
            assert x["bytes"] > 0, (tag, x)
    segs = sorted(set(r for r in rels if r.endswith(".m4s")))
    return len(segs)


def test_media_players():
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        raise AssertionError("playwright-core is missing: tests/run.sh installs it (cd tests/browser && npm ci)")
    for pkg in ("hls.js", "dashjs", "shaka-player"):
        if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", pkg, "dist")):
            raise AssertionError("%s is missing from tests/browser/node_modules (npm ci)" % pkg)
    if not os.path.exists("/usr/bin/chromium"):
        raise AssertionError("chromium is missing: deploy/deps.sh test-browser (apt-get install chromium)")
    node = shutil.which("node")
    assert node, "node is missing: deploy/deps.sh nodejs"
    simulate = os.environ.get("SS_SIMULATE_NO_H264") == "1"
    with Harness("media-players") as h:
        t0 = time.monotonic()
        clip_out, clip_job = encode(h, "clip", subtitled_clip(h), ["--thumb-interval", "1"])
        cock_out, cock_job = encode(h, "cockatoo", media("cockatoo.mp4"))
        outputs = {"clip": clip_out, "cockatoo": cock_out}
        described = [describe("clip", clip_out, clip_job), describe("cockatoo", cock_out, cock_job)]
        assert described[0]["subtitles"] and described[0]["subtitles"]["count"] == len(SUBS), described[0]
        assert described[0]["thumbs"] and described[0]["thumbs"]["cues"] >= 7, described[0]
        print("outputs ready in %.1f s" % (time.monotonic() - t0))

        # the independent checker, ffmpeg decodes included (the decode check
        # that stands in for the browser if chromium has no H.264); it reads
        # only the outputs, so it runs beside the browser part (which mostly
        # waits on real-time playback) and is judged after it
        def check_both():
            t1 = time.monotonic()
            for name, src in (("clip", None), ("cockatoo", media("cockatoo.mp4"))):
                problems = check_output.check(outputs[name], source=src)
                assert not problems, "%s: the checker found:\n  %s" % (name, "\n  ".join(problems))
            print("outputs checked in %.1f s" % (time.monotonic() - t1))
        checker = ThreadPoolExecutor(max_workers=1)
        checked = checker.submit(check_both)
        try:
            browser_part(h, node, simulate, outputs, described)
        finally:
            checker.shutdown(wait=True)
        checked.result()


def browser_part(h, node, simulate, outputs, described):
    """The players in chromium and what the server saw them fetch."""
    profile = h.path("chromium-profile")
    os.makedirs(profile)
    with MediaServer(outputs, h.path("requests.log")) as srv:
        h.logs["requests"] = h.path("requests.log")
        env = dict(os.environ, SS_BASE="http://127.0.0.1:%d" % srv.port, SS_OUTPUTS=json.dumps(described),
                   SS_PROFILE=profile, SS_ARTIFACTS=h.artifacts)
        summary = run_browser(h, node, "players.mjs", env, 400)

        runs = summary["runs"]
        assert len(runs) == 4 * len(described), [x["tag"] for x in runs]
        h264 = summary["h264"]
        if simulate:
            assert not h264, "SS_SIMULATE_NO_H264=1 but the page saw an H.264 decoder"
        if not h264:
            print("!!! CHROMIUM CANNOT DECODE H.264 HERE (%s): playback was NOT checked in the browser; "
                  "the players parsed the manifests and fetched init and media segments, and the checker "
                  "decoded every rendition (init + segments) with ffmpeg." %
                  ", ".join(k for k, v in summary["codecs"].items() if not v))
        by_name = {d["name"]: d for d in described}
        for run in runs:
            d = by_name[run["output"]]
            if h264:
                n = check_requests(srv, d, run)
                print("%-22s %dp -> %dp, %d segment files, ended at %.2f s, %s cues, %.1f s" % (
                    run["tag"], run["initial"], run["target"], n, run["ended_at"],
                    (run.get("subtitles") or {}).get("count", "-"), run["wall_s"]))
                if run.get("nudged"):
                    print("    NOTE %s: %s" % (run["tag"], run["nudged"]))
            else:
                e = srv.entries(run["tag"])
                rels = [x["rel"] for x in e]
                assert run["manifest"] in rels, run["tag"]
                assert any(x.endswith("/init.mp4") for x in rels) and any(x.endswith(".m4s") for x in rels), \
                    "%s: no init or media segment fetched: %s" % (run["tag"], rels)
                bad = [x for x in e if x["status"] not in (200, 206, "aborted")]
                assert not bad, bad
        for name, d in by_name.items():
            if d["thumbs"]:
                e = [x["rel"] for x in srv.entries(name + "-thumbs")]
                assert "thumbs/storyboard.vtt" in e and "thumbs/sprite.jpg" in e, e
    with open(os.path.join(h.artifacts, "requests.json"), "w") as f:
        json.dump(srv.log, f)
    print("playback: %s" % ("H.264 decoded by chromium: %d player runs played, switched and ended" % len(runs)
                            if h264 else summary.get("playback")))


if __name__ == "__main__":
    main(test_media_players)
