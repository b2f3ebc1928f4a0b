/* cli.c — `streamscale`, the command-line client of the HTTP API.
 *
 *   streamscale submit SOURCE [--wait] [--ladder auto|per-title|1080,720,...]
 *                      [--dest URL] [--webhook URL [--webhook-secret S]]
 *                      [--priority high|normal|low] [--rate-control R]
 *                      [--segment-seconds N] [--preset P] [--crf N]
 *                      [--idempotency-key K] [--metadata JSON] [--json]
 *   streamscale status ID [--json]
 *   streamscale list [--state S] [--limit N] [--offset N] [--json]
 *   streamscale cancel ID | retry ID
 *   streamscale workers [--json]
 *   streamscale queue [--json]
 *   streamscale events ID [--follow] [--json]
 *
 * The API address and token come from --api/--token or STREAMSCALE_API /
 * STREAMSCALE_API_TOKEN. Exit status: 0 ok, 1 the job or request failed,
 * 2 usage error, 3 the API could not be reached.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_upload.h"
#include "jobspec.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

typedef struct cli {
    const char *api;
    const char *token;
    int json;
    int follow;
    int wait;
} cli;

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_body(char *d, size_t sz, size_t n, void *ud)
{
    buf *b = ud;
    size_t len = sz * n;
    if (b->n + len > (64u << 20))
        return 0;
    char *np = realloc(b->p, b->n + len + 1);
    if (!np)
        return 0;
    memcpy(np + b->n, d, len);
    b->p = np;
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

/* One API call. Returns the HTTP status (0 when unreachable, with a message
 * printed) and the parsed body in *out (NULL if not JSON). */
static long api_call(cli *c, const char *method, const char *path, const char *body, json_t **out)
{
    *out = NULL;
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    char url[4096];
    size_t al = strlen(c->api);
    snprintf(url, sizeof(url), "%.*s%s", (int)(al && c->api[al - 1] == '/' ? al - 1 : al), c->api, path);
    struct curl_slist *hdr = NULL;
    char auth[1024];
    if (c->token && *c->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        hdr = curl_slist_append(hdr, auth);
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    buf b = { 0 };
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "streamscale-cli/" SS_VERSION);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "streamscale: cannot reach the API at %s: %s\n", c->api, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (b.p)
            *out = json_loads(b.p, 0, NULL);
    }
    free(b.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

/* Print an API error body; returns the exit status for it. */
static int api_error(long status, json_t *body)
{
    if (status == 0)
        return EXIT_UNREACHABLE;
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    fprintf(stderr, "streamscale: HTTP %ld: %s\n", status, msg ? msg : "unexpected reply");
    if (status == 401)
        fprintf(stderr, "  (set STREAMSCALE_API_TOKEN or pass --token)\n");
    return EXIT_FAILED;
}

/* GET path expecting 200: the body, or NULL with the error printed and the
 * exit status in *rc. */
static json_t *api_get(cli *c, const char *path, int *rc)
{
    json_t *j;
    long st = api_call(c, "GET", path, NULL, &j);
    if (st == 200)
        return j;
    *rc = api_error(st, j);
    json_decref(j);
    return NULL;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void print_job(json_t *j)
{
    printf("id:        %s\n", str(j, "id"));
    printf("state:     %s", str(j, "state"));
    if (json_is_string(json_object_get(j, "stage")) && strcmp(str(j, "state"), "completed"))
        printf(" (%s, %.0f%%)", str(j, "stage"), json_number_value(json_object_get(j, "progress")));
    printf("\n");
    printf("source:    %s\n", str(j, "source"));
    printf("priority:  %s\n", str(j, "priority"));
    printf("attempts:  %lld of %lld\n", (long long)json_integer_value(json_object_get(j, "attempts")),
           (long long)json_integer_value(json_object_get(j, "max_attempts")));
    if (json_is_string(json_object_get(j, "worker")))
        printf("worker:    %s\n", str(j, "worker"));
    printf("created:   %s\n", str(j, "created_at"));
    if (json_is_string(json_object_get(j, "finished_at")))
        printf("finished:  %s\n", str(j, "finished_at"));
    json_t *e = json_object_get(j, "error");
    if (json_is_object(e))
        printf("error:     %s: %s\n", str(e, "code"), str(e, "message"));
    json_t *r = json_object_get(j, "result");
    json_t *urls = json_object_get(r, "urls");
    if (json_is_object(urls)) {
        if (json_object_get(urls, "hls"))
            printf("hls:       %s\n", str(urls, "hls"));
        if (json_object_get(urls, "dash"))
            printf("dash:      %s\n", str(urls, "dash"));
        if (json_object_get(urls, "poster"))
            printf("poster:    %s\n", str(urls, "poster"));
    }
    size_t i;
    json_t *rd;
    json_array_foreach(json_object_get(r, "renditions"), i, rd) {
        printf("rendition: %-6s %4lldx%-4lld %6.0f kb/s avg, %6.0f kb/s peak", str(rd, "name"),
               (long long)json_integer_value(json_object_get(rd, "width")),
               (long long)json_integer_value(json_object_get(rd, "height")),
               json_number_value(json_object_get(rd, "average_bandwidth")) / 1000,
               json_number_value(json_object_get(rd, "bandwidth")) / 1000);
        if (json_is_number(json_object_get(rd, "psnr")))
            printf(", PSNR %.2f dB", json_number_value(json_object_get(rd, "psnr")));
        printf("\n");
    }
}

static int is_url(const char *s)
{
    return ss_str_has_prefix(s, "file://") || ss_str_has_prefix(s, "https://") ||
           ss_str_has_prefix(s, "http://") || ss_str_has_prefix(s, "s3://");
}

/* file:// URL for a local path: absolute, with unsafe bytes %-escaped. */
static int path_to_file_url(const char *path, char *out, size_t outlen)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        return -1;
    size_t n = (size_t)snprintf(out, outlen, "file://");
    for (const unsigned char *p = (const unsigned char *)abs; *p && n + 4 < outlen; p++) {
        if (isalnum(*p) || strchr("/-._~", *p))
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, outlen - n, "%%%02X", *p);
    }
    out[n] = '\0';
    return 0;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int s)
{
    (void)s;
    interrupted = 1;
}

/* Poll a job until it ends, drawing progress. Returns the exit status. */
static int wait_job(cli *c, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int tty = isatty(STDERR_FILENO);
    char last_stage[64] = "";
    int last_decile = -1, unreachable = 0;
    signal(SIGINT, on_sigint);
    for (;;) {
        json_t *j;
        long st = api_call(c, "GET", path, NULL, &j);
        if (st == 0) {
            /* the API may be restarting: keep waiting, but not forever */
            json_decref(j);
            if (++unreachable > 60)
                return EXIT_UNREACHABLE;
            sleep(1);
            continue;
        }
        unreachable = 0;
        if (st != 200 || !json_is_object(j)) {
            int rc = api_error(st, j);
            json_decref(j);
            return rc;
        }
        const char *state = str(j, "state");
        const char *stage = str(j, "stage");
        double pct = json_number_value(json_object_get(j, "progress"));
        if (tty) {
            int width = 30, fill = (int)(pct / 100 * width + 0.5);
            char bar[64];
            for (int i = 0; i < width; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[width] = '\0';
            fprintf(stderr, "\r[%s] %5.1f%% %-12s %-10s", bar, pct, state, stage);
            fflush(stderr);
        } else if (strcmp(stage, last_stage) || (int)(pct / 10) != last_decile) {
            fprintf(stderr, "%s %s %.0f%%\n", state, stage, pct);
        }
        ss_strlcpy(last_stage, stage, sizeof(last_stage));
        last_decile = (int)(pct / 10);
        if (!strcmp(state, "completed") || !strcmp(state, "failed") || !strcmp(state, "dead") ||
            !strcmp(state, "cancelled")) {
            if (tty)
                fprintf(stderr, "\n");
            int ok = !strcmp(state, "completed");
            if (c->json)
                print_json(j);
            else
                print_job(j);
            json_decref(j);
            return ok ? 0 : EXIT_FAILED;
        }
        json_decref(j);
        if (interrupted) {
            fprintf(stderr, "\nstreamscale: stopped waiting; the job goes on (streamscale status %s)\n", id);
            return EXIT_FAILED;
        }
        usleep(500 * 1000);
    }
}

static int usage(FILE *f)
{
    fprintf(f,
        "usage: streamscale [--api URL] [--token T] COMMAND ...\n\n"
        "  submit SOURCE [--wait] [--ladder auto|per-title|1080,720,...] [--dest URL]\n"
        "         [--webhook URL [--webhook-secret S]] [--priority high|normal|low]\n"
        "         [--rate-control capped-crf|two-pass] [--segment-seconds N] [--preset P]\n"
        "         [--crf N] [--idempotency-key K] [--metadata JSON] [--json]\n"
        "      SOURCE is a URL (https://, s3://, file:///) or a local file. A local file\n"
        "      is uploaded to upload_to (s3://bucket/prefix/) when that is configured,\n"
        "      else passed as file:// (the workers must be able to read it).\n"
        "  status ID [--json]            one job\n"
        "  list [--state S] [--limit N] [--offset N] [--json]\n"
        "  cancel ID                     stop a queued or running job\n"
        "  retry ID                      re-run a failed, dead or cancelled job\n"
        "  workers [--json]              the live workers\n"
        "  queue [--json]                queue depths and job counts\n"
        "  events ID [--follow] [--json] a job's events (live with --follow)\n\n"
        "Environment: STREAMSCALE_API (default http://127.0.0.1:8080), STREAMSCALE_API_TOKEN,\n"
        "and for uploads of local files STREAMSCALE_UPLOAD_TO plus the s3_* keys of\n"
        "docs/STORAGE.md as STREAMSCALE_S3_ENDPOINT, ... or AWS_ACCESS_KEY_ID/SECRET.\n"
        "Exit status: 0 ok, 1 failed, 2 usage, 3 API unreachable.\n");
    return f == stdout ? 0 : EXIT_USAGE;
}

/* Pull "--name value" out of argv; returns the value or NULL. */
typedef struct args {
    int argc;
    char **argv;
    int used[256];
} args;

static const char *opt(args *a, const char *name)
{
    for (int i = 0; i < a->argc && i < 255; i++) {
        if (a->used[i])
            continue;
        size_t n = strlen(name);
        if (!strncmp(a->argv[i], name, n) && a->argv[i][n] == '=') {
            a->used[i] = 1;
            return a->argv[i] + n + 1;
        }
        if (!strcmp(a->argv[i], name) && i + 1 < a->argc) {
            a->used[i] = a->used[i + 1] = 1;
            return a->argv[i + 1];
        }
    }
    return NULL;
}

static int flag(args *a, const char *name)
{
    for (int i = 0; i < a->argc && i < 255; i++) {
        if (!a->used[i] && !strcmp(a->argv[i], name)) {
            a->used[i] = 1;
            return 1;
        }
    }
    return 0;
}

/* The positional arguments left, or -1 (printed) on an unknown option. */
static int positionals(args *a, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < a->argc && i < 255; i++) {
        if (a->used[i])
            continue;
        if (a->argv[i][0] == '-' && a->argv[i][1]) {
            fprintf(stderr, "streamscale: unknown option '%s' (try --help)\n", a->argv[i]);
            return -1;
        }
        if (n == max) {
            fprintf(stderr, "streamscale: unexpected argument '%s'\n", a->argv[i]);
            return -1;
        }
        out[n++] = a->argv[i];
    }
    return n;
}

static int need_id(const char *id)
{
    if (!jobspec_id_valid(id)) {
        fprintf(stderr, "streamscale: '%s' is not a job id (20 hex characters)\n", id);
        return 0;
    }
    return 1;
}

static int cmd_submit(cli *c, args *a)
{
    json_t *spec = json_object();
    const char *v;
    int rc = EXIT_USAGE;
    if ((v = opt(a, "--ladder"))) {
        if (!strcmp(v, "auto") || !strcmp(v, "per-title")) {
            json_object_set_new(spec, "ladder", json_string(v));
        } else {
            json_t *rungs = json_array();
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *end;
                long hgt = strtol(t, &end, 10);
                if (*end == 'p')
                    end++;
                if (*end || hgt <= 0) {
                    fprintf(stderr, "streamscale: --ladder: '%s' is not a height (e.g. 1080,720,360)\n", t);
                    free(copy);
                    json_decref(rungs);
                    goto out;
                }
                json_array_append_new(rungs, json_pack("{sI}", "height", (json_int_t)hgt));
            }
            free(copy);
            json_object_set_new(spec, "ladder", rungs);
        }
    }
    if ((v = opt(a, "--dest")))
        json_object_set_new(spec, "destination", json_string(v));
    const char *hook = opt(a, "--webhook"), *secret = opt(a, "--webhook-secret");
    if (secret && !hook) {
        fprintf(stderr, "streamscale: --webhook-secret needs --webhook URL\n");
        goto out;
    }
    if (hook) {
        json_t *w = json_pack("{ss}", "url", hook);
        if (secret)
            json_object_set_new(w, "secret", json_string(secret));
        json_object_set_new(spec, "webhook", w);
    }
    if ((v = opt(a, "--priority")))
        json_object_set_new(spec, "priority", json_string(v));
    if ((v = opt(a, "--rate-control")))
        json_object_set_new(spec, "rate_control", json_string(v));
    if ((v = opt(a, "--preset")))
        json_object_set_new(spec, "preset", json_string(v));
    if ((v = opt(a, "--idempotency-key")))
        json_object_set_new(spec, "idempotency_key", json_string(v));
    if ((v = opt(a, "--segment-seconds")))
        json_object_set_new(spec, "segment_seconds", json_real(atof(v)));
    if ((v = opt(a, "--crf")))
        json_object_set_new(spec, "crf", json_integer(atoi(v)));
    if ((v = opt(a, "--metadata"))) {
        json_t *m = json_loads(v, 0, NULL);
        if (!json_is_object(m)) {
            fprintf(stderr, "streamscale: --metadata must be a JSON object\n");
            json_decref(m);
            goto out;
        }
        json_object_set_new(spec, "metadata", m);
    }
    c->wait = flag(a, "--wait");
    c->json = flag(a, "--json") || c->json;
    const char *pos[1];
    int n = positionals(a, pos, 1);
    if (n != 1) {
        if (n == 0)
            fprintf(stderr, "streamscale: submit needs a SOURCE (a URL or a local file)\n");
        goto out;
    }
    const char *src = pos[0];
    char url[8192];
    if (is_url(src)) {
        ss_strlcpy(url, src, sizeof(url));
    } else {
        if (access(src, R_OK) != 0) {
            fprintf(stderr, "streamscale: cannot read %s\n", src);
            rc = EXIT_FAILED;
            goto out;
        }
        /* The content names the job: the same path with other content is
         * another job (job.schema.json source_identity). */
        ss_err err = { 0 };
        char sha[65];
        int64_t size = 0;
        if (ss_sha256_file(src, NULL, sha, &size, &err) != 0) {
            fprintf(stderr, "streamscale: %s\n", err.msg);
            rc = EXIT_FAILED;
            goto out;
        }
        json_object_set_new(spec, "source_identity",
                            json_pack("{ss sI}", "sha256", sha, "size", (json_int_t)size));
        int up = cli_upload_local(src, sha, url, sizeof(url), &err);
        if (up < 0) {
            fprintf(stderr, "streamscale: upload of %s failed: %s\n", src, err.msg);
            rc = EXIT_FAILED;
            goto out;
        }
        if (up == 0 && path_to_file_url(src, url, sizeof(url)) != 0) {
            fprintf(stderr, "streamscale: cannot resolve %s\n", src);
            rc = EXIT_FAILED;
            goto out;
        }
    }
    json_object_set_new(spec, "source", json_string(url));
    char *body = json_dumps(spec, JSON_COMPACT);
    json_t *res;
    long st = api_call(c, "POST", "/v1/jobs", body, &res);
    free(body);
    if (st != 200 && st != 201) {
        rc = api_error(st, res);
        json_decref(res);
        goto out;
    }
    const char *id = str(res, "id");
    char idc[64];
    ss_strlcpy(idc, id, sizeof(idc));
    if (!c->wait) {
        if (c->json)
            print_json(res);
        else
            printf("%s\n", idc);
        json_decref(res);
        rc = 0;
        goto out;
    }
    fprintf(stderr, "job %s %s\n", idc, st == 201 ? "queued" : "already exists");
    json_decref(res);
    rc = wait_job(c, idc);
out:
    json_decref(spec);
    return rc;
}

static int cmd_status(cli *c, args *a)
{
    c->json = flag(a, "--json") || c->json;
    const char *pos[1];
    if (positionals(a, pos, 1) != 1) {
        fprintf(stderr, "streamscale: status needs a job id\n");
        return EXIT_USAGE;
    }
    if (!need_id(pos[0]))
        return EXIT_USAGE;
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", pos[0]);
    int rc = 0;
    json_t *j = api_get(c, path, &rc);
    if (!j)
        return rc;
    if (c->json)
        print_json(j);
    else
        print_job(j);
    json_decref(j);
    return 0;
}

static int cmd_list(cli *c, args *a)
{
    const char *state = opt(a, "--state"), *limit = opt(a, "--limit"), *offset = opt(a, "--offset");
    c->json = flag(a, "--json") || c->json;
    const char *pos[1];
    if (positionals(a, pos, 0) != 0)
        return EXIT_USAGE;
    char path[512];
    snprintf(path, sizeof(path), "/v1/jobs?limit=%s&offset=%s%s%s", limit ? limit : "50",
             offset ? offset : "0", state ? "&state=" : "", state ? state : "");
    int rc = 0;
    json_t *j = api_get(c, path, &rc);
    if (!j)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        printf("%-20s  %-10s  %-6s  %5s  %-11s  %-24s  %s\n", "ID", "STATE", "PRIO", "PCT", "STAGE",
               "CREATED", "SOURCE");
        size_t i;
        json_t *job;
        json_array_foreach(json_object_get(j, "jobs"), i, job)
            printf("%-20s  %-10s  %-6s  %5.1f  %-11s  %-24s  %s\n", str(job, "id"), str(job, "state"),
                   str(job, "priority"), json_number_value(json_object_get(job, "progress")),
                   str(job, "stage"), str(job, "created_at"), str(job, "source"));
        printf("(%lld job(s) in all)\n", (long long)json_integer_value(json_object_get(j, "total")));
    }
    json_decref(j);
    return 0;
}

static int cmd_transition(cli *c, args *a, const char *what)
{
    const char *pos[1];
    c->json = flag(a, "--json") || c->json;
    if (positionals(a, pos, 1) != 1) {
        fprintf(stderr, "streamscale: %s needs a job id\n", what);
        return EXIT_USAGE;
    }
    if (!need_id(pos[0]))
        return EXIT_USAGE;
    char path[160];
    json_t *j;
    long st;
    if (!strcmp(what, "cancel")) {
        snprintf(path, sizeof(path), "/v1/jobs/%s", pos[0]);
        st = api_call(c, "DELETE", path, NULL, &j);
    } else {
        snprintf(path, sizeof(path), "/v1/jobs/%s/retry", pos[0]);
        st = api_call(c, "POST", path, "{}", &j);
    }
    if (st < 200 || st > 299) {
        int rc = api_error(st, j);
        json_decref(j);
        return rc;
    }
    if (c->json)
        print_json(j);
    else
        printf("%s: %s\n", pos[0], str(j, "state"));
    json_decref(j);
    return 0;
}

static int cmd_workers(cli *c, args *a)
{
    c->json = flag(a, "--json") || c->json;
    const char *pos[1];
    if (positionals(a, pos, 0) != 0)
        return EXIT_USAGE;
    int rc = 0;
    json_t *j = api_get(c, "/v1/workers", &rc);
    if (!j)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        printf("%-24s  %-16s  %5s  %9s  %6s  %8s  %s\n", "ID", "HOST", "CORES", "SLOTS", "LOAD",
               "BEAT", "JOBS");
        size_t i, k;
        json_t *w, *job;
        json_array_foreach(json_object_get(j, "workers"), i, w) {
            char slots[32];
            snprintf(slots, sizeof(slots), "%lld/%lld", (long long)json_integer_value(json_object_get(w, "busy")),
                     (long long)json_integer_value(json_object_get(w, "slots")));
            printf("%-24s  %-16s  %5lld  %9s  %5.0f%%  %7.1fs  ", str(w, "id"), str(w, "host"),
                   (long long)json_integer_value(json_object_get(w, "cores")), slots,
                   json_number_value(json_object_get(w, "cpu_load")),
                   json_number_value(json_object_get(w, "heartbeat_age_seconds")));
            json_array_foreach(json_object_get(w, "jobs"), k, job)
                printf("%s%s (%.0f%%)", k ? ", " : "", str(job, "id"),
                       json_number_value(json_object_get(job, "progress")));
            printf("%s\n", json_is_true(json_object_get(w, "draining")) ? " [draining]" : "");
        }
    }
    json_decref(j);
    return 0;
}

static int cmd_queue(cli *c, args *a)
{
    c->json = flag(a, "--json") || c->json;
    const char *pos[1];
    if (positionals(a, pos, 0) != 0)
        return EXIT_USAGE;
    int rc = 0;
    json_t *j = api_get(c, "/v1/queue", &rc);
    if (!j)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        json_t *d = json_object_get(j, "depth"), *s = json_object_get(j, "states");
        printf("queued:  high %lld, normal %lld, low %lld\n",
               (long long)json_integer_value(json_object_get(d, "high")),
               (long long)json_integer_value(json_object_get(d, "normal")),
               (long long)json_integer_value(json_object_get(d, "low")));
        const char *k;
        json_t *v;
        printf("jobs:   ");
        json_object_foreach(s, k, v)
            printf(" %s %lld", k, (long long)json_integer_value(v));
        printf("\nworkers: %lld\n", (long long)json_integer_value(json_object_get(j, "workers")));
    }
    json_decref(j);
    return 0;
}

static int cmd_events(cli *c, args *a)
{
    c->follow = flag(a, "--follow") || flag(a, "-f");
    c->json = flag(a, "--json") || c->json;
    const char *pos[1];
    if (positionals(a, pos, 1) != 1) {
        fprintf(stderr, "streamscale: events needs a job id\n");
        return EXIT_USAGE;
    }
    if (!need_id(pos[0]))
        return EXIT_USAGE;
    long long after = 0;
    signal(SIGINT, on_sigint);
    for (;;) {
        char path[192];
        snprintf(path, sizeof(path), "/v1/jobs/%s/events?after=%lld&limit=500", pos[0], after);
        int rc = 0;
        json_t *j = api_get(c, path, &rc);
        if (!j)
            return rc;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "events"), i, e) {
            if (c->json) {
                char *s = json_dumps(e, JSON_COMPACT);
                puts(s ? s : "{}");
                free(s);
            } else {
                char *d = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
                printf("%4lld  %s  %-14s %s\n", (long long)json_integer_value(json_object_get(e, "seq")),
                       str(e, "created_at"), str(e, "type"), d ? d : "");
                free(d);
            }
            after = json_integer_value(json_object_get(e, "seq"));
        }
        fflush(stdout);
        const char *state = str(j, "state");
        int final = !strcmp(state, "completed") || !strcmp(state, "failed") ||
                    !strcmp(state, "dead") || !strcmp(state, "cancelled");
        long long last = json_integer_value(json_object_get(j, "last_seq"));
        json_decref(j);
        if (!c->follow || (final && after >= last) || interrupted)
            return 0;
        usleep(500 * 1000);
    }
}

int main(int argc, char **argv)
{
    cli c = { 0 };
    c.api = getenv("STREAMSCALE_API");
    if (!c.api || !*c.api)
        c.api = "http://127.0.0.1:8080";
    c.token = getenv("STREAMSCALE_API_TOKEN");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return usage(stdout);
        if (!strcmp(argv[i], "--version")) {
            printf("streamscale %s\n", SS_VERSION);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) {
            c.json = 1;
        } else if ((!strcmp(argv[i], "--api") || !strcmp(argv[i], "--token")) && i + 1 < argc) {
            if (!strcmp(argv[i], "--api"))
                c.api = argv[++i];
            else
                c.token = argv[++i];
        } else if (!strncmp(argv[i], "--api=", 6)) {
            c.api = argv[i] + 6;
        } else if (!strncmp(argv[i], "--token=", 8)) {
            c.token = argv[i] + 8;
        } else {
            fprintf(stderr, "streamscale: unknown option '%s' (try --help)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc)
        return usage(stderr);
    const char *cmd = argv[i++];
    args a = { argc - i, argv + i, { 0 } };
    if (a.argc > 255) {
        fprintf(stderr, "streamscale: too many arguments\n");
        return EXIT_USAGE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(cmd, "submit"))
        rc = cmd_submit(&c, &a);
    else if (!strcmp(cmd, "status"))
        rc = cmd_status(&c, &a);
    else if (!strcmp(cmd, "list"))
        rc = cmd_list(&c, &a);
    else if (!strcmp(cmd, "cancel") || !strcmp(cmd, "retry"))
        rc = cmd_transition(&c, &a, cmd);
    else if (!strcmp(cmd, "workers"))
        rc = cmd_workers(&c, &a);
    else if (!strcmp(cmd, "queue"))
        rc = cmd_queue(&c, &a);
    else if (!strcmp(cmd, "events"))
        rc = cmd_events(&c, &a);
    else if (!strcmp(cmd, "help"))
        rc = usage(stdout);
    else {
        fprintf(stderr, "streamscale: unknown command '%s' (try --help)\n", cmd);
        rc = EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
