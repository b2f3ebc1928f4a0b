#!/usr/bin/env python3
"""One title across workers (docs/SPLIT.md): a job split into time chunks.

- `streamscale-worker encode --split 3` on a 12 s clip with 1 s segments
  (4 chunks, run on threads): the output passes the independent checker
  (lib/check_output.py, which also checks that every fragment's tfdt
  continues the one before and the moof sequence numbers count up, as if
  one muxer had written the track); job.json says 4 chunks whose init
  segments were byte-identical per rung (x264 `stitchable`; finalize
  compares their CRCs and fails otherwise); the top rung's PSNR is close
  to the unsplit encode's and the bytes within a few per cent; segment
  numbers, tfdt and moof sequence numbers equal the unsplit encode's.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import check_output  # noqa: E402
from lib.harness import BIN, Harness, gen_clip, main  # noqa: E402

WORKER = os.path.join(BIN, "streamscale-worker")


def encode(src, out, *opts):
    r = subprocess.run([WORKER, "encode", src, out, "--segment-seconds", "1", "--ladder", "144,240",
                        "--thumb-interval", "2"] + list(opts), capture_output=True, timeout=300)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, "encode %s: exit %d\n%s" % (opts, r.returncode, err[-3000:])
    problems = check_output.check(out, src)
    assert not problems, "%s: checker found:\n  %s" % (opts, "\n  ".join(problems))
    with open(os.path.join(out, "job.json")) as f:
        return json.load(f)


def fragments(out, rung):
    d = os.path.join(out, rung)
    segs = sorted(x for x in os.listdir(d) if x.startswith("seg_"))
    return [check_output.fragment_times(open(os.path.join(d, s), "rb").read()) for s in segs]


def test_split_cli(h):
    src = gen_clip(h.path("clip.mp4"), seconds=12, size="320x240", rate=25)
    whole = encode(src, h.path("whole"))
    split = encode(src, h.path("split"), "--split", "3")
    assert "split" not in whole, whole.get("split")
    s = split["split"]
    assert s["chunks"] == 4 and s["chunk_segments"] == 3, s
    assert set(s["init_crc"]) == {"144p", "240p"}, s
    assert set(split["items"]) == {"c0", "c1", "c2", "c3", "audio"}, split["items"]
    assert all(v["cpu_seconds"] >= 0 for v in split["items"].values()), split["items"]
    assert split["segment_count"] == whole["segment_count"] == 12
    assert split["duration"] == whole["duration"]
    assert split["audio"]["bytes"] == whole["audio"]["bytes"], (split["audio"], whole["audio"])
    for a, b in zip(whole["renditions"], split["renditions"]):
        assert a["name"] == b["name"] and a["frames"] == b["frames"], (a, b)
        assert abs(a["bytes"] - b["bytes"]) <= 0.05 * a["bytes"], (a["bytes"], b["bytes"])
        assert abs(a["psnr"] - b["psnr"]) < 0.5, (a["psnr"], b["psnr"])
        # the same timeline and numbering as one encoder and one muxer
        assert fragments(h.path("whole"), a["name"]) == fragments(h.path("split"), a["name"])
    assert split["thumbnails"] and os.path.isfile(h.path("split", "thumbs", "sprite.jpg"))
    print("split cli: %s" % "  ".join("%s %d B %.3f dB (whole %d B %.3f dB)" % (
        b["name"], b["bytes"], b["psnr"], a["bytes"], a["psnr"])
        for a, b in zip(whole["renditions"], split["renditions"])))


def test_split():
    with Harness("split") as h:
        test_split_cli(h)


if __name__ == "__main__":
    main(test_split)
