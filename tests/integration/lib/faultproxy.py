"""A small fault-injecting HTTP/1.1 proxy for the storage tests. It sits in
front of the S3 server on its own free loopback port, forwards each request
unchanged (Host and every signed header included, so signatures still
verify), counts requests, and on demand:

  fail_rate   answers this share of requests itself with 500 or 503 and an
              S3 error body (after reading the request body), never
              forwarding them;
  drop_rate   closes the connection for this share of requests: half of
              them before forwarding (the server never sees the request),
              half after (the server did the work, the client never hears);
  down        closes every connection at once (a dead server).

Faults are drawn from a seeded random generator, so a run is repeatable.
It runs in threads of the test process:

    p = FaultProxy(upstream_port).start()
    p.fail_rate = 0.2
    ... point the client at p.endpoint ...
    p.counts["requests"], p.counts["injected_5xx"], p.counts["dropped"]
    p.stop()
"""
import http.client
import random
import socket
import socketserver
import threading

HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
               "transfer-encoding", "upgrade", "expect"}


class _Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.buf = b""
        self.upstream = None

    def _fill(self, n=65536):
        d = self.request.recv(n)
        if not d:
            raise ConnectionError("client closed")
        self.buf += d

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 256 * 1024:
                raise ConnectionError("request head too large")
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head.decode("latin-1")

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_chunked(self):
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in self.buf:
                    self._fill()
                _, self.buf = self.buf.split(b"\r\n", 1)
                return out
            out += self._read_exact(size)
            self._read_exact(2)

    def _send_error(self, status):
        reason = {500: "Internal Server Error", 503: "Service Unavailable"}[status]
        code = "InternalError" if status == 500 else "ServiceUnavailable"
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                "<Message>injected by faultproxy</Message></Error>" % code).encode()
        self.request.sendall(("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                              "Content-Length: %d\r\n\r\n" % (status, reason, len(body))).encode()
                             + body)

    def handle(self):
        proxy = self.server.proxy
        try:
            while True:
                head = self._read_head()
                lines = head.split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = []
                for ln in lines[1:]:
                    k, v = ln.split(":", 1)
                    headers.append((k.strip(), v.strip()))
                hmap = {k.lower(): v for k, v in headers}
                if hmap.get("expect", "").lower() == "100-continue":
                    self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if "content-length" in hmap:
                    body = self._read_exact(int(hmap["content-length"]))
                elif hmap.get("transfer-encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                else:
                    body = b""
                fault = proxy.draw(method, target, hmap)
                if fault == "down":
                    return
                if fault == "drop_before":
                    return
                if fault in (500, 503):
                    self._send_error(fault)
                    continue
                status, reason, rheaders, rbody = self._forward(method, target, headers, body, hmap)
                if fault == "drop_after":
                    # the server acted on it but the client never hears: a
                    # CreateMultipartUpload lost this way leaves an upload
                    # the client cannot know of (docs/STORAGE.md)
                    if method == "POST" and "uploads" in target and "uploadId" not in target:
                        proxy._count_locked("initiate_answer_lost")
                    return
                out = ["HTTP/1.1 %d %s" % (status, reason)]
                for k, v in rheaders:
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        out.append("%s: %s" % (k, v))
                if method != "HEAD":
                    out.append("Content-Length: %d" % len(rbody))
                else:
                    cl = [v for k, v in rheaders if k.lower() == "content-length"]
                    if cl:
                        out.append("Content-Length: %s" % cl[0])
                self.request.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") +
                                     (rbody if method != "HEAD" else b""))
        except (ConnectionError, OSError, ValueError):
            return
        finally:
            if self.upstream:
                self.upstream.close()

    def _forward(self, method, target, headers, body, hmap):
        proxy = self.server.proxy
        for attempt in (1, 2):
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                           timeout=120)
            try:
                c = self.upstream
                c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        c.putheader(k, v)
                if body or method in ("PUT", "POST"):
                    c.putheader("Content-Length", str(len(body)))
                c.endheaders(body if body else None)
                r = c.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    c.close()
                    self.upstream = None
                return r.status, r.reason, r.getheaders(), data
            except (http.client.HTTPException, OSError):
                self.upstream.close()
                self.upstream = None
                if attempt == 2:
                    raise ConnectionError("upstream failed")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultProxy:
    def __init__(self, upstream_port, seed=7):
        self.upstream_port = upstream_port
        self.fail_rate = 0.0
        self.drop_rate = 0.0
        self.down = False
        self.only_methods = None     # e.g. {"PUT"}: faults only for these methods
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {}
        self.server = None
        self.port = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def reset(self, fail_rate=0.0, drop_rate=0.0, down=False, only_methods=None):
        with self.lock:
            self.fail_rate, self.drop_rate, self.down = fail_rate, drop_rate, down
            self.only_methods = only_methods
            self.counts = {}

    def _count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

    def _count_locked(self, key):
        with self.lock:
            self._count(key)

    def draw(self, method, target, hmap):
        with self.lock:
            self._count("requests")
            self._count("method_" + method)
            if self.down:
                self._count("refused")
                return "down"
            if self.only_methods and method not in self.only_methods:
                return None
            r = self.rng.random()
            if r < self.drop_rate:
                self._count("dropped")
                return "drop_before" if self.rng.random() < 0.5 else "drop_after"
            if r < self.drop_rate + self.fail_rate:
                self._count("injected_5xx")
                return 503 if self.rng.random() < 0.5 else 500
            return None

    def start(self):
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.proxy = self
        self.port = self.server.server_address[1]
        t = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True)
        t.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
