#!/usr/bin/env python3
"""bench_s3_job.py — is the upload hidden behind the encode?

The same job (a generated 1080p clip, the default ladder) runs through the
real system — coordinator, one worker, redis-server — alternately with a
file:// destination and an s3:// destination on a local S3 server that
checks signatures (Swift + s3api). The job time is the job's own
started -> finished span (Redis server time), so process start-up is not
counted. Prints each run and the median ratio s3 / file.

    /usr/bin/python3 tests/bench/bench_s3_job.py [--build build] [--runs 3] [--seconds 20]
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    os.environ["SS_BUILD_DIR"] = os.path.abspath(args.build)
    from lib.harness import BIN, Api, Harness  # noqa: E402  (reads SS_BUILD_DIR)
    from lib.s3server import SwiftS3  # noqa: E402

    with Harness("bench-s3-job") as h:
        s3 = SwiftS3(h).start()
        s3.client().create_bucket(Bucket="media")
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token="bench-token")
        api = Api(url, "bench-token", harness=h)
        h.worker("w", rport, storage="file://" + h.path("out") + "/", extra={
            "STREAMSCALE_S3_ENDPOINT": s3.endpoint, "STREAMSCALE_S3_REGION": s3.region,
            "STREAMSCALE_S3_ACCESS_KEY": s3.access_key,
            "STREAMSCALE_S3_SECRET_KEY": s3.secret_key,
            "STREAMSCALE_ALLOW_PRIVATE_NETWORKS": "true", "STREAMSCALE_LOG_LEVEL": "info"})
        clip = h.path("clip.mp4")
        w, hh = args.size.split("x")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", str(args.seconds), "--size", args.size])
        times = {"file": [], "s3": []}
        objects = 0
        for run in range(args.runs):
            for kind in ("file", "s3") if run % 2 == 0 else ("s3", "file"):
                dest = ("file://" + h.path("out-%d" % run) + "/") if kind == "file" \
                    else "s3://media/run%d/" % run
                j = api.submit({"source": "file://" + clip, "destination": dest,
                                "idempotency_key": "%s-%d" % (kind, run)})
                done = api.wait_state(j["id"], ("completed", "failed", "dead"), 1800)
                if done["state"] != "completed":
                    raise SystemExit("%s run %d: %s" % (kind, run, done["error"]))
                t = done["timings"]["run_seconds"]
                times[kind].append(t)
                up = done["result"].get("timings", {}).get("upload_seconds")
                objects = done["result"].get("upload", {}).get("objects", objects)
                print("run %d %-4s job %.2f s (upload after encode %.2f s)" % (run, kind, t, up or 0))
        mf, ms = statistics.median(times["file"]), statistics.median(times["s3"])
        ratios = [s / f for s, f in zip(times["s3"], times["file"])]
        print()
        print("| destination | job time s (median of %d) |" % args.runs)
        print("| --- | ---: |")
        print("| file:// | %.2f |" % mf)
        print("| s3:// (Swift + s3api, %d objects) | %.2f |" % (objects + 1, ms))
        print("s3 / file: %.3f (ratio of medians), %.3f (median of paired ratios)" %
              (ms / mf, statistics.median(ratios)))


if __name__ == "__main__":
    main()
