"""A real webhook receiver for the integration tests: an HTTP server process
on a loopback port that verifies every Streamscale-Signature with its own
HMAC code (Python's hmac, not the product's), records every request as one
JSON line in a log file, and misbehaves on request.

Run as a program (the tests start it through Receiver below):

    receiver.py --port P --log FILE [--secret S] [--fail-first N]
                [--fail-status 500] [--fail-type job.queued ...]
                [--redirect-to URL] [--hold-first N --hold-file PATH]

  --fail-first N     answer --fail-status to the first N requests
  --fail-type T      answer 500 to every event of type T
  --redirect-to URL  answer requests to /redirect with 302 Location: URL
  --hold-first N     for the first N requests, record the event as processed,
                     then hold the answer until --hold-file exists (a
                     receiver that is slow to answer: the sender may be
                     killed meanwhile)
A request whose signature does not verify is answered 401 (when --secret
is set). "Down" is simply the process not running: the log file survives
restarts on the same port.

Each log line: {"n", "path", "status", "sig", "headers", "event"} where sig
is ok | unsigned | stale | mismatch | malformed | missing | not-checked,
status is what was answered, and event is the parsed body.
"""
import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300


def verify(secret, header, body, now=None, tolerance=TOLERANCE_S):
    """What a receiver does with Streamscale-Signature: t=UNIX,v1=HEX."""
    if header is None:
        return "missing"
    t, sigs = None, []
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t":
            try:
                t = int(v)
            except ValueError:
                return "malformed"
        elif k == "v1":
            sigs.append(v)
    if t is None:
        return "malformed"
    if not sigs:
        return "unsigned"
    now = time.time() if now is None else now
    if abs(now - t) > tolerance:
        return "stale"
    want = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "ok" if any(hmac.compare_digest(want, s) for s in sigs) else "mismatch"


def serve(args):
    lock = threading.Lock()
    state = {"n": 0}
    logf = open(args.log, "a")

    def record(entry):
        with lock:
            logf.write(json.dumps(entry) + "\n")
            logf.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet
            pass

        def answer(self, status, text="", headers=None):
            data = text.encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n_len = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n_len)
            with lock:
                state["n"] += 1
                n = state["n"]
            try:
                event = json.loads(body)
            except ValueError:
                event = None
            sig_hdr = self.headers.get("Streamscale-Signature")
            sig = verify(args.secret, sig_hdr, body) if args.secret else \
                ("unsigned" if sig_hdr and "v1=" not in sig_hdr else "not-checked")
            hdrs = {k: self.headers.get(k) for k in (
                "Streamscale-Event-Id", "Streamscale-Event-Type", "Streamscale-Signature",
                "Streamscale-Delivery-Attempt", "Content-Type", "User-Agent")}
            entry = {"n": n, "path": self.path, "sig": sig, "headers": hdrs, "event": event,
                     "t": time.time()}
            if args.secret and sig != "ok":
                status, text, extra = 401, "bad signature: %s" % sig, None
            elif self.path.startswith("/redirect") and args.redirect_to:
                status, text, extra = 302, "moved", {"Location": args.redirect_to}
            elif n <= args.fail_first:
                status, text, extra = args.fail_status, "failing on purpose (%d/%d)" % (
                    n, args.fail_first), None
            elif event and event.get("type") in (args.fail_type or []):
                status, text, extra = 500, "refusing %s on purpose" % event.get("type"), None
            else:
                status, text, extra = 200, "ok", None
            entry["status"] = status
            if n <= args.hold_first:
                entry["held"] = True
                record(entry)   # processed first, answered later (maybe never)
                while not os.path.exists(args.hold_file):
                    time.sleep(0.02)
                try:
                    self.answer(status, text, extra)
                except OSError:
                    pass
                return
            record(entry)
            self.answer(status, text, extra)

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
    print("receiver ready on port %d" % args.port, flush=True)
    srv.serve_forever()
    srv.server_close()
    logf.close()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=500)
    ap.add_argument("--fail-type", action="append")
    ap.add_argument("--redirect-to")
    ap.add_argument("--hold-first", type=int, default=0)
    ap.add_argument("--hold-file", default="/nonexistent")
    serve(ap.parse_args(argv))


# ---- used by the tests -----------------------------------------------------

class Receiver:
    """A receiver process managed by a Harness. The log file outlives
    restarts, so "down for a while" is stop() then start()."""

    def __init__(self, harness, name, port=None, **opts):
        from lib.harness import free_port
        self.h = harness
        self.name = name
        self.port = port or free_port()
        self.log = harness.path(name + ".events.jsonl")
        self.opts = opts
        self.url = "http://127.0.0.1:%d/hook" % self.port

    def start(self, **opts):
        from lib.harness import port_open, wait_until
        if opts:
            self.opts = opts
        argv = [sys.executable, os.path.abspath(__file__), "--port", str(self.port),
                "--log", self.log]
        for k, v in self.opts.items():
            flag = "--" + k.replace("_", "-")
            for x in (v if isinstance(v, (list, tuple)) else [v]):
                argv += [flag, str(x)]
        p = self.h.start(self.name, argv)
        wait_until(lambda: port_open(self.port) or p.poll() is not None, 20,
                   "receiver %s on port %d" % (self.name, self.port))
        if p.poll() is not None:
            raise AssertionError("receiver %s exited: %s" % (self.name, self.h.log_text(self.name)))
        return self

    def stop(self):
        self.h.stop(self.name)

    def requests(self):
        """Every request received, each checked against proto/ (the event
        against events.schema.json, the headers against openapi's
        webhooks.jobEvent): ContractError when one does not match."""
        from lib import contract
        try:
            with open(self.log) as f:
                reqs = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        c = contract.get()
        for r in reqs:
            c.check_webhook(r)
        return reqs

    def accepted(self):
        """Events the receiver processed (answered 2xx, or held), in arrival order."""
        return [r["event"] for r in self.requests() if r["status"] < 300 or r.get("held")]

    def unique(self):
        """accepted(), deduplicated by event id as a receiver should."""
        seen, out = set(), []
        for e in self.accepted():
            if e["id"] not in seen:
                seen.add(e["id"])
                out.append(e)
        return out


if __name__ == "__main__":
    main()
