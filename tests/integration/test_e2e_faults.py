"""The real worker against bad input and bad weather: unreadable, empty,
fake and missing sources fail with a readable reason and are not retried,
the worker keeps taking jobs; a worker started before Redis waits without
spinning; a worker killed with SIGKILL in the middle of a real encode loses
nothing (another worker completes the job, attempts 2, one completion)."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import (BIN, Api, Harness, cpu_seconds, free_port, gen_clip,  # noqa: E402
                         main, wait_until)

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "4", "STREAMSCALE_HEARTBEAT_MS": "300",
          "STREAMSCALE_POLL_MS": "300", "STREAMSCALE_THREADS": "2"}


def test_e2e_faults():
    with Harness("e2e-faults") as h:
        # ---- a worker started while Redis is down: clear log, no spinning
        rport = free_port()
        w = h.worker("w1", rport, extra=WORKER)
        wait_until(lambda: "connect failed" in h.log_text("w1") or "redis" in h.log_text("w1"), 10,
                   "worker to report Redis down")
        c0 = cpu_seconds(w.pid)
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 3, 5, "3 s of Redis down")
        used = cpu_seconds(w.pid) - c0
        assert used < 0.5, "worker spun while Redis was down: %.2fs CPU in 3s" % used
        assert "127.0.0.1:%d" % rport in h.log_text("w1"), h.log_text("w1")[-500:]
        h.redis(port=rport)
        wait_until(lambda: "connected" in h.log_text("w1"), 30, "worker to connect")
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)

        # ---- bad sources: failed, readable reason, not retried
        empty = h.path("empty.mp4")
        open(empty, "wb").close()
        text = h.path("notes.mp4")
        with open(text, "w") as f:
            f.write("this is not a video\n" * 100)
        cases = [
            (empty, ("empty", "0-byte", "0 bytes", "invalid data", "no video")),
            (text, ("invalid data", "no video", "not a video", "could not", "decodable")),
            (h.path("missing.mp4"), ("no such file",)),
        ]
        for path, words in cases:
            j = api.submit({"source": "file://" + path})
            f = api.wait_state(j["id"], ("failed", "dead", "completed"), 60)
            assert f["state"] == "failed", f
            assert f["attempts"] == 1, f
            msg = f["error"]["message"].lower()
            assert any(wd in msg for wd in words), (path, f["error"])
        # the CLI reports the failure with a non-zero exit and the reason
        env = dict(os.environ, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN)
        p = subprocess.run([os.path.join(BIN, "streamscale"), "submit", text, "--wait"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 1, p
        assert "failed" in p.stdout and "error:" in p.stdout, p.stdout

        # ---- the worker is still up and does the next good job
        good = gen_clip(h.path("good.mp4"), seconds=2, size="320x240")
        j = api.submit({"source": "file://" + good, "thumbnails": False})
        done = api.wait_state(j["id"], ("completed", "failed"), 120)
        assert done["state"] == "completed", done
        assert h.procs["w1"].poll() is None

        # ---- SIGKILL in the middle of a real encode
        long_clip = gen_clip(h.path("long.mp4"), seconds=20, size="1280x720", rate=30)
        j = api.submit({"source": "file://" + long_clip, "thumbnails": False})
        wait_until(lambda: api.job(j["id"])["progress"] >= 15, 120, "the encode to be under way")
        h.stop("w1", signal.SIGKILL)
        scratch = h.path("w1-scratch")
        assert os.listdir(scratch), "expected the killed worker's scratch files"
        h.worker("w2", rport, extra=WORKER)
        done = api.wait_state(j["id"], ("completed", "failed", "dead"), 240)
        assert done["state"] == "completed" and done["attempts"] == 2, done
        assert done["result"]["worker"] == "w2", done["result"]["worker"]
        types = [e["type"] for e in api.events(j["id"])]
        assert types.count("job.completed") == 1 and types.count("job.started") == 2, types
        out = os.path.join(h.path("out"), j["id"])
        assert os.path.exists(os.path.join(out, "master.m3u8"))
        assert os.path.exists(os.path.join(out, "job.json"))

        # ---- file_roots: file:// sources and destinations outside are refused
        h.stop("w2")
        allowed = h.path("allowed")
        os.makedirs(allowed, exist_ok=True)
        inside = gen_clip(os.path.join(allowed, "in.mp4"), seconds=1, size="320x240")
        h.worker("w3", rport, extra=dict(WORKER, STREAMSCALE_FILE_ROOTS="%s:%s" % (allowed, h.path("out"))))
        for spec, word in (({"source": "file://" + good}, "source"),
                           ({"source": "file://" + inside, "destination": "file:///tmp/elsewhere/"},
                            "destination")):
            j = api.submit(spec)
            f = api.wait_state(j["id"], ("completed", "failed", "dead"), 120)
            assert f["state"] == "failed" and f["attempts"] == 1, f
            assert f["error"]["code"] == "denied" and word in f["error"]["message"], f["error"]
        j = api.submit({"source": "file://" + inside, "thumbnails": False})
        assert api.wait_state(j["id"], ("completed", "failed", "dead"), 120)["state"] == "completed"


if __name__ == "__main__":
    main(test_e2e_faults)
