#!/usr/bin/env python3
"""bench_encode.py — `streamscale-worker encode` against the ffmpeg command
line doing the same ladder, side by side on the same input and machine.
Run through tests/bench/bench_encode.sh (it builds and makes the inputs).

For each input: our encoder once to learn the ladder (rung sizes, caps,
levels, frame rate), then RUNS alternating runs of each tool under
/usr/bin/time -v; the ffmpeg command is one process with a split filter,
the same rungs, preset, CRF, maxrate/bufsize, profile/level, forced
keyframes on the same segment grid, AAC stereo 48 kHz once, and CMAF/fMP4
HLS output (-f hls -hls_segment_type fmp4). Reports medians of wall time,
CPU time (user+sys) and peak RSS, the ratios, bytes per rung and PSNR/SSIM
per rung (ffmpeg's psnr/ssim filters against the source brought to the
rung's frame rate and size with the same bicubic scaler). Prints a Markdown
table (and writes it to OUT/results.md). Never asserts a time.
"""
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time


def run_timed(argv, log):
    """Run under /usr/bin/time -v; return (wall s, cpu s, max rss KiB)."""
    t0 = time.monotonic()
    with open(log, "wb") as f:
        r = subprocess.run(["/usr/bin/time", "-v"] + argv, stdout=f, stderr=subprocess.STDOUT)
    wall = time.monotonic() - t0
    text = open(log, errors="replace").read()
    if r.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (r.returncode, " ".join(argv), text[-3000:]))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return wall, user + sys_, rss


def ffmpeg_cmd(src, out, job, preset, crf, seg, threads):
    rungs = job["renditions"]
    fr = job["frame_rate"]
    fps = {23.976: "24000/1001", 29.97: "30000/1001", 59.94: "60000/1001"}.get(fr, str(fr))
    n = len(rungs)
    labels = "".join("[s%d]" % i for i in range(n))
    chains = ["[0:v]fps=%s,format=yuv420p,split=%d%s" % (fps, n, labels)]
    src_w = job["source"]["display_width"]
    src_h = job["source"]["display_height"]
    for i, r in enumerate(rungs):
        if (r["width"], r["height"]) == (src_w, src_h) and job["source"]["sample_aspect"] == "1:1":
            chains.append("[s%d]null[v%d]" % (i, i))
        else:
            chains.append("[s%d]scale=%d:%d:flags=bicubic,setsar=1[v%d]" % (i, r["width"], r["height"], i))
    num, den = (fps + "/1").split("/")[:2]
    keyint = math.ceil(float(num) / float(den) * seg - 1e-9)
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", src,
            "-filter_complex", ";".join(chains)]
    for i in range(n):
        argv += ["-map", "[v%d]" % i]
    has_audio = job.get("audio") is not None
    if has_audio:
        argv += ["-map", "0:a:0"]
    argv += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-profile:v", "high",
             "-g", str(keyint), "-keyint_min", str(keyint), "-sc_threshold", "0",
             "-force_key_frames", "expr:gte(t,n_forced*%s)" % seg]
    if threads:
        argv += ["-threads:v", str(threads)]
    for i, r in enumerate(rungs):
        argv += ["-maxrate:v:%d" % i, "%dk" % r["maxrate_kbps"],
                 "-bufsize:v:%d" % i, "%dk" % (2 * r["maxrate_kbps"]),
                 "-level:v:%d" % i, "%d.%d" % (r["level"] // 10, r["level"] % 10)]
    vmap = " ".join("v:%d,agroup:aud" % i if has_audio else "v:%d" % i for i in range(n))
    if has_audio:
        argv += ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000"]
        vmap += " a:0,agroup:aud"
    argv += ["-f", "hls", "-hls_time", str(seg), "-hls_playlist_type", "vod",
             "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
             "-master_pl_name", "master.m3u8", "-var_stream_map", vmap,
             "-hls_fmp4_init_filename", "init.mp4",
             "-hls_segment_filename", os.path.join(out, "v%v", "seg_%05d.m4s"),
             os.path.join(out, "v%v", "playlist.m3u8")]
    return argv


def rung_files_ours(out, r):
    d = os.path.join(out, r["name"])
    return d, sorted(f for f in os.listdir(d) if f.endswith(".m4s"))


def concat(d, segs, dst):
    """init + segments into dst; returns their bytes. The init segment is
    the playlist's EXT-X-MAP (ffmpeg names it init_N.mp4 per variant)."""
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', open(os.path.join(d, "playlist.m3u8")).read())
    files = [init.group(1) if init else "init.mp4"] + segs
    with open(dst, "wb") as o:
        for f in files:
            with open(os.path.join(d, f), "rb") as i:
                o.write(i.read())
    return sum(os.path.getsize(os.path.join(d, f)) for f in files)


def quality(enc, src, r, fps):
    """(PSNR average, SSIM all) of enc vs src brought to the rung, one pass."""
    ref = "[1:v]fps=%s,scale=%d:%d:flags=bicubic,format=yuv420p,setsar=1,setpts=PTS-STARTPTS," \
          "split[r1][r2]" % (fps, r["width"], r["height"])
    dec = "[0:v]setpts=PTS-STARTPTS,format=yuv420p,split[d1][d2]"
    p = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", enc, "-i", src, "-filter_complex",
                        "%s;%s;[d1][r1]psnr[o1];[d2][r2]ssim[o2]" % (ref, dec),
                        "-map", "[o1]", "-f", "null", "-", "-map", "[o2]", "-f", "null", "-"],
                       capture_output=True, text=True)
    pm = re.search(r"PSNR .*average:([\d.inf]+)", p.stderr)
    sm = re.search(r"SSIM .*All:([\d.]+)", p.stderr)
    return (float(pm.group(1)) if pm else float("nan"), float(sm.group(1)) if sm else float("nan"))


def bench(name, src, outroot, worker, runs, preset, crf, seg, threads):
    base = os.path.join(outroot, name)
    os.makedirs(base, exist_ok=True)
    ours_out = os.path.join(base, "ours")
    cli_out = os.path.join(base, "cli")
    ours = [worker, "encode", src, ours_out, "--preset", preset, "--crf", str(crf),
            "--segment-seconds", str(seg), "--no-thumbnails", "--threads", str(threads)]
    subprocess.run(["rm", "-rf", ours_out], check=True)
    subprocess.run(ours, check=True, capture_output=True)
    job = json.load(open(os.path.join(ours_out, "job.json")))
    cli = ffmpeg_cmd(src, cli_out, job, preset, crf, seg, threads)
    res = {"ours": [], "cli": []}
    for k in range(runs):
        for tool, argv, out in (("cli", cli, cli_out), ("ours", ours, ours_out)):
            subprocess.run(["rm", "-rf", out], check=True)
            os.makedirs(out, exist_ok=True)
            res[tool].append(run_timed(argv, os.path.join(base, "%s-%d.log" % (tool, k))))
            print("  %s run %d: wall %.2fs cpu %.2fs rss %d MiB" % (tool, k + 1, res[tool][-1][0],
                  res[tool][-1][1], res[tool][-1][2] // 1024), flush=True)
    med = {t: [statistics.median(x[i] for x in res[t]) for i in range(3)] for t in res}
    # runs alternate, so each (CLI, ours) pair saw about the same load from
    # the rest of the machine: the median of the pairwise ratios is the
    # steadier figure on a shared box.
    med["pair"] = [statistics.median(o[i] / c[i] for o, c in zip(res["ours"], res["cli"]))
                   for i in range(3)]
    med["runs"] = res
    fr = job["frame_rate"]
    fps = {23.976: "24000/1001", 29.97: "30000/1001", 59.94: "60000/1001"}.get(fr, str(fr))
    rows = []
    for i, r in enumerate(job["renditions"]):
        d, segs = rung_files_ours(ours_out, r)
        a = os.path.join(base, "ours-%s.mp4" % r["name"])
        ob = concat(d, segs, a)
        cd = os.path.join(cli_out, "v%d" % i)
        csegs = sorted(f for f in os.listdir(cd) if f.endswith(".m4s"))
        b = os.path.join(base, "cli-%s.mp4" % r["name"])
        cb = concat(cd, csegs, b)
        oq = quality(a, src, r, fps)
        cq = quality(b, src, r, fps)
        rows.append((r["name"], "%dx%d" % (r["width"], r["height"]), ob, cb, oq, cq, len(segs), len(csegs)))
    return job, cli, ours, med, rows


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--segment-seconds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("inputs", nargs="+", help="NAME=PATH")
    a = ap.parse_args()
    md = []
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    md.append("Machine: %s cores (`nproc`), %s; medians of %d runs, runs alternate between the tools.\n"
              % (cpu, open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
                 a.runs))
    for spec in a.inputs:
        name, path = spec.split("=", 1)
        print("== %s (%s)" % (name, path), flush=True)
        job, cli, ours, med, rows = bench(name, path, a.out, a.worker, a.runs, a.preset, a.crf,
                                          a.segment_seconds, a.threads)
        o, c = med["ours"], med["cli"]
        md.append("### %s — %s, %.1f s, %dx%d %s fps, rungs %s\n" % (
            name, os.path.basename(path), job["duration"], job["source"]["width"], job["source"]["height"],
            job["frame_rate"], "/".join(r["name"] for r in job["renditions"])))
        pr = med["pair"]
        md.append("| | streamscale | ffmpeg CLI | ratio of medians | median of paired ratios |")
        md.append("| --- | --- | --- | --- | --- |")
        md.append("| wall time (s) | %.2f | %.2f | %.2f | **%.2f** |" % (o[0], c[0], o[0] / c[0], pr[0]))
        md.append("| CPU user+sys (s) | %.2f | %.2f | %.2f | %.2f |" % (o[1], c[1], o[1] / c[1], pr[1]))
        md.append("| peak RSS (MiB) | %.0f | %.0f | %.2f | **%.2f** |" % (o[2] / 1024, c[2] / 1024,
                                                                       o[2] / c[2], pr[2]))
        md.append("")
        md.append("Runs (wall s / CPU s): streamscale %s; CLI %s." % (
            ", ".join("%.1f/%.1f" % (x[0], x[1]) for x in med["runs"]["ours"]),
            ", ".join("%.1f/%.1f" % (x[0], x[1]) for x in med["runs"]["cli"])))
        md.append("")
        md.append("| rung | size | bytes ours | bytes CLI | bytes ratio | PSNR ours | PSNR CLI | "
                  "ΔPSNR dB | SSIM ours | SSIM CLI | segments ours/CLI |")
        md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for nm, size, ob, cb, oq, cq, ns, ncs in rows:
            md.append("| %s | %s | %d | %d | %.3f | %.3f | %.3f | %+.3f | %.4f | %.4f | %d/%d |" % (
                nm, size, ob, cb, ob / cb, oq[0], cq[0], oq[0] - cq[0], oq[1], cq[1], ns, ncs))
        md.append("")
        md.append("<details><summary>commands</summary>\n\n```\n%s\n\n%s\n```\n</details>\n" % (
            " ".join(shlex.quote(x) for x in ours), " ".join(shlex.quote(x) for x in cli)))
        print("\n".join(md[-12:]), flush=True)
    text = "\n".join(md) + "\n"
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
