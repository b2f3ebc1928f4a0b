#!/usr/bin/env python3
"""Playable while encoding to an s3:// destination (docs/PLAYABLE.md), read
the way a viewer reads it: a real S3 server that checks signatures (Swift +
s3api), an independent client (boto3) polling the job's objects while two
worker daemons encode a split job.

- Every time a playlist is read, every segment it names is already stored
  (the segments are PUT before the record that lets a playlist name them,
  playlists before the master): no playlist ever names a missing object.
- While the playlists are EVENT, GET answers them with Cache-Control
  `public, max-age=1`; the final (VOD) playlists and master have
  `public, max-age=86400`; segments stay immutable.
- The EVENT playlists only grow, and the VOD ones list the same URIs first.

Long (a Swift server and a 48 s title): skipped unless SS_LONG_TESTS=1.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.harness import Api, Harness, gen_clip, main  # noqa: E402
from lib.s3server import SwiftS3  # noqa: E402
from test_e2e_s3 import listing, worker_env  # noqa: E402

TOKEN = "test-token"


def get(client, key):
    r = client.get_object(Bucket="media", Key=key)
    return r["Body"].read().decode(), r.get("CacheControl", "")


def test_playable_s3():
    if os.environ.get("SS_LONG_TESTS") != "1":
        print("SKIP test_playable_s3 (long; set SS_LONG_TESTS=1)")
        return
    with Harness("playable-s3") as h:
        s3 = SwiftS3(h).start()
        client = s3.client()
        client.create_bucket(Bucket="media")
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        env = dict(worker_env(s3.endpoint, s3), STREAMSCALE_THREADS="1", STREAMSCALE_CHUNK_SECONDS="8")
        h.worker("w1", rport, storage="s3://media/v/", extra=env)
        h.worker("w2", rport, storage="s3://media/v/", extra=env)
        src = gen_clip(h.path("talk.mp4"), seconds=48, size="640x360")
        j = api.submit({"source": "file://" + src, "segment_seconds": 2,
                        "ladder": [{"height": 180}, {"height": 360}], "thumbnails": False})
        prefix = "v/%s/" % j["id"]
        reads, event_reads, longest = 0, 0, {}
        while True:
            state = api.job(j["id"])["state"]
            try:
                master, mcc = get(client, prefix + "master.m3u8")
            except client.exceptions.NoSuchKey:
                assert state in ("queued", "running"), state   # (the plan not claimed yet)
                time.sleep(0.1)
                continue
            uris = [ln for ln in master.splitlines() if ln and not ln.startswith("#")]
            uris += re.findall(r'TYPE=AUDIO[^\n]*URI="([^"]+)"', master)
            texts = {u: get(client, prefix + u) for u in uris}
            stored = listing(client, "media", prefix)   # after the playlists were read
            for u, (text, cc) in texts.items():
                base = prefix + os.path.dirname(u) + "/"
                segs = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
                missing = [s for s in segs if base + s not in stored]
                assert not missing, "%s names segments not stored: %s" % (u, missing[:3])
                assert base + "init.mp4" in stored, u
                assert segs[:len(longest.get(u, []))] == longest.get(u, []), "%s shrank" % u
                longest[u] = segs
                live = "#EXT-X-PLAYLIST-TYPE:EVENT" in text
                assert cc == ("public, max-age=1" if live else "public, max-age=86400"), (u, cc, live)
                event_reads += live
            reads += 1
            if state != "running":
                break
            time.sleep(0.1)
        assert state == "completed", api.job(j["id"])
        assert event_reads > 0, "never saw an EVENT playlist (%d reads)" % reads
        master, mcc = get(client, prefix + "master.m3u8")
        assert mcc == "public, max-age=86400" and "AVERAGE-BANDWIDTH" in master, (mcc, master)
        for u, segs in longest.items():
            text, cc = get(client, prefix + u)
            final = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
            assert "#EXT-X-ENDLIST" in text and final[:len(segs)] == segs, u
        seg = [k for k in listing(client, "media", prefix) if k.endswith(".m4s")][0]
        assert "immutable" in client.head_object(Bucket="media", Key=seg)["CacheControl"]
        print("s3: %d reads of the playlists while encoding (%d EVENT playlist reads), none named a "
              "missing segment; Cache-Control 1 s while EVENT, 1 day when final" % (reads, event_reads))


if __name__ == "__main__":
    main(test_playable_s3)
