"""The operator console's API (coordinator/coord_console.c), with the real
worker daemon (no-op executor) on a Redis that has the ACL users of
deploy/redis-acl.conf, so the new key and commands are proven allowed:

- the read-only view_token reads every GET, and every change (any /v1
  method but GET/HEAD, known path or not, with or without a body) is 403;
- search by id prefix / source / metadata (not the webhook secret);
- bulk retry of failed jobs in batches (limit, remaining), bulk clear of
  completed jobs, and their 400s;
- drain/resume of one worker through the API: a drained worker finishes
  its running job, claims nothing while drained (another job stays queued
  across many of its polls), and claims again at once after resume;
- speed (as the worker reports it) and eta_seconds on a running job, in
  the job and in the list; the queue history ring (1 s samples here)
  with the completions counted per interval;
- then the dashboard in Debian's chromium (tests/browser/console.test.mjs):
  history chart, ETA, search, Drain/Resume and Retry-failed buttons, and the
  read-only page of the view token (screenshot console.png in the
  artifacts; docs/console.png is one of them).
Every answer is checked against proto/openapi.yaml by the harness."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.browser import assert_screenshots, browser_env, require_browser, run_browser_test  # noqa: E402
from lib.harness import Api, Harness, http_json, main, wait_until  # noqa: E402

TOKEN = "console-test-token"
VIEW = "console-view-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_VIEW_TOKEN": VIEW,
         "STREAMSCALE_HISTORY_SAMPLE_SECONDS": "1"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "5", "STREAMSCALE_HEARTBEAT_MS": "200",
          "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_SLOTS": "1"}


def test_ops_console():
    with Harness("ops-console") as h:
        rport = h.redis(acl=True)
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        h.queue_worker("w1", rport, extra=WORKER)
        wait_until(lambda: [w for w in api.workers() if w["id"] == "w1"], 10, "w1 registered")

        # ---- jobs to act on: three that fail for good, two that complete
        failed = [api.submit({"source": "file:///console/f%d.mp4" % i,
                              "metadata": {"fail": "permanent"}})["id"] for i in range(3)]
        done = [api.submit({"source": "file:///console/ok%d.mp4" % i,
                            "metadata": {"sleep_ms": 10}})["id"] for i in range(2)]
        for jid in failed:
            api.wait_state(jid, "failed", 30)
        for jid in done:
            api.wait_state(jid, "completed", 30)

        # ---- the view token: reads, never changes
        for path in ("/v1/jobs", "/v1/jobs/" + done[0], "/v1/jobs/%s/events" % done[0],
                     "/v1/workers", "/v1/queue", "/v1/queue/history"):
            st, body = http_json("GET", url + path, token=VIEW)
            assert st == 200, (path, st, body)
        for method, path, body in (("POST", "/v1/jobs", {"source": "file:///x.mp4"}),
                                   ("DELETE", "/v1/jobs/" + done[0], None),
                                   ("POST", "/v1/jobs/%s/retry" % failed[0], {}),
                                   ("POST", "/v1/queue/retry", {"state": "failed"}),
                                   ("POST", "/v1/queue/clear", {"state": "completed"}),
                                   ("POST", "/v1/workers/w1/drain", None),
                                   ("PUT", "/v1/no-such-thing", None)):
            st, ans = http_json(method, url + path, body, token=VIEW)
            assert st == 403 and ans["error"]["code"] == "forbidden", (method, path, st, ans)
        st, ans = http_json("GET", url + "/v1/queue/history", token="not-a-token")
        assert st == 401, (st, ans)
        assert api.job(failed[0])["state"] == "failed"   # nothing changed

        # ---- bulk retry in batches, while w1 is drained (so nothing fails
        # again between the calls); then the permanent failures fail again
        st, ans = http_json("POST", url + "/v1/workers/w1/drain", token=TOKEN)
        assert st == 200 and ans["drain_requested"] and ans["registered"], (st, ans)
        st, ans = http_json("POST", url + "/v1/queue/retry", {"state": "failed", "limit": 2},
                            token=TOKEN)
        assert st == 200 and ans == {"action": "retry", "state": "failed", "done": 2,
                                     "remaining": 1}, (st, ans)
        st, ans = http_json("POST", url + "/v1/queue/retry", {"state": "failed"}, token=TOKEN)
        assert st == 200 and ans["done"] == 1 and ans["remaining"] == 0, (st, ans)
        assert [api.job(j)["state"] for j in failed] == ["queued"] * 3
        st, ans = http_json("POST", url + "/v1/workers/w1/resume", token=TOKEN)
        assert st == 200 and ans["drain_requested"] is False, (st, ans)
        for jid in failed:
            wait_until(lambda: any(e["type"] == "job.queued" and e["data"].get("redrive")
                                   for e in api.events(jid)), 10, "redrive event of " + jid)
            api.wait_state(jid, "failed", 30)
        for body, field in (({"state": "completed"}, "state"), ({"state": "running"}, "state"),
                            ({"state": "failed", "limit": 0}, "limit"),
                            ({"state": "failed", "limit": "9"}, "limit"),
                            ({"state": "failed", "all": True}, "(body)"), ([], "(body)")):
            st, ans = http_json("POST", url + "/v1/queue/retry", body, token=TOKEN)
            assert st == 400 and ans["error"].get("field") == field, (body, st, ans)
        st, ans = http_json("POST", url + "/v1/queue/clear", "not json", token=TOKEN)
        assert st == 400, (st, ans)
        st, ans = http_json("GET", url + "/v1/queue/retry", token=TOKEN)
        assert st == 405, (st, ans)

        # ---- search: id prefix, metadata, source; never the webhook secret
        tagged = api.submit({"source": "file:///console/Trailer.mp4", "metadata": {
            "customer": "Acme-42", "sleep_ms": 10},
            "webhook": {"url": "https://hooks.example.com/x", "secret": "s3cret-Needle-99"}})["id"]
        api.wait_state(tagged, "completed", 30)

        def search(q, state=None):
            st, ans = http_json("GET", url + "/v1/jobs?limit=10&q=" + q +
                                ("&state=" + state if state else ""), token=VIEW)
            assert st == 200, (q, st, ans)
            return sorted(j["id"] for j in ans["jobs"]), ans["total"]
        assert search("acme-42") == ([tagged], 1)
        assert search("TRAILER") == ([tagged], 1)
        assert search(failed[0][:12]) == ([failed[0]], 1)
        assert search("console", "failed") == (sorted(failed), 3)
        assert search("needle-99") == ([], 0)   # the secret is not searched
        st, ans = http_json("GET", url + "/v1/jobs?q=" + "x" * 201, token=TOKEN)
        assert st == 400 and ans["error"]["field"] == "q", (st, ans)
        done.append(tagged)

        # ---- bulk clear: completed jobs are forgotten
        st, ans = http_json("POST", url + "/v1/queue/clear", {"state": "completed"}, token=TOKEN)
        assert st == 200 and ans["done"] == 3 and ans["remaining"] == 0, (st, ans)
        for jid in done:
            st, _ = http_json("GET", url + "/v1/jobs/" + jid, token=TOKEN)
            assert st == 404, (jid, st)

        # ---- drain through the API: the running job finishes, nothing new
        # is claimed while drained, resume claims at once
        st, ans = http_json("POST", url + "/v1/workers/nobody/drain", token=TOKEN)
        assert st == 404, (st, ans)
        run = api.submit({"source": "file:///console/run.mp4", "metadata": {"sleep_ms": 1500, "speed": 2.0}})["id"]
        api.wait_state(run, "running", 30)
        job = wait_until(lambda: (lambda j: j if j.get("eta_seconds") is not None else None)(
            api.job(run)), 10, "eta_seconds on the running job")
        assert 0 <= job["eta_seconds"] < 60, job

        def listed_speed():
            st, lst = http_json("GET", url + "/v1/jobs?state=running", token=VIEW)
            return [j for j in lst["jobs"] if j["id"] == run and j.get("speed") == 2.0]
        wait_until(listed_speed, 5, "the list shows the running job's speed")
        st, ans = http_json("POST", url + "/v1/workers/w1/drain", token=TOKEN)
        assert st == 200 and ans["drain_requested"] and ans["registered"], (st, ans)
        w = [x for x in api.workers() if x["id"] == "w1"][0]
        assert w["drain_requested"] is True and w["drain_requested_at"], w
        wait_ = api.submit({"source": "file:///console/wait.mp4", "metadata": {"sleep_ms": 10}})["id"]
        api.wait_state(run, "completed", 30)
        time.sleep(1.5)   # an absence: several 200 ms polls and heartbeats of w1
        assert api.job(wait_)["state"] == "queued", api.job(wait_)
        t0 = time.monotonic()
        st, ans = http_json("POST", url + "/v1/workers/w1/resume", token=TOKEN)
        assert st == 200 and ans["drain_requested"] is False, (st, ans)
        api.wait_state(wait_, "completed", 10)
        print("claimed %.0f ms after resume" % ((time.monotonic() - t0) * 1000))
        w = [x for x in api.workers() if x["id"] == "w1"][0]
        assert w["drain_requested"] is False and w["drain_requested_at"] is None, w

        # ---- history: 1 s samples, completions counted per interval
        def hist():
            st, ans = http_json("GET", url + "/v1/queue/history", token=VIEW)
            assert st == 200, (st, ans)
            s = ans["samples"]
            return ans if len(s) >= 3 and sum(x["completed"] for x in s) >= 5 else None
        ans = wait_until(hist, 15, "history samples")
        assert ans["interval_seconds"] == 1 and ans["capacity"] >= 60, ans
        s = ans["samples"]
        assert s[0]["completed"] == 0 and sum(x["enqueued"] for x in s) >= 2, s
        print("history: %d samples, %d completed" % (len(s), sum(x["completed"] for x in s)))

        # ---- the same in the dashboard, in Debian's chromium
        require_browser()
        run_browser_test(h, "console.test.mjs",
                         browser_env(h, url, SS_TOKEN=TOKEN, SS_VIEW_TOKEN=VIEW), 180)
        assert_screenshots(h, "console.png")


if __name__ == "__main__":
    main(test_ops_console)
