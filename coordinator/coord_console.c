/* coord_console.c — what the operator console (web/) needs beyond the job
 * API (proto/openapi.yaml has the contract):
 *
 *   POST /v1/queue/retry         bulk retry of failed, dead or cancelled jobs
 *   POST /v1/queue/clear         bulk clear of jobs in one final state
 *   GET  /v1/queue/history       queue depth and throughput, one sample per
 *                                history_sample_seconds (default 60 s)
 *   POST /v1/workers/{id}/drain  the worker claims nothing more ({ss}:drain)
 *   POST /v1/workers/{id}/resume it claims again
 *
 * The history is this coordinator's own ring of HIST_N samples of the
 * stats script (depths, states, the {ss}:stats counters), taken on the
 * loop thread. It lives in memory, not in Redis: every coordinator reads
 * the same Redis counters, so any one of them shows the same curves for
 * the time it has been up, and nothing is written to Redis per sample.
 * A restarted coordinator starts a new history.
 *
 * Drain is a flag in Redis, not a message: {ss}:drain maps worker id ->
 * the ms it was asked. The claim scripts (claim_next in _lib.lua) refuse to
 * give that worker a job, so it finishes what it runs and then idles; it
 * survives the worker's restarts and the coordinator's, until resumed.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>

#include "coord.h"
#include "coord_http.h"
#include "events.h"
#include "log.h"
#include "rkeys.h"
#include "util.h"

#define HIST_N 240
#define BULK_DEFAULT 1000
#define BULK_MAX 10000
#define WORKER_ID_MAX 128

#define RK_DRAIN RK_PREFIX "drain"   /* HASH worker id -> ms drain was asked */

typedef struct hist_sample {
    long long ms;
    long long queued, running, retrying;
    long long enqueued, started, completed, failed, dead;   /* counters (cumulative) */
} hist_sample;

struct console {
    struct event *timer;
    hist_sample ring[HIST_N];
    int head, n;   /* next slot to write; samples held */
};

/* ---- the history ---------------------------------------------------------- */

static long long jnum(json_t *o, const char *a, const char *b)
{
    return (long long)json_integer_value(json_object_get(json_object_get(o, a), b));
}

static void sample(coord *c)
{
    ss_err err = { 0 };
    json_t *st;
    if (coord_queue_stats(c, &st, &err) != 0) {
        log_debug(NULL, "history: no sample: %s", err.msg);
        return;
    }
    hist_sample s = {
        .ms = ss_now_ms(),
        .queued = jnum(st, "states", "queued"),
        .running = jnum(st, "states", "running") + jnum(st, "states", "cancelling"),
        .retrying = jnum(st, "states", "retrying"),
        .enqueued = jnum(st, "counters", "enqueued"),
        .started = jnum(st, "counters", "started"),
        .completed = jnum(st, "counters", "completed"),
        .failed = jnum(st, "counters", "failed"),
        .dead = jnum(st, "counters", "dead"),
    };
    json_decref(st);
    struct console *k = c->console;
    k->ring[k->head] = s;
    k->head = (k->head + 1) % HIST_N;
    if (k->n < HIST_N)
        k->n++;
}

static void on_sample(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sample(arg);
}

int console_start(coord *c, ss_err *err)
{
    c->console = calloc(1, sizeof(*c->console));
    if (!c->console)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    c->console->timer = event_new(c->base, -1, EV_PERSIST, on_sample, c);
    struct timeval tv = { (time_t)c->conf.history_sample_seconds, 0 };
    if (!c->console->timer || event_add(c->console->timer, &tv) != 0)
        return ss_fail(err, SS_ENOMEM, "cannot start the history timer");
    event_active(c->console->timer, EV_TIMEOUT, 0);   /* the first sample at once */
    return 0;
}

void console_stop(coord *c)
{
    if (!c->console)
        return;
    if (c->console->timer)
        event_free(c->console->timer);
    free(c->console);
    c->console = NULL;
}

static long long delta(long long now, long long before)
{
    return now > before ? now - before : 0;   /* counters reset: no negative rates */
}

static void h_history(coord *c, struct evhttp_request *req)
{
    struct console *k = c->console;
    json_t *arr = json_array();
    const hist_sample *prev = NULL;
    for (int i = 0; i < k->n; i++) {
        const hist_sample *s = &k->ring[(k->head - k->n + i + HIST_N) % HIST_N];
        char ts[40];
        iso8601_ms(s->ms, ts, sizeof(ts));
        json_t *o = json_pack("{ss sI sI sI}", "at", ts, "queued", (json_int_t)s->queued,
                              "running", (json_int_t)s->running, "retrying",
                              (json_int_t)s->retrying);
        /* what happened since the previous sample (0 for the first) */
        json_object_set_new(o, "enqueued", json_integer(prev ? delta(s->enqueued, prev->enqueued) : 0));
        json_object_set_new(o, "started", json_integer(prev ? delta(s->started, prev->started) : 0));
        json_object_set_new(o, "completed",
                            json_integer(prev ? delta(s->completed, prev->completed) : 0));
        json_object_set_new(o, "failed", json_integer(prev ? delta(s->failed, prev->failed) : 0));
        json_object_set_new(o, "dead", json_integer(prev ? delta(s->dead, prev->dead) : 0));
        json_array_append_new(arr, o);
        prev = s;
    }
    http_reply_json(req, 200, json_pack("{sI sI ss so}", "interval_seconds",
                                        (json_int_t)c->conf.history_sample_seconds, "capacity",
                                        (json_int_t)HIST_N, "coordinator", c->id, "samples", arr));
}

/* ---- bulk retry / clear ------------------------------------------------------ */

static int final_for(const char *action, const char *state)
{
    if (!state)
        return 0;
    if (!strcmp(action, "retry"))
        return !strcmp(state, "failed") || !strcmp(state, "dead") || !strcmp(state, "cancelled");
    return rk_state_final(state);
}

static void h_bulk(coord *c, struct evhttp_request *req, const char *action)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    json_error_t jerr;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    const char *states = !strcmp(action, "retry") ? "failed, dead or cancelled"
                                                  : "completed, failed, cancelled or dead";
    char msg[160];
    if (!json_is_object(o)) {
        json_decref(o);
        http_reply_error(req, 400, "invalid_request",
                         "the body must be a JSON object like {\"state\":\"failed\"}", "(body)");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "state") && strcmp(k, "limit")) {
            snprintf(msg, sizeof(msg), "unknown field '%.40s' (known: state, limit)", k);
            json_decref(o);
            http_reply_error(req, 400, "invalid_request", msg, "(body)");
            return;
        }
    }
    const char *state = json_string_value(json_object_get(o, "state"));
    if (!final_for(action, state)) {
        snprintf(msg, sizeof(msg), "state must be %s", states);
        json_decref(o);
        http_reply_error(req, 400, "invalid_request", msg, "state");
        return;
    }
    json_t *lj = json_object_get(o, "limit");
    long long limit = BULK_DEFAULT;
    if (lj) {
        limit = json_is_integer(lj) ? (long long)json_integer_value(lj) : -1;
        if (limit < 1 || limit > BULK_MAX) {
            snprintf(msg, sizeof(msg), "limit must be an integer between 1 and %d", BULK_MAX);
            json_decref(o);
            http_reply_error(req, 400, "invalid_request", msg, "limit");
            return;
        }
    }
    char key[128], lim[24], st[16];
    ss_strlcpy(st, state, sizeof(st));
    json_decref(o);
    RK_KEY(key, RK_STATE_FMT, st);
    snprintf(lim, sizeof(lim), "%lld", limit);
    const char *keys[] = { key };
    const char *args[] = { action, st, lim };
    ss_err err = { 0 };
    redisReply *rep = rconn_script(&c->redis, &err, "bulk", 1, keys, 3, args);
    if (!rep) {
        http_reply_store_err(req, &err);
        return;
    }
    long long done = 0, left = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        done = rep->element[0]->integer;
        left = rep->element[1]->integer;
    }
    freeReplyObject(rep);
    log_info(NULL, "bulk %s of %s jobs through the API: %lld done, %lld left", action, st, done, left);
    http_reply_json(req, 200, json_pack("{ss ss sI sI}", "action", action, "state", st, "done",
                                        (json_int_t)done, "remaining", (json_int_t)left));
}

/* ---- worker drain / resume ------------------------------------------------------ */

static int worker_id_ok(const char *id, size_t n)
{
    if (n == 0 || n > WORKER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= ' ' || id[i] == 0x7f || id[i] == '/')
            return 0;
    return 1;
}

int console_mark_drained(coord *c, json_t *workers, ss_err *err)
{
    redisReply *rep = rconn_cmdf(&c->redis, err, "HGETALL %s", RK_DRAIN);
    if (!rep)
        return -1;
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w) {
        const char *id = json_string_value(json_object_get(w, "id"));
        long long at = 0;
        for (size_t k = 0; id && rep->type == REDIS_REPLY_ARRAY && k + 1 < rep->elements; k += 2)
            if (!strcmp(rep->element[k]->str, id))
                at = atoll(rep->element[k + 1]->str);
        json_object_set_new(w, "drain_requested", json_boolean(at > 0));
        char ts[40];
        if (at > 0)
            iso8601_ms(at, ts, sizeof(ts));
        json_object_set_new(w, "drain_requested_at", at > 0 ? json_string(ts) : json_null());
    }
    freeReplyObject(rep);
    return 0;
}

static void h_drain(coord *c, struct evhttp_request *req, const char *id, int drain)
{
    ss_err err = { 0 };
    char key[256];
    RK_KEY(key, RK_WORKER_FMT, id);
    redisReply *rep = rconn_cmdf(&c->redis, &err, "GET %s", key);
    if (!rep) {
        http_reply_store_err(req, &err);
        return;
    }
    int known = rep->type == REDIS_REPLY_STRING;
    freeReplyObject(rep);
    if (drain && !known) {
        http_reply_error(req, 404, "not_found",
                         "no such worker (not registered, or its registration expired)", NULL);
        return;
    }
    long long now = ss_now_ms();
    if (drain) {
        rep = rconn_cmdf(&c->redis, &err, "HSET %s %s %lld", RK_DRAIN, id, now);
        if (rep) {
            /* not idle any more: notify_work must not pick it for new work */
            freeReplyObject(rep);
            rep = rconn_cmdf(&c->redis, &err, "ZREM %s %s", RK_PREFIX "idle", id);
        }
    } else
        rep = rconn_cmdf(&c->redis, &err, "HDEL %s %s", RK_DRAIN, id);
    if (rep && !drain) {
        /* an idle worker waits for a notification before it claims again */
        freeReplyObject(rep);
        rep = rconn_cmdf(&c->redis, &err, "PUBLISH %s resume", RK_NOTIFY);
    }
    if (!rep) {
        http_reply_store_err(req, &err);
        return;
    }
    freeReplyObject(rep);
    log_info(NULL, "worker %s: %s through the API", id, drain ? "drain requested" : "resumed");
    char ts[40];
    iso8601_ms(now, ts, sizeof(ts));
    http_reply_json(req, 200, json_pack("{ss sb so sb}", "id", id, "drain_requested", drain,
                                        "drain_requested_at",
                                        drain ? json_string(ts) : json_null(), "registered", known));
}

/* ---- routing ---------------------------------------------------------------- */

int console_route(coord *c, struct evhttp_request *req, enum evhttp_cmd_type m, const char *p,
                  struct evkeyvalq *q)
{
    (void)q;
    if (!strcmp(p, "queue/history")) {
        if (m == EVHTTP_REQ_GET)
            h_history(c, req);
        else
            http_reply_not_allowed(req, "GET");
        return 1;
    }
    if (!strcmp(p, "queue/retry") || !strcmp(p, "queue/clear")) {
        if (m == EVHTTP_REQ_POST)
            h_bulk(c, req, p + 6);
        else
            http_reply_not_allowed(req, "POST");
        return 1;
    }
    if (!ss_str_has_prefix(p, "workers/"))
        return 0;
    const char *id = p + 8, *slash = strrchr(id, '/');
    if (!slash || (strcmp(slash, "/drain") && strcmp(slash, "/resume")))
        return 0;
    char wid[WORKER_ID_MAX + 1];
    size_t n = (size_t)(slash - id);
    if (!worker_id_ok(id, n)) {
        http_reply_error(req, 404, "not_found", "no such worker", NULL);
        return 1;
    }
    memcpy(wid, id, n);
    wid[n] = '\0';
    if (m == EVHTTP_REQ_POST)
        h_drain(c, req, wid, !strcmp(slash, "/drain"));
    else
        http_reply_not_allowed(req, "POST");
    return 1;
}
