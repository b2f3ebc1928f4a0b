#!/usr/bin/env python3
"""An independent checker for a streamscale output folder (DESIGN.md §3-§5).

Reads only what a player or a packager's validator would read: the HLS
master, media and I-frame playlists, the DASH MPD, the fMP4 files (its own
small box parser) and ffprobe/ffmpeg (Debian's ffmpeg package) as the
decoder. It shares no code with the product.

Library:  problems = check(outdir, source=None, expect_audio=None, early_master=None)
          (an empty list means the output is good; early_master: the text of
          a master.m3u8 published while encoding, whose BANDWIDTH must cover
          every segment of the final output, its I-frame playlists' too,
          docs/PLAYABLE.md)
CLI:      check_output.py OUTDIR [--source FILE] [--no-duration] [--early-master FILE]
          exits 0 when good, 1 with one line per problem otherwise.

What is checked
- master.m3u8: version 7, INDEPENDENT-SEGMENTS, each STREAM-INF has
  BANDWIDTH >= measured peak segment bitrate of the video + the audio's
  (file sizes / EXTINF), AVERAGE-BANDWIDTH ~ measured average, CODECS
  matching init.mp4's sample description (+ mp4a.40.2 with audio),
  RESOLUTION = the decoded size, FRAME-RATE with 3 decimals = the decoded
  rate, AUDIO group present; I-FRAME-STREAM-INF for every rendition.
- media playlists: VOD, ENDLIST, EXT-X-MAP init.mp4, EXTINF with 3+
  decimals, TARGETDURATION >= every rounded EXTINF; every named file exists.
- every segment starts with a keyframe (ffprobe packets of init + all
  segments, located by byte position), segment boundaries (times of those
  keyframes) line up across renditions, EXTINF = measured segment length.
- I-frame playlists: BYTERANGE from 0 to the end of the first sample of its
  segment (moof/trun), and that range (after init.mp4) decodes to a
  keyframe.
- every rendition decodes without errors (ffmpeg -xerror); SAR 1:1, yuv420p,
  High profile or lower.
- audio renditions (every EXT-X-MEDIA TYPE=AUDIO): GROUP-ID, NAME,
  DEFAULT, AUTOSELECT, CHANNELS (= the decoded channels), URI; LANGUAGE a
  BCP 47 tag; per group at most one DEFAULT=YES, unique NAMEs, one channel
  count; AAC; each as long as the video. A variant's BANDWIDTH counts its
  group's largest audio peak, its AUDIO names a group. A title without video:
  variants whose URI is an audio playlist (audio CODECS only).
- video CODECS: avc1.PPCCLL from avcC, or av01.P.LLT.DD from the AV1
  sequence header OBU in av1C (parsed here: profile, level, tier, bit depth).
- manifest.mpd: static isoff-live, one video AdaptationSet per codec with
  segmentAlignment/startWithSAP, a Representation per rendition with the
  same codecs/size, bandwidth >= measured peak, SegmentTimeline matching the
  files (count and durations); one Representation per HLS audio rendition in
  audio AdaptationSets with AudioChannelConfiguration, a urn:mpeg:dash:role:2011
  Role, lang = the HLS LANGUAGE and Label (when present) = the HLS NAME; text AdaptationSets point at existing .vtt.
- total length vs the source's video stream within one frame (with source).
- thumbs/ (poster decodes, <= 1280 wide; storyboard cues inside the sprite)
  and subtitles/*.vtt (WEBVTT, cues ordered) when present.
"""
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, wait

FFPROBE = os.environ.get("FFPROBE", "ffprobe")
FFMPEG = os.environ.get("FFMPEG", "ffmpeg")
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


# ffprobe/ffmpeg start slowly (a few hundred libraries to load): the checks
# that need only their own answer (decoding a rendition, its I-frame ranges,
# the thumbnails, the source's length) run beside the rest, one process per
# core, and are judged when check() settles them, in the order they started.
POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))


class Problems(list):
    def __init__(self):
        super().__init__()
        self.pending = []

    def add(self, fmt, *args):
        self.append(fmt % args if args else fmt)

    def later(self, judge, fn, *args, **kw):
        """Run fn(*args, **kw) in the pool; judge(its result) when settled."""
        self.pending.append((POOL.submit(fn, *args, **kw), judge))

    def settle(self):
        while self.pending:
            fut, judge = self.pending.pop(0)
            judge(fut.result())

    def drain(self):
        """Wait for what still runs (before its files go), judging nothing."""
        wait([f for f, _ in self.pending])
        self.pending = []


# ---------------------------------------------------------------- HLS parsing

def parse_attrs(s):
    """EXT-X attribute list -> dict (quoted strings unquoted)."""
    out = {}
    for m in re.finditer(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', s):
        v = m.group(2)
        out[m.group(1)] = v[1:-1] if v.startswith('"') else v
    return out


def parse_master(text):
    m = {"version": None, "independent": False, "media": [], "variants": [], "iframes": []}
    lines = [l.strip() for l in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("master.m3u8 does not start with #EXTM3U")
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("#EXT-X-VERSION:"):
            m["version"] = int(l.split(":", 1)[1])
        elif l == "#EXT-X-INDEPENDENT-SEGMENTS":
            m["independent"] = True
        elif l.startswith("#EXT-X-MEDIA:"):
            m["media"].append(parse_attrs(l.split(":", 1)[1]))
        elif l.startswith("#EXT-X-STREAM-INF:"):
            a = parse_attrs(l.split(":", 1)[1])
            i += 1
            while i < len(lines) and (not lines[i] or lines[i].startswith("#")):
                i += 1
            a["URI"] = lines[i] if i < len(lines) else None
            m["variants"].append(a)
        elif l.startswith("#EXT-X-I-FRAME-STREAM-INF:"):
            m["iframes"].append(parse_attrs(l.split(":", 1)[1]))
        i += 1
    return m


def parse_media(text):
    p = {"version": None, "target": None, "type": None, "endlist": False, "map": None,
         "independent": False, "iframes_only": False, "segments": [], "extinf_raw": []}
    lines = [l.strip() for l in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("playlist does not start with #EXTM3U")
    dur = None
    rng = None
    for l in lines[1:]:
        if not l:
            continue
        if l.startswith("#EXT-X-VERSION:"):
            p["version"] = int(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-TARGETDURATION:"):
            p["target"] = int(l.split(":", 1)[1])
        elif l.startswith("#EXT-X-PLAYLIST-TYPE:"):
            p["type"] = l.split(":", 1)[1]
        elif l == "#EXT-X-ENDLIST":
            p["endlist"] = True
        elif l == "#EXT-X-INDEPENDENT-SEGMENTS":
            p["independent"] = True
        elif l == "#EXT-X-I-FRAMES-ONLY":
            p["iframes_only"] = True
        elif l.startswith("#EXT-X-MAP:"):
            p["map"] = parse_attrs(l.split(":", 1)[1]).get("URI")
        elif l.startswith("#EXTINF:"):
            raw = l.split(":", 1)[1].split(",", 1)[0]
            p["extinf_raw"].append(raw)
            dur = float(raw)
        elif l.startswith("#EXT-X-BYTERANGE:"):
            v = l.split(":", 1)[1]
            n, _, o = v.partition("@")
            rng = (int(n), int(o or 0))
        elif not l.startswith("#"):
            p["segments"].append({"uri": l, "duration": dur, "range": rng})
            dur = None
            rng = None
    return p


# ---------------------------------------------------------------- MP4 parsing

def boxes(b, start=0, end=None):
    end = len(b) if end is None else end
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", b[off:off + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", b[off + 8:off + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - off
        if size < hdr or off + size > end:
            return
        yield typ.decode("latin-1"), off, size, hdr
        off += size


def child(b, start, end, path):
    """Offset/size of the box at path (list of types) below [start, end)."""
    for t, off, size, hdr in boxes(b, start, end):
        if t == path[0]:
            if len(path) == 1:
                return off, size, hdr
            return child(b, off + hdr, off + size, path[1:])
    return None


def sample_entry(init_bytes):
    """(type, payload start, end) of the first stsd sample entry's child boxes."""
    stsd = child(init_bytes, 0, len(init_bytes), ["moov", "trak", "mdia", "minf", "stbl", "stsd"])
    if not stsd:
        return None
    off, size, hdr = stsd
    # stsd: full box header (4) + entry count (4), then the sample entry
    entry = off + hdr + 8
    etype = init_bytes[entry + 4:entry + 8].decode("latin-1")
    esize = struct.unpack(">I", init_bytes[entry:entry + 4])[0]
    return etype, entry + 86, entry + esize


def avcc_codec(init_bytes):
    """'avc1.PPCCLL' from the avcC box of an init segment, or None."""
    se = sample_entry(init_bytes)
    if not se or se[0] not in ("avc1", "avc3"):
        return None
    # VisualSampleEntry is 8 (box) + 78 bytes before its child boxes
    r = child(init_bytes, se[1], se[2], ["avcC"])
    if not r:
        return None
    a = r[0] + r[2]
    return "avc1.%02x%02x%02x" % (init_bytes[a + 1], init_bytes[a + 2], init_bytes[a + 3])


class Bits:
    def __init__(self, b):
        self.b, self.pos = b, 0

    def f(self, n):
        v = 0
        for _ in range(n):
            byte = self.b[self.pos >> 3]
            v = v << 1 | (byte >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return v

    def uvlc(self):
        z = 0
        while not self.f(1):
            z += 1
        return (1 << z) - 1 + self.f(z) if z else 0


def av1_seq_header(obu):
    """Profile, level, tier and bit depth from an AV1 sequence header OBU
    payload (AV1 spec 5.5), read here independently of the product."""
    r = Bits(obu)
    profile = r.f(3)
    r.f(1)                           # still_picture
    reduced = r.f(1)
    tier = 0
    if reduced:
        level = r.f(5)
        dm_present = 0
    else:
        dm_present = 0
        if r.f(1):                   # timing_info_present_flag
            r.f(32)
            r.f(32)
            if r.f(1):
                r.uvlc()
            dm_present = r.f(1)
            if dm_present:
                bdl = r.f(5) + 1
                r.f(32)
                r.f(5)
                r.f(5)
        idd_present = r.f(1)
        level = None
        for k in range(r.f(5) + 1):
            r.f(12)
            lv = r.f(5)
            tr = r.f(1) if lv > 7 else 0
            if k == 0:
                level, tier = lv, tr
            if dm_present and r.f(1):
                r.f(bdl)
                r.f(bdl)
                r.f(1)
            if idd_present and r.f(1):
                r.f(4)
    wb, hb = r.f(4) + 1, r.f(4) + 1
    r.f(wb)
    r.f(hb)
    if not reduced and r.f(1):       # frame_id_numbers_present_flag
        r.f(4)
        r.f(3)
    r.f(3)                           # 128x128 superblocks, filter intra, intra edge filter
    if not reduced:
        r.f(4)                       # interintra, masked compound, warped motion, dual filter
        order_hint = r.f(1)
        if order_hint:
            r.f(2)
        force_sct = 2 if r.f(1) else r.f(1)
        if force_sct > 0 and not r.f(1):
            r.f(1)
        if order_hint:
            r.f(3)
    r.f(3)                           # superres, cdef, restoration
    high = r.f(1)
    depth = (12 if r.f(1) else 10) if profile == 2 and high else (10 if high else 8)
    return profile, level, tier, depth


def av1c_codec(init_bytes):
    """'av01.P.LLT.DD' from the sequence header OBU in an init segment's av1C."""
    se = sample_entry(init_bytes)
    if not se or se[0] != "av01":
        return None
    r = child(init_bytes, se[1], se[2], ["av1C"])
    if not r:
        return None
    b = init_bytes[r[0] + r[2] + 4:r[0] + r[1]]   # configOBUs after the 4-byte header
    p = 0
    while p < len(b):
        h = b[p]
        typ, ext, has_size = (h >> 3) & 15, (h >> 2) & 1, (h >> 1) & 1
        p += 1 + ext
        n = len(b) - p
        if has_size:
            n, shift = 0, 0
            while True:
                c = b[p]
                p += 1
                n |= (c & 0x7f) << shift
                shift += 7
                if not c & 0x80:
                    break
        if typ == 1:
            prof, lv, tier, depth = av1_seq_header(b[p:p + n])
            return "av01.%d.%02d%s.%02d" % (prof, lv, "H" if tier else "M", depth)
        p += n
    return None


def video_codec(init_bytes):
    """The RFC 6381 string the init segment's sample description says."""
    return avcc_codec(init_bytes) or av1c_codec(init_bytes)


def first_sample_end(seg):
    """End offset of the first sample of a fragment (moof/traf/trun, base = moof)."""
    for t, off, size, hdr in boxes(seg):
        if t != "moof":
            continue
        traf = child(seg, off + hdr, off + size, ["traf"])
        if not traf:
            return None
        tf = child(seg, traf[0] + traf[2], traf[0] + traf[1], ["tfhd"])
        tr = child(seg, traf[0] + traf[2], traf[0] + traf[1], ["trun"])
        if not tf or not tr:
            return None
        hflags = struct.unpack(">I", seg[tf[0] + 8:tf[0] + 12])[0] & 0xffffff
        p = tf[0] + 16
        default_size = None
        for bit, n in ((0x1, 8), (0x2, 4), (0x8, 4)):
            if hflags & bit:
                p += n
        if hflags & 0x10:
            default_size = struct.unpack(">I", seg[p:p + 4])[0]
        flags = struct.unpack(">I", seg[tr[0] + 8:tr[0] + 12])[0] & 0xffffff
        q = tr[0] + 16
        data_off = 0
        if flags & 0x1:
            data_off = struct.unpack(">i", seg[q:q + 4])[0]
            q += 4
        if flags & 0x4:
            q += 4
        if flags & 0x100:
            q += 4
        size0 = default_size
        if flags & 0x200:
            size0 = struct.unpack(">I", seg[q:q + 4])[0]
        if size0 is None:
            return None
        return off + data_off + size0
    return None


def fragment_times(seg, trex_duration=None):
    """(mfhd sequence number, tfdt, sum of sample durations) of a fragment's
    first moof/traf, or None when the boxes are not there."""
    for t, off, size, hdr in boxes(seg):
        if t != "moof":
            continue
        mf = child(seg, off + hdr, off + size, ["mfhd"])
        traf = child(seg, off + hdr, off + size, ["traf"])
        if not mf or not traf:
            return None
        seq = struct.unpack(">I", seg[mf[0] + 12:mf[0] + 16])[0]
        a, b = traf[0] + traf[2], traf[0] + traf[1]
        tf, td, tr = child(seg, a, b, ["tfhd"]), child(seg, a, b, ["tfdt"]), child(seg, a, b, ["trun"])
        if not tf or not td or not tr:
            return None
        if seg[td[0] + 8] == 1:
            base = struct.unpack(">Q", seg[td[0] + 12:td[0] + 20])[0]
        else:
            base = struct.unpack(">I", seg[td[0] + 12:td[0] + 16])[0]
        hflags = struct.unpack(">I", seg[tf[0] + 8:tf[0] + 12])[0] & 0xffffff
        p = tf[0] + 16
        default_dur = trex_duration
        for bit, n in ((0x1, 8), (0x2, 4)):
            if hflags & bit:
                p += n
        if hflags & 0x8:
            default_dur = struct.unpack(">I", seg[p:p + 4])[0]
        flags = struct.unpack(">I", seg[tr[0] + 8:tr[0] + 12])[0] & 0xffffff
        count = struct.unpack(">I", seg[tr[0] + 12:tr[0] + 16])[0]
        q = tr[0] + 16 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
        per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
        total = 0
        for i in range(count):
            if flags & 0x100:
                total += struct.unpack(">I", seg[q + i * per:q + i * per + 4])[0]
            elif default_dur is not None:
                total += default_dur
            else:
                return None
        return seq, base, total
    return None


def trex_default_duration(init):
    r = child(init, 0, len(init), ["moov", "mvex", "trex"])
    if not r:
        return None
    return struct.unpack(">I", init[r[0] + 20:r[0] + 24])[0]


def check_fragments(P, track_dir, pl, name):
    """Every segment's tfdt is where the one before ended and the moof
    sequence numbers count up by one, as if one muxer had written the track
    (a split job's chunks continue each other's timeline)."""
    if any(not os.path.isfile(os.path.join(track_dir, f))
           for f in ["init.mp4"] + [x["uri"] for x in pl["segments"]]):
        return   # already reported by check_media_playlist
    init = _read(os.path.join(track_dir, "init.mp4"))
    trex = trex_default_duration(init) if init else None
    prev = None
    for k, s in enumerate(pl["segments"]):
        data = _read(os.path.join(track_dir, s["uri"]))
        ft = fragment_times(data) if data else None
        if not ft and data:
            ft = fragment_times(data, trex)
        if not ft:
            P.add("%s: %s has no readable moof/tfdt/trun", name, s["uri"])
            return
        if prev:
            if ft[0] != prev[0] + 1:
                P.add("%s: %s moof sequence %d after %d", name, s["uri"], ft[0], prev[0])
                return
            if ft[1] != prev[1] + prev[2]:
                P.add("%s: %s tfdt %d, the segment before ended at %d", name, s["uri"], ft[1],
                      prev[1] + prev[2])
                return
        prev = ft


# ---------------------------------------------------------------- ffprobe

def ffprobe_json(args):
    out = subprocess.run([FFPROBE, "-v", "error", "-of", "json"] + args, capture_output=True,
                         timeout=300)
    if out.returncode != 0:
        raise RuntimeError("ffprobe %s: %s" % (" ".join(args), out.stderr.decode(errors="replace")))
    return json.loads(out.stdout or b"{}")


def source_video_duration(path):
    j = ffprobe_json(["-select_streams", "v:0", "-show_entries",
                      "stream=duration,avg_frame_rate:format=duration", path])
    st = (j.get("streams") or [{}])[0]
    d = st.get("duration")
    if d not in (None, "N/A"):
        return float(d)
    # containers without a stream duration: count what decodes
    j = ffprobe_json(["-select_streams", "v:0", "-show_entries", "frame=pts_time,duration_time",
                      path])
    fr = [f for f in j.get("frames", []) if f.get("pts_time") not in (None, "N/A")]
    if not fr:
        return float(j.get("format", {}).get("duration", 0) or 0)
    last = fr[-1]
    return float(last["pts_time"]) - float(fr[0]["pts_time"]) + float(last.get("duration_time") or 0)


# ---------------------------------------------------------------- checks

def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _peak(track_dir, pl):
    peak, tot_b, tot_d = 0.0, 0, 0.0
    for s in pl["segments"]:
        f = os.path.join(track_dir, s["uri"])
        size = os.path.getsize(f) if os.path.isfile(f) else 0
        if s["duration"] and s["duration"] > 0:
            peak = max(peak, size * 8 / s["duration"])
        tot_b += size
        tot_d += s["duration"] or 0
    return peak, (tot_b * 8 / tot_d if tot_d else 0)


def check_media_playlist(P, outdir, rel, iframes=False):
    path = os.path.join(outdir, rel)
    if not os.path.isfile(path):
        P.add("%s: missing", rel)
        return None
    try:
        pl = parse_media(open(path, encoding="utf-8").read())
    except ValueError as e:
        P.add("%s: %s", rel, e)
        return None
    d = os.path.dirname(path)
    if pl["version"] is None or pl["version"] < 6:
        P.add("%s: EXT-X-VERSION %s (want 7)", rel, pl["version"])
    if pl["type"] != "VOD":
        P.add("%s: EXT-X-PLAYLIST-TYPE is %s, want VOD", rel, pl["type"])
    if not pl["endlist"]:
        P.add("%s: no EXT-X-ENDLIST", rel)
    if not pl["independent"]:
        P.add("%s: no EXT-X-INDEPENDENT-SEGMENTS", rel)
    if iframes and not pl["iframes_only"]:
        P.add("%s: no EXT-X-I-FRAMES-ONLY", rel)
    if pl["map"] != "init.mp4":
        P.add("%s: EXT-X-MAP is %r, want init.mp4", rel, pl["map"])
    elif not os.path.isfile(os.path.join(d, pl["map"])):
        P.add("%s: %s missing", rel, pl["map"])
    if not pl["segments"]:
        P.add("%s: no segments", rel)
    for raw in pl["extinf_raw"]:
        if "." not in raw or len(raw.split(".")[1]) < 3:
            P.add("%s: EXTINF %s has fewer than 3 decimals", rel, raw)
            break
    for s in pl["segments"]:
        if s["duration"] is None:
            P.add("%s: %s has no EXTINF", rel, s["uri"])
            continue
        if pl["target"] is None or round(s["duration"]) > pl["target"]:
            P.add("%s: EXTINF %.3f rounds above TARGETDURATION %s", rel, s["duration"], pl["target"])
        f = os.path.join(d, s["uri"])
        if not os.path.isfile(f):
            P.add("%s: segment %s missing", rel, s["uri"])
        elif s["range"]:
            n, o = s["range"]
            if o + n > os.path.getsize(f):
                P.add("%s: BYTERANGE %d@%d past the end of %s", rel, n, o, s["uri"])
    return pl


def probe_track(P, track_dir, pl, name, is_video, work):
    """Concatenate init + segments, return dict with facts; add problems."""
    if any(not os.path.isfile(os.path.join(track_dir, f))
           for f in ["init.mp4"] + [s["uri"] for s in pl["segments"]]):
        return None   # already reported by check_media_playlist
    init = _read(os.path.join(track_dir, "init.mp4"))
    cat = os.path.join(work, name.replace("/", "_") + ".mp4")
    seg_offsets = []
    with open(cat, "wb") as f:
        f.write(init)
        pos = len(init)
        for s in pl["segments"]:
            b = _read(os.path.join(track_dir, s["uri"]))
            seg_offsets.append(pos)
            f.write(b)
            pos += len(b)
    info = {"init": init, "file": cat, "offsets": seg_offsets}
    sel = "v:0" if is_video else "a:0"
    j = ffprobe_json(["-select_streams", sel, "-show_entries",
                      "stream=codec_name,profile,width,height,pix_fmt,sample_aspect_ratio,"
                      "r_frame_rate,avg_frame_rate,channels,sample_rate:packet=pts_time,dts_time,"
                      "pos,flags,duration_time", cat])
    st = (j.get("streams") or [None])[0]
    if not st:
        P.add("%s: no %s stream in init + segments", name, "video" if is_video else "audio")
        return None
    info["stream"] = st
    pk = [p for p in j.get("packets", []) if p.get("pos") not in (None, "N/A")]
    pk.sort(key=lambda p: int(p["pos"]))
    info["packets"] = pk
    starts = []
    for k, off in enumerate(seg_offsets):
        first = next((p for p in pk if int(p["pos"]) >= off), None)
        if first is None:
            P.add("%s: segment %d has no packets", name, k)
            starts.append(None)
            continue
        if is_video and "K" not in first.get("flags", ""):
            P.add("%s: segment %d does not start with a keyframe", name, k)
        starts.append(float(first["pts_time"]) if first.get("pts_time") not in (None, "N/A") else None)
    info["starts"] = starts
    # measured segment lengths from packet times (video: pts of the next segment's first frame)
    pts = sorted(float(p["pts_time"]) for p in pk if p.get("pts_time") not in (None, "N/A"))
    if pts:
        last = max(float(p["pts_time"]) + float(p.get("duration_time") or 0) for p in pk
                   if p.get("pts_time") not in (None, "N/A"))
        info["end"] = last
        info["first"] = pts[0]
    if is_video:
        def decoded(r):
            if r.returncode != 0 or r.stderr.strip():
                P.add("%s: does not decode cleanly: %s", name,
                      r.stderr.decode(errors="replace").strip()[:300])
        P.later(decoded, subprocess.run, [FFMPEG, "-nostdin", "-v", "error", "-xerror", "-i", cat, "-map",
                                          "0:v", "-f", "null", "-"], capture_output=True, timeout=600)
    return info


def check_iframes(P, outdir, rel, track_dir, init, work):
    pl = check_media_playlist(P, outdir, rel, iframes=True)
    if not pl:
        return None
    for k, s in enumerate(pl["segments"]):
        if not s["range"]:
            P.add("%s: %s has no EXT-X-BYTERANGE", rel, s["uri"])
            continue
        f = os.path.join(track_dir, s["uri"])
        if not os.path.isfile(f):
            continue
        seg = _read(f)
        n, o = s["range"]
        want = first_sample_end(seg)
        if o != 0 or want is None or n != want:
            P.add("%s: %s BYTERANGE %d@%d, want %s@0 (end of the IDR sample)", rel, s["uri"], n, o,
                  want)
            continue
        # decode the first, the middle and the last range
        if k in (0, len(pl["segments"]) // 2, len(pl["segments"]) - 1):
            part = os.path.join(work, "iframe-%s-%d.mp4" % (rel.replace("/", "_"), k))
            with open(part, "wb") as fo:
                fo.write(init)
                fo.write(seg[:n])

            def keyframe(j, uri=s["uri"]):
                fr = j.get("frames", [])
                if not fr or int(fr[0].get("key_frame", 0)) != 1:
                    P.add("%s: byte range of %s does not decode to a keyframe", rel, uri)
            P.later(keyframe, ffprobe_json, ["-select_streams", "v:0", "-show_entries",
                                             "frame=key_frame,pict_type", part])
    return pl


def parse_dur(s):
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", s or "")
    if not m:
        return None
    h, mi, se = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(se or 0)


def check_mpd(P, outdir, hls_tracks, measured):
    path = os.path.join(outdir, "manifest.mpd")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        P.add("manifest.mpd: %s", e)
        return
    if root.get("type") != "static":
        P.add("manifest.mpd: type is %s, want static", root.get("type"))
    if "urn:mpeg:dash:profile:isoff-live:2011" not in (root.get("profiles") or ""):
        P.add("manifest.mpd: profiles %s", root.get("profiles"))
    mpd_dur = parse_dur(root.get("mediaPresentationDuration"))
    if mpd_dur is None:
        P.add("manifest.mpd: bad mediaPresentationDuration %s", root.get("mediaPresentationDuration"))
    if not root.get("minBufferTime"):
        P.add("manifest.mpd: no minBufferTime")
    sets = root.findall(MPD_NS + "Period/" + MPD_NS + "AdaptationSet")
    video_sets = [a for a in sets if a.get("contentType") == "video" or
                  (a.get("mimeType") or "").startswith("video/")]
    video_tracks = {n: t for n, t in hls_tracks.items() if not t.get("audio")}
    families = {(t.get("codec") or "")[:4] for t in video_tracks.values()}
    if len(video_sets) != len(families):
        P.add("manifest.mpd: %d video AdaptationSets, want one per codec (%s)", len(video_sets),
              ", ".join(sorted(families)))
    reps = {}
    for vs in video_sets:
        if vs.get("segmentAlignment") != "true" or vs.get("startWithSAP") != "1":
            P.add("manifest.mpd: video AdaptationSet lacks segmentAlignment=true startWithSAP=1")
        mine = {r.get("id"): r for r in vs.findall(MPD_NS + "Representation")}
        if len({(r.get("codecs") or "")[:4] for r in mine.values()}) > 1:
            P.add("manifest.mpd: a video AdaptationSet mixes codecs")
        for name, r in mine.items():
            reps[name] = (r, vs)
    for name, t in video_tracks.items():
        if name not in reps:
            P.add("manifest.mpd: no Representation %s", name)
            continue
        r, vs = reps[name]
        if r.get("codecs", "") != (t.get("codec") or ""):
            P.add("manifest.mpd: %s codecs %s, init.mp4 says %s", name, r.get("codecs"), t.get("codec"))
        if (int(r.get("width", 0)), int(r.get("height", 0))) != (t.get("width"), t.get("height")):
            P.add("manifest.mpd: %s size %sx%s, decoded %sx%s", name, r.get("width"), r.get("height"),
                  t.get("width"), t.get("height"))
        if r.get("sar") not in ("1:1", None):
            P.add("manifest.mpd: %s sar %s", name, r.get("sar"))
        if int(r.get("bandwidth", 0)) < measured[name]["peak"] * 0.999:
            P.add("manifest.mpd: %s bandwidth %s < measured peak %.0f", name, r.get("bandwidth"),
                  measured[name]["peak"])
        check_timeline(P, outdir, name, r, vs, t)
    if len(reps) != len(video_tracks):
        P.add("manifest.mpd: %d video Representations, %d renditions", len(reps), len(video_tracks))
    audio_sets = [a for a in sets if a.get("contentType") == "audio" or
                  (a.get("mimeType") or "").startswith("audio/")]
    audio_tracks = {n: t for n, t in hls_tracks.items() if t.get("audio")}
    seen = set()
    for a in audio_sets:
        if a.find(MPD_NS + "AudioChannelConfiguration") is None:
            P.add("manifest.mpd: audio AdaptationSet without AudioChannelConfiguration")
        role = a.find(MPD_NS + "Role")
        if role is None or role.get("schemeIdUri") != "urn:mpeg:dash:role:2011" or role.get("value") not in (
                "main", "alternate", "commentary", "description", "dub", "supplementary"):
            P.add("manifest.mpd: audio AdaptationSet %s without a Role of urn:mpeg:dash:role:2011", a.get("id"))
        for r in a.findall(MPD_NS + "Representation"):
            t = audio_tracks.get(r.get("id"))
            if t is None:
                P.add("manifest.mpd: audio Representation %s has no HLS rendition", r.get("id"))
                continue
            seen.add(r.get("id"))
            if t.get("lang") and a.get("lang") != t["lang"]:
                P.add("manifest.mpd: %s lang %s, HLS LANGUAGE %s", r.get("id"), a.get("lang"), t["lang"])
            label = a.find(MPD_NS + "Label")
            # HLS cannot quote a '"' in NAME (we write "'"); the Label keeps it
            if label is not None and t.get("name") is not None and \
                    (label.text or "").replace('"', "'") != t["name"]:
                P.add("manifest.mpd: %s Label %r, HLS NAME %r", r.get("id"), label.text, t["name"])
            check_timeline(P, outdir, r.get("id"), r, a, t)
    if seen != set(audio_tracks):
        P.add("manifest.mpd: audio Representations %s, HLS audio renditions %s", sorted(seen),
              sorted(audio_tracks))
    for a in sets:
        if a.get("mimeType") == "text/vtt":
            for bu in a.iter(MPD_NS + "BaseURL"):
                if not os.path.isfile(os.path.join(outdir, bu.text or "")):
                    P.add("manifest.mpd: text track %s missing", bu.text)
    if mpd_dur is not None and measured.get("_total") and abs(mpd_dur - measured["_total"]) > 0.05:
        P.add("manifest.mpd: mediaPresentationDuration %.3f, segments add up to %.3f", mpd_dur,
              measured["_total"])


def check_timeline(P, outdir, name, rep, aset, track):
    st = rep.find(MPD_NS + "SegmentTemplate")
    if st is None:
        st = aset.find(MPD_NS + "SegmentTemplate")
    if st is None:
        P.add("manifest.mpd: %s has no SegmentTemplate", name)
        return
    ts = int(st.get("timescale", 1))
    start_no = int(st.get("startNumber", 1))
    media = st.get("media", "")
    init = st.get("initialization", "").replace("$RepresentationID$", name)
    if not os.path.isfile(os.path.join(outdir, init)):
        P.add("manifest.mpd: %s initialization %s missing", name, init)
    durs = []
    tl = st.find(MPD_NS + "SegmentTimeline")
    if tl is None:
        P.add("manifest.mpd: %s has no SegmentTimeline", name)
        return
    for s in tl.findall(MPD_NS + "S"):
        for _ in range(int(s.get("r", 0)) + 1):
            durs.append(int(s.get("d")) / ts)
    if len(durs) != len(track["extinf"]):
        P.add("manifest.mpd: %s has %d segments, HLS %d", name, len(durs), len(track["extinf"]))
        return
    for k, (d, e) in enumerate(zip(durs, track["extinf"])):
        if abs(d - e) > 0.0015:
            P.add("manifest.mpd: %s segment %d lasts %.4f, EXTINF %.3f", name, k, d, e)
            break
        uri = re.sub(r"\$Number%0(\d+)d\$", lambda m: "%0*d" % (int(m.group(1)), k + start_no), media)
        uri = uri.replace("$RepresentationID$", name)
        if not os.path.isfile(os.path.join(outdir, uri)):
            P.add("manifest.mpd: %s segment %s missing", name, uri)
            break


def check_thumbs(P, outdir):
    d = os.path.join(outdir, "thumbs")
    for f in ("poster.jpg", "sprite.jpg", "storyboard.vtt"):
        if not os.path.isfile(os.path.join(d, f)):
            P.add("thumbs/%s missing", f)
            return
    try:
        pj, sj = POOL.map(lambda f: ffprobe_json(["-show_entries", "stream=codec_name,width,height",
                                                  os.path.join(d, f)]), ("poster.jpg", "sprite.jpg"))
    except RuntimeError as e:
        P.add("thumbs: %s", e)
        return
    ps, ss = pj["streams"][0], sj["streams"][0]
    if ps["codec_name"] != "mjpeg" or ps["width"] > 1280:
        P.add("thumbs/poster.jpg: %s %dx%d", ps["codec_name"], ps["width"], ps["height"])
    vtt = open(os.path.join(d, "storyboard.vtt"), encoding="utf-8").read()
    if not vtt.startswith("WEBVTT"):
        P.add("thumbs/storyboard.vtt: no WEBVTT header")
    cues = re.findall(r"sprite\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", vtt)
    if not cues:
        P.add("thumbs/storyboard.vtt: no cues")
    for x, y, w, h in cues:
        if int(x) + int(w) > ss["width"] or int(y) + int(h) > ss["height"]:
            P.add("thumbs/storyboard.vtt: tile %s,%s,%s,%s outside the %dx%d sprite", x, y, w, h,
                  ss["width"], ss["height"])
            break


def vtt_times(text):
    out = []
    for a, b in re.findall(r"(\d+:\d\d:\d\d\.\d\d\d) --> (\d+:\d\d:\d\d\.\d\d\d)", text):
        def sec(t):
            h, m, s = t.split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
        out.append((sec(a), sec(b)))
    return out


BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|\d{3}))?$")


def check_audio(P, outdir, audio_media, work, tracks, measured):
    """Every EXT-X-MEDIA TYPE=AUDIO: attributes, its files, its decoded
    channels; per group at most one DEFAULT=YES and unique NAMEs. Returns
    {group: {"peak", "avg", "codecs", "renditions"}}."""
    groups = {}
    for a in audio_media:
        for k in ("GROUP-ID", "NAME", "DEFAULT", "AUTOSELECT", "URI", "CHANNELS"):
            if k not in a:
                P.add("master.m3u8: audio EXT-X-MEDIA %s lacks %s", a.get("URI"), k)
        lang = a.get("LANGUAGE")
        if lang is not None and not BCP47.match(lang):
            P.add("master.m3u8: audio LANGUAGE %r is not a BCP 47 tag", lang)
        g = groups.setdefault(a.get("GROUP-ID"), {"peak": 0.0, "avg": 0.0, "renditions": []})
        g["renditions"].append(a)
        rel = a.get("URI", "")
        pl = check_media_playlist(P, outdir, rel)
        if not pl:
            continue
        tdir = os.path.dirname(os.path.join(outdir, rel))
        name = os.path.dirname(rel)
        info = probe_track(P, tdir, pl, name, False, work)
        check_fragments(P, tdir, pl, name)
        peak, avg = _peak(tdir, pl)
        g["peak"], g["avg"] = max(g["peak"], peak), max(g["avg"], avg)
        tracks[name] = {"audio": True, "extinf": [x["duration"] for x in pl["segments"]],
                        "lang": lang, "name": a.get("NAME"), "pl": pl, "info": info}
        measured[name] = {"peak": peak}
        if info:
            st = info["stream"]
            if st.get("codec_name") != "aac":
                P.add("%s: audio codec %s, want aac", rel, st.get("codec_name"))
            if str(st.get("channels")) != a.get("CHANNELS"):
                P.add("%s: CHANNELS=%s, decoded %s channels", rel, a.get("CHANNELS"), st.get("channels"))
    for gid, g in groups.items():
        rs = g["renditions"]
        if sum(1 for a in rs if a.get("DEFAULT") == "YES") > 1:
            P.add("master.m3u8: audio group %s has more than one DEFAULT=YES", gid)
        names = [a.get("NAME") for a in rs]
        if len(set(names)) != len(names):
            P.add("master.m3u8: audio group %s repeats a NAME: %s", gid, names)
        if len({a.get("CHANNELS") for a in rs}) > 1:
            P.add("master.m3u8: audio group %s mixes channel counts", gid)
    return groups


def _peak_sets(track_dir, pl):
    """The peak segment bit rate as RFC 8216bis defines it: the largest rate
    of a set of contiguous segments lasting 0.5 to 1.5 target durations.
    Every segment of a regular length is such a set alone; a short last one
    counts with the segment before it."""
    segs = []
    for s in pl["segments"]:
        f = os.path.join(track_dir, s["uri"])
        size = os.path.getsize(f) if os.path.isfile(f) else 0
        if s.get("range"):   # an I-frame playlist's entry: its byte range
            size = s["range"][0]
        segs.append((size, s["duration"] or 0.0))
    target = pl["target"] or max((d for _, d in segs), default=0)
    peak = 0.0
    for i, (b, d) in enumerate(segs):
        if d < 0.5 * target and i > 0:
            b, d = b + segs[i - 1][0], d + segs[i - 1][1]
        if d > 0:
            peak = max(peak, b * 8 / d)
    return peak


def check_early_master(P, text, outdir, groups):
    """A master published while encoding declared BANDWIDTH before the
    segments existed: every variant's must still cover the peak segment bit
    rate of its rung's final segments (file size / EXTINF; a short last
    segment counted with the one before it, as RFC 8216bis's definition
    does: docs/PLAYABLE.md) plus its audio's; every I-frame playlist's, the
    peak of its byte ranges so counted."""
    try:
        m = parse_master(text)
    except ValueError as e:
        P.add("early master: %s", e)
        return
    if not m["variants"]:
        P.add("early master: no EXT-X-STREAM-INF")
    for v in m["variants"]:
        path = os.path.join(outdir, v.get("URI", ""))
        if not os.path.isfile(path):
            P.add("early master names %s, which the final output does not have", v.get("URI"))
            continue
        pl = parse_media(open(path, encoding="utf-8").read())
        g = groups.get(v.get("AUDIO")) if v.get("AUDIO") else None
        want = _peak_sets(os.path.dirname(path), pl) + (g["peak"] if g else 0.0)
        bw = int(v.get("BANDWIDTH", 0))
        if bw < want * 0.999:
            P.add("early master: %s BANDWIDTH %d < the final segments' peak %.0f (video + audio)",
                  v.get("URI"), bw, want)
    for v in m["iframes"]:   # the same for its I-frame playlists (their byte ranges)
        path = os.path.join(outdir, v.get("URI", ""))
        if not os.path.isfile(path):
            P.add("early master names %s, which the final output does not have", v.get("URI"))
            continue
        want = _peak_sets(os.path.dirname(path), parse_media(open(path, encoding="utf-8").read()))
        if int(v.get("BANDWIDTH", 0)) < want * 0.999:
            P.add("early master: %s BANDWIDTH %s < the final I-frames' peak %.0f", v.get("URI"),
                  v.get("BANDWIDTH"), want)


def check(outdir, source=None, expect_audio=None, check_duration=True, early_master=None):
    """Return a list of problems (empty: the output passes)."""
    P = Problems()
    master_path = os.path.join(outdir, "master.m3u8")
    if not os.path.isfile(master_path):
        P.add("master.m3u8 missing")
        return P
    try:
        m = parse_master(open(master_path, encoding="utf-8").read())
    except ValueError as e:
        P.add(str(e))
        return P
    if m["version"] != 7:
        P.add("master.m3u8: EXT-X-VERSION %s, want 7", m["version"])
    if not m["independent"]:
        P.add("master.m3u8: no EXT-X-INDEPENDENT-SEGMENTS")
    if not m["variants"]:
        P.add("master.m3u8: no EXT-X-STREAM-INF")
        return P
    audio_media = [x for x in m["media"] if x.get("TYPE") == "AUDIO"]
    if expect_audio is not None and bool(audio_media) != expect_audio:
        P.add("master.m3u8: audio rendition %s, expected %s", bool(audio_media), expect_audio)
    work = tempfile.mkdtemp(prefix="ss-check-")
    tracks, measured = {}, {}
    # the source's length (used at the end) is measured beside the rest
    src_len = POOL.submit(source_video_duration, source) if source and check_duration else None
    try:
        groups = check_audio(P, outdir, audio_media, work, tracks, measured)
        for x in m["media"]:
            if x.get("TYPE") == "SUBTITLES":
                rel = x.get("URI", "")
                path = os.path.join(outdir, rel)
                if not os.path.isfile(path):
                    P.add("master.m3u8: subtitle playlist %s missing", rel)
                    continue
                pl = parse_media(open(path, encoding="utf-8").read())
                for s in pl["segments"]:
                    vtt = os.path.join(os.path.dirname(path), s["uri"])
                    if not os.path.isfile(vtt):
                        P.add("%s: %s missing", rel, s["uri"])
                        continue
                    text = open(vtt, encoding="utf-8").read()
                    if not text.startswith("WEBVTT"):
                        P.add("%s: no WEBVTT header", s["uri"])
                    ts = vtt_times(text)
                    if not ts or any(b < a for a, b in ts) or ts != sorted(ts):
                        P.add("%s: cues missing or out of order", s["uri"])
        starts_ref, ref_name = None, None
        total = None
        probed = {}
        for v in m["variants"]:
            uri = v.get("URI")
            if not uri:
                P.add("master.m3u8: STREAM-INF without URI")
                continue
            name = os.path.dirname(uri)
            codecs = [c.strip() for c in v.get("CODECS", "").split(",")]
            g = None
            if audio_media:
                g = groups.get(v.get("AUDIO"))
                if g is None:
                    P.add("%s: AUDIO=%s names no audio group", uri, v.get("AUDIO"))
                elif "mp4a.40.2" not in codecs:
                    P.add("%s: CODECS %s lacks mp4a.40.2", uri, v.get("CODECS"))
            apeak, aavg = (g["peak"], g["avg"]) if g else (0.0, 0.0)
            if tracks.get(name, {}).get("audio"):   # an audio-only title's variant
                if any(not c.startswith("mp4a.") for c in codecs):
                    P.add("%s: audio-only variant with CODECS %s", uri, v.get("CODECS"))
                if "RESOLUTION" in v:
                    P.add("%s: audio-only variant with a RESOLUTION", uri)
                bw = int(v.get("BANDWIDTH", 0))
                if bw < measured[name]["peak"] * 0.999 or bw < apeak * 0.999:
                    P.add("%s: BANDWIDTH %d < measured peak %.0f", uri, bw, max(apeak, measured[name]["peak"]))
                continue
            first = name not in probed
            if first:
                pl = check_media_playlist(P, outdir, uri)
                if not pl:
                    probed[name] = None
                    continue
                tdir = os.path.join(outdir, name)
                info = probe_track(P, tdir, pl, name, True, work)
                check_fragments(P, tdir, pl, name)
                peak, avg = _peak(tdir, pl)
                probed[name] = (pl, tdir, info, peak, avg)
            if not probed[name]:
                continue
            pl, tdir, info, peak, avg = probed[name]
            measured[name] = {"peak": peak}
            codec = video_codec(info["init"]) if info else None
            st = info["stream"] if info else {}
            tracks[name] = {"audio": False, "codec": codec, "width": st.get("width"),
                            "height": st.get("height"), "extinf": [s["duration"] for s in pl["segments"]]}
            want_bw = peak + apeak
            bw = int(v.get("BANDWIDTH", 0))
            if bw < want_bw * 0.999:
                P.add("%s: BANDWIDTH %d < measured peak %.0f (video + audio)", uri, bw, want_bw)
            if bw > want_bw * 1.10 + 1000:
                P.add("%s: BANDWIDTH %d far above the measured peak %.0f", uri, bw, want_bw)
            if "AVERAGE-BANDWIDTH" not in v:
                P.add("%s: no AVERAGE-BANDWIDTH", uri)
            else:
                want_avg = avg + aavg
                if abs(int(v["AVERAGE-BANDWIDTH"]) - want_avg) > want_avg * 0.02 + 1000:
                    P.add("%s: AVERAGE-BANDWIDTH %s, measured %.0f", uri, v["AVERAGE-BANDWIDTH"], want_avg)
            if codec is None:
                P.add("%s: no avcC or av1C in init.mp4", name)
            elif not codecs or codecs[0] != codec:
                P.add("%s: CODECS %s but init.mp4's %s says %s", uri, v.get("CODECS"),
                      "SPS" if codec.startswith("avc1") else "sequence header", codec)
            if not first:
                continue
            if st:
                if v.get("RESOLUTION") != "%dx%d" % (st.get("width", 0), st.get("height", 0)):
                    P.add("%s: RESOLUTION %s, decoded %sx%s", uri, v.get("RESOLUTION"), st.get("width"),
                          st.get("height"))
                if st.get("width", 1) % 2 or st.get("height", 1) % 2:
                    P.add("%s: odd size %sx%s", name, st.get("width"), st.get("height"))
                if st.get("sample_aspect_ratio") not in ("1:1", None):
                    P.add("%s: SAR %s, want 1:1", name, st.get("sample_aspect_ratio"))
                if st.get("pix_fmt") != "yuv420p":
                    P.add("%s: pix_fmt %s, want yuv420p", name, st.get("pix_fmt"))
                if (codec or "").startswith("avc1") and st.get("profile") not in (
                        "High", "Main", "Constrained Baseline", "Baseline"):
                    P.add("%s: H.264 profile %s", name, st.get("profile"))
                fr = v.get("FRAME-RATE", "")
                if not re.fullmatch(r"\d+\.\d{3}", fr):
                    P.add("%s: FRAME-RATE %r not with 3 decimals", uri, fr)
                else:
                    n, d = (st.get("r_frame_rate") or "0/1").split("/")
                    if abs(float(fr) - int(n) / max(int(d), 1)) > 0.0015:
                        P.add("%s: FRAME-RATE %s, decoded %s", uri, fr, st.get("r_frame_rate"))
            # segment lengths and alignment (across rungs and codecs)
            if info:
                starts = info["starts"]
                t = 0.0
                for k, s in enumerate(pl["segments"]):
                    if starts[k] is not None and abs(starts[k] - t) > 0.0015 + 1e-9 * k:
                        P.add("%s: segment %d starts at %.4f, EXTINFs add up to %.4f", name, k,
                              starts[k], t)
                        break
                    t += s["duration"]
                if starts_ref is None:
                    starts_ref, ref_name = starts, name
                elif [round(x or -1, 3) for x in starts] != [round(x or -1, 3) for x in starts_ref]:
                    P.add("segment boundaries of %s and %s differ", name, ref_name)
                total = t
                if "end" in info and abs(info["end"] - t) > 0.0015:
                    P.add("%s: frames end at %.4f, EXTINFs add up to %.4f", name, info["end"], t)
            found = [x for x in m["iframes"] if x.get("URI") == name + "/iframes.m3u8"]
            if not found:
                P.add("master.m3u8: no EXT-X-I-FRAME-STREAM-INF for %s", name)
            elif info:
                check_iframes(P, outdir, name + "/iframes.m3u8", tdir, info["init"], work)
                if found[0].get("CODECS", "") != (codec or ""):
                    P.add("%s: I-frame CODECS %s", name, found[0].get("CODECS"))
        if audio_media and not any(not t["audio"] for t in tracks.values()):
            total = max((sum(t["extinf"]) for t in tracks.values()), default=None)
        measured["_total"] = total
        for name, t in tracks.items():
            if t["audio"] and t.get("info") and total is not None:
                a_total = sum(t["extinf"])
                if abs(a_total - total) > 0.05:
                    P.add("%s lasts %.3f s, video %.3f s", name, a_total, total)
        if source and total is not None and check_duration and probed:
            src = src_len.result()
            fps = None
            v0 = m["variants"][0]
            try:
                fps = float(v0.get("FRAME-RATE"))
            except (TypeError, ValueError):
                pass
            tol = (1.0 / fps if fps else 0.05) + 0.002
            if abs(src - total) > tol:
                P.add("total length %.3f s, source video %.3f s (more than one frame apart)", total, src)
        if early_master is not None:
            check_early_master(P, early_master, outdir, groups)
        if os.path.isfile(os.path.join(outdir, "manifest.mpd")):
            check_mpd(P, outdir, tracks, measured)
        if os.path.isdir(os.path.join(outdir, "thumbs")):
            check_thumbs(P, outdir)
        P.settle()
    finally:
        P.drain()
        if src_len:
            wait([src_len])
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)
    return P


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="check a streamscale output folder")
    ap.add_argument("outdir")
    ap.add_argument("--source")
    ap.add_argument("--no-duration", action="store_true", help="skip the length check against the source")
    ap.add_argument("--early-master", help="a master.m3u8 published while encoding")
    a = ap.parse_args(argv)
    early = open(a.early_master, encoding="utf-8").read() if a.early_master else None
    problems = check(a.outdir, a.source, check_duration=not a.no_duration, early_master=early)
    for p in problems:
        print("PROBLEM:", p)
    print("%s: %s" % (a.outdir, "OK" if not problems else "%d problem(s)" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
