/* wjob.c — one claimed job, on a job thread of the worker's pool: get the source, run the
 * media pipeline into scratch, publish to storage while encoding, then the
 * playlists, the top manifests and job.json last, so no reader ever sees a
 * manifest that names a missing file, and job.json means "all there".
 *
 * The thread never talks to Redis. It records progress and its outcome in
 * the wjob under j->mu and ends with event_active(done_ev); the loop thread
 * joins it and reports (wqueue.c). Cancellation (user, lost lease, drain)
 * arrives through the atomic j->cancel, which the pipeline polls per frame.
 */
#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avlog.h"
#include "events.h"
#include "fetch.h"
#include "jobspec.h"
#include "cpuacct.h"
#include "log.h"
#include "media.h"
#include "source.h"
#include "util.h"
#include "wmetrics.h"
#include "worker.h"
#include "wpublish.h"

typedef struct publish {
    storage *st;
    pthread_mutex_t mu;       /* storage handles are used from the media threads */
    char outdir[4096];
    char prefix[96];          /* "<job id>/" */
    json_t *sent;             /* set of relpaths already handed to storage */
    ss_err err;               /* first put_async failure */
} publish;

typedef struct job_ctx {
    wjob *j;
    publish *pub;
    const char *scratch;      /* the job's scratch folder (early playlists) */
    int hls;                  /* the job publishes HLS (early publish) */
    int chain;                /* a chunk whose run may go on into the next (chain_chunks) */
    int chain_broken;         /* a finished chunk could not be handed over: no more */
} job_ctx;

static void set_stage(wjob *j, const char *stage, double pct)
{
    pthread_mutex_lock(&j->mu);
    ss_strlcpy(j->stage, stage, sizeof(j->stage));
    if (pct >= 0)
        j->progress = pct;
    pthread_mutex_unlock(&j->mu);
}

/* Overall progress: download 0-5%, analysis/encode/packaging 5-92%,
 * upload of what is left 92-100%. */
static void on_progress(void *ud, const char *stage, double fraction)
{
    wjob *j = ((job_ctx *)ud)->j;
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    double pct = 5 + fraction * 87;
    if (!strcmp(stage, "probing"))
        pct = 5;
    pthread_mutex_lock(&j->mu);
    ss_strlcpy(j->stage, stage, sizeof(j->stage));
    if (pct > j->progress)
        j->progress = pct;
    pthread_mutex_unlock(&j->mu);
}

/* Average encode speed and fps since the first report, as ffmpeg shows. */
static void on_position(void *ud, double media_s, int64_t frames)
{
    wjob *j = ((job_ctx *)ud)->j;
    double now = ss_mono_s();
    pthread_mutex_lock(&j->mu);
    if (j->pos_t0 <= 0) {
        j->pos_t0 = now;
        j->pos_media0 = media_s;
        j->pos_frames0 = frames;
    } else if (now - j->pos_t0 >= 0.5) {
        j->speed = (media_s - j->pos_media0) / (now - j->pos_t0);
        j->fps = (double)(frames - j->pos_frames0) / (now - j->pos_t0);
    }
    pthread_mutex_unlock(&j->mu);
}

static void put_file(publish *p, const char *rel)
{
    char local[8192], key[8192];
    snprintf(local, sizeof(local), "%s/%s", p->outdir, rel);
    snprintf(key, sizeof(key), "%s%s", p->prefix, rel);
    pthread_mutex_lock(&p->mu);
    if (!json_object_get(p->sent, rel)) {
        json_object_set_new(p->sent, rel, json_true());
        ss_err e = { 0 };
        if (storage_put_async(p->st, local, key, &e) != 0 && !p->err.code)
            p->err = e;
    }
    pthread_mutex_unlock(&p->mu);
}

static void on_file_ready(void *ud, const char *relpath)
{
    job_ctx *c = ud;
    put_file(c->pub, relpath);
}

/* A barrier on the storage handle: every file handed over so far is
 * stored. Non-zero when a store failed (now or before: p->err keeps the
 * first failure, and the run fails at its end). */
static int publish_barrier(publish *p)
{
    pthread_mutex_lock(&p->mu);
    ss_err e = { 0 };
    int bad = p->err.code || storage_wait(p->st, &e) != 0;
    if (bad && !p->err.code)
        p->err = e;
    pthread_mutex_unlock(&p->mu);
    return bad;
}

/* The audio item's progress record (docs/PLAYABLE.md): once what it names
 * is stored (a barrier on the handle), it goes to Redis and may unlock or
 * extend the early publish, before the audio item is done. */
static void on_partial(void *ud, const json_t *rec)
{
    job_ctx *c = ud;
    publish *p = c->pub;
    if (c->hls && !publish_barrier(p))
        wpub_early(c->j, p->st, c->scratch, p->prefix, rec);
}

/* A chunk's input is done (its encoders drain): wake the loop, which may
 * start the slot's next item (claim_items, stagger_items). */
static void on_input_done(void *ud)
{
    wjob *j = ((job_ctx *)ud)->j;
    atomic_store(&j->input_done, 1);
    if (j->input_ev)
        event_active(j->input_ev, EV_READ, 0);
}

static void on_input_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wjob *j = arg;
    log_info(j->id, "item %s: input done, encoders draining", j->item);
    j->w->xclaim_after_ms = 0;
    wq_try_claim(j->w);
}

/* Wake the loop (wq_chain) for the question the caller set under j->mu,
 * and wait for its answer in *answer (1 or -1, set under j->mu). */
static int chain_ask(wjob *j, const int *answer)
{
    event_active(j->chain_ev, EV_READ, 0);
    pthread_mutex_lock(&j->mu);
    while (!*answer)
        pthread_cond_wait(&j->chain_cv, &j->mu);
    int a = *answer;
    pthread_mutex_unlock(&j->mu);
    return a;
}

/* The range of the chunk this run encodes ends: go on into chunk `next`
 * when the loop can claim it (wq_chain; one Redis round trip, the
 * decoder's thread waits for it). */
static int on_next_chunk(void *ud, int next)
{
    job_ctx *c = ud;
    wjob *j = c->j;
    if (!c->chain || c->chain_broken || atomic_load(&j->cancel))
        return 0;
    pthread_mutex_lock(&j->mu);
    j->chain_want = next;
    j->chain_answer = 0;
    pthread_mutex_unlock(&j->mu);
    int ok = chain_ask(j, &j->chain_answer) > 0;
    if (ok)
        log_info(NULL, "item %s: its encode goes on into c%d (same decoder and encoders)", j->item,
                 next);
    return ok;
}

/* The run cannot report its chunks any more: it fails at its end (a
 * parked claim runs again on its own, wq_chain_unpark). */
static void chain_fail(publish *p, const ss_err *e)
{
    pthread_mutex_lock(&p->mu);
    if (!p->err.code)
        p->err = *e;
    pthread_mutex_unlock(&p->mu);
}

/* Chunk k of a run that went on is complete: once its files are stored,
 * its record goes to the early publish and, through the loop, to Redis
 * (the parked claim of the next chunk becomes this run's claim). */
static void on_chunk_done(void *ud, int k, json_t *rec)
{
    job_ctx *c = ud;
    wjob *j = c->j;
    publish *p = c->pub;
    char name[16];
    snprintf(name, sizeof name, "c%d", k);
    ss_err e = { 0 };
    /* a failed store fails the run at its end; the parked claim runs again */
    int bad = publish_barrier(p);
    if (!bad && (c->chain_broken || strcmp(j->item, name)))
        ss_fail(&e, SS_EINTERNAL, "chunk %s of a run that went on could not be reported", name);
    if (bad || e.code) {
        c->chain_broken = 1;
        chain_fail(p, &e);
        json_decref(rec);
        return;
    }
    json_object_set_new(rec, "worker", json_string(j->w->id));
    if (c->hls)
        wpub_early(j, p->st, c->scratch, p->prefix, rec);
    pthread_mutex_lock(&j->mu);
    j->chain_rec = rec;
    j->chain_swapped = 0;
    pthread_mutex_unlock(&j->mu);
    if (chain_ask(j, &j->chain_swapped) < 0) {
        /* its lease was lost (the run stops) or nothing was parked: the
         * run must not report a later chunk under this claim */
        c->chain_broken = 1;
        ss_fail(&e, SS_EINTERNAL, "chunk %s of a run that went on could not be handed over", name);
        chain_fail(p, &e);
    }
}

static void on_chain_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wjob *j = arg;
    wq_chain(j->w, j);
}

static void on_warning(void *ud, const char *msg)
{
    job_ctx *c = ud;
    log_warn(c->j->id, "%s", msg);
}

/* Collect every file under dir (relative paths) into arr. */
static void list_files(const char *root, const char *rel, json_t *arr)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4096], full[8192];
        if ((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= sizeof(sub) ||
            (size_t)snprintf(full, sizeof(full), "%s/%s", root, sub) >= sizeof(full))
            continue;
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            list_files(root, sub, arr);
        else if (S_ISREG(st.st_mode))
            json_array_append_new(arr, json_string(sub));
    }
    closedir(d);
}

static int is_top_manifest(const char *rel)
{
    return !strcmp(rel, "master.m3u8") || !strcmp(rel, "manifest.mpd") || !strcmp(rel, "job.json");
}

/* Phase 2..4 of publishing: everything not yet sent except playlists, then
 * the media playlists, then master.m3u8 + manifest.mpd; a barrier after
 * each. job.json is the caller's last step. */
static int publish_rest(wjob *j, publish *p, ss_err *err)
{
    json_t *files = json_array();
    list_files(p->outdir, "", files);
    size_t i;
    json_t *f;
    for (int phase = 0; phase < 3; phase++) {
        json_array_foreach(files, i, f) {
            const char *rel = json_string_value(f);
            int playlist = ss_str_has_suffix(rel, ".m3u8") || ss_str_has_suffix(rel, ".mpd");
            int top = is_top_manifest(rel);
            if (!strcmp(rel, "job.json"))
                continue;
            if ((phase == 0 && !playlist) || (phase == 1 && playlist && !top) || (phase == 2 && top))
                put_file(p, rel);
        }
        if (storage_wait(p->st, err) != 0 || p->err.code) {
            if (p->err.code && err && !err->code)
                *err = p->err;
            json_decref(files);
            return -1;
        }
        if (atomic_load(&j->cancel)) {
            json_decref(files);
            return ss_fail(err, SS_ECANCELLED, "cancelled while uploading");
        }
        set_stage(j, "uploading", 92 + 2.5 * (phase + 1));
    }
    json_decref(files);
    return 0;
}

static char *key_url(publish *p, const char *rel)
{
    char key[4096];
    snprintf(key, sizeof(key), "%s%s", p->prefix, rel);
    return storage_url(p->st, key);
}

static void add_url(json_t *urls, publish *p, const char *name, const char *rel)
{
    if (!rel)
        return;
    char *u = key_url(p, rel);
    if (u)
        json_object_set_new(urls, name, json_string(u));
    free(u);
}

/* job.json: what the job produced and how it went. */
static json_t *build_job_json(wjob *j, publish *p, json_t *output, const char *dest,
                              double t_fetch, double t_encode, double t_upload)
{
    json_t *urls = json_object();
    add_url(urls, p, "base", "");
    if (json_object_get(output, "master"))
        add_url(urls, p, "hls", json_string_value(json_object_get(output, "master")));
    if (json_object_get(output, "dash"))
        add_url(urls, p, "dash", json_string_value(json_object_get(output, "dash")));
    json_t *th = json_object_get(output, "thumbnails");
    if (json_is_object(th)) {
        add_url(urls, p, "poster", json_string_value(json_object_get(th, "poster")));
        add_url(urls, p, "sprite", json_string_value(json_object_get(th, "sprite")));
        add_url(urls, p, "storyboard", json_string_value(json_object_get(th, "storyboard")));
    }
    json_t *dl = json_object_get(output, "download");
    if (json_is_object(dl))
        add_url(urls, p, "download", json_string_value(json_object_get(dl, "path")));
    add_url(urls, p, "job_json", "job.json");
    json_t *renditions = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(output, "renditions"), i, r) {
        json_t *c = json_object();
        const char *keys[] = { "name", "width", "height", "codecs", "video_codec", "bandwidth",
                               "average_bandwidth", "bytes", "psnr", "ssim", "playlist" };
        for (size_t k = 0; k < SS_ARRAY_LEN(keys); k++) {
            json_t *v = json_object_get(r, keys[k]);
            if (v)
                json_object_set(c, keys[k], v);
        }
        json_array_append_new(renditions, c);
    }
    char now[40];
    iso8601_ms(ss_now_ms(), now, sizeof(now));
    json_t *spec = jobspec_redacted(j->spec);
    json_t *doc = json_pack("{ss si ss ss ss so so so so}", "id", j->id, "attempt", j->attempt,
                            "worker", j->w->id, "destination", dest, "completed_at", now, "urls", urls,
                            "renditions", renditions, "spec", spec, "output", json_incref(output));
    json_object_set_new(doc, "timings", json_pack("{sfsfsf}", "download_seconds", t_fetch,
                                                  "encode_seconds", t_encode, "upload_seconds", t_upload));
    return doc;
}

void wjob_set_outcome(wjob *j, wjob_outcome oc, const ss_err *err, json_t *result)
{
    pthread_mutex_lock(&j->mu);
    j->outcome = oc;
    if (err)
        j->err = *err;
    if (result) {
        json_decref(j->result);
        j->result = result;
    }
    if (oc == WJOB_COMPLETED)
        j->progress = 100;
    pthread_mutex_unlock(&j->mu);
}

/* What a failed or stopped job ends as, from its error and cancel flag. */
static wjob_outcome outcome_of(wjob *j, const ss_err *err)
{
    int c = atomic_load(&j->cancel);
    if (c == WJOB_CANCEL_LOST)
        return WJOB_LOST;
    if (c == WJOB_CANCEL_DRAIN)
        return WJOB_RELEASE;
    if (c == WJOB_CANCEL_USER || err->code == SS_ECANCELLED)
        return WJOB_CANCELLED;
    return WJOB_FAILED;
}

/* What a split job's plan records of the source it read (plan
 * "source_version"; its "source" is the probe's report), and the check
 * every chunk and audio item makes against it: a retry continues from the
 * items that were done (docs/SPLIT.md "Retry"), so an item must never
 * encode another version than they did. Compared: the size, and the ETag,
 * Last-Modified (http(s), s3) and mtime (file://) where both sides know
 * them. A difference fails the item with SS_ECHANGED: the queue plans the
 * job again (proto/redis.md). */
static json_t *planned_source(const source_info *si)
{
    json_t *o = json_pack("{sI}", "size", (json_int_t)si->size);
    if (si->mtime >= 0)
        json_object_set_new(o, "mtime", json_integer(si->mtime));
    if (si->etag[0])
        json_object_set_new(o, "etag", json_string(si->etag));
    if (si->last_modified[0])
        json_object_set_new(o, "last_modified", json_string(si->last_modified));
    return o;
}

static int check_planned_source(const json_t *plan, const source_info *si, ss_err *err)
{
    const json_t *p = json_object_get(plan, "source_version");
    if (!p)
        return 0;   /* planned before plans recorded it */
    long long size = (long long)json_integer_value(json_object_get(p, "size"));
    if (size != si->size)
        return ss_fail(err, SS_ECHANGED, "the source changed since the job was planned: it is "
                       "%lld bytes, the plan read %lld", si->size, size);
    const json_t *m = json_object_get(p, "mtime");
    if (m && si->mtime >= 0 && json_integer_value(m) != si->mtime)
        return ss_fail(err, SS_ECHANGED, "the source changed since the job was planned: its "
                       "mtime is %lld, the plan read %lld", si->mtime,
                       (long long)json_integer_value(m));
    struct { const char *k; const char *have; } hdr[] = { { "etag", si->etag },
                                                          { "last_modified", si->last_modified } };
    for (size_t i = 0; i < SS_ARRAY_LEN(hdr); i++) {
        const char *want = json_string_value(json_object_get(p, hdr[i].k));
        if (want && hdr[i].have[0] && strcmp(want, hdr[i].have))
            return ss_fail(err, SS_ECHANGED, "the source changed since the job was planned: its "
                           "%s is '%s', the plan read '%s'", hdr[i].k, hdr[i].have, want);
    }
    return 0;
}

/* The job itself. Fills j->outcome/j->err/j->result. */
/* media_io over a fetch_reader (a chunk's or the plan's range reads) */
static int range_read(void *ud, int64_t off, uint8_t *buf, int len)
{
    return fetch_reader_read(ud, off, buf, len);
}

static const char *range_message(void *ud)
{
    return fetch_reader_error(ud)->msg;
}

void wjob_run_media(wjob *j)
{
    worker *w = j->w;
    ss_err err = { 0 };
    char dir[4096], outdir[4096], src_local[4096];
    fetch_reader *rd = NULL;   /* a chunk's or the plan's range reads of a remote source */
    json_t *output = NULL;
    storage *st = NULL;
    publish pub;
    memset(&pub, 0, sizeof(pub));
    pthread_mutex_init(&pub.mu, NULL);
    pub.sent = json_object();
    /* set before the first goto out: the error path reads it */
    const int finalize = !strcmp(j->item, "finalize");

    const worker_conf *conf = &j->conf;   /* never w->conf: SIGHUP rewrites it */
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%s.%s", conf->scratch_dir, j->id, j->token) >=
            sizeof(dir) - 8) {
        ss_fail(&err, SS_EINVAL, "scratch_dir path too long");
        goto out;
    }
    snprintf(outdir, sizeof(outdir), "%.4000s/out", dir);
    ss_rm_rf(dir);
    if (ss_mkdir_p(outdir, &err) != 0)
        goto out;

    /* 1. the source (not for a split job's finalize item: it works from
     * the other items' records; nor for its delete item) */
    /* a cancelled split job's last item: remove what its items stored */
    int remove = !strcmp(j->item, "delete");
    const json_t *plan = j->item_in ? json_object_get(j->item_in, "plan") : NULL;
    const json_t *results = j->item_in ? json_object_get(j->item_in, "results") : NULL;
    set_stage(j, "downloading", 0);
    double t0 = ss_mono_s();
    const char *source = json_string_value(json_object_get(j->spec, "source"));
    source_conf sc;
    worker_source_conf(conf, &sc);
    source_info si;
    memset(&si, 0, sizeof(si));
    src_local[0] = '\0';
    /* a chunk of a remote source reads only its range, and the plan only
     * the container's index (and the per-title windows) (docs/SPLIT.md,
     * "Sources"), unless the job pins the source by its SHA-256 (that needs
     * every byte). A plan that does not split downloads it whole below. */
    int chunk = j->item[0] == 'c' && j->item[1] >= '0' && j->item[1] <= '9';
    const json_t *split = json_object_get(j->spec, "split");
    int planning = !j->item[0] && !(json_is_string(split) && !strcmp(json_string_value(split), "off"));
    const json_t *ident = json_object_get(j->spec, "source_identity");
    if ((chunk || planning) && !json_object_get(ident, "sha256")) {
        /* a chunk's job.json source (size, SHA-256) comes from the audio
         * item; the plan of a local file hashes it (a title it does not
         * split goes into job.json from here) */
        sc.no_hash = chunk;
        rd = source_open_reader(source, &sc, &j->cancel, &si, &err);
        if (!rd && err.code)
            goto out;
        if (rd) {
            /* the name only tells the demuxer the extension */
            const char *q = source + strcspn(source, "?#");
            const char *b = q;
            while (b > source && b[-1] != '/')
                b--;
            snprintf(src_local, sizeof(src_local), "%.*s", (int)(q - b), b);
            if (source_check_identity(&si, ident, &err) != 0 ||
                check_planned_source(plan, &si, &err) != 0)
                goto out;
        }
    }
    if (!finalize && !remove && !rd &&
        (source_resolve(source, dir, src_local, sizeof(src_local), &sc, &j->cancel, &si, &err) != 0 ||
         source_check_identity(&si, json_object_get(j->spec, "source_identity"), &err) != 0 ||
         check_planned_source(plan, &si, &err) != 0))
        goto out;
    double t_fetch = ss_mono_s() - t0;

    /* 2. where it goes */
    const char *dest = json_string_value(json_object_get(j->spec, "destination"));
    int from_spec = dest != NULL;
    if (!dest)
        dest = conf->storage;
    storage_conf stc;
    worker_storage_conf(conf, &stc);
    /* a file:// folder a client named must lie in file_roots; the
     * operator's own `storage` setting is trusted as it is */
    stc.file_confine = from_spec;
    st = storage_open(dest, &stc, &err);
    if (!st)
        goto out;
    pub.st = st;
    ss_strlcpy(pub.outdir, outdir, sizeof(pub.outdir));
    snprintf(pub.prefix, sizeof(pub.prefix), "%s/", j->id);
    if (remove) {   /* ends as a cancelled item: the output prefix goes (out:) */
        ss_fail(&err, SS_ECANCELLED, "cancelled: removing the partial output");
        goto out;
    }

    /* 3. encode, publishing segments as they complete */
    media_opts mo;
    media_opts_default(&mo);
    if (media_opts_from_spec(&mo, j->spec, &err) != 0)
        goto out;
    /* threads N: about N busy cores (plan_thread_budget); threads 0: cores
     * / slots, and a one-slot worker's job the whole machine (0, not gated) */
    mo.threads = (int)conf->threads;
    if (!mo.threads && conf->slots > 1) {
        mo.threads = w->ncpus / (int)conf->slots;
        if (mo.threads < 1)
            mo.threads = 1;
    }
    /* one of several items of a split job that share a slot: its share */
    if (j->item_threads > 0)
        mo.threads = j->item_threads;
    mo.max_duration = conf->max_duration;
    mo.max_pixels = conf->max_pixels;
    mo.max_file_size = conf->max_file_size;
    mo.chunk_seconds = conf->chunk_seconds > 0 ? conf->chunk_seconds : MEDIA_CHUNK_SECONDS;
    log_info(NULL, "encoding with %d encoder thread(s) (threads %lld, slots %lld when claimed)",
             mo.threads ? mo.threads : w->ncpus, conf->threads, conf->slots);
    mo.scratch_dir = dir;
    media_io mio = { rd, rd ? fetch_reader_size(rd) : 0, range_read, range_message };
    if (rd)
        mo.io = &mio;
    job_ctx ctx = { j, &pub, dir, mo.hls, j->chain_ev != NULL, 0 };
    media_events ev = { .ud = &ctx, .progress = on_progress, .position = on_position,
                        .file_ready = on_file_ready, .warning = on_warning,
                        .partial = on_partial, .input_done = on_input_done,
                        .next_chunk = on_next_chunk, .chunk_done = on_chunk_done };
    double t1 = ss_mono_s();
    if (j->item[0] && !finalize) {
        /* a chunk or the audio of a split job (docs/SPLIT.md): its files
         * are stored as they are done, its record goes to Redis */
        json_t *rec = NULL;
        /* the loop renames j->item when the run goes on into the next
         * chunk (chain_swap): the pipeline gets a copy */
        char item[sizeof j->item];
        memcpy(item, j->item, sizeof item);
        if (media_encode_item(src_local, outdir, &mo, plan, item, results, &ev, &j->cancel, &rec,
                              &err) != 0)
            goto out;
        if (rd && fetch_reader_error(rd)->code) {
            /* the demuxer took a failed read for a damaged end: it was the
             * network, so the item fails (and runs again) */
            err = *fetch_reader_error(rd);
            json_decref(rec);
            goto out;
        }
        if (pub.err.code || storage_wait(st, &err) != 0) {
            if (pub.err.code)
                err = pub.err;
            json_decref(rec);
            goto out;
        }
        json_object_set_new(rec, "worker", json_string(w->id));
        if (rd) {
            int64_t nb = 0, nr = 0;
            fetch_reader_stats(rd, &nb, &nr);
            log_info(NULL, "item %s read %lld of the source's %lld bytes in %lld range requests",
                     j->item, (long long)nb, (long long)fetch_reader_size(rd), (long long)nr);
            json_object_set_new(rec, "source_read", json_pack("{sIsIsI}", "bytes", (json_int_t)nb,
                                                              "of", (json_int_t)fetch_reader_size(rd),
                                                              "requests", (json_int_t)nr));
        }
        if (!strcmp(j->item, "audio"))   /* what finalize's job.json says of the source */
            json_object_set_new(rec, "source_info", source_info_json(source, &si));
        j->item_cpu = json_number_value(json_object_get(rec, "cpu_seconds"));
        /* playable while encoding: the EVENT playlists grow with it */
        if (mo.hls)
            wpub_early(j, st, dir, pub.prefix, rec);
        wjob_set_outcome(j, WJOB_COMPLETED, NULL, rec);
        goto out;
    }
    if (!j->item[0] && mo.split != MEDIA_SPLIT_OFF) {
        /* the plan: split into work items, or encode it all here */
        json_t *p = NULL;
        int prc = media_plan(src_local, &mo, &ev, &j->cancel, &p, &err);
        if (rd && fetch_reader_error(rd)->code) {
            /* a failed read, not a damaged source: the plan runs again */
            err = *fetch_reader_error(rd);
            json_decref(p);
            goto out;
        }
        if (prc != 0)
            goto out;
        if (rd) {
            int64_t nb = 0, nr = 0;
            fetch_reader_stats(rd, &nb, &nr);
            log_info(NULL, "the plan read %lld of the source's %lld bytes in %lld range requests",
                     (long long)nb, (long long)fetch_reader_size(rd), (long long)nr);
        }
        if (p) {
            log_info(NULL, "split into %d chunks", media_plan_chunks(p));
            json_object_set_new(p, "source_version", planned_source(&si));
            wjob_set_outcome(j, WJOB_SPLIT, NULL, p);
            goto out;
        }
        if (rd) {
            /* not split: this claim encodes the title whole, from one
             * download (every byte once; the probe's range reads were
             * the index only) */
            fetch_reader_close(rd);
            rd = NULL;
            mo.io = NULL;
            sc.no_hash = 0;
            set_stage(j, "downloading", -1);
            double t3 = ss_mono_s();
            if (source_resolve(source, dir, src_local, sizeof(src_local), &sc, &j->cancel, &si,
                               &err) != 0 ||
                source_check_identity(&si, ident, &err) != 0)
                goto out;
            t_fetch += ss_mono_s() - t3;
            t1 += ss_mono_s() - t3;   /* encode time without the download */
        }
    }
    if (finalize ? media_encode_item(NULL, outdir, &mo, plan, "finalize", results, &ev, &j->cancel,
                                     &output, &err) != 0
                 : media_encode(src_local, outdir, &mo, &ev, &j->cancel, &output, &err) != 0)
        goto out;
    if (pub.err.code) {
        err = pub.err;
        goto out;
    }
    double t_encode = ss_mono_s() - t1;

    /* 4. the rest, manifests last (over the early ones, if any: after a
     * publish still running), then job.json */
    set_stage(j, "uploading", 92);
    double t2 = ss_mono_s();
    double playable_s = wpub_final(j);
    storage_set_manifest_cc(st, STORAGE_CC_FINAL);
    if (publish_rest(j, &pub, &err) != 0)
        goto out;
    json_t *doc = build_job_json(j, &pub, output, dest, t_fetch, t_encode, 0);
    json_object_set_new(json_object_get(doc, "timings"), "first_playable_seconds",
                        playable_s >= 0 ? json_real(round(playable_s * 1000) / 1000) : json_null());
    if (finalize) {
        /* who encoded what: every item, its worker, attempts and CPU seconds */
        json_t *items = json_deep_copy(json_object_get(j->item_in, "items"));
        size_t k;
        json_t *x;
        json_array_foreach(items, k, x) {
            const char *n = json_string_value(json_object_get(x, "name"));
            if (n && !strcmp(n, "finalize")) {
                json_object_set_new(x, "worker", json_string(w->id));
                json_object_set_new(x, "attempts", json_integer(j->attempt));
                /* this job's threads (cpuacct.h): the pooled thread's
                 * own clock counts every job it ran before */
                json_object_set_new(x, "cpu_seconds",
                                    json_real(round(cpuacct_seconds() * 100) / 100));
            }
        }
        json_object_set_new(doc, "items", items ? items : json_array());
        json_object_set(doc, "source",
                        json_object_get(json_object_get(results, "audio"), "source_info"));
    } else {
        json_object_set_new(doc, "source", source_info_json(source, &si));
    }
    char first[256];
    long long routine = avlog_job_end(j->id, first, sizeof(first));
    json_object_set_new(doc, "libav_routine", json_pack("{sI ss?}", "count", (json_int_t)routine,
                                                         "first", routine ? first : NULL));
    json_object_set_new(json_object_get(doc, "timings"), "upload_seconds",
                        json_real(ss_mono_s() - t2));
    /* what was stored before job.json itself */
    storage_stats sst;
    storage_get_stats(st, &sst);
    json_object_set_new(doc, "upload", json_pack("{sIsIsI}", "objects", (json_int_t)sst.objects,
                                                 "bytes", (json_int_t)sst.bytes, "retries",
                                                 (json_int_t)sst.retries));
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    char jpath[8192];
    snprintf(jpath, sizeof(jpath), "%s/job.json", outdir);
    int wrc = s ? ss_write_file_atomic(jpath, s, strlen(s), &err) : ss_fail(&err, SS_ENOMEM, "out of memory");
    free(s);
    if (wrc != 0) {
        json_decref(doc);
        goto out;
    }
    char key[256];
    snprintf(key, sizeof(key), "%sjob.json", pub.prefix);
    if (storage_put(st, jpath, key, &err) != 0) {
        json_decref(doc);
        goto out;
    }
    /* Redis keeps the result without the spec (it has its own copy). */
    json_object_del(doc, "spec");
    wjob_set_outcome(j, WJOB_COMPLETED, NULL, doc);

out:
    if (err.code) {
        wjob_outcome oc = outcome_of(j, &err);
        if (st) {
            storage_abort(st);
            /* a cancelled split job: the whole partial output goes (other
             * items' segments too; each stopping item does it) */
            if (j->item[0] && oc == WJOB_CANCELLED) {
                ss_err de = { 0 };
                /* the master first: no new viewer starts on an output that
                 * is going away (docs/PLAYABLE.md) */
                char mkey[160];
                snprintf(mkey, sizeof(mkey), "%smaster.m3u8", pub.prefix);
                storage_delete_prefix(st, mkey, &de);
                storage_delete_prefix(st, pub.prefix, &de);
            }
        }
        /* a failed finalize's {items}: the items its error names (finish_one) */
        json_t *bad = finalize && oc == WJOB_FAILED && json_object_get(output, "items") ? output : NULL;
        if (bad)
            output = NULL;
        wjob_set_outcome(j, oc, &err, bad);
    }
    if (st) {
        storage_stats ust;
        storage_get_stats(st, &ust);
        wmetrics_uploaded(w, &ust);
        storage_close(st);
    }
    json_decref(output);
    json_decref(pub.sent);
    pthread_mutex_destroy(&pub.mu);
    fetch_reader_close(rd);
    ss_rm_rf(dir);
}

static void *job_thread(void *arg)
{
    wjob *j = arg;
    log_set_job(j->id);
    avlog_job_begin(j->id);
    j->started_mono_ms = ss_mono_ms();
    int64_t ran = -1;
    /* a job that waited in the pool (prefetched) whose lease was not
     * renewed for half of it (the process was paused, Redis is away): it
     * may be another worker's by now, so it does not start here; it is
     * released (a release with a stale token is refused: nothing lost) */
    if (ss_boot_ms() - atomic_load(&j->lease_ok_ms) > j->conf.lease_seconds * 500) {
        int expected = 0;
        atomic_compare_exchange_strong(&j->cancel, &expected, WJOB_CANCEL_DRAIN);
    }
    ss_err perr = { 0 };
    if (!atomic_load(&j->cancel) && wjob_parse_spec(j, &perr) != 0) {
        /* the spec in Redis is not JSON: this attempt fails (permanent) */
        wjob_set_outcome(j, WJOB_FAILED, &perr, NULL);
    } else if (atomic_load(&j->cancel)) {
        /* stopped before it started (a prefetched job that waited for a
         * thread: its lease was lost or is in doubt, it was cancelled, or
         * the worker drains): nothing ran, nothing to undo */
        ss_err err = { 0 };
        ss_fail(&err, SS_ECANCELLED, "stopped before it started");
        wjob_set_outcome(j, outcome_of(j, &err), &err, NULL);
    } else {
        /* the job's CPU group: this thread and every thread it starts */
        cpuacct *cpu = cpuacct_new();
        cpuacct_join(cpu);
        if (j->w->runner)
            j->w->runner(j);
        else
            wjob_run_media(j);
        cpuacct_join(NULL);
        cpuacct_unref(cpu);
        ran = ss_mono_ms() - j->started_mono_ms;
    }
    pthread_mutex_lock(&j->mu);
    wjob_outcome oc = j->outcome;
    j->ran_ms = ran;
    pthread_mutex_unlock(&j->mu);
    double secs = (double)(ss_mono_ms() - j->started_mono_ms) / 1000;
    switch (oc) {
    case WJOB_COMPLETED:
        if (secs * 1000 < WJOB_SHORT_MS) {
            /* counted in the tick's summary line (wq_tick) */
            log_debug(NULL, "completed in %.3fs", secs);
            atomic_fetch_add(&j->w->short_completed, 1);
        } else {
            log_info(NULL, "completed in %.1fs", secs);
        }
        break;
    case WJOB_CANCELLED:
        log_info(NULL, "cancelled after %.1fs", secs);
        break;
    case WJOB_RELEASE:
        log_info(NULL, "stopped after %.1fs to release it to the queue", secs);
        break;
    case WJOB_LOST:
        log_warn(NULL, "stopped after %.1fs: lease lost", secs);
        break;
    case WJOB_SPLIT:
        log_info(NULL, "planned in %.1fs: split into work items", secs);
        break;
    default:
        log_warn(NULL, "failed after %.1fs (%s): %s", secs, ss_code_name(j->err.code), j->err.msg);
    }
    avlog_job_end(j->id, NULL, 0);   /* a job that ended before job.json */
    log_set_job(NULL);
    /* the loop thread only sends the report: its JSON is made here, and
     * the spec (nothing reads it after the job) is freed on the thread
     * that parsed it */
    if (oc == WJOB_COMPLETED)
        wjob_completed_report(j, NULL, NULL);
    json_decref(j->spec);
    j->spec = NULL;
    event_active(j->done_ev, EV_READ, 0);
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    wjob *j = arg;
    wjob_reap_thread(j);
}

/* ---- the job threads ------------------------------------------------------
 * Long-lived: a job is handed to an idle thread (a condition variable), and
 * a new thread is started only when none is idle, so their number is the
 * most jobs that ever ran at once (slots, plus a claim answered while
 * draining). Starting a thread per job cost a clone, a fresh 8 MiB stack
 * (mmap/mprotect/munmap once glibc's stack cache overflowed), TLS set-up
 * and a join per job: 10+ syscalls and two context switches that showed in
 * the queue benchmark (docs/BENCHMARKS.md). The threads end with the
 * worker (wjob_pool_stop). */
struct wjob_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wjob *head, *tail;          /* handed over, not yet taken (wjob.pool_next) */
    int queued;
    int idle;                   /* threads waiting for a job */
    int promised;               /* idle threads signalled for a queued job, not awake yet */
    int stopping;
    pthread_t *threads;
    int nthreads, cap;
};

static void *pool_thread(void *arg)
{
    wjob_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
            p->promised -= p->promised > 0;
        }
        wjob *j = p->head;
        if (!j)
            break;   /* stopping, nothing left */
        p->head = j->pool_next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        job_thread(j);   /* its last touch of j is event_active(done_ev) */
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static wjob_pool *pool_get(worker *w)
{
    if (!w->pool) {
        wjob_pool *p = calloc(1, sizeof(*p));
        if (!p)
            return NULL;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        w->pool = p;
    }
    return w->pool;
}

/* Another thread (the caller holds p->mu). 0 or an errno. */
static int pool_grow(wjob_pool *p)
{
    if (p->nthreads == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        pthread_t *t = realloc(p->threads, (size_t)cap * sizeof(*t));
        if (!t)
            return ENOMEM;
        p->threads = t;
        p->cap = cap;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* libx264 and the decoders keep big frames on the heap, not the stack */
    pthread_attr_setstacksize(&attr, 8 << 20);
    int rc = pthread_create(&p->threads[p->nthreads], &attr, pool_thread, p);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        p->nthreads++;
    return rc;
}

void wjob_pool_stop(worker *w)
{
    wjob_pool *p = w->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    w->pool = NULL;
}

/* Threads that will look at the queue: those on a job (or between two),
 * and the idle ones already signalled (p->mu held). */
static int pool_lookers(const wjob_pool *p)
{
    return p->nthreads - p->idle + p->promised;
}

/* One more thread to look at the queue: an idle one not yet signalled
 * (1: signal it after the unlock), else a new one (0: it looks at the
 * queue before it sleeps; *rc = pool_grow's result). p->mu held. */
static int pool_add_looker(wjob_pool *p, int *rc)
{
    if (p->idle > p->promised) {
        p->promised++;
        return 1;
    }
    *rc = pool_grow(p);
    return 0;
}

int wjob_start(worker *w, wjob *j, int run_limit, ss_err *err)
{
    j->done_ev = event_new(w->base, -1, 0, on_done, j);
    if (!j->done_ev)
        return ss_fail(err, SS_ENOMEM, "event_new failed");
    if (j->item[0] && w->conf.stagger_items && !(j->input_ev = event_new(w->base, -1, 0, on_input_ev, j)))
        return ss_fail(err, SS_ENOMEM, "event_new failed");
    /* a chunk: its run may go on into the next chunk (wq_chain) */
    if (j->item[0] == 'c' && j->conf.chain_chunks && worker_items_per_slot(w, NULL) == 1 &&
        !(j->chain_ev = event_new(w->base, -1, 0, on_chain_ev, j)))
        return ss_fail(err, SS_ENOMEM, "event_new failed");
    wjob_pool *p = pool_get(w);
    if (!p)
        return ss_fail(err, SS_ENOMEM, "cannot start a job thread: out of memory");
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    /* a thread for it unless run_limit threads already look at the queue
     * (short jobs: the one that ends its job takes it): an idle one not
     * yet signalled for another job, else a new one */
    int lookers = pool_lookers(p), wake = 0;
    if (lookers == 0 || lookers < run_limit)
        wake = pool_add_looker(p, &rc);
    if (rc == 0) {
        j->pool_queued_ms = ss_mono_ms();
        j->pool_next = NULL;
        if (p->tail)
            p->tail->pool_next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
    }
    pthread_mutex_unlock(&p->mu);
    /* signalled after the unlock: a thread woken under the lock would
     * only block on it again (a second context switch per job) */
    if (rc == 0 && wake)
        pthread_cond_signal(&p->cv);
    if (rc != 0)
        return ss_fail(err, SS_ENOMEM, "cannot start a job thread: %s", strerror(rc));
    j->thread_started = 1;
    return 0;
}

void wjob_pool_kick(worker *w, int64_t waited_ms, int run_limit)
{
    wjob_pool *p = w->pool;
    if (!p)
        return;
    int wake = 0;
    pthread_mutex_lock(&p->mu);
    if (p->head && ss_mono_ms() - p->head->pool_queued_ms >= waited_ms) {
        int want = p->nthreads - p->idle + p->queued;   /* every queued job on a thread */
        if (want > run_limit)
            want = run_limit;
        int rc = 0;
        for (int have = pool_lookers(p); have < want && rc == 0; have++)
            wake += pool_add_looker(p, &rc);
    }
    pthread_mutex_unlock(&p->mu);
    while (wake-- > 0)
        pthread_cond_signal(&p->cv);
}

int wjob_unqueue(worker *w, wjob *j)
{
    wjob_pool *p = w->pool;
    if (!p || !j->thread_started)
        return 0;
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (wjob **pp = &p->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->pool_next) {
        if (*pp != j)
            continue;
        *pp = j->pool_next;
        if (p->tail == j)
            p->tail = prev;
        p->queued--;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&p->mu);
    if (found) {
        j->thread_started = 0;
        w->slots_live -= j->slot_live;
        j->slot_live = 0;
    }
    return found;
}

void wjob_reap_thread(wjob *j)
{
    /* the job's thread signalled done_ev as its last touch of j and went
     * back to the pool: nothing to join */
    j->thread_started = 0;
    j->thread_done = 1;
    worker *w = j->w;
    wq_chain_unpark(w, j);
    w->slots_live -= j->slot_live;
    j->slot_live = 0;
    pthread_mutex_lock(&j->mu);
    wjob_outcome oc = j->outcome;
    int64_t ran = j->ran_ms;
    pthread_mutex_unlock(&j->mu);
    /* what prefetch goes by: jobs in a row that completed short. A
     * failure (fast ones too: a refused source, broken storage) or any
     * other end breaks the run, so fast failures never turn it on */
    if (oc == WJOB_COMPLETED && ran >= 0 && ran < w->conf.prefetch_max_ms)
        w->short_run += w->short_run < 1000000;
    else
        w->short_run = 0;
    if (oc == WJOB_COMPLETED && ran >= 0)
        w->run_avg_ms += ((double)ran - w->run_avg_ms) / 8;
    if (oc == WJOB_COMPLETED)
        atomic_fetch_add(&j->w->jobs_completed, 1);
    else if (oc == WJOB_CANCELLED)
        atomic_fetch_add(&j->w->jobs_cancelled, 1);
    else if (oc == WJOB_FAILED)
        atomic_fetch_add(&j->w->jobs_failed, 1);
    wmetrics_job_ended(j->w, j, oc);
    wq_finish(j->w, j);
}

int wjob_parse_spec(wjob *j, ss_err *err)
{
    if (!j->spec && j->spec_text) {
        /* spec_text stays until wjob_free: freed on the loop thread that
         * allocated it (a free from another thread takes the loop's malloc
         * arena lock while the loop allocates) */
        j->spec = json_loads(j->spec_text, 0, NULL);
    }
    return j->spec ? 0 : ss_fail(err, SS_EINVAL, "job spec in Redis is not valid JSON");
}

void wjob_completed_report(wjob *j, const char **payload, const char **evdata)
{
    if (!j->rep_built) {
        j->rep_built = 1;   /* once, even when a dump failed ("{}" below) */
        j->rep_payload = json_dumps(j->result, JSON_COMPACT);
        json_t *ev = json_object();
        json_object_set(ev, "output", json_object_get(j->result, "urls"));
        json_object_set(ev, "renditions", json_object_get(j->result, "renditions"));
        j->rep_evdata = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
    }
    if (payload)
        *payload = j->rep_payload ? j->rep_payload : "{}";
    if (evdata)
        *evdata = j->rep_evdata ? j->rep_evdata : "{}";
}

void wjob_free(wjob *j)
{
    if (!j)
        return;
    free(j->spec_text);
    free(j->rep_payload);
    free(j->rep_evdata);
    if (j->done_ev)
        event_free(j->done_ev);
    if (j->input_ev)
        event_free(j->input_ev);
    if (j->chain_ev)
        event_free(j->chain_ev);
    json_decref(j->chain_rec);
    pthread_cond_destroy(&j->chain_cv);
    json_decref(j->spec);
    json_decref(j->item_in);
    json_decref(j->result);
    pthread_mutex_destroy(&j->mu);
    free(j);
}
