"""Audio languages and AV1 in real players (issue 16): one short clip with
three audio tracks (English default, French, a German commentary with a
title) and an H.264 + AV1 ladder, encoded by `streamscale-worker encode`,
checked by lib/check_output.py, then played in hls.js, dash.js and Shaka
(its HLS and its DASH) in Debian's chromium by tests/browser/tracks.mjs:

- with AV1 visible, each player lists the three tracks with their languages
  and labels (HLS NAME, DASH Label), starts on the default one and on AV1;
  switching to French makes that track active, its segments are fetched and
  audio and video play on;
- with AV1 hidden in the page (isTypeSupported, canPlayType and
  MediaCapabilities say no), each player plays H.264 and never fetches AV1
  (with AV1 visible, nothing of H.264 once AV1 began: Shaka's HLS parser
  reads the first variant's init and first segments to learn start times).

The server's own log (every request, per player run) is checked here as well.
Kept short (one 6 s clip shared by the 8 player runs)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import check_output  # noqa: E402
from lib.harness import BIN, Harness, main  # noqa: E402
from test_media_players import BROWSER_DIR, MediaServer, run_browser  # noqa: E402

TRACKS = [  # (folder, lang, label, default) as the output must list them
    ("audio", "en", "English", True),
    ("audio_1", "fr", "French", False),
    ("audio_2", "de", "Director's commentary", False),
]


def clip(h):
    src = h.path("tracks.mkv")
    subprocess.check_call([
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
        "-f", "lavfi", "-i", "sine=frequency=300:duration=6:sample_rate=48000",
        "-f", "lavfi", "-i", "sine=frequency=500:duration=6:sample_rate=48000",
        "-f", "lavfi", "-i", "sine=frequency=700:duration=6:sample_rate=48000",
        "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre",
        "-metadata:s:a:2", "language=ger", "-metadata:s:a:2", "title=Director's commentary",
        "-disposition:a:0", "default", "-disposition:a:1", "0", "-disposition:a:2", "comment", src])
    return src


def test_media_players_tracks():
    node = shutil.which("node")
    assert node, "node is missing: deploy/deps.sh nodejs"
    for d in ("playwright-core", "hls.js/dist", "dashjs/dist", "shaka-player/dist"):
        assert os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", d)), \
            "tests/browser/node_modules/%s is missing (cd tests/browser && npm ci)" % d
    assert os.path.exists("/usr/bin/chromium"), "chromium is missing: deploy/deps.sh test-browser"
    with Harness("media-players-tracks") as h:
        src = clip(h)
        out = h.path("tracks")
        t = time.monotonic()
        r = subprocess.run([os.path.join(BIN, "streamscale-worker"), "encode", src, out, "--segment-seconds", "2",
                            "--ladder", "180", "--codecs", "h264,av1", "--no-thumbnails", "--no-quality"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        print("encoded in %.1f s" % (time.monotonic() - t))
        job = json.load(open(os.path.join(out, "job.json")))
        got = [(a["name"], a["language"], a["default"]) for a in job["audio_tracks"]]
        assert got == [(f, lang, d) for f, lang, _, d in TRACKS], got
        vids = {r["video_codec"]: r["name"] for r in job["renditions"]}
        assert sorted(vids) == ["av1", "h264"], vids
        problems = check_output.check(out, source=src)
        assert not problems, "the checker found:\n  %s" % "\n  ".join(problems)

        profile = h.path("chromium-profile")
        os.makedirs(profile)
        desc = {"name": "tracks", "duration": job["duration"], "switch_to": "fr", "h264": vids["h264"],
                "av1": vids["av1"], "tracks": [{"folder": f, "lang": lang, "label": label, "default": d}
                                               for f, lang, label, d in TRACKS]}
        with MediaServer({"tracks": out}, h.path("requests.log")) as srv:
            h.logs["requests"] = h.path("requests.log")
            env = dict(os.environ, SS_BASE="http://127.0.0.1:%d" % srv.port, SS_OUTPUT=json.dumps(desc),
                       SS_PROFILE=profile, SS_ARTIFACTS=h.artifacts)
            summary = run_browser(h, node, "tracks.mjs", env, 240)
            assert len(summary["runs"]) == 8, [x["tag"] for x in summary["runs"]]
            # what the server itself saw, per run
            for run in summary["runs"]:
                e = srv.entries(run["tag"])
                bad = ["%s -> %s" % (x["rel"], x["status"]) for x in e if x["status"] not in (200, 206, "aborted")]
                assert not bad, (run["tag"], bad)
                rels = [x["rel"] for x in e]
                want, other = (vids["h264"], vids["av1"]) if run["av1Hidden"] else (vids["av1"], vids["h264"])
                assert any(x.startswith(want + "/seg_") for x in rels), (run["tag"], rels)
                began = min(i for i, x in enumerate(rels) if x.startswith(want + "/"))
                assert not any(x.startswith(other + "/") and (run["av1Hidden"] or i > began)
                               for i, x in enumerate(rels)), (run["tag"], rels)
                if not run["av1Hidden"]:
                    first = {f: min([i for i, x in enumerate(rels) if x.startswith(f + "/seg_")] or [None])
                             for f in ("audio", "audio_1")}
                    assert first["audio"] is not None and first["audio_1"] is not None and \
                        first["audio"] < first["audio_1"], (run["tag"], first)
                print("%-22s %s, audio %s, %.1f s" % (run["tag"], run["codec"],
                                                     " -> ".join(t["lang"] for t in [x for x in run["tracks"]
                                                                                     if x["active"]] + run.get("after", [])),
                                                     run["wall_s"]))


if __name__ == "__main__":
    main(test_media_players_tracks)
