"""Source download (common/fetch.c) over http(s) and the SSRF guard
(common/netguard.c), through build/tests/ss_s3tool get/head, against a real
local HTTP server (stdlib, Range-capable) on a free loopback port.

Covers: range reads (fetch_reader: the bytes asked for, in blocks, with
If-Range; a server without ranges; a source that changes while read);
download with resume (the server drops the connection half way
through the first answer; the retry asks for the rest with Range/If-Range);
a server that ignores Range; 404; the size cap; http:// refused unless
allowed; file:// refused; SSRF: 127.0.0.1, localhost (a name that resolves
to loopback: refused at connect time, the server sees no request),
169.254.169.254, and a redirect to the metadata address refused when
private networks are allowed (link-local never is).
"""
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.s3server import harness  # noqa: E402

TOOL = os.path.join(harness.BUILD, "tests", "ss_s3tool")


class Source(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    data = b""
    log = []
    drop_first = set()     # paths whose first full answer is cut half way
    changing = 0           # answers of /changing.mp4 (its ETag changes with each)
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        with Source.lock:
            Source.log.append((self.path, self.headers.get("Range"), self.headers.get("If-Range")))
        if self.path == "/missing.mp4":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/redirect-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = Source.data
        etag = '"%s"' % hashlib.md5(data).hexdigest()
        if self.path == "/changing.mp4":
            # a new version after its first answer
            with Source.lock:
                Source.changing += 1
                etag = '"v%d"' % Source.changing
        rng = self.headers.get("Range")
        start, end = 0, len(data) - 1
        if rng and self.path != "/norange.mp4" and self.headers.get("If-Range") in (None, etag):
            a, b = rng.split("=")[1].split("-")
            start, end = int(a), min(int(b), end) if b else end
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))
        else:
            self.send_response(200)
            if self.path != "/norange.mp4":
                self.send_header("Accept-Ranges", "bytes")
        body = data[start:end + 1]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        if head:
            return
        cut = False
        with Source.lock:
            if self.path in Source.drop_first and start == 0:
                Source.drop_first.discard(self.path)
                cut = True
        if cut:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass   # clients that stop reading (size cap) are expected here


def get(url, out, extra=None):
    r = subprocess.run([TOOL] + (extra or []) + ["get", url, out], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    res["rc"] = r.returncode
    return res


def read(url, off, n, out, extra=None):
    r = subprocess.run([TOOL] + (extra or []) + ["read", url, str(off), str(n), out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    res["rc"] = r.returncode
    return res


def test():
    assert os.path.exists(TOOL), "build first: %s is missing" % TOOL
    with harness.Harness("s3_fetch") as h:
        Source.data = os.urandom(6 * 1024 * 1024 + 321)
        srv = QuietServer(("127.0.0.1", 0), Source)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        base = "http://127.0.0.1:%d" % srv.server_address[1]
        ok = ["--allow-http", "--allow-private"]
        try:
            # Resume after a dropped connection: the second request asks for the rest.
            Source.drop_first.add("/video.mp4")
            Source.log.clear()
            out = h.path("video.mp4")
            r = get(base + "/video.mp4", out, ok)
            assert r["ok"], r
            with open(out, "rb") as f:
                assert f.read() == Source.data, "downloaded bytes differ"
            ranges = [x for x in Source.log if x[0] == "/video.mp4"]
            assert len(ranges) == 2 and ranges[0][1] is None, ranges
            assert ranges[1][1].startswith("bytes="), ranges
            assert int(ranges[1][1][6:-1]) > 0 and ranges[1][2], ranges   # resumed, with If-Range
            assert not os.path.exists(out + ".part")
            print("resume: %s" % ranges)

            # A server that ignores Range: the retry starts over, still correct.
            Source.drop_first.add("/norange.mp4")
            r = get(base + "/norange.mp4", h.path("norange.mp4"), ok)
            assert r["ok"], r
            with open(h.path("norange.mp4"), "rb") as f:
                assert f.read() == Source.data

            # Range reads (a split job's chunk, fetch_reader): the bytes asked for,
            # a block from the offset, not the whole file; the first block is
            # read at open (the size).
            Source.log.clear()
            off, n = 3 * 1024 * 1024 + 17, 300000
            r = r0 = read(base + "/video.mp4", off, n, h.path("part.bin"), ok)
            assert r["ok"], r
            with open(h.path("part.bin"), "rb") as f:
                assert f.read() == Source.data[off:off + n], "range bytes differ"
            assert r["objects"] == 3 and r["bytes"] < 1024 * 1024, r   # 128 KiB + 2 blocks
            assert all(x[1] and x[1].startswith("bytes=") and x[1].count("-") == 1 and
                       not x[1].endswith("-") for x in Source.log), Source.log
            assert all(x[2] for x in Source.log[1:]), Source.log   # If-Range after the first
            # A server that ignores Range: "does not answer range requests"
            # (the worker then downloads it whole).
            r = read(base + "/norange.mp4", 0, 1000, h.path("x0"), ok)
            assert not r["ok"] and r["code"] == "invalid" and "range requests" in r["message"], r
            # A source that changes while it is read: an error, never a mix.
            r = read(base + "/changing.mp4", off, n, h.path("x00"), ok)
            assert not r["ok"] and "changed while it was read" in r["message"], r
            print("range reads: %d requests, %d bytes received for %d asked" % (
                r0["objects"], r0["bytes"], n))

            # 404 -> not_found, no partial file left.
            r = get(base + "/missing.mp4", h.path("missing.mp4"), ok)
            assert not r["ok"] and r["code"] == "not_found", r
            assert not os.path.exists(h.path("missing.mp4")) and not os.path.exists(h.path("missing.mp4.part"))

            # Size cap.
            r = get(base + "/video.mp4", h.path("big.mp4"), ok + ["--max-bytes", "1000000"])
            assert not r["ok"] and r["code"] == "limit", r

            # HEAD size.
            r = subprocess.run([TOOL] + ok + ["head", base + "/video.mp4"], stdout=subprocess.PIPE)
            res = json.loads(r.stdout)
            assert res["ok"] and res["bytes"] == len(Source.data), res

            # http:// refused unless allowed; file:// is not fetched.
            r = get(base + "/video.mp4", h.path("x1"), ["--allow-private"])
            assert not r["ok"] and r["code"] == "denied" and "http://" in r["message"], r
            r = get("file:///etc/hostname", h.path("x2"), ok)
            assert not r["ok"] and r["code"] == "invalid", r

            # SSRF guard: loopback refused when private networks are not allowed.
            Source.log.clear()
            r = get(base + "/video.mp4", h.path("x3"), ["--allow-http"])
            assert not r["ok"] and r["code"] == "denied" and "127.0.0.1" in r["message"], r
            # A name that resolves to loopback: refused at connect time, no request reaches the server.
            r = get("http://localhost:%d/video.mp4" % srv.server_address[1], h.path("x4"),
                    ["--allow-http"])
            assert not r["ok"] and r["code"] == "denied" and "loopback" in r["message"], r
            assert Source.log == [], Source.log
            # The cloud metadata address, with or without allow-private.
            for extra in (["--allow-http"], ok):
                r = get("http://169.254.169.254/latest/meta-data/", h.path("x5"), extra)
                assert not r["ok"] and r["code"] == "denied" and "169.254.169.254" in r["message"], r
            # A redirect to it is refused too (checked on the connect of the redirect).
            r = get(base + "/redirect-metadata", h.path("x6"), ok)
            assert not r["ok"] and r["code"] == "denied" and "169.254.169.254" in r["message"], r
            # No redirects followed when told so.
            r = get(base + "/redirect-metadata", h.path("x7"), ok + ["--redirects", "0"])
            assert not r["ok"], r
            print("ssrf: refused as expected")
        finally:
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    harness.main(test)
