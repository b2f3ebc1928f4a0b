#!/usr/bin/env python3
"""`streamscale-worker encode` on tiny generated clips for what a catalogue
needs beyond one picture and one sound: HDR sources (PQ and HLG) tone-mapped
to SDR BT.709, mirrored pictures (a selfie camera's hflip, a transpose),
every audio track as its own rendition (languages, default, title, roles,
a 5.1 rendition next to the stereo one), an AV1 ladder next to H.264 (both
split across items, byte-identical to one process's), the MP4 download,
an audio-only source with cover art.
Each output passes the independent checker (lib/check_output.py); the facts
specific to each case are checked from the files, not from job.json alone.

HDR band: the mean luma (8-bit code values, 0..255) of our tone-mapped
rendition is within HDR_LUMA_BAND of an SDR reference the ffmpeg CLI makes
from the same HDR clip with the same zscale + tonemap chain (docs/MEDIA.md);
the clip shown untouched (8-bit, no tone-mapping) is far outside it."""
import json
import os
import re
import shutil
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


def case_audio_tracks(h):
    """Three audio streams: English 5.1, French (default), German commentary
    with a title; every one published, plus a 5.1 rendition (--surround)."""
    src = h.path("multi.mkv")
    ff("-f", "lavfi", "-i", "testsrc2=size=192x108:rate=24:duration=2",
       "-f", "lavfi", "-i", "sine=frequency=300:duration=2:sample_rate=48000",
       "-f", "lavfi", "-i", "sine=frequency=500:duration=2:sample_rate=44100",
       "-f", "lavfi", "-i", "sine=frequency=700:duration=2",
       "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-preset", "ultrafast",
       "-c:a", "aac", "-filter:a:0", "aformat=channel_layouts=5.1",
       "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre",
       "-metadata:s:a:2", "language=ger", "-metadata:s:a:2", "title=Director's \"cut\"",
       "-disposition:a:0", "0", "-disposition:a:1", "default", "-disposition:a:2", "comment", src)

    def facts(j, out, err):
        got = [(t["name"], t["language"], t["channels"], t["default"], t["role"]) for t in j["audio_tracks"]]
        want = [("audio", "en", 2, False, "main"), ("audio_51", "en", 6, False, "main"),
                ("audio_1", "fr", 2, True, "main"), ("audio_2", "de", 2, False, "commentary")]
        assert got == want, got
        assert j["audio"]["name"] == "audio_1", j["audio"]
        assert not j["warnings"], j["warnings"]
        m = check_output.parse_master(open(os.path.join(out, "master.m3u8")).read())
        media = {(x["GROUP-ID"], x["URI"].split("/")[0]): x for x in m["media"] if x["TYPE"] == "AUDIO"}
        assert sorted(media) == [("audio", "audio"), ("audio", "audio_1"), ("audio", "audio_2"),
                                 ("audio-51", "audio_51")], sorted(media)
        assert [media[("audio", n)]["DEFAULT"] for n in ("audio", "audio_1", "audio_2")] == ["NO", "YES", "NO"]
        assert media[("audio", "audio_1")]["NAME"] == "French"
        assert media[("audio", "audio_2")]["NAME"] == "Director's 'cut'", media[("audio", "audio_2")]
        assert media[("audio-51", "audio_51")]["CHANNELS"] == "6"
        assert sorted(v["AUDIO"] for v in m["variants"]) == ["audio", "audio-51"]
        mpd = open(os.path.join(out, "manifest.mpd")).read()
        assert re.search(r'lang="de">\s*<AudioChannelConfiguration[^>]*value="2"/>\s*'
                         r'<Label>Director\'s &quot;cut&quot;</Label>\s*'
                         r'<Role schemeIdUri="urn:mpeg:dash:role:2011" value="commentary"/>', mpd), mpd
        assert re.search(r'lang="fr">\s*<AudioChannelConfiguration[^>]*/>\s*<Label>French</Label>\s*'
                         r'<Role [^>]*value="main"/>', mpd)
        # the checker catches what a player would trip on
        for path, a, b, want in [
                ("master.m3u8", r'CHANNELS="6"', 'CHANNELS="2"', r"CHANNELS=2, decoded 6|mixes channel"),
                ("master.m3u8", r'LANGUAGE="fr"', 'LANGUAGE="fre_FR"', r"not a BCP 47"),
                ("master.m3u8", r'DEFAULT=NO', 'DEFAULT=YES', r"more than one DEFAULT=YES"),
                ("master.m3u8", r'NAME="French"', 'NAME="English"', r"repeats a NAME"),
                ("manifest.mpd", r'<Role [^>]*value="commentary"/>', '', r"without a Role"),
                ("manifest.mpd", r'lang="de"', 'lang="fr"', r"lang fr, HLS LANGUAGE de"),
                ("manifest.mpd", r'<Label>French</Label>', '<Label>Deutsch</Label>', r"Label 'Deutsch', HLS NAME")]:
            d = h.path("broken-audio")
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(out, d)
            p = os.path.join(d, path)
            text = open(p).read()
            assert re.search(a, text), (path, a)
            open(p, "w").write(re.sub(a, b, text, count=1))
            problems = check_output.check(d, src)
            assert any(re.search(want, x) for x in problems), (want, problems)
    expect_ok(h, "audio-tracks", src, facts, opts=("--ladder", "108", "--surround", "--no-quality"))

    # a list of languages: English (5.1 here without --surround) and German
    # ... and the MP4 download: H.264 + the default of those (English), moov first
    def some(j, out, err):
        assert [(t["language"], t["channels"]) for t in j["audio_tracks"]] == [("en", 2), ("de", 2)]
        assert any("3 audio streams: 2 published" in w for w in j["warnings"]), j["warnings"]
        dl = j["download"]
        assert (dl["path"], dl["rendition"], dl["audio"]) == ("download.mp4", "108p", "audio"), dl
        data = open(os.path.join(out, "download.mp4"), "rb").read()
        assert dl["bytes"] == len(data)
        assert 0 < data.find(b"moov") < data.find(b"mdat") and data.find(b"moof") < 0, "not faststart"
        p = check_output.ffprobe_json(["-show_entries", "stream=codec_name,channels,width,height:format=duration",
                                       os.path.join(out, "download.mp4")])
        got = [(x["codec_name"], x.get("width") or x.get("channels")) for x in p["streams"]]
        assert got == [("h264", 192), ("aac", 2)], got
        assert abs(float(p["format"]["duration"]) - 2.0) < 0.1, p["format"]
        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i",
                            os.path.join(out, "download.mp4"), "-f", "null", "-"], capture_output=True)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    expect_ok(h, "audio-tracks-list", src, some, opts=("--ladder", "108", "--audio-tracks", "ger,en",
                                                       "--no-quality", "--no-thumbnails", "--mp4", "108"))


def case_audio_split(h):
    """Every audio rendition and the AV1 ladder of a split title
    (docs/SPLIT.md): the audio item encodes every track and each chunk its
    AV1 segments (SVT-AV1 restarts at each segment boundary anyway), all
    byte-identical to one process's; job.json lists the same tracks. The
    source's audio runs a little past its video (as muxers leave it), so
    the last chunk gets no frame: SVT-AV1 hung closing such an encoder."""
    src = h.path("split-audio.mkv")
    ff("-f", "lavfi", "-i", "testsrc2=size=192x108:rate=24:duration=6",
       "-f", "lavfi", "-i", "sine=frequency=300:duration=6:sample_rate=48000",
       "-f", "lavfi", "-i", "sine=frequency=500:duration=6:sample_rate=48000",
       "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
       "-filter:a:0", "aformat=channel_layouts=5.1", "-metadata:s:a:0", "language=eng",
       "-metadata:s:a:1", "language=fre", "-metadata:s:a:1", "title=Doublage", "-disposition:a:0", "default",
       "-disposition:a:1", "0", src)
    common = ("--ladder", "108", "--segment-seconds", "1", "--surround", "--no-thumbnails", "--no-quality",
              "--codecs", "h264,av1")
    one, one_out = expect_ok(h, "audio-one-process", src, opts=common + ("--split", "off"))

    def facts(j, out, err):
        assert j["split"]["chunks"] >= 2, j.get("split")
        assert j["audio_tracks"] == one["audio_tracks"], (j["audio_tracks"], one["audio_tracks"])
        assert [t["name"] for t in j["audio_tracks"]] == ["audio", "audio_51", "audio_1"], j["audio_tracks"]
        assert set(j["split"]["init_crc"]) == {"108p", "av1-108p"}, j["split"]
        for name in [t["name"] for t in j["audio_tracks"]] + ["av1-108p"]:
            files = sorted(os.listdir(os.path.join(one_out, name)))
            assert files == sorted(os.listdir(os.path.join(out, name))), name
            for f in files:
                a, b = (open(os.path.join(d, name, f), "rb").read() for d in (out, one_out))
                assert a == b, "%s/%s differs from the one-process encode" % (name, f)
        print("     split: %d chunks of %s s" % (j["split"]["chunks"], j["split"]["chunk_seconds"]))
        assert not any("not split" in w for w in j["warnings"]), j["warnings"]
    expect_ok(h, "audio-split", src, facts, opts=common + ("--split", "2"))


def case_av1(h):
    """An AV1 ladder next to H.264 on a grid whose segments differ by a frame
    (25 fps, 1.5 s: 38, 37, 38, ... frames), which SVT-AV1 can only follow
    by restarting at each boundary."""
    src = h.path("av1-src.mp4")
    ff("-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25:duration=4", "-f", "lavfi", "-i",
       "sine=frequency=440:duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", src)

    def facts(j, out, err):
        got = [(r["name"], r["video_codec"]) for r in j["renditions"]]
        assert got == [("144p", "h264"), ("av1-144p", "av1")], got
        m = check_output.parse_master(open(os.path.join(out, "master.m3u8")).read())
        codecs = sorted(v["CODECS"].split(",")[0][:4] for v in m["variants"])
        assert codecs == ["av01", "avc1"], codecs
        mpd = open(os.path.join(out, "manifest.mpd")).read()
        assert mpd.count('contentType="video"') == 2, mpd
        segs = sorted(f for f in os.listdir(os.path.join(out, "av1-144p")) if f.startswith("seg_"))
        assert len(segs) == 3, segs   # 38 + 37 + 25 frames
    expect_ok(h, "av1", src, facts, opts=("--ladder", "144", "--codecs", "h264,av1",
                                           "--segment-seconds", "1.5", "--no-thumbnails"))


def case_audio_only(h):
    """A podcast: AAC with embedded cover art, no video stream."""
    src = h.path("podcast.m4a")
    ff("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i",
       "testsrc2=size=300x300:duration=1", "-map", "0", "-map", "1", "-frames:v", "1", "-c:a", "aac",
       "-c:v", "mjpeg", "-disposition:v", "attached_pic", "-metadata:s:a", "language=eng", src)

    def facts(j, out, err):
        assert j["source"]["audio_only"] is True and j["renditions"] == [], j["source"]
        assert [t["name"] for t in j["audio_tracks"]] == ["audio"], j["audio_tracks"]
        assert abs(j["duration"] - 3.0) < 0.1, j["duration"]
        m = check_output.parse_master(open(os.path.join(out, "master.m3u8")).read())
        assert [(v["URI"], v["CODECS"]) for v in m["variants"]] == [("audio/playlist.m3u8", "mp4a.40.2")], m
        assert not m["iframes"]
        mpd = open(os.path.join(out, "manifest.mpd")).read()
        assert 'contentType="video"' not in mpd and 'contentType="audio"' in mpd
        p = check_output.ffprobe_json(["-show_entries", "stream=codec_name,width,height",
                                       os.path.join(out, "thumbs", "poster.jpg")])
        assert (p["streams"][0]["width"], p["streams"][0]["height"]) == (300, 300), p
        # what needs a picture (or 5.1) is not silently dropped: one warning each
        want = ["source has no video: mp4 ignored (no picture to download)",
                "source has no video: codecs av1 ignored (no video to encode)",
                "audio.surround: no published audio track has 5.1 or more channels: stereo only"]
        assert [w for w in j["warnings"] if w in want] == want, j["warnings"]
        assert "download" not in j or j["download"] is None, j["download"]
        assert not os.path.exists(os.path.join(out, "download.mp4"))
    expect_ok(h, "audio-only", src, facts, expect_audio=True,
              opts=("--mp4", "top", "--codecs", "h264,av1", "--surround"))


def test_media_tracks():
    with Harness("media_tracks") as h:
        case_audio_only(h)
        case_av1(h)
        case_audio_tracks(h)
        case_audio_split(h)
        case_hdr(h, "smpte2084", "pq")
        case_hdr(h, "arib-std-b67", "hlg")
        case_mirror(h, "hflip", (-1, 0, 0, 1), 0, "hflip")
        case_mirror(h, "transpose", (0, 1, 1, 0), 90, "transpose=cclock_flip")


if __name__ == "__main__":
    main(test_media_tracks)
