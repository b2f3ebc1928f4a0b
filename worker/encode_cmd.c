/* encode_cmd.c — the `encode` subcommand of streamscale-worker (see
 * encode_cmd.h): parse the options, run media_encode() with a progress line
 * on a terminal (plain lines otherwise), write OUTDIR/job.json. Ctrl-C
 * cancels the encode cleanly. */
#include "encode_cmd.h"

#include "jobspec.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libavutil/log.h>

#include "cpuacct.h"
#include "util.h"

static atomic_int g_cancel;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_cancel, 1);
}

#define STR_(x) #x
#define STR(x) STR_(x)
static const char usage[] =
    "usage: streamscale-worker encode SOURCE OUTDIR [options]\n"
    "  --ladder auto|per-title|H1,H2,...   rungs (default " JOBSPEC_DEFAULT_LADDER "; explicit heights are\n"
    "                                      never upscaled)\n"
    "  --preset P            libx264 preset (default " JOBSPEC_DEFAULT_PRESET ")\n"
    "  --crf N               CRF 1..51 (default " STR(JOBSPEC_DEFAULT_CRF) ")\n"
    "  --segment-seconds S   segment length 1..20 (default " STR(JOBSPEC_DEFAULT_SEGMENT_SECONDS) ")\n"
    "  --threads N           CPU threads to use, 0 = all cores (default 0)\n"
    "  --rate-control capped-crf|two-pass   (default " JOBSPEC_DEFAULT_RATE_CONTROL ")\n"
    "  --no-thumbnails       skip poster, sprite and storyboard\n"
    "  --no-quality          skip measuring PSNR/SSIM of each rendition\n"
    "  --thumb-interval S    seconds between storyboard tiles (default " STR(JOBSPEC_DEFAULT_THUMB_INTERVAL) ")\n"
    "  --packaging hls,dash  manifests to write (default both)\n"
    "  --audio-tracks all|default|LIST   audio tracks to publish: every one (default), the\n"
    "                        default one, or languages and stream indexes like en,fr,2\n"
    "  --audio-bitrate KBPS  AAC stereo bitrate per track, 32..512 (default 128)\n"
    "  --surround            also a 5.1 AAC rendition of each 5.1 track\n"
    "  --codecs h264|h264,av1   video codecs (default h264; av1 adds an SVT-AV1 ladder)\n"
    "  --mp4 top|HEIGHT      also download.mp4 (progressive) of that rung\n"
    "  --max-duration S, --max-pixels N, --max-file-size BYTES   limits (default none)\n"
    "  --split off|auto|S    one title as time chunks encoded in parallel and stitched\n"
    "                        (auto: titles longer than two chunks; S: seconds a chunk;\n"
    "                        default off)\n"
    "  --chunk-seconds S     chunk length for --split auto (default 12, whole segments)\n"
    "  --chunk-threads N     with --split: threads per chunk (default 1: as many chunks at\n"
    "                        once as --threads)\n"
    "  --no-chain            with --split: every chunk its own run (by default a thread\n"
    "                        that ends a chunk goes on with the next one unclaimed, its\n"
    "                        decoder and encoders kept: no drain, no pre-roll)\n"
    "  --json                print the result (job.json) on stdout\n";

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* --audio-tracks all|default|en,fr,2 */
static int audio_tracks(media_opts *o, const char *v, ss_err *err)
{
    if (!strcmp(v, "all")) {
        o->audio_mode = MEDIA_AUDIO_ALL;
        return 0;
    }
    if (!strcmp(v, "default")) {
        o->audio_mode = MEDIA_AUDIO_DEFAULT;
        return 0;
    }
    o->audio_mode = MEDIA_AUDIO_LIST;
    o->naudio_sel = 0;
    char buf[256];
    ss_strlcpy(buf, v, sizeof(buf));
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->naudio_sel >= MEDIA_MAX_AUDIO_SEL)
            return ss_fail(err, SS_EINVAL, "--audio-tracks: at most %d entries", MEDIA_MAX_AUDIO_SEL);
        media_audio_sel *q = &o->audio_sel[o->naudio_sel++];
        double d;
        size_t n = strlen(t), k = 0;
        while (k < n && (isalnum((unsigned char)t[k]) || t[k] == '-'))
            k++;
        if (!num(t, 0, 63, &d) && d == (int)d) {
            q->index = (int)d;
            q->lang[0] = '\0';
        } else if (n >= 2 && n < sizeof(q->lang) && k == n && isalpha((unsigned char)t[0])) {
            q->index = -1;
            memcpy(q->lang, t, n + 1);
        } else {
            return ss_fail(err, SS_EINVAL, "--audio-tracks: %s is neither a language nor an "
                           "audio stream index 0..63", t);
        }
    }
    if (!o->naudio_sel)
        return ss_fail(err, SS_EINVAL, "--audio-tracks: nothing given");
    return 0;
}

int encode_cmd_parse(int argc, char **argv, media_opts *o, const char **src, const char **outdir,
                     encode_flags *fl, ss_err *err)
{
    media_opts_default(o);
    o->split = MEDIA_SPLIT_OFF;   /* the command splits only when asked */
    *src = *outdir = NULL;
    encode_flags dummy;
    if (!fl)
        fl = &dummy;
    *fl = (encode_flags){ .chain = 1, .chunk_threads = 1 };
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (a[0] != '-' || !a[1]) {
            if (npos == 0)
                *src = a;
            else if (npos == 1)
                *outdir = a;
            else
                return ss_fail(err, SS_EINVAL, "unexpected argument: %s", a);
            npos++;
            continue;
        }
        if (!strcmp(a, "--json")) {
            fl->json = 1;
            continue;
        }
        if (!strcmp(a, "--no-chain")) {
            fl->chain = 0;
            continue;
        }
        if (!strcmp(a, "--no-thumbnails")) {
            o->thumbnails = 0;
            continue;
        }
        if (!strcmp(a, "--no-quality")) {
            o->no_quality = 1;
            continue;
        }
        if (!strcmp(a, "--surround")) {
            o->surround = 1;
            continue;
        }
        if (!v)
            return ss_fail(err, SS_EINVAL, "%s needs a value", a);
        i++;
        if (!strcmp(a, "--ladder")) {
            if (!strcmp(v, "auto")) {
                o->ladder = MEDIA_LADDER_AUTO;
            } else if (!strcmp(v, "per-title")) {
                o->ladder = MEDIA_LADDER_PER_TITLE;
            } else {
                o->ladder = MEDIA_LADDER_EXPLICIT;
                o->nrungs = 0;
                char buf[256];
                ss_strlcpy(buf, v, sizeof(buf));
                for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                     t = strtok_r(NULL, ",", &save)) {
                    size_t n = strlen(t);
                    if (n && (t[n - 1] == 'p' || t[n - 1] == 'P'))
                        t[n - 1] = '\0';
                    if (num(t, 64, 4320, &d) || o->nrungs >= MEDIA_MAX_RUNGS)
                        return ss_fail(err, SS_EINVAL,
                                       "--ladder: give auto, per-title or up to %d heights "
                                       "64..4320 like 360,720,1080", MEDIA_MAX_RUNGS);
                    o->rungs[o->nrungs++].height = (int)d;
                }
                if (!o->nrungs)
                    return ss_fail(err, SS_EINVAL, "--ladder: no heights given");
            }
        } else if (!strcmp(a, "--preset")) {
            if (strlen(v) >= sizeof(o->preset_buf))
                return ss_fail(err, SS_EINVAL, "--preset: unknown preset %s", v);
            ss_strlcpy(o->preset_buf, v, sizeof(o->preset_buf));
            o->preset = o->preset_buf;
        } else if (!strcmp(a, "--crf")) {
            if (num(v, 1, 51, &d))
                return ss_fail(err, SS_EINVAL, "--crf must be 1..51");
            o->crf = (int)d;
        } else if (!strcmp(a, "--segment-seconds")) {
            if (num(v, 1, 20, &d))
                return ss_fail(err, SS_EINVAL, "--segment-seconds must be 1..20");
            o->segment_seconds = d;
        } else if (!strcmp(a, "--threads")) {
            if (num(v, 0, 256, &d))
                return ss_fail(err, SS_EINVAL, "--threads must be 0..256");
            o->threads = (int)d;
        } else if (!strcmp(a, "--rate-control")) {
            if (!strcmp(v, "capped-crf"))
                o->rate_control = MEDIA_RC_CAPPED_CRF;
            else if (!strcmp(v, "two-pass"))
                o->rate_control = MEDIA_RC_TWO_PASS;
            else
                return ss_fail(err, SS_EINVAL, "--rate-control must be capped-crf or two-pass");
        } else if (!strcmp(a, "--split")) {
            if (!strcmp(v, "off")) {
                o->split = MEDIA_SPLIT_OFF;
            } else if (!strcmp(v, "auto")) {
                o->split = MEDIA_SPLIT_AUTO;
            } else if (!num(v, 1, 3600, &d)) {
                o->split = MEDIA_SPLIT_SECONDS;
                o->split_seconds = d;
            } else {
                return ss_fail(err, SS_EINVAL, "--split must be off, auto or 1..3600 seconds");
            }
        } else if (!strcmp(a, "--chunk-threads")) {
            if (num(v, 1, 256, &d))
                return ss_fail(err, SS_EINVAL, "--chunk-threads must be 1..256");
            fl->chunk_threads = (int)d;
        } else if (!strcmp(a, "--chunk-seconds")) {
            if (num(v, 1, 3600, &d))
                return ss_fail(err, SS_EINVAL, "--chunk-seconds must be 1..3600");
            o->chunk_seconds = d;
        } else if (!strcmp(a, "--thumb-interval")) {
            if (num(v, 1, 600, &d))
                return ss_fail(err, SS_EINVAL, "--thumb-interval must be 1..600");
            o->thumb_interval = d;
        } else if (!strcmp(a, "--packaging")) {
            o->hls = strstr(v, "hls") != NULL;
            o->dash = strstr(v, "dash") != NULL;
            if (!o->hls && !o->dash)
                return ss_fail(err, SS_EINVAL, "--packaging must name hls and/or dash");
        } else if (!strcmp(a, "--audio-tracks")) {
            if (audio_tracks(o, v, err))
                return -1;
        } else if (!strcmp(a, "--audio-bitrate")) {
            if (num(v, 32, 512, &d))
                return ss_fail(err, SS_EINVAL, "--audio-bitrate must be 32..512 (kbit/s)");
            o->audio_kbps = (int)d;
        } else if (!strcmp(a, "--codecs")) {
            if (!strcmp(v, "h264"))
                o->av1 = 0;
            else if (!strcmp(v, "h264,av1") || !strcmp(v, "av1,h264"))
                o->av1 = 1;
            else
                return ss_fail(err, SS_EINVAL, "--codecs must be h264 or h264,av1");
        } else if (!strcmp(a, "--mp4")) {
            if (!strcmp(v, "top"))
                o->mp4_height = -1;
            else if (num(v, 64, 4320, &d))
                return ss_fail(err, SS_EINVAL, "--mp4 must be top or a height 64..4320");
            else
                o->mp4_height = (int)d;
        } else if (!strcmp(a, "--max-duration")) {
            if (num(v, 0, 1e7, &d))
                return ss_fail(err, SS_EINVAL, "--max-duration must be seconds");
            o->max_duration = d;
        } else if (!strcmp(a, "--max-pixels")) {
            if (num(v, 0, 1e12, &d))
                return ss_fail(err, SS_EINVAL, "--max-pixels must be a number");
            o->max_pixels = (int64_t)d;
        } else if (!strcmp(a, "--max-file-size")) {
            if (num(v, 0, 1e15, &d))
                return ss_fail(err, SS_EINVAL, "--max-file-size must be bytes");
            o->max_file_size = (int64_t)d;
        } else {
            return ss_fail(err, SS_EINVAL, "unknown option %s", a);
        }
    }
    if (!*src || !*outdir)
        return ss_fail(err, SS_EINVAL, "SOURCE and OUTDIR are required");
    return 0;
}

typedef struct ui {
    int tty;
    char stage[32];
    int last_pct;
    double t0;
} ui;

static void ui_progress(void *ud, const char *stage, double f)
{
    ui *u = ud;
    int pct = (int)(f * 100);
    int changed = strcmp(stage, u->stage) != 0;
    if (u->tty) {
        if (changed || pct != u->last_pct) {
            fprintf(stderr, "\r%-10s %3d%%  %6.1fs", stage, pct, ss_mono_s() - u->t0);
            if (f >= 1)
                fputc('\n', stderr);
            fflush(stderr);
        }
    } else if (changed || pct / 10 != u->last_pct / 10) {
        fprintf(stderr, "progress %s %d%% %.1fs\n", stage, pct, ss_mono_s() - u->t0);
    }
    if (changed)
        ss_strlcpy(u->stage, stage, sizeof(u->stage));
    u->last_pct = pct;
}

static void ui_warning(void *ud, const char *msg)
{
    ui *u = ud;
    fprintf(stderr, "%swarning: %s\n", u->tty ? "\n" : "", msg);
}

/* ---- --split: the items of a split job, run here ---- */

typedef struct chunk_pool {
    const char *src, *outdir;
    const media_opts *o;
    const json_t *plan;
    const media_events *ev;
    int chain;                /* a run goes on into the next chunk (media.h next_chunk) */
    pthread_mutex_t mu;
    pthread_mutex_t ev_mu;    /* the caller's events: one pool thread at a time */
    int next, n;
    json_t *results;          /* item name -> record */
    ss_err err;
} chunk_pool;

/* One pool thread's run of chunks: the caller's events, and the chunk it
 * encodes now. */
typedef struct chunk_run {
    chunk_pool *p;
    int k;
} chunk_run;

static void run_progress(void *ud, const char *stage, double f)
{
    chunk_pool *p = ((chunk_run *)ud)->p;
    pthread_mutex_lock(&p->ev_mu);
    if (p->ev->progress)
        p->ev->progress(p->ev->ud, stage, f);
    pthread_mutex_unlock(&p->ev_mu);
}

static void run_warning(void *ud, const char *msg)
{
    chunk_pool *p = ((chunk_run *)ud)->p;
    pthread_mutex_lock(&p->ev_mu);
    if (p->ev->warning)
        p->ev->warning(p->ev->ud, msg);
    pthread_mutex_unlock(&p->ev_mu);
}

static void run_file_ready(void *ud, const char *rel)
{
    chunk_pool *p = ((chunk_run *)ud)->p;
    pthread_mutex_lock(&p->ev_mu);
    if (p->ev->file_ready)
        p->ev->file_ready(p->ev->ud, rel);
    pthread_mutex_unlock(&p->ev_mu);
}

/* The run goes on with chunk next when it is the pool's next unclaimed one. */
static int run_next_chunk(void *ud, int next)
{
    chunk_run *r = ud;
    chunk_pool *p = r->p;
    pthread_mutex_lock(&p->mu);
    int go = !p->err.code && !atomic_load(&g_cancel) && p->next == next && next < p->n;
    if (go)
        p->next++;
    pthread_mutex_unlock(&p->mu);
    if (go)
        r->k = next;
    return go;
}

static void run_chunk_done(void *ud, int k, json_t *record)
{
    chunk_pool *p = ((chunk_run *)ud)->p;
    char name[16];
    snprintf(name, sizeof(name), "c%d", k);
    pthread_mutex_lock(&p->mu);
    json_object_set_new(p->results, name, record);
    pthread_mutex_unlock(&p->mu);
}

static void *chunk_worker(void *arg)
{
    chunk_pool *p = arg;
    chunk_run run = { .p = p };
    media_events ev = { .ud = &run, .progress = run_progress, .warning = run_warning,
                        .file_ready = run_file_ready };
    if (p->chain) {
        ev.next_chunk = run_next_chunk;
        ev.chunk_done = run_chunk_done;
    }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int k = p->err.code || atomic_load(&g_cancel) ? p->n : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (k >= p->n)
            return NULL;
        run.k = k;
        char name[16];
        json_t *rec = NULL;
        ss_err e = { 0 };
        snprintf(name, sizeof(name), "c%d", k);
        /* the run's CPU group (cpuacct.h): the chunks on the other
         * threads are not this run's */
        cpuacct *cpu = cpuacct_new();
        cpuacct_join(cpu);
        int r = media_encode_item(p->src, p->outdir, p->o, p->plan, name, NULL, &ev, &g_cancel,
                                  &rec, &e);
        cpuacct_join(NULL);
        cpuacct_unref(cpu);
        /* the run's last chunk (it may have gone on from k) */
        snprintf(name, sizeof(name), "c%d", run.k);
        pthread_mutex_lock(&p->mu);
        if (r) {
            if (!p->err.code)
                p->err = e;
        } else {
            json_object_set_new(p->results, name, rec);
        }
        pthread_mutex_unlock(&p->mu);
    }
}

/* The chunks on a pool of threads (each chunk with --chunk-threads CPU
 * threads, default 1), then the audio, then finalize: the stages of a
 * split job in one process. */
static int run_split(const char *src, const char *outdir, const media_opts *o, const json_t *plan,
                     const encode_flags *fl, const media_events *ev, json_t **res, ss_err *err)
{
    int ncpu = o->threads > 0 ? o->threads : ss_ncpus();
    chunk_pool p = { .src = src, .outdir = outdir, .plan = plan, .ev = ev, .chain = fl->chain,
                     .n = media_plan_chunks(plan), .results = json_object() };
    media_opts co = *o;
    co.preset = co.preset_buf[0] ? co.preset_buf : o->preset;
    /* --chunk-threads: fewer chunks at once, each with more threads */
    co.threads = fl->chunk_threads < ncpu ? fl->chunk_threads : ncpu;
    p.o = &co;
    pthread_mutex_init(&p.mu, NULL);
    pthread_mutex_init(&p.ev_mu, NULL);
    int nth = ncpu / co.threads < p.n ? ncpu / co.threads : p.n;
    pthread_t th[64];
    if (nth > 64)
        nth = 64;
    int started = 0;
    for (int i = 0; i < nth; i++)
        if (!pthread_create(&th[i], NULL, chunk_worker, &p))
            started++;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    pthread_mutex_destroy(&p.ev_mu);
    int r = -1;
    json_t *rec = NULL;
    if (!started) {
        ss_fail(err, SS_EINTERNAL, "cannot start a thread");
    } else if (p.err.code) {
        *err = p.err;
    } else if (atomic_load(&g_cancel)) {
        ss_fail(err, SS_ECANCELLED, "cancelled");
    } else if (!media_encode_item(src, outdir, o, plan, "audio", p.results, ev, &g_cancel, &rec,
                                  err)) {
        json_object_set_new(p.results, "audio", rec);
        r = media_encode_item(src, outdir, o, plan, "finalize", p.results, ev, &g_cancel, res, err);
        if (!r) {
            json_t *items = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(p.results, k, v)
            {
                json_t *it = json_pack("{s:O?, s:O?, s:O?}", "seconds",
                                       json_object_get(v, "seconds"), "cpu_seconds",
                                       json_object_get(v, "cpu_seconds"), "preroll",
                                       json_object_get(v, "preroll"));
                /* encoded by a run that came from the chunk before (no pre-roll) */
                if (json_is_true(json_object_get(v, "continued")))
                    json_object_set_new(it, "continued", json_true());
                json_object_set_new(items, k, it);
            }
            json_object_set_new(*res, "items", items);
        } else {
            json_decref(*res);   /* the items its error names: no retry here */
            *res = NULL;
        }
    }
    json_decref(p.results);
    return r;
}

int encode_cmd_main(int argc, char **argv)
{
    media_opts o;
    const char *src, *outdir;
    encode_flags fl;
    ss_err err = { 0 };
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (encode_cmd_parse(argc, argv, &o, &src, &outdir, &fl, &err)) {
        fprintf(stderr, "encode: %s\n%s", err.msg, usage);
        return 2;
    }
    /* libav's own messages ("error while decoding MB ...") would bury the
     * progress lines; what matters comes back as warnings and errors.
     * SS_AV_LOGLEVEL=32 (info) or 48 (debug) shows them. */
    av_log_set_level(getenv("SS_AV_LOGLEVEL") ? atoi(getenv("SS_AV_LOGLEVEL")) : AV_LOG_FATAL);
    ui u = { .tty = isatty(2), .last_pct = -1, .t0 = ss_mono_s() };
    media_events ev = { .ud = &u, .progress = ui_progress, .warning = ui_warning };
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    json_t *res = NULL, *plan = NULL;
    int r = media_plan(src, &o, &ev, &g_cancel, &plan, &err);
    if (!r && plan)
        r = run_split(src, outdir, &o, plan, &fl, &ev, &res, &err);
    else if (!r)
        r = media_encode(src, outdir, &o, &ev, &g_cancel, &res, &err);
    json_decref(plan);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (r) {
        fprintf(stderr, "%serror (%s): %s\n", u.tty ? "\n" : "", ss_code_name(err.code), err.msg);
        return 1;
    }
    char *text = json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char path[4200];
    snprintf(path, sizeof(path), "%s/job.json", outdir);
    int w = text ? ss_write_file_atomic(path, text, strlen(text), &err) : -1;
    if (fl.json && text)
        printf("%s\n", text);
    free(text);
    json_decref(res);
    if (w) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, err.msg);
        return 1;
    }
    fprintf(stderr, "done: %s\n", path);
    return 0;
}
