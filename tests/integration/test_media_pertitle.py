#!/usr/bin/env python3
"""Per-title ladders end to end (docs/MEDIA.md "Per-title ladder").

Two short generated 640x360 clips with a tone: a still test card with a
small moving box (static) and a test pattern under heavy temporal noise
(high motion/complexity).

- `streamscale-worker encode --ladder per-title` on both: the outputs pass
  the independent checker (lib/check_output.py: playlists, alignment,
  keyframes at segment starts, decodes); job.json says "per-title", has the
  analysis summary (SI/TI, scene cuts, class, windows), the probe points
  and the hull, and every rendition has measured psnr/ssim, a predicted
  PSNR and the reason it was chosen. The two ladders differ: the static
  clip is classed "low" and gets one rung, few bits; the noisy clip is
  "high" and gets more rungs. The static clip's per-title ladder also uses
  fewer bits than its fixed (auto) ladder.
- `--rate-control two-pass` with per-title on the noisy clip: every rung's
  elementary-stream bitrate is within 5 % of the target per-title chose
  (x264's two-pass ABR over the whole clip; the checker passes too); split
  in chunks, job.json still says two-pass with each rung's target.
- `--codecs h264,av1` with per-title on the noisy clip: SVT-AV1 probes at
  the display size; every AV1 rung's CRF, rate and cap are the ones
  per_title.codecs.av1 derived from them (not 1.5x the x264 CRF under
  H.264's cap), the H.264 ladder is unchanged; the same split in chunks.
- The API path: a job with "ladder": "per-title" and "rate_control":
  "two-pass" through the coordinator, Redis and a worker daemon completes;
  its job.json summary carries psnr/ssim per rendition.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import check_output  # noqa: E402
from lib.harness import BIN, Api, Harness, gen_clip, main  # noqa: E402

WORKER = os.path.join(BIN, "streamscale-worker")
TOKEN = "test-token"


def encode(src, out, *opts):
    t0 = time.monotonic()
    r = subprocess.run([WORKER, "encode", src, out, "--segment-seconds", "2", "--no-thumbnails"] +
                       list(opts), capture_output=True, timeout=300)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, "encode %s %s: exit %d\n%s" % (src, opts, r.returncode, err[-3000:])
    problems = check_output.check(out, src)
    assert not problems, "%s %s: checker found:\n  %s" % (src, opts, "\n  ".join(problems))
    with open(os.path.join(out, "job.json")) as f:
        j = json.load(f)
    print("%-12s %-28s %5.1fs  %s" % (os.path.basename(src), " ".join(opts), time.monotonic() - t0,
                                      "  ".join("%s %dk %.2fdB" % (r["name"], r["video_bitrate_es"] // 1000,
                                                                 r["psnr"])
                                                for r in j["renditions"])))
    return j


def total_bytes(j):
    return sum(r["bytes"] for r in j["renditions"])


def check_per_title(j):
    assert j["ladder"] == "per-title", j["ladder"]
    pt = j["per_title"]
    an = pt["analysis"]
    for k in ("mean", "max", "p90"):
        assert an["si"][k] >= 0 and an["ti"][k] >= 0, an
    assert an["class"] in ("low", "medium", "high"), an
    assert isinstance(an["scene_cuts"], list), an
    assert an["windows"] and all(w["frames"] > 0 for w in an["windows"]), an
    assert an["frames"] == sum(w["frames"] for w in an["windows"]), an
    pts = pt["probes"]["points"]
    assert len(pts) >= 3 and any(p["hull"] for p in pts), pts
    for p in pts:
        assert p["kbps"] > 0 and 10 < p["psnr"] <= 100 and 0 < p["ssim"] <= 1, p
    assert pt["seconds"] > 0 and pt["cpu_seconds"] > 0, pt
    assert j["timings"]["analysis"] > 0, j["timings"]
    rates = []
    for r in j["renditions"]:
        assert isinstance(r["psnr"], float) and 10 < r["psnr"] < 100, r
        assert isinstance(r["ssim"], float) and 0 < r["ssim"] <= 1, r
        assert r["quality_frames"] > 0, r
        assert r["why"] and "predicted_psnr" in r, r
        rates.append(r["video_bitrate_es"])
    # smallest first, each rung at least 1.3x the one below (1.5x planned)
    assert all(b > 1.3 * a for a, b in zip(rates, rates[1:])), rates
    heights = [r["height"] for r in j["renditions"]]
    assert heights == sorted(heights) and heights[-1] <= j["source"]["display_height"], heights
    assert len(set(r["name"] for r in j["renditions"])) == len(heights)


def check_av1_per_title(jv, jn):
    pt = jv["per_title"]
    assert pt["rungs"] == jn["per_title"]["rungs"], "AV1 probes changed the H.264 ladder"
    assert pt["codecs"]["h264"]["method"], pt["codecs"]
    av1 = pt["codecs"]["av1"]
    assert av1["encoder"] == "libsvtav1" and av1["method"].startswith("SVT-AV1 probes"), av1
    assert len(av1["points"]) == 3, av1["points"]
    for p in av1["points"]:
        assert p["height"] == jv["source"]["display_height"] and p["kbps"] > 0, p
        assert 10 < p["psnr"] <= 100 and 0 < p["ssim"] <= 1, p
    h264 = {r["name"]: r for r in jv["renditions"] if r["video_codec"] == "h264"}
    ren = {r["name"]: r for r in jv["renditions"] if r["video_codec"] == "av1"}
    plan = {r["name"]: r for r in pt["rungs"]}
    assert sorted(ren) == sorted(r["name"] for r in av1["rungs"]) == \
        sorted("av1-" + n for n in h264), (sorted(ren), av1["rungs"])
    differ = 0
    for a in av1["rungs"]:
        h = plan[a["name"][4:]]
        r = ren[a["name"]]
        # the AV1 rendition was encoded with what per_title.codecs.av1 decided
        assert r["maxrate_kbps"] == a["maxrate_kbps"] and r["crf"] == a["crf"], (r, a)
        assert 0 < a["rate_ratio"] < 3, a
        assert abs(a["target_kbps"] - h["target_kbps"] * a["rate_ratio"]) <= 1 + 0.002 * h["target_kbps"], (a, h)
        assert a["target_kbps"] <= a["maxrate_kbps"] <= max(2 * a["target_kbps"], 200), a
        # the old rule: CRF 1.5x H.264's, H.264's cap
        differ += r["maxrate_kbps"] != h264[a["name"][4:]]["maxrate_kbps"]
        differ += abs(a["crf"] - 1.5 * h["crf"]) > 0.6
    assert differ, "AV1 rungs still use 1.5x the H.264 CRF and H.264's caps"


def test_media_pertitle():
    with Harness("media_pertitle") as h:
        static = gen_clip(h.path("static.mp4"), seconds=8, size="640x360", rate=25,
                          video_src="smptebars", extra_out=[
                              "-vf", "drawbox=x='mod(t*40,600)':y=300:w=20:h=20:color=white:t=fill"])
        noisy = gen_clip(h.path("noisy.mp4"), seconds=8, size="640x360", rate=25,
                         extra_out=["-vf", "noise=alls=30:allf=t+u"])

        js = encode(static, h.path("static-pt"), "--ladder", "per-title")
        jn = encode(noisy, h.path("noisy-pt"), "--ladder", "per-title")
        check_per_title(js)
        check_per_title(jn)
        assert js["per_title"]["analysis"]["class"] == "low", js["per_title"]["analysis"]
        assert jn["per_title"]["analysis"]["class"] == "high", jn["per_title"]["analysis"]
        ladder = lambda j: [(r["width"], r["height"], r["video_bitrate_es"] // 10000)  # noqa: E731
                            for r in j["renditions"]]
        assert ladder(js) != ladder(jn), (ladder(js), ladder(jn))
        assert len(js["renditions"]) < len(jn["renditions"]), (ladder(js), ladder(jn))
        assert total_bytes(js) * 10 < total_bytes(jn), (total_bytes(js), total_bytes(jn))
        # the still picture is coded well: its top rung reaches the quality target
        assert js["renditions"][-1]["psnr"] >= 42, js["renditions"]
        # per-title keyframes: x264 scene-cut I-frames are allowed, segments
        # still start with IDRs at the same instants (the checker above)
        ja = encode(static, h.path("static-auto"), "--ladder", "auto")
        assert ja["ladder"] == "auto" and "per_title" not in ja, ja.keys()
        assert all(isinstance(r["psnr"], float) for r in ja["renditions"]), ja["renditions"]
        assert total_bytes(js) < total_bytes(ja), (total_bytes(js), total_bytes(ja))

        # per codec: with codecs h264,av1 the AV1 rungs' CRF and rates come
        # from SVT-AV1 probes (per_title.codecs.av1), not 1.5x the x264 CRF
        # under H.264's caps; the H.264 ladder is the one without AV1
        jv = encode(noisy, h.path("noisy-av1"), "--ladder", "per-title", "--codecs", "h264,av1")
        check_av1_per_title(jv, jn)
        # split in chunks: the same AV1 CRFs and caps reach the encode and job.json
        jw = encode(noisy, h.path("noisy-av1-split"), "--ladder", "per-title", "--codecs", "h264,av1",
                    "--split", "4")
        assert jw["split"]["chunks"] == 2, jw["split"]
        check_av1_per_title(jw, jn)

        # two-pass: per-title picks the rates, x264's two passes hit them
        jt = encode(noisy, h.path("noisy-2pass"), "--ladder", "per-title", "--rate-control",
                    "two-pass")
        assert jt["rate_control"] == "two-pass", jt["rate_control"]
        check_per_title(jt)
        for r in jt["renditions"]:
            got = r["video_bitrate_es"] / 1000.0
            assert abs(got / r["target_kbps"] - 1) <= 0.05, (r["name"], got, r["target_kbps"])
        assert [r["target_kbps"] for r in jt["renditions"]] == \
            [x["target_kbps"] for x in jn["per_title"]["rungs"]], "two-pass used other rates"
        # split in chunks, each chunk runs both passes: job.json says two-pass
        # and each rung's target (finalize runs no pass of its own)
        jst = encode(static, h.path("static-2pass-split"), "--ladder", "per-title",
                     "--rate-control", "two-pass", "--split", "4")
        assert jst["split"]["chunks"] == 2, jst["split"]
        assert jst["rate_control"] == "two-pass", jst["rate_control"]
        assert all(r["target_kbps"] > 0 and "crf" not in r for r in jst["renditions"]), jst["renditions"]

        # the API path: coordinator -> Redis -> worker daemon
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        h.worker("w1", rport, extra={"STREAMSCALE_POLL_MS": "300"})
        job = api.submit({"source": "file://" + static, "segment_seconds": 2,
                          "ladder": "per-title", "rate_control": "two-pass"})
        done = api.wait_state(job["id"], ("completed", "failed", "dead"), 300)
        assert done["state"] == "completed", done.get("error")
        out = os.path.join(h.path("out"), job["id"])
        problems = check_output.check(out, source=static)
        assert not problems, "\n  ".join(problems)
        with open(os.path.join(out, "job.json")) as f:
            doc = json.load(f)
        assert doc["output"]["ladder"] == "per-title" and doc["output"]["rate_control"] == "two-pass"
        assert doc["output"]["per_title"]["analysis"]["class"] == "low", doc["output"]["per_title"]
        for r in doc["renditions"]:
            assert isinstance(r.get("psnr"), float) and isinstance(r.get("ssim"), float), r


if __name__ == "__main__":
    main(test_media_pertitle)
