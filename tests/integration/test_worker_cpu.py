"""Per-job CPU figures with two jobs at once in one worker (slots 2), and
the items of a split job:
job.json output.timings.cpu_seconds.job and output.per_title.cpu_seconds count the job's
own threads and the ones they started (x264's frame threads, libav*'s), not
the whole worker (worker/media/cpuacct.h).

The worker process's CPU time (/proc/PID/stat) over the two jobs bounds
them: together they cannot exceed it (before, each reported the worker's
whole getrusage(RUSAGE_SELF), the other job and the start-up included), and
they are most of it (the rest is the loop thread: Redis, heartbeats). Each
job's figure holds at least its rung and demux threads' own.

A local per-title encode with threads 1 runs one probe at a time (one CPU
token, per_title.probes.busy_max); with threads = the CPUs, no budget.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BIN, Api, Harness, cpu_seconds, main, wait_until  # noqa: E402

TOKEN = "cpu-token"


def test_worker_cpu():
    with Harness("worker-cpu") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        clips = []
        for secs in (6, 4):
            c = h.path("clip%d.mp4" % secs)
            subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", c,
                                   "--seconds", str(secs), "--size", "480x270"],
                                  stdout=subprocess.DEVNULL)
            clips.append(c)
        # threads 2: the 270p rung gets 2 x264 threads (frame threads inside libx264)
        w = h.worker("w", rport, extra={"STREAMSCALE_SLOTS": "2", "STREAMSCALE_THREADS": "2",
                                        "STREAMSCALE_LOG_LEVEL": "info"})
        wait_until(lambda: [x["slots"] for x in api.workers() if x["id"] == "w"] == [2], 20,
                   "w registered with 2 slots")
        c0 = cpu_seconds(w.pid)
        jobs = [api.submit({"source": "file://" + clips[0], "thumbnails": False,
                            "ladder": [{"height": 270}, {"height": 144}]})["id"],
                api.submit({"source": "file://" + clips[1], "thumbnails": False,
                            "ladder": "per-title"})["id"]]
        wait_until(lambda: all(api.job(j)["state"] == "running" for j in jobs), 60,
                   "both jobs running at once", interval=0.02)
        done = [api.wait_state(j, ("completed", "failed", "dead"), 300) for j in jobs]
        assert all(d["state"] == "completed" for d in done), done
        used = cpu_seconds(w.pid) - c0
        docs = []
        for j in jobs:
            with open(h.path("out", j, "job.json")) as f:
                docs.append(json.load(f))
        cpu = [d["output"]["timings"]["cpu_seconds"] for d in docs]
        total = sum(c["job"] for c in cpu)
        print("worker CPU over the two jobs %.2f s; jobs %s" % (used, [c["job"] for c in cpu]))
        assert "process" not in cpu[0], cpu[0]
        # together no more than the worker spent, and most of it
        assert total <= used * 1.03 + 0.1, (total, used, cpu)
        assert total >= used * 0.6, (total, used, cpu)
        for c in cpu:
            own = sum(v for k, v in c.items() if k != "job")
            assert c["job"] >= own - 0.05 and c["job"] > 0, c
        pt = docs[1]["output"]["per_title"]["cpu_seconds"]
        assert 0 < pt <= cpu[1]["job"] + 0.05, (pt, cpu[1])

        # a split job's items (job.json items[].cpu_seconds, the API's
        # too): each counts its run's threads the same way, x264's frame
        # threads included, also for chunks handed over by a run that went
        # on into the next chunk; so together they are most of what the
        # worker spent, and no more
        clip = h.path("clip8.mp4")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", "8", "--size", "480x270"], stdout=subprocess.DEVNULL)
        c0 = cpu_seconds(w.pid)
        jid = api.submit({"source": "file://" + clip, "thumbnails": False, "split": 2,
                          "segment_seconds": 1, "ladder": [{"height": 270}, {"height": 144}]})["id"]
        d = api.wait_state(jid, ("completed", "failed", "dead"), 300)
        assert d["state"] == "completed", d
        used = cpu_seconds(w.pid) - c0
        with open(h.path("out", jid, "job.json")) as f:
            its = {i["name"]: i["cpu_seconds"] for i in json.load(f)["items"]}
        total = sum(its.values())
        print("split job: worker CPU %.2f s, its items %.2f s %s" % (used, total, its))
        assert total <= used * 1.03 + 0.1, (total, used, its)
        assert total >= used * 0.7, (total, used, its)
        api_items = {i["name"]: i["cpu_seconds"] for i in d["items"]}
        assert all(abs(api_items[n] - its[n]) < 0.02 for n in its if n != "finalize"), (api_items, its)

        # the per-title probes keep to the budget: threads 1 (below the
        # CPUs this process may use) is one CPU token, held by the decoding
        # thread or one probe at a time; at least every CPU is no budget
        ncpu = len(os.sched_getaffinity(0))
        for threads, tokens in ((1, 1 if ncpu > 1 else 0), (ncpu, 0)):
            out = subprocess.run([os.path.join(BIN, "streamscale-worker"), "encode", clips[1],
                                  h.path("pt%d" % threads), "--ladder", "per-title",
                                  "--threads", str(threads), "--no-thumbnails", "--json"],
                                 stdout=subprocess.PIPE, check=True).stdout
            probes = json.loads(out)["per_title"]["probes"]
            print("threads %d: per-title probes %s" % (threads, {k: probes[k] for k in (
                "cpu_tokens", "busy_max")}))
            assert probes["cpu_tokens"] == tokens, (threads, probes["cpu_tokens"])
            if tokens:
                assert probes["busy_max"] == tokens, (threads, probes["busy_max"])


if __name__ == "__main__":
    main(test_worker_cpu)
