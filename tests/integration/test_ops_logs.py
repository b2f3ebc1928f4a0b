"""Logs, end to end, with secrets everywhere they can be configured:
a Redis password, the API token, a default webhook secret, a job webhook
with a secret and a token in its URL, S3 credentials for a real S3 server
(Swift + s3api, storage s3://), a source behind a signed URL (X-Amz-*
query) and a source URL with a password. Two jobs run (one completes to
S3, one fails on a 404), with debug logging. Then every line of both
daemons' logs is checked: one JSON object per line (stdout is not a
terminal), no secret anywhere, the job id on the lines about a job. Also:
log_level=warn drops info lines, and on a terminal (a pty) the lines are
readable text, not JSON."""
import http.server
import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BIN, Api, Harness, free_port, http_json, main, wait_until  # noqa: E402
from lib.s3server import SwiftS3  # noqa: E402

REDIS_PW = "redispw-Zq81xK"
TOKEN = "apitoken-Vb27LmQ9"
DEFAULT_HOOK_SECRET = "defhook-Hs55Tg"
JOB_HOOK_SECRET = "whsec-Kp03Ndr"
HOOK_URL_TOKEN = "hookurltok-Ee19"
S3_SECRET = "s3secret-Wm62Yj"
SIGNATURE = "sigvalue4f9a2c"
CREDENTIAL = "AKIDcredX77"
SRC_PASSWORD = "srcpass-Ju48"
SECRETS = [REDIS_PW, TOKEN, DEFAULT_HOOK_SECRET, JOB_HOOK_SECRET, HOOK_URL_TOKEN, S3_SECRET,
           SIGNATURE, CREDENTIAL, SRC_PASSWORD]


class Origin(http.server.BaseHTTPRequestHandler):
    """Serves the clip under any query string (a signed URL), 404 otherwise,
    and takes webhook POSTs."""
    clip = None
    hooks = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/media/clip.mp4":
            with open(self.clip, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        Origin.hooks.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def check_lines(name, text, job_ids):
    """Every line one JSON object with ts/level/prog/msg; lines naming a job
    carry it. Returns the parsed lines."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError:
            raise AssertionError("%s line %d is not JSON: %r" % (name, n, line[:200]))
        assert isinstance(o, dict) and {"ts", "level", "prog", "msg"} <= set(o), (name, n, o)
        assert o["level"] in ("debug", "info", "warn", "error"), o
        for jid in job_ids:
            if jid in o["msg"]:
                assert o.get("job") == jid, "%s line %d is about job %s but has no job field: %r" % (
                    name, n, jid, line)
        out.append(o)
    return out


def test_ops_logs():
    with Harness("ops-logs") as h:
        # ---- Redis with a password
        rport = free_port()
        h.start("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--requirepass", REDIS_PW])
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(rport), "--no-auth-warning", "-a", REDIS_PW,
                                           "ping"], capture_output=True, text=True).stdout.strip() == "PONG",
                   20, "redis with a password")
        redis_url = "redis://:%s@127.0.0.1:%d/0" % (REDIS_PW, rport)

        # ---- an S3 server whose secret is ours
        s3 = SwiftS3(h)
        s3.secret_key = S3_SECRET
        s3.start()
        s3.client().create_bucket(Bucket="media")

        # ---- origin (signed-URL source) and webhook receiver
        clip = h.path("clip.mp4")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", "2", "--size", "320x240"], stdout=subprocess.DEVNULL)
        Origin.clip = clip
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        origin = "http://127.0.0.1:%d" % srv.server_address[1]

        cfg = h.path("coordinator.conf")
        with open(cfg, "w") as f:   # secrets from a config file, like production
            f.write("api_token = %s\nwebhook_secret = %s\n" % (TOKEN, DEFAULT_HOOK_SECRET))
        url = h.coordinator(redis_port=rport, token=TOKEN, extra={
            "STREAMSCALE_REDIS": redis_url, "STREAMSCALE_LOG_LEVEL": "debug",
            "STREAMSCALE_ALLOW_PRIVATE_NETWORKS": "true",
            "STREAMSCALE_WEBHOOK_URL": origin + "/default-hook",
            "STREAMSCALE_WEBHOOK_RETRY_BASE_MS": "50", "STREAMSCALE_WEBHOOK_POLL_MS": "50"})
        # the harness started it with env only; restart it with -c as well
        h.stop("coordinator")
        port = int(url.rsplit(":", 1)[1])
        h.start("coordinator", [os.path.join(BIN, "streamscale-coordinator"), "-c", cfg], env={
            "STREAMSCALE_LISTEN": "127.0.0.1:%d" % port, "STREAMSCALE_REDIS": redis_url,
            "STREAMSCALE_LOG_LEVEL": "debug", "STREAMSCALE_ALLOW_PRIVATE_NETWORKS": "true",
            "STREAMSCALE_WEBHOOK_URL": origin + "/default-hook",
            "STREAMSCALE_WEBHOOK_RETRY_BASE_MS": "50", "STREAMSCALE_WEBHOOK_POLL_MS": "50"})
        api = Api(url, TOKEN)
        wait_until(lambda: http_json("GET", url + "/healthz")[0] == 200, 20, "coordinator with -c")

        h.worker("w", rport, storage="s3://media/videos/", extra={
            "STREAMSCALE_REDIS": redis_url, "STREAMSCALE_LOG_LEVEL": "debug",
            "STREAMSCALE_S3_ENDPOINT": s3.endpoint, "STREAMSCALE_S3_REGION": s3.region,
            "STREAMSCALE_S3_ACCESS_KEY": s3.access_key, "STREAMSCALE_S3_SECRET_KEY": S3_SECRET,
            "STREAMSCALE_ALLOW_PRIVATE_NETWORKS": "true", "STREAMSCALE_ALLOW_HTTP_SOURCES": "true",
            "STREAMSCALE_PUBLIC_BASE_URL": "https://media.example.com/videos/"})

        signed = ("%s/media/clip.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s%%2F20250101"
                  "&X-Amz-Signature=%s&X-Amz-Expires=600" % (origin, CREDENTIAL, SIGNATURE))
        hook = {"url": "%s/hook?token=%s" % (origin, HOOK_URL_TOKEN), "secret": JOB_HOOK_SECRET}
        ok = api.submit({"source": signed, "webhook": hook})["id"]
        bad_src = "http://reader:%s@127.0.0.1:%d/media/missing.mp4?X-Amz-Signature=%s" % (
            SRC_PASSWORD, srv.server_address[1], SIGNATURE)
        bad = api.submit({"source": bad_src, "webhook": hook, "max_attempts": 1})["id"]
        j = api.wait_state(ok, ("completed", "failed", "dead"), 180)
        assert j["state"] == "completed", j
        b = api.wait_state(bad, ("completed", "failed", "dead"), 60)
        assert b["state"] in ("failed", "dead"), b
        # the upload really went to S3 with our credentials
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="media", Prefix="videos/%s/" % ok)
                .get("Contents", [])]
        assert "videos/%s/master.m3u8" % ok in keys, keys
        # deliveries reached the receiver, signed (so the secret was in use)
        wait_until(lambda: any("job.completed" in body.decode() for _, _, body in Origin.hooks), 30,
                   "the job.completed webhook")
        assert any("Streamscale-Signature" in hd for _, hd, _ in Origin.hooks), Origin.hooks[0][1]
        # the API shows neither secret
        for jid in (ok, bad):
            body = json.dumps(api.job(jid)) + json.dumps(api.events(jid))
            for s in (JOB_HOOK_SECRET, S3_SECRET, REDIS_PW, TOKEN):
                assert s not in body, "API shows %s" % s
        h.stop("w")
        h.stop("coordinator")

        # ---- the logs
        logs = {n: h.log_text(n) for n in ("coordinator", "w")}
        for name, text in logs.items():
            for s in SECRETS:
                assert s not in text, "secret %r in the %s log:\n%s" % (
                    s, name, "\n".join(ln for ln in text.splitlines() if s in ln)[:2000])
        parsed = {n: check_lines(n, t, (ok, bad)) for n, t in logs.items()}
        wl = parsed["w"]
        for jid in (ok, bad):
            mine = [o for o in wl if o.get("job") == jid]
            assert any(o["msg"].startswith("claimed") for o in mine), jid
            assert any(o["msg"].startswith("reported") for o in mine), jid
        assert any(o.get("job") == bad and "not found" in o["msg"] for o in wl), \
            [o for o in wl if o.get("job") == bad]
        assert any(o["level"] == "debug" for o in wl), "log_level=debug shows debug lines"
        # lines from libav's own threads (x264, muxers) cannot always know
        # their job: report how many, they are not failures of this test
        orphans = [o for o in wl if o["msg"].startswith("libav:") and "job" not in o]
        print("libav lines without a job id (from pipeline threads): %d of %d" % (
            len(orphans), sum(1 for o in wl if o["msg"].startswith("libav:"))))
        cl = parsed["coordinator"]
        assert any(o.get("job") == ok and o["msg"] == "job queued" for o in cl), "coordinator job lines"

        # ---- log_level=warn: no info lines
        q = h.coordinator("quiet", redis_port=rport, token=TOKEN,
                          extra={"STREAMSCALE_REDIS": redis_url, "STREAMSCALE_LOG_LEVEL": "warn"})
        Api(q, TOKEN).submit({"source": "file:///quiet/x.mp4"})
        h.stop("quiet")
        ql = check_lines("quiet", h.log_text("quiet"), ())
        assert all(o["level"] in ("warn", "error") for o in ql), ql

        # ---- on a terminal: readable text, not JSON
        master, slave = pty.openpty()
        tport = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCALE_")}
        env.update({"STREAMSCALE_LISTEN": "127.0.0.1:%d" % tport, "STREAMSCALE_REDIS": redis_url,
                    "STREAMSCALE_API_TOKEN": TOKEN})
        p = subprocess.Popen([os.path.join(BIN, "streamscale-coordinator")], stdout=slave, stderr=slave,
                             env=env, start_new_session=True)
        os.close(slave)
        buf = b""
        deadline = time.monotonic() + 20
        try:
            while b"listening" not in buf and time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.5)
                if r:
                    try:
                        buf += os.read(master, 4096)
                    except OSError:
                        break
        finally:
            p.terminate()
            p.wait(10)
            os.close(master)
        text = buf.decode(errors="replace")
        line = [ln for ln in text.splitlines() if "listening" in ln]
        assert line, text
        assert not line[0].lstrip().startswith("{") and re.match(r"\d\d:\d\d:\d\d\.\d{3}Z info ", line[0]), line
        assert TOKEN not in text and REDIS_PW not in text, text
        srv.shutdown()


if __name__ == "__main__":
    main(test_ops_logs)
