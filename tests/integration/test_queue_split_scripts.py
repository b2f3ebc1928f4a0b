"""Split-job scripts on states that are hard to reach with real workers.

orphans.lua on a split job's last item: a cancelled job's `delete` item
(it removes the output done items stored) whose claim answer the worker lost
is released back to the job's ready items, and the job stays `cancelling`
until a worker has run it. Before, release marked it cancelled and the job
ended `cancelled` with the partial output left in storage.

item_finish.lua when the audio item (run in parallel, cut to the announced
length) must run again because the chunks measured another length: its
`record` goes with its `result`, so early publishers do not list the first
cut's audio while the re-run rewrites the same segment names.

publish.lua's check: an early publisher stores only while its lease (gen)
is current with a margin left and finalize has not started, so a stalled
holder cannot write EVENT playlists over the final ones.

Only a real redis-server and the scripts: the state a worker and the
coordinator leave is written by hand, then orphans.lua runs as a worker's
reconnect runs it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import SOURCE, Harness, RedisClient, main  # noqa: E402

JID = "0123456789abcdef0123"


def script(name):
    lua = os.path.join(SOURCE, "common", "lua")
    with open(os.path.join(lua, "_lib.lua")) as f, open(os.path.join(lua, name)) as g:
        return f.read() + g.read()


def test_queue_split_scripts():
    with Harness("item-orphans") as h:
        r = RedisClient(h.redis(acl=False))
        jk, dk = "{ss}:job:" + JID, "{ss}:item:%s:delete" % JID
        r("HSET", jk, "state", "cancelling", "priority", "normal", "items_running", 1,
          "items", '["plan","c0","c1","audio","finalize","delete"]', "created_ms", 1)
        r("ZADD", "{ss}:st:cancelling", 1, JID)
        r("HSET", dk, "state", "running", "worker", "w1", "token", "77", "attempts", 1,
          "lease_ms", 99999999999999)
        r("ZADD", "{ss}:processing", 99999999999999, JID + "/delete")
        # w1 reconnects knowing no token: the claim answer was lost
        n = r("EVAL", script("orphans.lua"), 1, "{ss}:processing", "{ss}:", "w1", "release")
        assert n == 1, n
        assert r("HGET", dk, "state") == "ready", r("HGETALL", dk)
        assert r("LRANGE", "{ss}:ready:" + JID, 0, -1) == ["delete"]
        assert JID in r("LRANGE", "{ss}:q:normal", 0, -1)
        assert r("HGET", jk, "state") == "cancelling", r("HGETALL", jk)
        assert r("HGET", jk, "items_running") == "0"
        assert r("ZSCORE", "{ss}:processing", JID + "/delete") is None

        # the audio item re-runs: its record goes with its result
        jid = "0123456789abcdef0124"
        jk, ak, ck = "{ss}:job:" + jid, "{ss}:item:%s:audio" % jid, "{ss}:item:%s:c0" % jid
        r("HSET", jk, "state", "running", "priority", "normal", "items_running", 1, "nchunks", 1,
          "chunks_done", 0, "vframes", 0, "items", '["plan","c0","audio","finalize"]')
        r("HSET", ak, "state", "done", "attempts", 1, "result", '{"frames":100}',
          "record", '{"frames":100}')
        r("HSET", ck, "state", "running", "worker", "w1", "token", "78", "attempts", 1)
        got = r("EVAL", script("item_finish.lua"), 1, ck, "{ss}:", jid, "c0", "78", "completed",
                '{"frames":90}', "0", "{}", "1", "0")
        assert got[0] == 1, got
        a = r.hgetall(ak)
        assert a["state"] == "ready" and "result" not in a and "record" not in a, a
        assert r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["audio"]

        # publish check: the current holder with time left may store; a stale
        # generation, too little time left, or finalize started: not
        jid = "0123456789abcdef0125"
        jk, fk = "{ss}:job:" + jid, "{ss}:item:%s:finalize" % jid
        now = int(r("TIME")[0]) * 1000
        r("HSET", jk, "state", "running", "pub_gen", 3, "pub_until_ms", now + 20000)
        r("HSET", fk, "state", "waiting")
        pub = script("publish.lua")

        def check(gen, margin):
            return r("EVAL", pub, 1, jk, "{ss}:", jid, "check", str(gen), str(margin))
        assert 14000 < check(3, 5000) <= 20000
        assert check(2, 5000) == 0          # a newer lease overtook this holder
        assert check(3, 30000) == 0         # not enough of the lease left
        r("HSET", fk, "state", "running")   # finalize writes the VOD playlists now
        assert check(3, 5000) == 0
        r.close()


if __name__ == "__main__":
    main(test_queue_split_scripts)
