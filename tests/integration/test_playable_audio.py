#!/usr/bin/env python3
"""The early master does not wait for the whole title's audio, and declares
what the final one will (docs/PLAYABLE.md).

Two worker daemons (test_playable.py's: one encoder thread each, 8 s
chunks; 2 s segments) split a 90 s title at a tiny size, with a subtitle
track: chunk 0 (two segments) takes a fraction of a second, the audio item
(90 s of AAC, the subtitles) several. The audio item reports its progress
(the segments it has stored so far) while it encodes, so:

- the job becomes playable (job.playable, validated against proto/ like
  every event and API answer) while the audio item is still running:
  the first poll that sees the playable URL sees it running, and
  `playable_at` is well before its `finished_at`; the EVENT playlists name
  only stored segments, the audio's listing no more than the rungs';
- the early master lists every rung's I-frame playlist (EVENT, as long as
  the rung's playlist). The other worker is then stopped (SIGSTOP) at the
  start of a chunk, so the job stays running with a gap; once the audio
  item is done, the early master (still no AVERAGE-BANDWIDTH) declares
  the subtitles too, their playlist and file stored.

Then the worker goes on and the job is cancelled (completion is
test_playable.py's part).
"""
import os
import re
import signal
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.harness import Harness, gen_clip, main, wait_until  # noqa: E402
from test_playable import hold_worker, two_workers  # noqa: E402


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def segments(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text, re.findall(r"#EXTINF:[0-9.]+,\n(seg_\d{5}\.m4s)\n", text)


def test_playable_audio():
    with Harness("playable-audio") as h:
        srt = h.path("talk.srt")
        with open(srt, "w") as f:
            for i in range(1, 10):
                f.write("%d\n00:00:%02d,000 --> 00:00:%02d,500\nline %d\n\n" % (i, i * 5, i * 5 + 2, i))
        src = gen_clip(h.path("long.mp4"), seconds=90, size="192x108", rate=10, extra_in=["-i", srt],
                       extra_out=["-map", "0", "-map", "1", "-map", "2", "-c:s", "mov_text",
                                  "-metadata:s:s:0", "language=eng"])
        _, api, rport = two_workers(h)
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

        # hold the other worker at the start of a chunk: a gap stays
        def held(j):
            it = {i["name"]: i for i in j["items"]}
            for n, i in it.items():
                if (i["kind"] == "chunk" and i["state"] == "running" and i["worker"] and
                        i["worker"] != it["audio"]["worker"] and (i.get("progress") or 0) < 30):
                    return n, i["worker"]
            return None
        chunk, who = hold_worker(h, api, rport, jid, held, "the other worker to start a chunk",
                                 alone=False)
        try:
            # well before the audio item was done
            def audio_done():
                a = {i["name"]: i for i in api.job(jid)["items"]}["audio"]
                return a if a["state"] == "done" else None
            a = wait_until(audio_done, 120, "the audio item to be done", interval=0.1)
            lead = ts(a["finished_at"]) - ts(j["playable_at"])
            print("the audio item was done %.2f s after the job became playable (%s held on %s)" % (
                lead, chunk, who))
            assert lead > 1.0, (j["playable_at"], a["finished_at"])

            # the early master now declares the subtitles, and the I-frame playlists
            with open(os.path.join(out, "master.m3u8"), encoding="utf-8") as f:
                master = f.read()
            assert "AVERAGE-BANDWIDTH" not in master and api.job(jid)["state"] == "running", master
            assert master.count("#EXT-X-I-FRAME-STREAM-INF:") == 1, master
            assert 'URI="108p/iframes.m3u8"' in master, master
            subs = re.findall(r'#EXT-X-MEDIA:TYPE=SUBTITLES,.*URI="(subtitles/[^"]+)"', master)
            assert len(subs) == 1 and 'SUBTITLES="subs"' in master, master
            with open(os.path.join(out, subs[0]), encoding="utf-8") as f:
                vtts = re.findall(r"\n([^#\n]+\.vtt)\n", f.read())
            assert vtts and os.path.getsize(os.path.join(out, "subtitles", vtts[0])) > 0, vtts
            text, segs = segments(os.path.join(out, "108p", "playlist.m3u8"))
            with open(os.path.join(out, "108p", "iframes.m3u8"), encoding="utf-8") as f:
                itext = f.read()
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in itext and "#EXT-X-I-FRAMES-ONLY" in itext, itext
            assert "#EXT-X-ENDLIST" not in itext, itext
            iseg = re.findall(r"#EXT-X-BYTERANGE:(\d+)@0\n(seg_\d{5}\.m4s)\n", itext)
            assert [u for _, u in iseg] == segs, (iseg, segs)
            for n, u in iseg:
                assert 0 < int(n) <= os.path.getsize(os.path.join(out, "108p", u)), (n, u)
            print("early master: %d segment(s), I-frame playlist, subtitles %s" % (len(segs), subs[0]))
        finally:
            h.send_signal(who, signal.SIGCONT)
        api.cancel(jid)   # (or it completed meanwhile)
        api.wait_state(jid, ("cancelled", "completed"), 60)


if __name__ == "__main__":
    main(test_playable_audio)
