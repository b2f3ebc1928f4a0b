"""SIGHUP while jobs encode: the real worker (the media pipeline, slots 2)
reloads its config file on its loop thread again and again while two jobs
run on their own threads. Each job keeps the settings it was claimed under
(worker.h: wjob.conf, a copy made at the claim), a job claimed after the
reload gets the new ones, the registry shows the new slots at once, and both
jobs complete.

tests/run.sh also runs this test against the ThreadSanitizer build of the
daemons (build-tsan/): there any data race between the reload and the job
threads is a report in the worker's log, which fails the test (the harness
scans every log for sanitizer reports).
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BIN, Api, Harness, main, wait_until  # noqa: E402

TOKEN = "reload-token"


def thread_lines(h, name, jid):
    """The worker's "encoding with N encoder thread(s)" lines of one job."""
    return [m for m in h.job_messages(name, jid) if m.startswith("encoding with")]


def test_worker_reload():
    with Harness("worker-reload") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        clip = h.path("clip.mp4")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", "4", "--size", "320x240"], stdout=subprocess.DEVNULL)
        cfg = h.path("w.conf")
        with open(cfg, "w") as f:
            f.write("slots = 2\nthreads = 1\nmax_pixels = 35389440\n")
        h.worker("w", rport, args=["-c", cfg], extra={"STREAMSCALE_HEARTBEAT_MS": "200"})
        wait_until(lambda: [w["slots"] for w in api.workers() if w["id"] == "w"] == [2], 20,
                   "w registered with 2 slots")

        # reloads of the same settings while the two jobs are claimed and
        # start (their threads read the config then), then of new settings
        # while they encode: the loop thread rewrites its config (and the
        # log level) while the job threads run
        jobs = [api.submit({"source": "file://" + clip, "ladder": [{"height": 240}, {"height": 120}],
                            "metadata": {"n": i}})["id"] for i in range(2)]
        t_end = time.monotonic() + 60
        while not all(thread_lines(h, "w", j) for j in jobs):
            assert time.monotonic() < t_end, "both jobs encoding at once"
            h.send_signal("w", signal.SIGHUP)
            time.sleep(0.005)
        assert all(api.job(j)["state"] == "running" for j in jobs), [api.job(j) for j in jobs]
        with open(cfg, "w") as f:
            f.write("slots = 1\nthreads = 2\nmax_pixels = 35389441\n")
        n = 0
        t_end = time.monotonic() + 2
        while time.monotonic() < t_end and any(api.job(j)["state"] == "running" for j in jobs):
            h.send_signal("w", signal.SIGHUP)
            n += 1
            time.sleep(0.02)
        assert n >= 3, "the jobs ended before the reloads: %d SIGHUPs" % n
        wait_until(lambda: h.log_text("w").count("SIGHUP: config reloaded") >= 1, 20, "a reload")
        wait_until(lambda: [w["slots"] for w in api.workers() if w["id"] == "w"] == [1], 20,
                   "the registry to show 1 slot")
        for j in jobs:
            done = api.wait_state(j, ("completed", "failed", "dead"), 180)
            assert done["state"] == "completed", done
            # what it was claimed under, whatever the reloads did meanwhile
            assert thread_lines(h, "w", j) == [
                "encoding with 1 encoder thread(s) (threads 1, slots 2 when claimed)"], \
                thread_lines(h, "w", j)

        # a job claimed after the reload runs with the new settings
        k = api.submit({"source": "file://" + clip, "ladder": [{"height": 120}]})["id"]
        done = api.wait_state(k, ("completed", "failed", "dead"), 180)
        assert done["state"] == "completed", done
        assert thread_lines(h, "w", k) == [
            "encoding with 2 encoder thread(s) (threads 2, slots 1 when claimed)"], \
            thread_lines(h, "w", k)
        h.assert_alive()


if __name__ == "__main__":
    main(test_worker_reload)
