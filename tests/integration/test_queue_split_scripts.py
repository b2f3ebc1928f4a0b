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

retry.lua of a failed split job continues from its plan: the done chunks and
audio keep their records, worker, attempts and timings; the other items are
reset (a claim a stopping worker still held is refused) and ready again in
claim order; the first claim starts the job again (job.started). Only
finalize left: it is the ready item. A cancelled split job (its output was
deleted) is planned again: its items go.

claim.lua with `only`: an item of that split job only while it is next in
the queue; an unsplit job or another job first gives nothing (no idle mark).

item_finish.lua with error code source_changed (an item saw another source
than the plan recorded): the job is planned again from scratch (queued at
the head, items gone), never stitched from two versions. It waits for the
old plan's claims (fence_claims) until their workers say they stopped; once
queued, the fence is over: a late report leaves a later backoff alone.

Only a real redis-server and the scripts: the state a worker and the
coordinator leave is written by hand, then orphans.lua runs as a worker's
reconnect runs it.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import contract  # noqa: E402
from lib.harness import SOURCE, Harness, RedisClient, main  # noqa: E402

JID = "0123456789abcdef0123"


def script(name):
    lua = os.path.join(SOURCE, "common", "lua")
    with open(os.path.join(lua, "_lib.lua")) as f, open(os.path.join(lua, name)) as g:
        return f.read() + g.read()


def events(r, jid):
    """The job's stream as events (checked against proto/events.schema.json):
    [(type, data)]."""
    out = []
    for sid, f in r("XRANGE", "{ss}:events:" + jid, "-", "+"):
        kv = dict(zip(f[0::2], f[1::2]))
        ts = int(kv["ts"])
        seq = int(sid.split("-")[1])
        ev = {"id": "evt_%s_%d" % (jid, seq), "type": kv["type"], "job_id": jid, "seq": seq,
              "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000)) +
              ".%03dZ" % (ts % 1000), "data": json.loads(kv["data"])}
        contract.get().check_event(ev)
        out.append((ev["type"], ev["data"]))
    return out


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

        # ---- the audio's final record (with subtitles) arrives while another
        # worker holds the publish lease: the holder's next lease is given
        # for the texts (texts 1), so it publishes them without a segment
        # more; `done` with texts 1 records them (pub_texts)
        jid = "0123456789abcdef012c"
        jk = "{ss}:job:" + jid
        r("HSET", jk, "state", "running", "priority", "normal", "split", "1", "plan", "{}",
          "items", '["plan","c0","audio","finalize"]')
        r("HSET", "{ss}:item:%s:c0" % jid, "state", "running", "token", "80")
        r("HSET", "{ss}:item:%s:audio" % jid, "state", "running", "token", "81")
        r("HSET", "{ss}:item:%s:finalize" % jid, "state", "waiting")
        url = "http://x/%s/master.m3u8" % jid

        def pubc(*a):
            return r("EVAL", pub, 1, jk, "{ss}:", jid, *a)
        got = pubc("take", "c0", "80", '{"frames":50}', "20000")
        assert got[0] == 1 and got[4] == 0 and got[5:] == [0], got
        gen = str(got[1])
        final = '{"frames":50,"texts":[{"name":"sub_en"}]}'
        assert pubc("take", "audio", "81", final, "20000") == [0]    # c0's worker holds it
        got = pubc("done", gen, "2", url, "0")
        assert got[0] == 1 and got[4] == 2 and got[5] == 1, got      # published for the texts
        gen = str(got[1])
        assert pubc("done", gen, "2", url, "1") == [0]
        assert r("HGET", jk, "pub_texts") == "1"
        got = pubc("take", "c0", "80", '{"frames":50}', "20000")
        assert got[0] == 1 and got[5] == 0, got
        # a forced try that failed to store is not retried in a loop: the
        # next take (more stored) tries again
        r("HDEL", jk, "pub_texts")
        assert pubc("done", str(got[1]), "0", url, "0")[5] == 1      # texts still out
        got = pubc("done", str(int(got[1]) + 1), "0", url, "0")
        assert got == [0], got

        # ---- retry of a failed split job continues from its plan
        jid = "0123456789abcdef0126"
        jk = "{ss}:job:" + jid

        def ik(n):
            return "{ss}:item:%s:%s" % (jid, n)
        r("HSET", jk, "state", "failed", "priority", "normal", "split", "1", "plan", '{"chunks":[1,2,3]}',
          "nchunks", 3, "chunks_done", 1, "vframes", 50, "items_running", 1, "attempts", 1,
          "max_attempts", 3, "error", '{"code":"not_found","message":"x"}',
          "items", '["plan","c0","c1","c2","audio","finalize"]', "spec", "{}")
        r("ZADD", "{ss}:st:failed", 1, jid)
        r("HSET", ik("plan"), "state", "done", "worker", "w1", "attempts", 1)
        r("HSET", ik("c0"), "state", "done", "worker", "w1", "attempts", 2, "started_ms", 11,
          "finished_ms", 12, "result", '{"frames":50}')
        r("HSET", ik("c1"), "state", "failed", "worker", "w2", "attempts", 1, "started_ms", 13,
          "error", '{"code":"not_found","message":"x"}')
        # c2 still claimed by a worker that stopped renewing it (its lease
        # ran out before the reaper's tick: it can no longer store)
        r("HSET", ik("c2"), "state", "running", "worker", "w3", "token", "90", "attempts", 1,
          "started_ms", 14, "lease_ms", now - 10000)
        r("ZADD", "{ss}:processing", now - 10000, jid + "/c2")
        r("HSET", ik("audio"), "state", "done", "worker", "w2", "attempts", 1, "started_ms", 15,
          "result", '{"frames":150}')
        r("HSET", ik("finalize"), "state", "waiting", "attempts", 0)
        got = r("EVAL", script("retry.lua"), 1, jk, "{ss}:", jid)
        assert got == [1, "queued"], got
        j = r.hgetall(jk)
        assert j["state"] == "queued" and j["split"] == "1" and "plan" in j, j
        assert j["chunks_done"] == "1" and j["vframes"] == "50" and j["items_running"] == "0", j
        assert r.hgetall(ik("c0")) == {"state": "done", "worker": "w1", "attempts": "2",
                                       "started_ms": "11", "finished_ms": "12",
                                       "result": '{"frames":50}'}
        assert r("HGET", ik("audio"), "worker") == "w2"
        for n in ("c1", "c2"):
            assert r.hgetall(ik(n)) == {"state": "ready", "attempts": "0", "progress": "0"}, n
        assert r.hgetall(ik("finalize"))["state"] == "waiting"
        assert r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["c1", "c2"]
        assert r("ZSCORE", "{ss}:processing", jid + "/c2") is None
        ev = r("XRANGE", "{ss}:events:" + jid, "-", "+")
        assert '"kept":["c0","audio"]' in ev[-1][1][5], ev
        # the stopping worker's item_finish is refused
        got = r("EVAL", script("item_finish.lua"), 1, ik("c2"), "{ss}:", jid, "c2", "90",
                "completed", '{"frames":50}', "0", "{}", "1", "0")
        assert got[0] == -1, got
        # the first claim starts the job with its first ready item
        r("DEL", "{ss}:q:normal")
        r("LPUSH", "{ss}:q:normal", jid)
        got = r("EVAL", script("claim.lua"), 1, "{ss}:processing", "{ss}:", "w4", "60000", "0")
        assert got[0] == jid and got[5] == "c1", got
        j = r.hgetall(jk)
        assert j["state"] == "running" and j["worker"] == "w4" and j["attempts"] == "1", j
        assert r("ZSCORE", "{ss}:st:running", jid) is not None
        ev = r("XRANGE", "{ss}:events:" + jid, "-", "+")
        assert ev[-1][1][1] == "job.started", ev
        # claim with `only` (a slot running several items of one job): an
        # unsplit job queued first (high) is not taken and nothing moves, no
        # idle mark; then the job's next item; then nothing (no idle mark)
        r("HSET", "{ss}:job:plainjob", "state", "queued", "priority", "high", "spec", "{}")
        r("LPUSH", "{ss}:q:high", "plainjob")

        def only(job):
            return r("EVAL", script("claim.lua"), 1, "{ss}:processing", "{ss}:", "w4", "60000",
                     "0", "1", job)
        assert only(jid) == [] and r("LRANGE", "{ss}:q:high", 0, -1) == ["plainjob"]
        assert only("plainjob") == [] and r("HGET", "{ss}:job:plainjob", "state") == "queued"
        r("DEL", "{ss}:q:high", "{ss}:job:plainjob")
        # `only` = id/item names one item (the audio beside c0 with
        # items_per_slot 1): not ready (here done) gives nothing and takes
        # nothing, never the next chunk
        qn = r("LRANGE", "{ss}:q:normal", 0, -1)
        assert only(jid + "/audio") == [] and r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["c2"]
        assert r("LRANGE", "{ss}:q:normal", 0, -1) == qn and r("HGET", ik("c2"), "state") == "ready"
        got = only(jid + "/c2")
        assert len(got) == 1 and got[0][0] == jid and got[0][5] == "c2", got
        assert r("HGET", ik("c2"), "worker") == "w4" and r("HGET", jk, "items_running") == "2"
        assert only(jid) == [] and r("ZSCORE", "{ss}:idle", "w4") is None

        # ---- only finalize failed: the retry makes it the ready item
        def failed_at_finalize(fjid, state, *fields):
            """A split job whose chunks and audio are done and whose
            finalize failed; returns its job key."""
            fjk = "{ss}:job:" + fjid
            r("HSET", fjk, "state", state, "priority", "normal", "split", "1",
              "plan", '{"chunks":[1,2]}', "nchunks", 2,
              "items", '["plan","c0","c1","audio","finalize"]', "spec", "{}", *fields)
            for n, f in (("c0", 50), ("c1", 50), ("audio", 100)):
                r("HSET", "{ss}:item:%s:%s" % (fjid, n), "state", "done", "worker", "w1",
                  "attempts", 1, "result", '{"frames":%d}' % f)
            r("HSET", "{ss}:item:%s:finalize" % fjid, "state", "failed", "worker", "w1",
              "attempts", 3)
            return fjk

        jid = "0123456789abcdef0127"
        jk = failed_at_finalize(jid, "dead")
        assert r("EVAL", script("retry.lua"), 1, jk, "{ss}:", jid) == [1, "queued"]
        assert r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["finalize"]
        assert r.hgetall(ik("finalize")) == {"state": "ready", "attempts": "0", "progress": "0"}
        # ---- finalize failed because of chunk c1's record (its init segment
        # differs from the stored one: error.items): the retry runs c1 again,
        # done or not, instead of failing the same way forever
        cjid = "0123456789abcdef012d"
        cjk = failed_at_finalize(cjid, "failed", "error",
                                 '{"code":"internal","message":"rung 360p: chunk 1 wrote a '
                                 'different init segment","items":["c1"]}')

        def cik(n):
            return "{ss}:item:%s:%s" % (cjid, n)
        assert r("EVAL", script("retry.lua"), 1, cjk, "{ss}:", cjid) == [1, "queued"]
        assert r("LRANGE", "{ss}:ready:" + cjid, 0, -1) == ["c1"]
        assert r.hgetall(cik("c1")) == {"state": "ready", "attempts": "0", "progress": "0"}
        assert r("HGET", cik("c0"), "state") == "done"
        assert r("HGET", cik("finalize"), "state") == "waiting"
        assert r("HGET", cjk, "chunks_done") == "1" and r("HGET", cjk, "vframes") == "50"
        assert events(r, cjid)[-1][1]["kept"] == ["c0", "audio"]

        # a retried split job cancelled before it runs again: its `delete`
        # item removes what the kept items stored
        got = r("EVAL", script("cancel.lua"), 1, jk, "{ss}:", jid, "test")
        assert got == [1, "cancelling"], got
        assert r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["delete"]
        assert r("HGET", ik("finalize"), "state") == "cancelled"


        # ---- a cancelled split job (output deleted) is planned again
        jid = "0123456789abcdef0128"
        jk = "{ss}:job:" + jid
        r("HSET", jk, "state", "cancelled", "priority", "normal", "split", "1", "plan", "{}",
          "nchunks", 2, "items", '["plan","c0","c1","audio","finalize","delete"]', "spec", "{}")
        r("HSET", ik("c0"), "state", "done", "result", "{}")
        assert r("EVAL", script("retry.lua"), 1, jk, "{ss}:", jid) == [1, "queued"]
        j = r.hgetall(jk)
        assert "split" not in j and "plan" not in j and "items" not in j, j
        assert r("EXISTS", ik("c0")) == 0

        # ---- an item saw another source than the plan's: planned again
        jid = "0123456789abcdef0129"
        jk = "{ss}:job:" + jid
        r("HSET", jk, "state", "running", "priority", "normal", "split", "1", "plan", "{}",
          "nchunks", 2, "items_running", 2, "attempts", 1, "max_attempts", 3,
          "items", '["plan","c0","c1","audio","finalize"]', "spec", "{}",
          "pub_gen", 4, "pub_until_ms", now + 20000, "pub_segments", 7, "pub_lease", 20000,
          "playable_ms", now - 1000, "playable_url", "http://x/" + jid + "/master.m3u8")
        r("ZADD", "{ss}:st:running", 1, jid)
        r("HSET", ik("c0"), "state", "done", "result", '{"frames":5}')
        r("HSET", ik("c1"), "state", "running", "token", "91", "attempts", 1)
        r("HSET", ik("audio"), "state", "running", "token", "92", "attempts", 1)
        r("ZADD", "{ss}:processing", 99999999999999, jid + "/audio")
        got = r("EVAL", script("item_finish.lua"), 1, ik("c1"), "{ss}:", jid, "c1", "91", "failed",
                '{"code":"source_changed","message":"the source changed"}', "1", "{}", "1", "0")
        assert got == [1, "queued"], got
        j = r.hgetall(jk)
        assert j["state"] == "queued" and "split" not in j and "plan" not in j, j
        assert r("LINDEX", "{ss}:q:normal", -1) == jid   # at the head
        assert r("EXISTS", ik("c0")) == 0 and r("ZSCORE", "{ss}:processing", jid + "/audio") is None
        ev = r("XRANGE", "{ss}:events:" + jid, "-", "+")
        assert ev[-1][1][1] == "job.retrying" and "planned again" in ev[-1][1][5], ev
        # the old plan's early publish is over: its holder's lease (gen 4) no
        # longer passes check once the new plan runs, and the new plan
        # publishes (and becomes playable) from its first segments
        assert j["pub_gen"] == "5", j
        for f in ("pub_until_ms", "pub_segments", "pub_lease", "playable_ms", "playable_url"):
            assert f not in j, (f, j)
        r("HSET", jk, "state", "running", "items", '["plan","c0","audio","finalize"]')
        r("HSET", ik("finalize"), "state", "waiting")
        assert r("EVAL", pub, 1, jk, "{ss}:", jid, "check", "4", "5000") == 0

        # ---- planned again while a claim of the old plan may still store
        # (c1's worker has not heard yet; a PUT of its init.mp4 in flight):
        # the job waits as `retrying` until that lease ran out, plus a margin
        jid = "012345678900abcdef2a"
        jk = "{ss}:job:" + jid
        now = int(r("TIME")[0]) * 1000
        r("HSET", jk, "state", "running", "priority", "normal", "split", "1", "plan", "{}",
          "nchunks", 2, "items_running", 2, "attempts", 1, "max_attempts", 3,
          "items", '["plan","c0","c1","audio","finalize"]', "spec", "{}", "created_ms", now)
        r("ZADD", "{ss}:st:running", 1, jid)
        r("HSET", ik("c0"), "state", "running", "token", "93", "attempts", 1)
        r("HSET", ik("c1"), "state", "running", "token", "94", "attempts", 1,
          "lease_ms", now + 60000)
        r("ZADD", "{ss}:processing", now + 60000, jid + "/c1")
        got = r("EVAL", script("item_finish.lua"), 1, ik("c0"), "{ss}:", jid, "c0", "93", "failed",
                '{"code":"source_changed","message":"the source changed"}', "1", "{}", "1", "0")
        assert got == [1, "retrying"], got
        j = r.hgetall(jk)
        assert j["state"] == "retrying" and "split" not in j, j
        due = int(r("ZSCORE", "{ss}:delayed", jid))
        assert due == int(j["retry_at_ms"]) == now + 65000, (due, j)
        assert jid not in r("LRANGE", "{ss}:q:normal", 0, -1)
        ev = events(r, jid)
        assert ev[-2][0] == "job.failed" and ev[-2][1]["will_retry"], ev
        assert ev[-1][0] == "job.retrying" and ev[-1][1]["retry_at_ms"] == due, ev
        assert json.loads(j["fence_claims"]) == {"94": now + 60000}, j
        # nothing claims it before then
        r("DEL", "{ss}:q:normal")
        got = r("EVAL", script("claim.lua"), 1, "{ss}:processing", "{ss}:", "w5", "60000", "0")
        assert not got, got
        # c1's worker reports that it stopped (refused: its claim is gone),
        # so it stores no more: the job is due now, and the new plan starts
        got = r("EVAL", script("item_finish.lua"), 1, ik("c1"), "{ss}:", jid, "c1", "94", "failed",
                '{"code":"source_changed","message":"the source changed"}', "1", "{}", "1", "0")
        assert got == [-1, "retrying"], got
        assert int(r("ZSCORE", "{ss}:delayed", jid)) <= int(r("TIME")[0]) * 1000 + 1000
        assert "fence_claims" not in r.hgetall(jk)
        got = r("EVAL", script("claim.lua"), 1, "{ss}:processing", "{ss}:", "w5", "60000", "0")
        assert got and got[0] == jid and got[2] == 2 and len(got) == 5, got
        assert events(r, jid)[-1][0] == "job.started"

        # ---- the retry of a failed split job while a reset claim may still
        # store: waits as `retrying` too; a cancel then still deletes the
        # kept items' files (its `delete` item)
        jid = "012345678900abcdef2b"
        jk = "{ss}:job:" + jid
        r("HSET", jk, "state", "failed", "priority", "normal", "split", "1", "plan", "{}",
          "nchunks", 2, "items", '["plan","c0","c1","audio","finalize"]', "spec", "{}")
        r("HSET", ik("c0"), "state", "done", "result", '{"frames":5}')
        r("HSET", ik("c1"), "state", "running", "token", "95", "attempts", 1,
          "lease_ms", now + 60000)
        r("HSET", ik("audio"), "state", "failed", "attempts", 3)
        r("HSET", ik("finalize"), "state", "waiting")
        assert r("EVAL", script("retry.lua"), 1, jk, "{ss}:", jid) == [1, "queued"]
        j = r.hgetall(jk)
        assert j["state"] == "retrying" and j["retry_at_ms"] == str(now + 65000), j
        assert [e[0] for e in events(r, jid)[-2:]] == ["job.queued", "job.retrying"]
        assert r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["audio", "c1"]
        assert jid not in r("LRANGE", "{ss}:q:normal", 0, -1)
        got = r("EVAL", script("cancel.lua"), 1, jk, "{ss}:", jid, "test")
        assert got == [1, "cancelling"], got
        assert r("ZSCORE", "{ss}:delayed", jid) is None
        assert r("LRANGE", "{ss}:ready:" + jid, 0, -1) == ["delete"]

        # ---- an old claim's worker reports only after the fence ran out: the
        # job was queued (the fence is over), claimed, and waits as
        # `retrying` again with a backoff of its own; the late report (a
        # worker says it stopped once its pipeline returned) leaves that
        # backoff alone
        jid = "012345678900abcdef2c"
        jk = "{ss}:job:" + jid
        now = int(r("TIME")[0]) * 1000
        r("HSET", jk, "state", "retrying", "priority", "normal", "spec", "{}", "attempts", 1,
          "max_attempts", 3, "created_ms", now, "retry_at_ms", now - 1000,
          "fence_claims", json.dumps({"97": now - 6000}))
        r("ZADD", "{ss}:st:retrying", 1, jid)
        r("ZADD", "{ss}:delayed", now - 1000, jid)
        r("DEL", "{ss}:q:normal")
        got = r("EVAL", script("claim.lua"), 1, "{ss}:processing", "{ss}:", "w5", "60000", "0")
        assert got and got[0] == jid, got
        assert "fence_claims" not in r.hgetall(jk), r.hgetall(jk)
        r("HSET", jk, "state", "retrying", "retry_at_ms", now + 30000)   # (its claim failed)
        r("ZADD", "{ss}:delayed", now + 30000, jid)
        got = r("EVAL", script("item_finish.lua"), 1, ik("c1"), "{ss}:", jid, "c1", "97", "cancelled",
                "{}", "0", "{}", "0", "0")
        assert got == [-1, "retrying"], got
        assert int(r("ZSCORE", "{ss}:delayed", jid)) == now + 30000
        assert r.hgetall(jk)["retry_at_ms"] == str(now + 30000)
        r.close()


if __name__ == "__main__":
    main(test_queue_split_scripts)
