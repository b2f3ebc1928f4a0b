#!/usr/bin/env python3
"""Playable while it is still encoding (docs/PLAYABLE.md).

`streamscale submit --wait` sends a title to two worker daemons (one
encoder thread each, chunk_seconds 8) that split it (2 s segments, chunks
of 2, 4, 4, ... segments). As soon as one of them claims
the fourth chunk, it is stopped (SIGSTOP, lease long enough; at a moment
when that chunk is all it holds, hold_worker), so
the job stays `running` with a gap in front of the chunks the other worker
goes on to finish. Then, while it runs:

- master.m3u8 and every rung's and the audio's playlist are published as
  EVENT playlists (EXT-X-START at 0, no ENDLIST) that list exactly the
  segments before the gap, all stored; later chunks that are done are not
  listed; the early master has no AVERAGE-BANDWIDTH, and every rung's
  I-frame playlist (EVENT, the same segments);
- the API says playable_at/playable_url, `streamscale status` prints them,
  job.playable came with the URL (events checked against proto/), and the
  waiting `submit --wait` printed it;
- hls.js in chromium (tests/browser/playable.mjs) plays from the start for
  8 s and plays on after a seek inside the listed range; the dashboard's
  preview of the running job loads it.

Then the worker goes on (SIGCONT) and the job completes: the VOD playlists
list the same segment URIs first, then the rest, with ENDLIST; the checker
passes on the final output, with the early master's BANDWIDTH checked
against every final segment; job.json has timings.first_playable_seconds.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import check_output  # noqa: E402
from lib.harness import (BIN, SOURCE, Api, Harness, RedisClient, gen_clip, http_json, main,  # noqa: E402
                         run_node_script, wait_until)
from test_media_players import MediaServer  # noqa: E402

BROWSER_DIR = os.path.join(SOURCE, "tests", "browser")
TOKEN = "test-token"
WENV = {"STREAMSCALE_LEASE_SECONDS": "120", "STREAMSCALE_HEARTBEAT_MS": "300",
        "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_THREADS": "1", "STREAMSCALE_SLOTS": "1",
        "STREAMSCALE_CHUNK_SECONDS": "8"}


def playlist(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    segs = re.findall(r"#EXTINF:([0-9.]+),\n(seg_\d{5}\.m4s)\n", text)
    return text, [(u, float(d)) for d, u in segs]


def items(job):
    return {i["name"]: i for i in job.get("items") or []}


def hold_worker(h, api, rport, jid, pick, what, alone=True, tries=10):
    """Stop (SIGSTOP) the worker of the chunk that pick(job) names ((chunk,
    worker) or None) at a moment when it holds no publish lease and (alone)
    that chunk, already encoding, is all it holds: a run that goes on from
    chunk to chunk claims the next chunk (running, 0 %) while it still
    encodes, hands over and publishes the one before, and a worker stopped
    then would keep that chunk, and the early publish, until it goes on.
    Else it goes on and is stopped again. Returns (chunk, worker); the
    caller sends SIGCONT."""
    rc = RedisClient(rport)

    def lease_free():
        until = int(rc("HGET", "{ss}:job:" + jid, "pub_until_ms") or 0)
        sec, usec = rc("TIME")
        return until <= int(sec) * 1000 + int(usec) // 1000

    def state(pid):
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    try:
        for _ in range(tries):
            chunk, who = wait_until(lambda: pick(api.job(jid)), 120, what, interval=0.02)
            h.send_signal(who, signal.SIGSTOP)
            wait_until(lambda: state(h.procs[who].pid) == "T", 10, "%s to stop" % who)
            # stopped, every send it made has returned: on loopback its bytes
            # are in Redis's socket, served before a later command; two reads
            # a round trip apart must agree
            def held_by_who():
                it = items(api.job(jid))
                return it, [n for n, i in it.items() if i["state"] == "running" and i["worker"] == who]
            _, first = held_by_who()
            rc("PING")
            it, mine = held_by_who()
            if not alone or (mine == first == [chunk] and (it[chunk].get("progress") or 0) > 0):
                try:   # (the other worker's publish takes milliseconds)
                    wait_until(lease_free, 3, "no publish lease running", interval=0.01)
                    return chunk, who
                except AssertionError:
                    pass
            print("%s was stopped holding %s%s; again" % (
                who, ", ".join(mine), "" if lease_free() else " and the publish lease"))
            h.send_signal(who, signal.SIGCONT)
            wait_until(lease_free, 30, "the publish lease to end")
        raise AssertionError("could not stop a worker holding only its chunk")
    finally:
        rc.close()


def two_workers(h):
    """Redis, a coordinator writing to out/, workers w1 and w2 (WENV):
    (API URL, Api, Redis port)."""
    rport = h.redis()
    url = h.coordinator(redis_port=rport, token=TOKEN,
                        extra={"STREAMSCALE_REAP_INTERVAL_MS": "200",
                               "STREAMSCALE_OUTPUT_DIR": h.path("out")})
    api = Api(url, TOKEN, harness=h)
    h.worker("w1", rport, extra=WENV)
    h.worker("w2", rport, extra=WENV)
    return url, api, rport


def test_playable():
    assert os.path.exists("/usr/bin/chromium"), "chromium is missing: deploy/deps.sh test-browser"
    assert os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "hls.js", "dist")), \
        "hls.js is missing from tests/browser/node_modules (npm ci)"
    with Harness("playable") as h:
        t0 = time.monotonic()
        src = gen_clip(h.path("talk.mp4"), seconds=36, size="640x360", rate=25)
        url, api, rport = two_workers(h)
        # submitted with the CLI, which waits and says when it is playable
        cenv = dict(os.environ, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN)
        cli = subprocess.Popen([os.path.join(BIN, "streamscale"), "submit", "file://" + src, "--wait",
                                "--segment-seconds", "2", "--ladder", "180,360", "--no-thumbnails"],
                               env=cenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def submitted():
            st, body = http_json("GET", url + "/v1/jobs", token=TOKEN)
            return [j["id"] for j in body["jobs"]] if st == 200 else None
        jid = wait_until(submitted, 30, "the submitted job")[0]
        out = h.path("out", jid)

        # ---- hold the job: stop the worker of the fourth chunk (a later
        # one is done while it is held)
        def c3(j):
            assert j["state"] == "running", "the job ended before a worker could be held: %s" % j["state"]
            i = items(j).get("c3")
            return ("c3", i["worker"]) if i and i["state"] == "running" and i["worker"] and \
                (i.get("progress") or 0) > 0 else None
        chunk, who = hold_worker(h, api, rport, jid, c3, "a worker on c3")
        other = "w1" if who == "w2" else "w2"
        try:
            # everything but the held chunk (and finalize) gets done
            def rest_done():
                it = items(api.job(jid))
                return all(i["state"] == "done" for n, i in it.items() if n not in (chunk, "finalize"))
            wait_until(rest_done, 120, "%s to finish every other item" % other, interval=0.2)
            j = api.job(jid)
            assert j["state"] == "running" and items(j)["finalize"]["state"] == "waiting", j
            # the gap: the segments before the held chunk, and not one more
            k = int(chunk[1:])
            gap = 2 + 4 * (k - 1)   # chunk 0 has 2 segments, the next ones 4
            later = [n for n, i in items(j).items() if n.startswith("c") and int(n[1:]) > k]
            assert all(items(j)[n]["state"] == "done" for n in later)

            def listed():
                _, s = playlist(os.path.join(out, "360p", "playlist.m3u8"))
                return len(s) == gap
            wait_until(listed, 20, "the EVENT playlists to list the %d segments before %s" % (gap, chunk))
            with open(os.path.join(out, "master.m3u8"), encoding="utf-8") as f:
                early_master = f.read()
            assert "AVERAGE-BANDWIDTH" not in early_master, early_master
            assert early_master.count("#EXT-X-STREAM-INF:") == 2, early_master
            assert early_master.count("#EXT-X-I-FRAME-STREAM-INF:") == 2, early_master
            early = {}
            for name in ("180p", "360p", "audio"):
                text, segs = playlist(os.path.join(out, name, "playlist.m3u8"))
                assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-START:TIME-OFFSET=0" in text, text
                assert "#EXT-X-ENDLIST" not in text, text
                assert [u for u, _ in segs] == ["seg_%05d.m4s" % i for i in range(gap)], (name, segs)
                if name != "audio":   # its I-frame playlist lists the same segments
                    with open(os.path.join(out, name, "iframes.m3u8"), encoding="utf-8") as f:
                        itext = f.read()
                    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in itext and "#EXT-X-ENDLIST" not in itext, itext
                    assert re.findall(r"(seg_\d{5}\.m4s)\n", itext) == [u for u, _ in segs], itext
                for u, _ in segs:
                    assert os.path.getsize(os.path.join(out, name, u)) > 0, (name, u)
                early[name] = segs
            # a later chunk is done and stored, yet not listed: it waits for the gap
            assert os.path.isfile(os.path.join(out, "360p", "seg_%05d.m4s" % (gap + 4)))
            available = sum(d for _, d in early["360p"])
            print("held %s on %s: EVENT playlists list %d segments (%.1f s) [at %.0f s]" % (
                chunk, who, gap, available, time.monotonic() - t0))

            # ---- signals: API, CLI, event
            assert j["playable_url"] and j["playable_url"].endswith(jid + "/master.m3u8"), j
            assert j["playable_at"] and j["timings"]["first_playable_seconds"] > 0, j
            st = subprocess.run([os.path.join(BIN, "streamscale"), "status", jid], capture_output=True,
                                text=True, timeout=30, env=cenv)
            assert st.returncode == 0 and "playable:" in st.stdout and j["playable_url"] in st.stdout, st.stdout
            ev = [e for e in api.events(jid) if e["type"] == "job.playable"]
            assert len(ev) == 1 and ev[0]["data"]["url"] == j["playable_url"], ev
            assert ev[0]["data"]["segments"] >= 2, ev

            # ---- hls.js plays it while it is still encoding
            profile = h.path("chromium-profile")
            os.makedirs(profile)
            with MediaServer({"job": out}, h.path("requests.log")) as srv:
                h.logs["requests"] = h.path("requests.log")
                env = dict(os.environ, SS_BASE="http://127.0.0.1:%d" % srv.port,
                           SS_MASTER="/m/job-1/master.m3u8", SS_AVAILABLE="%.3f" % available,
                           SS_PROFILE=profile, SS_ARTIFACTS=h.artifacts, SS_URL=url, SS_TOKEN=TOKEN,
                           SS_JOB=jid)
                rc, text, summary = run_node_script("playable.mjs", env, 150)
                sys.stdout.write(text)
                assert summary, "playable.mjs printed no summary (rc %s)" % rc
                assert rc == 0 and summary["ok"], summary.get("problem")
            assert api.job(jid)["state"] == "running", "the job ended during playback"
            print("hls.js played %.1f s from %.2f s and on after a seek to %.1f s, while running "
                  "[at %.0f s]" % (summary["played_to"], summary["first_t"], summary["seek_to"],
                                   time.monotonic() - t0))
        finally:
            h.send_signal(who, signal.SIGCONT)

        # ---- the end: VOD playlists with the same segment URIs, then the rest
        j = api.wait_state(jid, ("completed", "failed", "dead", "cancelled"), 180)
        assert j["state"] == "completed", j
        print("completed [at %.0f s]" % (time.monotonic() - t0))
        _, cerr = cli.communicate(timeout=60)
        assert cli.returncode == 0, (cli.returncode, cerr[-2000:])
        assert "playable now (still encoding): " + j["playable_url"] in cerr, cerr[-2000:]
        for name, segs in early.items():
            text, final = playlist(os.path.join(out, name, "playlist.m3u8"))
            assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST"), text
            assert final[:len(segs)] == segs and len(final) > len(segs), (name, len(segs), len(final))
        problems = check_output.check(out, src, early_master=early_master)
        assert not problems, "checker found:\n  %s" % "\n  ".join(problems)
        with open(os.path.join(out, "job.json")) as f:
            doc = json.load(f)
        fp = doc["timings"]["first_playable_seconds"]
        assert fp is not None and 0 < fp <= j["timings"]["first_playable_seconds"] + 0.01, (fp, j["timings"])
        types = [e["type"] for e in api.events(jid)]
        assert types.count("job.playable") == 1 and types.index("job.playable") < types.index("job.completed")
        print("completed: VOD playlists extend the EVENT ones; first playable after %.2f s" % fp)


if __name__ == "__main__":
    main(test_playable)
