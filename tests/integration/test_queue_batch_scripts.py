"""Batched queue scripts on states that are hard to reach with real workers.

finish_many.lua writes its completions whole (state index, counters) before
it claims the worker's next jobs: a claim that errors in the same call (here
a worker user still on an ACL without INCRBY, as before an upgrade applied
deploy/redis-acl.conf; Redis checks ACLs per command inside a script) must
not leave a completed job listed as running for good. Before, the index
moves and counters of the whole call were written at its end, so the job's
hash said completed (token cleared, job.completed sent) while
{ss}:st:running still listed it and the `completed` counter never moved.

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
        admin.close()


if __name__ == "__main__":
    main(test_queue_batch_scripts)
