"""Full jobs against a real S3 server that checks signatures (Swift +
s3api): an s3:// destination checked object by object with an independent
client (boto3), an s3:// source, the CLI uploading a local file first,
wrong credentials (failed once, readable), and storage down for longer than
the retry budget (retried by the queue, never half-published)."""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.faultproxy import FaultProxy  # noqa: E402
from lib.harness import BIN, Api, Harness, gen_clip, main  # noqa: E402
from lib.s3server import SwiftS3  # noqa: E402

TOKEN = "test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "100"}


def worker_env(endpoint, s3, secret=None):
    return {
        "STREAMSCALE_S3_ENDPOINT": endpoint,
        "STREAMSCALE_S3_REGION": s3.region,
        "STREAMSCALE_S3_ACCESS_KEY": s3.access_key,
        "STREAMSCALE_S3_SECRET_KEY": secret or s3.secret_key,
        "STREAMSCALE_ALLOW_PRIVATE_NETWORKS": "true",
        "STREAMSCALE_UPLOAD_RETRIES": "2",
        "STREAMSCALE_RETRY_BASE_MS": "100",
        "STREAMSCALE_RETRY_CAP_MS": "200",
        "STREAMSCALE_THREADS": "2",
    }


def listing(client, bucket, prefix):
    objs = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            objs[o["Key"]] = o
    return objs


def test_e2e_s3():
    with Harness("e2e-s3") as h:
        s3 = SwiftS3(h).start()
        client = s3.client()
        client.create_bucket(Bucket="media")
        client.create_bucket(Bucket="uploads")
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN, harness=h)
        h.worker("w1", rport, storage="s3://media/videos/", extra=worker_env(s3.endpoint, s3))

        # ---- an s3:// source to an s3:// destination (the worker's default)
        clip = gen_clip(h.path("clip.mp4"), seconds=4, size="640x360")
        with open(clip, "rb") as f:
            client.put_object(Bucket="uploads", Key="in/clip.mp4", Body=f.read())
        j = api.submit({"source": "s3://uploads/in/clip.mp4"})
        done = api.wait_state(j["id"], ("completed", "failed", "dead"), 300)
        assert done["state"] == "completed", done["error"]
        prefix = "videos/%s/" % j["id"]
        objs = listing(client, "media", prefix)
        # what the worker wrote locally is gone; compare against job.json
        doc = json.loads(client.get_object(Bucket="media", Key=prefix + "job.json")["Body"].read())
        assert doc["urls"]["hls"] == "s3://media/%smaster.m3u8" % prefix, doc["urls"]
        keys = {k[len(prefix):] for k in objs}
        for need in ("master.m3u8", "manifest.mpd", "audio/init.mp4", "thumbs/poster.jpg",
                     "thumbs/storyboard.vtt", "job.json"):
            assert need in keys, (need, sorted(keys))
        # job.json counts what was stored before it: everything but itself
        assert doc["upload"]["objects"] + 1 == len(objs), (doc["upload"], len(objs))
        types = {".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
                 ".m4s": "video/iso.segment", ".mp4": "video/mp4", ".jpg": "image/jpeg",
                 ".vtt": "text/vtt", ".json": "application/json"}
        for key in objs:
            head = client.head_object(Bucket="media", Key=key)
            ext = os.path.splitext(key)[1]
            assert head["ContentType"] == types[ext], (key, head["ContentType"])
            cc = head.get("CacheControl", "")
            if ext in (".m4s", ".mp4", ".jpg"):
                assert "immutable" in cc, (key, cc)
            # the final playlists and MPD: long (docs/PLAYABLE.md); job.json 60 s
            if ext in (".m3u8", ".mpd"):
                assert cc == "public, max-age=86400", (key, cc)
            if ext == ".json":
                assert "max-age=60" in cc, (key, cc)
        # every file a playlist names is in the bucket, with the size it had
        for rel in [k for k in keys if k.endswith("playlist.m3u8")]:
            text = client.get_object(Bucket="media", Key=prefix + rel)["Body"].read().decode()
            base = os.path.dirname(rel)
            for ln in text.splitlines():
                if ln and not ln.startswith("#"):
                    assert os.path.join(base, ln) in keys, (rel, ln)
        # bytes per rendition in job.json match the objects
        for r in doc["renditions"]:
            total = sum(o["Size"] for k, o in objs.items()
                        if k.startswith(prefix + r["name"] + "/") and
                        (k.endswith(".m4s") or k.endswith("init.mp4")))
            assert total == r["bytes"], (r["name"], total, r["bytes"])

        # ---- the CLI uploads a local file to the sources prefix, then submits it
        env = dict(os.environ, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN,
                   STREAMSCALE_UPLOAD_TO="s3://uploads/sources/",
                   STREAMSCALE_S3_ENDPOINT=s3.endpoint, STREAMSCALE_S3_REGION=s3.region,
                   STREAMSCALE_S3_ACCESS_KEY=s3.access_key,
                   STREAMSCALE_S3_SECRET_KEY=s3.secret_key,
                   STREAMSCALE_ALLOW_PRIVATE_NETWORKS="true")
        local = gen_clip(h.path("local.mp4"), seconds=2, size="320x240")
        p = subprocess.run([os.path.join(BIN, "streamscale"), "submit", local, "--wait", "--json"],
                           env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
        res = json.loads(p.stdout)
        assert res["source"].startswith("s3://uploads/sources/"), res["source"]
        key = res["source"][len("s3://uploads/"):]
        body = client.get_object(Bucket="uploads", Key=key)["Body"].read()
        with open(local, "rb") as f:
            assert hashlib.sha256(body).digest() == hashlib.sha256(f.read()).digest()

        # ---- wrong credentials: failed with a clear reason, not retried
        h.stop("w1")
        h.worker("w2", rport, storage="s3://media/videos/",
                 extra=worker_env(s3.endpoint, s3, secret="not-the-secret"))
        bad = api.submit({"source": "file://" + clip, "idempotency_key": "bad-creds"})
        b = api.wait_state(bad["id"], ("completed", "failed", "dead"), 300)
        assert b["state"] == "failed" and b["attempts"] == 1, b
        assert b["error"]["code"] == "auth" and "credential" in b["error"]["message"].lower(), b
        assert not listing(client, "media", "videos/%s/" % bad["id"])

        # ---- storage down longer than the retry budget: retried, never half-published
        h.stop("w2")
        proxy = FaultProxy(s3.port).start()
        try:
            proxy.reset(down=True)
            h.worker("w3", rport, storage="s3://media/videos/",
                     extra=worker_env(proxy.endpoint, s3))
            down = api.submit({"source": "file://" + clip, "idempotency_key": "s3-down",
                               "max_attempts": 2})
            d = api.wait_state(down["id"], ("completed", "failed", "dead"), 300)
            assert d["state"] == "dead" and d["attempts"] == 2, d
            assert d["error"]["code"] == "network", d["error"]
            assert not listing(client, "media", "videos/%s/" % down["id"]), "half-published"
            # storage back: a re-drive completes it
            proxy.reset(fail_rate=0.1, drop_rate=0.05)
            st, _ = api.retry(down["id"])
            assert st == 200
            d = api.wait_state(down["id"], ("completed", "failed", "dead"), 300)
            assert d["state"] == "completed", d
            assert "job.json" in {k.rsplit("/", 1)[-1] for k in
                                  listing(client, "media", "videos/%s/" % down["id"])}
        finally:
            proxy.stop()


if __name__ == "__main__":
    main(test_e2e_s3)
