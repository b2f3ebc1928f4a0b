/* cli.c — `streamscale`, the command-line client of the HTTP API.
 *
 *   streamscale [global options] COMMAND [arguments] [options]
 *
 * Commands and their options are tables (cmds[] below): `streamscale
 * COMMAND --help` prints a command's own usage from its table, global
 * options (--api, --token, --json) go before or after the command, an
 * unknown option, a missing value or a missing argument exits 2.
 * Exit status: 0 ok, 1 the job or request failed, 2 usage error, 3 the API
 * could not be reached, 130 interrupted (Ctrl-C) while waiting.
 *
 * The API address and token come from --api/--token or STREAMSCALE_API /
 * STREAMSCALE_API_TOKEN.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
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
#define EXIT_INTERRUPTED 130

/* Reals as the API wrote them: it prints at most 10 significant digits,
 * which 15 reproduce exactly (never 6.7000000000000002). */
#define CLI_JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))

/* ---- options -------------------------------------------------------------- */

enum { OPT_FLAG, OPT_VALUE, OPT_LIST };   /* OPT_LIST: a value, repeatable */

typedef struct optdef {
    const char *name;     /* "--ladder" */
    char shortc;          /* 'f' for -f, or 0 */
    int kind;
    const char *meta;     /* "URL" for the help line */
    const char *help;
} optdef;

#define MAX_SEEN 256
typedef struct parsed {
    const optdef *seen_def[MAX_SEEN];   /* every option given, in order */
    const char *seen_val[MAX_SEEN];
    int nseen;
    const char *pos[8];
    int npos;
} parsed;

typedef struct cli {
    const char *api;
    const char *token;
    int json;
} cli;

static const optdef global_opts[] = {
    { "--api", 0, OPT_VALUE, "URL", "the API (default $STREAMSCALE_API or http://127.0.0.1:8080)" },
    { "--token", 0, OPT_VALUE, "T", "Bearer token (default $STREAMSCALE_API_TOKEN)" },
    { "--json", 0, OPT_FLAG, NULL, "print the API's JSON instead of text" },
    { "--help", 'h', OPT_FLAG, NULL, "this help" },
    { NULL, 0, 0, NULL, NULL }
};

static const optdef *find_opt(const optdef *t, const char *arg, size_t n)
{
    for (; t && t->name; t++)
        if (strlen(t->name) == n && !strncmp(t->name, arg, n))
            return t;
    return NULL;
}

static const optdef *find_short(const optdef *t, char c)
{
    for (; t && t->name; t++)
        if (t->shortc && t->shortc == c)
            return t;
    return NULL;
}

/* Parse argv (the command's words, global options mixed in) against the
 * command's table. Prints the problem and returns -1 on an unknown option
 * or a missing value. "--" ends the options; "-" alone is a positional
 * (stdin). */
static int parse_args(int argc, char **argv, const optdef *own, parsed *p)
{
    int opts_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || !a[1]) {
            if (p->npos == (int)SS_ARRAY_LEN(p->pos)) {
                fprintf(stderr, "streamscale: too many arguments\n");
                return -1;
            }
            p->pos[p->npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            opts_done = 1;
            continue;
        }
        const optdef *d = NULL;
        const char *val = NULL;
        if (a[1] == '-') {
            size_t n = strcspn(a, "=");
            d = find_opt(own, a, n);
            if (!d)
                d = find_opt(global_opts, a, n);
            if (a[n] == '=')
                val = a + n + 1;
        } else if (!a[2]) {
            d = find_short(own, a[1]);
            if (!d)
                d = find_short(global_opts, a[1]);
        }
        if (!d) {
            fprintf(stderr, "streamscale: unknown option '%s' (try --help)\n", a);
            return -1;
        }
        if (d->kind == OPT_FLAG && val) {
            fprintf(stderr, "streamscale: option %s takes no value\n", d->name);
            return -1;
        }
        if (d->kind != OPT_FLAG && !val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "streamscale: option %s needs a value (%s)\n", d->name, d->meta);
                return -1;
            }
            val = argv[++i];
        }
        if (p->nseen == MAX_SEEN) {
            fprintf(stderr, "streamscale: too many options\n");
            return -1;
        }
        p->seen_def[p->nseen] = d;
        p->seen_val[p->nseen++] = val ? val : "";
    }
    return 0;
}

/* The last value given for an option, or NULL. */
static const char *get(const parsed *p, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < p->nseen; i++)
        if (!strcmp(p->seen_def[i]->name, name))
            v = p->seen_val[i];
    return v;
}

static int has(const parsed *p, const char *name)
{
    return get(p, name) != NULL;
}

/* ---- Ctrl-C ----------------------------------------------------------------- */

/* Set by SIGINT; the waits and transfers poll it. A second Ctrl-C ends the
 * program at once. */
static atomic_int interrupted;

static void on_sigint(int s)
{
    if (atomic_load(&interrupted)) {
        signal(s, SIG_DFL);
        raise(s);
        return;
    }
    atomic_store(&interrupted, 1);
}

static void catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;   /* no SA_RESTART: sleeps end early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* Sleep ms, ending early on Ctrl-C. */
static void nap(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (!atomic_load(&interrupted) && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the API ---------------------------------------------------------------- */

/* One API call. Returns the HTTP status (0 when unreachable or
 * interrupted, with a message printed unless interrupted) and the parsed
 * body in *out (NULL if not JSON). */
static long api_call(cli *c, const char *method, const char *path, const char *body, json_t **out)
{
    *out = NULL;
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    ss_err err = { 0 };
    long status = cli_http_call(h, c->api, c->token, method, path, body, body ? strlen(body) : 0,
                                &interrupted, out, &err);
    if (!status && err.code != SS_ECANCELLED)
        fprintf(stderr, "streamscale: %s\n", err.msg);
    curl_easy_cleanup(h);
    return status;
}

/* Print an API error body; returns the exit status for it. */
static int api_error(long status, json_t *body)
{
    if (atomic_load(&interrupted))
        return EXIT_INTERRUPTED;
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
    char *s = json_dumps(j, CLI_JSON_FLAGS);
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
    if (json_is_string(json_object_get(j, "playable_at")))
        printf("playable:  %s  %s\n", str(j, "playable_at"), str(j, "playable_url"));
    if (json_is_string(json_object_get(j, "finished_at")))
        printf("finished:  %s\n", str(j, "finished_at"));
    json_t *e = json_object_get(j, "error");
    if (json_is_object(e))
        printf("error:     %s: %s\n", str(e, "code"), str(e, "message"));
    /* a split job's work items (docs/SPLIT.md) */
    size_t n;
    json_t *it;
    json_array_foreach(json_object_get(j, "items"), n, it) {
        printf("item:      %-9s %-9s %-20s attempts %lld", str(it, "name"), str(it, "state"),
               str(it, "worker"), (long long)json_integer_value(json_object_get(it, "attempts")));
        if (json_is_number(json_object_get(it, "start_seconds")))
            printf(", %.1f-%.1f s", json_number_value(json_object_get(it, "start_seconds")),
                   json_number_value(json_object_get(it, "end_seconds")));
        if (json_is_number(json_object_get(it, "cpu_seconds")))
            printf(", %.1f CPU s", json_number_value(json_object_get(it, "cpu_seconds")));
        else if (!strcmp(str(it, "state"), "running"))
            printf(", %.0f%%", json_number_value(json_object_get(it, "progress")));
        printf("\n");
    }
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

/* file:// URL for a local path: absolute, links resolved, unsafe bytes %-escaped. */
static int path_to_file_url(const char *path, char *out, size_t outlen)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        return -1;
    return ss_file_url(abs, out, outlen);
}

static int final_state(const char *state)
{
    return !strcmp(state, "completed") || !strcmp(state, "failed") || !strcmp(state, "dead") ||
           !strcmp(state, "cancelled");
}

static void fmt_duration(double s, char *out, size_t n)
{
    if (s < 0 || !isfinite(s)) {
        snprintf(out, n, "-");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

/* The progress line: percent, stage, elapsed, the encode's speed (x real
 * time) and fps as the worker reports them, and an ETA from the rate the
 * percentage grew at since it started moving. */
typedef struct progress_view {
    double t_start;          /* when waiting began (monotonic s) */
    double t_moving, pct_moving;   /* first sample where the percentage grew */
    double last_pct;
    char last_stage[64];
    int last_decile;
} progress_view;

static void draw_progress(progress_view *v, json_t *j, int tty)
{
    double now = ss_mono_s();
    const char *state = str(j, "state"), *stage = str(j, "stage");
    double pct = json_number_value(json_object_get(j, "progress"));
    if (v->t_moving <= 0 && pct > v->last_pct && v->last_pct > 0) {
        v->t_moving = now;
        v->pct_moving = pct;
    }
    v->last_pct = pct > 0 ? pct : v->last_pct;
    char el[32], eta[32] = "-", extra[96] = "";
    fmt_duration(now - v->t_start, el, sizeof(el));
    if (v->t_moving > 0 && pct > v->pct_moving && pct < 100)
        fmt_duration((100 - pct) * (now - v->t_moving) / (pct - v->pct_moving), eta, sizeof(eta));
    json_t *sp = json_object_get(j, "speed"), *fps = json_object_get(j, "fps");
    size_t n = 0;
    if (json_is_number(sp))
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "  %.2fx", json_number_value(sp));
    if (json_is_number(fps) && n < sizeof(extra))
        snprintf(extra + n, sizeof(extra) - n, "  %.0f fps", json_number_value(fps));
    if (tty) {
        int width = 24, fill = (int)(pct / 100 * width + 0.5);
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r\033[K[%s] %5.1f%% %-10s %-11s elapsed %s  ETA %s%s", bar, pct, state,
                stage, el, eta, extra);
        fflush(stderr);
    } else if (strcmp(stage, v->last_stage) || (int)(pct / 10) != v->last_decile) {
        fprintf(stderr, "%s %s %.0f%% elapsed %s ETA %s%s\n", state, stage, pct, el, eta, extra);
    }
    ss_strlcpy(v->last_stage, stage, sizeof(v->last_stage));
    v->last_decile = (int)(pct / 10);
}

/* Poll a job until it ends, drawing progress. Returns the exit status:
 * 0 completed, 1 failed/cancelled/dead, 130 on Ctrl-C (the job goes on). */
static int wait_job(cli *c, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int tty = isatty(STDERR_FILENO), unreachable = 0, told_playable = 0;
    progress_view v = { .t_start = ss_mono_s(), .last_decile = -1 };
    for (;;) {
        json_t *j;
        long st = api_call(c, "GET", path, NULL, &j);
        if (atomic_load(&interrupted)) {
            json_decref(j);
            fprintf(stderr, "%sstreamscale: stopped waiting; the job goes on (streamscale status %s)\n",
                    tty ? "\n" : "", id);
            return EXIT_INTERRUPTED;
        }
        if (st == 0) {
            /* the API may be restarting: keep waiting, but not forever */
            json_decref(j);
            if (++unreachable > 60)
                return EXIT_UNREACHABLE;
            nap(1000);
            continue;
        }
        unreachable = 0;
        if (st != 200 || !json_is_object(j)) {
            int rc = api_error(st, j);
            json_decref(j);
            return rc;
        }
        const char *purl = json_string_value(json_object_get(j, "playable_url"));
        if (purl && !told_playable && strcmp(str(j, "state"), "completed")) {
            /* playable while encoding (docs/PLAYABLE.md): say so at once */
            fprintf(stderr, "%splayable now (still encoding): %s\n", tty ? "\r\033[K" : "", purl);
            told_playable = 1;
        }
        draw_progress(&v, j, tty);
        const char *state = str(j, "state");
        if (final_state(state)) {
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
        nap(500);
    }
}

/* ---- commands ------------------------------------------------------------------ */

typedef struct cmd cmd;
struct cmd {
    const char *name;
    const char *args;        /* positional arguments for the usage line */
    int min_pos, max_pos;
    const char *about;       /* one line for the command list */
    const char *more;        /* more text for COMMAND --help, or NULL */
    const optdef *opts;
    int (*run)(cli *c, const cmd *self, parsed *p);
};

static int need_id(const char *id)
{
    if (!jobspec_id_valid(id)) {
        fprintf(stderr, "streamscale: '%s' is not a job id (20 hex characters)\n", id);
        return 0;
    }
    return 1;
}

/* An integer flag value, or -1 with the problem printed. */
static int int_arg(const char *name, const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno) {
        fprintf(stderr, "streamscale: %s: '%s' is not a whole number\n", name, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* The spec of `submit -f FILE` ("-" = stdin): a JSON object, at most the
 * API's body cap. NULL with the problem printed. */
static json_t *read_spec_file(const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "streamscale: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    if (f != stdin)
        fclose(f);
    if (!j) {
        fprintf(stderr, "streamscale: %s: not JSON (line %d: %s)\n", path, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        fprintf(stderr, "streamscale: %s: a job spec is a JSON object\n", path);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Apply submit's flags to spec; -1 with the problem printed. */
static int spec_from_flags(json_t *spec, const parsed *p)
{
    const char *v;
    if ((v = get(p, "--ladder"))) {
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
                    return -1;
                }
                json_array_append_new(rungs, json_pack("{sI}", "height", (json_int_t)hgt));
            }
            free(copy);
            json_object_set_new(spec, "ladder", rungs);
        }
    }
    if ((v = get(p, "--dest")))
        json_object_set_new(spec, "destination", json_string(v));
    const char *hook = get(p, "--webhook"), *secret = get(p, "--webhook-secret");
    if (secret && !hook) {
        fprintf(stderr, "streamscale: --webhook-secret needs --webhook URL\n");
        return -1;
    }
    if (hook) {
        json_t *w = json_pack("{ss}", "url", hook);
        if (secret)
            json_object_set_new(w, "secret", json_string(secret));
        json_object_set_new(spec, "webhook", w);
    }
    static const char *const strs[][2] = { { "--priority", "priority" },
                                           { "--rate-control", "rate_control" },
                                           { "--preset", "preset" },
                                           { "--idempotency-key", "idempotency_key" } };
    for (size_t i = 0; i < SS_ARRAY_LEN(strs); i++)
        if ((v = get(p, strs[i][0])))
            json_object_set_new(spec, strs[i][1], json_string(v));
    static const char *const ints[][2] = { { "--crf", "crf" }, { "--max-attempts", "max_attempts" } };
    for (size_t i = 0; i < SS_ARRAY_LEN(ints); i++) {
        long long x;
        if ((v = get(p, ints[i][0]))) {
            if (int_arg(ints[i][0], v, &x))
                return -1;
            json_object_set_new(spec, ints[i][1], json_integer(x));
        }
    }
    if ((v = get(p, "--segment-seconds"))) {
        /* sent as written: 6.7 stays 6.7 on the wire */
        json_error_t je;
        json_t *n = json_loads(v, JSON_DECODE_ANY, &je);
        if (!json_is_number(n)) {
            fprintf(stderr, "streamscale: --segment-seconds: '%s' is not a number\n", v);
            json_decref(n);
            return -1;
        }
        json_object_set_new(spec, "segment_seconds", n);
    }
    if ((v = get(p, "--packaging"))) {
        json_t *pk = json_array();
        char *copy = strdup(v), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(pk, json_string(t));
        free(copy);
        json_object_set_new(spec, "packaging", pk);
    }
    if (has(p, "--no-thumbnails"))
        json_object_set_new(spec, "thumbnails", json_false());
    for (int i = 0; i < p->nseen; i++) {
        if (strcmp(p->seen_def[i]->name, "--metadata"))
            continue;
        v = p->seen_val[i];
        json_t *m = json_object_get(spec, "metadata");
        if (!json_is_object(m)) {
            m = json_object();
            json_object_set_new(spec, "metadata", m);
        }
        if (*v == '{') {
            json_t *o = json_loads(v, 0, NULL);
            if (!json_is_object(o)) {
                fprintf(stderr, "streamscale: --metadata: '%s' is not a JSON object\n", v);
                json_decref(o);
                return -1;
            }
            json_object_update(m, o);
            json_decref(o);
            continue;
        }
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) {
            fprintf(stderr, "streamscale: --metadata wants KEY=VALUE (or a JSON object), not '%s'\n", v);
            return -1;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - v < 255 ? eq - v : 255), v);
        json_object_set_new(m, key, json_string(eq + 1));
    }
    return 0;
}

/* A local file as the job's source: its identity (SHA-256, size) goes
 * into the spec, the file itself to where the workers read it. Fills url;
 * returns an exit status (0 = go on). */
static int local_source(cli *c, const parsed *p, const char *path, json_t *spec, char *url,
                        size_t urllen)
{
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "streamscale: cannot read %s: %s\n", path, strerror(errno));
        return EXIT_FAILED;
    }
    /* The content names the job: the same path with other content is
     * another job (job.schema.json source_identity). */
    ss_err err = { 0 };
    char sha[65];
    int64_t size = 0;
    if (ss_sha256_file(path, &interrupted, sha, &size, &err) != 0) {
        if (err.code == SS_ECANCELLED)
            return EXIT_INTERRUPTED;
        fprintf(stderr, "streamscale: %s\n", err.msg);
        return EXIT_FAILED;
    }
    json_object_set_new(spec, "source_identity",
                        json_pack("{ss sI}", "sha256", sha, "size", (json_int_t)size));
    /* to the bucket when STREAMSCALE_UPLOAD_TO says so, else through the
     * coordinator when it takes uploads, else as file:// */
    int up = cli_upload_local(path, sha, url, urllen, &err);
    if (up == 0 && !has(p, "--no-upload"))
        up = cli_upload_coordinator(c->api, c->token, path, sha, (long long)size, &interrupted, url,
                                    urllen, &err);
    if (up < 0 && err.code == SS_ECANCELLED)
        return EXIT_INTERRUPTED;
    if (up < 0) {
        fprintf(stderr, "streamscale: upload of %s failed: %s\n", path, err.msg);
        return EXIT_FAILED;
    }
    if (up == 0 && path_to_file_url(path, url, urllen) != 0) {
        fprintf(stderr, "streamscale: cannot resolve %s\n", path);
        return EXIT_FAILED;
    }
    return 0;
}

static int cmd_submit(cli *c, const cmd *self, parsed *p)
{
    (void)self;
    int rc = EXIT_USAGE;
    const char *file = get(p, "--file");
    json_t *spec = file ? read_spec_file(file) : json_object();
    if (!spec)
        return EXIT_USAGE;
    if (spec_from_flags(spec, p) != 0)
        goto out;
    if (p->npos == 1)
        json_object_set_new(spec, "source", json_string(p->pos[0]));
    const char *src = json_string_value(json_object_get(spec, "source"));
    if (!src) {
        fprintf(stderr, "streamscale: submit needs a SOURCE (a URL or a local file)%s\n",
                file ? ", as an argument or the spec's \"source\"" : "");
        goto out;
    }
    char url[8192];
    if (is_url(src)) {
        ss_strlcpy(url, src, sizeof(url));
    } else {
        char path[PATH_MAX];
        ss_strlcpy(path, src, sizeof(path));
        if ((rc = local_source(c, p, path, spec, url, sizeof(url))) != 0)
            goto out;
    }
    json_object_set_new(spec, "source", json_string(url));
    char *body = json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_t *res;
    long st = api_call(c, "POST", "/v1/jobs", body, &res);
    free(body);
    if (st != 200 && st != 201) {
        rc = api_error(st, res);
        json_decref(res);
        goto out;
    }
    char id[64];
    ss_strlcpy(id, str(res, "id"), sizeof(id));
    if (!has(p, "--wait")) {
        if (c->json)
            print_json(res);
        else
            printf("%s\n", id);
        json_decref(res);
        rc = 0;
        goto out;
    }
    fprintf(stderr, "job %s %s\n", id, st == 201 ? "queued" : "already exists");
    json_decref(res);
    rc = wait_job(c, id);
out:
    json_decref(spec);
    return rc;
}

static int cmd_status(cli *c, const cmd *self, parsed *p)
{
    (void)self;
    if (!need_id(p->pos[0]))
        return EXIT_USAGE;
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", p->pos[0]);
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

static int cmd_list(cli *c, const cmd *self, parsed *p)
{
    (void)self;
    const char *state = get(p, "--state"), *limit = get(p, "--limit"), *offset = get(p, "--offset");
    long long lim = 50, off = 0;
    if ((limit && int_arg("--limit", limit, &lim)) || (offset && int_arg("--offset", offset, &off)))
        return EXIT_USAGE;
    char path[512], *es = state ? curl_easy_escape(NULL, state, 0) : NULL;
    snprintf(path, sizeof(path), "/v1/jobs?limit=%lld&offset=%lld%s%s", lim, off,
             es ? "&state=" : "", es ? es : "");
    curl_free(es);
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

static int cmd_transition(cli *c, const cmd *self, parsed *p)
{
    const char *id = p->pos[0];
    if (!need_id(id))
        return EXIT_USAGE;
    char path[160];
    json_t *j;
    long st;
    if (!strcmp(self->name, "cancel")) {
        snprintf(path, sizeof(path), "/v1/jobs/%s", id);
        st = api_call(c, "DELETE", path, NULL, &j);
    } else {
        snprintf(path, sizeof(path), "/v1/jobs/%s/retry", id);
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
        printf("%s: %s\n", id, str(j, "state"));
    json_decref(j);
    return 0;
}

static int cmd_workers(cli *c, const cmd *self, parsed *p)
{
    (void)self, (void)p;
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
            char slots[72];   /* three numbers of up to 20 characters */
            long long busy = json_integer_value(json_object_get(w, "busy")),
                      nslots = json_integer_value(json_object_get(w, "slots"));
            /* busy counts prefetched jobs too (docs/OPERATIONS.md, Prefetch):
             * 4/4+32 = every slot runs, 32 more wait in the worker */
            if (busy > nslots)
                snprintf(slots, sizeof(slots), "%lld/%lld+%lld", nslots, nslots, busy - nslots);
            else
                snprintf(slots, sizeof(slots), "%lld/%lld", busy, nslots);
            printf("%-24s  %-16s  %5lld  %9s  %5.0f%%  %7.1fs  ", str(w, "id"), str(w, "host"),
                   (long long)json_integer_value(json_object_get(w, "cores")), slots,
                   json_number_value(json_object_get(w, "cpu_load")),
                   json_number_value(json_object_get(w, "heartbeat_age_seconds")));
            json_array_foreach(json_object_get(w, "jobs"), k, job)
                printf("%s%s (%.0f%%)", k ? ", " : "", str(job, "id"),
                       json_number_value(json_object_get(job, "progress")));
            /* why it takes no work now, as its own gate says */
            const char *gate = json_string_value(json_object_get(w, "gate"));
            if (gate && strcmp(gate, "open"))
                printf("%s[not claiming: %s]", k ? "  " : "", gate);
            else if (!gate && json_is_true(json_object_get(w, "draining")))
                printf("%s[draining]", k ? "  " : "");
            printf("\n");
        }
    }
    json_decref(j);
    return 0;
}

static int cmd_queue(cli *c, const cmd *self, parsed *p)
{
    (void)self, (void)p;
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

/* drain / resume WORKER: the worker's drain flag through the API. */
static int cmd_drain(cli *c, const cmd *self, parsed *p)
{
    const char *id = p->pos[0];
    if (!*id || strlen(id) > 200) {
        fprintf(stderr, "streamscale: '%s' is not a worker id (see streamscale workers)\n", id);
        return EXIT_USAGE;
    }
    char *eid = curl_easy_escape(NULL, id, 0);
    if (!eid)
        return EXIT_FAILED;
    char path[768];
    snprintf(path, sizeof(path), "/v1/workers/%s/%s", eid, self->name);
    curl_free(eid);
    json_t *j;
    long st = api_call(c, "POST", path, "{}", &j);
    if (st != 200) {
        int rc = api_error(st, j);
        if (st == 404)
            fprintf(stderr, "  (only a registered worker can be drained: see streamscale workers)\n");
        json_decref(j);
        return rc;
    }
    if (c->json)
        print_json(j);
    else if (json_is_true(json_object_get(j, "drain_requested")))
        printf("%s: drain requested at %s: it finishes its running jobs and claims nothing until "
               "`streamscale resume %s`\n", id, str(j, "drain_requested_at"), id);
    else
        printf("%s: resumed: it claims jobs again%s\n", id,
               json_is_true(json_object_get(j, "registered")) ? "" : " (not registered now)");
    json_decref(j);
    return 0;
}

/* The API's batch cap (POST /v1/queue/retry and /clear). */
#define BULK_BATCH_MAX 10000

/* retry-all / clear STATE [--limit N]: the bulk API a batch at a time,
 * until nothing is left. Only as many jobs as were in the state when the
 * command started are handled: with workers failing jobs again at once, a
 * retry loop would otherwise never end. */
static int cmd_bulk(cli *c, const cmd *self, parsed *p)
{
    const char *action = !strcmp(self->name, "clear") ? "clear" : "retry";
    const char *state = p->pos[0];
    int ok = !strcmp(state, "failed") || !strcmp(state, "dead") || !strcmp(state, "cancelled") ||
             (!strcmp(action, "clear") && !strcmp(state, "completed"));
    if (!ok) {
        fprintf(stderr, "streamscale: %s: STATE must be %s, not '%s'\n", self->name,
                !strcmp(action, "clear") ? "completed, failed, cancelled or dead"
                                         : "failed, dead or cancelled", state);
        return EXIT_USAGE;
    }
    long long cap = -1;   /* at most this many in all; -1 = every one */
    const char *lim = get(p, "--limit");
    if (lim && int_arg("--limit", lim, &cap))
        return EXIT_USAGE;
    if (lim && cap < 1) {
        fprintf(stderr, "streamscale: --limit must be at least 1\n");
        return EXIT_USAGE;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/queue/%s", action);
    long long done = 0, left = 0, budget = -1, prev_left = -1;
    for (;;) {
        long long want = BULK_BATCH_MAX;
        if (cap > 0 && cap - done < want)
            want = cap - done;
        if (budget >= 0 && budget - done < want)
            want = budget - done;
        char body[96];
        snprintf(body, sizeof(body), "{\"state\":\"%s\",\"limit\":%lld}", state, want);
        json_t *j;
        long st = api_call(c, "POST", path, body, &j);
        if (st != 200) {
            int rc = api_error(st, j);
            json_decref(j);
            if (done)
                fprintf(stderr, "streamscale: %lld job(s) were %s before that\n", done,
                        !strcmp(action, "clear") ? "cleared" : "retried");
            return rc;
        }
        long long d = json_integer_value(json_object_get(j, "done"));
        left = json_integer_value(json_object_get(j, "remaining"));
        json_decref(j);
        if (budget < 0)
            budget = d + left;   /* what was there when we started */
        done += d;
        if (!isatty(STDOUT_FILENO) || c->json) {
            /* quiet: the summary below is the output */
        } else if (left > 0 && d > 0) {
            fprintf(stderr, "\r%s: %lld done, %lld left ", self->name, done, left);
        }
        /* a batch of stale index entries (jobs already gone) does nothing
         * but shrink what is left: go on while either moves (the first
         * answer has nothing to compare with: one more batch tells) */
        int progress = d > 0 || prev_left < 0 || left < prev_left;
        prev_left = left;
        if (!progress || left == 0 || done >= budget || (cap > 0 && done >= cap) ||
            atomic_load(&interrupted))
            break;
    }
    if (isatty(STDOUT_FILENO) && !c->json && done > 0)
        fprintf(stderr, "\r%*s\r", 60, "");
    if (c->json) {
        json_t *o = json_pack("{ss ss sI sI}", "action", action, "state", state, "done",
                              (json_int_t)done, "remaining", (json_int_t)left);
        print_json(o);
        json_decref(o);
    } else {
        printf("%s %lld %s job(s); %lld still %s\n", !strcmp(action, "clear") ? "cleared" : "retried",
               done, state, left, state);
    }
    return atomic_load(&interrupted) ? EXIT_INTERRUPTED : 0;
}

static int cmd_events(cli *c, const cmd *self, parsed *p)
{
    (void)self;
    const char *id = p->pos[0];
    if (!need_id(id))
        return EXIT_USAGE;
    int follow = has(p, "--follow");
    long long after = 0;
    for (;;) {
        char path[192];
        snprintf(path, sizeof(path), "/v1/jobs/%s/events?after=%lld&limit=500", id, after);
        int rc = 0;
        json_t *j = api_get(c, path, &rc);
        if (!j)
            return rc;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "events"), i, e) {
            if (c->json) {
                char *s = json_dumps(e, JSON_COMPACT | JSON_REAL_PRECISION(15));
                puts(s ? s : "{}");
                free(s);
            } else {
                char *d = json_dumps(json_object_get(e, "data"), JSON_COMPACT | JSON_REAL_PRECISION(15));
                printf("%4lld  %s  %-14s %s\n", (long long)json_integer_value(json_object_get(e, "seq")),
                       str(e, "created_at"), str(e, "type"), d ? d : "");
                free(d);
            }
            after = json_integer_value(json_object_get(e, "seq"));
        }
        fflush(stdout);
        int final = final_state(str(j, "state"));
        long long last = json_integer_value(json_object_get(j, "last_seq"));
        json_decref(j);
        if (!follow || (final && after >= last))
            return 0;
        nap(500);
        if (atomic_load(&interrupted))
            return EXIT_INTERRUPTED;
    }
}

static const optdef submit_opts[] = {
    { "--wait", 0, OPT_FLAG, NULL, "wait for the job to end, showing progress; exit 0 only if it completed" },
    { "--file", 'f', OPT_VALUE, "FILE", "a whole job spec (JSON; - for stdin); flags and SOURCE override its fields" },
    { "--ladder", 0, OPT_VALUE, "L", "auto, per-title, or heights: 1080,720,360" },
    { "--dest", 0, OPT_VALUE, "URL", "destination: s3://bucket/prefix/ or file:///dir/" },
    { "--webhook", 0, OPT_VALUE, "URL", "POST the job's events to URL" },
    { "--webhook-secret", 0, OPT_VALUE, "S", "sign them with S" },
    { "--priority", 0, OPT_VALUE, "P", "high, normal or low" },
    { "--rate-control", 0, OPT_VALUE, "R", "capped-crf or two-pass" },
    { "--segment-seconds", 0, OPT_VALUE, "N", "segment length (1 to 20)" },
    { "--packaging", 0, OPT_VALUE, "LIST", "hls, dash or hls,dash" },
    { "--no-thumbnails", 0, OPT_FLAG, NULL, "no poster, sprite or storyboard" },
    { "--no-upload", 0, OPT_FLAG, NULL, "pass a local file as file:// (the workers share this filesystem)" },
    { "--preset", 0, OPT_VALUE, "P", "libx264 preset (default veryfast)" },
    { "--crf", 0, OPT_VALUE, "N", "quality, 1 to 51 (default 23)" },
    { "--max-attempts", 0, OPT_VALUE, "N", "attempts before the job is dead (1 to 20)" },
    { "--idempotency-key", 0, OPT_VALUE, "K", "your own name for the job" },
    { "--metadata", 0, OPT_LIST, "K=V", "echoed in events and webhooks; repeat for more (or one JSON object)" },
    { NULL, 0, 0, NULL, NULL }
};
static const optdef list_opts[] = {
    { "--state", 0, OPT_VALUE, "S", "only jobs in this state" },
    { "--limit", 0, OPT_VALUE, "N", "page size (default 50)" },
    { "--offset", 0, OPT_VALUE, "N", "skip N jobs" },
    { NULL, 0, 0, NULL, NULL }
};
static const optdef events_opts[] = {
    { "--follow", 'f', OPT_FLAG, NULL, "keep printing new events until the job ends" },
    { NULL, 0, 0, NULL, NULL }
};
static const optdef bulk_opts[] = {
    { "--limit", 0, OPT_VALUE, "N", "at most N jobs in all (default: every job in STATE)" },
    { NULL, 0, 0, NULL, NULL }
};
static const optdef no_opts[] = { { NULL, 0, 0, NULL, NULL } };

static const cmd cmds[] = {
    { "submit", "[SOURCE]", 0, 1, "submit a job (SOURCE: a URL or a local file)",
      "SOURCE is an https://, s3:// or file:/// URL, or a local file. A local file's\n"
      "SHA-256 and size go into the spec (source_identity), so changed content is a new\n"
      "job. The file goes to STREAMSCALE_UPLOAD_TO (s3://bucket/prefix/, with the s3_*\n"
      "keys of docs/STORAGE.md as STREAMSCALE_S3_*) when that is set; else to the\n"
      "coordinator's upload folder (POST /v1/uploads; resumed if cut, skipped if it is\n"
      "there already) when it has one; else it is passed as file:// (the workers must\n"
      "be able to read it; --no-upload says so up front).\n",
      submit_opts, cmd_submit },
    { "status", "ID", 1, 1, "one job", NULL, no_opts, cmd_status },
    { "list", "", 0, 0, "jobs, newest first", NULL, list_opts, cmd_list },
    { "cancel", "ID", 1, 1, "stop a queued or running job", NULL, no_opts, cmd_transition },
    { "retry", "ID", 1, 1, "re-run a failed, dead or cancelled job", NULL, no_opts, cmd_transition },
    { "workers", "", 0, 0, "the live workers", NULL, no_opts, cmd_workers },
    { "queue", "", 0, 0, "queue depths and job counts", NULL, no_opts, cmd_queue },
    { "events", "ID", 1, 1, "a job's events (live with --follow)", NULL, events_opts, cmd_events },
    { "drain", "WORKER", 1, 1, "stop a worker from claiming jobs (it finishes what it runs)",
      "The worker's drain flag in Redis (POST /v1/workers/WORKER/drain): it claims nothing\n"
      "from then on, finishes its running jobs and stays registered, idle, until resumed.\n"
      "The flag outlives restarts. Only a registered worker can be drained (exit 1 if not).\n",
      no_opts, cmd_drain },
    { "resume", "WORKER", 1, 1, "let a drained worker claim jobs again", NULL, no_opts, cmd_drain },
    { "retry-all", "STATE", 1, 1, "re-run every failed, dead or cancelled job in STATE",
      "Each job is queued again with fresh attempts (POST /v1/queue/retry, a batch at a\n"
      "time). Jobs that enter STATE while it runs are left for the next run. --json prints\n"
      "the totals as the API's BulkResult.\n",
      bulk_opts, cmd_bulk },
    { "clear", "STATE", 1, 1, "forget every completed, failed, cancelled or dead job in STATE",
      "Removes the job records, events and index entries as retention does (POST\n"
      "/v1/queue/clear, a batch at a time); outputs in storage are not touched. Jobs that\n"
      "enter STATE while it runs are left for the next run. --json prints the totals as\n"
      "the API's BulkResult.\n",
      bulk_opts, cmd_bulk },
};

static void print_opts(FILE *f, const optdef *t)
{
    for (; t->name; t++) {
        char left[64];
        snprintf(left, sizeof(left), "%s%c%s%s %s", t->shortc ? "-" : "", t->shortc ? t->shortc : ' ',
                 t->shortc ? ", " : " ", t->name, t->meta ? t->meta : "");
        fprintf(f, "  %-28s %s\n", t->shortc ? left : left + 2, t->help);
    }
}

static int usage(FILE *f)
{
    fprintf(f, "usage: streamscale [--api URL] [--token T] [--json] COMMAND [ARGS] [OPTIONS]\n\n"
               "Commands:\n");
    for (size_t i = 0; i < SS_ARRAY_LEN(cmds); i++)
        fprintf(f, "  %-9s %-9s %s\n", cmds[i].name, cmds[i].args, cmds[i].about);
    fprintf(f, "\nGlobal options (before or after the command):\n");
    print_opts(f, global_opts);
    fprintf(f, "\n`streamscale COMMAND --help` shows a command's options.\n"
               "Environment: STREAMSCALE_API (default http://127.0.0.1:8080), STREAMSCALE_API_TOKEN.\n"
               "Exit status: 0 ok, 1 failed, 2 usage, 3 API unreachable, 130 interrupted.\n");
    return f == stdout ? 0 : EXIT_USAGE;
}

static int cmd_usage(FILE *f, const cmd *k)
{
    fprintf(f, "usage: streamscale %s%s%s [OPTIONS]\n\n%s.\n", k->name, *k->args ? " " : "",
            k->args, k->about);
    if (k->more)
        fprintf(f, "\n%s", k->more);
    if (k->opts->name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, k->opts);
    }
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, global_opts);
    return f == stdout ? 0 : EXIT_USAGE;
}

int main(int argc, char **argv)
{
    cli c = { 0 };
    c.api = getenv("STREAMSCALE_API");
    if (!c.api || !*c.api)
        c.api = "http://127.0.0.1:8080";
    c.token = getenv("STREAMSCALE_API_TOKEN");
    /* Global options may come first; the first other word is the command. */
    int i = 1;
    const cmd *k = NULL;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("streamscale %s\n", SS_VERSION);
            return 0;
        }
        if (argv[i][0] != '-')
            break;
        const char *a = argv[i];
        size_t n = strcspn(a, "=");
        const optdef *d = find_opt(global_opts, a, n);
        if (!d && !strcmp(a, "-h"))
            d = &global_opts[3];
        if (!d) {
            fprintf(stderr, "streamscale: unknown option '%s' (try --help)\n", a);
            return EXIT_USAGE;
        }
        if (d->kind == OPT_VALUE && !a[n])
            i++;   /* its value; parse_args reads both again below */
    }
    if (i < argc) {
        if (!strcmp(argv[i], "help")) {
            for (size_t x = 0; i + 1 < argc && x < SS_ARRAY_LEN(cmds); x++)
                if (!strcmp(cmds[x].name, argv[i + 1]))
                    return cmd_usage(stdout, &cmds[x]);
            return usage(stdout);
        }
        for (size_t x = 0; x < SS_ARRAY_LEN(cmds); x++)
            if (!strcmp(cmds[x].name, argv[i]))
                k = &cmds[x];
        if (!k) {
            fprintf(stderr, "streamscale: unknown command '%s' (try --help)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    /* All words but the command itself, against the command's table. */
    char **words = calloc((size_t)argc, sizeof(char *));
    int nw = 0;
    for (int x = 1; x < argc; x++)
        if (x != i)
            words[nw++] = argv[x];
    parsed p;
    memset(&p, 0, sizeof(p));
    int prc = parse_args(nw, words, k ? k->opts : no_opts, &p);
    free(words);
    if (prc != 0)
        return EXIT_USAGE;
    if (has(&p, "--help"))
        return k ? cmd_usage(stdout, k) : usage(stdout);
    if (!k)
        return usage(stderr);
    if (get(&p, "--api"))
        c.api = get(&p, "--api");
    if (get(&p, "--token"))
        c.token = get(&p, "--token");
    c.json = has(&p, "--json");
    if (p.npos < k->min_pos || p.npos > k->max_pos) {
        if (p.npos < k->min_pos)
            fprintf(stderr, "streamscale: %s needs %s\n", k->name, k->args);
        else
            fprintf(stderr, "streamscale: %s: unexpected argument '%s'\n", k->name, p.pos[k->max_pos]);
        fprintf(stderr, "usage: streamscale %s %s [OPTIONS] (try streamscale %s --help)\n", k->name,
                k->args, k->name);
        return EXIT_USAGE;
    }
    catch_sigint();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = k->run(&c, k, &p);
    curl_global_cleanup();
    if (atomic_load(&interrupted) && rc != 0)
        rc = EXIT_INTERRUPTED;
    return rc;
}
