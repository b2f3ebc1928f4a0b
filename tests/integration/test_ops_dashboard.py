"""The dashboard, end to end in Debian's chromium (playwright-core from
tests/browser/node_modules): redis-server, the coordinator serving web/ and
the workers' file:// outputs (output_dir), one real streamscale-worker
encode of a generated 3 s clip, then the no-op queue worker for the live
part. tests/browser/dashboard.test.mjs drives the browser: token asked once,
a job seen queued -> running (progress bar moving) -> completed, cancel and
retry buttons, the real job's page with its events, renditions, poster and
the hls.js preview playing, an s3:// job previewed through public_base_url,
no console errors. Screenshots (dashboard.png,
job.png) are kept in build/test-artifacts/ops-dashboard/.

A split job ("split": 2 on a 6 s clip, 1 s segments: 3 chunks) on the same
real worker: its items in GET /v1/jobs/{id} carry each chunk's time range
(contiguous, from 0 to the title's end; `streamscale status` prints them);
tests/browser/strip.test.mjs,
signed in with the read-only view token, sees its chunk strip update live
until every cell is done (one cell per chunk, sized by duration, text
alternative and tooltip; screenshot strip.png), and in a second tab the
overview's jobs list shows the same strip, small, in the job's row while it
runs (cells in the API's order, updating live) and none once it completed
(strip-row.png)."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.browser import (assert_screenshots, browser_env, finish_browser_test,  # noqa: E402
                         require_browser, run_browser_test, start_browser_test, stop_browser_test)
from lib.harness import BIN, Api, Harness, RedisClient, free_port, http_json, main, wait_until  # noqa: E402

TOKEN = "dashboard-test-token"
VIEW = "dashboard-view-token"


def split_strip(h, api, url, out):
    """A split job on the real worker, its chunk strip watched in chromium
    while it runs (tests/browser/strip.test.mjs)."""
    clip = h.path("split.mp4")
    subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                           "--seconds", "6", "--size", "320x240"], stdout=subprocess.DEVNULL)
    t0 = time.monotonic()
    # the worker drained while the page opens on the queued job, so the
    # browser sees the items from the start
    st, ans = http_json("POST", url + "/v1/workers/real/drain", token=TOKEN)
    assert st == 200, (st, ans)
    jid = api.submit({"source": "file://" + clip, "split": 2, "segment_seconds": 1,
                      "ladder": [{"height": 144}], "thumbnails": {"enabled": False,
                                                              "interval_seconds": 10}})["id"]
    ready = h.path("strip.ready")
    p = start_browser_test("strip.test.mjs", browser_env(
        h, url, "chromium-profile-strip", SS_VIEW_TOKEN=VIEW, SS_SPLIT_JOB=jid, SS_READY=ready))
    try:
        wait_until(lambda: os.path.exists(ready) or p.poll() is not None, 60, "the strip page open")
        st, ans = http_json("POST", url + "/v1/workers/real/resume", token=TOKEN)
        assert st == 200, (st, ans)
        # the job is held half done until the page has seen it so (the
        # whole job can take less than the page's 1 s poll): once its plan
        # is claimed the worker drains (ends the items it holds, claims no
        # more: not even a run going on into the next chunk), and resumes
        # when the script says it saw live states. (Once the plan was done
        # was too late: a run going on from chunk to chunk could claim
        # every chunk of this 6 s clip before the drain landed.)
        wait_until(lambda: api.job(jid)["state"] != "queued" or p.poll() is not None, 60,
                   "the plan claimed", interval=0.01)
        st, ans = http_json("POST", url + "/v1/workers/real/drain", token=TOKEN)
        assert st == 200, (st, ans)
        wait_until(lambda: os.path.exists(ready + ".live") or p.poll() is not None, 60,
                   "the page seeing the job live")
        st, ans = http_json("POST", url + "/v1/workers/real/resume", token=TOKEN)
        assert st == 200, (st, ans)
        job = api.wait_state(jid, ("completed", "failed", "dead"), 180)
        finish_browser_test(h, p, 120)
    finally:
        stop_browser_test(p)
    assert job["state"] == "completed", job
    chunks = [i for i in job["items"] if i["kind"] == "chunk"]
    assert len(chunks) == 3, job["items"]
    ends = [(c["start_seconds"], c["end_seconds"]) for c in chunks]
    assert ends[0][0] == 0 and abs(ends[-1][1] - 6) < 0.05, ends
    assert all(abs(a[1] - b[0]) < 1e-6 for a, b in zip(ends, ends[1:])), ends
    assert all(i["state"] == "done" for i in job["items"]), job["items"]
    # streamscale status prints the same items, a chunk with its range
    out = subprocess.run([os.path.join(BIN, "streamscale"), "--api", url, "--token", VIEW,
                          "status", jid], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [ln.split() for ln in out.stdout.splitlines() if ln.startswith("item:")]
    assert [ln[1] for ln in lines] == [i["name"] for i in job["items"]], out.stdout
    assert "2.0-4.0 s" in [ln for ln in out.stdout.splitlines() if " c1 " in ln][0], out.stdout
    print("split job and its strip: %.1f s" % (time.monotonic() - t0))


def test_ops_dashboard():
    require_browser()
    with Harness("ops-dashboard") as h:
        rport = h.redis()
        out = h.path("out")
        os.makedirs(out)
        # public_base_url: where viewers reach s3:// outputs; here the
        # coordinator's own /files/, so an "s3" job below can really play
        port = free_port()
        public = "http://127.0.0.1:%d/files/" % port
        url = h.coordinator(redis_port=rport, token=TOKEN, port=port,
                            extra={"STREAMSCALE_OUTPUT_DIR": out,
                                   "STREAMSCALE_PUBLIC_BASE_URL": public,
                                   "STREAMSCALE_DEFAULT_DESTINATION": "file://%s/" % out,
                                   "STREAMSCALE_VIEW_TOKEN": VIEW})
        api = Api(url, TOKEN)

        # one real encode, on a short generated clip
        clip = h.path("clip.mp4")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", "3", "--size", "320x240"], stdout=subprocess.DEVNULL)
        h.worker("real", rport, storage="file://%s/" % out,
                 extra={"STREAMSCALE_LOG_LEVEL": "info"})
        real = api.submit({"source": "file://" + clip, "thumbnails": {"interval_seconds": 1}})["id"]
        job = api.wait_state(real, ("completed", "failed", "dead"), 180)
        assert job["state"] == "completed", job
        # a second encode, presented as if it had gone to s3://media/videos/:
        # the dashboard must find it under public_base_url
        s3job = api.submit({"source": "file://" + clip, "idempotency_key": "dashboard-s3-view"})["id"]
        job2 = api.wait_state(s3job, ("completed", "failed", "dead"), 180)
        assert job2["state"] == "completed", job2
        split_strip(h, api, url, out)
        assert h.stop("real") == 0
        r = RedisClient(rport)
        res = r("HGET", "{ss}:job:" + s3job, "result")
        res = res.replace("file://%s/" % out, "s3://media/videos/")
        assert "file://" not in json.dumps(json.loads(res)["urls"]), res
        r("HSET", "{ss}:job:" + s3job, "result", res)
        r.close()

        # the no-op worker for the live part (one slot, progress every 200 ms)
        h.queue_worker("dash-worker", rport, extra={
            "STREAMSCALE_HEARTBEAT_MS": "200", "STREAMSCALE_POLL_MS": "200",
            "STREAMSCALE_LEASE_SECONDS": "10", "STREAMSCALE_LOG_LEVEL": "info"})

        _, summary = run_browser_test(h, "dashboard.test.mjs", browser_env(
            h, url, SS_TOKEN=TOKEN, SS_REAL_JOB=real, SS_S3_JOB=s3job), 300)
        assert summary is not None, "the browser test printed no SUMMARY line"
        print("playback: %s" % summary.get("playback"))
        assert_screenshots(h, "dashboard.png", "job.png")
        # the coordinator counted the dashboard's own traffic
        st, text = http_json("GET", url + "/metrics")
        assert 'route="dashboard",code="200"' in text and 'route="files",code="200"' in text, text[-2000:]


if __name__ == "__main__":
    main(test_ops_dashboard)
