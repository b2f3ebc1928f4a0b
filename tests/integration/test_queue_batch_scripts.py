"""Batched queue scripts on states that are hard to reach with real workers.

finish_many.lua writes its completions whole (state index, counters) before
it claims the worker's next jobs: a claim that errors in the same call (here
a worker user still on an ACL without INCRBY, as before an upgrade applied
deploy/redis-acl.conf; Redis checks ACLs per command inside a script) must
not leave a completed job listed as running for good. Before, the index
moves and counters of the whole call were written at its end, so the job's
hash said completed (token cleared, job.completed sent) while
{ss}:st:running still listed it and the `completed` counter never moved.

finish_many's claims mark the worker idle when they find fewer jobs than
its free slots (as claim.lua's): the count of claims was taken from the
reply, which already holds the n reports, so it never did, and a worker
with free slots waited for its poll while notify_work woke others.

Only a real redis-server with the ACL users of deploy/redis-acl.conf and the
scripts: the state a worker leaves is written by hand.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import ACL_PASSWORDS, SOURCE, Harness, RedisClient, main  # noqa: E402


def script(name):
    lua = os.path.join(SOURCE, "common", "lua")
    with open(os.path.join(lua, "_lib.lua")) as f, open(os.path.join(lua, name)) as g:
        return f.read() + g.read()


def test_queue_batch_scripts():
    with Harness("batch-scripts") as h:
        rport = h.redis(acl=True)
        admin = RedisClient(rport)
        # a running job j1 of worker w1, a queued job j2 behind it
        j1, j2 = "0123456789abcdef0a01", "0123456789abcdef0a02"
        admin("HSET", "{ss}:job:" + j1, "state", "running", "token", "7", "priority", "normal",
              "seq", "2", "worker", "w1", "started_ms", "1", "created_ms", "1")
        admin("ZADD", "{ss}:st:running", "1", j1)
        admin("ZADD", "{ss}:processing", "99999999999999", j1)
        admin("HSET", "{ss}:job:" + j2, "state", "queued", "priority", "normal", "seq", "1",
              "spec", "{}", "queued_ms", "1", "created_ms", "1")
        admin("ZADD", "{ss}:st:queued", "1", j2)
        admin("LPUSH", "{ss}:q:normal", j2)
        # the worker's user as it was before the batch claims reserved tokens
        admin("ACL", "SETUSER", "ss-worker", "-incrby")
        w = RedisClient(rport)
        w("AUTH", "ss-worker", ACL_PASSWORDS["ss-worker"])
        err = None
        try:
            w("EVAL", script("finish_many.lua"), 1, "{ss}:processing", "{ss}:", "w1", "60000",
              "0", "1", "", "1", j1, "7", '{"urls":{"hls":"https://cdn.example/x.m3u8"}}', "{}")
        except RuntimeError as e:
            err = str(e)
        assert err and "can't run this command" in err, err   # the claim was refused
        assert admin("HGET", "{ss}:job:" + j1, "state") == "completed"
        assert admin("ZSCORE", "{ss}:st:completed", j1) is not None, \
            admin("ZRANGE", "{ss}:st:completed", 0, -1)
        assert admin("ZSCORE", "{ss}:st:running", j1) is None, \
            admin("ZRANGE", "{ss}:st:running", 0, -1)
        assert admin("HGET", "{ss}:stats", "completed") == "1", admin("HGETALL", "{ss}:stats")
        # the refused claim took nothing: j2 is still queued and listed
        assert admin("HGET", "{ss}:job:" + j2, "state") == "queued"
        assert admin("LRANGE", "{ss}:q:normal", 0, -1) == [j2]
        w.close()
        check_finish_many_idle(admin)
        admin.close()


def check_finish_many_idle(r):
    """Two jobs of w2 reported together with want 2: one job queued, so the
    second claim finds nothing and, when both claims were for free slots,
    w2 is marked idle; when the second was beyond its slots (idle argument
    1: prefetch) it is not."""
    many = script("finish_many.lua")
    for it, (free, idle) in enumerate((("2", True), ("", True), ("1", False))):
        r("DEL", "{ss}:idle", "{ss}:q:normal")   # (the first check left its j2 queued)
        ids = ["0123456789abcdef%d%03d" % (it, k) for k in range(3)]
        for k, jid in enumerate(ids[:2]):
            r("HSET", "{ss}:job:" + jid, "state", "running", "token", "5", "priority", "normal",
              "seq", str(10 + k), "worker", "w2", "started_ms", "1", "created_ms", "1")
            r("ZADD", "{ss}:st:running", "1", jid)
            r("ZADD", "{ss}:processing", "99999999999999", jid)
        r("HSET", "{ss}:job:" + ids[2], "state", "queued", "priority", "normal", "seq", "12",
          "spec", "{}", "queued_ms", "1", "created_ms", "1")
        r("ZADD", "{ss}:st:queued", "1", ids[2])
        r("LPUSH", "{ss}:q:normal", ids[2])
        argv = ["w2", "60000", "0", "2", free, "2"]
        for jid in ids[:2]:
            argv += [jid, "5", "{}", "{}"]
        rep = r("EVAL", many, 1, "{ss}:processing", "{ss}:", *argv)
        assert rep[0] == 2 and rep[1] == [1, "completed"] and rep[2] == [1, "completed"], rep
        assert len(rep) == 4 and rep[3][0] == ids[2], rep   # the one queued job, claimed
        marked = r("ZSCORE", "{ss}:idle", "w2") is not None
        assert marked == idle, ("free %r: w2 in {ss}:idle %s, want %s" % (free, marked, idle))
        r("DEL", *["{ss}:job:" + j for j in ids])
        r("DEL", "{ss}:processing", "{ss}:st:running", "{ss}:st:completed", "{ss}:st:queued")


if __name__ == "__main__":
    main(test_queue_batch_scripts)
