"""Fair sharing on unequal workers and a Redis restart (AOF on) in the middle
of a batch: nothing lost, nothing done twice."""
import collections
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import Api, Harness, completions, main, wait_until  # noqa: E402

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "20", "STREAMSCALE_HEARTBEAT_MS": "200",
          "STREAMSCALE_POLL_MS": "100"}


def test_queue_sharing():
    with Harness("queue-sharing") as h:
        rport = h.redis(appendonly=True)
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)

        # ---- a bigger worker (3 slots) takes proportionally more
        log = h.path("share.log")
        h.queue_worker("big", rport, extra=dict(WORKER, SS_QUEUE_LOG=log, STREAMSCALE_SLOTS="3"))
        h.queue_worker("small", rport, extra=dict(WORKER, SS_QUEUE_LOG=log, STREAMSCALE_SLOTS="1"))
        ids = [api.submit({"source": "file:///share/%d.mp4" % i,
                           "metadata": {"sleep_ms": 300}})["id"] for i in range(32)]
        wait_until(lambda: len(completions(log)) >= len(ids), 120, "the batch to finish")
        per = collections.Counter(w for _, w in completions(log))
        assert sorted(j for j, _ in completions(log)) == sorted(ids), "lost or duplicated jobs"
        assert per["big"] >= 2 * per["small"], per
        assert per["small"] > 0, per

        # ---- Redis restarted (AOF) during a batch: every job completes once
        os.unlink(log)
        ids = [api.submit({"source": "file:///restart/%d.mp4" % i,
                           "metadata": {"sleep_ms": 150}})["id"] for i in range(30)]
        wait_until(lambda: len(completions(log)) >= 5, 60, "the batch to start")
        h.stop("redis", signal.SIGTERM)
        h.redis(port=rport, appendonly=True)
        for jid in ids:
            j = api.wait_state(jid, ("completed", "failed", "dead"), 120)
            assert j["state"] == "completed", j
        done = [j for j, _ in completions(log)]
        assert sorted(done) == sorted(ids), (len(done), len(set(done)), len(ids))
        for jid in ids:
            t = [e["type"] for e in api.events(jid)]
            assert t.count("job.completed") == 1, (jid, t)
        # both workers reconnected and are still in the registry
        wait_until(lambda: sorted(w["id"] for w in api.workers()) == ["big", "small"], 15,
                   "workers back in the registry")


if __name__ == "__main__":
    main(test_queue_sharing)
