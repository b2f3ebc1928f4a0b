"""Leases and fencing with real processes: a worker killed with SIGKILL loses
no job (requeued after its lease, done once by another worker, attempts 2),
and a worker paused past its lease (SIGSTOP) has its late writes refused."""
import hashlib
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import Api, Harness, RedisClient, SOURCE, completions, main, wait_until  # noqa: E402

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "3", "STREAMSCALE_HEARTBEAT_MS": "300",
          "STREAMSCALE_POLL_MS": "200"}


def types(api, jid):
    return [e["type"] for e in api.events(jid)]


def test_queue_leases():
    with Harness("queue-leases") as h:
        rport = h.redis(appendonly=True)
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        log = h.path("completions.log")
        env = dict(WORKER, SS_QUEUE_LOG=log)

        # ---- SIGKILL in the middle of a job
        h.queue_worker("a", rport, extra=env)
        job = api.submit({"source": "file:///kill/test.mp4", "metadata": {"sleep_ms": 2500}})
        jid = job["id"]
        j = api.wait_state(jid, "running", 30)
        assert j["worker"] == "a", j
        h.stop("a", signal.SIGKILL)
        h.queue_worker("b", rport, extra=env)
        j = api.wait_state(jid, ("completed", "failed", "dead"), 60)
        assert j["state"] == "completed", j
        assert j["attempts"] == 2, j
        assert j["result"]["worker"] == "b", j
        t = types(api, jid)
        assert t.count("job.completed") == 1, t
        assert t.count("job.started") == 2, t
        assert "job.retrying" in t, t
        failed = [e for e in api.events(jid) if e["type"] == "job.failed"]
        assert failed and failed[0]["data"]["error"]["code"] == "lease_expired", failed
        assert failed[0]["data"]["will_retry"] is True
        assert completions(log) == [[jid, "b"]], completions(log)

        # ---- SIGSTOP past the lease: the stale worker's writes are refused
        h.stop("b")
        os.unlink(log)
        h.queue_worker("c", rport, extra=env)
        job = api.submit({"source": "file:///stop/test.mp4", "metadata": {"sleep_ms": 4000}})
        jid = job["id"]
        j = api.wait_state(jid, "running", 30)
        assert j["worker"] == "c"
        h.send_signal("c", signal.SIGSTOP)
        # lease (3 s) expires, the reaper requeues, d takes it and finishes
        h.queue_worker("d", rport, extra=env)
        j = api.wait_state(jid, "completed", 60)
        assert j["result"]["worker"] == "d" and j["attempts"] == 2, j
        seq_before = len(api.events(jid))
        h.send_signal("c", signal.SIGCONT)
        # c wakes up, learns it lost the lease (heartbeat refused) or has its
        # report refused; either way nothing it writes lands
        wait_until(lambda: "lease lost" in h.log_text("c") or "report refused" in h.log_text("c"),
                   20, "worker c to notice it lost the lease")
        j = api.job(jid)
        assert j["state"] == "completed" and j["result"]["worker"] == "d", j
        assert len(api.events(jid)) == seq_before, api.events(jid)
        assert types(api, jid).count("job.completed") == 1
        # and c keeps working: it takes the next job normally
        h.stop("d")
        nxt = api.submit({"source": "file:///stop/next.mp4", "metadata": {"sleep_ms": 10}})
        j = api.wait_state(nxt["id"], "completed", 30)
        assert j["result"]["worker"] == "c", j

        # ---- Redis goes away while a job runs (shorter than the lease): the job
        # goes on, the worker reconnects with backoff and reports when Redis is back
        job = api.submit({"source": "file:///redis/down.mp4", "metadata": {"sleep_ms": 2500}})
        api.wait_state(job["id"], "running", 30)
        before = h.log_text("c").count("connect failed")
        h.stop("redis")
        wait_until(lambda: h.log_text("c").count("connect failed") >= before + 2, 20,
                   "the worker to retry its Redis connection")
        h.redis(port=rport, appendonly=True)
        j = api.wait_state(job["id"], ("completed", "failed", "dead"), 60)
        assert j["state"] == "completed" and j["attempts"] == 1, j
        assert j["result"]["worker"] == "c", j

        # ---- Redis answers the report with an error (READONLY while it is a
        # replica for a moment): the outcome is kept and reported again, the
        # job is not run twice
        r = RedisClient(rport)
        job = api.submit({"source": "file:///redis/readonly.mp4", "metadata": {"sleep_ms": 800}})
        api.wait_state(job["id"], "running", 30)
        r("REPLICAOF", "127.0.0.1", "1")       # a master that never answers: data is kept
        wait_until(lambda: "report not accepted yet" in h.log_text("c"), 20, "the refused report")
        r("REPLICAOF", "NO", "ONE")
        j = api.wait_state(job["id"], ("completed", "failed", "dead"), 60)
        assert j["state"] == "completed" and j["attempts"] == 1, j
        assert [e["type"] for e in api.events(job["id"])].count("job.started") == 1

        # ---- a long claim delay (over 1 s) must not stall the worker's loop
        h.stop("c")
        h.queue_worker("e", rport, extra=dict(env, STREAMSCALE_SLOTS="2",
                                              STREAMSCALE_CLAIM_DELAY_MS="3000"))
        first = api.submit({"source": "file:///delay/first.mp4", "metadata": {"sleep_ms": 5000}})
        api.wait_state(first["id"], "running", 30)
        second = api.submit({"source": "file:///delay/second.mp4", "metadata": {"sleep_ms": 10}})
        j = api.wait_state(first["id"], ("completed", "failed", "dead"), 60)
        assert j["state"] == "completed" and j["attempts"] == 1, j   # its lease kept being renewed
        assert api.wait_state(second["id"], "completed", 60)["attempts"] == 1

        # ---- a worker restarted under the same id after a crash ends its old
        # claims' leases at once instead of leaving them for lease_seconds
        h.stop("e")
        long_lease = dict(env, STREAMSCALE_LEASE_SECONDS="60")
        h.queue_worker("z", rport, extra=long_lease)
        job = api.submit({"source": "file:///orphan/crash.mp4", "metadata": {"sleep_ms": 1500}})
        api.wait_state(job["id"], "running", 30)
        h.stop("z", signal.SIGKILL)
        t0 = time.monotonic()
        h.queue_worker("z", rport, extra=long_lease)
        j = api.wait_state(job["id"], ("completed", "failed", "dead"), 50)
        assert j["state"] == "completed" and j["attempts"] == 2, j
        assert time.monotonic() - t0 < 30, "waited for the 60 s lease"
        failed = [e["data"] for e in api.events(job["id"]) if e["type"] == "job.failed"]
        assert failed and failed[0]["error"]["code"] == "lease_expired", failed
        # a claim Redis ran but whose answer the worker never saw (lost in a
        # dropped connection): on reconnect it is released unstarted, the
        # attempt not counted, and then done normally
        h.stop("z")
        lua = os.path.join(SOURCE, "common", "lua")
        lib = open(os.path.join(lua, "_lib.lua")).read()
        claim = lib + open(os.path.join(lua, "claim.lua")).read()
        h.queue_worker("z", rport, extra=long_lease)
        wait_until(lambda: "z" in [w["id"] for w in api.workers()], 10, "z registered")
        r = RedisClient(rport)
        h.send_signal("z", signal.SIGSTOP)        # so it cannot take the job itself
        lost = api.submit({"source": "file:///orphan/lost.mp4", "metadata": {"sleep_ms": 10}})
        got = r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "z", "60000", "300000")
        assert got and got[0] == lost["id"], got
        r("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")   # drop z's connections
        h.send_signal("z", signal.SIGCONT)
        j = api.wait_state(lost["id"], ("completed", "failed", "dead"), 30)
        assert j["state"] == "completed" and j["attempts"] == 1, j
        assert "released to the queue unstarted" in h.log_text("z")
        rel = [e["data"] for e in api.events(lost["id"]) if e["type"] == "job.retrying"]
        assert len(rel) == 1 and rel[0]["attempt"] == 1, rel   # the attempt it will run again
        h.stop("z")
        h.queue_worker("e", rport, extra=dict(env, STREAMSCALE_SLOTS="2",
                                              STREAMSCALE_CLAIM_DELAY_MS="3000"))

        # ---- scripts check their arguments before writing anything
        lua = os.path.join(SOURCE, "common", "lua")
        lib = open(os.path.join(lua, "_lib.lua")).read()
        finish = lib + open(os.path.join(lua, "finish.lua")).read()
        job = api.submit({"source": "file:///lua/args.mp4", "metadata": {"sleep_ms": 4000}})
        api.wait_state(job["id"], "running", 30)
        key = "{ss}:job:" + job["id"]
        token = r("HGET", key, "token")
        for outcome, payload in (("complete", "{}"), ("failed", "oops: not json")):
            try:
                r("EVAL", finish, 1, key, "{ss}:", job["id"], token, outcome, payload, "0", "10", "{}")
                raise AssertionError("finish accepted %r" % outcome)
            except RuntimeError:
                pass
            assert r("ZSCORE", "{ss}:processing", job["id"]) is not None
            assert r("HGET", key, "token") == token and r("HGET", key, "state") == "running"
        assert api.wait_state(job["id"], ("completed", "failed", "dead"), 60)["attempts"] == 1
        h.stop("e")
        check_finish_many(h, api, r, rport, lib, claim, env, log)
        check_claim_many(api, r, claim)
        check_claim_release(h, api, r, rport, lib, claim, env)


def check_finish_many(h, api, r, rport, lib, claim, env, log):
    """finish_many: completed jobs reported together, each fenced by its own
    token (a stale one is refused, the others complete), the next job
    claimed in the same call; a bad argument writes nothing. Then a worker
    whose jobs complete together uses it, and every job completes once."""
    lua = os.path.join(SOURCE, "common", "lua")
    many = lib + open(os.path.join(lua, "finish_many.lua")).read()
    ids = [api.submit({"source": "file:///many/%d.mp4" % i})["id"] for i in range(4)]
    got = [r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "fm", "60000", "300000") for _ in range(3)]
    assert [g[0] for g in got] == ids[:3], (got, ids)
    tok = {g[0]: g[1] for g in got}
    # a stale token for the third job (as if its lease had been reaped)
    r("HSET", "{ss}:job:" + ids[2], "token", "999999")
    argv = ["fm", "60000", "300000", "1", "", "3"]
    for jid in ids[:3]:
        urls = '{"hls":"file:///many/%s/master.m3u8"}' % jid if jid == ids[1] else "{}"
        argv += [jid, tok[jid], '{"worker":"fm","attempt":1,"urls":%s}' % urls, '{"output":{}}']
    try:   # n does not match the arguments: refused before any write
        r("EVAL", many, 1, "{ss}:processing", "{ss}:", *(argv[:5] + ["4"] + argv[6:]))
        raise AssertionError("finish_many accepted a wrong count")
    except RuntimeError:
        pass
    assert api.job(ids[0])["state"] == "running"
    rep = r("EVAL", many, 1, "{ss}:processing", "{ss}:", *argv)
    assert rep[0] == 3 and rep[1] == [1, "completed"] and rep[2] == [1, "completed"], rep
    assert rep[3] == [-1, "running"], rep
    assert len(rep) == 5 and rep[4][0] == ids[3] and rep[4][2] == 1, rep   # the next job
    for jid in ids[:2]:
        j = api.job(jid)
        assert j["state"] == "completed" and j["result"]["worker"] == "fm", j
        assert r("ZSCORE", "{ss}:processing", jid) is None
    assert types(api, ids[0]) == ["job.queued", "job.started", "job.completed"], types(api, ids[0])
    # a result with an HLS URL: playable at completion, job.playable before job.completed
    assert types(api, ids[1]) == ["job.queued", "job.started", "job.playable", "job.completed"], \
        types(api, ids[1])
    assert api.job(ids[1])["playable_url"] == "file:///many/%s/master.m3u8" % ids[1]
    assert api.job(ids[2])["state"] == "running"
    for jid in (ids[2], ids[3]):   # back to the queue (the reaper counts the attempt)
        r("ZADD", "{ss}:processing", "0", jid)

    # a worker with 8 slots and 200 short jobs: reports go together, once each
    if os.path.exists(log):
        os.unlink(log)
    before = int(r("HGET", "{ss}:stats", "completed") or 0)
    jobs = [api.submit({"source": "file:///many/w%d.mp4" % i})["id"] for i in range(200)]
    h.queue_worker("m", rport, extra=dict(env, STREAMSCALE_SLOTS="8"))
    wait_until(lambda: int(r("HGET", "{ss}:stats", "completed")) - before >= 202, 120,
               "every job completed", interval=0.1)
    done = completions(log)
    assert sorted(jid for jid, _ in done) == sorted(jobs + ids[2:]), len(done)   # once each
    assert int(r("HGET", "{ss}:stats", "completed")) - before == 202
    sha = hashlib.sha1(many.encode()).hexdigest()
    assert r("SCRIPT", "EXISTS", sha) == [1], "the worker never sent a finish_many"
    h.stop("m")


def check_claim_many(api, r, claim):
    """claim with want: k jobs in one call, in FIFO order, each with its own
    fencing token, lease and job.started; fewer when the queue runs out
    (the worker is then idle); a bad want writes nothing."""
    ids = [api.submit({"source": "file:///batch/%d.mp4" % i})["id"] for i in range(5)]
    started = int(r("HGET", "{ss}:stats", "started") or 0)
    try:
        r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "cm", "60000", "300000", "0")
        raise AssertionError("claim accepted want 0")
    except RuntimeError:
        pass
    assert all(api.job(jid)["state"] == "queued" for jid in ids)
    got = r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "cm", "60000", "300000", "3")
    assert [g[0] for g in got] == ids[:3], (got, ids)
    assert len({g[1] for g in got}) == 3, got   # three distinct fencing tokens
    assert [g[4] for g in got] == [4, 3, 2], got   # still queued after each
    for g in got:
        jid = g[0]
        assert r("HGET", "{ss}:job:" + jid, "token") == g[1] and g[2] == 1, g
        assert r("HGET", "{ss}:job:" + jid, "worker") == "cm"
        assert float(r("ZSCORE", "{ss}:processing", jid)) > time.time() * 1000 + 50000
        assert types(api, jid)[-1] == "job.started", types(api, jid)
        assert api.job(jid)["state"] == "running"
    assert r("ZSCORE", "{ss}:idle", "cm") is None
    rest = r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "cm", "60000", "300000", "5")
    assert [g[0] for g in rest] == ids[3:], (rest, ids)   # the queue ran out
    assert r("ZSCORE", "{ss}:idle", "cm") is not None, "a short batch marks the worker idle"
    assert r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "cm", "60000", "300000", "2") == []
    # the counters of a batch are written once, but count every job
    assert int(r("HGET", "{ss}:stats", "started")) - started == 5
    for jid in ids:   # back to the queue (the reaper counts the attempt)
        r("ZADD", "{ss}:processing", "0", jid)


def check_claim_release(h, api, r, rport, lib, claim, env):
    """Claims a worker does not know go back in FIFO order (a batch shares
    one lease deadline); a batched claim that errors after its first claim
    gives that claim back at once, uncounted, not after its lease."""
    orphans = lib + open(os.path.join(SOURCE, "common", "lua", "orphans.lua")).read()
    ids = [api.submit({"source": "file:///release/%d.mp4" % i, "priority": "high"})["id"]
           for i in range(3)]
    got = r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "cr", "60000", "300000", "3")
    assert [g[0] for g in got] == ids, (got, ids)
    assert r("EVAL", orphans, 1, "{ss}:processing", "{ss}:", "cr", "release") == 3
    assert r("LRANGE", "{ss}:q:high", 0, -1) == ids[::-1], ids   # the oldest at the head
    got = r("EVAL", claim, 1, "{ss}:processing", "{ss}:", "cr", "60000", "300000", "3")
    assert [(g[0], g[2]) for g in got] == [(jid, 1) for jid in ids], (got, ids)

    # the batch's second job breaks claim_next (a job key of the wrong type)
    a = api.submit({"source": "file:///release/ok.mp4", "priority": "high"})["id"]
    b = api.submit({"source": "file:///release/bad.mp4", "priority": "high"})["id"]
    bkey = "{ss}:job:" + b
    r("RENAME", bkey, "{ss}:saved")
    r("SET", bkey, "corrupt")
    h.queue_worker("f", rport, extra=dict(env, STREAMSCALE_SLOTS="2"))
    wait_until(lambda: "released to the queue unstarted" in h.log_text("f"), 10,
               "the errored batch's claim released")
    r("RENAME", "{ss}:saved", bkey)   # in one step: a claim between a DEL and it drops b
    for jid in (a, b):
        j = api.wait_state(jid, ("completed", "failed", "dead"), 30)
        assert j["state"] == "completed" and j["attempts"] == 1, j
    assert "job.failed" not in types(api, a), types(api, a)   # no lease_expired
    rel = [e["data"] for e in api.events(a) if e["type"] == "job.retrying"]
    assert rel and all(d["attempt"] == 1 for d in rel), rel
    h.stop("f")


if __name__ == "__main__":
    main(test_queue_leases)
