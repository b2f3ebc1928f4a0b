/* coord_api.c — the HTTP API (proto/openapi.yaml is the contract).
 *
 * One libevent evhttp server. Every /v1 route needs the Bearer token;
 * /healthz, /metrics and the dashboard do not. Every error is JSON:
 * {"error":{"code":"...","message":"...","field":"..."}} with the right
 * status. Redis calls are blocking but short (rconn.h); when Redis is
 * unreachable the API answers 503 instead of hanging.
 */
#include <ctype.h>
#include <errno.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "coord.h"
#include "coord_gate.h"
#include "coord_http.h"
#include "coord_metrics.h"
#include "events.h"
#include "jobspec.h"
#include "log.h"
#include "netguard.h"
#include "rkeys.h"
#include "util.h"

/* ---- replies ---------------------------------------------------------- */

void http_reply_json(struct evhttp_request *req, int status, json_t *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    if (s) {
        evbuffer_add(b, s, strlen(s));
        evbuffer_add(b, "\n", 1);
    }
    free(s);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
    json_decref(body);
}

/* A JSON string of s. jansson refuses text that is not UTF-8, and a message
 * or field path cut to fit its buffer can end in half a character (a long
 * non-ASCII key in a spec): such bytes become U+FFFD, so that an error
 * reply never loses its body. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *buf = malloc(strlen(s) * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    while (*s) {
        size_t k = ss_utf8_len(s);
        if (k) {
            memcpy(buf + o, s, k);
            o += k;
            s += k;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            s++;
        }
    }
    buf[o] = '\0';
    j = json_string(buf);
    free(buf);
    return j;
}

void http_reply_error(struct evhttp_request *req, int status, const char *code,
                      const char *message, const char *field)
{
    json_t *e = json_pack("{ss so}", "code", code, "message", json_text(message));
    if (field && *field)
        json_object_set_new(e, "field", json_text(field));
    if (status == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"streamscale\"");
    http_reply_json(req, status, json_pack("{so}", "error", e));
}

static void reply_redis_down(struct evhttp_request *req, const ss_err *err)
{
    log_warn(NULL, "request failed: %s", err->msg);
    http_reply_error(req, 503, "unavailable", "the job store (Redis) is unavailable; retry later", NULL);
}

/* Map a store error to a reply. */
void http_reply_store_err(struct evhttp_request *req, const ss_err *err)
{
    switch (err->code) {
    case SS_ENOTFOUND:
        http_reply_error(req, 404, "not_found", err->msg, NULL);
        break;
    case SS_EREDIS:
        reply_redis_down(req, err);
        break;
    default:
        log_error(NULL, "internal error: %s", err->msg);
        http_reply_error(req, 500, "internal", "internal error", NULL);
    }
}

/* ---- request helpers --------------------------------------------------- */

/* Query parameter as a bounded integer; def when absent; -1 + reply when bad. */
static int query_int(struct evhttp_request *req, struct evkeyvalq *q, const char *name,
                     long long def, long long lo, long long hi, long long *out)
{
    const char *v = evhttp_find_header(q, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        char msg[160];
        snprintf(msg, sizeof(msg), "query parameter '%s' must be an integer between %lld and %lld",
                 name, lo, hi);
        http_reply_error(req, 400, "invalid_request", msg, name);
        return -1;
    }
    *out = x;
    return 0;
}

/* ---- handlers ------------------------------------------------------------ */

#define LIST_QUERY_MAX 200

static void h_healthz(coord *c, struct evhttp_request *req)
{
    ss_err err = { 0 };
    int64_t t0 = ss_mono_ms();
    redisReply *rep = rconn_cmdf(&c->redis, &err, "PING");
    if (!rep) {
        /* unauthenticated: the detail (host, port, error) goes to the log */
        log_warn(NULL, "healthz: %s", err.msg);
        http_reply_json(req, 503, json_pack("{ss ss ss}", "status", "unavailable", "redis", "down",
                                            "error", "the job store (Redis) is unreachable"));
        return;
    }
    freeReplyObject(rep);
    http_reply_json(req, 200, json_pack("{ss ss sI ss ss}", "status", "ok", "redis", "ok",
                                        "redis_ms", (json_int_t)(ss_mono_ms() - t0), "version",
                                        SS_VERSION, "coordinator", c->id));
}

static void h_submit(coord *c, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char field[128];
    ss_err err = { 0 };
    if (len > JOBSPEC_MAX_BODY) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body is larger than %d bytes", JOBSPEC_MAX_BODY);
        http_reply_error(req, 413, "too_large", msg, "(body)");
        return;
    }
    /* The body is parsed as JSON whatever the Content-Type says: `curl -d`
     * sends form-urlencoded by default, and refusing that helps nobody. */
    const char *body = (const char *)evbuffer_pullup(in, -1);
    json_t *spec = jobspec_parse(body ? body : "", len, field, sizeof(field), &err);
    if (!spec) {
        http_reply_error(req, err.code == SS_ELIMIT ? 413 : 400, "invalid_request", err.msg, field);
        return;
    }
    /* The stored spec is the canonical spec the id is hashed from. Its
     * defaults are fixed (jobspec.c), so coordinators with different
     * settings agree on ids; the server-wide max_attempts applies when the
     * spec has none, as the job's max_attempts field, not in the spec. */
    char id[JOBSPEC_ID_LEN + 1];
    jobspec_id(spec, id);
    char *spec_s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    const char *hook = json_string_value(json_object_get(json_object_get(spec, "webhook"), "url"));
    if (hook) {
        /* a literal address the delivery guard will always refuse (link-
         * local, unspecified, multicast, and loopback/private unless
         * allow_private_networks) would be retried for a day: say so now.
         * Host names are still judged on their address at each delivery. */
        netguard g = { .allow_private = c->conf.allow_private_networks, .allow_http = 1 };
        ss_err gerr = { 0 };
        if (netguard_check_url(hook, &g, &gerr) != 0) {
            free(spec_s);
            json_decref(spec);
            http_reply_error(req, 400, "invalid_request", gerr.msg, "webhook.url");
            return;
        }
    }
    if (!hook && c->conf.webhook_url && *c->conf.webhook_url)
        hook = c->conf.webhook_url;
    json_t *ma = json_object_get(spec, "max_attempts");
    char maxatt[16];
    snprintf(maxatt, sizeof(maxatt), "%lld",
             ma ? (long long)json_integer_value(ma) : c->conf.max_attempts);
    /* the event goes to every webhook and event reader: the source as it
     * may be shown (the job record keeps the real URL for the worker) */
    char *shown = jobspec_redacted_url(json_string_value(json_object_get(spec, "source")));
    json_t *ev = json_pack("{ssss}", "priority", jobspec_priority_name(jobspec_priority_of(spec)),
                           "source", shown ? shown : "");
    free(shown);
    char *ev_s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    char key[128];
    RK_KEY(key, RK_JOB_FMT, id);
    const char *keys[] = { key };
    const char *args[] = { id, spec_s, jobspec_priority_name(jobspec_priority_of(spec)), maxatt,
                           hook ? hook : "", ev_s };
    redisReply *rep = rconn_script(&c->redis, &err, "enqueue", 1, keys, 6, args);
    free(spec_s);
    free(ev_s);
    json_decref(spec);
    if (!rep) {
        http_reply_store_err(req, &err);
        return;
    }
    int created = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                  rep->element[0]->integer == 1;
    json_t *fields = json_object();
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        redisReply *f = rep->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            json_object_set_new(fields, f->element[i]->str, json_string(f->element[i + 1]->str));
    }
    freeReplyObject(rep);
    /* Acknowledged writes: a 201 must survive a failover, so the job has
     * to be on a replica before we say so. A resubmit is idempotent. */
    if (rconn_wait(&c->redis, (int)c->conf.redis_wait_replicas, (int)c->conf.redis_wait_ms,
                   &err) != 0) {
        json_decref(fields);
        log_warn(id, "submit not acknowledged: %s", err.msg);
        http_reply_error(req, 503, "unavailable",
                         "the job was not confirmed on a Redis replica in time; resubmit the same "
                         "spec (it is idempotent) to get its status", NULL);
        return;
    }
    json_t *job = store_job_from_fields(id, fields, 1);
    json_decref(fields);
    char loc[160];
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", loc);
    if (created)
        log_info(id, "job queued");
    http_reply_json(req, created ? 201 : 200, job);
}

static void h_get(coord *c, struct evhttp_request *req, const char *id)
{
    ss_err err = { 0 };
    json_t *job = store_job_json(&c->redis, id, 1, &err);
    if (!job) {
        http_reply_store_err(req, &err);
        return;
    }
    http_reply_json(req, 200, job);
}

static void h_list(coord *c, struct evhttp_request *req, struct evkeyvalq *q)
{
    long long limit, offset;
    if (query_int(req, q, "limit", 50, 1, 500, &limit) ||
        query_int(req, q, "offset", 0, 0, 100000000, &offset))
        return;
    const char *state = evhttp_find_header(q, "state");
    char key[128];
    if (state) {
        if (!rk_state_valid(state)) {
            http_reply_error(req, 400, "invalid_request",
                             "state must be one of queued, running, cancelling, retrying, "
                             "completed, failed, cancelled, dead", "state");
            return;
        }
        RK_KEY(key, RK_STATE_FMT, state);
    } else {
        ss_strlcpy(key, RK_JOBS, sizeof(key));
    }
    /* search (the console's box): an id prefix, or text in the source or
     * the metadata, compared in lower case (list.lua) */
    const char *qs = evhttp_find_header(q, "q");
    char needle[LIST_QUERY_MAX + 1] = "";
    if (qs) {
        size_t ql = strlen(qs);
        if (ql < 1 || ql > LIST_QUERY_MAX) {
            http_reply_error(req, 400, "invalid_request",
                             "query parameter 'q' must be 1 to 200 characters", "q");
            return;
        }
        for (size_t i = 0; i <= ql; i++)
            needle[i] = (char)tolower((unsigned char)qs[i]);
    }
    char off_s[24], lim_s[24];
    snprintf(off_s, sizeof(off_s), "%lld", offset);
    snprintf(lim_s, sizeof(lim_s), "%lld", limit);
    const char *keys[] = { key };
    const char *args[] = { off_s, lim_s, needle };
    ss_err err = { 0 };
    redisReply *rep = rconn_script(&c->redis, &err, "list", 1, keys, 3, args);
    if (!rep) {
        http_reply_store_err(req, &err);
        return;
    }
    json_t *jobs = json_array();
    long long total = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1) {
        total = rep->element[0]->integer;
        for (size_t i = 1; i < rep->elements; i++) {
            redisReply *f = rep->element[i];
            json_t *fields = json_object();
            for (size_t k = 0; k + 1 < f->elements; k += 2)
                json_object_set_new(fields, f->element[k]->str, json_string(f->element[k + 1]->str));
            const char *jid = json_string_value(json_object_get(fields, "id"));
            if (jid)
                json_array_append_new(jobs, store_job_from_fields(jid, fields, 0));
            json_decref(fields);
        }
    }
    freeReplyObject(rep);
    json_t *out = json_pack("{so sI sI sI}", "jobs", jobs, "total", (json_int_t)total, "offset",
                            (json_int_t)offset, "limit", (json_int_t)limit);
    if (offset + limit < total)
        json_object_set_new(out, "next_offset", json_integer(offset + limit));
    else
        json_object_set_new(out, "next_offset", json_null());
    http_reply_json(req, 200, out);
}

/* cancel and retry share the shape: a script that answers {1|0, state}. */
static void h_transition(coord *c, struct evhttp_request *req, const char *id, const char *script)
{
    char key[128];
    RK_KEY(key, RK_JOB_FMT, id);
    const char *keys[] = { key };
    const char *args[] = { id, "cancelled through the API" };
    ss_err err = { 0 };
    redisReply *rep = rconn_script(&c->redis, &err, script, 1, keys, 2, args);
    if (!rep) {
        http_reply_store_err(req, &err);
        return;
    }
    int ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->integer == 1;
    char state[32] = "";
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->str)
        ss_strlcpy(state, rep->element[1]->str, sizeof(state));
    freeReplyObject(rep);
    if (!ok && !strcmp(state, "missing")) {
        http_reply_error(req, 404, "not_found", "no such job", NULL);
        return;
    }
    if (!ok) {
        char msg[160];
        snprintf(msg, sizeof(msg), "job is %s: cannot %s it", state,
                 !strcmp(script, "cancel") ? "cancel" : "retry");
        http_reply_error(req, 409, "conflict", msg, NULL);
        return;
    }
    log_info(id, "%s requested through the API: now %s", script, state);
    json_t *job = store_job_json(&c->redis, id, 1, &err);
    if (!job) {
        http_reply_store_err(req, &err);
        return;
    }
    /* the status follows the job as read back, not the script's answer: a
     * worker may confirm the cancel between the two calls, and a 202 with a
     * body that already says 'cancelled' would contradict itself */
    const char *now = json_string_value(json_object_get(job, "state"));
    http_reply_json(req, now && !strcmp(now, "cancelling") ? 202 : 200, job);
}

static void h_events(coord *c, struct evhttp_request *req, const char *id, struct evkeyvalq *q)
{
    long long after, limit;
    if (query_int(req, q, "after", 0, 0, 1LL << 50, &after) ||
        query_int(req, q, "limit", 100, 1, 1000, &limit))
        return;
    char jkey[128], ekey[128], start[40], lim[24];
    RK_KEY(jkey, RK_JOB_FMT, id);
    RK_KEY(ekey, RK_EVENTS_FMT, id);
    ss_err err = { 0 };
    redisReply *h = rconn_cmdf(&c->redis, &err, "HMGET %s state spec seq", jkey);
    if (!h) {
        http_reply_store_err(req, &err);
        return;
    }
    if (h->type != REDIS_REPLY_ARRAY || h->elements != 3 || h->element[0]->type == REDIS_REPLY_NIL) {
        freeReplyObject(h);
        http_reply_error(req, 404, "not_found", "no such job", NULL);
        return;
    }
    char state[32];
    ss_strlcpy(state, h->element[0]->str, sizeof(state));
    json_t *spec = h->element[1]->str ? json_loads(h->element[1]->str, 0, NULL) : NULL;
    long long last = h->element[2]->str ? atoll(h->element[2]->str) : 0;
    freeReplyObject(h);
    json_t *meta = json_object_get(spec, "metadata");
    snprintf(start, sizeof(start), "(0-%lld", after);
    snprintf(lim, sizeof(lim), "%lld", limit);
    redisReply *rep = rconn_cmdf(&c->redis, &err, "XRANGE %s %s + COUNT %s", ekey, start, lim);
    if (!rep) {
        json_decref(spec);
        http_reply_store_err(req, &err);
        return;
    }
    json_t *arr = json_array();
    long long next = after;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->elements != 2)
            continue;
        const char *sid = e->element[0]->str;
        const char *dash = strchr(sid, '-');
        long long seq = dash ? atoll(dash + 1) : 0;
        const char *type = NULL, *data = NULL;
        long long ts = 0;
        redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            const char *n = f->element[k]->str, *v = f->element[k + 1]->str;
            if (!strcmp(n, "type"))
                type = v;
            else if (!strcmp(n, "data"))
                data = v;
            else if (!strcmp(n, "ts"))
                ts = atoll(v);
        }
        if (!type)
            continue;
        json_array_append_new(arr, event_envelope(id, seq, type, ts, data, meta));
        next = seq;
    }
    freeReplyObject(rep);
    json_decref(spec);
    http_reply_json(req, 200, json_pack("{so sI ss sI}", "events", arr, "next_after", (json_int_t)next,
                                        "state", state, "last_seq", (json_int_t)last));
}

static void h_workers(coord *c, struct evhttp_request *req)
{
    ss_err err = { 0 };
    redisReply *ids = rconn_cmdf(&c->redis, &err, "ZRANGE %s 0 -1 WITHSCORES", RK_WORKERS);
    if (!ids) {
        http_reply_store_err(req, &err);
        return;
    }
    json_t *arr = json_array();
    long long now = ss_now_ms();
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i + 1 < ids->elements; i += 2) {
        char key[256];
        RK_KEY(key, RK_WORKER_FMT, ids->element[i]->str);
        redisReply *info = rconn_cmdf(&c->redis, &err, "GET %s", key);
        if (!info)
            break;
        if (info->type == REDIS_REPLY_STRING) {
            json_t *w = json_loads(info->str, 0, NULL);
            if (json_is_object(w)) {
                long long beat = atoll(ids->element[i + 1]->str);
                char ts[40];
                iso8601_ms(beat, ts, sizeof(ts));
                json_object_set_new(w, "last_heartbeat", json_string(ts));
                json_object_set_new(w, "heartbeat_age_seconds", json_real((double)(now - beat) / 1000));
                json_array_append_new(arr, w);
            } else {
                json_decref(w);
            }
        }
        freeReplyObject(info);
    }
    freeReplyObject(ids);
    if (!err.code)
        console_mark_drained(c, arr, &err);
    if (err.code) {
        json_decref(arr);
        http_reply_store_err(req, &err);
        return;
    }
    http_reply_json(req, 200, json_pack("{so}", "workers", arr));
}

int coord_queue_stats(coord *c, json_t **out, ss_err *err)
{
    const char *keys[] = { RK_STATS };
    redisReply *rep = rconn_script(&c->redis, err, "stats", 1, keys, 0, NULL);
    if (!rep)
        return -1;
    json_t *depth = json_object(), *states = json_object(), *counters = json_object();
    json_t *o = json_pack("{so so so}", "depth", depth, "states", states, "counters", counters);
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
        const char *n = rep->element[i]->str;
        long long v = rep->element[i + 1]->integer;
        if (ss_str_has_prefix(n, "depth:"))
            json_object_set_new(depth, n + 6, json_integer(v));
        else if (ss_str_has_prefix(n, "state:"))
            json_object_set_new(states, n + 6, json_integer(v));
        else if (ss_str_has_prefix(n, "counter:"))
            json_object_set_new(counters, n + 8, json_integer(v));
        else
            json_object_set_new(o, n, json_integer(v));
    }
    freeReplyObject(rep);
    *out = o;
    return 0;
}

static void h_queue(coord *c, struct evhttp_request *req)
{
    ss_err err = { 0 };
    json_t *o;
    if (coord_queue_stats(c, &o, &err) != 0) {
        http_reply_store_err(req, &err);
        return;
    }
    /* the histogram buckets behind /metrics are not counters a client reads */
    json_t *cnt = json_object_get(o, "counters"), *v;
    const char *k;
    void *tmp;
    json_object_foreach_safe(cnt, tmp, k, v) {
        if (ss_str_has_prefix(k, "hist:"))
            json_object_del(cnt, k);
    }
    http_reply_json(req, 200, o);
}

/* ---- routing -------------------------------------------------------------- */

void http_reply_not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    http_reply_error(req, 405, "method_not_allowed", "method not allowed on this path", NULL);
}

static void route(struct evhttp_request *req, void *arg)
{
    coord *c = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m == EVHTTP_REQ_HEAD)
        m = EVHTTP_REQ_GET;   /* evhttp sends no body for HEAD */
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(uri, 0);
    char *path = NULL;
    size_t path_len = 0;
    const char *raw = u ? evhttp_uri_get_path(u) : NULL;
    if (raw)
        path = evhttp_uridecode(raw, 0, &path_len);
    struct evkeyvalq q = { 0 };
    TAILQ_INIT(&q);
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    if (path && gate_route(req, path))
        goto out;
    metrics_request_begin(c, req, path);
    /* an encoded NUL ("/v1/jobs/<id>%00x") would cut the C string short and
     * route the request to another resource than the one named */
    if (!u || !path || strlen(path) != path_len ||
        (query && evhttp_parse_query_str(query, &q) != 0)) {
        http_reply_error(req, 400, "invalid_request", "malformed request URI", NULL);
        goto out;
    }

    if (!strcmp(path, "/healthz")) {
        if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
            h_healthz(c, req);
        else
            http_reply_not_allowed(req, "GET");
        goto out;
    }
    if (!strcmp(path, "/metrics")) {
        if (m == EVHTTP_REQ_GET)
            metrics_handle(c, req);
        else
            http_reply_not_allowed(req, "GET");
        goto out;
    }
    if (!ss_str_has_prefix(path, "/v1/")) {
        if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
            web_handle(c, req, path);
        else
            http_reply_error(req, 404, "not_found", "no such resource", NULL);
        goto out;
    }
    int kind = gate_token_kind(c, evhttp_find_header(evhttp_request_get_input_headers(req),
                                                     "Authorization"));
    if (kind == GATE_TOKEN_NONE) {
        http_reply_error(req, 401, "unauthorized",
                         "missing or wrong bearer token (Authorization: Bearer <api_token>)", NULL);
        goto out;
    }
    if (kind == GATE_TOKEN_VIEW)   /* the dashboard hides what it could not do */
        evhttp_add_header(evhttp_request_get_output_headers(req), "X-Streamscale-Access",
                          "read-only");
    if (kind == GATE_TOKEN_VIEW && m != EVHTTP_REQ_GET) {
        http_reply_error(req, 403, "forbidden",
                         "this is the read-only view token: it can only read (GET); "
                         "changes need the api_token", NULL);
        goto out;
    }
    const char *p = path + 4;
    if (console_route(c, req, m, p, &q))
        goto out;
    if (!strcmp(p, "jobs")) {
        if (m == EVHTTP_REQ_POST)
            h_submit(c, req);
        else if (m == EVHTTP_REQ_GET)
            h_list(c, req, &q);
        else
            http_reply_not_allowed(req, "GET, POST");
        goto out;
    }
    if (!strcmp(p, "uploads") || ss_str_has_prefix(p, "uploads/")) {
        uploads_handle(c, req, p + 7, &q);
        goto out;
    }
    if (!strcmp(p, "workers")) {
        if (m == EVHTTP_REQ_GET)
            h_workers(c, req);
        else
            http_reply_not_allowed(req, "GET");
        goto out;
    }
    if (!strcmp(p, "queue")) {
        if (m == EVHTTP_REQ_GET)
            h_queue(c, req);
        else
            http_reply_not_allowed(req, "GET");
        goto out;
    }
    if (ss_str_has_prefix(p, "jobs/")) {
        char id[64];
        const char *rest = p + 5;
        size_t idl = strcspn(rest, "/");
        if (idl >= sizeof(id)) {
            http_reply_error(req, 404, "not_found", "no such job", NULL);
            goto out;
        }
        memcpy(id, rest, idl);
        id[idl] = '\0';
        rest += idl;
        if (!jobspec_id_valid(id)) {
            http_reply_error(req, 404, "not_found", "no such job (ids are 20 hex characters)", NULL);
            goto out;
        }
        if (!*rest) {
            if (m == EVHTTP_REQ_GET)
                h_get(c, req, id);
            else if (m == EVHTTP_REQ_DELETE)
                h_transition(c, req, id, "cancel");
            else
                http_reply_not_allowed(req, "GET, DELETE");
        } else if (!strcmp(rest, "/retry")) {
            if (m == EVHTTP_REQ_POST)
                h_transition(c, req, id, "retry");
            else
                http_reply_not_allowed(req, "POST");
        } else if (!strcmp(rest, "/cancel")) {
            if (m == EVHTTP_REQ_POST)
                h_transition(c, req, id, "cancel");
            else
                http_reply_not_allowed(req, "POST");
        } else if (!strcmp(rest, "/events")) {
            if (m == EVHTTP_REQ_GET)
                h_events(c, req, id, &q);
            else
                http_reply_not_allowed(req, "GET");
        } else {
            http_reply_error(req, 404, "not_found", "no such resource", NULL);
        }
        goto out;
    }
    http_reply_error(req, 404, "not_found", "no such resource", NULL);
out:
    evhttp_clear_headers(&q);
    free(path);
    if (u)
        evhttp_uri_free(u);
}

/* accept() failing for want of file descriptors (EMFILE, ENFILE) or memory
 * leaves the listening socket readable, and a listener without an error
 * callback tries again at once, forever: one core spinning and a line on
 * stderr per try for as long as some client holds its connections open.
 * Stop accepting for a moment instead (the kernel keeps new connections in
 * the backlog meanwhile) and say so at most every 10 s. */
#define ACCEPT_PAUSE_MS 200

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    static long long warned_ms;
    int e = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
    evconnlistener_disable(l);
    if (event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, on_accept_resume, l, &tv) != 0)
        evconnlistener_enable(l);   /* cannot pause: keep accepting as before */
    long long now = ss_mono_ms();
    if (!warned_ms || now - warned_ms >= 10000) {
        warned_ms = now;
        log_warn(NULL, "cannot accept connections: %s; pausing %d ms", strerror(e), ACCEPT_PAUSE_MS);
    }
}

int api_start(coord *c, ss_err *err)
{
    char host[256];
    int port;
    if (cfg_split_hostport(c->conf.listen, host, sizeof(host), &port, 8080) != 0)
        return ss_fail(err, SS_EINVAL, "config: key 'listen': '%s' is not host:port", c->conf.listen);
    c->http = evhttp_new(c->base);
    if (!c->http)
        return ss_fail(err, SS_ENOMEM, "evhttp_new failed");
    /* Every method reaches the router, so an unsupported one gets a JSON 405
     * rather than libevent's HTML 501. */
    evhttp_set_allowed_methods(c->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT);
    /* evhttp itself refuses bodies over 1 MiB; h_submit answers JSON 413
     * above the spec's own 64 KiB cap. */
    evhttp_set_max_body_size(c->http, API_MAX_BODY);
    evhttp_set_max_headers_size(c->http, 32 * 1024);
    evhttp_set_timeout(c->http, 30);
    evhttp_set_gencb(c->http, route, c);
    if (gate_start(c, err) != 0)
        return -1;
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(c->http, host, (ev_uint16_t)port);
    if (!bound)
        return ss_fail(err, SS_EIO, "cannot listen on %s:%d (in use, or not a local address)", host, port);
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), on_accept_error);
    return 0;
}
