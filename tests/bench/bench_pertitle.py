#!/usr/bin/env python3
"""bench_pertitle.py — the per-title ladder against the fixed (auto) ladder
on the same inputs and machine. Run through tests/bench/bench_pertitle.sh
(it builds, fetches and makes the inputs).

For each input, `streamscale-worker encode` three times (thumbnails off,
the same preset, CRF default and segment length):

  auto       --ladder auto                     (the fixed ladder, capped CRF 23)
  per-title  --ladder per-title                (capped CRF at the chosen CRFs)
  2-pass     --ladder per-title --rate-control two-pass

Each rung is measured independently of our own code: init + segments are
concatenated, decoded by ffmpeg, scaled (bicubic) to the display size and
compared with the source brought to the output frame rate at that size
(ffmpeg's psnr and ssim filters, luma, every frame). Rate = bytes of init +
segments x 8 / duration.

BD-rate (Bjøntegaard delta rate) of per-title against auto: for each ladder
the rungs give points (PSNR, log10 rate); a monotone piecewise-cubic
Hermite curve (PCHIP, Fritsch-Carlson) through them gives log10 rate as a
function of PSNR; the mean difference of the two curves over the PSNR range
both cover, as 10^mean - 1, is the rate per-title needs at equal quality
(negative: fewer bits). PCHIP instead of the classic cubic fit because a
ladder has 2 to 5 points. The same on SSIM expressed in dB (-10 log10(1 -
SSIM)). A ladder of one rung has no curve: then the figure is that rung's
rate against the other ladder's curve at its quality ("at one point"; up to
0.5 dB past the curve's end it is extended along its end slope, and says
so).

Two-pass: every rung's elementary-stream rate (video_bitrate_es) against
its target. Cost: the per-title pass (timings.analysis: decode of the
windows, analysis, probe encodes and their measurement) against the encode
time of the fixed ladder and of the per-title ladder (wall seconds on this
machine, and the pass's CPU seconds against the whole fixed encode's).

Prints a Markdown table and writes it to OUT/results.md. Never asserts.
"""
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time


# ---- BD-rate ----------------------------------------------------------------

def _pchip_slopes(x, y):
    n = len(x)
    h = [x[i + 1] - x[i] for i in range(n - 1)]
    d = [(y[i + 1] - y[i]) / h[i] for i in range(n - 1)]
    if n == 2:
        return [d[0], d[0]]
    m = [0.0] * n
    for i in range(1, n - 1):
        if d[i - 1] * d[i] <= 0:
            m[i] = 0.0
        else:
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / d[i - 1] + w2 / d[i])

    def end(h0, h1, d0, d1):
        s = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        if s * d0 <= 0:
            return 0.0
        if d0 * d1 <= 0 and abs(s) > abs(3 * d0):
            return 3 * d0
        return s
    m[0] = end(h[0], h[1], d[0], d[1])
    m[-1] = end(h[-1], h[-2], d[-1], d[-2])
    return m


def _pchip_eval(x, y, m, t):
    for i in range(len(x) - 1):
        if x[i] <= t <= x[i + 1]:
            hh = x[i + 1] - x[i]
            s = (t - x[i]) / hh
            return ((2 * s ** 3 - 3 * s ** 2 + 1) * y[i] + (s ** 3 - 2 * s ** 2 + s) * hh * m[i] +
                    (-2 * s ** 3 + 3 * s ** 2) * y[i + 1] + (s ** 3 - s ** 2) * hh * m[i + 1])
    raise ValueError("outside the curve")


def _curve(points):
    """points: [(rate, quality)] -> (x = quality, increasing; y = log10 rate),
    keeping only points that add quality (a rung that costs more for less
    quality is not on the curve)."""
    pts = sorted(points, key=lambda p: (p[0], -p[1]))
    keep = []
    for r, q in pts:
        if not keep or q > keep[-1][1] + 1e-9:
            keep.append((r, q))
    return [q for _, q in keep], [math.log10(r) for r, _ in keep]


EXTRAP_DB = 0.5   # a lone point may lie this far past the other curve's end


def bd_rate(ref, test, steps=4000):
    """Percent rate of test against ref at equal quality, over the shared
    quality range; (value, (lo, hi), kind)."""
    xa, ya = _curve(ref)
    xb, yb = _curve(test)
    if len(xa) < 2 and len(xb) < 2:
        return None, None, "no curve"
    if len(xb) < 2 or len(xa) < 2:
        # one point against the other ladder's curve
        (xs, ys), (xp, yp) = ((xa, ya), (xb, yb)) if len(xb) < 2 else ((xb, yb), (xa, ya))
        q = xp[0]
        ms = _pchip_slopes(xs, ys)
        kind = "at one point"
        if xs[0] <= q <= xs[-1]:
            r = _pchip_eval(xs, ys, ms, q)
        elif xs[0] - EXTRAP_DB <= q < xs[0]:
            r = ys[0] + ms[0] * (q - xs[0])
            kind = "at one point, %.2f dB below the other curve, extended along its end slope" % (xs[0] - q)
        elif xs[-1] < q <= xs[-1] + EXTRAP_DB:
            r = ys[-1] + ms[-1] * (q - xs[-1])
            kind = "at one point, %.2f dB above the other curve, extended along its end slope" % (q - xs[-1])
        else:
            return None, (q, q), "one point outside the other curve"
        diff = yp[0] - r if len(xb) < 2 else r - yp[0]
        return (10 ** diff - 1) * 100, (q, q), kind
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if hi <= lo:
        return None, (lo, hi), "no overlap"
    ma, mb = _pchip_slopes(xa, ya), _pchip_slopes(xb, yb)
    s = 0.0
    for k in range(steps):
        t = lo + (hi - lo) * (k + 0.5) / steps
        s += _pchip_eval(xb, yb, mb, t) - _pchip_eval(xa, ya, ma, t)
    return (10 ** (s / steps) - 1) * 100, (lo, hi), "over the overlap"


def ssim_db(s):
    return -10 * math.log10(max(1e-10, 1 - s))


# ---- measuring ---------------------------------------------------------------

def quality(out, r, src, dw, dh, fps, work):
    """(PSNR-Y, SSIM-Y, bytes) of rendition r scaled to dw x dh against src."""
    d = os.path.join(out, r["name"])
    segs = sorted(f for f in os.listdir(d) if f.endswith(".m4s"))
    cat = os.path.join(work, r["name"] + ".mp4")
    n = 0
    with open(cat, "wb") as o:
        for f in ["init.mp4"] + segs:
            with open(os.path.join(d, f), "rb") as i:
                b = i.read()
                n += len(b)
                o.write(b)
    fc = ("[0:v]setpts=PTS-STARTPTS,scale=%d:%d:flags=bicubic,format=yuv420p,split[a][b];"
          "[1:v]fps=%s,scale=%d:%d:flags=bicubic,format=yuv420p,setpts=PTS-STARTPTS,split[c][d];"
          "[a][c]psnr;[b][d]ssim" % (dw, dh, fps, dw, dh))
    p = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", cat, "-i", src, "-filter_complex",
                        fc, "-f", "null", "-"], capture_output=True, text=True)
    pm = re.search(r"PSNR y:([\d.inf]+)", p.stderr)
    sm = re.search(r"SSIM Y:([\d.]+)", p.stderr)
    os.unlink(cat)
    return (float(pm.group(1)) if pm else float("nan"), float(sm.group(1)) if sm else float("nan"), n)


def encode(worker, src, out, args, preset, seg, log):
    subprocess.run(["rm", "-rf", out], check=True)
    argv = [worker, "encode", src, out, "--no-thumbnails", "--preset", preset, "--segment-seconds",
            str(seg)] + args
    t0 = time.monotonic()
    with open(log, "wb") as f:
        r = subprocess.run(["/usr/bin/time", "-f", "cpu %U %S"] + argv, stdout=f, stderr=subprocess.STDOUT)
    wall = time.monotonic() - t0
    text = open(log, errors="replace").read()
    if r.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(argv), text[-3000:]))
    m = re.search(r"cpu ([\d.]+) ([\d.]+)", text)
    cpu = float(m.group(1)) + float(m.group(2)) if m else float("nan")
    with open(os.path.join(out, "job.json")) as f:
        return json.load(f), wall, cpu, argv


MODES = (("auto", ["--ladder", "auto"]),
         ("per-title", ["--ladder", "per-title"]),
         ("2-pass", ["--ladder", "per-title", "--rate-control", "two-pass"]))


def bench(name, src, outroot, worker, preset, seg):
    base = os.path.join(outroot, name)
    os.makedirs(base, exist_ok=True)
    res = {}
    for mode, args in MODES:
        out = os.path.join(base, mode)
        job, wall, cpu, argv = encode(worker, src, out, args, preset, seg,
                                      os.path.join(base, mode + ".log"))
        fr = job["frame_rate"]
        fps = {23.976: "24000/1001", 29.97: "30000/1001", 59.94: "60000/1001"}.get(fr, str(fr))
        dw, dh = job["quality"]["width"], job["quality"]["height"]
        rows = []
        for r in job["renditions"]:
            p, s, n = quality(out, r, src, dw, dh, fps, base)
            rows.append({"r": r, "psnr": p, "ssim": s, "bytes": n,
                         "kbps": n * 8 / job["duration"] / 1000})
        res[mode] = {"job": job, "wall": wall, "cpu": cpu, "argv": argv, "rows": rows}
        print("  %-9s wall %6.2fs cpu %6.2fs  %s" % (mode, wall, cpu, "  ".join(
            "%s %.0fk %.2fdB" % (x["r"]["name"], x["kbps"], x["psnr"]) for x in rows)), flush=True)
    return res


def fmt_rows(md, mode, x):
    job = x["job"]
    for row in x["rows"]:
        r = row["r"]
        if mode == "auto":
            ctl = "CRF %s, cap %d" % (r.get("crf"), r["maxrate_kbps"])
        elif mode == "per-title":
            ctl = "CRF %s, cap %d" % (r.get("crf"), r["maxrate_kbps"])
        else:
            ctl = "target %d, got %.0f (%+.1f %%)" % (r["target_kbps"], r["video_bitrate_es"] / 1000,
                                                     (r["video_bitrate_es"] / 1000 / r["target_kbps"] - 1) * 100)
        md.append("| %s | %s | %dx%d | %s | %.0f | %d | %.3f | %.4f | %s | %s |" % (
            mode, r["name"], r["width"], r["height"], ctl, row["kbps"], row["bytes"], row["psnr"],
            row["ssim"], "%.2f" % r["predicted_psnr"] if "predicted_psnr" in r else "",
            "%.2f / %.4f" % (r["psnr"], r["ssim"]) if r.get("psnr") is not None else ""))


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--segment-seconds", type=int, default=4)
    ap.add_argument("inputs", nargs="+", help="NAME=PATH")
    a = ap.parse_args()
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    model = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
    md = ["Machine: %s cores (`nproc`), %s; one run per mode.\n" % (cpu, model)]
    summary = ["| input | class | auto ladder bytes | per-title bytes | Δ size | BD-rate PSNR | BD-rate SSIM | "
               "two-pass max error | analysis s | auto encode s | per-title encode s | analysis / auto | "
               "analysis CPU / auto CPU |",
               "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for spec in a.inputs:
        name, path = spec.split("=", 1)
        print("== %s (%s)" % (name, path), flush=True)
        res = bench(name, path, a.out, a.worker, a.preset, a.segment_seconds)
        au, pt, tp = res["auto"], res["per-title"], res["2-pass"]
        job = pt["job"]
        an = job["per_title"]["analysis"]
        pts = lambda x, k: [(row["kbps"], row[k] if k == "psnr" else ssim_db(row["ssim"]))  # noqa: E731
                            for row in x["rows"]]
        bdp = bd_rate(pts(au, "psnr"), pts(pt, "psnr"))
        bds = bd_rate(pts(au, "ssim"), pts(pt, "ssim"))
        bits_a = sum(r["bytes"] for r in au["rows"])
        bits_p = sum(r["bytes"] for r in pt["rows"])
        err2 = max(abs(r["video_bitrate_es"] / 1000 / r["target_kbps"] - 1) for r in tp["job"]["renditions"])
        t_an = job["timings"]["analysis"]
        t_au = au["job"]["timings"]["encode"]
        t_pe = job["timings"]["encode"]
        cpu_an = job["per_title"]["cpu_seconds"]

        def bdtxt(b):
            v, rng, kind = b
            if v is None:
                return "n/a (%s)" % kind
            return "**%+.1f %%**%s" % (v, "" if kind == "over the overlap" else " (%s)" % kind)
        md.append("### %s — %s, %.1f s, %dx%d %s fps; class %s (SI %.1f, TI %.1f, bpp at CRF 30 %.4f, "
                  "%d scene cuts in %d sampled frames)\n" % (
                      name, os.path.basename(path), job["duration"], job["source"]["display_width"],
                      job["source"]["display_height"], job["frame_rate"], an["class"], an["si"]["mean"],
                      an["ti"]["mean"], an["bpp_crf30"], len(an["scene_cuts"]), an["frames"]))
        md.append("| ladder | rung | size | rate control (kbps) | kbps | bytes | PSNR-Y | SSIM-Y | "
                  "predicted PSNR | job.json psnr / ssim (sampled) |")
        md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for mode in ("auto", "per-title", "2-pass"):
            fmt_rows(md, mode, res[mode])
        md.append("")
        md.append("Total ladder bytes: auto %d, per-title %d (%+.1f %%), two-pass %d. BD-rate of per-title "
                  "against auto: PSNR %s over %s dB, SSIM %s. Two-pass: largest rung error %.1f %%. "
                  "Per-title pass %.2f s wall (%.2f s CPU) vs the fixed ladder's encode %.2f s wall (%.2f s "
                  "CPU for the whole auto run): %.0f %%; the per-title ladder's own encode %.2f s.\n" % (
                      bits_a, bits_p, (bits_p / bits_a - 1) * 100, sum(r["bytes"] for r in tp["rows"]),
                      bdtxt(bdp), "%.2f-%.2f" % bdp[1] if bdp[1] else "-", bdtxt(bds), err2 * 100, t_an,
                      cpu_an, t_au, au["cpu"], t_an / t_au * 100, t_pe))
        md.append("<details><summary>why each per-title rung</summary>\n")
        for r in job["renditions"]:
            md.append("- %s: %s" % (r["name"], r["why"]))
        md.append("\n</details>\n")
        md.append("<details><summary>commands</summary>\n\n```\n%s\n```\n</details>\n" % "\n".join(
            " ".join(shlex.quote(x) for x in res[m]["argv"]) for m in ("auto", "per-title", "2-pass")))
        summary.append("| %s | %s | %d | %d | %+.1f %% | %s | %s | %.1f %% | %.2f | %.2f | %.2f | %.0f %% | %.0f %% |" % (
            name, an["class"], bits_a, bits_p, (bits_p / bits_a - 1) * 100, bdtxt(bdp), bdtxt(bds),
            err2 * 100, t_an, t_au, t_pe, t_an / t_au * 100, cpu_an / au["cpu"] * 100))
        print("\n".join(md[-8:]), flush=True)
    text = "\n".join(summary) + "\n\n" + "\n".join(md) + "\n"
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
