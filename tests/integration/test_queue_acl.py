"""Least privilege: Redis has the ACL users of deploy/redis-acl.conf and the
daemons log in as them (redis://user:password@...). The queue's paths run
under them: submit, claim, progress, finish, failure and retry, dead
letter, API retry, cancel of a running job, a drain release, a SIGKILLed
worker's job reaped and run again, list/events/workers/queue/metrics, a
real encode. A worker given the coordinator's user is refused on its first
subscription and stops with a message that says what is wrong; a wrong
password is refused the same way. The whole suite runs under the same
users with SS_REDIS_ACL=1 in the environment (docs/OPERATIONS.md)."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import (ACL_PASSWORDS, Api, Harness, RedisClient, gen_clip,  # noqa: E402
                         http_json, main, wait_until)

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100",
         "STREAMSCALE_RETRY_CAP_MS": "200", "STREAMSCALE_MAX_ATTEMPTS": "2"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "3", "STREAMSCALE_HEARTBEAT_MS": "300",
          "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100",
          "STREAMSCALE_RETRY_CAP_MS": "200", "STREAMSCALE_SLOTS": "4"}


def refused_worker(h, name, url, text):
    p = h.queue_worker(name, 0, extra=dict(WORKER, STREAMSCALE_REDIS=url), wait_ready=False)
    h.stopped.add(name)   # it is meant to stop
    wait_until(lambda: p.poll() is not None, 30, "worker %s to stop" % name)
    log = h.log_text(name)
    assert p.returncode == 1, (p.returncode, log[-2000:])
    assert text in log and "stopping" in log, log[-2000:]
    return log


def test_queue_acl():
    with Harness("queue-acl") as h:
        rport = h.redis(acl=True)
        admin = RedisClient(rport)
        assert sorted(admin("ACL", "USERS")) == ["default", "ss-coordinator", "ss-worker"]
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        # a real encode first, alone (a media worker would take no-op jobs too)
        clip = gen_clip(h.path("clip.mp4"), seconds=1, size="160x120", rate=12)
        h.worker("enc", rport, extra=dict(WORKER, STREAMSCALE_SLOTS="1"))
        enc = api.submit({"source": "file://" + clip, "thumbnails": False})
        assert api.wait_state(enc["id"], ("completed", "failed", "dead"), 120)["state"] == \
            "completed", api.job(enc["id"])
        h.stop("enc")
        h.queue_worker("qa", rport, extra=dict(WORKER, STREAMSCALE_DRAIN_TIMEOUT="1"))

        ok = api.submit({"source": "file:///acl/ok.mp4", "metadata": {"sleep_ms": 50},
                         "priority": "high"})
        flaky = api.submit({"source": "file:///acl/flaky.mp4",
                            "metadata": {"fail": "transient"}})
        perm = api.submit({"source": "file:///acl/perm.mp4", "metadata": {"fail": "permanent"}})
        assert api.wait_state(ok["id"], "completed", 60)
        assert api.wait_state(flaky["id"], "dead", 60)["attempts"] == 2
        assert api.wait_state(perm["id"], "failed", 60)
        st, body = api.retry(flaky["id"])
        assert st == 200, (st, body)
        api.wait_state(flaky["id"], "dead", 60)

        # cancel a running job
        slow = api.submit({"source": "file:///acl/slow.mp4", "metadata": {"sleep_ms": 20000}})
        api.wait_state(slow["id"], "running", 30)
        st, _ = api.cancel(slow["id"])
        assert st in (200, 202), st
        api.wait_state(slow["id"], "cancelled", 30)

        # drain: a running job goes back to the queue, another worker runs it
        held = api.submit({"source": "file:///acl/held.mp4", "metadata": {"sleep_ms": 4000}})
        api.wait_state(held["id"], "running", 30)
        h.send_signal("qa", signal.SIGTERM)   # drain_timeout 1 s, then release
        wait_until(lambda: api.job(held["id"])["state"] == "queued", 30, "the release")

        # a SIGKILLed worker's job is reaped (lease) and run by another
        h.queue_worker("qb", rport, extra=WORKER)
        api.wait_state(held["id"], "running", 30)
        h.stop("qb", signal.SIGKILL)
        h.queue_worker("qc", rport, extra=WORKER)
        st, _ = http_json("POST", url + "/v1/jobs", {"source": "file:///acl/after.mp4"},
                          token=TOKEN)
        assert st == 201
        j = api.wait_state(held["id"], "completed", 90)
        assert j["result"]["worker"] == "qc", j

        # read paths
        for path in ("/v1/jobs?limit=5", "/v1/jobs/%s/events" % ok["id"], "/v1/workers",
                     "/v1/queue", "/healthz"):
            st, body = http_json("GET", url + path, token=TOKEN)
            assert st == 200, (path, st, body)
        st, text = http_json("GET", url + "/metrics", token=TOKEN, raw=True)
        assert st == 200 and b"streamscale_redis_up 1" in text, st

        # nothing logged a permission error
        for name in ("coordinator", "qa", "qb", "qc", "enc"):
            assert "NOPERM" not in h.log_text(name), (name, h.log_text(name)[-2000:])

        # the coordinator's user cannot serve a worker; a wrong password stops it too
        coord_url = "redis://ss-coordinator:%s@127.0.0.1:%d/0" % (ACL_PASSWORDS["ss-coordinator"],
                                                                   rport)
        log = refused_worker(h, "wrong-user", coord_url, "NOPERM")
        assert "redis refused user 'ss-coordinator'" in log, log[-2000:]
        assert "deploy/redis-acl.conf" in log, log[-2000:]
        refused_worker(h, "wrong-pass", "redis://ss-worker:nope@127.0.0.1:%d/0" % rport,
                       "WRONGPASS")
        # and the worker's user cannot submit (503, the refusal in the log)
        bad = h.coordinator("coord-as-worker", redis_port=rport, token=TOKEN,
                            extra={"STREAMSCALE_REDIS": h.redis_url(rport, "ss-worker")})
        st, body = http_json("POST", bad + "/v1/jobs", {"source": "file:///acl/no.mp4"}, token=TOKEN)
        assert st == 503, (st, body)
        assert "can't access" in h.log_text("coord-as-worker"), h.log_text("coord-as-worker")
        admin.close()


if __name__ == "__main__":
    main(test_queue_acl)
