"""s3:// storage and s3:// sources against a real S3 server that verifies
SigV4 (OpenStack Swift + s3api, lib/s3server.py), driven through
build/tests/ss_s3tool (storage_open / storage_put_async / storage_wait /
fetch_source, as the worker calls them). An independent client (boto3)
checks what landed. One Swift server for the whole file.

Covers: a packaged-ladder-like folder of many small files plus a multipart
file larger than the part size (sizes, MD5s, Content-Type, Cache-Control
checked object by object); virtual-host addressing; s3:// source download;
delete_prefix; abort (no multipart upload left behind); faults through
lib/faultproxy.py (5xx and dropped connections: everything still lands
intact); wrong credentials (SS_EAUTH, no retry storm); missing bucket; a
server down longer than the retry budget.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.s3server import SwiftS3, harness  # noqa: E402
from lib.faultproxy import FaultProxy  # noqa: E402

TOOL = os.path.join(harness.BUILD, "tests", "ss_s3tool")
MiB = 1 << 20


def run_tool(s3, args, endpoint=None, extra=None, timeout=300, env_extra=None):
    argv = [TOOL, "--endpoint", endpoint or s3.endpoint, "--region", s3.region,
            "--allow-private"] + (extra or []) + args
    env = dict(os.environ)
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    env.update(s3.env())
    env.update(env_extra or {})
    r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out = r.stdout.decode().strip().splitlines()
    if not out:
        raise AssertionError("ss_s3tool printed nothing (rc %d): %s" % (r.returncode, r.stderr[-2000:]))
    res = json.loads(out[-1])
    res["rc"] = r.returncode
    return res


def expected_headers(key):
    ext = os.path.splitext(key)[1]
    types = {".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
             ".m4s": "video/iso.segment", ".mp4": "video/mp4", ".m4a": "audio/mp4",
             ".jpg": "image/jpeg", ".png": "image/png", ".vtt": "text/vtt",
             ".json": "application/json"}
    immutable = ext in (".m4s", ".mp4", ".m4a", ".jpg", ".png", ".vtt")
    return (types.get(ext, "application/octet-stream"),
            "public, max-age=31536000, immutable" if immutable else "public, max-age=60")


def make_ladder(root, nseg=40, big_size=None, seed=1):
    """A folder shaped like a packaged job: renditions with init + segments,
    playlists, manifests, thumbnails, captions, job.json."""
    import random
    rnd = random.Random(seed)
    files = {}

    def put(rel, data):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        files[rel] = data

    for rung in ("360p", "720p", "1080p"):
        put("%s/init.mp4" % rung, rnd.randbytes(900))
        for i in range(nseg):
            put("%s/seg_%05d.m4s" % (rung, i), rnd.randbytes(rnd.randint(2000, 60000)))
        put("%s/playlist.m3u8" % rung, b"#EXTM3U\n#EXT-X-VERSION:7\n")
    put("audio/init.mp4", rnd.randbytes(700))
    for i in range(nseg):
        put("audio/seg_%05d.m4s" % i, rnd.randbytes(rnd.randint(1000, 8000)))
    put("thumbs/poster.jpg", rnd.randbytes(5000))
    put("thumbs/storyboard.vtt", b"WEBVTT\n")
    put("subtitles/en.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi & <bye>\n")
    put("master.m3u8", b"#EXTM3U\n")
    put("manifest.mpd", b"<MPD/>")
    put("job.json", b"{}")
    put("odd name+=&?.json", b"{\"x\":1}")
    if big_size:
        put("1080p/full.mp4", rnd.randbytes(big_size))
    return files


def check_landed(client, bucket, prefix, files):
    """Independent check with boto3: list (paged) and download every object."""
    keys = {}
    token = None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 50}
        if token:
            kw["ContinuationToken"] = token
        r = client.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            keys[o["Key"]] = o["Size"]
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    want = {prefix + k for k in files}
    assert set(keys) == want, "listing differs: missing %s, extra %s" % (
        sorted(want - set(keys))[:5], sorted(set(keys) - want)[:5])
    for rel, data in files.items():
        key = prefix + rel
        assert keys[key] == len(data), "%s: size %d, want %d" % (key, keys[key], len(data))
        o = client.get_object(Bucket=bucket, Key=key)
        body = o["Body"].read()
        assert hashlib.md5(body).hexdigest() == hashlib.md5(data).hexdigest(), "%s: content differs" % key
        ct, cc = expected_headers(rel)
        assert o["ContentType"] == ct, "%s: Content-Type %s, want %s" % (key, o["ContentType"], ct)
        assert o.get("CacheControl") == cc, "%s: Cache-Control %s, want %s" % (key, o.get("CacheControl"), cc)
    return len(keys)


def pending_multipart(client, bucket, prefix):
    """Incomplete multipart uploads under prefix."""
    r = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return len(r.get("Uploads") or [])


def test():
    assert os.path.exists(TOOL), "build first: %s is missing" % TOOL
    with harness.Harness("s3_storage") as h:
        s3 = SwiftS3(h).start()
        print("swift ready in %.1fs on %s" % (s3.ready_seconds, s3.endpoint))
        c = s3.client()
        c.create_bucket(Bucket="media")

        # The server really checks signatures.
        bad = s3.client(secret="not-the-secret", retries=0)
        try:
            bad.list_objects_v2(Bucket="media")
            raise AssertionError("the S3 server accepted a wrong secret")
        except Exception as e:  # botocore ClientError
            assert "SignatureDoesNotMatch" in str(e), e

        mp = ["--multipart-threshold", str(6 * MiB), "--part-size", str(5 * MiB)]

        # 1. A packaged ladder + a multipart file (> 2 parts), verified.
        src = h.path("ladder")
        files = make_ladder(src, nseg=40, big_size=13 * MiB + 12345)
        r = run_tool(s3, ["put", "s3://media/jobs/j1/", src], extra=mp + ["--verify"])
        assert r["ok"], r
        assert r["objects"] == len(files), r
        assert r["bytes"] == sum(len(d) for d in files.values()), r
        n = check_landed(c, "media", "jobs/j1/", files)
        head = c.head_object(Bucket="media", Key="jobs/j1/1080p/full.mp4")
        assert head["ETag"].strip('"').endswith("-3"), "not a 3-part multipart upload: %s" % head["ETag"]
        single = c.head_object(Bucket="media", Key="jobs/j1/master.m3u8")
        assert single["ETag"].strip('"') == hashlib.md5(files["master.m3u8"]).hexdigest()
        print("ladder: %d objects ok (%.2fs)" % (n, r["seconds"]))

        # 2. Virtual-host addressing (bucket.localhost:PORT).
        r = run_tool(s3, ["put", "s3://media/vhost/", os.path.join(src, "master.m3u8")],
                     endpoint="http://localhost:%d" % s3.port, extra=["--path-style", "0"])
        assert r["ok"], r
        assert c.get_object(Bucket="media", Key="vhost/master.m3u8")["Body"].read() == files["master.m3u8"]

        # 3. s3:// source download (the multipart object) and a missing key.
        dl = h.path("dl.mp4")
        r = run_tool(s3, ["get", "s3://media/jobs/j1/1080p/full.mp4", dl])
        assert r["ok"], r
        with open(dl, "rb") as f:
            assert f.read() == files["1080p/full.mp4"], "s3:// source download differs"
        r = run_tool(s3, ["get", "s3://media/jobs/j1/nope.mp4", h.path("nope.mp4")])
        assert not r["ok"] and r["code"] == "not_found", r
        assert not os.path.exists(h.path("nope.mp4")) and not os.path.exists(h.path("nope.mp4.part"))
        r = run_tool(s3, ["head", "s3://media/jobs/j1/1080p/full.mp4"])
        assert r["ok"] and r["bytes"] == len(files["1080p/full.mp4"]), r

        # 4. Missing bucket: a clear error, not a retry loop.
        r = run_tool(s3, ["put", "s3://no-such-bucket/j/", os.path.join(src, "master.m3u8")])
        assert not r["ok"] and r["code"] == "not_found", r
        assert "no-such-bucket" in r["message"] and "does not exist" in r["message"], r
        assert r["retries"] == 0, r

        # 5. delete_prefix removes a job's objects (ListObjectsV2 paging + DeleteObjects).
        r = run_tool(s3, ["put", "s3://media/jobs/j2/", src], extra=mp)
        assert r["ok"], r
        r = run_tool(s3, ["rm", "s3://media/jobs/", "j2/"])
        assert r["ok"], r
        assert c.list_objects_v2(Bucket="media", Prefix="jobs/j2/")["KeyCount"] == 0
        assert c.list_objects_v2(Bucket="media", Prefix="jobs/j1/")["KeyCount"] == len(files)

        # Faults go through the proxy.
        proxy = FaultProxy(s3.port).start()
        try:
            # 6. 5xx answers and dropped connections: everything still lands intact.
            proxy.reset(fail_rate=0.15, drop_rate=0.08)
            r = run_tool(s3, ["put", "s3://media/jobs/j3/", src], endpoint=proxy.endpoint,
                         extra=mp + ["--verify", "--retries", "8"])
            counts = dict(proxy.counts)
            assert r["ok"], (r, counts)
            assert counts.get("injected_5xx", 0) > 0 and counts.get("dropped", 0) > 0, counts
            assert r["retries"] > 0, r
            check_landed(c, "media", "jobs/j3/", files)
            # none left, except one per CreateMultipartUpload whose answer the
            # proxy dropped after the server acted on it: the client never
            # learns that upload's id (docs/STORAGE.md, "Incomplete uploads")
            assert pending_multipart(c, "media", "jobs/j3/") <= counts.get("initiate_answer_lost", 0), counts
            print("faults: %s, client retries %d: all %d objects intact" % (counts, r["retries"], len(files)))

            # 7. Wrong credentials: SS_EAUTH with a clear message, no retry storm.
            proxy.reset()
            r = run_tool(s3, ["put", "s3://media/jobs/j4/", src], endpoint=proxy.endpoint,
                         env_extra={"AWS_SECRET_ACCESS_KEY": "wrong-secret"})
            counts = dict(proxy.counts)
            assert not r["ok"] and r["code"] == "auth", r
            assert "SignatureDoesNotMatch" in r["message"] and "credentials" in r["message"], r
            assert r["retries"] == 0, r
            # At most one request per transfer slot that was already running.
            assert counts["requests"] <= 16 + 2, counts
            print("wrong secret: %r after %d requests" % (r["message"][:80], counts["requests"]))

            # 8. Server down longer than the retry budget: the failure is reported.
            proxy.reset(down=True)
            t0 = time.monotonic()
            r = run_tool(s3, ["put", "s3://media/jobs/j5/", os.path.join(src, "master.m3u8")],
                         endpoint=proxy.endpoint, extra=["--retries", "3"])
            took = time.monotonic() - t0
            counts = dict(proxy.counts)
            assert not r["ok"] and r["code"] == "network", r
            assert "4 attempts" in r["message"], r
            # 4 attempts (curl may re-send once on a reused connection it finds dead)
            assert r["retries"] == 3 and 4 <= counts["requests"] <= 8, (r, counts)
            assert took < 30, took
            print("server down: %r in %.1fs" % (r["message"][:100], took))
        finally:
            proxy.stop()

        # 9. Abort while a multipart upload runs: cancelled, nothing left pending.
        big = h.path("abort.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(40 * MiB))
        r = run_tool(s3, ["put", "s3://media/jobs/j6/", big], extra=mp + ["--parallel", "2",
                                                                         "--abort-after-ms", "150"])
        assert not r["ok"] and r["code"] == "cancelled", r
        harness.wait_until(lambda: pending_multipart(c, "media", "jobs/j6/") == 0, 20,
                          "aborted multipart uploads gone")
        assert c.list_objects_v2(Bucket="media", Prefix="jobs/j6/")["KeyCount"] == 0

        # 10. Credentials file: refused when others can read it, used when 0600.
        cred = h.path("s3.cred")
        with open(cred, "w") as f:
            f.write("# test\naccess_key = %s\nsecret_key = %s\n" % (s3.access_key, s3.secret_key))
        os.chmod(cred, 0o644)
        noenv = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
        r = run_tool(s3, ["put", "s3://media/jobs/j7/", os.path.join(src, "job.json")],
                     extra=["--credentials-file", cred], env_extra=noenv)
        assert not r["ok"] and r["code"] == "auth" and "chmod 600" in r["message"], r
        os.chmod(cred, 0o600)
        r = run_tool(s3, ["put", "s3://media/jobs/j7/", os.path.join(src, "job.json")],
                     extra=["--credentials-file", cred], env_extra=noenv)
        assert r["ok"], r
        assert s3.secret_key not in json.dumps(r)


if __name__ == "__main__":
    harness.main(test)
