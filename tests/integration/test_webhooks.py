"""Webhook delivery end to end: real redis, the real coordinator (its
dispatcher), the real worker daemon with the no-op executor, and real HTTP
receiver processes (lib/receiver.py) that verify every signature with
their own HMAC code.

  1. a job's events arrive signed, complete and in order, exactly once,
     with the envelope fields and the job's metadata; the job's own secret,
     the config's default webhook and secret, and an unsigned webhook;
  2. a receiver that answers 500 to its first requests still gets every
     event, in order; so do six jobs at once with two coordinators sharing
     the deliveries (each job's events in order, none twice);
  3. a receiver that is down gets every event once it is back, with the
     coordinator restarted in between.
Every event received is also checked against proto/events.schema.json and
its headers against openapi's webhooks.jobEvent (by lib/receiver.py, as in
every test).
"""
import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import Api, Harness, RedisClient, main, wait_until  # noqa: E402
from lib.receiver import Receiver  # noqa: E402

TOKEN = "test-token"
HOOKS = {"STREAMSCALE_ALLOW_PRIVATE_NETWORKS": "true", "STREAMSCALE_WEBHOOK_RETRY_BASE_MS": "100",
         "STREAMSCALE_WEBHOOK_RETRY_CAP_MS": "400", "STREAMSCALE_WEBHOOK_POLL_MS": "50",
         "STREAMSCALE_WEBHOOK_TIMEOUT_MS": "3000"}
COORD = dict(HOOKS, STREAMSCALE_REAP_INTERVAL_MS="200", STREAMSCALE_RETRY_BASE_MS="100",
             STREAMSCALE_RETRY_CAP_MS="400")
WORKER = {"STREAMSCALE_LEASE_SECONDS": "5", "STREAMSCALE_HEARTBEAT_MS": "200",
          "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_PROGRESS_EVENT_SECONDS": "1"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def all_delivered(api, rcv, jid, unique=True):
    """Wait until the job is final and the receiver has every event; return
    the receiver's events (deduplicated by id when unique)."""
    job = api.wait_state(jid, ("completed", "failed", "dead", "cancelled"), 120)
    n = job["events_seq"]
    wait_until(lambda: len(rcv.unique()) >= n and api.job(jid)["webhook"]["pending"] == 0, 60,
               "all %d events of %s at %s" % (n, jid, rcv.name), interval=0.05)
    return api.job(jid), (rcv.unique() if unique else rcv.accepted())


def check_order(job, events):
    """Sequence numbers 1..N in order; queued first, then started, progress,
    completed last."""
    n = job["events_seq"]
    assert [e["seq"] for e in events] == list(range(1, n + 1)), [(e["seq"], e["type"]) for e in events]
    types = [e["type"] for e in events]
    assert types[0] == "job.queued" and types[1] == "job.started", types
    assert types[-1] == "job.completed", types
    assert set(types[2:-1]) <= {"job.progress"}, types


def check_envelopes(job, events, api_events, meta):
    for e, a in zip(events, api_events):
        assert e == a, ("webhook body differs from GET /events", e, a)
        assert e["id"] == "evt_%s_%d" % (job["id"], e["seq"]), e
        assert e["job_id"] == job["id"], e
        assert ISO.match(e["created_at"]), e
        assert e["metadata"] == meta, e
        assert isinstance(e["data"], dict), e
    by = {}
    for e in events:
        by.setdefault(e["type"], []).append(e["data"])
    assert by["job.queued"][0]["source"] == job["source"], by
    st = by["job.started"][0]
    assert st["worker"] == "hw1" and st["attempt"] == 1, st
    assert len(by.get("job.progress", [])) >= 1, by
    for p in by["job.progress"]:
        assert 0 <= p["percent"] <= 100 and p["stage"] == "encoding", p
    pct = [p["percent"] for p in by["job.progress"]]
    assert pct == sorted(pct), pct
    assert "output" in by["job.completed"][0], by["job.completed"]


def test_webhooks():
    with Harness("webhooks") as h:
        rport = h.redis()
        dflt = Receiver(h, "rcv-default", secret="whsec-config-default").start()
        coord_env = dict(COORD, STREAMSCALE_WEBHOOK_URL=dflt.url,
                         STREAMSCALE_WEBHOOK_SECRET="whsec-config-default")
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=coord_env)
        port = int(url.rsplit(":", 1)[1])
        api = Api(url, TOKEN)
        r = RedisClient(rport)
        h.queue_worker("hw1", rport, extra=WORKER)

        # ---- 1. signed, complete, in order, once; metadata echoed
        a = Receiver(h, "rcv-a", secret="whsec-job-secret-1").start()
        meta = {"sleep_ms": 3500, "customer": "acme", "tags": ["x", 1]}
        # a presigned source with a password: the worker gets it whole, no
        # event, webhook or API answer shows the secrets (issue 18)
        src = ("https://user:PASSWORD1@media.example.com/one.mp4?X-Amz-Credential=AKIDSECRET2"
               "&X-Amz-Signature=SIGSECRET3&token=TOKSECRET4&v=1")
        j = api.submit({"source": src, "metadata": meta,
                        "webhook": {"url": a.url, "secret": "whsec-job-secret-1"}})
        job, events = all_delivered(api, a, j["id"])
        reqs = a.requests()
        shown = json.dumps([reqs, job, events])
        for word in ("PASSWORD1", "AKIDSECRET2", "SIGSECRET3", "TOKSECRET4"):
            assert word not in shown, word
        assert events[0]["data"]["source"] == ("https://redacted@media.example.com/one.mp4?"
                                               "X-Amz-Credential=redacted&X-Amz-Signature=redacted"
                                               "&token=redacted&v=1"), events[0]
        assert "SIGSECRET3" in r("HGET", "{ss}:job:" + j["id"], "spec")   # the worker's copy
        assert all(q["sig"] == "ok" and q["status"] == 200 for q in reqs), reqs
        assert len(reqs) == job["events_seq"], "duplicates or extra requests: %s" % reqs
        check_order(job, events)
        check_envelopes(job, events, api.events(j["id"]), meta)
        for q in reqs:
            hd, e = q["headers"], q["event"]
            assert hd["Streamscale-Event-Id"] == e["id"], q
            assert hd["Streamscale-Event-Type"] == e["type"], q
            assert hd["Streamscale-Delivery-Attempt"] == "1", q
            assert hd["Content-Type"] == "application/json", q
            assert hd["User-Agent"].startswith("streamscale/"), q
        wh = job["webhook"]
        assert wh["delivered_seq"] == job["events_seq"] and wh["pending"] == 0, wh
        assert wh["undeliverable"] == 0 and wh["undeliverable_events"] == [], wh
        assert wh["last_error"] is None and wh["last_delivered_at"], wh
        # nothing left scheduled for this job
        assert r("ZSCORE", "{ss}:hooks:due", j["id"]) is None

        # ---- the config's default webhook signs with the config's secret;
        # a job webhook without a secret is sent unsigned (t= only, no v1)
        d = api.submit({"source": "file:///hooks/default.mp4", "metadata": {"sleep_ms": 50}})
        job_d, ev_d = all_delivered(api, dflt, d["id"])
        assert all(q["sig"] == "ok" for q in dflt.requests()), dflt.requests()
        check_order(job_d, ev_d)
        u = Receiver(h, "rcv-unsigned").start()
        k = api.submit({"source": "file:///hooks/unsigned.mp4", "metadata": {"sleep_ms": 50},
                        "webhook": {"url": u.url}})
        job_u, ev_u = all_delivered(api, u, k["id"])
        assert all(q["sig"] == "unsigned" for q in u.requests()), u.requests()
        check_order(job_u, ev_u)
        assert [q["event"]["job_id"] for q in dflt.requests()].count(k["id"]) == 0

        # ---- 2. 500 for the first 6 requests, then 200: every event, in order
        b = Receiver(h, "rcv-b", secret="whsec-job-secret-2", fail_first=6).start()
        j2 = api.submit({"source": "file:///hooks/two.mp4", "metadata": {"sleep_ms": 1500},
                         "webhook": {"url": b.url, "secret": "whsec-job-secret-2"}})
        job2, ev2 = all_delivered(api, b, j2["id"])
        check_order(job2, ev2)
        reqs = b.requests()
        assert [q["status"] for q in reqs[:6]] == [500] * 6, reqs
        assert all(q["sig"] == "ok" for q in reqs), reqs
        # the first event was tried 7 times, each with its attempt number
        firsts = [q for q in reqs if q["event"]["seq"] == 1]
        assert [q["headers"]["Streamscale-Delivery-Attempt"] for q in firsts] == \
            [str(i) for i in range(1, 8)], firsts
        # accepted in sequence order, never one event twice
        assert [e["seq"] for e in b.accepted()] == list(range(1, job2["events_seq"] + 1))
        assert job2["webhook"]["undeliverable"] == 0, job2["webhook"]
        assert "HTTP 500" in job2["webhook"]["last_error"], job2["webhook"]
        stats = r.hgetall("{ss}:stats")
        assert int(stats.get("hook_retried", 0)) >= 6, stats
        assert int(stats.get("hook_delivered", 0)) >= job["events_seq"] + job2["events_seq"], stats

        # ---- two coordinators share the delivery work: six jobs at once to one
        # receiver that fails its first 4 requests; each job's events arrive in
        # order and none twice (the delivery lease: one sender per job)
        url2 = h.coordinator("coordinator2", redis_port=rport, token=TOKEN, extra=coord_env)
        m = Receiver(h, "rcv-many", secret="whsec-job-secret-m", fail_first=4).start()
        many = [api.submit({"source": "file:///hooks/many%d.mp4" % i, "metadata": {"sleep_ms": 100},
                            "webhook": {"url": m.url, "secret": "whsec-job-secret-m"}})["id"]
                for i in range(6)]
        api2 = Api(url2, TOKEN)
        for jid in many:
            api2.wait_state(jid, "completed", 120)
        wait_until(lambda: all(api.job(x)["webhook"]["pending"] == 0 for x in many), 60,
                   "every event of six jobs")
        got = {}
        for e in m.accepted():
            got.setdefault(e["job_id"], []).append(e)
        for jid in many:
            job_m = api.job(jid)
            assert [e["seq"] for e in got[jid]] == list(range(1, job_m["events_seq"] + 1)), got[jid]
            check_order(job_m, got[jid])
        assert all(q["sig"] == "ok" for q in m.requests())
        h.stop("coordinator2")
        assert "webhook" in h.log_text("coordinator2")

        # ---- 3. receiver down; coordinator restarted meanwhile; receiver up
        c = Receiver(h, "rcv-c", secret="whsec-job-secret-3")   # not started: down
        j3 = api.submit({"source": "file:///hooks/three.mp4", "metadata": {"sleep_ms": 300},
                         "webhook": {"url": c.url, "secret": "whsec-job-secret-3"}})
        api.wait_state(j3["id"], "completed", 120)
        wait_until(lambda: api.job(j3["id"])["webhook"]["attempts"] >= 3, 30,
                   "failed attempts while the receiver is down")
        w3 = api.job(j3["id"])["webhook"]
        assert w3["delivered_seq"] == 0 and w3["pending"] == api.job(j3["id"])["events_seq"], w3
        assert w3["last_error"] and "attempt" in w3["last_error"], w3
        assert w3["next_attempt_at"] and ISO.match(w3["next_attempt_at"]), w3
        h.stop("coordinator", signal.SIGTERM)
        before = w3["attempts"]
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=coord_env, port=port)
        # the new coordinator keeps trying the same event
        wait_until(lambda: api.job(j3["id"])["webhook"]["attempts"] > before, 30,
                   "the restarted coordinator to retry")
        assert api.job(j3["id"])["webhook"]["delivered_seq"] == 0
        c.start()
        job3, ev3 = all_delivered(api, c, j3["id"])
        check_order(job3, ev3)
        assert [e["seq"] for e in c.accepted()] == list(range(1, job3["events_seq"] + 1))
        assert all(q["sig"] == "ok" for q in c.requests())
        r.close()


if __name__ == "__main__":
    main(test_webhooks)
