"""The whole path with real parts: HTTP API -> Redis -> two real workers ->
CMAF ladder on file:// storage. A batch of real and generated videos is
shared by the two workers; every job completes exactly once and every
output passes the independent checker (lib/check_output.py: playlists,
MPD, keyframes at segment starts, alignment across renditions, durations,
decodes). The CLI's submit --wait / status / list work on the same system."""
import collections
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import check_output  # noqa: E402
from lib.harness import BIN, Api, Harness, gen_clip, main, media  # noqa: E402

TOKEN = "test-token"
WORKER = {"STREAMSCALE_THREADS": "1", "STREAMSCALE_POLL_MS": "300"}


def test_e2e_ladder():
    with Harness("e2e-ladder") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        h.worker("w1", rport, extra=WORKER)
        h.worker("w2", rport, extra=WORKER)

        sources = [
            media("cockatoo.mp4"),         # H.264 + MP3, 1280x720
            media("realshort.mp4"),        # H.264 + AAC, 320x240, ~1 s
            media("balle-jbart.mp4"),      # H.264 + AAC, 720x576 (SAR)
            gen_clip(h.path("gen-audio.mp4"), seconds=5, size="640x360", rate=25),
            gen_clip(h.path("gen-noaudio.mp4"), seconds=3, size="426x240", rate=30, audio=False),
        ]
        jobs = {}
        for src in sources:
            j = api.submit({"source": "file://" + src, "segment_seconds": 2})
            jobs[j["id"]] = src
        assert len(jobs) == len(sources)

        per_worker = collections.Counter()
        for jid, src in jobs.items():
            j = api.wait_state(jid, ("completed", "failed", "dead"), 600)
            assert j["state"] == "completed", (src, j["error"])
            assert j["attempts"] == 1, j
            per_worker[j["worker"]] += 1
            types = [e["type"] for e in api.events(jid)]
            assert types.count("job.completed") == 1 and types.count("job.started") == 1, types
            assert types[0] == "job.queued" and types[-1] == "job.completed", types
            out = os.path.join(h.path("out"), jid)
            problems = check_output.check(out, source=src)
            assert not problems, "%s:\n  %s" % (os.path.basename(src), "\n  ".join(problems))
            with open(os.path.join(out, "job.json")) as f:
                doc = json.load(f)
            assert doc["id"] == jid and doc["renditions"], doc
            assert doc["urls"]["hls"].endswith(jid + "/master.m3u8"), doc["urls"]
            # the result in the API is the same document
            assert j["result"]["urls"] == doc["urls"]
            # no scratch left behind
        for w in ("w1", "w2"):
            assert os.listdir(h.path(w + "-scratch")) == [], os.listdir(h.path(w + "-scratch"))
        assert set(per_worker) == {"w1", "w2"}, "the workers did not share the batch: %s" % per_worker

        # the CLI on the same system
        env = dict(os.environ, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN)
        cli = os.path.join(BIN, "streamscale")
        clip = gen_clip(h.path("cli.mp4"), seconds=2, size="320x240")
        p = subprocess.run([cli, "submit", clip, "--wait", "--ladder", "240"], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert "state:     completed" in p.stdout and "rendition: 240p" in p.stdout, p.stdout
        jid = [ln.split()[-1] for ln in p.stdout.splitlines() if ln.startswith("id:")][0]
        p = subprocess.run([cli, "status", jid, "--json"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0 and json.loads(p.stdout)["state"] == "completed", p
        p = subprocess.run([cli, "list", "--state", "completed"], env=env, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0 and jid in p.stdout and "(6 job(s) in all)" in p.stdout, p.stdout
        p = subprocess.run([cli, "status", "0" * 20], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 1 and "404" in p.stderr, p
        p = subprocess.run([cli, "--token", "nope", "list"], env=env, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 1 and "401" in p.stderr, p


if __name__ == "__main__":
    main(test_e2e_ladder)
