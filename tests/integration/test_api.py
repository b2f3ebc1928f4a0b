"""The HTTP API against a real redis-server and coordinator: validation,
auth, idempotent submit, listing, cancel/retry of queued jobs, events, and
Redis going away (503, never a hang)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import (BIN, Api, Harness, cpu_seconds, free_port, http_json, main,  # noqa: E402
                         wait_until)

TOKEN = "test-token"


def raw_exchange(port, data, want=None, timeout=5):
    """Send raw bytes, read until the server closes (or `want` answers
    came); returns [(status, headers, json body)] for each answer."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c.sendall(data)
    buf = b""
    answers = []
    while True:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            lines = buf[:end].decode("latin-1").split("\r\n")
            hd = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            n = int(hd.get("content-length", "0"))
            if len(buf) < end + 4 + n:
                break
            body = buf[end + 4:end + 4 + n]
            try:
                body = json.loads(body)
            except ValueError:
                pass   # not JSON (evhttp's own HTML errors): the bytes
            answers.append((int(lines[0].split()[1]), hd, body))
            buf = buf[end + 4 + n:]
        if want and len(answers) >= want:
            break
        try:
            chunk = c.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    c.close()
    return answers


def test_api():
    with Harness("api") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN, extra={"STREAMSCALE_LOG_LEVEL": "debug"})
        api = Api(url, TOKEN, harness=h)

        # -- auth
        st, body = http_json("GET", url + "/v1/jobs")
        assert st == 401 and body["error"]["code"] == "unauthorized", (st, body)
        st, body = http_json("GET", url + "/v1/jobs", token="wrong-token")
        assert st == 401, (st, body)
        st, body = http_json("GET", url + "/healthz")
        assert st == 200 and body["redis"] == "ok", body

        # -- validation: each bad spec names its field
        bad = [
            ('{"source": ', "(body)"),
            ("[1,2]", "(body)"),
            ({}, "source"),
            ({"source": 42}, "source"),
            ({"source": "ftp://x/y.mp4"}, "source"),
            ({"source": "file://relative/x.mp4"}, "source"),
            ({"source": "file:///x.mp4", "colour": "red"}, "colour"),
            ({"source": "file:///x.mp4", "ladder": "best"}, "ladder"),
            ({"source": "file:///x.mp4", "ladder": [{"height": 721}]}, "ladder[0].height"),
            ({"source": "file:///x.mp4", "ladder": [{"height": 720, "fps": 30}]}, "ladder[0].fps"),
            ({"source": "file:///x.mp4", "segment_seconds": 0}, "segment_seconds"),
            ({"source": "file:///x.mp4", "packaging": ["hls", "smooth"]}, "packaging[1]"),
            ({"source": "file:///x.mp4", "priority": "urgent"}, "priority"),
            ({"source": "file:///x.mp4", "webhook": {"url": "gopher://x"}}, "webhook.url"),
            ({"source": "file:///x.mp4", "webhook": {"url": "https://x", "secret": "short"}},
             "webhook.secret"),
            ({"source": "file:///x.mp4", "metadata": [1]}, "metadata"),
            ({"source": "file:///x.mp4", "rate_control": "cbr"}, "rate_control"),
            ({"source": "file:///x.mp4", "crf": "23"}, "crf"),
            ({"source": "file:///x.mp4", "destination": "http://x/"}, "destination"),
        ]
        for spec, field in bad:
            st, body = http_json("POST", url + "/v1/jobs", spec, token=TOKEN)
            assert st == 400, (spec, st, body)
            assert body["error"]["code"] == "invalid_request", body
            assert body["error"].get("field") == field, (spec, body)
            assert body["error"]["message"], body
        # a long non-ASCII key: the field path is cut to fit, maybe inside a
        # character; the answer is still a JSON error that names it
        for key in ("\u00e9" * 200, "\u20ac" * 100):
            st, body = http_json("POST", url + "/v1/jobs", {key: 1}, token=TOKEN)
            assert st == 400 and isinstance(body, dict), (st, body)
            assert body["error"]["code"] == "invalid_request", body
            assert body["error"]["field"].startswith(key[:40]), body
        # oversized body: JSON 413 naming the body
        big = {"source": "file:///x.mp4", "metadata": {"pad": "x" * 70000}}
        st, body = http_json("POST", url + "/v1/jobs", big, token=TOKEN)
        assert st == 413 and body["error"]["field"] == "(body)", (st, body)
        # far over evhttp's own cap: still refused, the server stays up
        try:
            st, _ = http_json("POST", url + "/v1/jobs", "x" * (2 << 20), token=TOKEN, raw=True)
            assert 400 <= st < 500, st
        except OSError:
            pass  # evhttp may answer 413 and close while the client still sends
        assert http_json("GET", url + "/healthz")[0] == 200

        # -- submit, idempotency
        spec = {"source": "file:///nonexistent/a.mp4", "metadata": {"k": "v"}}
        st, j1 = http_json("POST", url + "/v1/jobs", spec, token=TOKEN)
        assert st == 201 and j1["state"] == "queued", (st, j1)
        assert len(j1["id"]) == 20
        st, j2 = http_json("POST", url + "/v1/jobs", spec, token=TOKEN)
        assert st == 200 and j2["id"] == j1["id"], (st, j2)
        # key order and defaults do not change the identity
        same = {"metadata": {"k": "v"}, "segment_seconds": 4, "source": "file:///nonexistent/a.mp4"}
        assert api.submit(same)["id"] == j1["id"]
        # an idempotency key names the job whatever the spec says
        k1 = api.submit({"source": "file:///nonexistent/b.mp4", "idempotency_key": "order-17"})
        k2 = api.submit({"source": "file:///nonexistent/c.mp4", "idempotency_key": "order-17"})
        assert k1["id"] == k2["id"] and k2["source"] == "file:///nonexistent/b.mp4"
        # a webhook secret is never shown back
        w = api.submit({"source": "file:///nonexistent/d.mp4",
                        "webhook": {"url": "https://example.com/hook", "secret": "s3cr3t-value"}})
        assert "s3cr3t-value" not in str(api.job(w["id"])), "webhook secret leaked"
        # -- get / 404
        st, body = http_json("GET", url + "/v1/jobs/" + "0" * 20, token=TOKEN)
        assert st == 404 and body["error"]["code"] == "not_found"
        st, body = http_json("GET", url + "/v1/jobs/../../etc", token=TOKEN)
        assert st == 404
        st, body = http_json("PUT", url + "/v1/jobs", {}, token=TOKEN)
        assert st == 405, st
        # bytes that are not UTF-8 in a request line (logged by the debug
        # access log) leave every JSON log line valid UTF-8
        c = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10)
        c.sendall(b"GET /v1/jobs/\xff\xc3(utf8-probe\xe2\x82 HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        assert c.recv(65536).startswith(b"HTTP/1.1 400"), "bad request line not refused"
        c.close()

        def log_lines():
            with open(h.logs["coordinator"], "rb") as f:
                return f.read().splitlines()
        wait_until(lambda: any(b"utf8-probe" in line for line in log_lines()), 10,
                   "the request in the access log")
        for line in log_lines():
            try:
                json.loads(line.decode("utf-8"))
            except ValueError:
                raise AssertionError("log line is not UTF-8 JSON: %r" % line[:300])
        # an encoded NUL must not cut the path short and reach another route
        st, body = http_json("GET", url + "/v1/jobs%00.html", token=TOKEN)
        assert st == 400 and body["error"]["code"] == "invalid_request", (st, body)
        st, body = http_json("DELETE", url + "/v1/jobs/%s%%00/x" % j1["id"], token=TOKEN)
        assert st == 400, (st, body)
        assert api.job(j1["id"])["state"] == "queued"

        # -- request smuggling shapes (issue 18): one answer, 400, closed
        port = int(url.rsplit(":", 1)[1])
        smuggled = b"GET /v1/queue HTTP/1.1\r\nHost: x\r\n\r\n"
        auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        for head, word in ((b"Content-Length: 2\r\nContent-Length: %d\r\n" % (2 + len(smuggled)),
                            "Content-Length"),
                           (b"Content-Length : 2\r\n", "colon"),
                           (b"Content-Length: 2\r\n Folded: x\r\n", "folded"),
                           (b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "Transfer-Encoding")):
            answers = raw_exchange(port, b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth + head +
                                   b"\r\n{}" + smuggled)
            assert len(answers) == 1, (head, answers)
            st, hd, body = answers[0]
            assert st in (400, 411) and word in body["error"]["message"], (head, st, body)
            assert hd.get("connection", "").lower() == "close", (head, hd)
        # a body without the token is refused before it is read: the answer
        # comes while the client has sent only the headers
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
        first = c.recv(65536)
        c.close()
        assert first.startswith(b"HTTP/1.1 401"), first[:200]
        # a GET with the token still works on a kept-alive connection
        answers = raw_exchange(port, (b"GET /v1/queue HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n") * 2,
                               want=2)
        assert [a[0] for a in answers] == [200, 200], answers

        # -- list and paging
        for i in range(5):
            api.submit({"source": "file:///nonexistent/p%d.mp4" % i})
        st, page = http_json("GET", url + "/v1/jobs?limit=3", token=TOKEN)
        assert st == 200 and len(page["jobs"]) == 3 and page["total"] == 8, page
        assert page["next_offset"] == 3
        st, page2 = http_json("GET", url + "/v1/jobs?limit=3&offset=3", token=TOKEN)
        ids = {j["id"] for j in page["jobs"]} | {j["id"] for j in page2["jobs"]}
        assert len(ids) == 6
        st, body = http_json("GET", url + "/v1/jobs?limit=0", token=TOKEN)
        assert st == 400 and body["error"]["field"] == "limit"
        st, body = http_json("GET", url + "/v1/jobs?state=bogus", token=TOKEN)
        assert st == 400 and body["error"]["field"] == "state"
        st, q = http_json("GET", url + "/v1/jobs?state=queued", token=TOKEN)
        assert q["total"] == 8

        # -- cancel and retry of a queued job
        st, c = api.cancel(j1["id"])
        assert st == 200 and c["state"] == "cancelled", (st, c)
        st, c = api.cancel(j1["id"])
        assert st == 409 and c["error"]["code"] == "conflict", (st, c)
        st, r = api.retry(j1["id"])
        assert st == 200 and r["state"] == "queued", (st, r)
        st, r = api.retry(j1["id"])
        assert st == 409
        st, body = http_json("DELETE", url + "/v1/jobs/" + "1" * 20, token=TOKEN)
        assert st == 404

        # -- events: ordered, with envelope and metadata
        evs = api.events(j1["id"])
        assert [e["type"] for e in evs] == ["job.queued", "job.cancelled", "job.queued"], evs
        assert [e["seq"] for e in evs] == [1, 2, 3]
        assert all(e["metadata"] == {"k": "v"} and e["job_id"] == j1["id"] for e in evs)
        assert len({e["id"] for e in evs}) == 3
        assert [e["seq"] for e in api.events(j1["id"], after=2)] == [3]

        # -- queue stats and metrics
        st, q = http_json("GET", url + "/v1/queue", token=TOKEN)
        assert q["depth"]["normal"] == 8, q
        st, m = http_json("GET", url + "/metrics", raw=True)
        assert st == 200 and b'streamscale_queue_depth{priority="normal"} 8' in m, m[:400]

        # -- credentials in an s3:// URL: 400 naming the field and where keys go (issue 18)
        for field, spec in (("destination", {"source": "s3://in-bucket/a.mp4",
                                             "destination": "s3://AKID:SECRET@bucket/out/"}),
                            ("source", {"source": "s3://AKID:SECRET@bucket/a.mp4"})):
            st, body = http_json("POST", url + "/v1/jobs", spec, token=TOKEN)
            assert st == 400 and body["error"]["field"] == field, (spec, st, body)
            assert "s3_access_key" in body["error"]["message"], body
            assert "AKID:SECRET" not in body["error"]["message"], body
        # the source's secrets are not shown back (the job keeps them for
        # the worker; test_webhooks checks the events and webhooks)
        sj = api.submit({"source": "https://u:PASSWORD1@example.com/x.mp4?X-Amz-Signature=SIGSECRET3"})
        st, listed = http_json("GET", url + "/v1/jobs?limit=500", token=TOKEN)
        shown = json.dumps([api.job(sj["id"]), api.events(sj["id"]), listed])
        assert "PASSWORD1" not in shown and "SIGSECRET3" not in shown, shown[:500]
        # a webhook the SSRF guard always refuses is refused at submit
        for hook in ("http://169.254.169.254/latest/meta-data/", "https://0.0.0.0/h",
                     "https://[fe80::1]/h", "https://224.0.0.1/h", "https://2130706433/h",
                     "http://127.0.0.1:9/h", "https://[::ffff:169.254.169.254]/h"):
            st, body = http_json("POST", url + "/v1/jobs", {
                "source": "https://example.com/a.mp4",
                "webhook": {"url": hook, "secret": "whsec-12345678"}}, token=TOKEN)
            assert st == 400 and body["error"]["field"] == "webhook.url", (hook, st, body)
        # a host name is judged at each delivery, not at submit
        api.submit({"source": "https://example.com/a.mp4",
                    "webhook": {"url": "https://hooks.example.com/h", "secret": "whsec-12345678"}})


        # -- out of file descriptors: accept() fails; the coordinator pauses
        # accepting instead of retrying at once forever (a core spinning and
        # a log line per try), and serves again once the connections close
        fport = free_port()
        furl = "http://127.0.0.1:%d" % fport
        p = h.start("coordinator-fds", ["sh", "-c", 'ulimit -n 64 && exec "$0"',
                                        os.path.join(BIN, "streamscale-coordinator")],
                    env={"STREAMSCALE_LISTEN": "127.0.0.1:%d" % fport,
                         "STREAMSCALE_REDIS": "redis://127.0.0.1:%d/0" % rport,
                         "STREAMSCALE_API_TOKEN": TOKEN})
        wait_until(lambda: http_json("GET", furl + "/healthz")[0] == 200, 30,
                   "coordinator with 64 descriptors")

        held = []
        try:
            for _ in range(100):
                held.append(socket.create_connection(("127.0.0.1", fport), timeout=5))
            time.sleep(0.3)
            c0 = cpu_seconds(p.pid)
            time.sleep(1.5)
            spun = cpu_seconds(p.pid) - c0
            h.assert_alive()
            assert spun < 0.5, "coordinator used %.2f s of CPU in 1.5 s at its fd limit" % spun
        finally:
            for s in held:
                s.close()
        wait_until(lambda: http_json("GET", furl + "/healthz", timeout=2)[0] == 200, 30,
                   "coordinator accepting again")
        log = h.log_text("coordinator-fds")
        assert "Error from accept" not in log and log.count("cannot accept connections") <= 2, \
            log[-2000:]
        h.stop("coordinator-fds")

        # -- max_connections and the whole-request deadline (issue 18)
        gport = free_port()
        h.coordinator("coordinator-gate", redis_port=rport, token=TOKEN, port=gport,
                      extra={"STREAMSCALE_MAX_CONNECTIONS": "4",
                             "STREAMSCALE_REQUEST_TIMEOUT_MS": "1500"})
        wait_until(lambda: http_json("GET", "http://127.0.0.1:%d/healthz" % gport)[0] == 200, 10,
                   "gate coordinator idle")
        idle = [socket.create_connection(("127.0.0.1", gport), timeout=5) for _ in range(4)]
        try:
            answers = raw_exchange(gport, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert [a[0] for a in answers] == [503], answers
            assert "max_connections" in answers[0][2]["error"]["message"], answers
            # one over the cap that sends nothing is not kept for the idle timeout
            extra = socket.create_connection(("127.0.0.1", gport), timeout=5)
            t0 = time.monotonic()
            try:
                assert extra.recv(100) == b"", "an idle connection over the cap got bytes"
            except ConnectionResetError:
                pass
            assert time.monotonic() - t0 < 4, "an idle connection over the cap was kept"
            extra.close()
        finally:
            for s_ in idle:
                s_.close()
        wait_until(lambda: http_json("GET", "http://127.0.0.1:%d/healthz" % gport)[0] == 200, 10,
                   "connections counted down")
        # a byte every 0.3 s keeps the idle timeout away, not the deadline
        c = socket.create_connection(("127.0.0.1", gport), timeout=10)
        t0 = time.monotonic()
        closed = None
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                c.sendall(bytes([b]))
                c.settimeout(0.3)
                if c.recv(100) == b"":
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = time.monotonic() - t0
                break
        c.close()
        assert closed is not None and closed < 4, "a trickled request held its connection %s s" % closed
        h.stop("coordinator-gate")

        # -- Redis hangs (SIGSTOP: accepts connections, never answers). After
        # the first call that times out (a 503 within redis_timeout_ms), the
        # loop never waits on Redis again until Redis answers (issue 18):
        # static files, /healthz and /metrics answer at once, /v1 answers
        # 503 at once, nothing queues behind a hung call
        hport = free_port()
        hurl = "http://127.0.0.1:%d" % hport
        h.coordinator("coordinator-hung", redis_port=rport, token=TOKEN, port=hport,
                      extra={"STREAMSCALE_REDIS_TIMEOUT_MS": "1500"})
        h.send_signal("redis", signal.SIGSTOP)
        slow, lat = [], []
        try:
            t0 = time.monotonic()
            st, body = http_json("GET", hurl + "/v1/queue", token=TOKEN, timeout=10)
            first = time.monotonic() - t0
            assert st == 503 and body["error"]["code"] == "unavailable", (st, body)
            assert first < 3.5, "the first /v1 call took %.2f s (redis_timeout_ms 1500)" % first
            paths = ("/", "/healthz", "/metrics", "/v1/queue", "/v1/jobs/" + j1["id"])
            t_end = time.monotonic() + 5
            n = 0
            while time.monotonic() < t_end:
                p = paths[n % len(paths)]
                n += 1
                t1 = time.monotonic()
                st, _ = http_json("GET", hurl + p, token=TOKEN if p.startswith("/v1") else None,
                                  raw=True, timeout=10)
                dt = time.monotonic() - t1
                lat.append(dt)
                assert st == (200 if p in ("/", "/metrics") else 503), (p, st)
                # a call that waited on Redis takes the whole 1.5 s timeout;
                # 1 s leaves room for a loaded machine's scheduling
                if dt > 1.0:
                    slow.append((p, round(dt, 2)))
        finally:
            h.send_signal("redis", signal.SIGCONT)
        lat.sort()
        print("hung Redis: %d requests, p50 %.1f ms, p99 %.1f ms" % (
            len(lat), 1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.99)]))
        assert not slow, "requests waited on the hung Redis: %s" % slow
        wait_until(lambda: http_json("GET", hurl + "/healthz")[0] == 200, 30, "Redis answers again")
        assert http_json("GET", hurl + "/v1/queue", token=TOKEN)[0] == 200
        h.stop("coordinator-hung")

        # -- Redis goes away: 503 with JSON, quickly; back when it returns
        h.stop("redis")
        t0 = time.monotonic()
        st, body = http_json("GET", url + "/v1/jobs/" + j1["id"], token=TOKEN)
        assert st == 503 and body["error"]["code"] == "unavailable", (st, body)
        st, body = http_json("POST", url + "/v1/jobs", {"source": "file:///x.mp4"}, token=TOKEN)
        assert st == 503, (st, body)
        st, body = http_json("GET", url + "/healthz")
        assert st == 503 and body["redis"] == "down", body
        assert time.monotonic() - t0 < 10, "requests hung while Redis was down"
        h.redis(port=rport)
        wait_until(lambda: http_json("GET", url + "/healthz")[0] == 200, 30, "coordinator back")

        # -- config errors are clear and fatal
        env = dict(os.environ, STREAMSCALE_API_TOKEN="")
        p = subprocess.run([os.path.join(BIN, "streamscale-coordinator"), "--listen",
                            "127.0.0.1:%d" % free_port()], env=env, capture_output=True, text=True,
                           timeout=20)
        assert p.returncode != 0 and "api_token" in p.stdout + p.stderr, p
        cfg = h.path("bad.conf")
        with open(cfg, "w") as f:
            f.write("listen = 127.0.0.1:1\n# comment\nreap_interval_ms = soon\n")
        p = subprocess.run([os.path.join(BIN, "streamscale-coordinator"), "-c", cfg], env=env,
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 2 and "bad.conf:3" in p.stderr and "reap_interval_ms" in p.stderr, p


if __name__ == "__main__":
    main(test_api)
