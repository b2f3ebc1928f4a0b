/* chain.c — a chunk run that goes on into the next chunk (media.h
 * next_chunk, chunk_done; docs/SPLIT.md "A run that goes on into the next
 * chunk").
 *
 * When a chunk's decode reaches its range end, the caller is asked whether
 * it holds the next chunk; if so the same decoder, pre-filter and rung
 * encoders go on (no drain, no pre-roll): the rungs force an IDR at every
 * segment boundary, so the next chunk starts with one, and segment numbers
 * and tfdt continue as in one process. Each rung ends a chunk at the cut
 * on its end (the first packet of the next chunk, an IDR): there it writes
 * its part of the chunk's record (chain_rung_end, on its own thread) and
 * keeps its totals, so the next record counts only what came after. The
 * decoding thread hands the record to the caller (chunk_done) once every
 * rung has ended the chunk; it never waits for them (x264's lookahead may
 * need frames it has not fed yet): a chunk k whose record is not out when
 * the range of chunk k+1 ends ends the run there.
 *
 * Threads: j->chain is read-only while the rungs run; a rung's record
 * passes to the decoding thread through g->snap, published by snap_chunk
 * (release/acquire); the rung writes its next one only after frames past
 * the next chunk's end came through its queue, after the decoding thread
 * took this one. */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/crc.h>

#include "cpuacct.h"
#include "util.h"

void chain_setup(job *j, const json_t *plan, int k, double t0, double c0)
{
    j->chain_k0 = j->chain_k = k;
    j->chain_pending = -1;
    j->chain_t = t0;
    j->chain_cpu_mark = c0;
    const json_t *cs = json_object_get(plan, "chunks");
    int n = (int)json_array_size(cs);
    const media_events *ev = j->ev;
    if (n > PLAN_MAX_CHUNKS || j->o->rate_control == MEDIA_RC_TWO_PASS || !ev || !ev->next_chunk ||
        !ev->chunk_done)
        return;   /* chain_n 0: the run ends with its chunk */
    for (int i = 0; i < n; i++) {
        const json_t *c = json_array_get(cs, (size_t)i);
        j->chain[i].seg0 = json_integer_value(json_object_get(c, "seg0"));
        j->chain[i].f0 = json_integer_value(json_object_get(c, "f0"));
        j->chain[i].f1 = json_integer_value(json_object_get(c, "f1"));
    }
    j->chain_n = n;
}

/* CRC-32 of a file (0 when it cannot be read). */
static uint32_t file_crc(const char *path)
{
    size_t n = 0;
    char *d = ss_read_file(path, 1 << 20, &n, NULL);
    if (!d)
        return 0;
    uint32_t c = av_crc(av_crc_get_table(AV_CRC_32_IEEE), 0, (const uint8_t *)d, n);
    free(d);
    return c;
}

json_t *chain_segs_json(const pkg_seg *s, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("[I, I, I, I]", (json_int_t)s[i].start,
                                           (json_int_t)s[i].duration, (json_int_t)s[i].bytes,
                                           (json_int_t)s[i].iframe_end));
    return a;
}

/* The quality samples of g's chunk: from b_nq on, those before end (-1:
 * all); *next: the first one after them. */
static int q_sums(const rung *g, int64_t end, double *mse, double *ssim, int *next)
{
    int n = 0;
    const q_sample *qs = g->qm ? qmeter_samples(g->qm, &n) : NULL;
    int i = g->b_nq;
    *mse = *ssim = 0;
    for (; i < n && (end < 0 || qs[i].pts < end); i++) {
        *mse += qs[i].mse;
        *ssim += qs[i].ssim;
    }
    *next = i;
    return i - g->b_nq;
}

static json_t *rung_json(job *j, rung *g, int64_t frames, int64_t es, int64_t qend, int *qnext)
{
    pkg_track t;
    cmaf_track(g->cm, &t);
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s/init.mp4", j->outdir, g->p.name);
    double mse, ssim;
    int nq = q_sums(g, qend, &mse, &ssim, qnext);
    int from = (int)g->b_segs < t.nsegs ? (int)g->b_segs : t.nsegs;
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:o, s:b, s:f, s:f, s:i}",
                     "name", g->p.name, "codecs", g->codecs, "frames", (json_int_t)frames,
                     "es_bytes", (json_int_t)(es - g->b_es), "bytes",
                     (json_int_t)(cmaf_bytes(g->cm) - g->b_bytes + t.init_bytes), "init_bytes",
                     (json_int_t)t.init_bytes, "init_crc",
                     (json_int_t)(t.init_bytes ? file_crc(path) : 0), "timescale", t.timescale,
                     "segs", chain_segs_json(t.segs + from, t.nsegs - from), "measured", g->qm != NULL,
                     "mse_sum", mse, "ssim_sum", ssim, "nq", nq);
}

json_t *chain_rung_json(job *j, rung *g, int64_t frames, int64_t es)
{
    int next;
    return rung_json(j, g, frames, es, -1, &next);
}

int chain_rung_end(rung *g, int64_t es, ss_err *err)
{
    job *j = g->j;
    int64_t end = j->chain[g->chunk].f1;
    int qnext;
    /* frames: the decoding thread's count (every rung gets every frame) */
    json_t *r = rung_json(j, g, 0, es, end, &qnext);
    if (!r)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    pkg_track t;
    cmaf_track(g->cm, &t);
    g->b_segs = t.nsegs;
    g->b_es = es;
    g->b_bytes = cmaf_bytes(g->cm);
    g->b_nq = qnext;
    json_decref(g->snap);   /* never there: the decoding thread took it */
    g->snap = r;
    atomic_store_explicit(&g->snap_chunk, g->chunk, memory_order_release);
    g->chunk++;
    return 0;
}

json_t *chain_warnings(job *j)
{
    json_t *w = json_array();
    pthread_mutex_lock(&j->mu);
    size_t n = json_array_size(j->warnings);
    for (size_t i = j->chain_warn; i < n; i++)
        json_array_append(w, json_array_get(j->warnings, i));
    j->chain_warn = n;
    pthread_mutex_unlock(&j->mu);
    return w;
}

/* The caller's events may block (a Redis round trip): not while holding
 * the decoding thread's CPU token. */
static void tok_give(job *j)
{
    if (j->dec_tok)
        job_tokens_give(j, 1);
}

static void tok_take(job *j)
{
    if (j->dec_tok)
        job_tokens_take(j, 1);
}

int chain_emit(job *j)
{
    int k = j->chain_pending;
    if (k < 0)
        return 1;
    for (int i = 0; i < j->nr; i++)
        if (atomic_load_explicit(&j->rungs[i].snap_chunk, memory_order_acquire) != k)
            return 0;
    json_t *rs = json_array();
    double cpu = j->chain_pend_cpu;
    for (int i = 0; i < j->nr; i++) {
        rung *g = &j->rungs[i];
        json_t *r = g->snap;
        g->snap = NULL;
        json_object_set_new(r, "frames", json_integer(j->chain_pend_frames));
        json_array_append_new(rs, r);
    }
    json_t *rec = json_pack("{s:I, s:o}", "frames", (json_int_t)j->chain_pend_frames, "rungs", rs);
    if (k == j->chain_k0)
        json_object_set_new(rec, "preroll",
                            json_pack("{s:I, s:I, s:f}", "decoded", (json_int_t)j->pre_decoded,
                                      "filtered", (json_int_t)j->pre_filtered, "cpu_seconds",
                                      round(j->pre_cpu * 1000) / 1000));
    else
        json_object_set_new(rec, "preroll", json_pack("{s:i, s:i, s:f}", "decoded", 0, "filtered",
                                                      0, "cpu_seconds", 0.0));
    json_object_set_new(rec, "continued", json_boolean(k != j->chain_k0));
    json_object_set_new(rec, "warnings", chain_warnings(j));
    double now = ss_mono_s();
    json_object_set_new(rec, "seconds", json_real(round((now - j->chain_t) * 1000) / 1000));
    json_object_set_new(rec, "cpu_seconds", json_real(round(cpu * 100) / 100));
    j->chain_t = now;
    j->chain_pending = -1;
    tok_give(j);
    j->ev->chunk_done(j->ev->ud, k, rec);
    tok_take(j);
    return 1;
}

int chain_next(job *j, int64_t pts)
{
    int next = j->chain_k + 1;
    /* a run already failing (a rung's error) claims nothing more */
    if (!j->chain_n || j->pass || j->mode != STAGE_CHUNK || next >= j->chain_n ||
        pts != j->range_f1 || j->chain[next].f0 != pts || job_cancelled(j))
        return 0;
    /* chunk k-1 must be out before k+1 is asked for: never wait here */
    if (!chain_emit(j))
        return 0;
    tok_give(j);
    int go = j->ev->next_chunk(j->ev->ud, next);
    tok_take(j);
    if (!go)
        return 0;
    /* the run's threads' CPU (cpuacct.h) from the range end of the chunk
     * before: the rungs lag the decoder by their queues and lookahead, so
     * each chunk's share is shifted by that lag, and the shares add up to
     * the run's */
    double c = cpuacct_seconds();
    j->chain_pend_cpu = c - j->chain_cpu_mark;
    j->chain_cpu_mark = c;
    j->chain_pend_frames = j->vframes - j->chain_vf;
    j->chain_vf = j->vframes;
    j->chain_pending = j->chain_k;
    j->chain_k = next;
    j->range_seg0 = (int)j->chain[next].seg0;
    j->range_f0 = j->chain[next].f0;
    j->range_f1 = j->chain[next].f1;
    j->last_progress = 0;
    return 1;
}
