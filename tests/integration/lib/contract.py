"""The proto/ contract, checked on everything an integration test sees.

harness.http_request() (and http_json() on top of it) passes every answer
through check_response(); the webhook receiver's log (receiver.Receiver)
passes every delivery through check_webhook(); at the end of every
successful Harness block, every job's events are read back through the API
(and so checked too). A mismatch raises ContractError: the test ends there,
also inside wait_until() probes, so no test can drift from proto/ quietly.

What is checked against what:
  coordinator answers    the operation's documented response in
                         proto/openapi.yaml (status documented, JSON schema,
                         content type, documented headers); errors are
                         `Error` with the code their status documents
  job events             proto/events.schema.json (through openapi's
                         EventPage, and directly for webhook bodies)
  job specs              proto/job.schema.json (CanonicalSpec refers to it)
  worker metrics port    WorkerHealth for /healthz, text for the rest
Needs Debian's python3-jsonschema and python3-yaml (deploy/packages/test.txt).
"""
import json
import os
import re
import urllib.parse
import warnings

import yaml
from jsonschema import Draft202012Validator

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonschema import RefResolver

PROTO = os.path.join(os.environ.get("SS_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..")), "proto")
JOB_SCHEMA_PATH = os.path.join(PROTO, "job.schema.json")
EVENTS_SCHEMA_PATH = os.path.join(PROTO, "events.schema.json")
OPENAPI_PATH = os.path.join(PROTO, "openapi.yaml")
JOB_URI = "file://" + JOB_SCHEMA_PATH
EVENTS_URI = "file://" + EVENTS_SCHEMA_PATH
OPENAPI_URI = "file://" + OPENAPI_PATH

# The error code each status documents (Error.error.code in openapi.yaml).
ERROR_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 411: "length_required",
               413: "too_large", 416: "range_not_satisfiable", 422: "checksum_mismatch", 500: "internal",
               503: "unavailable", 507: "insufficient_storage"}
SIG_RE = re.compile(r"^t=[0-9]+(,v1=[0-9a-f]{64})*$")


class ContractError(AssertionError):
    """An answer, event or delivery that proto/ does not allow."""


def _load():
    with open(JOB_SCHEMA_PATH) as f:
        job = json.load(f)
    with open(EVENTS_SCHEMA_PATH) as f:
        events = json.load(f)
    with open(OPENAPI_PATH) as f:
        openapi = yaml.safe_load(f)
    return job, events, openapi


class Contract:
    def __init__(self):
        self.job_schema, self.events_schema, self.openapi = _load()
        store = {JOB_URI: self.job_schema, OPENAPI_URI: self.openapi,
                 EVENTS_URI: self.events_schema}
        for doc in (self.job_schema, self.events_schema):   # and under their own $id
            if doc.get("$id"):
                store[doc["$id"]] = doc
        self.store = store
        self.resolver = RefResolver(OPENAPI_URI, self.openapi, store=store)
        self._validators = {}
        self.paths = []     # (regex, template, operations)
        for tmpl, ops in self.openapi["paths"].items():
            rx = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(tmpl)) + "$"
            self.paths.append((re.compile(rx), tmpl, ops))
        self.event_validator = Draft202012Validator(
            self.events_schema, resolver=RefResolver(EVENTS_URI, self.events_schema, store=store))
        self.spec_validator = Draft202012Validator(
            self.job_schema, resolver=RefResolver(JOB_URI, self.job_schema, store=store))

    # -- schemas -------------------------------------------------------------
    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            # the schema inside the openapi document (its paths and
            # components are no keywords): jsonschema's own resolver, which
            # unevaluatedProperties uses through an allOf, then finds
            # "#/components/..." in the root it validates from
            v = self._validators[key] = Draft202012Validator(dict(self.openapi, **schema),
                                                             resolver=self.resolver)
        return v

    def errors(self, schema, instance):
        errs = sorted(self.validator(schema).iter_errors(instance),
                      key=lambda e: [str(p) for p in e.absolute_path])
        return ["at %s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)",
                               e.message[:300]) for e in errs[:5]]

    def component(self, name):
        return {"$ref": "#/components/schemas/" + name}

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
            obj = self.resolver.resolve(obj["$ref"])[1]
        if isinstance(obj, dict) and "$ref" in obj:
            obj = dict(self.resolver.resolve(obj["$ref"])[1], **{k: v for k, v in obj.items()
                                                                 if k != "$ref"})
        return obj

    # -- coordinator answers -------------------------------------------------
    def operation(self, path):
        for rx, tmpl, ops in self.paths:
            if rx.match(path):
                return tmpl, ops
        return None, None

    def documented(self, responses, status):
        for key in (str(status), "%dXX" % (status // 100), "default"):
            if key in responses:
                return self.resolve(responses[key])
        return None

    def check_response(self, method, url, status, headers, raw):
        """Raise ContractError unless this answer of the coordinator is what
        proto/openapi.yaml documents for it."""
        u = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(u.path)
        m = method.lower()
        what = "%s %s -> %d" % (method, u.path + ("?" + u.query if u.query else ""), status)
        ctype = (headers.get("content-type") or "").lower()
        body, is_json = None, ctype.startswith("application/json")
        if is_json and m != "head":
            try:
                body = json.loads(raw)
            except ValueError:
                raise ContractError("%s: Content-Type is JSON but the body is not: %r" % (
                    what, raw[:200]))
        if status in (413, 501) and not is_json:
            return   # the HTTP layer's own answers (info.description, TooLarge)

        def expect_error(allowed):
            if status not in allowed:
                raise ContractError("%s: expected one of %s here" % (what, sorted(allowed)))
            check_error()

        def check_error():
            if status == 405 and not headers.get("allow"):
                raise ContractError("%s: a 405 names the methods the path serves in Allow" % what)
            if m == "head":
                return
            if not is_json:
                raise ContractError("%s: an error answer must be JSON (Error), got %r %r" % (
                    what, ctype, raw[:200]))
            errs = self.errors(self.component("Error"), body)
            if errs:
                raise ContractError("%s: not an Error: %s; body %r" % (what, "; ".join(errs),
                                                                       raw[:300]))
            code = body["error"]["code"]
            if ERROR_CODES.get(status) != code:
                raise ContractError("%s: status %d documents error code %r, got %r" % (
                    what, status, ERROR_CODES.get(status), code))

        if status == 400 and is_json and body and not (body.get("error") or {}).get("field") and \
                "URI" in (body.get("error") or {}).get("message", ""):
            return check_error()   # any path: a request URI that cannot be parsed
        if status == 403 and path.startswith("/v1/") and m not in ("get", "head"):
            return check_error()   # the view token on a change, before any route
        tmpl, ops = self.operation(path)
        if m == "head":
            m = "get"
        if tmpl is None:
            if path.startswith("/v1/"):
                return expect_error({400, 401, 404})
            # outside /v1: the dashboard and /files (GET/HEAD), else 404
            if m != "get":
                return expect_error({404})
            if status >= 400:
                return expect_error({400, 404, 416, 500})
            if path == "/dashboard.json" and status == 200 and method.upper() != "HEAD":
                return self.check_body(what, self.component("DashboardConfig"), body, is_json)
            return None
        if m not in ops:
            if path.startswith("/v1/"):
                return expect_error({400, 401, 405})
            return expect_error({405})
        op = ops[m]
        resp = self.documented(op.get("responses", {}), status)
        if resp is None:
            raise ContractError("%s: status %d is not documented for %s %s (documented: %s)" % (
                what, status, m.upper(), tmpl, ", ".join(sorted(op.get("responses", {})))))
        for name, h in (resp.get("headers") or {}).items():
            h = self.resolve(h)
            v = headers.get(name.lower())
            if v is None:
                if status in (201, 405) or h.get("required"):
                    raise ContractError("%s: documented header %s missing" % (what, name))
                continue
            errs = self.errors(h.get("schema", {}), v)
            if errs:
                raise ContractError("%s: header %s=%r: %s" % (what, name, v, "; ".join(errs)))
        content = resp.get("content") or {}
        if not content or method.upper() == "HEAD" or status == 304:
            return None
        if "application/json" in content:
            if status >= 400 and content["application/json"].get("schema") == \
                    self.component("Error"):
                return check_error()
            return self.check_body(what, content["application/json"].get("schema", {}), body,
                                   is_json)
        for mt in content:
            if ctype.startswith(mt):
                return None
        raise ContractError("%s: Content-Type %r, documented %s" % (what, ctype, sorted(content)))

    def check_body(self, what, schema, body, is_json):
        if not is_json:
            raise ContractError("%s: documented as JSON, got another Content-Type" % what)
        errs = self.errors(schema, body)
        if errs:
            raise ContractError("%s: %s; body %s" % (what, "; ".join(errs),
                                                     json.dumps(body)[:600]))

    # -- the worker's metrics port (metrics_listen) ---------------------------
    def check_worker_port(self, method, url, status, headers, raw):
        u = urllib.parse.urlsplit(url)
        what = "worker %s %s -> %d" % (method, u.path, status)
        ctype = (headers.get("content-type") or "").lower()
        if u.path == "/healthz" and method.upper() == "GET" and status in (200, 503):
            try:
                body = json.loads(raw)
            except ValueError:
                raise ContractError("%s: not JSON: %r" % (what, raw[:200]))
            return self.check_body(what, self.component("WorkerHealth"), body,
                                   ctype.startswith("application/json"))
        if u.path == "/metrics" and method.upper() in ("GET", "HEAD") and status == 200:
            if not ctype.startswith("text/plain"):
                raise ContractError("%s: Content-Type %r" % (what, ctype))
            return None
        if status not in (404, 405):
            raise ContractError("%s: the worker's port answers /metrics, /healthz, else 404/405"
                                % what)
        return None

    # -- events ----------------------------------------------------------------
    def check_event(self, ev, what="event"):
        errs = sorted(self.event_validator.iter_errors(ev),
                      key=lambda e: [str(p) for p in e.absolute_path])
        if errs:
            raise ContractError("%s does not match proto/events.schema.json: %s; event %s" % (
                what, "; ".join("at %s: %s" % ("/".join(str(p) for p in e.absolute_path) or
                                               "(top)", e.message[:300]) for e in errs[:5]),
                json.dumps(ev)[:600]))

    def check_webhook(self, entry):
        """One delivery the receiver recorded: body and headers (openapi
        webhooks.jobEvent, events.schema.json)."""
        ev, hd = entry.get("event"), entry.get("headers") or {}
        what = "webhook delivery #%s to %s" % (entry.get("n"), entry.get("path"))
        if not isinstance(ev, dict):
            raise ContractError("%s: the body is not a JSON object" % what)
        self.check_event(ev, what)
        want = {"Streamscale-Event-Id": ev["id"], "Streamscale-Event-Type": ev["type"]}
        for k, v in want.items():
            if hd.get(k) != v:
                raise ContractError("%s: header %s is %r, the body says %r" % (what, k, hd.get(k), v))
        sig = hd.get("Streamscale-Signature")
        if not sig or not SIG_RE.match(sig):
            raise ContractError("%s: Streamscale-Signature %r" % (what, sig))
        att = hd.get("Streamscale-Delivery-Attempt")
        if not att or not att.isdigit() or int(att) < 1:
            raise ContractError("%s: Streamscale-Delivery-Attempt %r" % (what, att))
        if not (hd.get("Content-Type") or "").startswith("application/json"):
            raise ContractError("%s: Content-Type %r" % (what, hd.get("Content-Type")))


_contract = None


def get():
    """The one Contract of this test process (proto/ read once)."""
    global _contract
    if _contract is None:
        _contract = Contract()
    return _contract
