"""The `streamscale` CLI against a real coordinator, Redis and worker.

- It behaves like gh/kubectl: `COMMAND --help` exits 0 with that command's
  usage, global options go before or after the command, a missing argument
  or value exits 2, Ctrl-C during --wait exits 130 and leaves the job be,
  `submit -f spec.json` (or - for stdin) submits a whole spec, --json
  prints the API's numbers as they are and no internal counters.
- Local files reach the workers through the coordinator (POST /v1/uploads)
  when it has an upload_dir: chunks, resume, a complete file sent once,
  SHA-256 checked, names made safe, token and size cap enforced.
- `streamscale workers` says why a worker claims nothing ("load 92% >=
  threshold 85%"); a worker just started never reads "open" on load 0 %
  before it measured the load.
- libav's routine warnings go to debug, counted in job.json.
- Outputs follow content: a local file overwritten with another video and
  submitted again is a new job with a new output; an unchanged one keeps
  its job id (job.schema.json source_identity). A spec whose
  source_identity does not match what the worker reads fails, never
  encodes other content under that id.
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from lib import contract  # noqa: E402
from lib.harness import BIN, Api, Harness, RedisClient, gen_clip, http_json, main, wait_until  # noqa: E402

TOKEN = "test-token"
CLI = os.path.join(BIN, "streamscale")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run(env, *args, timeout=120, **kw):
    return subprocess.run([CLI] + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def submit_wait(env, *args):
    p = run(env, "submit", *args, "--wait", "--json", timeout=300)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def check_changed_content(h, env, api):
    clip = h.path("media", "clip.mp4")
    os.makedirs(os.path.dirname(clip), exist_ok=True)
    gen_clip(clip, seconds=1, size="320x240")
    first = submit_wait(env, clip, "--ladder", "240", "--preset", "ultrafast")
    assert first["state"] == "completed", first
    ident = first["spec"]["source_identity"]
    assert ident == {"sha256": sha256(clip), "size": os.path.getsize(clip)}, ident
    with open(os.path.join(h.path("out"), first["id"], "job.json")) as f:
        doc = json.load(f)
    assert doc["source"]["sha256"] == sha256(clip) and doc["source"]["size"] == ident["size"], doc
    assert "mtime" in doc["source"], doc["source"]

    # unchanged: the same job, not a second encode
    p = run(env, "submit", clip, "--ladder", "240", "--preset", "ultrafast")
    assert p.returncode == 0 and p.stdout.strip() == first["id"], (p.stdout, p.stderr)

    # overwritten in place with another video: a new job and a new output
    other = gen_clip(h.path("media", "other.mp4"), seconds=1, size="426x240",
                     video_src="smptebars")
    os.replace(other, clip)
    second = submit_wait(env, clip, "--ladder", "240", "--preset", "ultrafast")
    assert second["id"] != first["id"], (first["id"], second["id"])
    assert second["state"] == "completed", second
    assert second["spec"]["source"] == first["spec"]["source"]
    with open(os.path.join(h.path("out"), second["id"], "job.json")) as f:
        doc2 = json.load(f)
    assert doc2["source"]["sha256"] == sha256(clip), doc2["source"]
    assert doc2["renditions"][0]["width"] == 426 and doc["renditions"][0]["width"] == 320

    # a spec naming other content than the file holds fails, not retried
    j = api.submit({"source": "file://" + clip, "ladder": [{"height": 240}], "preset": "ultrafast",
                    "source_identity": {"sha256": "0" * 64}})
    j = api.wait_state(j["id"], ("completed", "failed", "dead"), 120)
    assert j["state"] == "failed" and j["error"]["code"] == "invalid", j
    assert "changed since it was submitted" in j["error"]["message"], j["error"]
    assert j["attempts"] == 1, j


COMMANDS = ["submit", "status", "list", "cancel", "retry", "workers", "queue", "events", "drain",
            "resume", "retry-all", "clear"]


def check_usage(h, url):
    bare = dict(os.environ)
    for k in list(bare):
        if k.startswith("STREAMSCALE_"):
            del bare[k]
    for c in COMMANDS:
        for form in ([c, "--help"], [c, "-h"], ["help", c]):
            p = run(bare, *form)
            assert p.returncode == 0, (form, p.returncode, p.stderr)
            assert p.stdout.startswith("usage: streamscale %s" % c), (form, p.stdout)
    p = run(bare, "--help")
    assert p.returncode == 0 and all(c in p.stdout for c in COMMANDS), p.stdout
    # global options before or after the command
    for argv in (["--api", url, "--token", TOKEN, "--json", "queue"],
                 ["queue", "--api", url, "--token", TOKEN, "--json"],
                 ["queue", "--json", "--api=" + url, "--token=" + TOKEN]):
        p = run(bare, *argv)
        assert p.returncode == 0, (argv, p.stderr)
        json.loads(p.stdout)
    p = run(bare, "queue", "--api", url, "--token", "wrong")
    assert p.returncode == 1 and "401" in p.stderr, (p.returncode, p.stderr)
    # usage errors exit 2 and say what is wrong
    for argv, says in ((["status"], "needs ID"), (["events"], "needs ID"),
                       (["cancel"], "needs ID"), (["submit"], "needs a SOURCE"),
                       (["list", "--limit"], "needs a value"), (["list", "--bogus"], "unknown option"),
                       (["status", "a", "b"], "unexpected argument"), (["frobnicate"], "unknown command"),
                       (["list", "--limit", "x"], "not a whole number"), ([], "usage:"),
                       (["submit", "-f", h.path("missing.json")], "cannot open"),
                       (["drain"], "needs WORKER"), (["clear"], "needs STATE"),
                       (["retry-all", "completed"], "STATE must be failed, dead or cancelled"),
                       (["clear", "running"], "STATE must be completed, failed"),
                       (["clear", "failed", "--limit", "0"], "at least 1")):
        p = run(dict(bare, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN), *argv)
        assert p.returncode == 2, (argv, p.returncode, p.stderr)
        assert says in p.stderr, (argv, p.stderr)
    p = run(bare, "--api", "http://127.0.0.1:1", "queue")
    assert p.returncode == 3, (p.returncode, p.stderr)


def check_interrupt(env, api, h):
    """No worker runs yet: the job stays queued while --wait waits."""
    p = subprocess.Popen([CLI, "submit", "file:///nowhere/wait.mp4", "--wait"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert line.startswith("job ") and "queued" in line, line
    jid = line.split()[1]
    os.kill(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, (p.returncode, err)
    assert "the job goes on" in err, err
    assert api.job(jid)["state"] == "queued"
    st, _ = api.cancel(jid)
    assert st == 200, st


def check_spec_and_flags(env, api, h):
    spec = {"source": "file:///nowhere/spec.mp4", "priority": "low", "segment_seconds": 6.7,
            "metadata": {"from": "file"}}
    path = h.path("spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = run(env, "submit", "-f", path)
    assert p.returncode == 0, p.stderr
    jid = p.stdout.strip()
    j = api.job(jid)
    assert j["spec"]["priority"] == "low" and j["spec"]["metadata"] == {"from": "file"}, j["spec"]
    # the same spec from stdin is the same job
    p = run(env, "submit", "-f", "-", input=json.dumps(spec))
    assert p.returncode == 0 and p.stdout.strip() == jid, (p.stdout, p.stderr)
    # flags override the file's fields and add others
    p = run(env, "submit", "--file", path, "--priority", "high", "--max-attempts", "5",
            "--no-thumbnails", "--packaging", "hls", "--metadata", "a=1", "--metadata", "b=x=y",
            "file:///nowhere/other.mp4", "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    s = j["spec"]
    assert s["source"] == "file:///nowhere/other.mp4" and s["priority"] == "high", s
    assert s["max_attempts"] == 5 and s["packaging"] == ["hls"], s
    assert s["thumbnails"]["enabled"] is False, s
    assert s["metadata"] == {"from": "file", "a": "1", "b": "x=y"}, s
    # numbers as the API wrote them
    p = run(env, "status", jid, "--json")
    assert p.returncode == 0 and '"segment_seconds": 6.7,' in p.stdout, p.stdout
    assert "0000000" not in p.stdout, p.stdout
    for jj in (jid, j["id"]):
        api.cancel(jj)


def check_progress(env, h):
    """--wait shows elapsed time, ETA, the encode's speed and fps."""
    clip = gen_clip(h.path("media", "long.mp4"), seconds=12, size="640x360")
    # preset slower: at veryfast a quiet machine encodes the clip in about a
    # second, before --wait's poll sees a speed (fresh-clone run at bac9599)
    p = run(env, "submit", clip, "--wait", "--ladder", "360", "--preset", "slower", timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert any("elapsed" in ln and "ETA" in ln for ln in lines), p.stderr
    enc = [ln for ln in lines if "fps" in ln]
    assert enc, "no speed/fps shown:\n" + p.stderr
    assert any(float(ln.split("fps")[0].split()[-1]) > 0 for ln in enc), enc
    p = run(env, "queue", "--json")
    counters = json.loads(p.stdout)["counters"]
    assert counters.get("completed", 0) >= 1 and not [k for k in counters if k.startswith("hist:")], \
        counters


def check_uploads(h, env, api, url, rport):
    st, body = http_json("POST", url + "/v1/uploads", {"name": "a.mp4", "size": 1, "sha256": "0" * 64},
                         token=TOKEN)
    assert st == 404 and "upload_dir" in body["error"]["message"], (st, body)
    spool = h.path("spool")
    up = h.coordinator("coord-up", redis_port=rport, token=TOKEN,
                       extra={"STREAMSCALE_UPLOAD_DIR": spool,
                              "STREAMSCALE_UPLOAD_MAX_BYTES": str(64 << 20)})
    data = os.urandom((2 << 20) + 12345)   # three chunks of at most 1 MiB
    sha = hashlib.sha256(data).hexdigest()
    ann = {"name": "../my talk.mp4", "size": len(data), "sha256": sha}
    st, _ = http_json("POST", up + "/v1/uploads", ann)
    assert st == 401, st
    st, body = http_json("POST", up + "/v1/uploads", dict(ann, size=65 << 20), token=TOKEN)
    assert st == 413 and body["error"]["field"] == "size", body
    st, body = http_json("POST", up + "/v1/uploads", dict(ann, sha256="xyz"), token=TOKEN)
    assert st == 400 and body["error"]["field"] == "sha256", body
    st, u = http_json("POST", up + "/v1/uploads", ann, token=TOKEN)
    assert st == 201 and u["offset"] == 0 and u["state"] == "uploading", (st, u)
    assert "/" not in u["name"] and not u["name"].startswith("."), u
    cb = u["chunk_bytes"]
    put = "%s/v1/uploads/%s?offset=%%d" % (up, u["id"])
    st, u2 = http_json("PUT", put % 0, data[:cb], token=TOKEN)
    assert st == 200 and u2["offset"] == cb, (st, u2)
    st, body = http_json("PUT", put % 0, data[:cb], token=TOKEN)
    assert st == 409 and str(cb) in body["error"]["message"], body
    st, _ = http_json("PUT", put % cb, data[cb:2 * cb])
    assert st == 401, st
    # announced again: resumed where it stopped
    st, u3 = http_json("POST", up + "/v1/uploads", ann, token=TOKEN)
    assert st == 200 and u3["id"] == u["id"] and u3["offset"] == cb, (st, u3)
    off = cb
    while off < len(data):
        st, u4 = http_json("PUT", put % off, data[off:off + cb], token=TOKEN)
        assert st == 200, (st, u4)
        off = u4["offset"]
    assert u4["state"] == "complete" and u4["source"].startswith("file://" + spool + "/" + sha + "/"), u4
    with open(u4["source"][7:], "rb") as f:
        assert f.read() == data
    # the same file again: complete at once, nothing to send
    st, u5 = http_json("POST", up + "/v1/uploads", ann, token=TOKEN)
    assert st == 200 and u5["state"] == "complete" and u5["source"] == u4["source"], u5
    # bytes that do not match the announced SHA-256 are dropped
    st, bad = http_json("POST", up + "/v1/uploads", {"name": "x.bin", "size": 10, "sha256": "1" * 64},
                        token=TOKEN)
    st, body = http_json("PUT", "%s/v1/uploads/%s?offset=0" % (up, bad["id"]), b"0123456789", token=TOKEN)
    assert st == 422 and body["error"]["code"] == "checksum_mismatch", (st, body)
    assert os.listdir(os.path.join(spool, ".partial")) == [], os.listdir(os.path.join(spool, ".partial"))

    # the CLI: a file outside the workers' file_roots, resumed after a cut
    os.makedirs(h.path("home"), exist_ok=True)
    clip = gen_clip(h.path("home", "talk.mp4"), seconds=3, size="640x360", extra_out=["-crf", "4"])
    assert os.path.getsize(clip) > 1 << 20
    with open(clip, "rb") as f:
        cdata = f.read()
    csha = hashlib.sha256(cdata).hexdigest()
    st, cu = http_json("POST", up + "/v1/uploads", {"name": "talk.mp4", "size": len(cdata), "sha256": csha},
                       token=TOKEN)
    st, _ = http_json("PUT", "%s/v1/uploads/%s?offset=0" % (up, cu["id"]), cdata[:1000], token=TOKEN)
    assert st == 200
    uenv = dict(env, STREAMSCALE_API=up)
    job = submit_wait(uenv, clip, "--ladder", "240", "--preset", "ultrafast")
    assert job["state"] == "completed", job
    assert job["spec"]["source"] == "file://%s/%s/talk.mp4" % (spool, csha), job["spec"]["source"]
    assert job["spec"]["source_identity"] == {"sha256": csha, "size": len(cdata)}
    with open(os.path.join(spool, csha, "talk.mp4"), "rb") as f:
        assert f.read() == cdata
    p = run(uenv, "submit", clip, "--ladder", "240", "--preset", "ultrafast")
    assert p.returncode == 0 and p.stdout.strip() == job["id"], (p.stdout, p.stderr)
    # --no-upload: passed as file://, which this worker may not read
    p = run(uenv, "submit", clip, "--no-upload", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["spec"]["source"] == "file://" + clip, p.stdout
    api.cancel(json.loads(p.stdout)["id"])


def check_libav_routine(h, env):
    """libav's routine warnings (swscale's 'deprecated pixel format' on a
    full-range yuvj420p source) are debug lines counted in job.json, not
    warnings in the worker's log."""
    clip = gen_clip(h.path("media", "yuvj.mp4"), seconds=1, size="320x240",
                    extra_out=["-pix_fmt", "yuvj420p"])
    job = submit_wait(env, clip, "--ladder", "240", "--preset", "ultrafast")
    assert job["state"] == "completed", job
    with open(os.path.join(h.path("out"), job["id"], "job.json")) as f:
        doc = json.load(f)
    r = doc["libav_routine"]
    assert r["count"] >= 1 and "deprecated pixel format" in r["first"], r
    lines = [json.loads(ln) for ln in h.log_text("w1").splitlines() if ln.startswith("{")]
    lib = [ln for ln in lines if "deprecated pixel format" in ln.get("msg", "")]
    assert lib and all(ln["level"] == "debug" for ln in lib), lib[:3]
    assert any(ln.get("job") == job["id"] for ln in lib), lib[:3]   # on the job's own lines


def check_workers(h, env, api, rport):
    """A worker whose threshold the machine's load is over says so."""
    stop = threading.Event()

    def spin():   # keep one core busy, so the load is surely over 1 %
        while not stop.is_set():
            sum(range(10000))
    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        h.worker("w-hot", rport, wait_ready=False, extra={"STREAMSCALE_CPU_THRESHOLD": "1",
                                                            "STREAMSCALE_FILE_ROOTS": h.path("media")})
        seen = []

        def hot():
            ws = {w["id"]: w for w in api.workers()}
            g = ws.get("w-hot", {}).get("gate")
            if g:
                seen.append(g)
            return g if g and g.startswith("load ") else None
        gate = wait_until(hot, 30, "w-hot to report its load over the threshold")
        assert re.fullmatch(r"load \d+% >= threshold 1%", gate), gate
        assert "open" not in seen, seen   # never open on an unmeasured load
        p = run(env, "workers")
        assert p.returncode == 0, p.stderr
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("w-hot")][0]
        assert "[not claiming: load " in line and ">= threshold 1%]" in line, line
        p = run(env, "workers", "--json")
        assert any(w["id"] == "w1" and w["gate"] == "open" for w in json.loads(p.stdout)["workers"]), \
            p.stdout
    finally:
        stop.set()
        t.join()
        h.stop("w-hot")


def contract_ok(name, body):
    """A --json output that repeats an API answer is that answer's schema."""
    c = contract.get()
    errs = c.errors(c.component(name), body)
    assert not errs, (name, errs, body)


def check_fleet_commands(h, env, api, rport):
    """drain/resume a worker, retry-all and clear a state, through the CLI."""
    p = run(env, "drain", "w1", "--json")
    assert p.returncode == 0, (p.returncode, p.stderr)
    body = json.loads(p.stdout)
    contract_ok("WorkerDrain", body)
    assert body["id"] == "w1" and body["drain_requested"] is True and body["registered"], body
    assert [w for w in api.workers() if w["id"] == "w1"][0]["drain_requested"] is True
    p = run(env, "resume", "w1")
    assert p.returncode == 0 and p.stdout.startswith("w1: resumed"), (p.stdout, p.stderr)
    assert [w for w in api.workers() if w["id"] == "w1"][0]["drain_requested"] is False
    p = run(env, "drain", "no-such-worker")
    assert p.returncode == 1 and "404" in p.stderr and "registered" in p.stderr, \
        (p.returncode, p.stderr)

    # two jobs that fail at once (a missing source: permanent), retried, then cleared
    ids = [api.submit({"source": "file://" + h.path("media", "missing-%d.mp4" % i)})["id"]
           for i in range(2)]
    for jid in ids:
        assert api.wait_state(jid, ("failed", "dead"), 60)["state"] == "failed"
    st, listed = http_json("GET", api.url + "/v1/jobs?state=failed&limit=1", token=TOKEN)
    nfailed = listed["total"]   # with the earlier checks' failed jobs
    assert st == 200 and nfailed >= 2, (st, listed)
    p = run(env, "retry-all", "failed", "--json")
    assert p.returncode == 0, (p.returncode, p.stderr)
    body = json.loads(p.stdout)
    contract_ok("BulkResult", body)
    assert body["action"] == "retry" and body["done"] == nfailed, (nfailed, body)
    for jid in ids:   # queued again with fresh attempts, and failed again
        j = api.wait_state(jid, ("failed", "dead"), 60)
        assert j["state"] == "failed" and j["attempts"] == 1, j
        assert any(e["type"] == "job.queued" and e["data"].get("redrive")
                   for e in api.events(jid)), jid
    p = run(env, "clear", "failed", "--limit", "1", "--json")
    assert p.returncode == 0, p.stderr
    body = json.loads(p.stdout)
    contract_ok("BulkResult", body)
    assert body == {"action": "clear", "state": "failed", "done": 1, "remaining": nfailed - 1}, body
    wait_until(lambda: http_json("GET", api.url + "/v1/jobs?state=failed&limit=1",
                                 token=TOKEN)[1]["total"] == nfailed - 1, 60, "the others failed again")
    p = run(env, "clear", "failed")
    assert p.returncode == 0 and p.stdout.startswith(
        "cleared %d failed job(s); 0 still failed" % (nfailed - 1)), (p.stdout, p.stderr)
    for jid in ids:
        st, _ = http_json("GET", api.url + "/v1/jobs/" + jid, token=TOKEN)
        assert st == 404, (jid, st)
    p = run(env, "retry-all", "dead")   # nothing there: fine, exit 0
    assert p.returncode == 0 and "retried 0 dead job(s)" in p.stdout, (p.stdout, p.stderr)

    # A whole batch of stale index entries (ids whose job is gone) before a
    # failed job: the CLI goes on while batches shrink what is left (it
    # stopped at the first batch that cleared nothing: "0 ... 1 still failed").
    r = RedisClient(rport)
    stale = ["stale%05d" % i for i in range(10000)]
    for k in range(0, len(stale), 1000):
        r("ZADD", "{ss}:st:failed", *[a for s in stale[k:k + 1000] for a in (0, s)])
    jid = api.submit({"source": "file://" + h.path("media", "missing-stale.mp4")})["id"]
    assert api.wait_state(jid, ("failed", "dead"), 60)["state"] == "failed"
    p = run(env, "clear", "failed")
    assert p.returncode == 0 and p.stdout.startswith("cleared 1 failed job(s); 0 still failed"), \
        (p.stdout, p.stderr)
    assert r("ZCARD", "{ss}:st:failed") == 0
    r.close()


def test_cli():
    with Harness("cli") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        env = dict(os.environ, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN)
        env.pop("STREAMSCALE_UPLOAD_TO", None)
        check_usage(h, url)
        check_interrupt(env, api, h)
        check_spec_and_flags(env, api, h)
        # heartbeats every 300 ms: on a quiet machine the 12 s clip encodes in
        # about 1.5 s, and a heartbeat a second could miss the encode's speed
        h.worker("w1", rport, extra={"STREAMSCALE_THREADS": "1", "STREAMSCALE_POLL_MS": "200",
                                      "STREAMSCALE_HEARTBEAT_MS": "300",
                                      "STREAMSCALE_FILE_ROOTS": ":".join(
                                          h.path(d) for d in ("media", "spool", "out"))})
        check_changed_content(h, env, api)
        check_progress(env, h)
        check_libav_routine(h, env)
        check_uploads(h, env, api, url, rport)
        check_workers(h, env, api, rport)
        check_fleet_commands(h, env, api, rport)


if __name__ == "__main__":
    main(test_cli)
