"""Queue operations with the real worker daemon (no-op executor): cancel of
queued and running jobs, retries and the dead-letter list, permanent
failures, priority order and aging, graceful drain, the worker registry."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import Api, Harness, RedisClient, http_json, main, wait_until  # noqa: E402

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100",
         "STREAMSCALE_RETRY_CAP_MS": "400"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "5", "STREAMSCALE_HEARTBEAT_MS": "200",
          "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_REGISTRY_TTL": "3",
          "STREAMSCALE_RETRY_BASE_MS": "100", "STREAMSCALE_RETRY_CAP_MS": "400"}


def order(path):
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def test_queue_ops():
    with Harness("queue-ops") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        r = RedisClient(rport)
        log = h.path("order.log")

        # ---- priorities: queued before any worker runs, taken high first,
        # FIFO within a priority
        names = ["low1", "normal1", "high1", "low2", "high2", "normal2"]
        ids = {}
        for n in names:
            prio = n.rstrip("12")
            ids[n] = api.submit({"source": "file:///prio/%s.mp4" % n, "priority": prio,
                                 "metadata": {"sleep_ms": 20}})["id"]
        st, q = 200, api.job(ids["low1"])
        assert q["priority"] == "low"
        h.queue_worker("w1", rport, extra=dict(WORKER, SS_QUEUE_LOG=log))
        for n in names:
            api.wait_state(ids[n], "completed", 30)
        got = order(log)
        want = [ids[n] for n in ["high1", "high2", "normal1", "normal2", "low1", "low2"]]
        assert got == want, (got, want)

        # ---- cancel a running job: stops within 2 s, recorded as cancelled
        j = api.submit({"source": "file:///cancel/run.mp4", "metadata": {"sleep_ms": 60000}})
        api.wait_state(j["id"], "running", 30)
        t0 = time.monotonic()
        st, body = api.cancel(j["id"])
        # 202 while the worker stops; 200 if it already confirmed when the
        # coordinator read the job back (the status matches the body)
        assert (st, body["state"]) in ((202, "cancelling"), (200, "cancelled")), (st, body)
        c = api.wait_state(j["id"], "cancelled", 10)
        assert time.monotonic() - t0 < 2.0, "cancel took %.2fs" % (time.monotonic() - t0)
        assert c["finished_at"], c
        evs = [e["type"] for e in api.events(j["id"])]
        assert evs[-1] == "job.cancelled" and "job.completed" not in evs, evs
        # the worker is free again and its scratch folder is gone
        k = api.submit({"source": "file:///cancel/after.mp4", "metadata": {"sleep_ms": 10}})
        api.wait_state(k["id"], "completed", 30)
        scratch = h.path("w1-scratch")
        assert os.listdir(scratch) == [], os.listdir(scratch)

        # ---- transient failures are retried with backoff, then dead-lettered
        d = api.submit({"source": "file:///fail/t.mp4", "max_attempts": 3,
                        "metadata": {"fail": "transient"}})
        dj = api.wait_state(d["id"], "dead", 60)
        assert dj["attempts"] == 3, dj
        assert dj["error"]["code"] == "network" and "transient" in dj["error"]["message"], dj
        assert d["id"] in (r("LRANGE", "{ss}:dead", 0, -1) or [])
        evs = api.events(d["id"])
        fails = [e["data"] for e in evs if e["type"] == "job.failed"]
        assert [f["will_retry"] for f in fails] == [True, True, False], fails
        assert fails[-1]["dead"] is True
        assert [e["type"] for e in evs].count("job.retrying") == 2
        # re-drive from the API: fresh attempts
        st, body = api.retry(d["id"])
        # the body is read after the re-drive: the idle worker may have claimed it already
        assert st == 200 and body["state"] in ("queued", "running", "retrying"), body
        assert body["state"] != "queued" or body["attempts"] == 0, body
        dj = api.wait_state(d["id"], "dead", 60)
        assert dj["attempts"] == 3, dj   # fresh attempts: three more, not one
        assert d["id"] in (r("LRANGE", "{ss}:dead", 0, -1) or [])
        redrives = [e["data"] for e in api.events(d["id"])
                    if e["type"] == "job.queued" and e["data"].get("redrive")]
        assert redrives == [{"redrive": True, "previous_state": "dead"}], redrives

        # ---- a permanent failure is not retried
        p = api.submit({"source": "file:///fail/p.mp4", "metadata": {"fail": "permanent"}})
        pj = api.wait_state(p["id"], "failed", 30)
        assert pj["attempts"] == 1 and pj["error"]["code"] == "media", pj
        assert "job.retrying" not in [e["type"] for e in api.events(p["id"])]

        # ---- cancel while waiting for a retry
        q = api.submit({"source": "file:///fail/q.mp4", "max_attempts": 5,
                        "metadata": {"fail": "transient", "sleep_ms": 10}})
        api.wait_state(q["id"], "retrying", 30)
        st, body = api.cancel(q["id"])
        assert st == 200 and body["state"] == "cancelled", (st, body)

        # ---- registry: the worker is listed with its facts
        ws = api.workers()
        assert [w["id"] for w in ws] == ["w1"], ws
        w = ws[0]
        for k in ("host", "cores", "slots", "busy", "cpu_load", "version", "jobs", "last_heartbeat"):
            assert k in w, (k, w)

        # ---- aging: a low job that waited long enough goes before a new high one
        h.stop("w1")
        os.unlink(log)
        low = api.submit({"source": "file:///age/low.mp4", "priority": "low",
                          "metadata": {"sleep_ms": 5}})["id"]
        time.sleep(3.2)   # the rule under test is about waiting time itself
        high = api.submit({"source": "file:///age/high.mp4", "priority": "high",
                           "metadata": {"sleep_ms": 5}})["id"]
        h.queue_worker("w2", rport, extra=dict(WORKER, SS_QUEUE_LOG=log,
                                               STREAMSCALE_AGING_SECONDS="1"))
        api.wait_state(high, "completed", 30)
        api.wait_state(low, "completed", 30)
        assert order(log) == [low, high], order(log)

        # ---- drain: SIGTERM lets the running job finish, then exit 0
        j = api.submit({"source": "file:///drain/finish.mp4", "metadata": {"sleep_ms": 1500}})
        api.wait_state(j["id"], "running", 30)
        waiting = api.submit({"source": "file:///drain/waiting.mp4", "metadata": {"sleep_ms": 10}})
        h.send_signal("w2", signal.SIGTERM)
        rc = h.procs["w2"].wait(timeout=30)
        assert rc == 0, rc
        assert api.job(j["id"])["state"] == "completed"
        assert api.job(waiting["id"])["state"] == "queued", "a draining worker claimed new work"
        # it left the registry on the way out
        assert "w2" not in [w["id"] for w in api.workers()]

        # ---- drain timeout: the running job is released, not failed
        h.queue_worker("w3", rport, extra=dict(WORKER, STREAMSCALE_DRAIN_TIMEOUT="1"))
        api.wait_state(waiting["id"], "completed", 30)
        long_job = api.submit({"source": "file:///drain/long.mp4", "metadata": {"sleep_ms": 60000}})
        api.wait_state(long_job["id"], "running", 30)
        h.send_signal("w3", signal.SIGTERM)
        assert h.procs["w3"].wait(timeout=30) == 0
        lj = api.job(long_job["id"])
        assert lj["state"] == "queued" and lj["attempts"] == 0, lj
        assert "job.retrying" in [e["type"] for e in api.events(long_job["id"])]

        st, _ = api.cancel(long_job["id"])
        assert st == 200

        # ---- SIGHUP reloads the config file: slots and threshold change live
        cfg = h.path("w4.conf")
        with open(cfg, "w") as f:
            f.write("slots = 1\ncpu_threshold = 100\n")
        h.queue_worker("w4", rport, extra=WORKER, args=["-c", cfg])
        wait_until(lambda: [w["slots"] for w in api.workers() if w["id"] == "w4"] == [1], 10,
                   "w4 registered with 1 slot")
        with open(cfg, "w") as f:
            f.write("slots = 3\ncpu_threshold = 100\n")
        h.send_signal("w4", signal.SIGHUP)
        wait_until(lambda: [w["slots"] for w in api.workers() if w["id"] == "w4"] == [3], 10,
                   "w4 to report 3 slots after SIGHUP")
        both = [api.submit({"source": "file:///hup/%d.mp4" % i, "metadata": {"sleep_ms": 3000}})["id"]
                for i in range(3)]
        wait_until(lambda: all(api.job(i)["state"] == "running" for i in both), 20,
                   "three jobs running at once on the reloaded worker")
        # a bad edit is refused and the old config kept
        with open(cfg, "w") as f:
            f.write("slots = lots\n")
        h.send_signal("w4", signal.SIGHUP)
        wait_until(lambda: "config not reloaded" in h.log_text("w4"), 10, "the refusal")
        assert h.procs["w4"].poll() is None
        for i in both:
            api.cancel(i)

        # ---- a worker that vanishes leaves the registry within its TTL
        wait_until(lambda: "w4" in [w["id"] for w in api.workers()], 10, "w4 registered")
        h.stop("w4", signal.SIGKILL)
        t0 = time.monotonic()
        wait_until(lambda: "w4" not in [w["id"] for w in api.workers()], 10, "w4 gone")
        assert time.monotonic() - t0 <= 4.5

    # ---- retention: ended jobs leave Redis after retention_days
    with Harness("queue-retention") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN,
                            extra=dict(COORD, STREAMSCALE_RETENTION_DAYS="0.00002",
                                       STREAMSCALE_REAP_INTERVAL_MS="50"))
        api = Api(url, TOKEN, harness=h)
        h.queue_worker("w5", rport, extra=WORKER)
        old = api.submit({"source": "file:///keep/old.mp4", "metadata": {"sleep_ms": 1}})
        api.wait_state(old["id"], "completed", 30)
        queued = api.submit({"source": "file:///keep/queued.mp4", "priority": "low",
                             "metadata": {"sleep_ms": 60000}})
        api.wait_state(queued["id"], "running", 30)
        r = RedisClient(rport)
        wait_until(lambda: r("EXISTS", "{ss}:job:" + old["id"]) == 0, 30, "the old job to expire")
        assert r("EXISTS", "{ss}:events:" + old["id"]) == 0
        assert r("ZSCORE", "{ss}:jobs", old["id"]) is None
        st, _ = http_json("GET", url + "/v1/jobs/" + old["id"], token=TOKEN)
        assert st == 404
        # a running job is never expired, whatever its age
        assert api.job(queued["id"])["state"] == "running"


if __name__ == "__main__":
    main(test_queue_ops)
