#!/usr/bin/env python3
"""The early master does not wait for the whole title's audio
(docs/PLAYABLE.md "Schedule"): the audio item reports its progress (the
segments it has stored so far) while it encodes, so the master is published
as soon as chunk 0 of every rung and the audio covering it are stored.

Two worker daemons (test_playable.py's: one encoder thread each, 8 s
chunks; 2 s segments) split a 90 s title at a tiny size: chunk 0 (two
segments) takes a fraction of a second, the audio item (90 s of AAC)
several. The job becomes playable
(job.playable, validated against proto/ like every event and API answer)
while the audio item is still running: `playable_at` is well before the
audio item's `finished_at`, and the first poll that sees the playable URL
sees the audio item running. The EVENT playlists name only stored
segments, the audio's listing no more than the rungs'. The job is cancelled
then (completion is test_playable.py's part).
"""
import os
import re
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.harness import Harness, gen_clip, main, wait_until  # noqa: E402
from test_playable import two_workers  # noqa: E402


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def segments(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text, re.findall(r"#EXTINF:[0-9.]+,\n(seg_\d{5}\.m4s)\n", text)


def test_playable_audio():
    with Harness("playable-audio") as h:
        src = gen_clip(h.path("long.mp4"), seconds=90, size="192x108", rate=10)
        _, api = two_workers(h)
        jid = api.submit({"source": "file://" + src, "segment_seconds": 2,
                          "ladder": [{"height": 108}], "thumbnails": {"enabled": False}})["id"]
        out = h.path("out", jid)

        def playable():
            h.assert_alive()
            j = api.job(jid)
            assert j["state"] == "running", "the job ended before it was playable: %s" % j
            return j if j.get("playable_url") else None
        j = wait_until(playable, 120, "the job to become playable", interval=0.05)
        audio = {i["name"]: i for i in j["items"]}["audio"]
        print("playable after %.2f s; the audio item is %s (%.0f %%)" % (
            j["timings"]["first_playable_seconds"], audio["state"], audio.get("progress") or 0))
        assert audio["state"] == "running", "playable only once the audio item was %s" % audio["state"]

        # what is listed is stored; the audio lists no more than the rungs
        listed = {}
        for name in ("108p", "audio"):
            text, segs = segments(os.path.join(out, name, "playlist.m3u8"))
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text, text
            assert len(segs) >= 2 and segs == ["seg_%05d.m4s" % i for i in range(len(segs))], (name, segs)
            for s in segs:
                assert os.path.getsize(os.path.join(out, name, s)) > 0, (name, s)
            listed[name] = segs
        assert listed["audio"] == listed["108p"][:len(listed["audio"])], listed
        ev = [e for e in api.events(jid) if e["type"] == "job.playable"]
        assert len(ev) == 1 and ev[0]["data"]["url"] == j["playable_url"], ev

        # and well before the audio item was done
        def audio_done():
            a = {i["name"]: i for i in api.job(jid)["items"]}["audio"]
            return a if a["state"] == "done" else None
        a = wait_until(audio_done, 120, "the audio item to be done", interval=0.1)
        lead = ts(a["finished_at"]) - ts(j["playable_at"])
        print("the audio item was done %.2f s after the job became playable" % lead)
        assert lead > 1.0, (j["playable_at"], a["finished_at"])
        api.cancel(jid)   # (or it completed meanwhile)
        api.wait_state(jid, ("cancelled", "completed"), 60)


if __name__ == "__main__":
    main(test_playable_audio)
