/* items.c — one title across workers (media.h): the plan item decides
 * whether and how a title is split and writes everything the other items
 * need into one JSON object; a chunk item encodes a time range of the
 * video for every rung; the audio item the audio, subtitles and
 * thumbnails; finalize turns the items' records into the playlists, the
 * MPD and the output object, through the same package.c as one process.
 *
 * Chunks line up as if one encoder had run: boundaries on the segment
 * grid, the CFR grid anchored at the video start in every chunk, an IDR at
 * each chunk's first frame (it is a segment boundary), segment numbers and
 * tfdt continued (cmaf_set_base), and libx264's `stitchable` so that every
 * chunk makes the same init segment: the plan's `init_chunk` (chunk 0)
 * stores it, the others only record its CRC (finalize checks them).
 *
 * Records (JSON, kept by the caller, e.g. in Redis):
 *   chunk:  {frames, seconds, cpu_seconds, warnings, preroll: {decoded,
 *            filtered, cpu_seconds} (before its range: frames decoded, frames
 *            out of the pre-filter, CPU of the decoding thread from the
 *            source's open), rungs: [{name, codecs,
 *            frames, es_bytes, bytes, init_bytes, init_crc, timescale,
 *            segs: [[start, duration, bytes, iframe_end], ...], measured,
 *            mse_sum, ssim_sum, nq}], continued (true: a run that went on
 *            from the chunk before encoded it, chain.c; preroll all zeros)}
 *   audio:  {frames (the video length it was cut to), seconds,
 *            cpu_seconds, warnings, audio: [{name, channels, default,
 *            init_bytes, bytes, timescale, segs, lang, label, role,
 *            source_stream}] (every rendition), texts: [{name, lang, label}],
 *            subtitles: [...], thumbnails: null | {...}} */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cpuacct.h"
#include "util.h"

/* ---- the plan ---------------------------------------------------------- */

static json_t *rung_json(const plan_rung *r)
{
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:i, s:i}", "name",
                     r->name, "width", r->width, "height", r->height, "maxrate_kbps",
                     r->maxrate_kbps, "target_kbps", r->target_kbps, "bufsize_kbits",
                     r->bufsize_kbits, "crf", r->crf, "level", r->level, "crf_exact", r->crf_exact,
                     "av1_crf", r->av1_crf, "av1_target_kbps", r->av1_target_kbps,
                     "av1_maxrate_kbps", r->av1_maxrate_kbps);
}

static int jint(const json_t *o, const char *k)
{
    return (int)json_integer_value(json_object_get(o, k));
}

static int64_t jint64(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static int plan_load(job *j, const json_t *plan, ss_err *e)
{
    const json_t *r = json_object_get(plan, "rungs");
    if (json_integer_value(json_object_get(plan, "version")) != 1 || !json_is_array(r) ||
        json_array_size(r) < 1 || json_array_size(r) > MEDIA_MAX_RUNGS)
        return ss_fail(e, SS_EINVAL, "the job's plan is not one this worker reads");
    j->fps_num = jint(plan, "fps_num");
    j->fps_den = jint(plan, "fps_den");
    j->seg_num = jint(plan, "seg_num");
    j->seg_den = jint(plan, "seg_den");
    if (j->fps_num <= 0 || j->fps_den <= 0 || j->seg_num <= 0 || j->seg_den <= 0)
        return ss_fail(e, SS_EINVAL, "the job's plan has no frame rate or segment length");
    memset(&j->lad, 0, sizeof(j->lad));
    size_t i;
    json_t *x;
    json_array_foreach(r, i, x) {
        plan_rung *p = &j->lad.rungs[i];
        ss_strlcpy(p->name, json_string_value(json_object_get(x, "name")) ?: "", sizeof(p->name));
        p->width = jint(x, "width");
        p->height = jint(x, "height");
        p->maxrate_kbps = jint(x, "maxrate_kbps");
        p->target_kbps = jint(x, "target_kbps");
        p->bufsize_kbits = jint(x, "bufsize_kbits");
        p->crf = jint(x, "crf");
        p->level = jint(x, "level");
        p->crf_exact = json_number_value(json_object_get(x, "crf_exact"));
        p->av1_crf = json_number_value(json_object_get(x, "av1_crf"));
        p->av1_target_kbps = jint(x, "av1_target_kbps");
        p->av1_maxrate_kbps = jint(x, "av1_maxrate_kbps");
        if (!p->name[0] || p->width < 2 || p->height < 2 || p->width > PLAN_MAX_SIDE ||
            p->height > PLAN_MAX_SIDE)
            return ss_fail(e, SS_EINVAL, "the job's plan has a bad rung");
    }
    j->lad.n = (int)json_array_size(r);
    const json_t *q = json_object_get(plan, "quality");
    j->q_nsegs = 0;
    if (json_is_object(q)) {
        j->qref_w = jint(q, "width");
        j->qref_h = jint(q, "height");
        j->q_fstep = jint(q, "frame_step");
        json_array_foreach(json_object_get(q, "segments"), i, x) {
            if (j->q_nsegs < Q_SEGMENTS)
                j->q_segs[j->q_nsegs++] = json_integer_value(x);
        }
        if (j->q_fstep < 1)
            j->q_nsegs = 0;
    }
    json_t *pt = json_object_get(plan, "per_title");
    json_decref(j->pt_report);
    j->pt_report = json_is_object(pt) ? json_incref(pt) : NULL;
    return 0;
}

/* What keeps a title in one process although split is on (NULL:
 * nothing), docs/SPLIT.md: the MP4 download is remuxed from the finished
 * renditions' files, which finalize (records only) does not have; an AV1
 * chunk can get no frame (a last chunk past the real end) and SVT-AV1
 * 1.4.1 never returns from closing such an encoder. Every audio rendition
 * splits like the rest (the audio item encodes them all). */
static const char *unsplit_media(const job *j)
{
    return j->o->mp4_height ? "an MP4 download" : NULL;
}

/* The chunks a split of the probed title would make (fewer than 2: not
 * split). */
static int split_chunks(job *j, plan_chunk *ch, int *per, double *dur)
{
    const media_opts *opts = j->o;
    double secs = opts->split == MEDIA_SPLIT_SECONDS ? opts->split_seconds
                  : opts->chunk_seconds > 0          ? opts->chunk_seconds
                                                     : MEDIA_CHUNK_SECONDS;
    *per = plan_chunk_segments(secs, j->seg_num, j->seg_den);
    *dur = video_announced_end(j);
    /* an explicit chunk length is kept; auto starts with short chunks */
    int auto_split = opts->split != MEDIA_SPLIT_SECONDS;
    return plan_chunks(*dur, j->fps_num, j->fps_den, j->seg_num, j->seg_den, *per,
                       auto_split ? 3 : 2, auto_split, ch);
}

void items_warn_unsplit(job *j)
{
    const char *why = unsplit_media(j);
    if (j->o->split == MEDIA_SPLIT_OFF || j->pi.audio_only || !why ||
        (j->ic->iformat->flags & AVFMT_TS_DISCONT))
        return;
    plan_chunk ch[PLAN_MAX_CHUNKS];
    int per;
    double dur;
    int n = split_chunks(j, ch, &per, &dur);
    if (n < 2)
        return;
    char m[240];
    snprintf(m, sizeof(m), "not split across workers (it would make %d chunks): a job with %s is "
             "encoded by one worker for now", n, why);
    job_warn(j, m);
}

int media_plan_chunks(const json_t *plan)
{
    return (int)json_array_size(json_object_get(plan, "chunks"));
}

int media_plan(const char *src, const media_opts *opts, const media_events *ev,
               const atomic_int *cancel, json_t **plan, ss_err *err)
{
    media_opts defaults;
    if (!opts) {
        media_opts_default(&defaults);
        opts = &defaults;
    }
    *plan = NULL;
    job J, *j = &J;
    stage_init(j, opts, ev, cancel, opts->scratch_dir ? opts->scratch_dir : "/tmp");
    double t0 = ss_mono_s(), c0 = cpuacct_seconds();   /* per-title probes' threads too */
    json_t *res = json_object();
    ss_err e = { 0 };
    int ret = -1;
    if (opts->split == MEDIA_SPLIT_OFF) {
        ret = 0;
        goto out;
    }
    if (stage_plan(j, src, res, &e))
        goto out;
    /* one process: media_encode() says why in a warning */
    if (j->pi.audio_only || unsplit_media(j)) {
        ret = 0;
        goto out;
    }
    /* Formats with timestamp discontinuities (MPEG-TS/PS, FLV) are timed by
     * what came before (video.c's repair), which a chunk cannot know: one
     * process encodes them. */
    if (j->ic->iformat->flags & AVFMT_TS_DISCONT) {
        ret = 0;
        goto out;
    }
    plan_chunk ch[PLAN_MAX_CHUNKS];
    int per;
    double dur;
    int n = split_chunks(j, ch, &per, &dur);
    if (n < 2) {
        ret = 0;
        goto out;
    }
    double t_probe = stage_seconds_since(t0);
    if (opts->ladder == MEDIA_LADDER_PER_TITLE && decode_per_title(j, &e))
        goto out;
    json_t *p = json_object();
    json_object_set_new(p, "version", json_integer(1));
    json_object_set_new(p, "fps_num", json_integer(j->fps_num));
    json_object_set_new(p, "fps_den", json_integer(j->fps_den));
    json_object_set_new(p, "seg_num", json_integer(j->seg_num));
    json_object_set_new(p, "seg_den", json_integer(j->seg_den));
    json_t *rs = json_array();
    for (int i = 0; i < j->lad.n; i++)
        json_array_append_new(rs, rung_json(&j->lad.rungs[i]));
    json_object_set_new(p, "rungs", rs);
    json_t *cs = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(cs, json_pack("{s:I, s:I, s:I}", "seg0", (json_int_t)ch[i].seg0, "f0",
                                            (json_int_t)ch[i].f0, "f1", (json_int_t)ch[i].f1));
    json_object_set_new(p, "chunks", cs);
    json_object_set_new(p, "chunk_segments", json_integer(per));
    json_object_set_new(p, "init_chunk", json_integer(0));
    json_object_set_new(p, "announced_duration", json_real(dur));
    json_object_set_new(p, "alang", json_string(j->pi.alang));
    json_object_set(p, "source", json_object_get(res, "source"));
    json_object_set(p, "warnings", j->warnings);
    if (j->pt_report)
        json_object_set(p, "per_title", j->pt_report);
    if (j->q_nsegs > 0) {
        json_t *segs = json_array();
        for (int i = 0; i < j->q_nsegs; i++)
            json_array_append_new(segs, json_integer(j->q_segs[i]));
        json_object_set_new(p, "quality", json_pack("{s:i, s:i, s:o, s:i}", "width", j->qref_w,
                                                    "height", j->qref_h, "segments", segs,
                                                    "frame_step", j->q_fstep));
    }
    json_object_set_new(p, "timings",
                        json_pack("{s:f, s:f, s:f}", "probe", t_probe, "analysis",
                                  round(j->t_analysis * 1000) / 1000, "cpu_seconds",
                                  round((cpuacct_seconds() - c0) * 100) / 100));
    *plan = p;
    ret = 0;
out:
    json_decref(res);
    stage_end(j, ret, &e, err, "planning failed");
    return ret;
}

/* ---- chunk and audio items -------------------------------------------- */

static json_t *segs_json(const pkg_track *t)
{
    return chain_segs_json(t->segs, t->nsegs);
}

/* The record of the run's last chunk (chain.c: a run that went on counts
 * only what came after its last chunk boundary). */
static json_t *chunk_record(job *j)
{
    json_t *rs = json_array();
    int64_t frames = j->vframes - j->chain_vf;
    for (int i = 0; i < j->nr; i++) {
        rung *g = &j->rungs[i];
        json_array_append_new(rs, chain_rung_json(j, g, g->frames - j->chain_vf, g->es_bytes));
    }
    return json_pack("{s:I, s:o}", "frames", (json_int_t)frames, "rungs", rs);
}

/* Every audio rendition with the segments written so far, with what the
 * probe says of it, as package.c writes them for one process. */
static json_t *audio_tracks_json(job *j)
{
    pkg_records pr;
    package_from_job(j, &pr);
    json_t *arr = json_array();
    for (int i = 0; i < pr.naudio; i++) {
        const pkg_track *t = &pr.audio[i];
        json_array_append_new(arr, json_pack("{s:s, s:i, s:b, s:I, s:I, s:i, s:o, s:s, s:s, s:s, s:i}",
                                             "name", t->name, "channels", t->channels, "default",
                                             t->is_default, "init_bytes", (json_int_t)t->init_bytes,
                                             "bytes", (json_int_t)pr.audio_bytes[i], "timescale",
                                             t->timescale, "segs", segs_json(t), "lang", t->lang,
                                             "label", t->label, "role", t->role, "source_stream",
                                             pr.audio_src[i]));
    }
    return arr;
}

/* Playable while encoding (docs/PLAYABLE.md "Schedule"): the early master
 * needs only the audio of chunk 0, not the whole title's, so the audio
 * item reports what it has written: after its first 2 segments, then every
 * MEDIA_PARTIAL_SECONDS. Every segment listed was announced (file_ready)
 * before; the caller stores them before the record leaves. */
void audio_item_progress(job *j)
{
    if (!j->ev || !j->ev->partial || j->nau < 1)
        return;
    pkg_track t;
    cmaf_track(j->au[0].cm, &t);
    double now = ss_mono_s();
    if (t.nsegs < 2 || t.nsegs <= j->partial_segs ||
        (j->partial_segs && now - j->partial_t < MEDIA_PARTIAL_SECONDS))
        return;
    json_t *rec = json_pack("{s:I, s:b, s:o}", "frames", (json_int_t)j->vframes, "partial", 1,
                            "audio", audio_tracks_json(j));
    if (rec)
        j->ev->partial(j->ev->ud, rec);
    json_decref(rec);
    j->partial_t = ss_mono_s();
    j->partial_segs = t.nsegs;
}

static json_t *audio_record(job *j, ss_err *e)
{
    json_t *rec = json_object();
    json_object_set_new(rec, "audio", audio_tracks_json(j));
    json_t *subarr = json_array(), *texts = json_array();
    if (j->sb) {
        pkg_text tx[PROBE_MAX_SUBS];
        int n = subs_finish(j->sb, j->outdir, j->ev, tx, PROBE_MAX_SUBS, subarr,
                            (double)j->vframes * j->fps_den / j->fps_num, e);
        if (n < 0) {
            json_decref(subarr);
            json_decref(texts);
            json_decref(rec);
            return NULL;
        }
        for (int i = 0; i < n; i++)
            json_array_append_new(texts, json_pack("{s:s, s:s, s:s}", "name", tx[i].name, "lang",
                                                   tx[i].lang, "label", tx[i].label));
    }
    json_object_set_new(rec, "subtitles", subarr);
    json_object_set_new(rec, "texts", texts);
    json_t *ti = NULL;
    if (j->th && thumbs_finish(j->th, j->outdir, j->ev, &ti, e)) {
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "thumbnails", ti ? ti : json_null());
    return rec;
}

/* The video's length in frames, for the audio item to cut or pad the
 * audio to: the sum of the chunks' records when every chunk is done (a
 * run of the audio item after the last chunk), else the length the
 * source announces on the CFR grid (the audio runs in parallel with the
 * chunks; item_finish.lua runs it again in the rare case the chunks then
 * measure another length, so the published audio always matches). */
static int64_t video_frames(const json_t *plan, const json_t *results)
{
    int n = media_plan_chunks(plan);
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", k);
        const json_t *r = json_object_get(results, name);
        if (!json_is_object(r)) {
            double d = json_number_value(json_object_get(plan, "announced_duration"));
            return (int64_t)ceil(d * jint(plan, "fps_num") / jint(plan, "fps_den") - 1e-6);
        }
        total += jint64(r, "frames");
    }
    return total;
}

/* ---- finalize ----------------------------------------------------------- */

int track_from_json(const json_t *r, pkg_track *t, ss_err *e)
{
    const json_t *segs = json_object_get(r, "segs");
    size_t n = json_array_size(segs);
    pkg_seg *s = realloc(t->segs, (size_t)(t->nsegs + (int)n + 1) * sizeof(*s));
    if (!s)
        return ss_fail(e, SS_ENOMEM, "out of memory");
    t->segs = s;
    size_t i;
    json_t *x;
    json_array_foreach(segs, i, x) {
        pkg_seg *g = &t->segs[t->nsegs++];
        g->start = json_integer_value(json_array_get(x, 0));
        g->duration = json_integer_value(json_array_get(x, 1));
        g->bytes = json_integer_value(json_array_get(x, 2));
        g->iframe_end = json_integer_value(json_array_get(x, 3));
    }
    if (!t->timescale)
        t->timescale = jint(r, "timescale");
    if (!t->init_bytes)
        t->init_bytes = jint64(r, "init_bytes");
    return 0;
}

/* The chunks to run again when chunk k's init segment of rung i differs
 * from another chunk's: those whose init differs from the plan's
 * init_chunk's (the init.mp4 that was stored); all of them when that
 * chunk has none or they are the majority (which side is right is then
 * unknown: e.g. a rolling encoder upgrade across the workers). */
static json_t *init_offenders(const json_t *plan, const json_t *results, int nch, int i)
{
    char name[16];
    int ref_k = (int)jint64(plan, "init_chunk");
    snprintf(name, sizeof(name), "c%d", ref_k);
    const json_t *ref = json_array_get(json_object_get(json_object_get(results, name), "rungs"),
                                       (size_t)i);
    json_t *out = json_array();
    for (int k = 0; k < nch && jint64(ref, "init_bytes") > 0; k++) {
        snprintf(name, sizeof(name), "c%d", k);
        const json_t *r = json_array_get(json_object_get(json_object_get(results, name), "rungs"),
                                         (size_t)i);
        if (jint64(r, "init_bytes") > 0 && jint64(r, "init_crc") != jint64(ref, "init_crc"))
            json_array_append_new(out, json_string(name));
    }
    if (json_array_size(out) == 0 || 2 * json_array_size(out) > (size_t)nch) {
        json_array_clear(out);
        for (int k = 0; k < nch; k++) {
            snprintf(name, sizeof(name), "c%d", k);
            json_array_append_new(out, json_string(name));
        }
    }
    return out;
}

/* bad: on failure, the items whose records caused it (a new array), when known */
static int finalize(job *j, const json_t *plan, const json_t *results, json_t *res, json_t **bad,
                    ss_err *e)
{
    pkg_records rec;
    memset(&rec, 0, sizeof(rec));
    int ret = -1;
    /* the H.264 rungs, then the AV1 ladder's (stage_run_pass's order) */
    rec.n = j->o->av1 ? 2 * j->lad.n : j->lad.n;
    uint32_t crc[2 * MEDIA_MAX_RUNGS] = { 0 };
    int nch = media_plan_chunks(plan);
    json_t *warnings = json_array();
    json_array_extend(warnings, json_object_get(plan, "warnings"));
    for (int i = 0; i < rec.n; i++) {
        rec.rungs[i].p = j->lad.rungs[i % j->lad.n];
        rec.rungs[i].codec_id = i < j->lad.n ? "h264" : "av1";
        if (i >= j->lad.n)
            plan_av1_rung(&j->lad.rungs[i - j->lad.n], &rec.rungs[i].p);
    }
    for (int k = 0; k < nch; k++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", k);
        const json_t *c = json_object_get(results, name);
        const json_t *rs = json_object_get(c, "rungs");
        if (!json_is_object(c) || json_array_size(rs) != (size_t)rec.n) {
            ss_fail(e, SS_EINTERNAL, "the record of chunk %d does not match the plan", k);
            *bad = json_pack("[s]", name);
            goto out;
        }
        rec.frames += jint64(c, "frames");
        json_array_extend(warnings, json_object_get(c, "warnings"));
        for (int i = 0; i < rec.n; i++) {
            const json_t *r = json_array_get(rs, (size_t)i);
            rung_rec *g = &rec.rungs[i];
            if (strcmp(json_string_value(json_object_get(r, "name")) ?: "", g->p.name)) {
                ss_fail(e, SS_EINTERNAL, "the record of chunk %d does not match the plan", k);
                *bad = json_pack("[s]", name);
                goto out;
            }
            if (!g->codecs[0])
                ss_strlcpy(g->codecs, json_string_value(json_object_get(r, "codecs")) ?: "",
                           sizeof(g->codecs));
            uint32_t c32 = (uint32_t)jint64(r, "init_crc");
            if (jint64(r, "init_bytes") > 0) {
                if (crc[i] && crc[i] != c32) {
                    ss_fail(e, SS_EINTERNAL, "rung %s: chunk %d wrote a different init segment",
                            g->p.name, k);
                    *bad = init_offenders(plan, results, nch, i);
                    goto out;
                }
                crc[i] = c32;
            }
            if (track_from_json(r, &g->t, e))
                goto out;
            g->frames += jint64(r, "frames");
            g->es_bytes += jint64(r, "es_bytes");
            g->bytes += jint64(r, "bytes") - jint64(r, "init_bytes");
            g->measured = json_is_true(json_object_get(r, "measured"));
            g->mse_sum += json_number_value(json_object_get(r, "mse_sum"));
            g->ssim_sum += json_number_value(json_object_get(r, "ssim_sum"));
            g->nq += jint(r, "nq");
        }
    }
    for (int i = 0; i < rec.n; i++)
        rec.rungs[i].bytes += rec.rungs[i].t.init_bytes;
    const json_t *au = json_object_get(results, "audio");
    if (!json_is_object(au)) {
        ss_fail(e, SS_EINTERNAL, "no record of the audio item");
        *bad = json_pack("[s]", "audio");
        goto out;
    }
    json_array_extend(warnings, json_object_get(au, "warnings"));
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(au, "audio"), i, x) {
        if (rec.naudio >= MEDIA_MAX_AUDIO)
            break;
        pkg_track *t = &rec.audio[rec.naudio];
        if (track_from_json(x, t, e))
            goto out;
        rec.audio_bytes[rec.naudio] = jint64(x, "bytes");
        /* the audio item's probe (finalize opens no source) */
        ss_strlcpy(t->name, json_string_value(json_object_get(x, "name")) ?: "audio", sizeof(t->name));
        t->channels = jint(x, "channels");
        t->is_default = json_is_true(json_object_get(x, "default"));
        ss_strlcpy(t->lang, json_string_value(json_object_get(x, "lang")) ?: "", sizeof(t->lang));
        ss_strlcpy(t->label, json_string_value(json_object_get(x, "label")) ?: "", sizeof(t->label));
        ss_strlcpy(t->role, json_string_value(json_object_get(x, "role")) ?: "", sizeof(t->role));
        rec.audio_src[rec.naudio++] = jint(x, "source_stream");
    }
    json_array_foreach(json_object_get(au, "texts"), i, x) {
        if (rec.ntexts >= PROBE_MAX_SUBS)
            break;
        pkg_text *t = &rec.texts[rec.ntexts++];
        ss_strlcpy(t->name, json_string_value(json_object_get(x, "name")) ?: "", sizeof(t->name));
        ss_strlcpy(t->lang, json_string_value(json_object_get(x, "lang")) ?: "", sizeof(t->lang));
        ss_strlcpy(t->label, json_string_value(json_object_get(x, "label")) ?: "", sizeof(t->label));
    }
    rec.subarr = json_object_get(au, "subtitles");
    double got = (double)rec.frames * j->fps_den / j->fps_num;
    double want = json_number_value(json_object_get(plan, "announced_duration"));
    if (want > 1.0 && got < 0.9 * want) {
        char m[200];
        snprintf(m, sizeof(m), "source ended early (damaged or cut tail): encoded the first %.1f s "
                 "of the %.1f s it announces", got, want);
        json_array_append_new(warnings, json_string(m));
    }
    if (rec.frames <= 0) {
        ss_fail(e, SS_EMEDIA, "no decodable video frames in the source");
        goto out;
    }
    /* the playlists go next to the segments the other items wrote */
    for (int r = 0; r < rec.n; r++) {
        char d[4200];
        snprintf(d, sizeof(d), "%s/%s", j->outdir, rec.rungs[r].p.name);
        if (ss_mkdir_p(d, e))
            goto out;
    }
    for (int k = 0; k <= rec.naudio; k++) {
        const char *sub = k < rec.naudio ? rec.audio[k].name : rec.ntexts ? "subtitles" : NULL;
        char d[4200];
        snprintf(d, sizeof(d), "%s/%s", j->outdir, sub ? sub : "");
        if (sub && ss_mkdir_p(d, e))
            goto out;
    }
    json_object_set(res, "source", json_object_get(plan, "source"));
    json_t *th = json_object_get(au, "thumbnails");
    json_object_set(res, "thumbnails", th ? th : json_null());
    if (package_write(j, &rec, res, e))
        goto out;
    json_object_set(res, "warnings", warnings);
    json_t *crcs = json_object();
    for (int k = 0; k < rec.n; k++)
        json_object_set_new(crcs, rec.rungs[k].p.name, json_integer(crc[k]));
    json_object_set_new(res, "split",
                        json_pack("{s:i, s:i, s:f, s:o}", "chunks", nch, "chunk_segments",
                                  jint(plan, "chunk_segments"), "chunk_seconds",
                                  jint(plan, "chunk_segments") * (double)j->seg_num / j->seg_den,
                                  "init_crc", crcs));
    ret = 0;
out:
    for (int k = 0; k < rec.n; k++)
        free(rec.rungs[k].t.segs);
    for (int k = 0; k < rec.naudio; k++)
        free(rec.audio[k].segs);
    json_decref(warnings);
    return ret;
}

/* ---- one item ----------------------------------------------------------- */

int media_encode_item(const char *src, const char *outdir, const media_opts *opts,
                      const json_t *plan, const char *item, const json_t *results,
                      const media_events *ev, const atomic_int *cancel, json_t **result,
                      ss_err *err)
{
    media_opts defaults;
    if (!opts) {
        media_opts_default(&defaults);
        opts = &defaults;
    }
    *result = NULL;
    job J, *j = &J;
    stage_init(j, opts, ev, cancel, outdir);
    /* the item's CPU: its run's threads, x264's and libav*'s included
     * (cpuacct.h) */
    double t0 = ss_mono_s(), c0 = cpuacct_seconds(), cpu_main = 0;
    j->chain_t = t0;
    j->chain_cpu_mark = c0;
    json_t *res = NULL, *bad = NULL;
    ss_err e = { 0 };
    int ret = -1;
    int k = -1;
    if (item[0] == 'c' && item[1] >= '0' && item[1] <= '9')
        k = atoi(item + 1);
    if (plan_load(j, plan, &e) || ss_mkdir_p(outdir, &e))
        goto out;
    if (!strcmp(item, "finalize")) {
        res = json_object();
        ss_strlcpy(j->pi.alang, json_string_value(json_object_get(plan, "alang")) ?: "",
                   sizeof(j->pi.alang));
        job_progress(j, "packaging", 0);
        if (finalize(j, plan, results, res, &bad, &e))
            goto out;
        job_progress(j, "packaging", 1);
    } else if (k >= 0 && k < media_plan_chunks(plan)) {
        const json_t *c = json_array_get(json_object_get(plan, "chunks"), (size_t)k);
        j->mode = STAGE_CHUNK;
        j->range_seg0 = (int)jint64(c, "seg0");
        j->range_f0 = jint64(c, "f0");
        j->range_f1 = jint64(c, "f1");
        /* one chunk stores the rungs' init.mp4, identical in every chunk
         * (`stitchable`): the first one, whose segments a player needs
         * first (and the early publish waits for) */
        j->range_init = k == (int)jint64(plan, "init_chunk");
        chain_setup(j, plan, k, t0, c0);
        if (probe_open(src, opts, &j->ic, &j->pi, &e))
            goto out;
        job_progress(j, "encoding", 0);
        j->pre_c0 = ss_cpu_s(RUSAGE_THREAD);
        if (stage_passes(j, src, &e, &cpu_main))
            goto out;
        /* a run that went on: the chunk before the last one, every rung
         * has ended it by now */
        if (!chain_emit(j)) {
            ss_fail(&e, SS_EINTERNAL, "chunk %d of the run was not ended in every rung",
                    j->chain_pending);
            goto out;
        }
        res = chunk_record(j);
        int cont = j->chain_k != j->chain_k0;
        json_object_set_new(res, "preroll",
                            json_pack("{s:I, s:I, s:f}", "decoded", (json_int_t)(cont ? 0 : j->pre_decoded),
                                      "filtered", (json_int_t)(cont ? 0 : j->pre_filtered),
                                      "cpu_seconds", cont ? 0.0 : round(j->pre_cpu * 1000) / 1000));
        if (cont)
            json_object_set_new(res, "continued", json_true());
        job_progress(j, "encoding", 1);
    } else if (!strcmp(item, "audio")) {
        j->mode = STAGE_AUDIO;
        int64_t total = video_frames(plan, results);
        if (total <= 0) {
            ss_fail(&e, SS_EINTERNAL, "the job's plan gives no video length");
            goto out;
        }
        if (probe_open(src, opts, &j->ic, &j->pi, &e))
            goto out;
        j->lad.n = 0;   /* no rungs */
        j->vframes = total;   /* the audio is cut or padded to the video's length */
        job_progress(j, "encoding", 0);
        if (stage_run_pass(j, &e, &cpu_main))
            goto out;
        res = audio_record(j, &e);
        if (!res)
            goto out;
        json_object_set_new(res, "frames", json_integer(total));
        job_progress(j, "encoding", 1);
    } else {
        ss_fail(&e, SS_EINVAL, "no item \"%s\" in the job's plan", item);
        goto out;
    }
    if (strcmp(item, "finalize")) {
        /* a chunk run that went on: since its last chunk boundary (chain.c) */
        if (j->mode == STAGE_CHUNK)
            json_object_set_new(res, "warnings", chain_warnings(j));
        else
            json_object_set(res, "warnings", j->warnings);
        json_object_set_new(res, "seconds", json_real(stage_seconds_since(j->chain_t)));
        double cpu = cpuacct_seconds() - j->chain_cpu_mark;
        json_object_set_new(res, "cpu_seconds", json_real(round(cpu * 100) / 100));
    }
    *result = res;
    res = NULL;
    ret = 0;
out:
    json_decref(res);
    if (ret && bad)
        *result = json_pack("{s:o}", "items", bad);
    stage_end(j, ret, &e, err, "the item failed");
    return ret;
}
