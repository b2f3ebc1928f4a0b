/* coord_metrics.c — GET /metrics in the Prometheus text format (0.0.4),
 * and the coordinator's own HTTP counters.
 *
 * Where each number comes from (docs/OPERATIONS.md has the full table):
 * - Redis, read on every scrape (one `stats` script call, the worker
 *   registry, the head of each priority list): queue depth per priority,
 *   jobs per state, delayed/processing/dead-letter/webhook backlog sizes,
 *   the {ss}:stats counters the Lua scripts keep (enqueued, started,
 *   completed, failed, retried, cancelled, dead, released, redriven, cleared,
 *   reaped, the webhook counters, and upload bytes/objects/retries that
 *   finish.lua takes from each completed job's result), and the fleet-wide
 *   histograms (job duration, queue wait, encode speed, encode fps) that
 *   the scripts keep as hist:<name>:<le> fields. These are fleet totals:
 *   every coordinator reports the same values, so aggregate them with
 *   max() (or scrape one coordinator), never sum().
 * - The worker registry ({ss}:worker:<id>): live workers, per-worker CPU
 *   load, slots, busy slots, draining, heartbeat age (label worker = the
 *   worker id, bounded by the fleet size; never a job id).
 * - This process: start time, HTTP requests by route class and status
 *   code with a latency histogram, process_* (CPU, memory, fds).
 * When Redis is unreachable the scrape still answers 200 with
 * streamscale_redis_up 0 and the process metrics, so an alert can fire.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "coord_http.h"
#include "coord_metrics.h"
#include "jobspec.h"
#include "log.h"
#include "promtext.h"
#include "rkeys.h"
#include "util.h"

/* ---- the fleet-wide histograms (bounds = common/lua/_lib.lua) ------------ */

const metrics_hist_def metrics_hists[] = {
    { "job_duration_seconds",
      "Run time of completed jobs, from the claim of the successful attempt to completion.",
      14, { 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200 } },
    { "job_queue_wait_seconds",
      "Time jobs waited in a queue before a worker claimed them (every claim).",
      12, { 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14400 } },
    { "job_encode_speed_ratio",
      "Encode speed of completed jobs as a multiple of real time (source seconds per encode second).",
      10, { 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64 } },
    { "job_encode_frames_per_second",
      "Encode speed of completed jobs in source frames per second (all renditions at once).",
      10, { 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200 } },
    { NULL, NULL, 0, { 0 } }
};

/* ---- HTTP requests ----------------------------------------------------------- */

static const char *const route_names[] = {
    "healthz", "metrics", "jobs_submit", "jobs_list", "job", "job_cancel", "job_retry",
    "job_events", "workers", "queue", "uploads", "api_other", "files", "dashboard", "other",
};
#define NROUTES ((int)SS_ARRAY_LEN(route_names))
#define MAX_CODE 600

static const double http_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5, 1, 2.5, 5, 10 };

static struct {
    int init;
    unsigned long long codes[NROUTES][MAX_CODE];
    prom_hist dur[NROUTES];
} M;

static int route_index(const char *name)
{
    for (int i = 0; i < NROUTES; i++)
        if (!strcmp(route_names[i], name))
            return i;
    return NROUTES - 1;
}

const char *metrics_route_class(enum evhttp_cmd_type m, const char *path)
{
    if (!path)
        return "other";
    if (!strcmp(path, "/healthz"))
        return "healthz";
    if (!strcmp(path, "/metrics"))
        return "metrics";
    if (!strcmp(path, "/v1/jobs") || !strcmp(path, "/v1/jobs/"))
        return m == EVHTTP_REQ_POST ? "jobs_submit" : "jobs_list";
    if (!strcmp(path, "/v1/workers"))
        return "workers";
    if (!strcmp(path, "/v1/queue"))
        return "queue";
    if (!strcmp(path, "/v1/uploads") || ss_str_has_prefix(path, "/v1/uploads/"))
        return "uploads";
    if (ss_str_has_prefix(path, "/v1/jobs/")) {
        const char *rest = strchr(path + 9, '/');
        if (!rest || !rest[1])
            return m == EVHTTP_REQ_DELETE ? "job_cancel" : "job";
        if (!strcmp(rest, "/events"))
            return "job_events";
        if (!strcmp(rest, "/retry"))
            return "job_retry";
        if (!strcmp(rest, "/cancel"))
            return "job_cancel";
        return "api_other";
    }
    if (ss_str_has_prefix(path, "/v1/") || !strcmp(path, "/v1"))
        return "api_other";
    if (ss_str_has_prefix(path, "/files/"))
        return "files";
    return "dashboard";
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void metrics_init(void)
{
    if (M.init)
        return;
    for (int i = 0; i < NROUTES; i++)
        prom_hist_init(&M.dur[i], http_bounds, (int)SS_ARRAY_LEN(http_bounds));
    M.init = 1;
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* The job a request is about (/v1/jobs/<id>..., /files/<id>/...), so its
 * access-log line carries the id like every other line about a job. */
static void path_job(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    const char *p = ss_str_has_prefix(path, "/v1/jobs/") ? path + 9
                  : ss_str_has_prefix(path, "/files/") ? path + 7 : NULL;
    if (!p || strspn(p, "0123456789abcdef") != JOBSPEC_ID_LEN || (p[JOBSPEC_ID_LEN] &&
                                                                  p[JOBSPEC_ID_LEN] != '/'))
        return;
    snprintf(out, n, "%.*s", JOBSPEC_ID_LEN, p);
}

/* Requests being answered: when each began and its route, keyed by the
 * request. Nothing is allocated per request; a client that goes away
 * before its answer leaves a slot whose request never completes, which
 * the next request at the same address, or the round-robin reuse once the
 * table is full, takes back. (Only the loop thread touches it.) */
#define INFLIGHT 1024
static struct inflight {
    struct evhttp_request *req;
    uint64_t t0_us;
    int route;
} inflight[INFLIGHT];
static unsigned inflight_next;

static void inflight_add(struct evhttp_request *req, int route)
{
    struct inflight *slot = NULL;
    for (int i = 0; i < INFLIGHT && !slot; i++)
        if (inflight[i].req == req)
            slot = &inflight[i];   /* a request freed unanswered: its address again */
    for (unsigned i = 0; i < INFLIGHT && !slot; i++)
        if (!inflight[(inflight_next + i) % INFLIGHT].req)
            slot = &inflight[(inflight_next + i) % INFLIGHT];
    if (!slot)
        slot = &inflight[inflight_next % INFLIGHT];
    inflight_next = (unsigned)(slot - inflight + 1) % INFLIGHT;
    slot->req = req;
    slot->t0_us = mono_us();
    slot->route = route;
}

/* Count an answered request; also the debug-level access log: one line per
 * answered request. */
static void on_request_done(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct inflight *f = NULL;
    for (int i = 0; i < INFLIGHT && !f; i++)
        if (inflight[i].req == req)
            f = &inflight[i];
    if (!f)
        return;   /* its slot was taken back (over INFLIGHT unanswered requests) */
    int route = f->route;
    uint64_t t0 = f->t0_us;
    f->req = NULL;
    int code = evhttp_request_get_response_code(req);
    double secs = (double)(mono_us() - t0) / 1e6;
    if (route >= NROUTES)
        route = NROUTES - 1;
    if (code < 0 || code >= MAX_CODE)
        code = 0;
    M.codes[route][code]++;
    prom_hist_observe(&M.dur[route], secs);
    const char *uri = evhttp_request_get_uri(req);
    if (uri) {
        char path[512], job[JOBSPEC_ID_LEN + 1];
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(uri, "?#"), uri);
        path_job(path, job, sizeof(job));
        log_debug(job[0] ? job : NULL, "%s %s -> %d (%.1f ms)",
                  method_name(evhttp_request_get_command(req)), path, code, secs * 1000);
    }
}

void metrics_request_begin(coord *c, struct evhttp_request *req, const char *path)
{
    metrics_init();
    inflight_add(req, route_index(metrics_route_class(evhttp_request_get_command(req), path)));
    evhttp_request_set_on_complete_cb(req, on_request_done, NULL);
}

static void write_http(struct evbuffer *b)
{
    metrics_init();
    prom_head(b, "streamscale_http_requests_total", "counter",
              "HTTP requests answered by the coordinator, by route class and status code.");
    char code[8];
    for (int r = 0; r < NROUTES; r++)
        for (int k = 0; k < MAX_CODE; k++)
            if (M.codes[r][k]) {
                snprintf(code, sizeof(code), "%d", k);
                prom_sample(b, "streamscale_http_requests_total", (double)M.codes[r][k], "route",
                            route_names[r], "code", code, (char *)NULL);
            }
    prom_head(b, "streamscale_http_request_duration_seconds", "histogram",
              "Time from a parsed request to its answer being written, by route class.");
    for (int r = 0; r < NROUTES; r++) {
        uint64_t n = 0;
        for (int i = 0; i <= M.dur[r].nbounds; i++)
            n += M.dur[r].counts[i];
        if (n)
            prom_hist_write(b, "streamscale_http_request_duration_seconds", &M.dur[r], "route",
                            route_names[r]);
    }
}

/* ---- the part read from Redis ------------------------------------------------- */

static const struct {
    const char *field, *name, *help;
} counters[] = {
    { "enqueued", "streamscale_jobs_enqueued_total",
      "Jobs created by a submit (a resubmit that returns an existing job does not count)." },
    { "started", "streamscale_jobs_started_total", "Claims: a worker took a job (every attempt counts)." },
    { "completed", "streamscale_jobs_completed_total", "Jobs completed." },
    { "failed", "streamscale_jobs_failed_total",
      "Jobs that ended failed or dead (final failures; failed attempts that are retried count in "
      "streamscale_jobs_retried_total)." },
    { "retried", "streamscale_jobs_retried_total",
      "Failed attempts (transient error, expired lease) scheduled for another try." },
    { "cancelled", "streamscale_jobs_cancelled_total", "Jobs cancelled." },
    { "dead", "streamscale_jobs_dead_total", "Jobs dead-lettered after their last attempt." },
    { "released", "streamscale_jobs_released_total",
      "Running jobs handed back to the queue by a draining worker (not counted as an attempt)." },
    { "redriven", "streamscale_jobs_redriven_total",
      "Failed, dead or cancelled jobs queued again through the retry API." },
    { "cleared", "streamscale_jobs_cleared_total",
      "Jobs in a final state forgotten by a bulk clear (POST /v1/queue/clear, the console's "
      "\"clear all\", streamscale clear)." },
    { "reaped", "streamscale_leases_reaped_total",
      "Leases that expired (worker killed, hung or cut off from Redis) and were reaped." },
    { "hook_delivered", "streamscale_webhook_deliveries_total",
      "Webhook events delivered (the receiver answered 2xx)." },
    { "hook_retried", "streamscale_webhook_retries_total",
      "Webhook delivery attempts that failed and were scheduled again." },
    { "hook_undeliverable", "streamscale_webhook_undeliverable_total",
      "Webhook events given up on (older than webhook_max_age_s, or trimmed before delivery)." },
    { "upload_bytes", "streamscale_upload_bytes_total",
      "Bytes stored by completed jobs, as job.json's upload figure reports them (all but job.json "
      "itself; the workers' own /metrics count every object, also of failed jobs)." },
    { "upload_objects", "streamscale_upload_objects_total",
      "Objects (files) stored by completed jobs (all but job.json)." },
    { "upload_retries", "streamscale_upload_retries_total",
      "Storage requests retried (5xx, 429, timeouts, resets) by completed jobs." },
};

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static void write_hists(struct evbuffer *b, json_t *cnt)
{
    for (const metrics_hist_def *d = metrics_hists; d->name; d++) {
        prom_hist h;
        prom_hist_init(&h, d->bounds, d->n);
        char field[160], le[32], name[128];
        for (int i = 0; i <= d->n; i++) {
            /* the Lua side names a bucket by tostring(bound): %.14g */
            if (i < d->n)
                snprintf(le, sizeof(le), "%.14g", d->bounds[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            snprintf(field, sizeof(field), "hist:%s:%s", d->name, le);
            double v = jnum(cnt, field);
            h.counts[i] = v > 0 ? (uint64_t)v : 0;
        }
        snprintf(field, sizeof(field), "hist:%s:sum_milli", d->name);
        h.sum = jnum(cnt, field) / 1000.0;
        snprintf(name, sizeof(name), "streamscale_%s", d->name);
        prom_head(b, name, "histogram", d->help);
        prom_hist_write(b, name, &h, NULL, NULL);
    }
}

static int known_counter(const char *k)
{
    if (ss_str_has_prefix(k, "hist:") || ss_str_has_prefix(k, "items_"))
        return 1;
    for (size_t i = 0; i < SS_ARRAY_LEN(counters); i++)
        if (!strcmp(counters[i].field, k))
            return 1;
    return 0;
}

/* A registry entry's label value: the worker id, cut to a sane length. */
static void write_workers(struct evbuffer *b, json_t *workers)
{
    static const struct {
        const char *name, *type, *help, *field;
        double scale;
    } per[] = {
        { "streamscale_worker_cpu_load_ratio", "gauge",
          "The worker machine's CPU load over the last ~8 s (0-1), as its last heartbeat reported.",
          "cpu_load", 0.01 },
        { "streamscale_worker_cpu_threshold_ratio", "gauge",
          "The CPU load under which the worker claims work (cpu_threshold, 0-1).", "cpu_threshold", 0.01 },
        { "streamscale_worker_slots", "gauge", "Jobs the worker runs at once (slots).", "slots", 1 },
        { "streamscale_worker_busy_slots", "gauge",
          "Jobs the worker holds: those it runs, and the short jobs it prefetched beyond its slots, "
          "waiting in its pool (so it can exceed streamscale_worker_slots; docs/OPERATIONS.md, "
          "Prefetch).", "busy", 1 },
        { "streamscale_worker_cores", "gauge", "CPU cores of the worker machine.", "cores", 1 },
        { "streamscale_worker_heartbeat_age_seconds", "gauge",
          "Seconds since the worker's last registry heartbeat (beats every 2 s).",
          "heartbeat_age_seconds", 1 },
    };
    size_t i;
    json_t *w;
    prom_head(b, "streamscale_workers", "gauge", "Live workers in the registry.");
    prom_sample(b, "streamscale_workers", (double)json_array_size(workers), (char *)NULL);
    double slots = 0, busy = 0;
    json_array_foreach(workers, i, w) {
        slots += jnum(w, "slots");
        busy += jnum(w, "busy");
    }
    prom_head(b, "streamscale_fleet_slots", "gauge", "Slots of all live workers together.");
    prom_sample(b, "streamscale_fleet_slots", slots, (char *)NULL);
    prom_head(b, "streamscale_fleet_busy_slots", "gauge", "Running jobs on all live workers together, and the short jobs they prefetched (docs/OPERATIONS.md, Prefetch).");
    prom_sample(b, "streamscale_fleet_busy_slots", busy, (char *)NULL);
    for (size_t k = 0; k < SS_ARRAY_LEN(per); k++) {
        prom_head(b, per[k].name, per[k].type, per[k].help);
        json_array_foreach(workers, i, w) {
            const char *id = json_string_value(json_object_get(w, "id"));
            if (id)
                prom_sample(b, per[k].name, jnum(w, per[k].field) * per[k].scale, "worker", id,
                            (char *)NULL);
        }
    }
    prom_head(b, "streamscale_worker_draining", "gauge",
              "1 while the worker drains (SIGTERM: claims nothing, finishes its jobs).");
    json_array_foreach(workers, i, w) {
        const char *id = json_string_value(json_object_get(w, "id"));
        if (id)
            prom_sample(b, "streamscale_worker_draining",
                        json_is_true(json_object_get(w, "draining")) ? 1 : 0, "worker", id,
                        (char *)NULL);
    }
    prom_head(b, "streamscale_worker_info", "gauge", "Always 1; labels say where a worker runs and its version.");
    json_array_foreach(workers, i, w) {
        const char *id = json_string_value(json_object_get(w, "id"));
        const char *host = json_string_value(json_object_get(w, "host"));
        const char *ver = json_string_value(json_object_get(w, "version"));
        if (id)
            prom_sample(b, "streamscale_worker_info", 1, "worker", id, "host", host ? host : "",
                        "version", ver ? ver : "", (char *)NULL);
    }
}

void metrics_write_store(struct evbuffer *b, json_t *st, json_t *workers, json_t *oldest)
{
    const char *k;
    json_t *v;
    prom_head(b, "streamscale_queue_depth", "gauge", "Jobs waiting in a priority queue.");
    json_object_foreach(json_object_get(st, "depth"), k, v)
        prom_sample(b, "streamscale_queue_depth", json_number_value(v), "priority", k, (char *)NULL);
    if (oldest) {
        prom_head(b, "streamscale_queue_oldest_age_seconds", "gauge",
                  "Age of the oldest job waiting in a priority queue (0 when it is empty).");
        json_object_foreach(oldest, k, v)
            prom_sample(b, "streamscale_queue_oldest_age_seconds", json_number_value(v), "priority",
                        k, (char *)NULL);
    }
    prom_head(b, "streamscale_jobs", "gauge", "Job records by state.");
    json_object_foreach(json_object_get(st, "states"), k, v)
        prom_sample(b, "streamscale_jobs", json_number_value(v), "state", k, (char *)NULL);
    static const struct {
        const char *field, *name, *help;
    } sizes[] = {
        { "delayed", "streamscale_jobs_delayed", "Failed attempts waiting for their retry time." },
        { "processing", "streamscale_leases_active", "Claims with a live lease (jobs on workers)." },
        { "dead", "streamscale_dead_letter_jobs", "Jobs on the dead-letter list ({ss}:dead)." },
        { "hooks_due", "streamscale_webhook_backlog_jobs",
          "Jobs with webhook events scheduled for delivery." },
    };
    for (size_t i = 0; i < SS_ARRAY_LEN(sizes); i++) {
        prom_head(b, sizes[i].name, "gauge", sizes[i].help);
        prom_sample(b, sizes[i].name, jnum(st, sizes[i].field), (char *)NULL);
    }
    json_t *cnt = json_object_get(st, "counters");
    for (size_t i = 0; i < SS_ARRAY_LEN(counters); i++) {
        prom_head(b, counters[i].name, "counter", counters[i].help);
        prom_sample(b, counters[i].name, jnum(cnt, counters[i].field), (char *)NULL);
    }
    /* counters added to the scripts later show up without a release here */
    int head = 0;
    json_object_foreach(cnt, k, v) {
        if (known_counter(k))
            continue;
        if (!head++)
            prom_head(b, "streamscale_stats_total", "counter",
                      "Other {ss}:stats counters the Lua scripts keep, by name.");
        prom_sample(b, "streamscale_stats_total", json_number_value(v), "name", k, (char *)NULL);
    }
    /* split jobs' work items: items_<started|done|failed|retried>:<kind> */
    head = 0;
    json_object_foreach(cnt, k, v) {
        const char *colon = strchr(k, ':');
        if (!ss_str_has_prefix(k, "items_") || !colon || colon - k > 40)
            continue;
        if (!head++)
            prom_head(b, "streamscale_items_total", "counter",
                      "Work items of split jobs (plan, chunk, audio, finalize) by kind and what "
                      "happened: started (claims), done, failed (attempts), retried.");
        char state[48];
        snprintf(state, sizeof(state), "%.*s", (int)(colon - k - 6), k + 6);
        prom_sample(b, "streamscale_items_total", json_number_value(v), "kind", colon + 1, "state",
                    state, (char *)NULL);
    }
    write_hists(b, cnt);
    write_workers(b, workers);
}

/* ---- Redis reads ------------------------------------------------------------------ */

/* Registry entries as in GET /v1/workers (two round trips: ZRANGE, MGET). */
static json_t *read_workers(coord *c, ss_err *err)
{
    json_t *arr = json_array();
    redisReply *ids = rconn_cmdf(&c->redis, err, "ZRANGE %s 0 -1 WITHSCORES", RK_WORKERS);
    if (!ids)
        return arr;
    size_t n = ids->type == REDIS_REPLY_ARRAY ? ids->elements / 2 : 0;
    if (n > 0) {
        const char **argv = calloc(n + 1, sizeof(char *));
        char **keys = calloc(n, sizeof(char *));
        int ok = argv && keys;
        if (ok)
            argv[0] = "MGET";
        for (size_t i = 0; ok && i < n; i++) {
            size_t kl = strlen(ids->element[2 * i]->str) + 32;
            keys[i] = malloc(kl);
            if (!keys[i]) {
                ok = 0;
                break;
            }
            snprintf(keys[i], kl, RK_WORKER_FMT, ids->element[2 * i]->str);
            argv[i + 1] = keys[i];
        }
        redisReply *infos = ok ? rconn_cmd(&c->redis, err, (int)n + 1, argv) : NULL;
        long long now = ss_now_ms();
        for (size_t i = 0; infos && infos->type == REDIS_REPLY_ARRAY && i < infos->elements && i < n; i++) {
            redisReply *e = infos->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;   /* expired between the two calls */
            json_t *w = json_loads(e->str, 0, NULL);
            if (!json_is_object(w)) {
                json_decref(w);
                continue;
            }
            long long beat = atoll(ids->element[2 * i + 1]->str);
            json_object_set_new(w, "heartbeat_age_seconds", json_real((double)(now - beat) / 1000));
            json_array_append_new(arr, w);
        }
        if (infos)
            freeReplyObject(infos);
        for (size_t i = 0; keys && i < n; i++)
            free(keys[i]);
        free(keys);
        free(argv);
    }
    freeReplyObject(ids);
    return arr;
}

/* Age of the oldest job in each priority list (the list's tail). */
static json_t *read_oldest(coord *c, ss_err *err)
{
    static const char *const prios[] = { "high", "normal", "low" };
    json_t *o = json_object();
    long long now = ss_now_ms();
    for (size_t i = 0; i < SS_ARRAY_LEN(prios); i++) {
        char key[64];
        double age = 0;
        RK_KEY(key, RK_QUEUE_FMT, prios[i]);
        redisReply *id = rconn_cmdf(&c->redis, err, "LINDEX %s -1", key);
        if (id && id->type == REDIS_REPLY_STRING) {
            char jk[128];
            RK_KEY(jk, RK_JOB_FMT, id->str);
            redisReply *q = rconn_cmdf(&c->redis, err, "HMGET %s queued_ms created_ms", jk);
            if (q && q->type == REDIS_REPLY_ARRAY && q->elements == 2) {
                const char *s = q->element[0]->str ? q->element[0]->str : q->element[1]->str;
                long long ms = s ? atoll(s) : 0;
                if (ms > 0 && now > ms)
                    age = (double)(now - ms) / 1000;
            }
            if (q)
                freeReplyObject(q);
        }
        if (id)
            freeReplyObject(id);
        json_object_set_new(o, prios[i], json_real(age));
    }
    return o;
}

/* ---- GET /metrics --------------------------------------------------------------------- */

void metrics_handle(coord *c, struct evhttp_request *req)
{
    ss_err err = { 0 };
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        http_reply_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    uint64_t t0 = mono_us();
    json_t *st = NULL;
    int up = coord_queue_stats(c, &st, &err) == 0;
    prom_head(b, "streamscale_redis_up", "gauge",
              "1 when this scrape could read the job store (Redis); 0 means the numbers below "
              "that come from Redis are missing.");
    prom_sample(b, "streamscale_redis_up", up, (char *)NULL);
    if (up) {
        json_t *workers = read_workers(c, &err);
        json_t *oldest = read_oldest(c, &err);
        metrics_write_store(b, st, workers, oldest);
        json_decref(workers);
        json_decref(oldest);
    }
    json_decref(st);

    prom_head(b, "streamscale_coordinator_info", "gauge",
              "Always 1; labels name the coordinator and its version.");
    prom_sample(b, "streamscale_coordinator_info", 1, "coordinator", c->id, "version", SS_VERSION,
                (char *)NULL);
    prom_head(b, "streamscale_coordinator_uptime_seconds", "gauge", "Seconds since the coordinator started.");
    prom_sample(b, "streamscale_coordinator_uptime_seconds",
                (double)(ss_now_ms() - c->started_ms) / 1000, (char *)NULL);
    write_http(b);
    prom_process_metrics(b, (double)c->started_ms / 1000);
    prom_head(b, "streamscale_metrics_scrape_seconds", "gauge",
              "Time this scrape took to read Redis and render.");
    prom_sample(b, "streamscale_metrics_scrape_seconds", (double)(mono_us() - t0) / 1e6, (char *)NULL);

    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}
