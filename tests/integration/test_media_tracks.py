#!/usr/bin/env python3
"""`streamscale-worker encode` on tiny generated clips for what a catalogue
needs beyond one picture and one sound: HDR sources (PQ and HLG) tone-mapped
to SDR BT.709, mirrored pictures (a selfie camera's hflip, a transpose).
Each output passes the independent checker (lib/check_output.py); the facts
specific to each case are checked from the files, not from job.json alone.

HDR band: the mean luma (8-bit code values, 0..255) of our tone-mapped
rendition is within HDR_LUMA_BAND of an SDR reference the ffmpeg CLI makes
from the same HDR clip with the same zscale + tonemap chain (docs/MEDIA.md);
the clip shown untouched (8-bit, no tone-mapping) is far outside it."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import check_output  # noqa: E402
from lib.harness import Harness, main  # noqa: E402
from test_media_corpus import encode, expect_ok  # noqa: E402

HDR_LUMA_BAND = 2.0
TONEMAP = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
           "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p")


def ff(*args):
    subprocess.check_call(["ffmpeg", "-nostdin", "-v", "error", "-y"] + list(args))


def mean_luma(path, vf=None):
    chain = (vf + "," if vf else "") + "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-"
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vf", chain, "-f", "null", "-"],
                       capture_output=True, check=True, timeout=120)
    vals = [float(x.split("=")[1]) for x in r.stdout.decode().split() if x.startswith("lavfi.signalstats.YAVG=")]
    assert vals, "no frames measured in %s" % path
    return sum(vals) / len(vals)


def concat_track(out, rendition, dest):
    d = os.path.join(out, rendition)
    segs = sorted(f for f in os.listdir(d) if f.startswith("seg_"))
    with open(dest, "wb") as f:
        for name in ["init.mp4"] + segs:
            with open(os.path.join(d, name), "rb") as s:
                f.write(s.read())
    return dest


def colr_nclx(init):
    """(primaries, transfer, matrix) of the colr/nclx box in an init segment."""
    i = init.find(b"colrnclx")
    assert i > 0, "init.mp4 has no colr nclx box"
    p = init[i + 8:i + 14]
    return (p[0] << 8 | p[1], p[2] << 8 | p[3], p[4] << 8 | p[5])


def sps_colour(h, cat):
    """Colour description from the H.264 SPS alone (raw Annex B, no container)."""
    raw = cat + ".h264"
    ff("-i", cat, "-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", raw)
    j = json.loads(subprocess.check_output(["ffprobe", "-v", "error", "-select_streams", "v:0",
                                            "-show_entries", "stream=color_transfer,color_primaries,color_space",
                                            "-of", "json", raw]))
    return j["streams"][0]


def case_hdr(h, transfer, tag):
    src = h.path("hdr-%s.mp4" % tag)
    # SDR test picture converted to HDR (10-bit BT.2020) the way a grading tool would tag it
    ff("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=2",
       "-vf", "zscale=tin=bt709:pin=bt709:min=bt709:t=%s:p=bt2020:m=bt2020nc:npl=100,format=yuv420p10le" % transfer,
       "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-color_primaries", "bt2020",
       "-color_trc", transfer, "-colorspace", "bt2020nc", src)

    def facts(j, out, err):
        assert j["source"]["hdr"] == tag, j["source"]
        assert any("tone-mapped to SDR BT.709" in w for w in j["warnings"]), j["warnings"]
        r = j["renditions"][-1]["name"]
        init = open(os.path.join(out, r, "init.mp4"), "rb").read()
        assert colr_nclx(init) == (1, 1, 1), "colr %r, want BT.709 (1, 1, 1)" % (colr_nclx(init),)
        cat = concat_track(out, r, h.path("%s-%s.mp4" % (tag, r)))
        sps = sps_colour(h, cat)
        want = {"color_transfer": "bt709", "color_primaries": "bt709", "color_space": "bt709"}
        assert all(sps.get(k) == v for k, v in want.items()), "SPS VUI says %r" % sps
        ours, ref = mean_luma(cat), mean_luma(src, TONEMAP)
        naive = mean_luma(src, "format=yuv420p")
        print("     %s mean luma: ours %.2f, ffmpeg reference %.2f, untouched %.2f" % (tag, ours, ref, naive))
        assert abs(ours - ref) <= HDR_LUMA_BAND, "mean luma %.2f, reference %.2f" % (ours, ref)
        assert abs(naive - ref) > 3 * HDR_LUMA_BAND, "the band does not tell tone-mapped from untouched"
    expect_ok(h, "hdr-" + tag, src, facts, opts=("--ladder", "180"))


def set_matrix(path, a, b, c, d):
    """Rewrite the video track's tkhd display matrix (ISO/IEC 14496-12) in
    place: [a b 0; c d 0; 0 0 1] in 16.16 fixed point (1.0 = 0x10000)."""
    data = bytearray(open(path, "rb").read())
    i = data.find(b"tkhd")
    while i > 0:
        ver = data[i + 4]
        w = int.from_bytes(data[i + 80 + (12 if ver else 0):i + 84 + (12 if ver else 0)], "big")
        if w:   # the video track has a width; audio's is 0
            m = i + 4 + 4 + (32 if ver else 20) + 8 + 8
            vals = [a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30]
            for k, v in enumerate(vals):
                data[m + 4 * k:m + 4 * k + 4] = (v & 0xffffffff).to_bytes(4, "big")
            open(path, "wb").write(data)
            return
        i = data.find(b"tkhd", i + 4)
    raise AssertionError("no video tkhd in %s" % path)


def psnr(a, b, b_filter):
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-i", a, "-noautorotate", "-i", b,
                        "-lavfi", "[1:v]%s[r];[0:v][r]psnr" % b_filter, "-f", "null", "-"],
                       capture_output=True, timeout=120)
    m = [x for x in r.stderr.decode().split() if x.startswith("average:")]
    assert m, r.stderr.decode()[-500:]
    v = m[-1].split(":")[1]
    return 100.0 if v == "inf" else float(v)


def case_mirror(h, name, matrix, rotation, turn):
    """A clip whose display matrix mirrors (and turns) the picture: the
    output must look like the source with those filters applied."""
    src = h.path("mirror-%s.mp4" % name)
    ff("-f", "lavfi", "-i", "testsrc2=size=192x108:rate=24:duration=2", "-c:v", "libx264",
       "-preset", "ultrafast", "-qp", "10", "-pix_fmt", "yuv420p", src)
    set_matrix(src, *matrix)

    def facts(j, out, err):
        assert j["source"]["mirrored"] is True and j["source"]["rotation"] == rotation, j["source"]
        r = j["renditions"][-1]
        cat = concat_track(out, r["name"], h.path("mirror-%s-out.mp4" % name))
        good, plain = psnr(cat, src, turn), psnr(cat, src, "transpose=clock" if rotation else "null")
        print("     %s: PSNR %.1f dB against the source %s, %.1f dB without the mirror" % (
            name, good, turn, plain))
        assert good > 30 and good > plain + 10, (good, plain)
    expect_ok(h, "mirror-" + name, src, facts, opts=("--ladder", "192" if rotation else "108"))


def test_media_tracks():
    with Harness("media_tracks") as h:
        case_hdr(h, "smpte2084", "pq")
        case_hdr(h, "arib-std-b67", "hlg")
        case_mirror(h, "hflip", (-1, 0, 0, 1), 0, "hflip")
        case_mirror(h, "transpose", (0, 1, 1, 0), 90, "transpose=cclock_flip")


if __name__ == "__main__":
    main(test_media_tracks)
