#!/usr/bin/env python3
"""A chunk's run that goes on into the next chunk (worker chain_chunks,
docs/SPLIT.md "A run that goes on into the next chunk"), through the daemons.
Also run against the ThreadSanitizer build (tsan/test_split_chain): the
claims are handed between the loop thread and the job thread.

- One worker (a slot of 2 cores, one chunk at a time) alone on a split job
  of a 12 s clip (1 s segments, 3 s chunks): every chunk boundary goes on
  (the worker's log: the next chunk's claim came back, then the finished
  chunk was handed over and the claims swapped); each chunk is still its own
  claim (attempts 1, its own worker and CPU seconds in the API and
  job.json); the output passes the checker.
- SIGKILL while a run goes on (the worker holds the running chunk and maybe
  the next one's parked claim) and restart it under the same id: the
  restart ends its old claims at once (orphans); the job completes; the
  chunks done before the kill stay done (attempts 1), only the ones it
  held run again; the output passes the checker.
- Cancel while a run goes on: the job is cancelled and its output removed;
  no item is left running or claimed.
- The source changes while a run goes on: the worker is stopped (SIGSTOP)
  mid-run, the file replaced, and a second worker's item sees the change,
  so the job is planned again and waits (`retrying`) for the first worker's
  claims, whose lease has a minute left (docs/SPLIT.md "Fencing the old
  claims"). Let go on, the first worker hears at its next heartbeat that its
  claims were taken away, stops and says so (item_finish, refused): the job
  is queued within seconds, not a lease later, and completes from the new
  source.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import check_output  # noqa: E402
from lib.harness import Api, Harness, RedisClient, gen_clip, main, wait_until  # noqa: E402
from test_split import COORD, TOKEN, WENV, chain_lines, items, out_files, spec  # noqa: E402

# a slot of 2 cores runs one chunk at a time; leases long enough for a
# sanitized build's pauses, ended at once by a restart under the same id
CENV = dict(WENV, STREAMSCALE_THREADS="2", STREAMSCALE_LEASE_SECONDS="60")


def chunks_of(it):
    return sorted((n for n in it if it[n]["kind"] == "chunk"), key=lambda n: int(n[1:]))


def test_split_chain():
    with Harness("split-chain") as h:
        src = gen_clip(h.path("clip.mp4"), seconds=12, size="320x240", rate=25)
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        h.worker("w7", rport, extra=CENV)

        # ---- one run through every chunk
        jid = api.submit(spec(src, 30))["id"]
        j = api.wait_state(jid, ("completed", "failed", "dead", "cancelled"), 300)
        assert j["state"] == "completed", j
        it = items(j)
        chunks = chunks_of(it)
        assert len(chunks) == 4, chunks
        into, swapped = chain_lines(h, "w7", jid)
        assert set(into) == set(swapped) == set(chunks[1:]), (into, swapped)
        assert all(swapped[b][0] == a for a, b in zip(chunks, chunks[1:])), swapped
        assert all(i["attempts"] == 1 and i["worker"] == "w7" for i in it.values()), it
        problems = check_output.check(h.path("out", jid), src)
        assert not problems, "checker found:\n  " + "\n  ".join(problems)
        with open(h.path("out", jid, "job.json")) as f:
            doc = json.load(f)
        byname = {i["name"]: i for i in doc["items"]}
        assert all(byname[c]["worker"] == "w7" and byname[c]["attempts"] == 1 and
                   byname[c]["cpu_seconds"] > 0 for c in chunks), doc["items"]
        print("split chain: one run went on through %s" % ", ".join(chunks))

        # ---- SIGKILL while the run goes on, restart under the same id
        jid = api.submit(spec(src, 31, preset="slow"))["id"]
        seen = {}

        def going_on():
            into, _ = chain_lines(h, "w7", jid)
            seen.update(into)
            return len(into) >= 2
        wait_until(going_on, 300, "the run to go on into a second chunk", interval=0.05)
        h.stop("w7", signal.SIGKILL)
        before = items(api.job(jid))
        done_before = sorted(n for n, i in before.items() if i["state"] == "done")
        h.worker("w7", rport, extra=CENV)
        j = api.wait_state(jid, ("completed", "failed", "dead", "cancelled"), 300)
        assert j["state"] == "completed", j
        it = items(j)
        again = sorted(n for n, i in it.items() if i["attempts"] != 1)
        assert again and all(it[n]["attempts"] == 2 for n in again), it
        assert not set(again) & set(done_before), (again, done_before)
        assert all(i["state"] == "done" for i in it.values()), it
        problems = check_output.check(h.path("out", jid), src)
        assert not problems, "after SIGKILL: checker found:\n  " + "\n  ".join(problems)
        print("split chain: SIGKILL after going on into %s: done before %s, ran again %s" % (
            sorted(seen), done_before, again))

        # ---- cancel while the run goes on
        jid = api.submit(spec(src, 32, preset="slow"))["id"]
        wait_until(lambda: len(chain_lines(h, "w7", jid)[0]) >= 1, 300,
                   "the run to go on into the next chunk", interval=0.05)
        st, body = api.cancel(jid)
        assert st in (200, 202), (st, body)
        j = api.wait_state(jid, ("completed", "failed", "dead", "cancelled"), 120)
        assert j["state"] == "cancelled", j
        assert not any(i["state"] == "running" for i in j["items"]), j["items"]
        wait_until(lambda: out_files(h, jid) == 0, 30, "the partial output removed")
        print("split chain: cancelled while going on; output removed")

        # ---- the source changes while the run goes on
        moving = h.path("moving.mp4")
        os.link(src, moving)
        jid = api.submit(spec(moving, 33, preset="slow"))["id"]
        wait_until(lambda: len(chain_lines(h, "w7", jid)[0]) >= 1, 300,
                   "the run to go on into the next chunk", interval=0.05)
        h.send_signal("w7", signal.SIGSTOP)
        try:
            other = gen_clip(h.path("other.mp4"), seconds=8, size="320x240", rate=25,
                             video_src="testsrc")
            os.replace(other, moving)
            h.worker("w8", rport, extra=WENV)
            rc = RedisClient(rport)

            def fenced():
                jh = rc.hgetall("{ss}:job:" + jid)
                return jh if jh.get("state") == "retrying" and jh.get("fence_claims") else None
            jh = wait_until(fenced, 120, "the job planned again, waiting for w7's claims")
            claims = json.loads(jh["fence_claims"])
            sec, usec = rc("TIME")
            left = max(claims.values()) - (int(sec) * 1000 + int(usec) // 1000)
            assert left > 30000, (claims, left)   # w7's lease: a minute from its last heartbeat
        finally:
            h.send_signal("w7", signal.SIGCONT)
        t0 = time.monotonic()
        wait_until(lambda: api.job(jid)["state"] != "retrying", 20,
                   "the job to be queued once w7 said its claims ended (its lease had %.0f s left)"
                   % (left / 1000))
        took = time.monotonic() - t0
        j = api.wait_state(jid, ("completed", "failed", "dead", "cancelled"), 300)
        assert j["state"] == "completed", j
        again = [e["data"] for e in api.events(jid) if e["type"] == "job.retrying" and
                 "planned again" in e["data"].get("reason", "")]
        assert len(again) == 1, again
        problems = check_output.check(h.path("out", jid), moving)
        assert not problems, "after the source changed: checker found:\n  " + "\n  ".join(problems)
        print("split chain: source changed while going on: planned again, queued %.1f s after w7 "
              "went on (its claims' lease had %.0f s left)" % (took, left / 1000))


if __name__ == "__main__":
    main(test_split_chain)
