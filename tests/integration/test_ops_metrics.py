"""Prometheus metrics, end to end: the coordinator's /metrics and a worker's
own /metrics (metrics_listen) parse as text exposition format 0.0.4 (a strict
parser below: HELP/TYPE before the samples, one group per family, label
syntax and escapes, cumulative histogram buckets ending in +Inf = _count,
_total on counters, no job ids in labels), and the numbers move when jobs
run: queue jobs through the real worker daemon with the no-op executor
(completed, retried to dead, cancelled), then one real encode with
streamscale-worker, whose upload bytes and encode speed show up in both
the fleet and the worker view. With Redis down the scrape still answers,
with streamscale_redis_up 0."""
import math
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BIN, Api, Harness, free_port, http_json, http_request, main, wait_until  # noqa: E402

TOKEN = "metrics-test-token"
COORD = {"STREAMSCALE_REAP_INTERVAL_MS": "200", "STREAMSCALE_RETRY_BASE_MS": "50",
         "STREAMSCALE_RETRY_CAP_MS": "200"}
WORKER = {"STREAMSCALE_LEASE_SECONDS": "5", "STREAMSCALE_HEARTBEAT_MS": "200",
          "STREAMSCALE_POLL_MS": "200", "STREAMSCALE_REGISTRY_TTL": "3",
          "STREAMSCALE_RETRY_BASE_MS": "50", "STREAMSCALE_RETRY_CAP_MS": "200",
          "STREAMSCALE_LOG_LEVEL": "info"}

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ParseError(AssertionError):
    pass


def parse_value(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise ParseError("%s: value %r is not a number" % (where, s))


def parse_labels(s, where):
    """{k="v",...} body -> dict, per the format's escaping rules."""
    out, i = {}, 0
    while i < len(s):
        m = LABEL_NAME_RE.match(s, i)
        if not m:
            raise ParseError("%s: bad label name at %r" % (where, s[i:]))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after label %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ParseError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError("%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError("%s: raw newline in label value" % where)
            else:
                val.append(c)
                i += 1
        if name in out:
            raise ParseError("%s: label %s twice" % (where, name))
        out[name] = "".join(val)
        if i < len(s):
            if s[i] != ",":
                raise ParseError("%s: expected , between labels" % where)
            i += 1
    return out


def parse_prometheus(text):
    """Strict enough for what we emit: returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}; raises ParseError on anything off."""
    if not text.endswith("\n"):
        raise ParseError("exposition must end with a newline")
    fams, order, current = {}, [], None
    closed = set()

    def family_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)] if name.endswith(suffix) else None
            if base and base in fams and fams[base]["type"] in ("histogram", "summary"):
                return base
        return name

    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d (%r)" % (n, line[:120])
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.match(name):
                    raise ParseError("%s: bad metric name" % where)
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if name in closed or f["samples"]:
                    raise ParseError("%s: %s after the family's samples" % (where, parts[1]))
                key = parts[1].lower()
                if f[key] is not None:
                    raise ParseError("%s: second %s for %s" % (where, parts[1], name))
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ParseError("%s: bad TYPE" % where)
                    f["type"] = parts[3]
                else:
                    f["help"] = parts[3] if len(parts) == 4 else ""
                if current and current != name:
                    closed.add(current)
                current = name
                if name not in order:
                    order.append(name)
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$", line)
        if not m:
            raise ParseError("%s: not a sample line" % where)
        name, lab, val = m.group(1), m.group(2), m.group(3)
        fam = family_of(name)
        if fam not in fams or fams[fam]["type"] is None:
            raise ParseError("%s: sample before its # TYPE" % where)
        if fam in closed:
            raise ParseError("%s: family %s is not one group" % (where, fam))
        if current != fam:
            if current:
                closed.add(current)
            current = fam
        labels = parse_labels(lab, where) if lab else {}
        fams[fam]["samples"].append((name, labels, parse_value(val, where)))
    # per-family checks
    for name, f in fams.items():
        if f["help"] is None:
            raise ParseError("%s has no HELP" % name)
        seen = set()
        for sname, labels, v in f["samples"]:
            key = (sname, tuple(sorted(labels.items())))
            if key in seen:
                raise ParseError("%s: duplicate series %r" % (name, key))
            seen.add(key)
            for lk in labels:
                if lk in ("job_id", "id", "job"):
                    raise ParseError("%s: job ids must never be labels" % name)
        if f["type"] == "counter":
            if not name.endswith("_total"):
                raise ParseError("counter %s does not end in _total" % name)
            for sname, labels, v in f["samples"]:
                if sname != name or v < 0:
                    raise ParseError("counter %s: bad sample %s %s" % (name, sname, v))
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return fams


def check_histogram(name, samples):
    groups = {}
    for sname, labels, v in samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            if "le" not in labels:
                raise ParseError("%s: bucket without le" % name)
            g["buckets"].append((parse_value(labels["le"], name), v))
        elif sname == name + "_sum":
            g["sum"] = v
        elif sname == name + "_count":
            g["count"] = v
        else:
            raise ParseError("%s: stray sample %s" % (name, sname))
    for rest, g in groups.items():
        b = g["buckets"]
        if not b or b[-1][0] != math.inf:
            raise ParseError("%s%s: last bucket is not le=+Inf" % (name, rest))
        les = [x[0] for x in b]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ParseError("%s%s: le values not ascending" % (name, rest))
        counts = [x[1] for x in b]
        if counts != sorted(counts):
            raise ParseError("%s%s: buckets not cumulative: %s" % (name, rest, counts))
        if g["count"] is None or g["sum"] is None or g["count"] != counts[-1]:
            raise ParseError("%s%s: _count %s != +Inf bucket %s" % (name, rest, g["count"], counts[-1]))


def check_parser():
    """The parser itself refuses what it must (so a pass means something)."""
    good = ('# HELP a_total A.\n# TYPE a_total counter\na_total{x="q\\"\\\\\\n"} 1\n'
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 3.5\nh_count 2\n')
    f = parse_prometheus(good)
    assert f["a_total"]["samples"][0][1]["x"] == 'q"\\\n', f
    bad = [
        "a 1\n",                                                     # no TYPE
        "# HELP a A.\n# TYPE a gauge\na{b=\"x} 1\n",                 # unterminated
        "# HELP a A.\n# TYPE a counter\na 1\n",                      # counter without _total
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n",                                      # not cumulative
        "# HELP a A.\n# TYPE a gauge\na{job=\"x\"} 1\n",             # job label
        "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\na 2\n",  # split group
        "# HELP a A.\n# TYPE a gauge\na one\n",                      # bad value
    ]
    for t in bad:
        try:
            parse_prometheus(t)
        except ParseError:
            continue
        raise AssertionError("parser accepted %r" % t)


def scrape(url):
    r = http_request("GET", url + "/metrics", timeout=10)
    assert r.status == 200, r.status
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    return parse_prometheus(r.raw.decode())


def val(fams, name, **labels):
    """The value of one series (0 when the family or the series is absent)."""
    fam = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in fams:
            fam = name[:-len(suffix)]
    for sname, lab, v in fams.get(fam, {"samples": []})["samples"]:
        if sname == name and all(lab.get(k) == str(x) for k, x in labels.items()):
            return v
    return 0.0


def test_ops_metrics():
    check_parser()
    with Harness("ops-metrics") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN, extra=COORD)
        api = Api(url, TOKEN)
        mport = free_port()
        h.queue_worker("qw", rport, extra=dict(WORKER, STREAMSCALE_METRICS_LISTEN="127.0.0.1:%d" % mport))
        wurl = "http://127.0.0.1:%d" % mport
        wait_until(lambda: val(scrape(url), "streamscale_workers") == 1, 20, "the worker in the registry")

        before = scrape(url)
        assert val(before, "streamscale_redis_up") == 1
        for fam in ("streamscale_queue_depth", "streamscale_jobs", "streamscale_jobs_completed_total",
                    "streamscale_job_duration_seconds", "streamscale_job_encode_speed_ratio",
                    "streamscale_upload_bytes_total", "streamscale_http_requests_total",
                    "streamscale_worker_cpu_load_ratio", "streamscale_worker_busy_slots",
                    "streamscale_webhook_deliveries_total", "streamscale_leases_reaped_total",
                    "process_resident_memory_bytes"):
            assert fam in before, "family %s missing from /metrics" % fam
        assert val(before, "streamscale_worker_slots", worker="qw") == 1
        assert {lab["priority"] for _, lab, _ in before["streamscale_queue_depth"]["samples"]} == \
            {"high", "normal", "low"}

        # ---- jobs: 3 complete, 1 fails transiently into the dead-letter list,
        # 1 is cancelled while running
        done = [api.submit({"source": "file:///m/ok%d.mp4" % i, "metadata": {"sleep_ms": 100}})["id"]
                for i in range(3)]
        dead = api.submit({"source": "file:///m/dead.mp4", "max_attempts": 2,
                           "metadata": {"fail": "transient"}})["id"]
        for jid in done:
            api.wait_state(jid, "completed", 30)
        api.wait_state(dead, "dead", 30)
        slow = api.submit({"source": "file:///m/slow.mp4", "metadata": {"sleep_ms": 60000}})["id"]
        api.wait_state(slow, "running", 30)
        busy = wait_until(lambda: (lambda f: f if val(f, "streamscale_worker_busy_slots", worker="qw") == 1
                                   else None)(scrape(url)), 10, "busy slot in /metrics")
        assert val(busy, "streamscale_jobs", state="running") == 1
        assert val(busy, "streamscale_leases_active") == 1
        st, _ = api.cancel(slow)
        assert st == 202, st
        api.wait_state(slow, "cancelled", 10)

        after = scrape(url)
        d = lambda name, **kw: val(after, name, **kw) - val(before, name, **kw)  # noqa: E731
        assert d("streamscale_jobs_enqueued_total") == 5, d("streamscale_jobs_enqueued_total")
        assert d("streamscale_jobs_completed_total") == 3
        assert d("streamscale_jobs_started_total") == 6     # 3 + 2 attempts + 1
        assert d("streamscale_jobs_retried_total") == 1
        assert d("streamscale_jobs_failed_total") == 1
        assert d("streamscale_jobs_dead_total") == 1
        assert d("streamscale_jobs_cancelled_total") == 1
        assert d("streamscale_dead_letter_jobs") == 1
        assert val(after, "streamscale_jobs", state="completed") == 3
        assert d("streamscale_job_duration_seconds_count") == 3
        assert d("streamscale_job_duration_seconds_sum") >= 0.3
        assert val(after, "streamscale_job_duration_seconds_bucket", le="1") == 3   # ~0.1 s each
        assert d("streamscale_job_queue_wait_seconds_count") == 6
        assert d("streamscale_http_requests_total", route="jobs_submit", code="201") == 5
        assert val(after, "streamscale_http_requests_total", route="job_cancel", code="202") == 1
        assert val(after, "streamscale_http_requests_total", route="metrics", code="200") >= 2

        # ---- bulk clear: the jobs it forgets are counted (cleared)
        st, body = http_json("POST", url + "/v1/queue/clear", {"state": "completed"}, token=TOKEN)
        assert st == 200 and body["done"] == 3 and body["remaining"] == 0, (st, body)
        cl = scrape(url)
        assert val(cl, "streamscale_jobs_cleared_total") - val(before, "streamscale_jobs_cleared_total") \
            == 3, val(cl, "streamscale_jobs_cleared_total")
        assert val(cl, "streamscale_jobs", state="completed") == 0
        assert "streamscale_jobs_cleared_total" in before   # there (0) before any clear

        # bad token: counted under its route with 401
        http_json("GET", url + "/v1/jobs", token="wrong")
        f = scrape(url)
        assert val(f, "streamscale_http_requests_total", route="jobs_list", code="401") == 1

        # ---- the worker's own view
        wf = scrape(wurl)
        assert val(wf, "streamscale_worker_jobs_total", outcome="completed") == 3
        assert val(wf, "streamscale_worker_jobs_total", outcome="failed") == 2
        assert val(wf, "streamscale_worker_jobs_total", outcome="cancelled") == 1
        assert val(wf, "streamscale_worker_job_duration_seconds_count") == 3
        assert val(wf, "streamscale_worker_redis_connected") == 1
        assert val(wf, "streamscale_worker_slots", worker="qw") == 1
        # every series names the worker, like the coordinator's per-worker gauges
        for fam, f in wf.items():
            if fam.startswith("streamscale_worker_"):
                assert all(lab.get("worker") == "qw" for _, lab, _ in f["samples"]), fam
        assert val(wf, "streamscale_worker_info", worker="qw") == 1
        st, body = http_json("GET", wurl + "/healthz")
        assert st == 200 and body["redis"] == "ok", (st, body)
        st, _ = http_json("GET", wurl + "/nope")
        assert st == 404

        # ---- drain the no-op worker; a real worker encodes one clip
        h.stop("qw")
        wait_until(lambda: val(scrape(url), "streamscale_workers") == 0, 20, "the worker to leave")
        clip = h.path("clip.mp4")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", "2", "--size", "320x240"], stdout=subprocess.DEVNULL)
        rport2 = free_port()
        h.worker("real", rport, extra={"STREAMSCALE_METRICS_LISTEN": "127.0.0.1:%d" % rport2,
                                       "STREAMSCALE_LOG_LEVEL": "info"})
        r_url = "http://127.0.0.1:%d" % rport2
        pre = scrape(url)
        jid = api.submit({"source": "file://" + clip})["id"]
        job = api.wait_state(jid, ("completed", "failed", "dead"), 180)
        assert job["state"] == "completed", job
        post = scrape(url)
        dd = lambda name, **kw: val(post, name, **kw) - val(pre, name, **kw)  # noqa: E731
        up_bytes = dd("streamscale_upload_bytes_total")
        assert up_bytes > 10000, up_bytes
        assert dd("streamscale_upload_objects_total") >= 5
        assert dd("streamscale_job_encode_speed_ratio_count") == 1
        assert dd("streamscale_job_encode_frames_per_second_count") == 1
        assert dd("streamscale_job_encode_speed_ratio_sum") > 0
        rw = scrape(r_url)
        assert val(rw, "streamscale_worker_jobs_total", outcome="completed") == 1
        # the fleet figure is job.json's "upload" (everything stored before
        # job.json itself); the worker counts every object it stored
        jj = os.path.getsize(h.path("out", jid, "job.json"))
        assert val(rw, "streamscale_worker_upload_bytes_total") == up_bytes + jj, (
            val(rw, "streamscale_worker_upload_bytes_total"), up_bytes, jj)
        assert val(rw, "streamscale_worker_upload_objects_total") == \
            dd("streamscale_upload_objects_total") + 1
        assert val(rw, "streamscale_worker_encode_speed_ratio_count") == 1
        assert val(rw, "streamscale_worker_encode_frames_per_second_sum") > 0

        # ---- a metrics_listen address in use: the worker refuses to start
        bad = h.worker("badport", rport, extra={"STREAMSCALE_METRICS_LISTEN": "127.0.0.1:%d" % rport2},
                       wait_ready=False)
        assert bad.wait(20) != 0
        assert "metrics_listen" in h.log_text("badport"), h.log_text("badport")[-1000:]

        # ---- Redis down: still 200, redis_up 0, process metrics there
        h.stop("redis")
        down = scrape(url)
        assert val(down, "streamscale_redis_up") == 0
        assert "streamscale_queue_depth" not in down
        assert val(down, "streamscale_coordinator_uptime_seconds") > 0
        st, body = http_json("GET", r_url + "/healthz")
        wait_until(lambda: http_json("GET", r_url + "/healthz")[0] == 503, 20, "worker /healthz 503")
        h.send_signal("real", signal.SIGTERM)


if __name__ == "__main__":
    main(test_ops_metrics)
