"""Test harness for the integration tests: real servers on free loopback
ports, readiness probes (never fixed sleeps), cleanup by pid.

Every test file does:

    from lib.harness import Harness
    with Harness("name") as h:
        rport = h.redis()
        ...

Everything the harness starts is killed by pid when the block ends, and its
logs are kept under build/test-artifacts/<name>/ for a failed run.

Every HTTP answer a test reads goes through http_request() (http_json() and
Api are built on it), which checks it against proto/ (lib/contract.py) and
raises ContractError on any drift; at the end of a successful block the
events of every job on the coordinators it started are read back and checked
too. Tests use no other HTTP client for the daemons (test_docs_code checks).
"""
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

from lib import contract as _contract
from lib.contract import ContractError  # noqa: F401  (tests catch it by this name)

BUILD = os.environ.get("SS_BUILD_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "build"))
SOURCE = os.environ.get("SS_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(BUILD, "bin")
MEDIA_CACHE = os.environ.get("SS_MEDIA_CACHE") or os.path.join(SOURCE, "tests", "media", "cache")


# Test passwords of the ACL users in deploy/redis-acl.conf.
ACL_PASSWORDS = {"ss-worker": "test-worker-pw", "ss-coordinator": "test-coordinator-pw"}


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=30.0, what="condition", interval=0.02, fatal=None):
    """Poll pred() until it returns a truthy value; that value is returned.
    This is a readiness probe: it returns as soon as the state is reached.
    Exceptions of type `fatal` raised by pred end the wait at once."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the probe itself may fail until ready
            if isinstance(e, ContractError) or (fatal and isinstance(e, fatal)):
                raise   # an answer proto/ does not allow never becomes right by waiting
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s%s" %
                         (timeout, what, " (last error: %r)" % last_exc if last_exc else ""))


def completions(path):
    """The lines of an ss_queue_worker's completion log ($SS_QUEUE_LOG), each
    [job id, worker id], in the order the jobs completed ([] before any)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def cpu_seconds(pid):
    """User + system CPU seconds a process has used (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class DaemonDied(AssertionError):
    """A process the test did not stop has exited."""


class RedisClient:
    """A minimal RESP client (stdlib only) for test assertions."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("redis closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("redis closed the connection")
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad RESP reply %r" % line)

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def hgetall(self, key):
        r = self("HGETALL", key) or []
        return dict(zip(r[0::2], r[1::2]))


class Harness:
    def __init__(self, name, keep=False):
        self.name = name
        self.acl = False         # Redis has the ACL users (redis(acl=True))
        # daemons start in a session of their own; with the kernel's
        # autogroup scheduling each session is a group that gets an even
        # share of busy cores, whatever its thread count (benchmarks that
        # compare workers' CPU shares turn this off)
        self.new_session = True
        self.procs = {}          # name -> Popen
        self.logs = {}
        self.tmp = tempfile.mkdtemp(prefix="ss-%s-" % name)
        self.artifacts = os.path.join(BUILD, "test-artifacts", name)
        shutil.rmtree(self.artifacts, ignore_errors=True)
        os.makedirs(self.artifacts, exist_ok=True)
        self.keep = keep
        self.failed = False
        self.stopped = set()     # processes the test ended on purpose
        self.coordinators = []   # (name, url, token): their jobs' events are checked at the end

    # -- lifecycle -----------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        late = None
        if et is None:
            try:
                self.check_all_events()
            except Exception as e:   # reported like a failure of the test itself
                import traceback
                traceback.print_exc()
                et, late = type(e), e
        self.stop_all()
        if et is None:
            late = self.sanitizer_reports()
            et = type(late) if late else None
        self.failed = et is not None
        for name, path in self.logs.items():
            try:
                shutil.copy(path, os.path.join(self.artifacts, name + ".log"))
            except OSError:
                pass
        if et is not None:
            sys.stderr.write("logs kept in %s\n" % self.artifacts)
            for name in self.logs:
                p = os.path.join(self.artifacts, name + ".log")
                try:
                    with open(p, errors="replace") as f:
                        tail = f.read()[-3000:]
                    sys.stderr.write("---- %s (tail) ----\n%s\n" % (name, tail))
                except OSError:
                    pass
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if late is not None:
            raise late
        return False

    SANITIZER_MARKS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                       "ERROR: LeakSanitizer", ": runtime error: ")

    def sanitizer_reports(self):
        """An AssertionError naming every log (of everything it started)
        with a sanitizer report, or None. A report after the test's own
        checks (a race, a leak at exit) still fails the test."""
        found = []
        for name in self.logs:
            try:
                text = self.log_text(name)
            except OSError:
                continue
            for mark in self.SANITIZER_MARKS:
                i = text.find(mark)
                if i >= 0:
                    found.append("%s: %s" % (name, text[max(0, i - 200):i + 2500]))
                    break
        if not found:
            return None
        sys.stderr.write("sanitizer reports:\n%s\n" % "\n".join(found))
        return AssertionError("sanitizer report in the log of %s" % ", ".join(
            f.split(":", 1)[0] for f in found))

    def check_all_events(self):
        """Read every job's events through each coordinator this harness
        started that still serves (its Redis up): http_request() checks each
        event against proto/events.schema.json. So an event a test never
        looked at cannot drift either."""
        for name, url, token in self.coordinators:
            p = self.procs.get(name)
            if not p or p.poll() is not None:
                continue
            try:
                if http_json("GET", url + "/healthz", timeout=5)[0] != 200:
                    continue    # Redis is down: nothing to read
            except OSError:
                continue
            offset, n = 0, 0
            while offset is not None and n < 5000:
                st, page = http_json("GET", "%s/v1/jobs?limit=500&offset=%d" % (url, offset),
                                     token=token)
                if st != 200:
                    break
                for j in page["jobs"]:
                    n += 1
                    after = 0
                    while True:
                        st, ev = http_json("GET", "%s/v1/jobs/%s/events?after=%d&limit=1000" % (
                            url, j["id"], after), token=token)
                        if st != 200 or ev["next_after"] >= ev["last_seq"] or not ev["events"]:
                            break
                        after = ev["next_after"]
                offset = page["next_offset"]

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        return p

    def start(self, name, argv, env=None, cwd=None):
        """Start a process; stdout+stderr go to a log file kept as artifact."""
        log = os.path.join(self.tmp, name + ".log")
        self.logs[name] = log
        e = dict(os.environ)
        # Daemons under test never inherit the developer's settings.
        for k in list(e):
            if k.startswith("STREAMSCALE_") or k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                del e[k]
        e.update(env or {})
        if e.get("STREAMSCALE_METRICS_LISTEN"):   # a worker's own port: not the API
            _endpoints[e["STREAMSCALE_METRICS_LISTEN"]] = "worker"
        f = open(log, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=e, cwd=cwd,
                             start_new_session=self.new_session)
        f.close()
        self.procs[name] = p
        self.stopped.discard(name)
        return p

    def log_text(self, name):
        with open(self.logs[name], errors="replace") as f:
            return f.read()

    def job_messages(self, name, jid):
        """The messages of a daemon's JSON log lines about one job."""
        out = []
        for line in self.log_text(name).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("job") == jid:
                out.append(rec.get("msg", ""))
        return out

    def send_signal(self, name, sig):
        """Send sig; a terminating signal marks the exit as expected."""
        p = self.procs[name]
        if sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT):
            self.stopped.add(name)
        if p.poll() is None:
            os.kill(p.pid, sig)

    def assert_alive(self):
        """Fail fast when a daemon the test did not stop has died (a crash,
        a sanitizer report) instead of waiting for a timeout."""
        for name, p in self.procs.items():
            if name not in self.stopped and p.poll() is not None:
                raise DaemonDied("%s exited unexpectedly with %s:\n%s" %
                                     (name, p.returncode, self.log_text(name)[-3000:]))

    def stop(self, name, sig=signal.SIGTERM, timeout=20):
        p = self.procs.get(name)
        if not p:
            return None
        self.stopped.add(name)
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                pass
        return p.returncode

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name, signal.SIGTERM, timeout=10)

    # -- servers -------------------------------------------------------
    def acl_conf(self):
        """deploy/redis-acl.conf with test passwords, as a redis.conf: the
        daemons then log in as ss-coordinator / ss-worker (redis_url), the
        test's own RedisClient as the default user."""
        path = self.path("redis-acl.conf")
        with open(os.path.join(SOURCE, "deploy", "redis-acl.conf")) as f:
            text = f.read()
        for user, pw in ACL_PASSWORDS.items():
            text = text.replace("CHANGE-ME-%s-password" % user[3:], pw)
        with open(path, "w") as f:
            f.write(text)
        return path

    def redis_url(self, port, user):
        """The URL a daemon uses: with its ACL user when Redis has them."""
        if self.acl:
            return "redis://%s:%s@127.0.0.1:%d/0" % (user, ACL_PASSWORDS[user], port)
        return "redis://127.0.0.1:%d/0" % port

    def redis(self, name="redis", port=None, appendonly=False, acl=None):
        """A redis-server; with acl (default: SS_REDIS_ACL=1 in the
        environment) it has the ACL users of deploy/redis-acl.conf and the
        daemons started after it log in as them."""
        port = port or free_port()
        d = self.path(name + "-data")
        os.makedirs(d, exist_ok=True)
        if acl is None:
            acl = os.environ.get("SS_REDIS_ACL") == "1"
        self.acl = self.acl or acl
        argv = ["redis-server"] + ([self.acl_conf()] if acl else []) + ["--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if appendonly else "no", "--dir", d,
                "--appendfsync", "always" if appendonly else "everysec"]
        self.start(name, argv)
        wait_until(lambda: self._redis_ping(port), 20, "redis-server on port %d" % port)
        return port

    @staticmethod
    def _redis_ping(port):
        try:
            c = RedisClient(port)
            ok = c("PING") == "PONG"
            c.close()
            return ok
        except OSError:
            return False

    def coordinator(self, name="coordinator", redis_port=None, token="test-token", extra=None,
                    port=None):
        port = port or free_port()
        env = {
            "STREAMSCALE_LISTEN": "127.0.0.1:%d" % port,
            "STREAMSCALE_REDIS": self.redis_url(redis_port, "ss-coordinator"),
            "STREAMSCALE_API_TOKEN": token,
        }
        env.update(extra or {})
        self.start(name, [os.path.join(BIN, "streamscale-coordinator")], env=env)
        url = "http://127.0.0.1:%d" % port
        if (name, url, token) not in self.coordinators:
            self.coordinators.append((name, url, token))
        wait_until(lambda: http_json("GET", url + "/healthz")[0] == 200, 30,
                   "coordinator /healthz on port %d" % port)
        return url

    def worker(self, name="worker", redis_port=None, storage=None, extra=None, wait_ready=True,
               binary="streamscale-worker", args=None):
        scratch = self.path(name + "-scratch")
        os.makedirs(scratch, exist_ok=True)
        storage = storage or "file://" + self.path("out") + "/"
        env = {
            "STREAMSCALE_REDIS": self.redis_url(redis_port, "ss-worker"),
            "STREAMSCALE_ID": name,
            "STREAMSCALE_SCRATCH_DIR": scratch,
            "STREAMSCALE_STORAGE": storage,
            "STREAMSCALE_CPU_THRESHOLD": "100",
            "STREAMSCALE_LOG_LEVEL": "debug",
            # file:// is off unless file_roots names folders: the test's own
            # folder and the fetched media
            "STREAMSCALE_FILE_ROOTS": "%s:%s" % (self.tmp, MEDIA_CACHE),
        }
        env.update(extra or {})
        exe = os.path.join(BIN, binary) if binary == "streamscale-worker" else \
            os.path.join(BUILD, "tests", binary)
        p = self.start(name, [exe] + list(args or []), env=env)
        if wait_ready:
            wait_until(lambda: "worker ready" in self.log_text(name) or p.poll() is not None,
                       30, "worker %s ready" % name)
            if p.poll() is not None:
                raise AssertionError("worker %s exited: %s" % (name, self.log_text(name)[-2000:]))
        return p


    def queue_worker(self, name="qworker", redis_port=None, extra=None, wait_ready=True, args=None):
        """The real worker daemon with the no-op executor (tests/tools/ss_queue_worker)."""
        return self.worker(name, redis_port, extra=extra, wait_ready=wait_ready,
                           binary="ss_queue_worker", args=args)

    def wait_ready_line(self, name, count=1, timeout=30):
        """Wait until a (re)started worker logged its ready line `count` times."""
        wait_until(lambda: self.log_text(name).count("worker ready") >= count, timeout,
                   "worker %s ready" % name)


class Api:
    """A small client for the coordinator's API."""

    def __init__(self, url, token="test-token", harness=None):
        self.url = url
        self.token = token
        self.harness = harness   # when set, waits fail fast if a daemon died

    def submit(self, spec, expect=(200, 201)):
        st, body = http_json("POST", self.url + "/v1/jobs", spec, token=self.token)
        if expect and st not in expect:
            raise AssertionError("submit -> %s %s" % (st, body))
        return body

    def job(self, jid):
        st, body = http_json("GET", self.url + "/v1/jobs/" + jid, token=self.token)
        assert st == 200, (st, body)
        return body

    def events(self, jid, after=0):
        st, body = http_json("GET", "%s/v1/jobs/%s/events?after=%d&limit=1000" % (self.url, jid, after),
                             token=self.token)
        assert st == 200, (st, body)
        return body["events"]

    def cancel(self, jid):
        return http_json("DELETE", self.url + "/v1/jobs/" + jid, token=self.token)

    def retry(self, jid):
        return http_json("POST", self.url + "/v1/jobs/%s/retry" % jid, {}, token=self.token)

    def workers(self):
        st, body = http_json("GET", self.url + "/v1/workers", token=self.token)
        assert st == 200, (st, body)
        return body["workers"]

    def wait_state(self, jid, states, timeout=120):
        if isinstance(states, str):
            states = (states,)

        def probe():
            if self.harness:
                self.harness.assert_alive()
            j = self.job(jid)
            return j if j["state"] in states else None
        return wait_until(probe, timeout, "job %s to be %s" % (jid, "/".join(states)), interval=0.05,
                          fatal=DaemonDied)


# host:port -> what serves there when it is not a coordinator ("worker": a
# worker's metrics_listen port); everything else is checked as the API.
_endpoints = {}


class Headers(dict):
    """Response headers; names in any case (stored lower-case)."""

    def __init__(self, pairs):
        super().__init__((k.lower(), v) for k, v in pairs)

    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())


class Resp:
    """One HTTP answer: status, headers (any case), raw body, and the body
    parsed as JSON (None when it is not JSON)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "%d %s" % (self.status, self.raw[:300])


def http_request(method, url, body=None, token=None, timeout=30, headers=None, check=True):
    """Send one request and check the answer against proto/ (ContractError
    when it does not match). The path is sent exactly as written (no
    normalization), so tests can send hostile paths. body: bytes, str, or
    a JSON value. check=False only for servers that are not ours."""
    u = urllib.parse.urlsplit(url)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        c.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body=data,
                  headers=hdrs)
        r = c.getresponse()
        raw = r.read()
        resp = Resp(r.status, Headers(r.getheaders()), raw)
    finally:
        c.close()
    if check:
        kind = _endpoints.get(u.netloc)
        con = _contract.get()
        if kind == "worker":
            con.check_worker_port(method, url, resp.status, resp.headers, raw)
        else:
            con.check_response(method, url, resp.status, resp.headers, raw)
    return resp


def http_json(method, url, body=None, token=None, timeout=30, raw=False):
    """(status, parsed JSON or text), checked against proto/ by
    http_request(). Never raises on HTTP error codes."""
    r = http_request(method, url, body, token=token, timeout=timeout)
    if raw:
        return r.status, r.raw
    if r.json is not None:
        return r.status, r.json
    return r.status, r.raw.decode("utf-8", "replace")


def media(name):
    """Path of a fetched test file (tests/media/fetch.sh puts them there)."""
    p = os.path.join(MEDIA_CACHE, name)
    if not os.path.exists(p):
        subprocess.check_call([os.path.join(SOURCE, "tests", "media", "fetch.sh"), MEDIA_CACHE])
    return p


def gen_clip(path, seconds=4, size="320x240", rate=25, audio=True, extra_in=None, extra_out=None,
             video_src="testsrc2"):
    """Generate a test clip with libavfilter sources (tests may use the
    ffmpeg CLI; the product never does)."""
    if os.path.exists(path):
        return path
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "%s=size=%s:rate=%s:duration=%s" % (video_src, size, rate, seconds)]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=%s" % seconds]
    argv += extra_in or []
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac", "-b:a", "96k"]
    argv += extra_out or []
    argv += [path]
    subprocess.check_call(argv)
    return path


def start_node_script(script, env):
    """Start a tests/browser script with node in its own process group (so
    ending the group ends node and the chromium it started)."""
    node = shutil.which("node")
    assert node, "node is missing: deploy/deps.sh nodejs"
    bdir = os.path.join(SOURCE, "tests", "browser")
    return subprocess.Popen([node, os.path.join(bdir, script)], cwd=bdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def run_node_script(script, env, timeout):
    """Run a tests/browser script (start_node_script) to its end, or end its
    group after timeout seconds; returns (exit status, its output, the JSON
    of its last "SUMMARY {...}" line or None)."""
    return finish_node_script(start_node_script(script, env), timeout)


def finish_node_script(p, timeout):
    """run_node_script for a script started with start_node_script."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("SUMMARY ")]
    return p.returncode, out, json.loads(lines[-1][8:]) if lines else None


def main(fn):
    """Run a test function, print PASS/FAIL, exit with a status ctest reads."""
    t0 = time.monotonic()
    try:
        fn()
    except Exception:
        import traceback
        traceback.print_exc()
        print("FAIL %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
        sys.exit(1)
    print("PASS %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
    sys.exit(0)
