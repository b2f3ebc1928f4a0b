/* pertitle.c — the per-title pass: a few short windows spread over the
 * title are decoded (by decode.c and video.c, through the same pre-filter as the real
 * encode) and handed to pt_feed(), which
 *
 *   - analyses every frame at AN_WIDTH pixels wide on this thread: SI, TI
 *     and the luma histogram distance (analysis.c), scene cuts per window;
 *   - queues it to one probe thread per candidate resolution, which scales
 *     it once and encodes it with libx264 at each probe CRF (the real
 *     encode's preset, profile, keyint and scene-cut rule; an IDR at every
 *     window start, no VBV), counts the bytes of the window-start IDRs and
 *     of the other frames, and decodes the real packets to measure luma
 *     PSNR/SSIM at the display size (quality.c) on the IDRs and every
 *     PT_QSTEP-th frame.
 *
 * With codecs av1, three SVT-AV1 probes at the display size measure AV1's
 * own CRF -> rate/quality curve on the same frames (its keyframes where it
 * puts them: the libsvtav1 wrapper ignores forced ones).
 *
 * pt_finish() turns each (resolution, CRF) probe into a predicted rate and
 * quality of a whole encode with the real segment length (an IDR every
 * keyint frames: rate = (IDR bits + (keyint - 1) x other-frame bits) /
 * keyint frames, the same weighting for MSE and SSIM), chooses the ladder
 * (ptplan.c) and reports what it measured and why each rung was chosen.
 *
 * Owns its threads, encoders, meters and queues; pt_free() releases all,
 * also half way. */
#include "encoder.h"
#include "mediai.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "analysis.h"
#include "plan.h"
#include "ptplan.h"
#include "quality.h"
#include "util.h"

#define PT_MAX_RES 5
#define PT_MIN_MAXRATE 200    /* kbps: a VBV cap under this starves a slide's IDR */
#define PT_QSTEP 3            /* quality on the window-start IDR and every 3rd frame */
#define PT_MAX_WINDOWS 24
#define PT_MIN_WINDOWS 3

/* The probe CRFs: a spread that brackets what the rungs use (the curves
 * extend them by pt_limits.extrap_lo steps down, extrap up). */
#define PT_NCRF 3
static const double probe_crfs[PT_NCRF] = { 24, 30, 36 };
/* With codecs av1: SVT-AV1 probes at the display size only, at its own
 * CRFs (0..63 scale; they bracket 1.5x the x264 ones), the real encode's
 * preset. Its CRF -> rate/PSNR curve, compared with x264's at the same
 * size, sets every AV1 rung's CRF and rate (pt_finish). */
static const double av1_probe_crfs[PT_NCRF] = { 32, 42, 52 };
#define PT_AV1_PRESET 8

/* Candidate heights: the display height, then standard heights below it
 * at least PT_RES_STEP apart (about half the pixels of the one above:
 * 1080p -> 1080, 720, 360, 240; 720p -> 720, 360, 240). */
static const int std_heights[] = { 2160, 1440, 1080, 720, 540, 360, 240 };
#define PT_RES_STEP 1.45

/* Sample size: PT_SHARE of the title, at least PT_MIN_S and at most
 * PT_MAX_S seconds, in at least PT_MIN_WINDOWS windows of PT_WIN_MIN_S ..
 * PT_WIN_MAX_S seconds. */
#define PT_SHARE 0.04
#define PT_MIN_S 0.65
#define PT_MAX_S 20.0
#define PT_WIN_MIN_S 0.25
#define PT_WIN_MAX_S 1.0

enum { F_START = 1, F_MEASURE = 2 };

typedef struct probe {
    AVCodecContext *enc;
    qmeter *qm;
    double crf;
    int av1;                    /* an SVT-AV1 probe (else libx264) */
    int64_t bytes_i, bytes_p;
    int n_i, n_p;
} probe;

typedef struct pres {
    pt_ctx *pt;
    int w, h;
    frameq q;
    int qinit;
    pthread_t th;
    int started;
    struct SwsContext *sws;
    probe pr;
    double cpu;
} pres;

struct pt_ctx {
    pt_setup s;
    const atomic_int *cancel;
    atomic_int abort;
    pthread_mutex_t mu;
    ss_err err;
    pres r[(PT_MAX_RES + 1) * PT_NCRF];   /* one thread per probe (resolution x CRF, AV1) */
    int nres;
    uint8_t *flags;             /* per sample frame: F_START, F_MEASURE */
    int64_t cap, nfed;
    int next_start;
    int64_t win_off;            /* frames into the current window */
    /* windows */
    double win_t[PT_MAX_WINDOWS];
    int win_n[PT_MAX_WINDOWS];
    int nwin;
    /* analysis */
    int an_w, an_h;
    struct SwsContext *an_sws;
    AVFrame *an_cur, *an_prev;
    uint32_t hist_prev[AN_BINS];
    double *si, *ti;            /* per frame: SI, TI (all but each window's first) */
    double *ti_win, *hd_win;    /* the current window's TI and histogram distance */
    int nsi, nti, nwinf;
    double *cuts;
    int ncuts, cutcap;
    double t_start;
    int busy, busy_max;         /* probes encoding at once (pt_busy) */
};

static int pt_stop(void *ud)
{
    pt_ctx *pt = ud;
    if (pt->cancel && atomic_load(pt->cancel))
        atomic_store(&pt->abort, 1);
    return atomic_load(&pt->abort);
}

/* The CPU tokens (pt_setup.tokens): no-ops when not gated. */
static void pt_take(pt_ctx *pt)
{
    if (pt->s.tokens && pt->s.tok_take)
        pt->s.tok_take(pt->s.tok_ud, 1);
}

static void pt_give(pt_ctx *pt)
{
    if (pt->s.tokens && pt->s.tok_give)
        pt->s.tok_give(pt->s.tok_ud, 1);
}

/* A probe starts or stops a run of queued frames (with tokens: holding
 * one); the most at once goes to the report (probes.busy_max). */
static void pt_busy(pt_ctx *pt, int d)
{
    pthread_mutex_lock(&pt->mu);
    pt->busy += d;
    if (pt->busy > pt->busy_max)
        pt->busy_max = pt->busy;
    pthread_mutex_unlock(&pt->mu);
}

static void pt_fail(pt_ctx *pt, const ss_err *e)
{
    pthread_mutex_lock(&pt->mu);
    if (pt->err.code == SS_OK)
        pt->err = *e;
    pthread_mutex_unlock(&pt->mu);
    atomic_store(&pt->abort, 1);
}

int pt_windows(double duration, double fps, double *starts, int max, int *frames)
{
    if (fps <= 0)
        fps = 25;
    if (max > PT_MAX_WINDOWS)
        max = PT_MAX_WINDOWS;
    if (!(duration > 0)) {
        starts[0] = 0;
        *frames = (int)lround(PT_MIN_S * fps);
        return 1;
    }
    double total = fmin(fmax(PT_SHARE * duration, PT_MIN_S), PT_MAX_S);
    if (total > duration)
        total = duration;
    /* at least PT_MIN_WINDOWS windows of PT_WIN_MIN_S .. PT_WIN_MAX_S */
    int n = (int)ceil(total / PT_WIN_MAX_S - 1e-9);
    if (n < PT_MIN_WINDOWS)
        n = PT_MIN_WINDOWS;
    if (total / n < PT_WIN_MIN_S)
        n = (int)(total / PT_WIN_MIN_S);
    if (n < 1)
        n = 1;
    if (n > max)
        n = max;
    double win = total / n;
    *frames = (int)lround(win * fps);
    if (*frames < 4)
        *frames = 4;
    for (int i = 0; i < n; i++) {
        double t = (i + 0.5) * duration / n - win / 2;
        if (t > duration - win)
            t = duration - win;
        starts[i] = t > 0 ? t : 0;
    }
    return n;
}

/* ---- probe threads ---------------------------------------------------- */

static int probe_start(pt_ctx *pt, pres *r, probe *p, int threads, ss_err *err)
{
    const char *lib = p->av1 ? "libsvtav1" : "libx264";
    const AVCodec *codec = avcodec_find_encoder_by_name(lib);
    if (!codec)
        return ss_fail(err, SS_EINTERNAL, "%s encoder not available", lib);
    AVCodecContext *c = p->enc = avcodec_alloc_context3(codec);
    if (!c)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    c->width = r->w;
    c->height = r->h;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){ pt->s.fps_den, pt->s.fps_num };
    c->framerate = (AVRational){ pt->s.fps_num, pt->s.fps_den };
    c->sample_aspect_ratio = (AVRational){ 1, 1 };
    c->gop_size = pt->s.keyint;
    c->keyint_min = pt->s.keyint;
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    c->thread_count = threads;
    c->color_range = AVCOL_RANGE_MPEG;
    AVDictionary *d = NULL;
    char crf[16];
    if (p->av1) {   /* no forced keyframes (ignored): one per keyint, as the real rung */
        c->gop_size = pt->s.keyint + 1;
        av_dict_set_int(&d, "preset", PT_AV1_PRESET, 0);
        av_dict_set_int(&d, "crf", (int64_t)p->crf, 0);
        av_dict_set(&d, "svtav1-params", "lp=1", 0);
    } else {
        snprintf(crf, sizeof(crf), "%.1f", p->crf);
        av_dict_set(&d, "preset", pt->s.preset ? pt->s.preset : "veryfast", 0);
        av_dict_set(&d, "profile", "high", 0);
        av_dict_set(&d, "crf", crf, 0);
        av_dict_set(&d, "forced-idr", "1", 0);
        av_dict_set(&d, "x264-params", pt->s.x264_params, 0);
    }
    int ret = enc_avopen(c, codec, &d);
    av_dict_free(&d);
    if (ret < 0) {
        char e[128];
        media_averr(ret, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "%s probe %dp CRF %.0f: %s", lib, r->h, p->crf, e);
    }
    p->qm = qmeter_new(c, pt->s.top_w, pt->s.top_h, err);
    return p->qm ? 0 : -1;
}

static int probe_drain(pt_ctx *pt, probe *p, AVPacket *pkt, ss_err *err)
{
    for (;;) {
        int r = avcodec_receive_packet(p->enc, pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r < 0) {
            char e[128];
            media_averr(r, e, sizeof(e));
            return ss_fail(err, SS_EINTERNAL, "%s probe: %s", p->av1 ? "libsvtav1" : "libx264", e);
        }
        /* SVT-AV1 keys only what it chose to: count its keyframes as such */
        int key = p->av1 ? !!(pkt->flags & AV_PKT_FLAG_KEY)
                         : pkt->pts >= 0 && pkt->pts < pt->cap && (pt->flags[pkt->pts] & F_START);
        if (key) {
            p->bytes_i += pkt->size;
            p->n_i++;
        } else {
            p->bytes_p += pkt->size;
            p->n_p++;
        }
        r = qmeter_packet(p->qm, pkt, err);
        av_packet_unref(pkt);
        if (r)
            return -1;
    }
}

static int pres_frame(pres *r, AVFrame *in, AVPacket *pkt, ss_err *err)
{
    pt_ctx *pt = r->pt;
    AVFrame *use = in, *scaled = NULL;
    if (in->width != r->w || in->height != r->h) {
        r->sws = sws_getCachedContext(r->sws, in->width, in->height, in->format, r->w, r->h,
                                      AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
        scaled = av_frame_alloc();
        if (!r->sws || !scaled)
            goto nomem;
        scaled->width = r->w;
        scaled->height = r->h;
        scaled->format = AV_PIX_FMT_YUV420P;
        if (av_frame_get_buffer(scaled, 0) < 0)
            goto nomem;
        sws_scale(r->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height,
                  scaled->data, scaled->linesize);
        av_frame_copy_props(scaled, in);
        use = scaled;
    }
    uint8_t fl = pt->flags[in->pts];
    use->pict_type = fl & F_START ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    use->key_frame = 0;
    use->sample_aspect_ratio = (AVRational){ 1, 1 };
    probe *p = &r->pr;
    if ((fl & F_MEASURE) && qmeter_ref(p->qm, in, err))
        goto fail;
    int ret = avcodec_send_frame(p->enc, use);
    if (ret < 0) {
        char e[128];
        media_averr(ret, e, sizeof(e));
        ss_fail(err, SS_EINTERNAL, "%s probe: %s", p->av1 ? "libsvtav1" : "libx264", e);
        goto fail;
    }
    if (probe_drain(pt, p, pkt, err))
        goto fail;
    av_frame_free(&scaled);
    return 0;
nomem:
    ss_fail(err, SS_ENOMEM, "out of memory");
fail:
    av_frame_free(&scaled);
    return -1;
}

static void *pres_main(void *arg)
{
    pres *r = arg;
    pt_ctx *pt = r->pt;
    ss_err err = { 0 };
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = NULL;
    int rc;
    if (!pkt) {
        ss_fail(&err, SS_ENOMEM, "out of memory");
        pt_fail(pt, &err);
        return NULL;
    }
    /* a CPU token while frames are queued (as a rung, rung.c), never
     * while waiting for one */
    int held = 0;
    for (;;) {
        if (held && !frameq_ready(&r->q)) {
            pt_busy(pt, -1);
            pt_give(pt);
            held = 0;
        }
        if ((rc = frameq_get(&r->q, &f, pt_stop, pt)) <= 0)
            break;
        if (!held) {
            pt_take(pt);
            pt_busy(pt, 1);
        }
        held = 1;
        int e = pres_frame(r, f, pkt, &err);
        av_frame_free(&f);
        if (e) {
            pt_fail(pt, &err);
            break;
        }
    }
    if (rc == 0) {
        probe *p = &r->pr;
        if (!held) {
            pt_take(pt);
            pt_busy(pt, 1);
        }
        held = 1;
        if (avcodec_send_frame(p->enc, NULL) < 0 || probe_drain(pt, p, pkt, &err) ||
            qmeter_packet(p->qm, NULL, &err)) {
            ss_fail(&err, SS_EINTERNAL, "%s probe would not flush", p->av1 ? "libsvtav1" : "libx264");
            pt_fail(pt, &err);
        }
    }
    if (held) {
        pt_busy(pt, -1);
        pt_give(pt);
    }
    av_packet_free(&pkt);
    r->cpu = ss_cpu_s(RUSAGE_THREAD);
    return NULL;
}

/* ---- setup ---------------------------------------------------------- */

pt_ctx *pt_new(const pt_setup *s, int nwin, int win_frames, const atomic_int *cancel, ss_err *err)
{
    pt_ctx *pt = calloc(1, sizeof(*pt));
    if (!pt) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    pt->s = *s;
    pt->cancel = cancel;
    pt->t_start = ss_mono_s();
    pthread_mutex_init(&pt->mu, NULL);
    pt->cap = (int64_t)nwin * win_frames + 1;
    pt->flags = calloc((size_t)pt->cap, 1);
    pt->si = calloc((size_t)pt->cap, sizeof(double));
    pt->ti = calloc((size_t)pt->cap, sizeof(double));
    pt->ti_win = calloc((size_t)win_frames + 1, sizeof(double));
    pt->hd_win = calloc((size_t)win_frames + 1, sizeof(double));
    if (!pt->flags || !pt->si || !pt->ti || !pt->ti_win || !pt->hd_win)
        goto nomem;

    /* analysis size: AN_WIDTH wide (or the picture's width if smaller) */
    pt->an_w = s->top_w < AN_WIDTH ? s->top_w : AN_WIDTH;
    pt->an_h = plan_even((double)pt->an_w * s->top_h / s->top_w);
    pt->an_cur = av_frame_alloc();
    pt->an_prev = av_frame_alloc();
    if (!pt->an_cur || !pt->an_prev)
        goto nomem;
    for (int i = 0; i < 2; i++) {
        AVFrame *f = i ? pt->an_prev : pt->an_cur;
        f->format = AV_PIX_FMT_GRAY8;
        f->width = pt->an_w;
        f->height = pt->an_h;
        if (av_frame_get_buffer(f, 0) < 0)
            goto nomem;
    }

    /* candidate resolutions */
    int hs[PT_MAX_RES], n = 0;
    hs[n++] = s->top_h;
    for (size_t i = 0; i < sizeof(std_heights) / sizeof(std_heights[0]) && n < PT_MAX_RES; i++)
        if (std_heights[i] * PT_RES_STEP <= hs[n - 1] + 1e-9)
            hs[n++] = std_heights[i];
    /* one single-threaded encoder per probe: many small independent jobs
     * keep every core busy (with s->tokens, at most that many at once,
     * the feeding thread included) */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < PT_NCRF; k++) {
            pres *r = &pt->r[pt->nres];
            r->pt = pt;
            r->h = hs[i];
            r->w = i == 0 ? s->top_w : plan_even((double)hs[i] * s->top_w / s->top_h);
            frameq_init(&r->q);
            r->qinit = 1;
            pt->nres++;
            r->pr.crf = probe_crfs[k];
            if (probe_start(pt, r, &r->pr, 1, err))
                goto fail;
        }
    for (int k = 0; s->av1 && k < PT_NCRF; k++) {
        pres *r = &pt->r[pt->nres];
        r->pt = pt;
        r->h = s->top_h;
        r->w = s->top_w;
        frameq_init(&r->q);
        r->qinit = 1;
        pt->nres++;
        r->pr.av1 = 1;
        r->pr.crf = av1_probe_crfs[k];
        if (probe_start(pt, r, &r->pr, 1, err))
            goto fail;
    }
    for (int i = 0; i < pt->nres; i++) {
        if (pthread_create(&pt->r[i].th, NULL, pres_main, &pt->r[i])) {
            ss_fail(err, SS_EINTERNAL, "cannot start a thread");
            goto fail;
        }
        pt->r[i].started = 1;
    }
    return pt;
nomem:
    ss_fail(err, SS_ENOMEM, "out of memory");
fail:
    pt_free(&pt);
    return NULL;
}

/* Scene cuts of the window that just ended (its TI/HD series). */
static int window_close(pt_ctx *pt)
{
    if (pt->nwin == 0 || pt->nwinf < 2)
        return 0;
    int idx[64];
    int n = an_scene_cuts(pt->ti_win, pt->hd_win, pt->nwinf, idx, 64);
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++) {
        if (pt->ncuts == pt->cutcap) {
            int c = pt->cutcap ? pt->cutcap * 2 : 16;
            double *x = realloc(pt->cuts, (size_t)c * sizeof(*x));
            if (!x)
                return -1;
            pt->cuts = x;
            pt->cutcap = c;
        }
        pt->cuts[pt->ncuts++] = pt->win_t[pt->nwin - 1] +
                                idx[i] * (double)pt->s.fps_den / pt->s.fps_num;
    }
    return 0;
}

int pt_window(pt_ctx *pt, double t, ss_err *err)
{
    if (window_close(pt))
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (pt->nwin == PT_MAX_WINDOWS)
        return ss_fail(err, SS_EINTERNAL, "too many per-title windows");
    pt->win_t[pt->nwin] = t;
    pt->win_n[pt->nwin] = 0;
    pt->nwin++;
    pt->next_start = 1;
    pt->nwinf = 0;
    pt->win_off = 0;
    return 0;
}

int pt_feed(pt_ctx *pt, const AVFrame *f, ss_err *err)
{
    if (pt->nfed >= pt->cap - 1 || pt->nwin == 0)
        return 0;   /* more frames than planned: ignored */
    int64_t idx = pt->nfed;
    uint8_t fl = 0;
    if (pt->next_start)
        fl |= F_START;
    if (pt->win_off % PT_QSTEP == 0)
        fl |= F_MEASURE;
    pt->flags[idx] = fl;

    /* analysis */
    pt->an_sws = q_luma_scaler(pt->an_sws, f->width, f->height, f->format, pt->an_w, pt->an_h);
    if (!pt->an_sws || av_frame_make_writable(pt->an_cur) < 0)
        return ss_fail(err, SS_ENOMEM, "cannot scale a frame for analysis");
    sws_scale(pt->an_sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
              pt->an_cur->data, pt->an_cur->linesize);
    const uint8_t *y = pt->an_cur->data[0];
    int ys = pt->an_cur->linesize[0];
    uint32_t hist[AN_BINS];
    an_hist(y, ys, pt->an_w, pt->an_h, hist);
    pt->si[pt->nsi++] = an_si(y, ys, pt->an_w, pt->an_h);
    double ti = 0, hd = 0;
    if (!pt->next_start) {
        ti = an_ti(y, ys, pt->an_prev->data[0], pt->an_prev->linesize[0], pt->an_w, pt->an_h);
        hd = an_hist_dist(hist, pt->hist_prev);
        pt->ti[pt->nti++] = ti;
    }
    pt->ti_win[pt->nwinf] = ti;
    pt->hd_win[pt->nwinf] = hd;
    pt->nwinf++;
    memcpy(pt->hist_prev, hist, sizeof(hist));
    AVFrame *t = pt->an_cur;
    pt->an_cur = pt->an_prev;
    pt->an_prev = t;

    /* probes */
    pt->nfed++;
    pt->next_start = 0;
    pt->win_off++;
    pt->win_n[pt->nwin - 1]++;
    for (int i = 0; i < pt->nres; i++) {
        AVFrame *c = av_frame_clone(f);
        if (!c)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        c->pts = idx;
        /* the caller holds a token: a full queue waits for a probe, which
         * may need it */
        int wait = pt->s.tokens && !frameq_room(&pt->r[i].q);
        if (wait)
            pt_give(pt);
        int r = frameq_put(&pt->r[i].q, c, pt_stop, pt);
        if (wait)
            pt_take(pt);
        if (r) {
            pthread_mutex_lock(&pt->mu);
            if (pt->err.code)
                *err = pt->err;
            else
                ss_fail(err, SS_ECANCELLED, "cancelled");
            pthread_mutex_unlock(&pt->mu);
            return -1;
        }
    }
    return 0;
}

/* ---- the ladder ------------------------------------------------------ */

/* Predicted rate and quality of a whole encode from one probe. */
static int probe_point(const pt_ctx *pt, const pres *r, const probe *p, pt_point *out)
{
    int nq;
    const q_sample *q = qmeter_samples(p->qm, &nq);
    double mi = 0, mp = 0, si = 0, sp = 0;
    int ni = 0, np = 0;
    for (int k = 0; k < nq; k++) {
        int64_t ix = q[k].pts;
        if (ix >= 0 && ix < pt->cap && (pt->flags[ix] & F_START)) {
            mi += q[k].mse;
            si += q[k].ssim;
            ni++;
        } else {
            mp += q[k].mse;
            sp += q[k].ssim;
            np++;
        }
    }
    if (!p->n_i && !p->n_p)
        return -1;
    if (!ni || !np) {   /* only one kind: use it for both */
        if (!ni) {
            mi = mp, si = sp, ni = np;
        } else {
            mp = mi, sp = si, np = ni;
        }
    }
    if (!ni)
        return -1;
    double K = pt->s.keyint > 1 ? pt->s.keyint : 1;
    double bi = p->n_i ? 8.0 * p->bytes_i / p->n_i : 8.0 * p->bytes_p / p->n_p;
    double bp = p->n_p ? 8.0 * p->bytes_p / p->n_p : bi;
    double fps = (double)pt->s.fps_num / pt->s.fps_den;
    memset(out, 0, sizeof(*out));
    out->width = r->w;
    out->height = r->h;
    out->crf = p->crf;
    out->kbps = (bi + (K - 1) * bp) / K * fps / 1000.0;
    out->psnr = q_psnr((mi / ni + (K - 1) * mp / np) / K);
    out->ssim = (si / ni + (K - 1) * sp / np) / K;
    return 0;
}

static json_t *round_real(double v, double scale)
{
    return json_real(round(v * scale) / scale);
}

/* A rung's VBV cap: 2x its rate, at least PT_MIN_MAXRATE, at most the
 * table cap (never under the rate). */
static int pt_maxrate(int target, int cap)
{
    int maxrate = 2 * target;
    if (maxrate < PT_MIN_MAXRATE)
        maxrate = PT_MIN_MAXRATE;
    if (maxrate > cap)
        maxrate = cap;
    return maxrate < target ? target : maxrate;
}

/* The AV1 rung of H.264 rung g (already in *pr): where x264's curve at
 * the display size is at g's CRF, the AV1 curve's CRF for the same PSNR,
 * and g's rate times AV1's rate ratio there; the cap as H.264's (2x the
 * rate, 200 kbps .. the table cap). Appended to ja. */
static int av1_rung(const pt_ctx *pt, const pt_point *pts, int npts, const pt_limits *lim,
                    const pt_point *apts, int napts, const pt_rung *g, plan_rung *pr, json_t *ja)
{
    pt_limits al = *lim;
    al.crf_min = 1;
    al.crf_max = 63;
    pt_codec_map m;
    if (ptplan_codec_map(pts, npts, lim, apts, napts, &al, pt->s.top_h, g->crf, &m))
        return 0;   /* no AV1 measurement: the 1.5x CRF mapping stays */
    int target = (int)lround(g->kbps * m.ratio);
    if (target < 1)
        target = 1;
    int maxrate = pt_maxrate(target, pt->s.cap_kbps);
    pr->av1_crf = round(m.crf * 10) / 10;
    pr->av1_target_kbps = target;
    pr->av1_maxrate_kbps = maxrate;
    plan_rung a;
    plan_av1_rung(pr, &a);
    json_t *o = json_pack("{s:s, s:i, s:o, s:i, s:o, s:o, s:o}", "name", a.name, "target_kbps", target,
                          "crf", round_real(pr->av1_crf, 10), "maxrate_kbps", maxrate,
                          "rate_ratio", round_real(m.ratio, 1000), "h264_crf_at_top",
                          round_real(m.ref_crf, 10), "psnr_at_top", round_real(m.psnr, 100));
    return o && !json_array_append_new(ja, o) ? 0 : -1;
}

/* per_title.codecs: how each codec's rates were decided. */
static json_t *codecs_report(const pt_ctx *pt, const pt_point *apts, int napts, json_t *jav1)
{
    json_t *pa = json_array(), *crfs = json_array();
    for (int i = 0; i < napts; i++)
        json_array_append_new(pa, json_pack("{s:i, s:i, s:f, s:o, s:o, s:o}", "width", apts[i].width,
                                            "height", apts[i].height, "crf", apts[i].crf, "kbps",
                                            round_real(apts[i].kbps, 10), "psnr",
                                            round_real(apts[i].psnr, 1000), "ssim",
                                            round_real(apts[i].ssim, 100000)));
    for (int k = 0; k < PT_NCRF; k++)
        json_array_append_new(crfs, json_real(av1_probe_crfs[k]));
    const char *how = json_array_size(jav1)
                          ? "SVT-AV1 probes at the display size: each rung's CRF gives the PSNR "
                            "x264 reaches there at the H.264 rung's CRF; rate = H.264 rate x the "
                            "AV1/x264 rate ratio at that PSNR"
                          : "no usable SVT-AV1 probe: CRF = 1.5 x the H.264 CRF, H.264's caps";
    return json_pack("{s:{s:s}, s:{s:s, s:s, s:i, s:o, s:o, s:o}}", "h264", "method",
                     "x264 probes at every candidate size (rungs above)", "av1", "method", how,
                     "encoder", "libsvtav1", "preset", PT_AV1_PRESET, "crfs", crfs, "points", pa,
                     "rungs", jav1);
}

int pt_finish(pt_ctx *pt, plan_ladder *lad, json_t **report, ss_err *err)
{
    *report = NULL;
    if (window_close(pt))
        return ss_fail(err, SS_ENOMEM, "out of memory");
    for (int i = 0; i < pt->nres; i++)
        if (pt->r[i].started)
            frameq_put(&pt->r[i].q, NULL, pt_stop, pt);
    for (int i = 0; i < pt->nres; i++)
        if (pt->r[i].started) {
            pthread_join(pt->r[i].th, NULL);
            pt->r[i].started = 0;
        }
    if (pt->cancel && atomic_load(pt->cancel))
        return ss_fail(err, SS_ECANCELLED, "cancelled");
    if (pt->err.code) {
        *err = pt->err;
        return -1;
    }
    if (pt->nfed == 0)
        return ss_fail(err, SS_EMEDIA, "no decodable video frames in the source");

    pt_point pts[PT_MAX_POINTS], apts[PT_NCRF];
    int npts = 0, napts = 0;
    json_t *jpoints = json_array();
    double cpu = 0;
    int qframes = 0;
    for (int i = 0; i < pt->nres; i++) {
        cpu += pt->r[i].cpu;
        const probe *p = &pt->r[i].pr;
        int nq;
        qmeter_samples(p->qm, &nq);
        qframes += nq;
        if (p->av1) {
            if (napts < PT_NCRF && probe_point(pt, &pt->r[i], p, &apts[napts]) == 0)
                napts++;
        } else if (npts < PT_MAX_POINTS && probe_point(pt, &pt->r[i], p, &pts[npts]) == 0) {
            npts++;
        }
    }
    pt_limits lim;
    ptplan_limits_default(&lim);
    int cap = pt->s.cap_kbps;
    lim.max_kbps = 0.7 * cap;
    lim.top_min_height = pt->s.top_h / 2;   /* the top rung at most one halving below the source */
    pt_rung rungs[MEDIA_MAX_RUNGS];
    int nr = ptplan_choose(pts, npts, &lim, rungs, MEDIA_MAX_RUNGS);
    if (nr < 1) {
        json_decref(jpoints);
        return ss_fail(err, SS_EMEDIA, "per-title probes gave no usable measurement");
    }
    int hull[PT_MAX_POINTS];
    int nh = ptplan_hull(pts, npts, hull);
    for (int i = 0; i < npts; i++) {
        int on = 0;
        for (int k = 0; k < nh; k++)
            on |= hull[k] == i;
        json_array_append_new(jpoints, json_pack("{s:i, s:i, s:f, s:o, s:o, s:o, s:b}", "width",
                                                 pts[i].width, "height", pts[i].height, "crf",
                                                 pts[i].crf, "kbps", round_real(pts[i].kbps, 10),
                                                 "psnr", round_real(pts[i].psnr, 1000), "ssim",
                                                 round_real(pts[i].ssim, 100000), "hull", on));
    }

    /* the ladder: sizes, rates, caps; names unique ("720p", "720p-400k") */
    memset(lad, 0, sizeof(*lad));
    double fps = (double)pt->s.fps_num / pt->s.fps_den;
    json_t *jr = json_array();
    json_t *jav1 = pt->s.av1 ? json_array() : NULL;
    for (int i = 0; i < nr; i++) {
        const pt_rung *g = &rungs[i];
        int target = (int)lround(g->kbps);
        if (target < 1)
            target = 1;
        int maxrate = pt_maxrate(target, cap);
        char name[16];
        int dup = 0;
        for (int k = i + 1; k < nr; k++)
            dup |= rungs[k].height == g->height;
        if (dup)
            snprintf(name, sizeof(name), "%dp-%dk", g->height % 100000, target % 1000000);
        else
            snprintf(name, sizeof(name), "%dp", g->height % 100000);
        plan_rung_make(&lad->rungs[lad->n++], name, g->width, g->height, fps, maxrate, target, g->crf);
        if (pt->s.av1 && av1_rung(pt, pts, npts, &lim, apts, napts, g, &lad->rungs[lad->n - 1], jav1))
            goto nomem;
        json_array_append_new(jr, json_pack("{s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:i, s:s}", "name",
                                            name, "width", g->width, "height", g->height,
                                            "target_kbps", target, "crf", round_real(g->crf, 10),
                                            "predicted_psnr", round_real(g->psnr, 100),
                                            "predicted_ssim", round_real(g->ssim, 10000),
                                            "maxrate_kbps", maxrate, "why", g->why));
    }

    an_summary sum;
    an_summarise(pt->si, pt->nsi, pt->ti, pt->nti, &sum);
    /* coding cost: bits per pixel of the top resolution at CRF 30 (from its
     * nearest probe, x264 halving the rate about every 6 CRF steps) */
    double bpp30 = -1, best = 1e9;
    for (int i = 0; i < npts; i++)
        if (pts[i].height == pt->s.top_h && fabs(pts[i].crf - 30) < best) {
            best = fabs(pts[i].crf - 30);
            bpp30 = pts[i].kbps * 1000 * pow(2, (pts[i].crf - 30) / 6) /
                    ((double)pts[i].width * pts[i].height * fps);
        }
    const char *cls = an_class(&sum, bpp30);
    json_t *wins = json_array();
    for (int i = 0; i < pt->nwin; i++)
        json_array_append_new(wins, json_pack("{s:o, s:i}", "start", round_real(pt->win_t[i], 1000),
                                              "frames", pt->win_n[i]));
    json_t *cuts = json_array();
    for (int i = 0; i < pt->ncuts; i++)
        json_array_append_new(cuts, round_real(pt->cuts[i], 1000));
    double sampled_s = pt->nfed / fps;
    char size[32];
    snprintf(size, sizeof(size), "%dx%d", pt->an_w, pt->an_h);
    json_t *an = json_pack(
        "{s:o, s:I, s:s, s:{s:o, s:o, s:o}, s:{s:o, s:o, s:o}, s:o, s:o, s:s}", "windows", wins,
        "frames", (json_int_t)pt->nfed, "size", size, "si", "mean", round_real(sum.si_mean, 100), "max",
        round_real(sum.si_max, 100), "p90", round_real(sum.si_p90, 100), "ti", "mean",
        round_real(sum.ti_mean, 100), "max", round_real(sum.ti_max, 100), "p90",
        round_real(sum.ti_p90, 100), "scene_cuts", cuts, "scene_cuts_per_minute",
        round_real(sampled_s > 0 ? pt->ncuts * 60.0 / sampled_s : 0, 10), "class", cls);
    json_object_set_new(an, "bpp_crf30", round_real(bpp30, 10000));
    json_t *crfs = json_array();
    for (int k = 0; k < PT_NCRF; k++)
        json_array_append_new(crfs, json_real(probe_crfs[k]));
    json_t *probes = json_pack("{s:o, s:I, s:i, s:i, s:o, s:i, s:i}", "crfs", crfs, "frames",
                               (json_int_t)pt->nfed, "quality_frames_per_probe",
                               pt->nres ? qframes / pt->nres : 0, "keyint", pt->s.keyint,
                               "points", jpoints, "cpu_tokens", pt->s.tokens, "busy_max",
                               pt->busy_max);
    json_t *lims = json_pack("{s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "min_rungs",
                             lim.min_rungs, "max_rungs", lim.max_rungs, "max_step", lim.max_step, "min_step",
                             lim.min_step, "top_psnr", lim.top_psnr, "max_kbps", lim.max_kbps,
                             "floor_kbps", lim.floor_kbps, "crf_min", lim.crf_min, "crf_max",
                             lim.crf_max, "extrap", lim.extrap, "extrap_lo", lim.extrap_lo);
    *report = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "analysis", an, "probes", probes,
                        "limits", lims, "rungs", jr, "seconds",
                        round_real(ss_mono_s() - pt->t_start, 1000), "cpu_seconds_probe_threads",
                        round_real(cpu, 100));
    if (*report && jav1)
        json_object_set_new(*report, "codecs", codecs_report(pt, apts, napts, jav1));
    return *report ? 0 : ss_fail(err, SS_ENOMEM, "out of memory");
nomem:
    json_decref(jr);
    json_decref(jav1);
    json_decref(jpoints);
    return ss_fail(err, SS_ENOMEM, "out of memory");
}

void pt_free(pt_ctx **ppt)
{
    pt_ctx *pt = *ppt;
    if (!pt)
        return;
    atomic_store(&pt->abort, 1);
    for (int i = 0; i < pt->nres; i++)
        if (pt->r[i].started)
            pthread_join(pt->r[i].th, NULL);
    for (int i = 0; i < pt->nres; i++) {
        pres *r = &pt->r[i];
        enc_free(&r->pr.enc);
        qmeter_free(&r->pr.qm);
        sws_freeContext(r->sws);
        if (r->qinit)
            frameq_destroy(&r->q);
    }
    sws_freeContext(pt->an_sws);
    av_frame_free(&pt->an_cur);
    av_frame_free(&pt->an_prev);
    free(pt->flags);
    free(pt->si);
    free(pt->ti);
    free(pt->ti_win);
    free(pt->hd_win);
    free(pt->cuts);
    pthread_mutex_destroy(&pt->mu);
    free(pt);
    *ppt = NULL;
}
