/* coord_store.c — reading job records from Redis and turning them into the
 * API's job objects (proto/openapi.yaml, schema Job). */
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "events.h"
#include "jobspec.h"
#include "rkeys.h"
#include "util.h"

static long long num(json_t *fields, const char *k)
{
    const char *s = json_string_value(json_object_get(fields, k));
    return s ? atoll(s) : 0;
}

static void set_time(json_t *o, const char *name, long long ms)
{
    if (ms > 0) {
        char ts[40];
        iso8601_ms(ms, ts, sizeof(ts));
        json_object_set_new(o, name, json_string(ts));
    } else {
        json_object_set_new(o, name, json_null());
    }
}

static json_t *parse_or_null(const char *s)
{
    json_t *j = s && *s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_null();
}

/* Webhook delivery status (docs/WEBHOOKS.md; hash fields hook_*). */
static json_t *webhook_status(const char *id, json_t *fields)
{
    long long done = num(fields, "hook_seq"), pending = num(fields, "seq") - done;
    json_t *wh = json_object();
    json_object_set_new(wh, "delivered_seq", json_integer(done));
    json_object_set_new(wh, "pending", json_integer(pending > 0 ? pending : 0));
    json_object_set_new(wh, "attempts", json_integer(num(fields, "hook_attempts")));
    set_time(wh, "next_attempt_at", pending > 0 ? num(fields, "hook_next_ms") : 0);
    set_time(wh, "last_delivered_at", num(fields, "hook_delivered_ms"));
    json_object_set_new(wh, "undeliverable", json_integer(num(fields, "hook_failed")));
    json_t *ids = json_array();
    json_t *dead = parse_or_null(json_string_value(json_object_get(fields, "hook_dead")));
    size_t i;
    json_t *v;
    json_array_foreach(dead, i, v) {
        char eid[96];
        snprintf(eid, sizeof(eid), "evt_%s_%lld", id, (long long)json_number_value(v));
        json_array_append_new(ids, json_string(eid));
    }
    json_decref(dead);
    json_object_set_new(wh, "undeliverable_events", ids);
    const char *last = json_string_value(json_object_get(fields, "hook_last_error"));
    json_object_set_new(wh, "last_error", last ? json_string(last) : json_null());
    set_time(wh, "last_error_at", num(fields, "hook_last_error_ms"));
    return wh;
}

json_t *store_job_from_fields(const char *id, json_t *fields, int full)
{
    const char *state = json_string_value(json_object_get(fields, "state"));
    const char *prog = json_string_value(json_object_get(fields, "progress"));
    const char *stage = json_string_value(json_object_get(fields, "stage"));
    const char *worker = json_string_value(json_object_get(fields, "worker"));
    const char *prio = json_string_value(json_object_get(fields, "priority"));
    json_t *spec = parse_or_null(json_string_value(json_object_get(fields, "spec")));
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "state", json_string(state ? state : "unknown"));
    json_object_set_new(j, "priority", json_string(prio ? prio : "normal"));
    json_object_set_new(j, "progress", json_real(prog ? atof(prog) : 0));
    json_object_set_new(j, "stage", stage ? json_string(stage) : json_null());
    const char *speed = json_string_value(json_object_get(fields, "speed"));
    const char *fps = json_string_value(json_object_get(fields, "fps"));
    if (speed && fps && state && (!strcmp(state, "running") || !strcmp(state, "cancelling"))) {
        json_object_set_new(j, "speed", json_real(atof(speed)));
        json_object_set_new(j, "fps", json_real(atof(fps)));
    }
    /* ETA of a running job: the time so far, scaled by what is left (the
     * dashboard shows it next to the speed); null until progress moves */
    long long st_ms = num(fields, "started_ms");
    double pr = prog ? atof(prog) : 0;
    if (state && !strcmp(state, "running") && st_ms > 0 && pr >= 1 && pr < 100) {
        double ran = (double)(ss_now_ms() - st_ms) / 1000;
        json_object_set_new(j, "eta_seconds", json_real(ran > 0 ? ran * (100 - pr) / pr : 0));
    }
    json_object_set_new(j, "attempts", json_integer(num(fields, "attempts")));
    json_object_set_new(j, "max_attempts", json_integer(num(fields, "max_attempts")));
    json_object_set_new(j, "worker", worker && *worker ? json_string(worker) : json_null());
    const char *src = json_string_value(json_object_get(spec, "source"));
    char *shown = src ? jobspec_redacted_url(src) : NULL;
    json_object_set_new(j, "source", shown ? json_string(shown) : json_null());
    free(shown);
    long long created = num(fields, "created_ms"), started = num(fields, "started_ms");
    long long finished = num(fields, "finished_ms"), updated = num(fields, "updated_ms");
    set_time(j, "created_at", created);
    set_time(j, "started_at", started);
    set_time(j, "finished_at", finished);
    set_time(j, "updated_at", updated);
    if (state && !strcmp(state, "retrying"))
        set_time(j, "retry_at", num(fields, "retry_at_ms"));
    /* playable while encoding (docs/PLAYABLE.md): when and where */
    long long playable = num(fields, "playable_ms");
    const char *purl = json_string_value(json_object_get(fields, "playable_url"));
    set_time(j, "playable_at", playable);
    json_object_set_new(j, "playable_url", playable && purl ? json_string(purl) : json_null());
    json_t *timings = json_object();
    if (started && started >= created)
        json_object_set_new(timings, "queued_seconds", json_real((double)(started - created) / 1000));
    if (finished && started && finished >= started)
        json_object_set_new(timings, "run_seconds", json_real((double)(finished - started) / 1000));
    if (playable && playable >= created)
        json_object_set_new(timings, "first_playable_seconds",
                            json_real((double)(playable - created) / 1000));
    json_object_set_new(j, "timings", timings);
    json_object_set_new(j, "error", parse_or_null(json_string_value(json_object_get(fields, "error"))));
    if (full) {
        json_object_set_new(j, "result",
                            parse_or_null(json_string_value(json_object_get(fields, "result"))));
        json_object_set_new(j, "spec", json_is_object(spec) ? jobspec_redacted(spec) : json_null());
        json_object_set_new(j, "events_seq", json_integer(num(fields, "seq")));
        const char *hook = json_string_value(json_object_get(fields, "hook_url"));
        if (hook)
            json_object_set_new(j, "webhook", webhook_status(id, fields));
    }
    json_decref(spec);
    return j;
}

/* A chunk's time range in the title (seconds), from the plan's chunk list
 * (output frames [f0, f1); f1 < 0: to the end, the announced duration). */
static void chunk_range(json_t *it, const json_t *plan, const char *name)
{
    char *end;
    long k = strtol(name + 1, &end, 10);
    const json_t *c = json_array_get(json_object_get(plan, "chunks"), k >= 0 ? (size_t)k : 0);
    double num = (double)json_integer_value(json_object_get(plan, "fps_num"));
    double den = (double)json_integer_value(json_object_get(plan, "fps_den"));
    if (*end || k < 0 || !json_is_object(c) || num <= 0 || den <= 0)
        return;
    json_int_t f0 = json_integer_value(json_object_get(c, "f0"));
    json_int_t f1 = json_integer_value(json_object_get(c, "f1"));
    double t0 = (double)f0 * den / num;
    double t1 = f1 >= 0 ? (double)f1 * den / num
                        : json_number_value(json_object_get(plan, "announced_duration"));
    json_object_set_new(it, "start_seconds", json_real(t0));
    json_object_set_new(it, "end_seconds", json_real(t1 > t0 ? t1 : t0));
}

/* A split job's work items ({ss}:item:<id>:<name>), in order; a chunk's
 * time range from plan (NULL: not known yet). */
static json_t *store_items(rconn *r, const char *id, const json_t *names, const json_t *plan)
{
    json_t *arr = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x) {
        const char *n = json_string_value(x);
        if (!n)
            continue;
        char key[192];
        snprintf(key, sizeof(key), RK_ITEM_FMT, id, n);
        ss_err e = { 0 };
        redisReply *rep = rconn_cmdf(r, &e, "HGETALL %s", key);
        json_t *f = json_object();
        for (size_t k = 0; rep && rep->type == REDIS_REPLY_ARRAY && k + 1 < rep->elements; k += 2)
            json_object_set_new(f, rep->element[k]->str, json_string(rep->element[k + 1]->str));
        if (rep)
            freeReplyObject(rep);
        const char *st = json_string_value(json_object_get(f, "state"));
        const char *w = json_string_value(json_object_get(f, "worker"));
        const char *pr = json_string_value(json_object_get(f, "progress"));
        const char *cpu = json_string_value(json_object_get(f, "cpu_seconds"));
        json_t *it = json_pack("{s:s, s:s, s:s, s:I, s:f}", "name", n, "kind",
                               n[0] == 'c' ? "chunk" : n, "state", st ? st : "waiting",
                               "attempts", (json_int_t)num(f, "attempts"), "progress",
                               pr ? atof(pr) : 0.0);
        json_object_set_new(it, "worker", w && *w ? json_string(w) : json_null());
        set_time(it, "started_at", num(f, "started_ms"));
        set_time(it, "finished_at", num(f, "finished_ms"));
        json_object_set_new(it, "cpu_seconds", cpu && st && !strcmp(st, "done") ? json_real(atof(cpu))
                                                                                : json_null());
        json_object_set_new(it, "error", parse_or_null(json_string_value(json_object_get(f, "error"))));
        if (n[0] == 'c' && plan)
            chunk_range(it, plan, n);
        json_array_append_new(arr, it);
        json_decref(f);
    }
    return arr;
}

json_t *store_job_json(rconn *r, const char *id, int full, ss_err *err)
{
    char key[128];
    RK_KEY(key, RK_JOB_FMT, id);
    redisReply *rep = rconn_cmdf(r, err, "HGETALL %s", key);
    if (!rep)
        return NULL;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        freeReplyObject(rep);
        ss_fail(err, SS_ENOTFOUND, "no job %s", id);
        return NULL;
    }
    json_t *fields = json_object();
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        json_object_set_new(fields, rep->element[i]->str, json_string(rep->element[i + 1]->str));
    freeReplyObject(rep);
    json_t *j = store_job_from_fields(id, fields, full);
    json_t *names = full ? json_loads(json_string_value(json_object_get(fields, "items")) ?: "",
                                      0, NULL) : NULL;
    json_t *plan = json_is_array(names)
                       ? json_loads(json_string_value(json_object_get(fields, "plan")) ?: "", 0, NULL)
                       : NULL;
    json_decref(fields);
    if (json_is_array(names))
        json_object_set_new(j, "items", store_items(r, id, names, json_is_object(plan) ? plan : NULL));
    json_decref(names);
    json_decref(plan);
    return j;
}
