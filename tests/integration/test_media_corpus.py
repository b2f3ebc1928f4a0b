#!/usr/bin/env python3
"""`streamscale-worker encode` over the media corpus (tests/media/make_corpus.sh
and the fetched real files): every file either packages and passes the
independent checker (lib/check_output.py) plus the facts specific to it, or
fails with exit code 1 and the expected readable reason. The process never
dies from a signal and never hangs (each run has a timeout). Also: Ctrl-C
cancels within a second, packaging options are honoured, and the checker
itself catches broken outputs.

The cases are independent: they run two at a time (a small clip's encode and
its check keep about one core busy; ffprobe and ffmpeg start slowly), and
the first one that failed, in the order below, fails the test. Ctrl-C and the
checker's own cases run after them, alone."""
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import check_output  # noqa: E402
from lib.harness import BIN, MEDIA_CACHE, SOURCE, Harness, gen_clip, main, media  # noqa: E402

WORKER = os.path.join(BIN, "streamscale-worker")
CORPUS = os.path.join(MEDIA_CACHE, "corpus")
TIMEOUT = 120


def encode(src, out, *opts):
    t0 = time.monotonic()
    try:
        r = subprocess.run([WORKER, "encode", src, out] + list(opts), capture_output=True,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError("encode of %s hung (> %d s)" % (src, TIMEOUT))
    err = r.stderr.decode(errors="replace")
    if r.returncode < 0:
        raise AssertionError("encode of %s died from signal %d:\n%s" % (src, -r.returncode, err[-2000:]))
    return r.returncode, err, time.monotonic() - t0


def job(out):
    with open(os.path.join(out, "job.json")) as f:
        return json.load(f)


def rendition(j, name=None):
    rs = j["renditions"]
    return rs[-1] if name is None else next(r for r in rs if r["name"] == name)


class Cases:
    """Runs cases two at a time; finish() waits for all of them and raises
    the failure of the first case (in the order they were added) that
    failed."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.futures = []

    def add(self, fn, *args, **kw):
        f = self.pool.submit(fn, *args, **kw)
        self.futures.append(f)
        return f

    def finish(self):
        try:
            for f in self.futures:
                f.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


CASES = None   # the Cases of the running test: expect_ok/expect_fail add to it


def expect_ok(*args, **kw):
    """run_ok as one of this test's cases (a future); without them (another
    test imports this one), run_ok itself, at once."""
    return CASES.add(run_ok, *args, **kw) if CASES else run_ok(*args, **kw)


def expect_fail(*args, **kw):
    return CASES.add(run_fail, *args, **kw) if CASES else run_fail(*args, **kw)


def run_ok(h, name, src, facts=None, opts=(), check_duration=True, expect_audio=None):
    out = h.path("out-" + name)
    rc, err, secs = encode(src, out, *opts)
    if rc != 0:
        raise AssertionError("%s: exit %d:\n%s" % (name, rc, err[-2000:]))
    problems = check_output.check(out, src, expect_audio=expect_audio, check_duration=check_duration)
    if problems:
        raise AssertionError("%s: checker found:\n  %s" % (name, "\n  ".join(problems)))
    j = job(out)
    if facts:
        facts(j, out, err)
    print("ok   %-28s %5.2fs  %s" % (name, secs, " ".join(
        "%s:%dx%d" % (r["name"], r["width"], r["height"]) for r in j["renditions"])))
    return j, out


def run_fail(h, name, src, reason, opts=()):
    out = h.path("out-" + name)
    rc, err, secs = encode(src, out, *opts)
    if rc != 1:
        raise AssertionError("%s: exit %d, want 1:\n%s" % (name, rc, err[-2000:]))
    if not re.search(reason, err):
        raise AssertionError("%s: error does not match %r:\n%s" % (name, reason, err[-2000:]))
    if os.path.exists(os.path.join(out, "master.m3u8")):
        raise AssertionError("%s: failed but wrote master.m3u8" % name)
    print("fail %-28s %5.2fs  %s" % (name, secs, err.strip().splitlines()[-1]))


def ts_pts_jump(data):
    """MPEG-TS bytes with the PTS of the middle video PES (stream id 0xE0)
    moved on by 7 * 2^30 ticks of 90 kHz (about 23 hours)."""
    b = bytearray(data)
    starts = []
    for off in range(0, len(b) - 187, 188):
        if b[off] != 0x47 or not b[off + 1] & 0x40:   # sync byte, payload unit start
            continue
        q = off + 4 + (1 + b[off + 4] if b[off + 3] & 0x20 else 0)
        if b[q:q + 4] == b"\x00\x00\x01\xe0" and b[q + 7] & 0x80:   # video PES with a PTS
            starts.append(q + 9)
    assert len(starts) > 4, "no video PES with a PTS"
    pts = starts[len(starts) // 2]
    b[pts] |= 0x0E
    return bytes(b)


def damaged_pasp(h, name, size, hspacing, vspacing):
    """A 1 s .mov of `size` whose 'pasp' box is rewritten to hspacing:vspacing
    (a damaged pixel aspect ratio); its path."""
    clip = gen_clip(h.path(name + ".src.mov"), seconds=1, size=size, audio=False,
                    extra_out=["-vf", "setsar=2/1"])
    with open(clip, "rb") as f:
        data = bytearray(f.read())
    i = data.find(b"pasp")
    assert i > 0, "no pasp box in the generated .mov"
    data[i + 4:i + 12] = struct.pack(">II", hspacing, vspacing)
    with open(h.path(name), "wb") as f:
        f.write(data)
    return h.path(name)


def frag_tfdt_jump(data, track_id, add):
    """Fragmented MP4 bytes with baseMediaDecodeTime of track track_id in the
    middle fragment moved on by add ticks."""
    b = bytearray(data)

    def kids(start, end):
        off = start
        while off + 8 <= end:
            size, typ = struct.unpack(">I4s", b[off:off + 8])
            if size < 8 or off + size > end:
                return
            yield off, size, typ
            off += size
    tfdts = []
    for moof, msize, typ in kids(0, len(b)):
        if typ != b"moof":
            continue
        for traf, tsize, t in kids(moof + 8, moof + msize):
            if t != b"traf":
                continue
            boxes = {t2: o for o, _, t2 in kids(traf + 8, traf + tsize)}
            if b"tfhd" in boxes and b"tfdt" in boxes and \
                    struct.unpack(">I", b[boxes[b"tfhd"] + 12:boxes[b"tfhd"] + 16])[0] == track_id:
                tfdts.append(boxes[b"tfdt"])
    assert len(tfdts) >= 3, "too few fragments of track %d" % track_id
    o = tfdts[len(tfdts) // 2]
    if b[o + 8] == 1:
        v = struct.unpack(">Q", b[o + 12:o + 20])[0]
        b[o + 12:o + 20] = struct.pack(">Q", v + add)
    else:
        v = struct.unpack(">I", b[o + 12:o + 16])[0]
        b[o + 12:o + 16] = struct.pack(">I", (v + add) & 0xffffffff)
    return bytes(b)


def assert_warned(j, text):
    assert any(text in w for w in j["warnings"]), j["warnings"]


def eq(a, b, what):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def test_media_corpus():
    global CASES
    subprocess.check_call([os.path.join(SOURCE, "tests", "media", "make_corpus.sh"), CORPUS],
                          stdout=subprocess.DEVNULL)
    c = lambda f: os.path.join(CORPUS, f)  # noqa: E731
    with Harness("media_corpus") as h:
        CASES = Cases()
        try:
            independent_cases(h, c)
        finally:
            CASES.finish()
        sequential_cases(h, c)


def independent_cases(h, c):
    # ---- sources that must package ---------------------------------
    def basic(j, out, err):
        eq([r["height"] for r in j["renditions"]], [240, 360], "basic ladder")
        eq(rendition(j)["width"], 640, "basic width")
        eq(j["segment_count"], 2, "basic segments (3 s at 2 s)")
        eq(j["audio"]["channels"], 2, "basic audio channels")
        for k in ("poster", "sprite", "storyboard"):
            assert os.path.isfile(os.path.join(out, j["thumbnails"][k])), k
        for r in j["renditions"]:
            assert r["bandwidth"] >= r["video_bitrate_peak"] + j["audio"]["bitrate_peak"], r
            assert r["frames"] == 75, r
    expect_ok(h, "basic", c("basic.mp4"), basic, ("--segment-seconds", "2"), expect_audio=True)

    def rotated(j, out, err):
        eq(j["source"]["rotation"], 90, "rotation")
        top = rendition(j)
        eq((top["width"], top["height"]), (270, 480), "rotated top rung is portrait")
    expect_ok(h, "rotated", c("rotated.mp4"), rotated)

    expect_ok(h, "vfr", c("vfr.mp4"),
              lambda j, o, e: eq(j["frame_rate"], 20.0, "VFR ~20.3 fps -> CFR 20"),
              check_duration=False)
    expect_ok(h, "noaudio", c("noaudio.mp4"),
              lambda j, o, e: eq(j["audio"], None, "no audio"), expect_audio=False)
    for f in ("yuv420p10.mp4", "yuv422p.mp4", "yuv444p.mp4"):
        expect_ok(h, f, c(f))

    def interlaced(j, out, err):
        eq(j["source"]["interlaced"], True, "interlaced flag")
        p = check_output.ffprobe_json(["-select_streams", "v:0", "-show_entries",
                                       "stream=field_order", os.path.join(out, "576p", "init.mp4")])
        fo = p["streams"][0].get("field_order", "progressive")
        assert fo in ("progressive", "unknown"), fo
    expect_ok(h, "interlaced", c("interlaced.mp4"), interlaced)

    for f in ("surround.mp4", "mono.mp4"):
        def stereo(j, out, err, f=f):
            eq((j["audio"]["channels"], j["audio"]["sample_rate"]), (2, 48000), f)
            p = check_output.ffprobe_json(["-show_entries", "stream=channels,sample_rate",
                                           os.path.join(out, "audio", "init.mp4")])
            eq((p["streams"][0]["channels"], p["streams"][0]["sample_rate"]), (2, "48000"), f)
        expect_ok(h, f, c(f), stereo, expect_audio=True)

    expect_ok(h, "odd", c("odd.mp4"),
              lambda j, o, e: eq((rendition(j)["width"], rendition(j)["height"]), (320, 240), "odd"))
    expect_ok(h, "sar", c("sar.mp4"),
              lambda j, o, e: eq((rendition(j)["width"], rendition(j)["height"]), (768, 576),
                                 "SAR 16:15 top rung"))

    def multiaudio(j, out, err):
        eq(j["source"]["audio_language"], "spa", "the default-flagged audio stream is the default")
        eq([(t["name"], t["language"], t["default"]) for t in j["audio_tracks"]],
           [("audio", "en", False), ("audio_1", "es", True)], "every audio track published")
        eq(j["audio"]["name"], "audio_1", "job.json audio is the default track")
    expect_ok(h, "multiaudio", c("multiaudio.mp4"), multiaudio)

    def multiaudio_default(j, out, err):
        eq([t["language"] for t in j["audio_tracks"]], ["es"], "audio.tracks default")
        assert any("2 audio streams: 1 published" in w for w in j["warnings"]), j["warnings"]
    expect_ok(h, "multiaudio-default", c("multiaudio.mp4"), multiaudio_default,
              opts=("--audio-tracks", "default"))

    def ntsc(j, out, err):
        eq(j["frame_rate"], 29.97, "29.97")
        eq(j["segment_count"], 3, "5 s at 2 s")
        pl = open(os.path.join(out, "240p", "playlist.m3u8")).read()
        assert "#EXTINF:2.002," in pl, pl
    expect_ok(h, "ntsc", c("ntsc.mp4"), ntsc, ("--segment-seconds", "2"))
    for f in ("audiolong.mp4", "audioshort.mp4"):
        expect_ok(h, f, c(f), lambda j, o, e: eq(j["duration"], 2.0 if "long" in o else 3.0, "length"),
                  expect_audio=True)
    expect_ok(h, "mpeg2.ts", c("mpeg2.ts"))

    def subs(j, out, err):
        names = sorted(s["name"] for s in j["subtitles"])
        eq(names, ["eng", "fre"], "subtitle tracks")
        eng = open(os.path.join(out, "subtitles", "eng.vtt")).read()
        fre = open(os.path.join(out, "subtitles", "fre.vtt")).read()
        assert eng.startswith("WEBVTT") and "Hello" in eng and "&amp;" in eng, eng
        assert "00:00:00.500 --> 00:00:01.500" in eng, eng
        assert "Bonjour le monde\nligne deux" in fre and "{" not in fre, fre
        master = open(os.path.join(out, "master.m3u8")).read()
        assert 'TYPE=SUBTITLES' in master and 'SUBTITLES="subs"' in master, master
        assert 'text/vtt' in open(os.path.join(out, "manifest.mpd")).read()
    expect_ok(h, "subs.mkv", c("subs.mkv"), subs)
    expect_ok(h, "movtext.mp4", c("movtext.mp4"),
              lambda j, o, e: eq([s["name"] for s in j["subtitles"]], ["ger"], "mov_text"))

    def truncated(j, out, err):
        assert any("ended early" in w for w in j["warnings"]), j["warnings"]
        assert 1.5 < j["duration"] < 3.5, j["duration"]
    expect_ok(h, "truncated", c("truncated.mp4"), truncated, check_duration=False)

    def two_pass(j, out, err):
        eq(j["rate_control"], "two-pass", "rate control")
        for r in j["renditions"]:
            want = r["target_kbps"] * 1000
            assert 0.7 * want < r["video_bitrate_avg"] < 1.3 * want, r
    expect_ok(h, "two-pass", c("ntsc.mp4"), two_pass, ("--rate-control", "two-pass"))

    # ---- packaging options -------------------------------------------
    def hls_only(j, out, err):
        assert not os.path.exists(os.path.join(out, "manifest.mpd"))
        assert not os.path.exists(os.path.join(out, "thumbs"))
        eq(j["dash"], None, "dash")
        eq([r["height"] for r in j["renditions"]], [240, 360], "explicit ladder without 720")
        assert any("720p dropped" in w for w in j["warnings"]), j["warnings"]
    expect_ok(h, "options", c("basic.mp4"), hls_only,
              ("--packaging", "hls", "--no-thumbnails", "--ladder", "240,360,720", "--preset",
               "ultrafast"))

    def dash_only():
        out = h.path("out-dash-only")
        rc, err, _ = encode(c("basic.mp4"), out, "--packaging", "dash", "--no-thumbnails")
        eq(rc, 0, "dash only: " + err)
        assert os.path.isfile(os.path.join(out, "manifest.mpd"))
        assert not os.path.exists(os.path.join(out, "master.m3u8"))
        assert not os.path.exists(os.path.join(out, "360p", "playlist.m3u8"))
    CASES.add(dash_only)

    # ---- sources that must fail with a readable reason ---------------
    expect_fail(h, "big4k", c("big4k.mp4"), r"error \(limit\): source picture 3840x2160 .* over the "
                r"limit of 2073600 pixels", ("--max-pixels", "2073600"))
    # the limit holds for the display size too: sar.mp4 is 720x576
    # coded (414,720 pixels) and 768x576 on screen (442,368)
    expect_fail(h, "big on screen", c("sar.mp4"), r"error \(limit\): source picture 720x576 displays "
                r"at 768x576 \(pixel aspect 16:15; 442368 pixels\), over the limit of 430000 pixels",
                ("--max-pixels", "430000"))
    expect_fail(h, "too long", c("basic.mp4"), r"error \(limit\): source is 3\.0 s long, over the "
                r"limit of 2 s", ("--max-duration", "2"))
    expect_fail(h, "too big", c("basic.mp4"), r"error \(limit\): source file is .* over the limit",
                ("--max-file-size", "1000"))
    expect_fail(h, "empty", c("empty.mp4"),
                r"error \(media\): invalid data found when processing input \(0-byte file\)")
    expect_fail(h, "text.mp4", c("text.mp4"), r"error \(media\): cannot open the source: invalid "
                r"data found when processing input")
    expect_fail(h, "nomoov", c("nomoov.mp4"), r"error \(media\): cannot open the source: invalid "
                r"data found")
    expect_fail(h, "missing", c("no-such-file.mp4"), r"source file not found")
    audio_only = h.path("audio-only.m4a")
    subprocess.check_call(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                           "sine=duration=1", "-c:a", "aac", audio_only])
    def audio_only_facts(j, out, err):   # an audio-only package (test_media_tracks has more)
        eq((j["source"]["audio_only"], j["renditions"], j["audio"]["name"]), (True, [], "audio"),
           "audio only")
    expect_ok(h, "audio only", audio_only, audio_only_facts, expect_audio=True)

    # ---- damaged copies: best effort or a readable error, never a crash --
    rnd = random.Random(7)
    for name, how in (("basic.mp4", "flip"), ("interlaced.mp4", "flip"), ("mpeg2.ts", "flip"),
                      ("mpeg2.ts", "cut"), ("subs.mkv", "cut"), ("vfr.mp4", "cut")):
        data = bytearray(open(c(name), "rb").read())
        if how == "flip":
            for _ in range(40):
                i = rnd.randrange(4096, len(data))
                data[i] = rnd.randrange(256)
        else:
            data = data[:len(data) // 2]
        dpath = h.path("damaged-%s-%s" % (how, name))
        with open(dpath, "wb") as f:
            f.write(data)

        def damaged(dpath, how, name):
            out = h.path("out-damaged-%s-%s" % (how, name))
            rc, err, secs = encode(dpath, out, "--no-thumbnails")
            if rc == 0:
                problems = check_output.check(out, None)
                if problems:
                    raise AssertionError("damaged %s %s: %s" % (how, name, problems))
            elif rc != 1 or not re.search(r"error \((media|limit)\): ", err):
                raise AssertionError("damaged %s %s: exit %d:\n%s" % (how, name, rc, err[-1500:]))
            print("%-4s damaged %-5s %-14s %5.2fs" % ("ok" if rc == 0 else "fail", how, name, secs))
        CASES.add(damaged, dpath, how, name)

    # ---- damaged timestamps ----------------------------------------------
    # one video PES in the middle of mpeg2.ts with its PTS pushed about 23
    # hours on (bits 32..30 set): the fps filter filled the jump with
    # copies of the last picture (the encode ran until the timeout);
    # now the frame is re-timed to follow on and the output lasts what
    # the source does
    jumped = h.path("damaged-ptsjump-mpeg2.ts")
    with open(jumped, "wb") as f:
        f.write(ts_pts_jump(open(c("mpeg2.ts"), "rb").read()))

    def ptsjump(j, out, err):
        assert any("timestamps jump" in w for w in j["warnings"]), j["warnings"]
        assert j["duration"] < 5, j["duration"]
    expect_ok(h, "damaged-ptsjump-mpeg2.ts", jumped, ptsjump, ("--no-thumbnails",),
              check_duration=False)

    # a slide show: two pictures of 20 s each over 40 s of audio; a
    # frame duration over 10 s is honoured when it ends by the announced
    # end (only one that runs past it counts as one frame)
    slides = gen_clip(h.path("slides.mp4"), seconds=40, size="160x90", rate="1/20")

    def slides_ok(j, out, err):
        eq(j["duration"], 40.0, "slide show length")
        assert not j["warnings"], j["warnings"]
    expect_ok(h, "slides.mp4", slides, slides_ok, ("--no-thumbnails",), expect_audio=True)

    # one frame a segment (1 fps, 1 s segments): libx264's packets carry
    # no duration, so each one-sample fragment lasted 0 and the next
    # started at the same time (tfdt 0, 0, 1 s, ...); the checker saw
    # segments starting at 0 and a 1 s video under 6 s of audio
    onefps = gen_clip(h.path("onefps.mp4"), seconds=6, size="160x90", rate=1)
    expect_ok(h, "onefps.mp4 1 s segments", onefps,
              lambda j, o, e: eq((j["segment_count"], j["duration"]), (6, 6.0), "segments, length"),
              ("--segment-seconds", "1", "--no-thumbnails"), expect_audio=True)

    # two frames at 24 fps: one segment of 0.0833 s, "0.083" in the
    # playlist; BANDWIDTH came from the exact length and was 0.4 % under
    # the segment's bitrate by its EXTINF
    twoframes = gen_clip(h.path("twoframes.mp4"), seconds=0.07, size="320x180", rate=24)
    expect_ok(h, "twoframes.mp4", twoframes,
              lambda j, o, e: eq(rendition(j)["frames"], 2, "frames"), ("--no-thumbnails",),
              expect_audio=True)

    # a pixel aspect ratio of 65535:1 (a damaged 'pasp' box) makes a
    # 64x48 picture 2 million pixels wide on screen: libx264 refused
    # the rung ("error (internal)", and libx264 leaked its parameters);
    # now a readable media error before anything is encoded
    wide = damaged_pasp(h, "damaged-pasp.mov", "64x48", 65535, 1)
    expect_fail(h, "damaged-pasp.mov", wide,
                r"error \(media\): source picture 64x48 \(shown at \d+x48\) is too large: rung 48p "
                r"would be \d+x48, over H\.264's 16384 pixels a side")
    expect_fail(h, "damaged-pasp.mov per-title", wide, r"error \(media\): .* too large",
                ("--ladder", "per-title"))

    # a pixel aspect ratio of 1:64 on a 64x480 picture: shown 1 pixel
    # wide, its 160-wide storyboard tile was 76800 lines, which the JPEG
    # encoder refused after the whole encode ("error (internal)"); now
    # tiles and poster of a very tall picture get narrower instead
    narrow = damaged_pasp(h, "damaged-narrow.mov", "64x480", 1, 64)

    def narrow_thumbs(j, out, err):
        t = j["thumbnails"]
        assert t["tile_height"] <= 640 and t["poster_height"] <= 4096, t
    expect_ok(h, "damaged-narrow.mov", narrow, narrow_thumbs)

    # a fragmented MP4 (44.1 kHz audio) whose middle audio fragment starts
    # 13 hours on (its tfdt damaged): aresample filled the gap with
    # silence and the AAC packets piled up waiting for the video (3 GB in
    # 30 s, until the timeout); now that audio is dropped (past the
    # video's end) and the rest packages
    frag = gen_clip(h.path("frag.mp4"), seconds=3, size="160x90",
                    extra_out=["-ar", "44100", "-g", "25", "-movflags", "frag_keyframe+empty_moov"])
    with open(h.path("damaged-tfdt.mp4"), "wb") as f:
        f.write(frag_tfdt_jump(open(frag, "rb").read(), 2, 44100 * 3600 * 13))

    def tfdt(j, out, err):
        assert any("audio timestamps jump" in w for w in j["warnings"]), j["warnings"]
        assert 2.9 < j["duration"] < 3.2, j["duration"]
    expect_ok(h, "damaged-tfdt.mp4", h.path("damaged-tfdt.mp4"), tfdt, ("--no-thumbnails",),
              check_duration=False, expect_audio=True)

    # the same file with the middle video fragment's tfdt 2^63 ticks on:
    # libavformat left the video stream's 7e14 s out of the container's
    # 3 s, and the fps filter filled the jump (killed at the timeout);
    # the announced end is now the shorter of the two, so the fragment
    # is re-timed
    with open(h.path("damaged-vtfdt.mp4"), "wb") as f:
        f.write(frag_tfdt_jump(open(frag, "rb").read(), 1, 0x7fffffff << 32))
    expect_ok(h, "damaged-vtfdt.mp4", h.path("damaged-vtfdt.mp4"),
              lambda j, o, e: assert_warned(j, "video timestamps jump"), ("--no-thumbnails",),
              check_duration=False, expect_audio=True)

    # subtitle cues after the video's end (one past it, and a stream whose
    # timestamps were a billion seconds on) were written as they came: a
    # VTT of cues that never show, the far one at 277777:46:40; now they
    # are dropped (the stream with none left is skipped) and a cue that
    # runs past the end is cut there
    srt = h.path("late.srt")
    with open(srt, "w") as f:
        f.write("1\n00:00:00,300 --> 00:00:01,200\nHello\n\n"
                "2\n00:00:02,400 --> 00:00:05,400\nWorld\n\n"
                "3\n00:00:09,000 --> 00:00:10,000\nLate\n")
    late = gen_clip(h.path("late-subs.mkv"), seconds=3, size="160x90", audio=False,
                    extra_in=["-i", srt, "-itsoffset", "1000000000", "-i", srt],
                    extra_out=["-map", "0", "-map", "1", "-map", "2", "-c:s", "srt",
                               "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fre"])

    def late_subs(j, out, err):
        eq([s["name"] for s in j["subtitles"]], ["eng"], "subtitle tracks")
        vtt = open(os.path.join(out, "subtitles", "eng.vtt")).read()
        assert "00:00:02.400 --> 00:00:03.000" in vtt and "Late" not in vtt, vtt
        assert any("1 cue(s) after the video's end dropped" in w for w in j["warnings"]), j["warnings"]
        assert any("no cues before the video's end" in w for w in j["warnings"]), j["warnings"]
    expect_ok(h, "late-subs.mkv", late, late_subs, ("--no-thumbnails",), check_duration=False)

    # ---- real files ---------------------------------------------------
    for f in ("cockatoo.mp4", "realshort.mp4", "balle-jbart.mp4", "balle1-vp9.avi",
              "Effet_force_magnetique.ogv", "Force_constante.avi", "g1.avi", "retroMars2018.avi"):
        expect_ok(h, f, media(f))


def sequential_cases(h, c):
    # ---- cancel: Ctrl-C stops the encode within a second -----------------
    longclip = gen_clip(h.path("long.mp4"), seconds=30, size="640x360")
    out = h.path("out-cancel")
    p = subprocess.Popen([WORKER, "encode", longclip, out], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL)
    buf = b""
    while b"progress encoding 10%" not in buf:
        line = p.stderr.readline()
        if not line:
            raise AssertionError("encode ended before cancel: " + buf.decode(errors="replace"))
        buf += line
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    rc = p.wait(timeout=30)
    took = time.monotonic() - t0
    eq(rc, 1, "exit code after cancel")
    assert b"cancelled" in rest, rest
    assert took < 1.5, "cancel took %.2f s" % took
    assert not os.path.exists(os.path.join(out, "master.m3u8"))
    print("ok   cancel in %.2fs" % took)

    # ---- the checker catches broken outputs -----------------------------
    _, good = run_ok(h, "checker-base", c("basic.mp4"), None, ("--segment-seconds", "2"))
    def broken(mutate, want):
        d = h.path("broken")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(good, d)
        mutate(d)
        problems = check_output.check(d, c("basic.mp4"))
        if not any(re.search(want, p) for p in problems):
            raise AssertionError("checker missed %r: %s" % (want, problems))

    def sub(path, a, b):
        def f(d):
            p = os.path.join(d, path)
            s = open(p).read()
            assert re.search(a, s), (path, a)
            open(p, "w").write(re.sub(a, b, s, count=1))
        return f
    broken(sub("master.m3u8", r"BANDWIDTH=\d+", "BANDWIDTH=1000"), r"BANDWIDTH 1000 < measured")
    broken(sub("master.m3u8", r'CODECS="avc1\.[0-9a-f]+', 'CODECS="avc1.42e00a'), r"SPS says")
    broken(sub("360p/playlist.m3u8", r"TARGETDURATION:\d+", "TARGETDURATION:1"), r"TARGETDURATION")
    broken(lambda d: os.unlink(os.path.join(d, "240p", "seg_00001.m4s")), r"missing")
    broken(sub("360p/iframes.m3u8", r"BYTERANGE:\d+", "BYTERANGE:100"), r"end of the IDR")
    broken(sub("manifest.mpd", r'<S t="0" d="\d+"', '<S t="0" d="1"'), r"manifest.mpd: .* (lasts|segments)")

    def swap_segments(d):
        a, b = os.path.join(d, "240p", "seg_00000.m4s"), os.path.join(d, "240p", "seg_00001.m4s")
        os.rename(a, a + ".t")
        os.rename(b, a)
        os.rename(a + ".t", b)
    broken(swap_segments, r"starts at|differ|decode")
    print("ok   checker catches broken outputs")


if __name__ == "__main__":
    main(test_media_corpus)
