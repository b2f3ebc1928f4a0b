"""Prefetch (worker setting prefetch, docs/OPERATIONS.md): a worker whose
recent jobs were short claims a few jobs beyond its free slots. A
prefetched job is run once or given back, never lost or run twice:
released unstarted on SIGTERM, released when it waited too long behind a
longer job, and never started after its lease may have been lost (a
worker paused past its lease). Short jobs share one thread per core; one
queued behind jobs that turned out long still gets a thread."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import Api, Harness, RedisClient, completions, main, wait_until  # noqa: E402

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "3", "STREAMSCALE_HEARTBEAT_MS": "300",
          "STREAMSCALE_POLL_MS": "200"}


def ran_by(log, jid):
    return [w for j, w in completions(log) if j == jid]


def types(api, jid):
    return [e["type"] for e in api.events(jid)]


def warm_up(api, tag, n=18):
    """Short jobs in a row: what turns prefetch on (16 needed)."""
    jobs = [api.submit({"source": "file:///%s/%d.mp4" % (tag, i), "metadata": {"sleep_ms": 0}})
            for i in range(n)]
    for j in jobs:
        assert api.wait_state(j["id"], "completed", 30)["state"] == "completed"


def claimed_by(api, jid, worker):
    j = api.job(jid)
    return j["state"] == "running" and j.get("worker") == worker


def test_queue_prefetch():
    with Harness("queue-prefetch") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        log = h.path("completions.log")
        env = dict(WORKER, SS_QUEUE_LOG=log, STREAMSCALE_PREFETCH="2",
                   STREAMSCALE_PREFETCH_MAX_MS="5000")

        # ---- fast failures are not short jobs: 18 of them in a row leave
        # prefetch off (a job queued behind a running one stays queued)
        h.queue_worker("h", rport, extra=env)
        fails = [api.submit({"source": "file:///fail/%d.mp4" % i,
                             "metadata": {"fail": "permanent"}}) for i in range(18)]
        for j in fails:
            assert api.wait_state(j["id"], "failed", 30)["state"] == "failed"
        long = api.submit({"source": "file:///fail/long.mp4", "metadata": {"sleep_ms": 1000}})
        wait_until(lambda: claimed_by(api, long["id"], "h"), 30, "the long job running on h")
        p = api.submit({"source": "file:///fail/p.mp4", "metadata": {"sleep_ms": 0}})
        api.wait_state(p["id"], "completed", 30)
        done = [e["created_at"] for e in api.events(long["id"]) if e["type"] == "job.completed"]
        started = [e["created_at"] for e in api.events(p["id"]) if e["type"] == "job.started"]
        assert len(started) == 1 and started[0] >= done[0], \
            "prefetched after fast failures: %s before %s" % (started, done)
        h.stop("h")

        # ---- SIGTERM: running jobs finish, prefetched ones go back unstarted
        h.queue_worker("a", rport, extra=env)
        warm_up(api, "warm-a")
        long = api.submit({"source": "file:///drain/long.mp4", "metadata": {"sleep_ms": 2000}})
        wait_until(lambda: claimed_by(api, long["id"], "a"), 30, "the long job running on a")
        # its one slot is busy: the claim's prefetch part found nothing,
        # and that does not mark it idle (notify_work would wake it first)
        r = RedisClient(rport)
        assert r("ZSCORE", "{ss}:idle", "a") is None, "a busy worker marked idle"
        pre = [api.submit({"source": "file:///drain/p%d.mp4" % i, "metadata": {"sleep_ms": 10}})
               for i in range(2)]
        for p in pre:
            wait_until(lambda: claimed_by(api, p["id"], "a"), 30, "a prefetched job claimed by a")
        assert all(not ran_by(log, p["id"]) for p in pre), completions(log)
        assert h.stop("a") == 0
        assert api.job(long["id"])["state"] == "completed"
        assert ran_by(log, long["id"]) == ["a"]
        for p in pre:
            j = api.job(p["id"])
            assert j["state"] == "queued" and j["attempts"] == 0, j
            assert not ran_by(log, p["id"]), completions(log)
            rel = [e["data"] for e in api.events(p["id"]) if e["type"] == "job.retrying"]
            assert len(rel) == 1 and "draining" in rel[0]["reason"], rel
        assert "prefetched, not started (draining)" in h.log_text("a")
        # another worker runs them, once, the attempt not counted twice
        h.queue_worker("b", rport, extra=dict(WORKER, SS_QUEUE_LOG=log))
        for p in pre:
            j = api.wait_state(p["id"], "completed", 30)
            assert j["attempts"] == 1 and j["result"]["worker"] == "b", j
            assert ran_by(log, p["id"]) == ["b"]
            assert types(api, p["id"]).count("job.completed") == 1
        h.stop("b")

        # ---- a worker paused past its leases: the prefetched job is taken
        # by another worker and never starts on the paused one
        h.queue_worker("c", rport, extra=env)
        warm_up(api, "warm-c")
        long = api.submit({"source": "file:///pause/long.mp4", "metadata": {"sleep_ms": 3000}})
        wait_until(lambda: claimed_by(api, long["id"], "c"), 30, "the long job running on c")
        p = api.submit({"source": "file:///pause/p.mp4", "metadata": {"sleep_ms": 10}})
        wait_until(lambda: claimed_by(api, p["id"], "c"), 30, "the job prefetched by c")
        h.send_signal("c", signal.SIGSTOP)
        h.queue_worker("d", rport, extra=dict(WORKER, SS_QUEUE_LOG=log))
        j = api.wait_state(p["id"], "completed", 60)
        assert j["result"]["worker"] == "d" and j["attempts"] == 2, j
        api.wait_state(long["id"], "completed", 60)
        h.send_signal("c", signal.SIGCONT)
        wait_until(lambda: any("report refused" in m or "dropping the job" in m
                               for m in h.job_messages("c", p["id"])), 30,
                   "c to give up the prefetched job")
        assert ran_by(log, p["id"]) == ["d"], completions(log)
        assert types(api, p["id"]).count("job.completed") == 1
        h.stop("c")
        h.stop("d")

        # ---- a prefetched job behind a longer one goes back after
        # 2 x prefetch_max_ms (at least 1 s) and runs when a slot frees
        h.queue_worker("e", rport, extra=dict(env, STREAMSCALE_PREFETCH_MAX_MS="1000"))
        warm_up(api, "warm-e")
        long = api.submit({"source": "file:///hold/long.mp4", "metadata": {"sleep_ms": 4000}})
        wait_until(lambda: claimed_by(api, long["id"], "e"), 30, "the long job running on e")
        p = api.submit({"source": "file:///hold/p.mp4", "metadata": {"sleep_ms": 10}})
        wait_until(lambda: claimed_by(api, p["id"], "e"), 30, "the job prefetched by e")
        wait_until(lambda: "not started in time" in h.log_text("e"), 30, "the held job released")
        j = api.wait_state(p["id"], "completed", 30)
        assert j["attempts"] == 1 and j["result"]["worker"] == "e", j
        assert ran_by(log, p["id"]) == ["e"]
        rel = [e["data"] for e in api.events(p["id"]) if e["type"] == "job.retrying"]
        assert len(rel) == 1 and "prefetched" in rel[0]["reason"], rel
        assert api.job(long["id"])["state"] == "completed"
        h.stop("e")

        # ---- short jobs run on at most one thread per core; a job queued
        # behind ones that turned out long gets a thread of its own after
        # 2 x prefetch_max_ms (4 slots on a 2-core box: 2 threads)
        h.queue_worker("f", rport, extra=dict(env, STREAMSCALE_SLOTS="4",
                                              STREAMSCALE_PREFETCH_MAX_MS="500"))
        warm_up(api, "warm-f")
        longs = [api.submit({"source": "file:///kick/long%d.mp4" % i, "metadata": {"sleep_ms": 4000}})
                 for i in range(2)]
        short = api.submit({"source": "file:///kick/short.mp4", "metadata": {"sleep_ms": 10}})
        j = api.wait_state(short["id"], "completed", 30)
        assert j["result"]["worker"] == "f" and j["attempts"] == 1, j
        assert [api.job(x["id"])["state"] for x in longs] == ["running", "running"]
        for x in longs:
            assert api.wait_state(x["id"], "completed", 30)["attempts"] == 1
        h.stop("f")

        # ---- idle threads beyond the slots (the pool grew while slots was
        # 3; SIGHUP lowered it to 1): a prefetched job still waits for the
        # running one instead of starting on an idle thread
        cfg = h.path("g.conf")
        with open(cfg, "w") as f:
            f.write("slots = 3\nprefetch = 2\nprefetch_max_ms = 5000\n")
        h.queue_worker("g", rport, extra=dict(WORKER, SS_QUEUE_LOG=log), args=["-c", cfg])
        three = [api.submit({"source": "file:///hup/w%d.mp4" % i, "metadata": {"sleep_ms": 600}})
                 for i in range(3)]
        wait_until(lambda: all(api.job(x["id"])["state"] != "queued" for x in three), 30,
                   "three jobs on three threads")
        for x in three:
            api.wait_state(x["id"], "completed", 30)
        warm_up(api, "warm-g")
        with open(cfg, "w") as f:
            f.write("slots = 1\nprefetch = 2\nprefetch_max_ms = 5000\n")
        h.send_signal("g", signal.SIGHUP)
        wait_until(lambda: "slots 1)" in h.log_text("g"), 20, "the reload")
        long = api.submit({"source": "file:///hup/long.mp4", "metadata": {"sleep_ms": 2000}})
        wait_until(lambda: claimed_by(api, long["id"], "g"), 30, "the long job running on g")
        p = api.submit({"source": "file:///hup/p.mp4", "metadata": {"sleep_ms": 10}})
        api.wait_state(p["id"], "completed", 30)
        order = [j for j, _ in completions(log)]
        assert long["id"] in order and order.index(long["id"]) < order.index(p["id"]), \
            "the prefetched job ran beside the slot's job"
        h.stop("g")

        # ---- a spec in Redis that is not JSON (the job thread parses it):
        # that attempt fails permanently with a clear error, and the job
        # queued behind it still runs on the same worker
        r = RedisClient(rport)
        bad = api.submit({"source": "file:///bad/spec.mp4", "metadata": {"sleep_ms": 0}})
        good = api.submit({"source": "file:///bad/good.mp4", "metadata": {"sleep_ms": 0}})
        r("HSET", "{ss}:job:" + bad["id"], "spec", "{not json")
        h.queue_worker("k", rport, extra=env)
        wait_until(lambda: r("HGET", "{ss}:job:" + bad["id"], "state") == "failed", 30,
                   "the job with a broken spec failed")
        err = r("HGET", "{ss}:job:" + bad["id"], "error")
        assert "job spec in Redis is not valid JSON" in err, err
        assert api.wait_state(good["id"], "completed", 30)["result"]["worker"] == "k"
        h.stop("k")


if __name__ == "__main__":
    main(test_queue_prefetch)
