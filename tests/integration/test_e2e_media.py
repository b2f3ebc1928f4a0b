"""The media fields of a job spec through the whole path (issue 16): HTTP API
-> Redis -> a real worker -> file:// output, every API answer and event
checked against proto/ by the harness, job.json and the files checked here.

- a title with three audio streams (English 5.1 default, French, German),
  with `audio` {tracks: [fr, en], surround}, `codecs` [h264, av1], `mp4`
  {height} and `split` 2: the published tracks (English stereo and 5.1,
  French), the AV1 ladder next to H.264, download.mp4 (its URL in the
  result and in job.completed), and a warning that the job was not split
  (one worker makes the download); the independent checker passes;
- the same title split (`split` 2, every track, 5.1, AV1): the audio item
  encodes every rendition, the chunks both ladders, finalize lists them all;
- an audio-only source (cover art) with `mp4` and AV1: an audio-only package,
  no download, and one warning for each option it could not honour;
- specs the API must refuse with 400: AV1 alone, an unknown codec, a
  malformed `mp4`, `audio.tracks` of the wrong type."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import check_output  # noqa: E402
from lib.harness import Api, Harness, http_json, main  # noqa: E402

TOKEN = "test-token"


def ff(*args):
    subprocess.check_call(["ffmpeg", "-nostdin", "-v", "error", "-y"] + list(args))


def sources(h):
    multi = h.path("multi.mkv")
    ff("-f", "lavfi", "-i", "testsrc2=size=192x108:rate=24:duration=4",
       "-f", "lavfi", "-i", "sine=frequency=300:duration=4:sample_rate=48000",
       "-f", "lavfi", "-i", "sine=frequency=500:duration=4:sample_rate=48000",
       "-f", "lavfi", "-i", "sine=frequency=700:duration=4:sample_rate=48000",
       "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-preset", "ultrafast",
       "-c:a", "aac", "-filter:a:0", "aformat=channel_layouts=5.1",
       "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre", "-metadata:s:a:2", "language=ger",
       "-disposition:a:0", "default", "-disposition:a:1", "0", "-disposition:a:2", "0", multi)
    podcast = h.path("podcast.m4a")
    ff("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i",
       "testsrc2=size=200x200:duration=1", "-map", "0", "-map", "1", "-frames:v", "1", "-c:a", "aac",
       "-c:v", "mjpeg", "-disposition:v", "attached_pic", podcast)
    return multi, podcast


def finished(h, api, jid):
    j = api.wait_state(jid, ("completed", "failed", "dead"), 300)
    assert j["state"] == "completed", j.get("error")
    out = os.path.join(h.path("out"), jid)
    with open(os.path.join(out, "job.json")) as f:
        doc = json.load(f)
    done = [e for e in api.events(jid) if e["type"] == "job.completed"]
    assert len(done) == 1, [e["type"] for e in api.events(jid)]
    return j, doc, out, done[0]["data"]


def test_e2e_media():
    with Harness("e2e-media") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        h.worker("w1", rport, extra={"STREAMSCALE_THREADS": "2", "STREAMSCALE_POLL_MS": "300"})
        multi, podcast = sources(h)

        # ---- refused at the door: 400 with a message naming the field
        for spec, field in [({"codecs": ["av1"]}, "codecs"), ({"codecs": ["h264", "vp9"]}, "codecs"),
                            ({"mp4": {"height": "top"}}, "mp4"), ({"audio": {"tracks": 7}}, "audio.tracks"),
                            ({"audio": {"surround": "yes"}}, "audio.surround")]:
            st, body = http_json("POST", url + "/v1/jobs", dict(spec, source="file://" + multi), token=TOKEN)
            assert st == 400 and field in body["error"]["message"], (spec, st, body)

        # ---- every chosen track, AV1, the download; split asked but not done
        spec = {"source": "file://" + multi, "segment_seconds": 1, "ladder": [{"height": 108}],
                "audio": {"tracks": ["fr", "en"], "surround": True}, "codecs": ["h264", "av1"],
                "mp4": {"height": 108}, "split": 2}
        j = api.submit(spec)
        assert j["spec"]["codecs"] == ["h264", "av1"] and j["spec"]["mp4"] == {"height": 108}, j["spec"]
        assert j["spec"]["audio"]["tracks"] == ["fr", "en"] and j["spec"]["audio"]["surround"] is True, j["spec"]
        j, doc, out, completed = finished(h, api, j["id"])
        o = doc["output"]
        got = [(t["name"], t["language"], t["channels"], t["default"]) for t in o["audio_tracks"]]
        assert got == [("audio", "en", 2, True), ("audio_51", "en", 6, True), ("audio_1", "fr", 2, False)], got
        assert [(r["name"], r["video_codec"]) for r in doc["renditions"]] == [("108p", "h264"), ("av1-108p", "av1")], \
            doc["renditions"]
        assert o["download"]["rendition"] == "108p" and os.path.getsize(os.path.join(out, "download.mp4")) == \
            o["download"]["bytes"], o["download"]
        for where in (doc["urls"], j["result"]["urls"], completed["output"]):
            assert where["download"].endswith(j["id"] + "/download.mp4"), where
        assert [r.get("video_codec") for r in completed["renditions"]] == ["h264", "av1"], completed["renditions"]
        warn = o["warnings"]
        assert any(re.match(r"not split across workers \(it would make \d+ chunks\): a job with an MP4 download", w)
                   for w in warn), warn
        assert any("3 audio streams: 2 published" in w for w in warn), warn
        assert not j.get("items") and "split" not in o, (j.get("items"), o.get("split"))
        problems = check_output.check(out, source=multi)
        assert not problems, "\n  ".join(problems)
        print("multi: %s; warnings: %s" % (", ".join("%s %s %dch" % g[:3] for g in got), warn))

        # ---- every audio track of a split job: the audio item encodes them all
        j = api.submit({"source": "file://" + multi, "segment_seconds": 1, "ladder": [{"height": 108}],
                        "audio": {"surround": True}, "codecs": ["h264", "av1"], "split": 2})
        j, doc, out, completed = finished(h, api, j["id"])
        assert [x["name"] for x in j["items"]][-1] == "finalize" and doc["output"]["split"]["chunks"] >= 2, \
            j["items"]
        got = [(t["name"], t["language"], t["channels"]) for t in doc["output"]["audio_tracks"]]
        assert got == [("audio", "en", 2), ("audio_51", "en", 6), ("audio_1", "fr", 2), ("audio_2", "de", 2)], got
        assert [r["video_codec"] for r in doc["renditions"]] == ["h264", "av1"], doc["renditions"]
        assert set(doc["output"]["split"]["init_crc"]) == {"108p", "av1-108p"}, doc["output"]["split"]
        problems = check_output.check(out, source=multi)
        assert not problems, "\n  ".join(problems)
        print("split: %d chunks, audio %s" % (doc["output"]["split"]["chunks"], [g[0] for g in got]))

        # ---- audio-only: what needs a picture is said, not silently dropped
        j = api.submit({"source": "file://" + podcast, "segment_seconds": 2, "mp4": True,
                        "codecs": ["h264", "av1"]})
        j, doc, out, completed = finished(h, api, j["id"])
        o = doc["output"]
        assert o["source"]["audio_only"] is True and doc["renditions"] == [], o["source"]
        assert "download" not in doc["urls"] and "download" not in completed["output"], doc["urls"]
        assert not os.path.exists(os.path.join(out, "download.mp4"))
        for w in ("source has no video: mp4 ignored (no picture to download)",
                  "source has no video: codecs av1 ignored (no video to encode)"):
            assert w in o["warnings"] and w in j["result"]["output"]["warnings"], o["warnings"]
        assert os.path.isfile(os.path.join(out, "thumbs", "poster.jpg"))
        problems = check_output.check(out, source=podcast, expect_audio=True)
        assert not problems, "\n  ".join(problems)
        print("audio-only: warnings %s" % o["warnings"])


if __name__ == "__main__":
    main(test_e2e_media)
