/* ss_queue_load — load generator and latency probe for the queue benchmark
 * (tests/bench/bench_queue.py) and the soak (tests/integration/
 * test_queue_soak.py). It builds jobs exactly as the coordinator does
 * (jobspec_parse → canonical spec → job id → the enqueue script) and either
 * pushes them into Redis or through the HTTP API, or paces them and times
 * when each is claimed.
 *
 *   ss_queue_load enqueue --port P --n N [--depth D] [--tag T] [--sleep-ms S]
 *       N jobs through EVALSHA enqueue on one connection, D commands in
 *       flight (1 = one round trip per job). The commands are built before
 *       the clock starts, so the figure is Redis + protocol only.
 *   ss_queue_load http --url http://127.0.0.1:PORT --token TOK --n N
 *                 [--conns C] [--tag T] [--sleep-ms S]
 *       N POST /v1/jobs over C keep-alive connections, one request in flight
 *       on each (libevent's HTTP client; bodies built before the clock).
 *   ss_queue_load latency --port P --n N --rate R [--tag T]
 *       One job every 1/R s; for each, the time from just before its
 *       enqueue is sent to the moment a worker's claim script has run. The
 *       claim is seen as a keyspace notification on {ss}:st:running (the
 *       claim's ZADD there; only a claim adds to it; notify-keyspace-events
 *       is set to Kz for the run and restored after), read on a second
 *       connection, on this process's monotonic clock (µs). Needs one idle
 *       worker, so that claims come one at a time.
 *   ss_queue_load shas
 *       The SHA-1 of every compiled-in script, by name (to read SLOWLOG).
 *
 * Every mode prints one JSON object on stdout. Jobs carry metadata
 * {"bench": tag, "n": i, "sleep_ms": S}, so ids are distinct per tag.
 * Exit status: 0 when every job was accepted as new, 1 otherwise, 2 usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "jobspec.h"
#include "rkeys.h"
#include "rscripts.h"

/* ---- helpers ------------------------------------------------------------ */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_us(int64_t t)
{
    int64_t now = mono_us();
    if (t <= now)
        return;
    struct timespec ts = { (time_t)((t - now) / 1000000), (long)((t - now) % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

typedef struct opts {
    const char *mode;
    const char *host;
    int port;
    const char *url;
    const char *token;
    long n;
    long depth;
    long conns;
    double rate;
    const char *tag;
    long sleep_ms;
} opts;

static int usage(void)
{
    fprintf(stderr,
            "usage: ss_queue_load enqueue --port P --n N [--depth D] [--tag T] [--sleep-ms S]\n"
            "       ss_queue_load http --url URL --token TOK --n N [--conns C] [--tag T] [--sleep-ms S]\n"
            "       ss_queue_load latency --port P --n N --rate R [--tag T]\n");
    return 2;
}

/* The request body a client would POST for job i. Caller frees. */
static char *job_body(const opts *o, long i)
{
    json_t *b = json_pack("{s:s, s:{s:s, s:I, s:I}}", "source", "file:///bench/queue.mp4",
                          "metadata", "bench", o->tag, "n", (json_int_t)i, "sleep_ms",
                          (json_int_t)o->sleep_ms);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* The enqueue script call for job i, built as the coordinator builds it
 * (coordinator/coord_api.c, h_submit): EVALSHA sha 1 key prefix id spec
 * priority max_attempts hook event. free_cmd releases it. */
#define CMD_ARGC 11
typedef struct cmd {
    char *argv[CMD_ARGC];
    size_t lens[CMD_ARGC];
    char id[JOBSPEC_ID_LEN + 1];
} cmd;

static void free_cmd(cmd *c)
{
    for (int k = 0; k < CMD_ARGC; k++)
        free(c->argv[k]);
    memset(c, 0, sizeof(*c));
}

static int build_cmd(const opts *o, long i, cmd *c)
{
    memset(c, 0, sizeof(*c));
    char *body = job_body(o, i);
    char field[128] = "";
    ss_err err = { 0 };
    json_t *spec = body ? jobspec_parse(body, strlen(body), field, sizeof(field), &err) : NULL;
    free(body);
    if (!spec) {
        fprintf(stderr, "ss_queue_load: bad spec: %s (%s)\n", err.msg, field);
        return -1;
    }
    jobspec_id(spec, c->id);
    const char *prio = jobspec_priority_name(jobspec_priority_of(spec));
    char key[128], maxatt[16];
    RK_KEY(key, RK_JOB_FMT, c->id);
    json_t *ma = json_object_get(spec, "max_attempts");   /* the coordinator's default: 3 */
    snprintf(maxatt, sizeof(maxatt), "%lld", ma ? (long long)json_integer_value(ma) : 3LL);
    json_t *ev = json_pack("{sssO}", "priority", prio, "source", json_object_get(spec, "source"));
    c->argv[0] = strdup("EVALSHA");
    c->argv[1] = strdup(rscript_sha("enqueue"));
    c->argv[2] = strdup("1");
    c->argv[3] = strdup(key);
    c->argv[4] = strdup(RK_PREFIX);
    c->argv[5] = strdup(c->id);
    c->argv[6] = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    c->argv[7] = strdup(prio);
    c->argv[8] = strdup(maxatt);
    c->argv[9] = strdup("");
    c->argv[10] = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    json_decref(spec);
    for (int k = 0; k < CMD_ARGC; k++) {
        if (!c->argv[k]) {
            free_cmd(c);
            return -1;
        }
        c->lens[k] = strlen(c->argv[k]);
    }
    return 0;
}

static redisContext *redis_open(const opts *o)
{
    struct timeval tv = { 5, 0 };
    redisContext *r = redisConnectWithTimeout(o->host, o->port, tv);
    if (!r || r->err) {
        fprintf(stderr, "ss_queue_load: redis %s:%d: %s\n", o->host, o->port,
                r ? r->errstr : "out of memory");
        if (r)
            redisFree(r);
        return NULL;
    }
    redisSetTimeout(r, tv);
    /* make sure EVALSHA finds the script */
    redisReply *rep = redisCommand(r, "SCRIPT LOAD %s", rscript_body("enqueue"));
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "ss_queue_load: SCRIPT LOAD: %s\n", rep ? rep->str : r->errstr);
        if (rep)
            freeReplyObject(rep);
        redisFree(r);
        return NULL;
    }
    freeReplyObject(rep);
    return r;
}

/* 1 for a new job, 0 for an existing one, -1 for an error reply. */
static int enqueue_result(redisReply *rep)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
        fprintf(stderr, "ss_queue_load: enqueue: %s\n",
                rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
        return -1;
    }
    return rep->element[0]->integer == 1;
}

static cmd *build_all(const opts *o)
{
    cmd *cs = calloc((size_t)o->n, sizeof(cmd));
    if (!cs)
        return NULL;
    for (long i = 0; i < o->n; i++) {
        if (build_cmd(o, i, &cs[i]) != 0) {
            for (long k = 0; k < i; k++)
                free_cmd(&cs[k]);
            free(cs);
            return NULL;
        }
    }
    return cs;
}

static void free_all(cmd *cs, long n)
{
    for (long i = 0; cs && i < n; i++)
        free_cmd(&cs[i]);
    free(cs);
}

/* ---- enqueue: the script, pipelined ------------------------------------- */

static int run_enqueue(const opts *o)
{
    redisContext *r = redis_open(o);
    if (!r)
        return 1;
    cmd *cs = build_all(o);
    if (!cs) {
        redisFree(r);
        return 1;
    }
    long created = 0, errors = 0;
    int64_t t0 = mono_us();
    for (long i = 0; i < o->n;) {
        long batch = o->n - i < o->depth ? o->n - i : o->depth;
        for (long k = 0; k < batch; k++)
            redisAppendCommandArgv(r, CMD_ARGC, (const char **)cs[i + k].argv, cs[i + k].lens);
        for (long k = 0; k < batch; k++) {
            void *rep = NULL;
            if (redisGetReply(r, &rep) != REDIS_OK) {
                fprintf(stderr, "ss_queue_load: redis: %s\n", r->errstr);
                free_all(cs, o->n);
                redisFree(r);
                return 1;
            }
            int rc = enqueue_result(rep);
            created += rc == 1;
            errors += rc < 0;
            freeReplyObject(rep);
        }
        i += batch;
    }
    double secs = (double)(mono_us() - t0) / 1e6;
    printf("{\"mode\":\"enqueue\",\"n\":%ld,\"depth\":%ld,\"created\":%ld,\"errors\":%ld,"
           "\"seconds\":%.6f,\"per_s\":%.1f,\"first_id\":\"%s\"}\n",
           o->n, o->depth, created, errors, secs, (double)o->n / secs, cs[0].id);
    free_all(cs, o->n);
    redisFree(r);
    return created == o->n ? 0 : 1;
}

/* ---- http: POST /v1/jobs over keep-alive connections -------------------- */

typedef struct hstate {
    const opts *o;
    struct event_base *base;
    char **bodies;
    long next, done, created, failed;
    char host[256];
    int port;
    char auth[512];
} hstate;

typedef struct hconn {
    hstate *s;
    struct evhttp_connection *conn;
} hconn;

static void http_send(hconn *hc);

static void on_http_done(struct evhttp_request *req, void *arg)
{
    hconn *hc = arg;
    hstate *s = hc->s;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 201)
        s->created++;
    else {
        if (s->failed < 5)
            fprintf(stderr, "ss_queue_load: POST /v1/jobs -> %d\n", code);
        s->failed++;
    }
    if (++s->done == s->o->n)
        event_base_loopexit(s->base, NULL);
    else
        http_send(hc);
}

static void http_send(hconn *hc)
{
    hstate *s = hc->s;
    if (s->next >= s->o->n)
        return;
    const char *body = s->bodies[s->next++];
    struct evhttp_request *req = evhttp_request_new(on_http_done, hc);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", s->host);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Authorization", s->auth);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    if (evhttp_make_request(hc->conn, req, EVHTTP_REQ_POST, "/v1/jobs") != 0) {
        fprintf(stderr, "ss_queue_load: evhttp_make_request failed\n");
        event_base_loopbreak(s->base);
    }
}

static int run_http(const opts *o)
{
    hstate s = { .o = o };
    if (!o->url || sscanf(o->url, "http://%255[^:/]:%d", s.host, &s.port) != 2 || !o->token) {
        fprintf(stderr, "ss_queue_load http: --url http://HOST:PORT and --token are required\n");
        return 2;
    }
    snprintf(s.auth, sizeof(s.auth), "Bearer %s", o->token);
    s.bodies = calloc((size_t)o->n, sizeof(char *));
    for (long i = 0; s.bodies && i < o->n; i++)
        s.bodies[i] = job_body(o, i);
    s.base = event_base_new();
    long nc = o->conns < o->n ? o->conns : o->n;
    hconn *hcs = calloc((size_t)nc, sizeof(hconn));
    if (!s.bodies || !s.base || !hcs)
        return 1;
    for (long k = 0; k < nc; k++) {
        hcs[k].s = &s;
        hcs[k].conn = evhttp_connection_base_new(s.base, NULL, s.host, (unsigned short)s.port);
        evhttp_connection_set_timeout(hcs[k].conn, 30);
    }
    int64_t t0 = mono_us();
    for (long k = 0; k < nc; k++)
        http_send(&hcs[k]);
    event_base_dispatch(s.base);
    double secs = (double)(mono_us() - t0) / 1e6;
    printf("{\"mode\":\"http\",\"n\":%ld,\"conns\":%ld,\"created\":%ld,\"errors\":%ld,"
           "\"seconds\":%.6f,\"per_s\":%.1f}\n",
           o->n, nc, s.created, s.failed, secs, (double)s.done / secs);
    for (long k = 0; k < nc; k++)
        evhttp_connection_free(hcs[k].conn);
    free(hcs);
    for (long i = 0; i < o->n; i++)
        free(s.bodies[i]);
    free(s.bodies);
    event_base_free(s.base);
    return s.created == o->n ? 0 : 1;
}

/* ---- latency: paced jobs, claim seen by keyspace notification ----------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_latency(const opts *o)
{
    redisContext *r = redis_open(o), *sub = r ? redis_open(o) : NULL;
    if (!sub) {
        if (r)
            redisFree(r);
        return 1;
    }
    cmd *cs = build_all(o);
    int64_t *lat = calloc((size_t)o->n, sizeof(int64_t));
    if (!cs || !lat)
        return 1;
    char saved[64] = "";
    redisReply *rep = redisCommand(r, "CONFIG GET notify-keyspace-events");
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->str)
        snprintf(saved, sizeof(saved), "%s", rep->element[1]->str);
    if (rep)
        freeReplyObject(rep);
    rep = redisCommand(r, "CONFIG SET notify-keyspace-events Kz");
    if (rep)
        freeReplyObject(rep);
    char running[64];
    RK_KEY(running, RK_STATE_FMT, "running");
    rep = redisCommand(sub, "SUBSCRIBE __keyspace@0__:%s", running);
    if (rep)
        freeReplyObject(rep);
    int rc = 0;
    long created = 0;
    int64_t start = mono_us() + 100000;
    for (long i = 0; i < o->n; i++) {
        sleep_until_us(start + (int64_t)((double)i * 1e6 / o->rate));
        int64_t t0 = mono_us();
        redisAppendCommandArgv(r, CMD_ARGC, (const char **)cs[i].argv, cs[i].lens);
        int done = 0;
        while (!done)
            if (redisBufferWrite(r, &done) != REDIS_OK)
                break;
        /* the claim's ZADD, on the subscriber (finish's ZREM is skipped) */
        int64_t t1 = 0;
        while (!t1) {
            void *m = NULL;
            if (redisGetReply(sub, &m) != REDIS_OK) {
                fprintf(stderr, "ss_queue_load: job %ld (%s) not claimed within 5 s: %s\n", i,
                        cs[i].id, sub->errstr);
                rc = 1;
                goto out;
            }
            redisReply *mr = m;
            if (mr->type == REDIS_REPLY_ARRAY && mr->elements == 3 && mr->element[2]->str &&
                !strcmp(mr->element[2]->str, "zadd"))
                t1 = mono_us();
            freeReplyObject(mr);
        }
        lat[i] = t1 - t0;
        void *er = NULL;
        if (redisGetReply(r, &er) != REDIS_OK) {
            rc = 1;
            goto out;
        }
        created += enqueue_result(er) == 1;
        freeReplyObject(er);
    }
out:
    rep = redisCommand(r, "CONFIG SET notify-keyspace-events %s", saved);
    if (rep)
        freeReplyObject(rep);
    if (rc == 0) {
        int64_t *sorted = malloc((size_t)o->n * sizeof(int64_t));
        memcpy(sorted, lat, (size_t)o->n * sizeof(int64_t));
        qsort(sorted, (size_t)o->n, sizeof(int64_t), cmp_i64);
        long p50 = (o->n - 1) * 50 / 100, p99 = (o->n - 1) * 99 / 100;
        printf("{\"mode\":\"latency\",\"n\":%ld,\"rate\":%.1f,\"created\":%ld,\"p50_us\":%lld,"
               "\"p99_us\":%lld,\"max_us\":%lld,\"ids\":[",
               o->n, o->rate, created, (long long)sorted[p50], (long long)sorted[p99],
               (long long)sorted[o->n - 1]);
        for (long i = 0; i < o->n; i++)
            printf("%s\"%s\"", i ? "," : "", cs[i].id);
        printf("],\"lat_us\":[");
        for (long i = 0; i < o->n; i++)
            printf("%s%lld", i ? "," : "", (long long)lat[i]);
        printf("]}\n");
        free(sorted);
        if (created != o->n)
            rc = 1;
    }
    free(lat);
    free_all(cs, o->n);
    redisFree(sub);
    redisFree(r);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = { .host = "127.0.0.1", .n = 1000, .depth = 1, .conns = 1, .rate = 20, .tag = "bench" };
    if (argc < 2)
        return usage();
    o.mode = argv[1];
    if (!strcmp(o.mode, "shas"))
        argc = 2;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(k, "--host"))
            o.host = v;
        else if (!strcmp(k, "--port"))
            o.port = atoi(v);
        else if (!strcmp(k, "--url"))
            o.url = v;
        else if (!strcmp(k, "--token"))
            o.token = v;
        else if (!strcmp(k, "--n"))
            o.n = atol(v);
        else if (!strcmp(k, "--depth"))
            o.depth = atol(v);
        else if (!strcmp(k, "--conns"))
            o.conns = atol(v);
        else if (!strcmp(k, "--rate"))
            o.rate = atof(v);
        else if (!strcmp(k, "--tag"))
            o.tag = v;
        else if (!strcmp(k, "--sleep-ms"))
            o.sleep_ms = atol(v);
        else
            return usage();
        i++;
    }
    if (o.n < 1 || o.depth < 1 || o.conns < 1 || o.rate <= 0)
        return usage();
    if (!strcmp(o.mode, "shas")) {
        /* name → SHA-1 of every compiled-in script (for reading SLOWLOG) */
        for (const ss_lua_script *sc = ss_lua_scripts; sc->name; sc++)
            printf("%s\"%s\":\"%s\"", sc == ss_lua_scripts ? "{" : ",", sc->name,
                   rscript_sha(sc->name));
        printf("}\n");
        return 0;
    }
    if (!strcmp(o.mode, "enqueue"))
        return o.port ? run_enqueue(&o) : usage();
    if (!strcmp(o.mode, "http"))
        return run_http(&o);
    if (!strcmp(o.mode, "latency"))
        return o.port ? run_latency(&o) : usage();
    return usage();
}
