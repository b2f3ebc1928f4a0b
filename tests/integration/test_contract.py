"""The contract (proto/job.schema.json, proto/openapi.yaml) against a real
coordinator, redis-server and worker (the no-op executor, ss_queue_worker).

(a) A table of job specs, good and bad, at every field's edge values: the
    API's verdict (2xx or 400) must equal jsonschema's verdict against
    proto/job.schema.json, and a 400 must name a field the schema also
    objects to. A second, short table holds the limits the schema cannot
    express (body size, nesting depth, repeated keys, metadata size, byte
    lengths): the API must enforce them as the schema's description says.
(b) Every route's answers (jobs in every state, the list, events of every
    type, workers, queue, health, metrics and the errors 400/401/404/405/
    409/413/503) must validate against the OpenAPI component schemas; the
    methods a path serves must be exactly the ones the document lists.
Also: the documents (and proto/events.schema.json, which openapi.yaml
references for the event envelope) are valid JSON Schema, every $ref
resolves, every example validates, the stored canonical spec carries the
schema's defaults, and the job id follows the documented rule.

Every mismatch is collected and reported at the end, so one run shows all
drift between the code and the contract. Needs Debian's python3-jsonschema
and python3-yaml (deploy/packages/test.txt).
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import (Api, Harness, RedisClient, http_request, main,  # noqa: E402
                         wait_until)

from lib import contract  # noqa: E402
from lib.contract import EVENTS_URI, JOB_URI, OPENAPI_URI  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402
from jsonschema.exceptions import RefResolutionError  # noqa: E402

TOKEN = "contract-token"
F = "file:///srv/in/a.mp4"   # a source that is fine by every rule


def src(**kw):
    d = {"source": F}
    d.update(kw)
    return d


# ---- (a) the spec table: (spec, note). The verdict comes from the schema;
# the API must agree. Keep each field's edges on both sides of the line.
SPECS = [
    # integers written as reals are integers (JSON has one number type)
    ({"source": "file:///a.mp4", "crf": 23.0}, "integral real for crf"),
    ({"source": "file:///a.mp4", "ladder": [{"height": 720.0}]}, "integral real for a rung height"),
    ({"source": "file:///a.mp4", "thumbnails": {"interval_seconds": 1e1}}, "exponent form"),
    ({"source": "file:///a.mp4", "crf": 23.5}, "non-integral crf"),
    # source
    (src(), "minimal"),
    ({"source": "https://media.example.com/a.mp4"}, "https"),
    ({"source": "http://media.example.com/a.mp4"}, "http"),
    ({"source": "s3://abc"}, "s3 bucket of 3, no key"),
    ({"source": "s3://" + "b" * 63 + "/k.mp4"}, "s3 bucket of 63"),
    ({"source": "s3://" + "b" * 64 + "/k.mp4"}, "s3 bucket of 64"),
    ({"source": "s3://ab/k.mp4"}, "s3 bucket of 2"),
    ({"source": "file:///"}, "file root"),
    ({"source": "file:///vid\u00e9o.mp4"}, "non-ASCII path"),
    ({"source": "file:///" + "a" * 2040}, "2048 bytes"),
    ({"source": "file:///" + "a" * 2041}, "2049 bytes"),
    ({"source": "file://relative/a.mp4"}, "relative file URL"),
    ({"source": "ftp://x/a.mp4"}, "scheme"),
    ({"source": "https://"}, "scheme only"),
    ({"source": "HTTPS://x/a.mp4"}, "schemes are case-sensitive"),
    ({"source": "file:///a b.mp4"}, "space"),
    ({"source": "file:///a\tb.mp4"}, "tab"),
    ({"source": "file:///a.mp4\n"}, "trailing newline"),
    ({"source": "file:///a\u007f.mp4"}, "DEL"),
    ({"source": ""}, "empty"),
    ({"source": 42}, "number"),
    ({"source": None}, "null"),
    ({}, "no source"),
    ({"destination": "file:///out/"}, "destination without source"),
    ([], "array body"),
    ("file:///a.mp4", "string body"),
    (None, "null body"),
    (src(colour="red"), "unknown field"),
    # destination
    (src(destination="s3://videos/vod/"), "s3 destination"),
    (src(destination="file:///out/"), "file destination"),
    (src(destination="https://x/out/"), "https destination"),
    (src(destination="file://out/"), "relative destination"),
    (src(destination=None), "null destination"),
    # ladder
    (src(ladder="auto"), "auto"),
    (src(ladder="per-title"), "per-title"),
    (src(ladder="best"), "unknown ladder word"),
    (src(ladder=[]), "no rungs"),
    (src(ladder=[{"height": 64}, {"height": 4320}]), "height edges"),
    (src(ladder=[{"height": 720}] * 8), "8 rungs"),
    (src(ladder=[{"height": 720}] * 9), "9 rungs"),
    (src(ladder=[{"height": 62}]), "height 62"),
    (src(ladder=[{"height": 4322}]), "height 4322"),
    (src(ladder=[{"height": 721}]), "odd height"),
    (src(ladder=[{"height": "720"}]), "height as string"),
    (src(ladder=[{"width": 640}]), "rung without height"),
    (src(ladder=["720"]), "rung not an object"),
    (src(ladder=[{"height": 720, "fps": 30}]), "unknown rung field"),
    (src(ladder=[{"height": 720, "width": 64}, {"height": 360, "width": 7680}]), "width edges"),
    (src(ladder=[{"height": 720, "width": 62}]), "width 62"),
    (src(ladder=[{"height": 720, "width": 7682}]), "width 7682"),
    (src(ladder=[{"height": 720, "width": 1281}]), "odd width"),
    (src(ladder=[{"height": 720, "bitrate_kbps": 50}, {"height": 360, "bitrate_kbps": 100000}]),
     "bitrate edges"),
    (src(ladder=[{"height": 720, "bitrate_kbps": 49}]), "bitrate 49"),
    (src(ladder=[{"height": 720, "bitrate_kbps": 100001}]), "bitrate 100001"),
    (src(ladder=[{"height": 720, "crf": 1}, {"height": 360, "crf": 51}]), "rung crf edges"),
    (src(ladder=[{"height": 720, "crf": 0}]), "rung crf 0"),
    (src(ladder=[{"height": 720, "crf": 52}]), "rung crf 52"),
    (src(ladder=None), "null ladder"),
    # rate_control
    (src(rate_control="two-pass"), "two-pass"),
    (src(rate_control="capped-crf"), "capped-crf"),
    (src(rate_control="cbr"), "unknown rate control"),
    (src(rate_control=1), "rate control number"),
    # segment_seconds
    (src(segment_seconds=1), "segment 1"),
    (src(segment_seconds=20), "segment 20"),
    (src(segment_seconds=2.5), "segment 2.5"),
    (src(segment_seconds=0.999), "segment under 1"),
    (src(segment_seconds=20.001), "segment over 20"),
    (src(segment_seconds="4"), "segment as string"),
    (src(segment_seconds=True), "segment as boolean"),
    # packaging
    (src(packaging=["dash"]), "dash only"),
    (src(packaging=["dash", "hls"]), "dash, hls"),
    (src(packaging=[]), "no packaging"),
    (src(packaging=["hls", "hls"]), "hls twice"),
    (src(packaging=["hls", "dash", "hls"]), "three entries"),
    (src(packaging=["smooth"]), "unknown packaging"),
    (src(packaging="hls"), "packaging as string"),
    (src(packaging=[1]), "packaging number"),
    # thumbnails
    (src(thumbnails=False), "thumbnails off"),
    (src(thumbnails={}), "thumbnails {}"),
    (src(thumbnails={"enabled": False, "interval_seconds": 600}), "interval 600"),
    (src(thumbnails={"interval_seconds": 1}), "interval 1"),
    (src(thumbnails={"interval_seconds": 0}), "interval 0"),
    (src(thumbnails={"interval_seconds": 601}), "interval 601"),
    (src(thumbnails={"interval_seconds": 1.5}), "interval 1.5"),
    (src(thumbnails={"enabled": "yes"}), "enabled as string"),
    (src(thumbnails={"every": 5}), "unknown thumbnails field"),
    (src(thumbnails="yes"), "thumbnails as string"),
    (src(thumbnails=None), "null thumbnails"),
    # webhook
    (src(webhook={"url": "https://hooks.example.com/h"}), "webhook without secret"),
    (src(webhook={"url": "http://hooks.example.com/h", "secret": "s" * 8}), "secret of 8"),
    (src(webhook={"url": "https://hooks.example.com/h", "secret": "s" * 256}), "secret of 256"),
    (src(webhook={"url": "https://hooks.example.com/h", "secret": "s" * 7}), "secret of 7"),
    (src(webhook={"url": "https://hooks.example.com/h", "secret": "s" * 257}), "secret of 257"),
    (src(webhook={"url": "https://hooks.example.com/h", "secret": 12345678}), "secret number"),
    (src(webhook={"url": "gopher://x"}), "webhook scheme"),
    (src(webhook={"url": "s3://bucket/x"}), "webhook to s3"),
    (src(webhook={"secret": "s" * 10}), "webhook without url"),
    (src(webhook={"url": "https://h.example.com/", "retries": 3}), "unknown webhook field"),
    (src(webhook="https://hooks.example.com/h"), "webhook as string"),
    # priority
    (src(priority="high"), "high"),
    (src(priority="low"), "low"),
    (src(priority="urgent"), "unknown priority"),
    (src(priority=1), "priority number"),
    # metadata
    (src(metadata={}), "empty metadata"),
    (src(metadata={"a": {"b": [1, 2, {"c": None}]}, "n": 1.5}), "nested metadata"),
    (src(metadata=[1]), "metadata array"),
    (src(metadata="x"), "metadata string"),
    (src(metadata=None), "null metadata"),
    # idempotency_key
    (src(idempotency_key="k"), "key of 1"),
    (src(idempotency_key="k" * 128), "key of 128"),
    (src(idempotency_key="order 17 / v2"), "key with spaces"),
    (src(idempotency_key=""), "empty key"),
    (src(idempotency_key="k" * 129), "key of 129"),
    (src(idempotency_key="a\nb"), "key with newline"),
    (src(idempotency_key=17), "key number"),
    # preset, crf, max_attempts
    (src(preset="ultrafast"), "ultrafast"),
    (src(preset="placebo"), "placebo"),
    (src(preset="fastest"), "unknown preset"),
    (src(preset="Medium"), "preset case"),
    (src(crf=1), "crf 1"),
    (src(crf=51), "crf 51"),
    (src(crf=0), "crf 0"),
    (src(crf=52), "crf 52"),
    (src(crf="23"), "crf string"),
    (src(crf=-1), "crf negative"),
    (src(crf=10 ** 20), "crf beyond 64 bits"),
    (src(max_attempts=1), "attempts 1"),
    (src(max_attempts=20), "attempts 20"),
    (src(max_attempts=0), "attempts 0"),
    (src(max_attempts=21), "attempts 21"),
    (src(max_attempts=None), "null attempts"),
    # everything at once
    ({"source": "s3://incoming/2026/a.mp4", "destination": "s3://videos/vod/",
      "ladder": [{"height": 1080, "width": 1920, "bitrate_kbps": 6000, "crf": 21}, {"height": 360}],
      "rate_control": "two-pass", "segment_seconds": 6, "packaging": ["hls"],
      "thumbnails": {"enabled": True, "interval_seconds": 5},
      "webhook": {"url": "https://hooks.example.com/h", "secret": "whsec-0123456789"},
      "priority": "low", "metadata": {"title": "T"}, "idempotency_key": "every-field",
      "preset": "slow", "crf": 20, "max_attempts": 5}, "every field"),
]

# Limits the schema's descriptions state but JSON Schema cannot express:
# (raw body, expected status, expected field, note). The schema accepts each
# of these documents; the API must refuse it as documented.
def beyond_schema():
    deep = {}
    node = deep
    for _ in range(15):     # metadata at depth 2 + 15 more = 17 levels
        node["x"] = {}
        node = node["x"]
    return [
        (json.dumps(src(metadata={"pad": "x" * 8200})), 400, "metadata", "metadata over 8 KiB"),
        (json.dumps(src(metadata={"pad": "x" * 8150})), None, None, "metadata just under 8 KiB"),
        ('{"source":"file:///a.mp4","source":"file:///b.mp4"}', 400, "(body)", "repeated key"),
        (json.dumps(src(metadata=deep)), 400, "(body)", "17 levels deep"),
        (json.dumps(src(metadata={"pad": "x" * 70000})), 413, "(body)", "body over 64 KiB"),
        (json.dumps(src(idempotency_key="\u00e9" * 100), ensure_ascii=False), 400,
         "idempotency_key", "128 characters but 200 bytes"),
    ]


# Cases where the code and the contract disagree and the code looks wrong
# (reported, not fixed here): JSON Schema (and JSON itself) treats 23.0 as
# the integer 23; jansson reads it as a real and jobspec.c refuses it. When
# the code accepts these, move them into SPECS.
KNOWN_DRIFT = []

# The routes coord_api.c serves (method set per path): the document must list
# exactly these operations, and the server must answer 405 to the others.
ROUTES = {
    "/v1/jobs": {"get", "post"},
    "/v1/jobs/{id}": {"get", "delete"},
    "/v1/jobs/{id}/cancel": {"post"},
    "/v1/jobs/{id}/retry": {"post"},
    "/v1/jobs/{id}/events": {"get"},
    "/v1/uploads": {"post"},
    "/v1/uploads/{id}": {"get", "put"},
    "/v1/workers": {"get"},
    "/v1/queue": {"get"},
    "/v1/queue/history": {"get"},
    "/v1/queue/retry": {"post"},
    "/v1/queue/clear": {"post"},
    "/v1/workers/{id}/drain": {"post"},
    "/v1/workers/{id}/resume": {"post"},
    "/healthz": {"get"},
    "/metrics": {"get"},
}
METHODS = ("get", "post", "put", "delete", "patch")


class Contract:
    """The documents (read once by lib/contract.py, which the harness uses to
    check every answer) plus this test's list of problems."""

    def __init__(self):
        base = contract.get()
        self.job_schema, self.openapi = base.job_schema, base.openapi
        self.events_schema = base.events_schema
        self.resolver, self.spec_validator = base.resolver, base.spec_validator
        self.problems = []
        self.checked = 0

    def problem(self, msg):
        self.problems.append(msg)

    def validator(self, ref):
        return Draft202012Validator({"$ref": ref}, resolver=self.resolver)

    def component(self, name):
        return self.validator("#/components/schemas/" + name)

    def check(self, name, instance, what):
        """instance must validate against components/schemas/<name>."""
        self.checked += 1
        try:
            errs = sorted(self.component(name).iter_errors(instance),
                          key=lambda e: [str(p) for p in e.path])
        except RefResolutionError as e:
            self.problem("%s: schema %s has a $ref that does not resolve: %s" % (what, name, e))
            return False
        for e in errs[:5]:
            self.problem("%s: does not match %s at %s: %s" % (
                what, name, "/".join(str(p) for p in e.absolute_path) or "(top)", e.message[:300]))
        return not errs


def walk_refs(node, base, out):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str):
            out.append((base, r))
        for v in node.values():
            walk_refs(v, base, out)
    elif isinstance(node, list):
        for v in node:
            walk_refs(v, base, out)


def check_documents(c):
    """Static checks: meta-schema, $refs, operations, examples."""
    for name, doc in (("job.schema.json", c.job_schema), ("events.schema.json", c.events_schema)):
        try:
            Draft202012Validator.check_schema(doc)
        except Exception as e:  # SchemaError
            c.problem("%s is not a valid 2020-12 schema: %s" % (name, e))
    assert c.openapi.get("openapi", "").startswith("3.1"), "openapi.yaml must be OpenAPI 3.1"
    for name, s in c.openapi["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(s)
        except Exception as e:
            c.problem("components/schemas/%s is not a valid schema: %s" % (name, e))
    # every $ref resolves
    refs = []
    walk_refs(c.openapi, OPENAPI_URI, refs)
    walk_refs(c.job_schema, c.job_schema.get("$id") or JOB_URI, refs)
    walk_refs(c.events_schema, c.events_schema.get("$id") or EVENTS_URI, refs)
    for base, r in refs:
        try:
            c.resolver.push_scope(base)
            try:
                c.resolver.resolve(r)
            finally:
                c.resolver.pop_scope()
        except RefResolutionError as e:
            c.problem("$ref %r (in %s) does not resolve: %s" % (r, base, e))
    if c.problems:      # nothing further can be checked reliably
        raise AssertionError("proto/ is broken:\n  " + "\n  ".join(c.problems))
    # the operations are exactly the routes the server has
    doc_routes = {p: {m for m in ops if m in METHODS} for p, ops in c.openapi["paths"].items()}
    if doc_routes != ROUTES:
        c.problem("openapi paths %r differ from the server's routes %r" % (doc_routes, ROUTES))
    for p, ops in c.openapi["paths"].items():
        for m, op in ops.items():
            if m not in METHODS:
                continue
            public = p in ("/healthz", "/metrics")
            if public and op.get("security") != []:
                c.problem("%s %s needs no token: give it security: []" % (m.upper(), p))
            if not public and "401" not in op.get("responses", {}):
                c.problem("%s %s: 401 not documented" % (m.upper(), p))
    # every example validates against its own schema
    for name, s in c.openapi["components"]["schemas"].items():
        for i, ex in enumerate(s.get("examples", [])):
            c.check(name, ex, "components/schemas/%s example %d" % (name, i))
    for i, ex in enumerate(c.job_schema.get("examples", [])):
        for e in c.spec_validator.iter_errors(ex):
            c.problem("job.schema.json example %d: %s" % (i, e.message))
    for p, ops in c.openapi["paths"].items():
        for m, op in ops.items():
            if m not in METHODS:
                continue
            bodies = [("request", op.get("requestBody", {}))]
            bodies += [(code, resp) for code, resp in op.get("responses", {}).items()]
            for where, obj in bodies:
                if "$ref" in obj:
                    obj = c.resolver.resolve(obj["$ref"])[1]
                for mt, media in obj.get("content", {}).items():
                    if "schema" not in media or mt != "application/json":
                        continue
                    v = Draft202012Validator(media["schema"], resolver=c.resolver)
                    exs = [media["example"]] if "example" in media else []
                    exs += [e.get("value") for e in media.get("examples", {}).values()]
                    for ex in exs:
                        for e in v.iter_errors(ex):
                            c.problem("%s %s %s example: %s" % (m.upper(), p, where, e.message))


# ---- HTTP ------------------------------------------------------------------

def call(base, method, path, body=None, token=TOKEN, raw=None):
    """One request through the harness (which checks the answer against
    proto/ as well)."""
    return http_request(method, base + path, body if body is not None else raw, token=token)


def field_roots(errors, instance, props):
    """Top-level spec fields (or "(body)") that schema errors point at."""
    roots = set()
    for e in errors:
        if e.path:
            roots.add(str(e.path[0]))
        elif e.validator == "required":
            roots.update(p for p in e.validator_value if p not in instance)
        elif e.validator == "additionalProperties":
            roots.update(k for k in instance if k not in props)
        elif e.validator == "type":
            roots.add("(body)")
        roots |= field_roots(e.context or [], instance, props)
    return roots


def api_root(field):
    if not field or field.startswith("("):
        return field
    return field.split(".")[0].split("[")[0]


def spec_table(c, base):
    props = set(c.job_schema["properties"])
    seen = set()
    for spec, note in SPECS:
        key = json.dumps(spec, sort_keys=True)
        assert key not in seen, "duplicate table entry: %s" % note
        seen.add(key)
        errors = list(c.spec_validator.iter_errors(spec))
        schema_ok = not errors
        r = call(base, "POST", "/v1/jobs", raw=json.dumps(spec))
        api_ok = r.status in (200, 201)
        if r.status not in (200, 201, 400):
            c.problem("spec %r (%s): unexpected status %r" % (note, spec, r))
            continue
        if api_ok != schema_ok:
            c.problem("spec %r: the API says %s, the schema says %s%s" % (
                note, "valid (%d)" % r.status if api_ok else "invalid (400: %s)" % (
                    r.json or {}).get("error", {}).get("message"),
                "valid" if schema_ok else "invalid (%s)" % errors[0].message[:200],
                "" if len(json.dumps(spec)) > 300 else " — %s" % json.dumps(spec)))
            continue
        if api_ok:
            c.check("Job", r.json, "POST /v1/jobs (%s)" % note)
            continue
        c.check("Error", r.json, "POST /v1/jobs 400 (%s)" % note)
        err = (r.json or {}).get("error") or {}
        field = err.get("field")
        roots = field_roots(errors, spec, props)
        if field == "(body)" and "malformed JSON" in err.get("message", ""):
            continue    # jansson refused it while parsing (an integer beyond 64 bits)
        if api_root(field) not in roots:
            c.problem("spec %r: the API blames field %r, the schema objects to %s" % (
                note, field, sorted(roots)))

    for raw, status, field, note in beyond_schema():
        doc = json.loads(raw)
        if not c.spec_validator.is_valid(doc) and status:
            c.problem("limit case %r: expected the schema to accept it (only the API can refuse)"
                      % note)
        r = call(base, "POST", "/v1/jobs", raw=raw)
        if status is None:
            if r.status not in (200, 201):
                c.problem("limit case %r: expected 2xx, got %r" % (note, r))
            continue
        err = (r.json or {}).get("error") or {}
        if r.status != status or err.get("field") != field:
            c.problem("limit case %r: expected %d naming %r, got %r" % (note, status, field, r))
        c.check("Error", r.json, "POST /v1/jobs %d (%s)" % (status, note))

    for raw, field, note in KNOWN_DRIFT:
        doc = json.loads(raw)
        r = call(base, "POST", "/v1/jobs", raw=raw)
        if r.status in (200, 201) and c.spec_validator.is_valid(doc):
            c.problem("known drift %r is fixed (the API accepts it now): move it into SPECS" % note)
        elif r.status != 400 or ((r.json or {}).get("error") or {}).get("field") != field:
            c.problem("known drift %r: expected 400 naming %r, got %r" % (note, field, r))


# ---- (b) the lifecycle: every route, every state ---------------------------

def expect(c, r, status, schema, what):
    if r.status != status:
        c.problem("%s: expected %d, got %r" % (what, status, r))
        return None
    if r.json is None:
        c.problem("%s: body is not JSON: %r" % (what, r))
        return None
    c.check(schema, r.json, what)
    if status >= 400 and schema == "Error":
        documented = {"400": "invalid_request", "401": "unauthorized", "404": "not_found",
                      "405": "method_not_allowed", "409": "conflict", "413": "too_large",
                      "500": "internal", "503": "unavailable"}
        code = (r.json.get("error") or {}).get("code")
        if documented.get(str(status)) != code:
            c.problem("%s: status %d with error code %r" % (what, status, code))
    return r.json


def job_id_rule(c, job):
    """The documented id rule, recomputed from the stored canonical spec."""
    spec = job["spec"]
    if "webhook" in spec or any(isinstance(v, float) for v in spec.values()):
        return
    if "idempotency_key" in spec:
        h = hashlib.sha256(("key:" + spec["idempotency_key"]).encode()).hexdigest()
    else:
        h = hashlib.sha256(("spec:" + json.dumps(spec, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False)).encode()).hexdigest()
    if job["id"] != h[:20]:
        c.problem("job id %s does not follow the documented rule (expected %s)" % (
            job["id"], h[:20]))


def lifecycle(c, h, base, rport):
    api = Api(base, TOKEN, harness=h)
    get = lambda p: call(base, "GET", p)  # noqa: E731

    # -- a queued job, its canonical spec and its id
    meta = {"title": "contract", "playable": True}   # its result names master.m3u8: job.playable
    r = call(base, "POST", "/v1/jobs", src(metadata=meta))
    a = expect(c, r, 201, "Job", "POST /v1/jobs (new)")
    if r.headers.get("Location") != "/v1/jobs/%s" % a["id"]:
        c.problem("POST /v1/jobs: Location %r" % r.headers.get("Location"))
    expect(c, call(base, "POST", "/v1/jobs", src(metadata=meta)), 200, "Job",
           "POST /v1/jobs (again)")
    job = expect(c, get("/v1/jobs/" + a["id"]), 200, "Job", "GET /v1/jobs/{id} queued")
    defaults = {k: v["default"] for k, v in c.job_schema["properties"].items() if "default" in v}
    for k, v in defaults.items():
        if job["spec"].get(k) != v:
            c.problem("canonical spec: %s is %r, the schema's default is %r" % (
                k, job["spec"].get(k), v))
    job_id_rule(c, job)
    k1 = api.submit(src(idempotency_key="contract-key"))
    job_id_rule(c, api.job(k1["id"]))
    # the stored spec is the one that was hashed, also on a coordinator whose
    # max_attempts differs from the default; that setting is the job's
    # max_attempts, not part of its spec, so both coordinators agree on ids
    base5 = h.coordinator("coordinator-5", redis_port=rport, token=TOKEN,
                          extra={"STREAMSCALE_MAX_ATTEMPTS": "5"})
    s5 = src(metadata={"n": "attempts from the server"})
    j5 = Api(base5, TOKEN).submit(s5)
    job_id_rule(c, j5)
    if j5["max_attempts"] != 5 or "max_attempts" in j5["spec"]:
        c.problem("a spec without max_attempts on a coordinator with max_attempts 5: job "
                  "max_attempts %r, spec %r" % (j5["max_attempts"], j5["spec"]))
    again = call(base, "POST", "/v1/jobs", s5)
    if again.status != 200 or again.json["id"] != j5["id"]:
        c.problem("the same spec on a coordinator with max_attempts 3: %r, expected 200 with "
                  "id %s" % (again, j5["id"]))
    j7 = api.submit(dict(s5, max_attempts=7))
    job_id_rule(c, j7)
    if j7["max_attempts"] != 7 or j7["spec"].get("max_attempts") != 7 or j7["id"] == j5["id"]:
        c.problem("an explicit max_attempts 7: %r" % j7)
    h.stop("coordinator-5")
    t = api.job(api.submit(src(thumbnails=False))["id"])
    if t["spec"]["thumbnails"] != {"enabled": False, "interval_seconds": 10}:
        c.problem("thumbnails false is stored as %r" % t["spec"]["thumbnails"])
    # a name that never resolves: accepted at submit, its deliveries fail
    # (a literal loopback address is refused at submit: test_api)
    hook = {"url": "http://hooks.invalid:9/hook", "secret": "s" * 12}
    w = api.job(api.submit(src(webhook=hook))["id"])
    c.check("Job", w, "GET /v1/jobs/{id} with a webhook")
    if w["spec"]["webhook"].get("secret") != "(set)":
        c.problem("webhook secret shown as %r" % w["spec"]["webhook"].get("secret"))
    for jid in (k1["id"], t["id"], w["id"]):
        api.cancel(jid)

    # -- cancel and retry of a queued job
    cj = api.submit(src(metadata={"n": "cancel-me"}))
    expect(c, call(base, "DELETE", "/v1/jobs/" + cj["id"]), 200, "Job", "DELETE queued job")
    expect(c, call(base, "DELETE", "/v1/jobs/" + cj["id"]), 409, "Error", "DELETE cancelled job")
    expect(c, call(base, "POST", "/v1/jobs/%s/cancel" % cj["id"]), 409, "Error",
           "POST cancel of a cancelled job")
    rj = expect(c, call(base, "POST", "/v1/jobs/%s/retry" % cj["id"], {}), 200, "Job",
                "POST retry of a cancelled job")
    if rj and rj["state"] != "queued":
        c.problem("retry answered state %r" % rj["state"])
    expect(c, call(base, "POST", "/v1/jobs/%s/retry" % cj["id"]), 409, "Error",
           "POST retry of a queued job")

    # -- jobs the worker will run: a long high-priority one (cancelled while
    # running), a permanent failure, a transient one that dies
    long_ = api.submit(src(priority="high", metadata={"sleep_ms": 60000}))
    perm = api.submit(src(metadata={"fail": "permanent"}))
    trans = api.submit(src(metadata={"fail": "transient"}, max_attempts=2))

    # -- lists and paging
    lst = expect(c, get("/v1/jobs?limit=2"), 200, "JobList", "GET /v1/jobs?limit=2")
    if lst and (len(lst["jobs"]) != 2 or lst["next_offset"] != 2):
        c.problem("GET /v1/jobs?limit=2: %d jobs, next_offset %r" % (len(lst["jobs"]),
                                                                    lst["next_offset"]))
    total = lst["total"] if lst else 0
    last = expect(c, get("/v1/jobs?limit=500&offset=%d" % max(total - 1, 0)), 200, "JobList",
                  "GET /v1/jobs last page")
    if last and last["next_offset"] is not None:
        c.problem("last page: next_offset %r, documented null" % last["next_offset"])
    expect(c, get("/v1/jobs?state=queued"), 200, "JobList", "GET /v1/jobs?state=queued")
    expect(c, get("/v1/jobs?state=cancelled&limit=1&offset=0"), 200, "JobList",
           "GET /v1/jobs?state=cancelled")
    expect(c, get("/v1/jobs/%s/events" % a["id"]), 200, "EventPage", "GET events of a queued job")
    expect(c, get("/v1/queue"), 200, "QueueStats", "GET /v1/queue")
    expect(c, get("/v1/workers"), 200, "WorkerList", "GET /v1/workers (none)")

    # -- errors
    for p, field in (("/v1/jobs?limit=0", "limit"), ("/v1/jobs?limit=501", "limit"),
                     ("/v1/jobs?offset=-1", "offset"), ("/v1/jobs?limit=ten", "limit"),
                     ("/v1/jobs?state=bogus", "state"),
                     ("/v1/jobs/%s/events?after=-1" % a["id"], "after"),
                     ("/v1/jobs/%s/events?limit=1001" % a["id"], "limit")):
        e = expect(c, get(p), 400, "Error", "GET " + p)
        if e and e["error"].get("field") != field:
            c.problem("GET %s: field %r, expected %r" % (p, e["error"].get("field"), field))
    e = expect(c, call(base, "POST", "/v1/jobs", raw='{"source": '), 400, "Error", "malformed JSON")
    if e and e["error"].get("field") != "(body)":
        c.problem("malformed JSON: field %r" % e["error"].get("field"))
    expect(c, call(base, "POST", "/v1/jobs", raw=""), 400, "Error", "empty body")
    for what, tok in (("no token", None), ("wrong token", "nope")):
        for m, p in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/workers"),
                     ("GET", "/v1/nothing-here")):
            r = call(base, m, p, token=tok, raw="{}" if m == "POST" else None)
            expect(c, r, 401, "Error", "%s %s (%s)" % (m, p, what))
            challenge = r.headers.get("WWW-Authenticate") or ""
            if r.status == 401 and not challenge.startswith("Bearer"):
                c.problem("%s %s: 401 without a WWW-Authenticate: Bearer header" % (m, p))
    for p in ("/v1/jobs/" + "0" * 20, "/v1/jobs/" + "0" * 20 + "/events",
              "/v1/jobs/XYZ", "/v1/jobs/" + "A" * 20, "/v1/jobs/%s/nothing" % a["id"],
              "/v1/nothing", "/nothing"):
        expect(c, get(p), 404, "Error", "GET " + p)
    for m in ("DELETE", "POST"):
        p = "/v1/jobs/%s" % ("1" * 20) if m == "DELETE" else "/v1/jobs/%s/retry" % ("1" * 20)
        expect(c, call(base, m, p), 404, "Error", "%s %s" % (m, p))
    # methods: exactly the documented ones are served
    for tmpl, ops in ROUTES.items():
        p = tmpl.replace("{id}", a["id"])
        for m in METHODS:
            if m in ops:
                continue
            r = call(base, m.upper(), p, raw="{}" if m in ("post", "put", "patch") else None)
            if expect(c, r, 405, "Error", "%s %s" % (m.upper(), p)) is None:
                continue
            allow = {x.strip().lower() for x in (r.headers.get("Allow") or "").split(",")}
            if allow != ops:
                c.problem("%s %s: Allow %r, documented %s" % (m.upper(), p, r.headers.get("Allow"),
                                                              sorted(ops)))

    # -- health and metrics
    expect(c, call(base, "GET", "/healthz", token=None), 200, "Health", "GET /healthz")
    r = call(base, "GET", "/metrics", token=None)
    if r.status != 200 or not (r.headers.get("Content-Type") or "").startswith("text/plain") or \
            b"streamscale_queue_depth{priority=\"high\"}" not in r.raw:
        c.problem("GET /metrics: %r %r" % (r.status, r.headers.get("Content-Type")))

    # -- a worker runs them
    h.queue_worker("qworker", redis_port=rport, extra={
        "STREAMSCALE_HEARTBEAT_MS": "100", "STREAMSCALE_PROGRESS_EVENT_SECONDS": "1",
        "STREAMSCALE_RETRY_BASE_MS": "0", "STREAMSCALE_SLOTS": "1", "STREAMSCALE_POLL_MS": "200",
        "STREAMSCALE_DRAIN_TIMEOUT": "0"})
    api.wait_state(long_["id"], "running", timeout=20)
    wait_until(lambda: any(e["type"] == "job.progress" for e in api.events(long_["id"])), 20,
               "a job.progress event")
    ws = expect(c, get("/v1/workers"), 200, "WorkerList", "GET /v1/workers (one, busy)")
    if ws and not any(j["id"] == long_["id"] for w in ws["workers"] for j in w["jobs"]):
        c.problem("GET /v1/workers does not show the running job: %r" % ws)
    expect(c, get("/v1/jobs/" + long_["id"]), 200, "Job", "GET running job")
    expect(c, get("/v1/jobs?state=running"), 200, "JobList", "GET /v1/jobs?state=running")
    r = call(base, "DELETE", "/v1/jobs/" + long_["id"])
    # 202 + cancelling, or 200 + cancelled when the worker confirmed before
    # the coordinator read the job back; never a status that contradicts the body
    j = expect(c, r, 200 if r.status == 200 else 202, "Job", "DELETE running job")
    if j and (r.status, j["state"]) not in ((202, "cancelling"), (200, "cancelled")):
        c.problem("DELETE running job answered %d with state %r" % (r.status, j["state"]))
    r = call(base, "POST", "/v1/jobs/%s/cancel" % long_["id"])
    if r.status == 202:   # still cancelling: asked again, same answer
        c.check("Job", r.json, "POST cancel of a cancelling job")
    elif r.status == 200 and r.json and r.json.get("state") == "cancelled":
        c.check("Job", r.json, "POST cancel of a job its worker just stopped")
    elif r.status != 409:
        c.problem("POST cancel of a cancelling job: %r" % r)
    api.wait_state(long_["id"], "cancelled", timeout=20)
    for jid, st in ((a["id"], "completed"), (cj["id"], "completed"), (perm["id"], "failed"),
                    (trans["id"], "dead")):
        api.wait_state(jid, st, timeout=30)
    seen_types = set()
    for jid, st in ((long_["id"], "cancelled"), (a["id"], "completed"), (cj["id"], "completed"),
                    (perm["id"], "failed"), (trans["id"], "dead")):
        jj = expect(c, get("/v1/jobs/" + jid), 200, "Job", "GET %s job" % st)
        if jj and st in ("failed", "dead") and not jj["error"]:
            c.problem("a %s job has no error" % st)
        if jj and st == "completed" and not jj["result"]:
            c.problem("a completed job has no result")
        ev = expect(c, get("/v1/jobs/%s/events?limit=1000" % jid), 200, "EventPage",
                    "GET events of a %s job" % st)
        if ev:
            seqs = [e["seq"] for e in ev["events"]]
            if seqs != list(range(1, len(seqs) + 1)) or ev["next_after"] != ev["last_seq"]:
                c.problem("events of a %s job: seqs %r, next_after %r, last_seq %r" % (
                    st, seqs, ev["next_after"], ev["last_seq"]))
            seen_types |= {e["type"] for e in ev["events"]}
    page = expect(c, get("/v1/jobs/%s/events?after=1&limit=1" % a["id"]), 200, "EventPage",
                  "GET events after=1 limit=1")
    if page and ([e["seq"] for e in page["events"]] != [2] or page["next_after"] != 2):
        c.problem("events after=1 limit=1: %r" % page)
    et = c.openapi["components"]["schemas"]["EventType"]
    if "$ref" in et:
        et = c.resolver.resolve(et["$ref"])[1]
    types = set(et.get("enum") or ())
    if seen_types != types:
        c.problem("event types seen %s, documented %s" % (sorted(seen_types), sorted(types)))
    expect(c, call(base, "DELETE", "/v1/jobs/" + a["id"]), 409, "Error", "DELETE completed job")
    expect(c, call(base, "POST", "/v1/jobs/%s/retry" % a["id"]), 409, "Error",
           "POST retry of a completed job")
    expect(c, call(base, "POST", "/v1/jobs/%s/retry" % perm["id"]), 200, "Job",
           "POST retry of a failed job")
    expect(c, call(base, "POST", "/v1/jobs/%s/retry" % trans["id"]), 200, "Job",
           "POST retry of a dead job")
    expect(c, get("/v1/jobs?limit=500"), 200, "JobList", "GET /v1/jobs (all states)")
    expect(c, get("/v1/queue"), 200, "QueueStats", "GET /v1/queue (after work)")
    expect(c, get("/v1/workers"), 200, "WorkerList", "GET /v1/workers (after work)")

    # -- Redis gone: 503
    h.stop("qworker")
    h.stop("redis")
    for m, p in (("GET", "/v1/jobs/" + a["id"]), ("GET", "/v1/jobs"), ("GET", "/v1/queue"),
                 ("GET", "/v1/workers"), ("GET", "/v1/jobs/%s/events" % a["id"]),
                 ("DELETE", "/v1/jobs/" + a["id"])):
        expect(c, call(base, m, p), 503, "Error", "%s %s without Redis" % (m, p))
    expect(c, call(base, "POST", "/v1/jobs", src()), 503, "Error", "POST /v1/jobs without Redis")
    expect(c, call(base, "GET", "/healthz", token=None), 503, "Health",
           "GET /healthz without Redis")
    # /metrics still answers, with streamscale_redis_up 0
    r = call(base, "GET", "/metrics", token=None)
    if r.status != 200 or b"streamscale_redis_up 0" not in r.raw:
        c.problem("GET /metrics without Redis: expected 200 with streamscale_redis_up 0, "
                  "got %r" % r)


def test_contract():
    c = Contract()
    check_documents(c)
    with Harness("contract") as h:
        rport = h.redis()
        base = h.coordinator(redis_port=rport, token=TOKEN,
                             extra={"STREAMSCALE_REAP_INTERVAL_MS": "100"})
        spec_table(c, base)
        n_specs = len(SPECS)
        rc = RedisClient(rport)
        rc("FLUSHALL")      # the table's jobs are not the worker's business
        rc.close()
        lifecycle(c, h, base, rport)
    print("%d specs, %d responses checked against the contract" % (n_specs, c.checked))
    if c.problems:
        raise AssertionError("%d disagreement(s) between the code and proto/:\n  %s" % (
            len(c.problems), "\n  ".join(c.problems)))


if __name__ == "__main__":
    main(test_contract)
