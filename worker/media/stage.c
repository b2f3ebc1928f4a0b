/* stage.c — media_encode(): the stages in order (stage.h). Plan: probe,
 * frame rate, segment grid, ladder (per-title: decode.c's windows),
 * quality sampling; encode: one pass (two for two-pass rate control) over
 * the source with a thread per rung; then thumbnails and packaging.
 * Also the job's shared state (errors, warnings, progress) and its one
 * teardown path.
 *
 * Errors: the first error (any thread) is kept in job.err and raises
 * job.abort; everything is joined and freed on every path. */
#include "stage.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cpuacct.h"
#include "log.h"
#include "util.h"

int job_cancelled(job *j)
{
    if (j->cancel && atomic_load(j->cancel))
        atomic_store(&j->abort, 1);
    return atomic_load(&j->abort);
}

int job_fail(job *j, ss_code code, const char *fmt, ...)
{
    pthread_mutex_lock(&j->mu);
    if (j->err.code == SS_OK) {
        va_list ap;
        va_start(ap, fmt);
        j->err.code = code;
        vsnprintf(j->err.msg, sizeof(j->err.msg), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&j->mu);
    atomic_store(&j->abort, 1);
    return -1;
}

int job_fail_err(job *j, const ss_err *e)
{
    return job_fail(j, e->code ? e->code : SS_EINTERNAL, "%s", e->msg);
}

void job_warn(void *ud, const char *msg)
{
    job *j = ud;
    pthread_mutex_lock(&j->mu);
    json_array_append_new(j->warnings, json_string(msg));
    pthread_mutex_unlock(&j->mu);
    if (j->ev && j->ev->warning)
        j->ev->warning(j->ev->ud, msg);
}

void job_progress(job *j, const char *stage, double f)
{
    if (f < 0)
        f = 0;
    if (f > 1)
        f = 1;
    if (j->ev && j->ev->progress)
        j->ev->progress(j->ev->ud, stage, f);
}

/* Is segment seg one whose quality is measured? */
int job_q_measured(const job *j, int64_t seg)
{
    for (int i = 0; i < j->q_nsegs; i++)
        if (j->q_segs[i] == seg)
            return 1;
    return 0;
}

/* frameq stop callback: the job is aborting (or cancelled). */
int job_stop_cb(void *ud)
{
    return job_cancelled(ud);
}
double stage_seconds_since(double t)
{
    return round((ss_mono_s() - t) * 1000.0) / 1000.0;
}

/* Which output frames are measured: Q_SHARE of the segments (at least
 * one, at most Q_SEGMENTS), spread evenly over the title, and in each of
 * them every q_fstep-th frame starting half a step in (so the IDR, which
 * has its own quality, is not over-weighted): about Q_FRAMES frames per
 * rung in all. Only the measured segments are decoded, so measuring costs
 * about a quarter of a decode of each rung plus Q_FRAMES comparisons at
 * the display size. */
#define Q_SHARE 0.25
#define Q_FRAMES 48

static void quality_sampling(job *j)
{
    int keyint = plan_keyint(j->fps_num, j->fps_den, j->seg_num, j->seg_den);
    double d = j->pi.vduration > 0 ? j->pi.vduration : j->pi.duration;
    int64_t nseg = d > 0 ? (int64_t)ceil(d * j->fps_num / j->fps_den / keyint - 1e-6) : 1;
    if (nseg < 1)
        nseg = 1;
    int m = (int)lround(nseg * Q_SHARE);
    if (m < 1)
        m = 1;
    if (m > Q_SEGMENTS)
        m = Q_SEGMENTS;
    j->q_nsegs = m;
    for (int i = 0; i < m; i++)
        j->q_segs[i] = (int64_t)((i + 0.5) * (double)nseg / m);
    int per_seg = (Q_FRAMES + m - 1) / m;
    j->q_fstep = (keyint + per_seg - 1) / per_seg;
}


/* The one teardown path: free what a pass opened (safe on a half-opened
 * one). final: also what the job keeps across passes (warnings, the
 * per-title report, the lock); otherwise the counters are reset for the
 * next pass and the plan, probe facts, warnings and errors stay. */
void job_release(job *j, int final)
{
    for (int i = 0; i < j->nr; i++)
        rung_release(&j->rungs[i]);
    memset(j->rungs, 0, sizeof(j->rungs));
    j->nr = 0;
    for (int i = 0; i < j->nau; i++)
        audio_release(&j->au[i]);
    j->nau = 0;
    avfilter_graph_free(&j->vg);
    av_frame_free(&j->pre_hold[0]);
    av_frame_free(&j->pre_hold[1]);
    sws_freeContext(j->fix);
    j->fix = NULL;
    avcodec_free_context(&j->vdec);
    thumbs_free(&j->th);
    subs_free(&j->sb);
    media_close_input(&j->ic);
    pt_free(&j->pt);
    j->vsrc = j->vsink = NULL;
    if (final) {
        json_decref(j->warnings);
        json_decref(j->pt_report);
        pthread_mutex_destroy(&j->mu);
        pthread_mutex_destroy(&j->tok_mu);
        pthread_cond_destroy(&j->tok_cv);
        return;
    }
    j->vframes = j->first_out = j->dec_errors = 0;
    j->vts_shift = j->ts_fixed = 0;
    j->range_done = 0;
    j->pre_decoded = j->pre_filtered = 0;
    j->last_progress = 0;
    atomic_store(&j->abort, 0);
}

static int tokens_clamp(const job *j, int n)
{
    return n < 1 ? 1 : n > j->thb.tokens ? j->thb.tokens : n;
}

void job_tokens_take(job *j, int n)
{
    if (!j->thb.tokens)
        return;
    n = tokens_clamp(j, n);
    pthread_mutex_lock(&j->tok_mu);
    while (j->tok_free < n)
        pthread_cond_wait(&j->tok_cv, &j->tok_mu);
    j->tok_free -= n;
    pthread_mutex_unlock(&j->tok_mu);
}

void job_tokens_give(job *j, int n)
{
    if (!j->thb.tokens)
        return;
    n = tokens_clamp(j, n);
    pthread_mutex_lock(&j->tok_mu);
    j->tok_free += n;
    pthread_cond_broadcast(&j->tok_cv);
    pthread_mutex_unlock(&j->tok_mu);
}

/* An audio-only title's poster (and one-tile sprite) from its embedded
 * cover art, when there is one; a cover that will not decode is a warning. */
static void cover_thumbs(job *j)
{
    AVStream *st = j->ic->streams[j->pi.cover_idx];
    const AVCodec *dc = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *d = dc ? avcodec_alloc_context3(dc) : NULL;
    AVFrame *f = av_frame_alloc(), *y = av_frame_alloc();
    struct SwsContext *sws = NULL;
    ss_err e = { 0 };
    int ok = d && f && y && avcodec_parameters_to_context(d, st->codecpar) >= 0 &&
             avcodec_open2(d, dc, NULL) >= 0 && avcodec_send_packet(d, &st->attached_pic) >= 0 &&
             avcodec_send_packet(d, NULL) >= 0 && avcodec_receive_frame(d, f) >= 0 &&
             f->width > 0 && f->height > 0 && f->width <= 16384 && f->height <= 16384;
    if (ok) {
        y->width = f->width & ~1;
        y->height = f->height & ~1;
        y->format = AV_PIX_FMT_YUV420P;
        sws = sws_getContext(f->width, f->height, f->format, y->width, y->height, AV_PIX_FMT_YUV420P,
                             SWS_BICUBIC, NULL, NULL, NULL);
        ok = sws && y->width > 0 && y->height > 0 && av_frame_get_buffer(y, 0) >= 0;
    }
    if (ok) {
        sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, y->data,
                  y->linesize);
        y->sample_aspect_ratio = (AVRational){ 1, 1 };
        j->th = thumbs_new(y->width, y->height, 0, j->o->thumb_interval > 0 ? j->o->thumb_interval : 10.0);
        ok = j->th && !thumbs_feed(j->th, y, 0.0, &e);
        if (!ok)
            thumbs_free(&j->th);
    }
    if (!ok)
        job_warn(j, "the embedded cover art would not decode: no poster");
    sws_freeContext(sws);
    av_frame_free(&f);
    av_frame_free(&y);
    avcodec_free_context(&d);
}

/* An audio-only title is timed from its audio stream's start. */
static void audio_only_origin(job *j)
{
    AVStream *st = j->ic->streams[j->pi.aidx];
    if (st->start_time != AV_NOPTS_VALUE)
        j->t0s = st->start_time * av_q2d(st->time_base);
    else if (j->ic->start_time != AV_NOPTS_VALUE)
        j->t0s = j->ic->start_time / (double)AV_TIME_BASE;
}

/* One pass over the source: open the decoders and encoders, run the rung
 * threads, decode everything, join. The first pass of two-pass rate
 * control only writes x264 statistics (no audio, thumbnails, subtitles or
 * segments). */
int stage_run_pass(job *j, ss_err *e, double *cpu_main)
{
    const media_opts *opts = j->o;
    int nstarted = 0;
    plan_thread_budget(&j->lad, opts->threads, ss_ncpus(), &j->thb);
    j->tok_free = j->thb.tokens;
    if (j->pi.audio_only)
        audio_only_origin(j);
    else if (video_open(j, e))
        return -1;
    if (j->pass != 1 && j->mode != STAGE_CHUNK && j->pi.aidx >= 0 && audio_open(j, e))
        return -1;
    /* x264 threads per rung: the budget split by pixel share, rounded up.
     * The top rung carries about half of all the work; with a single x264
     * thread it would be a critical path that the other core cannot help
     * with once the smaller rungs have caught up (measured: 1.5 instead of
     * 1.8 busy cores on 2 cores), so it gets frame threads and the small
     * rungs run single-threaded. Below the machine's cores the job's CPU
     * tokens keep it to about `threads` busy cores (plan.h). */
    const int *th = j->thb.x264;
    /* the AV1 ladder (spec codecs): the same rungs, frames and grid */
    j->nr = opts->av1 && j->pass != 1 ? 2 * j->lad.n : j->lad.n;
    for (int i = 0; i < j->nr; i++) {
        rung *g = &j->rungs[i];
        g->j = j;
        g->p = j->lad.rungs[i % j->lad.n];
        g->codec = i < j->lad.n ? &enc_x264 : &enc_svtav1;
        if (i >= j->lad.n)
            plan_av1_rung(&j->lad.rungs[i - j->lad.n], &g->p);
        frameq_init(&g->q);
        g->chunk = j->chain_k;
        atomic_init(&g->snap_chunk, -1);
    }
    for (int i = 0; i < j->nr; i++)
        if (rung_open(j, &j->rungs[i], th[i % j->lad.n], e))
            return -1;
    if (opts->thumbnails && j->pass != 1 && j->mode != STAGE_CHUNK && j->pi.audio_only &&
        j->pi.cover_idx >= 0)
        cover_thumbs(j);
    else if (opts->thumbnails && j->pass != 1 && j->mode != STAGE_CHUNK && !j->pi.audio_only)
        j->th = thumbs_new(j->pi.dw, j->pi.dh, j->pi.duration,
                           opts->thumb_interval > 0 ? opts->thumb_interval : 10.0);
    if (j->pi.nsubs && j->pass != 1 && j->mode != STAGE_CHUNK)
        j->sb = subs_new(j->ic, &j->pi, j->t0s, job_warn, j);

    for (int i = 0; i < j->nr; i++) {
        if (pthread_create(&j->rungs[i].th, NULL, rung_main, &j->rungs[i])) {
            ss_fail(e, SS_EINTERNAL, "cannot start a thread");
            atomic_store(&j->abort, 1);
            break;
        }
        j->rungs[i].started = 1;
        nstarted++;
    }
    job_progress(j, j->pass == 1 ? "analysing" : "encoding", 0);
    int dr = 0;
    if (nstarted == j->nr) {
        job_tokens_take(j, 1);
        j->dec_tok = 1;
        dr = decode_all(j, e);
        if (j->dec_tok)
            job_tokens_give(j, 1);
        j->dec_tok = 0;
        if (dr)
            atomic_store(&j->abort, 1);
        for (int i = 0; i < j->nr; i++)
            frameq_put(&j->rungs[i].q, NULL, job_stop_cb, j);
        /* a chunk's last input is queued: the encoders drain (a slot may
         * start its next item now, docs/SPLIT.md) */
        if (!dr && j->mode == STAGE_CHUNK && j->pass != 1 && j->ev && j->ev->input_done)
            j->ev->input_done(j->ev->ud);
    }
    *cpu_main = ss_cpu_s(RUSAGE_THREAD);
    for (int i = 0; i < j->nr; i++)
        if (j->rungs[i].started)
            pthread_join(j->rungs[i].th, NULL);
    if (j->cancel && atomic_load(j->cancel)) {
        ss_err_clear(e);
        ss_fail(e, SS_ECANCELLED, "cancelled");
        return -1;
    }
    if (j->err.code && e->code == SS_OK)
        *e = j->err;
    if (dr || e->code)
        return -1;
    return 0;
}

void stage_init(job *j, const media_opts *opts, const media_events *ev, const atomic_int *cancel,
                const char *outdir)
{
    static const atomic_int never = 0;
    memset(j, 0, sizeof(*j));
    j->o = opts;
    j->ev = ev;
    j->cancel = cancel ? cancel : &never;
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->tok_mu, NULL);
    pthread_cond_init(&j->tok_cv, NULL);
    j->warnings = json_array();
    snprintf(j->outdir, sizeof(j->outdir), "%s", outdir);
    snprintf(j->log_job, sizeof(j->log_job), "%s", log_get_job());
}

/* Options the source cannot honour are said in warnings, never dropped
 * silently (docs/MEDIA.md): picture options of an audio-only title, 5.1
 * asked of stereo tracks. */
static void warn_ignored(job *j)
{
    const media_opts *o = j->o;
    const char *why[3];
    int n = 0;
    if (j->pi.audio_only && o->mp4_height)
        why[n++] = "mp4 ignored (no picture to download)";
    if (j->pi.audio_only && o->av1)
        why[n++] = "codecs av1 ignored (no video to encode)";
    if (j->pi.audio_only && o->ladder != MEDIA_LADDER_AUTO)
        why[n++] = "the ladder ignored (no video rungs)";
    for (int i = 0; i < n; i++) {
        char m[160];
        snprintf(m, sizeof(m), "source has no video: %s", why[i]);
        job_warn(j, m);
    }
    int sel[PROBE_MAX_AUDIO], k = probe_pick_audio(&j->pi, o, sel, PROBE_MAX_AUDIO), multi = 0;
    for (int i = 0; i < k; i++)
        multi |= j->pi.audio[sel[i]].channels >= 6;
    if (o->surround && k > 0 && !multi)
        job_warn(j, "audio.surround: no published audio track has 5.1 or more channels: stereo only");
}

int stage_plan(job *j, const char *src, json_t *res, ss_err *e)
{
    const media_opts *opts = j->o;
    job_progress(j, "probing", 0);
    if (probe_open(src, opts, &j->ic, &j->pi, e))
        return -1;
    json_object_set_new(res, "source", probe_json(&j->pi));
    if (j->pi.nbitmap_subs) {
        char m[128];
        snprintf(m, sizeof(m), "%d bitmap subtitle stream(s) skipped: only text subtitles are converted",
                 j->pi.nbitmap_subs);
        job_warn(j, m);
    }
    if (j->pi.hdr != PLAN_HDR_NONE) {
        char m[200];
        snprintf(m, sizeof(m), "source is HDR (%s, %d-bit): tone-mapped to SDR BT.709 for the "
                 "H.264 ladder", j->pi.hdr == PLAN_HDR_PQ ? "PQ / SMPTE ST 2084" : "HLG / ARIB STD-B67",
                 j->pi.bit_depth);
        job_warn(j, m);
    }
    plan_segment_q(opts->segment_seconds > 0 ? opts->segment_seconds : 4.0, &j->seg_num, &j->seg_den);
    warn_ignored(j);
    if (j->pi.audio_only) {   /* no ladder: the audio renditions alone */
        j->fps_num = j->fps_den = 1;
        j->lad.n = 0;
        return 0;
    }
    plan_fps(j->pi.fps_avg, j->pi.fps_r, &j->fps_num, &j->fps_den);
    plan_src ps = { j->pi.width, j->pi.height, j->pi.sar_num, j->pi.sar_den, j->pi.rotation,
                    (double)j->fps_num / j->fps_den };
    if (plan_ladder_make(&ps, opts, &j->lad) < 1) {
        ss_fail(e, SS_EMEDIA, "source picture size %dx%d is unusable", j->pi.width, j->pi.height);
        return -1;
    }
    /* A damaged header (or an extreme aspect ratio) can describe a picture
     * libx264 refuses; say so instead of failing in the encoder. Per-title
     * probes encode the display size whatever the ladder. */
    int big_w = 0, big_h = 0;
    char big[48] = "";
    for (int i = 0; i < j->lad.n && !big[0]; i++)
        if (j->lad.rungs[i].width > PLAN_MAX_SIDE || j->lad.rungs[i].height > PLAN_MAX_SIDE) {
            snprintf(big, sizeof(big), "rung %s", j->lad.rungs[i].name);
            big_w = j->lad.rungs[i].width;
            big_h = j->lad.rungs[i].height;
        }
    if (!big[0] && opts->ladder == MEDIA_LADDER_PER_TITLE) {
        plan_top_size(&ps, &big_w, &big_h);
        if (big_w > PLAN_MAX_SIDE || big_h > PLAN_MAX_SIDE)
            snprintf(big, sizeof(big), "per-title probe at the display size");
    }
    if (big[0]) {
        ss_fail(e, SS_EMEDIA,
                "source picture %dx%d (shown at %dx%d) is too large: %s would be %dx%d, "
                "over H.264's %d pixels a side",
                j->pi.width, j->pi.height, j->pi.dw, j->pi.dh, big, big_w, big_h, PLAN_MAX_SIDE);
        return -1;
    }
    if (j->lad.notes[0])
        job_warn(j, j->lad.notes);
    if (!opts->no_quality) {
        plan_top_size(&ps, &j->qref_w, &j->qref_h);
        quality_sampling(j);
    }
    return 0;
}

int stage_passes(job *j, const char *src, ss_err *e, double *cpu_main)
{
    const media_opts *opts = j->o;
    if (opts->rate_control == MEDIA_RC_TWO_PASS) {
        snprintf(j->stats_dir, sizeof(j->stats_dir), "%s/ss-2pass-XXXXXX",
                 opts->scratch_dir && opts->scratch_dir[0] ? opts->scratch_dir : "/tmp");
        if (!mkdtemp(j->stats_dir)) {
            j->stats_dir[0] = '\0';
            ss_fail(e, SS_EIO, "cannot make a folder for two-pass statistics in %s: %s",
                    opts->scratch_dir ? opts->scratch_dir : "/tmp", strerror(errno));
            return -1;
        }
        j->pass = 1;
        if (stage_run_pass(j, e, cpu_main))
            return -1;
        job_release(j, 0);
        if (probe_open(src, opts, &j->ic, &j->pi, e))
            return -1;
        j->pass = 2;
    }
    if (stage_run_pass(j, e, cpu_main))
        return -1;
    return 0;
}

void stage_end(job *j, int ret, ss_err *e, ss_err *err, const char *what)
{
    if (ret && err) {
        if (e->code == SS_OK)
            ss_fail(e, SS_EINTERNAL, "%s", what);
        ss_fail(err, e->code, "%s", e->msg);
    }
    if (j->stats_dir[0])
        ss_rm_rf(j->stats_dir);
    job_release(j, 1);
}

int media_encode(const char *src, const char *outdir, const media_opts *opts,
                 const media_events *ev, const atomic_int *cancel, json_t **result, ss_err *err)
{
    media_opts defaults;
    if (!opts) {
        media_opts_default(&defaults);
        opts = &defaults;
    }
    *result = NULL;
    job J;
    job *j = &J;
    stage_init(j, opts, ev, cancel, outdir);
    double t_start = ss_mono_s(), t_probe = 0, t_encode = 0;
    json_t *res = json_object();
    ss_err e = { 0 };
    int ret = -1;
    double cpu_main = 0;

    if (stage_plan(j, src, res, &e) || ss_mkdir_p(outdir, &e))
        goto out;
    items_warn_unsplit(j);
    t_probe = stage_seconds_since(t_start);
    job_progress(j, "probing", 1);

    if (opts->ladder == MEDIA_LADDER_PER_TITLE && !j->pi.audio_only) {
        if (decode_per_title(j, &e))
            goto out;
        job_release(j, 0);
        if (probe_open(src, opts, &j->ic, &j->pi, &e))
            goto out;
    }

    if (stage_passes(j, src, &e, &cpu_main))
        goto out;
    double want = j->pi.vduration > 0 ? j->pi.vduration : j->pi.duration;
    if (!j->pi.audio_only && want > 1.0 && j->vframes * (double)j->fps_den / j->fps_num < 0.9 * want) {
        char m[200];
        snprintf(m, sizeof(m), "source ended early (damaged or cut tail): encoded the first %.1f s "
                 "of the %.1f s it announces", j->vframes * (double)j->fps_den / j->fps_num, want);
        job_warn(j, m);
    }
    t_encode = stage_seconds_since(t_start) - t_probe - round(j->t_analysis * 1000) / 1000;
    job_progress(j, "encoding", 1);
    job_progress(j, "packaging", 0);
    double t_pack0 = ss_mono_s();
    if (j->th) {
        json_t *ti = NULL;
        if (thumbs_finish(j->th, outdir, ev, &ti, &e))
            goto out;
        json_object_set_new(res, "thumbnails", ti ? ti : json_null());
    } else {
        json_object_set_new(res, "thumbnails", json_null());
    }
    pkg_records rec;
    package_from_job(j, &rec);
    rec.subarr = json_array();
    if (j->sb)
        rec.ntexts = subs_finish(j->sb, outdir, ev, rec.texts, PROBE_MAX_SUBS, rec.subarr,
                                 (double)j->vframes * j->fps_den / j->fps_num, &e);
    int pr = rec.ntexts < 0 ? -1 : package_write(j, &rec, res, &e);
    json_decref(rec.subarr);
    if (pr)
        goto out;
    if (opts->mp4_height && j->lad.n && download_mp4(j, res, &e))
        goto out;
    job_progress(j, "packaging", 1);
    json_object_set(res, "warnings", j->warnings);
    json_t *cpu = json_object();
    /* the job's threads and the ones they started (libx264's, libav*'s),
     * not the other jobs of this worker (cpuacct.h) */
    json_object_set_new(cpu, "job", json_real(round(cpuacct_seconds() * 100) / 100));
    json_object_set_new(cpu, "demux_filter_audio", json_real(round(cpu_main * 100) / 100));
    for (int i = 0; i < j->nr; i++)
        json_object_set_new(cpu, j->rungs[i].p.name, json_real(round(j->rungs[i].cpu * 100) / 100));
    json_object_set_new(res, "timings",
                        json_pack("{s:f, s:f, s:f, s:f, s:o}", "probe", t_probe, "analysis",
                                  round(j->t_analysis * 1000) / 1000, "encode", t_encode, "package",
                                  stage_seconds_since(t_pack0), "cpu_seconds", cpu));
    *result = res;
    res = NULL;
    ret = 0;
out:
    json_decref(res);
    stage_end(j, ret, &e, err, "encode failed");
    return ret;
}