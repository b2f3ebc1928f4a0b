/* quality.c — luma PSNR/SSIM and the output meter (see quality.h). */
#include "quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#define QM_MAXREF 48

double q_mse(const uint8_t *a, ptrdiff_t as, const uint8_t *b, ptrdiff_t bs, int w, int h)
{
    if (w <= 0 || h <= 0)
        return 0;
    uint64_t sum = 0;
    for (int r = 0; r < h; r++) {
        const uint8_t *x = a + r * as, *y = b + r * bs;
        uint32_t s = 0;   /* a row of up to 66,000 pixels fits */
        for (int i = 0; i < w; i++) {
            int d = x[i] - y[i];
            s += (uint32_t)(d * d);
        }
        sum += s;
    }
    return (double)sum / ((double)w * h);
}

double q_psnr(double mse)
{
    if (mse <= 1e-10)
        return Q_PSNR_MAX;
    double p = 10.0 * log10(255.0 * 255.0 / mse);
    return p > Q_PSNR_MAX ? Q_PSNR_MAX : p;
}

/* SSIM of one window from its sums over n pixels. */
static double ssim_window(double n, double s1, double s2, double ss, double s12)
{
    const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
    double mx = s1 / n, my = s2 / n;
    double d = n > 1 ? n - 1 : 1;
    double vxy = (ss - (s1 * s1 + s2 * s2) / n) / d;   /* vx + vy */
    double cxy = (s12 - s1 * s2 / n) / d;
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vxy + c2));
}

double q_ssim(const uint8_t *a, ptrdiff_t as, const uint8_t *b, ptrdiff_t bs, int w, int h)
{
    if (w <= 0 || h <= 0)
        return 1;
    if (w < 8 || h < 8) {
        double s1 = 0, s2 = 0, ss = 0, s12 = 0;
        for (int r = 0; r < h; r++)
            for (int i = 0; i < w; i++) {
                double x = a[r * as + i], y = b[r * bs + i];
                s1 += x;
                s2 += y;
                ss += x * x + y * y;
                s12 += x * y;
            }
        return ssim_window((double)w * h, s1, s2, ss, s12);
    }
    /* sums over 4x4 blocks, then every 2x2 group of blocks is a window */
    int bw = w / 4, bh = h / 4;
    uint32_t *blk = malloc((size_t)bw * 2 * 4 * sizeof(*blk));   /* two rows of blocks */
    if (!blk)
        return 0;
    double total = 0;
    long nwin = 0;
    for (int by = 0; by < bh; by++) {
        uint32_t *row = blk + (size_t)(by & 1) * bw * 4;
        for (int bx = 0; bx < bw; bx++) {
            uint32_t s1 = 0, s2 = 0, ss = 0, s12 = 0;
            for (int r = 0; r < 4; r++) {
                const uint8_t *x = a + (by * 4 + r) * as + bx * 4, *y = b + (by * 4 + r) * bs + bx * 4;
                for (int i = 0; i < 4; i++) {
                    s1 += x[i];
                    s2 += y[i];
                    ss += x[i] * x[i] + y[i] * y[i];
                    s12 += x[i] * y[i];
                }
            }
            row[bx * 4 + 0] = s1;
            row[bx * 4 + 1] = s2;
            row[bx * 4 + 2] = ss;
            row[bx * 4 + 3] = s12;
        }
        if (by == 0)
            continue;
        uint32_t *up = blk + (size_t)((by - 1) & 1) * bw * 4;
        for (int bx = 0; bx + 1 < bw; bx++) {
            double s[4];
            for (int k = 0; k < 4; k++)
                s[k] = (double)up[bx * 4 + k] + up[(bx + 1) * 4 + k] + row[bx * 4 + k] +
                       row[(bx + 1) * 4 + k];
            total += ssim_window(64, s[0], s[1], s[2], s[3]);
            nwin++;
        }
    }
    free(blk);
    return nwin ? total / nwin : 1;
}

/* ---- the meter ------------------------------------------------------ */

/* A bicubic scaler of the luma of fmt (w x h) to GRAY8 (ow x oh) that
 * keeps the sample values' range: swscale takes gray as full range and
 * would otherwise stretch limited-range luma (16..235) to 0..255. */
struct SwsContext *q_luma_scaler(struct SwsContext *c, int w, int h, int fmt, int ow, int oh)
{
    struct SwsContext *n = sws_getCachedContext(c, w, h, fmt, ow, oh, AV_PIX_FMT_GRAY8, SWS_BICUBIC,
                                                NULL, NULL, NULL);
    if (n) {
        int *inv, *tab, sr, dr, b, ct, sat;
        if (sws_getColorspaceDetails(n, &inv, &sr, &tab, &dr, &b, &ct, &sat) >= 0 && (sr || dr))
            sws_setColorspaceDetails(n, inv, 0, tab, 0, b, ct, sat);
    }
    return n;
}

struct qmeter {
    AVCodecContext *dec;
    AVFrame *frame;
    int ref_w, ref_h;
    AVFrame *refs[QM_MAXREF];     /* gray ref_w x ref_h or the caller's frame, by pts */
    int nrefs;
    struct SwsContext *sws_ref, *sws_dec;
    AVFrame *scaled;              /* decoded frame at the reference size (gray) */
    q_sample *s;
    int n, cap;
    int errors;
};

qmeter *qmeter_new(const AVCodecContext *enc, int ref_w, int ref_h, ss_err *err)
{
    qmeter *m = calloc(1, sizeof(*m));
    if (!m) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    m->ref_w = ref_w;
    m->ref_h = ref_h;
    const AVCodec *dc = avcodec_find_decoder(enc->codec_id);
    m->dec = dc ? avcodec_alloc_context3(dc) : NULL;
    m->frame = av_frame_alloc();
    m->scaled = av_frame_alloc();
    if (!m->dec || !m->frame || !m->scaled)
        goto nomem;
    if (enc->extradata_size > 0) {
        m->dec->extradata = av_mallocz((size_t)enc->extradata_size + AV_INPUT_BUFFER_PADDING_SIZE);
        if (!m->dec->extradata)
            goto nomem;
        memcpy(m->dec->extradata, enc->extradata, (size_t)enc->extradata_size);
        m->dec->extradata_size = enc->extradata_size;
    }
    m->dec->width = enc->width;
    m->dec->height = enc->height;
    m->dec->pkt_timebase = enc->time_base;
    m->dec->thread_count = 1;
    if (avcodec_open2(m->dec, dc, NULL) < 0) {
        ss_fail(err, SS_EINTERNAL, "cannot open a decoder to measure quality");
        qmeter_free(&m);
        return NULL;
    }
    m->scaled->format = AV_PIX_FMT_GRAY8;
    m->scaled->width = ref_w;
    m->scaled->height = ref_h;
    if (av_frame_get_buffer(m->scaled, 0) < 0)
        goto nomem;
    return m;
nomem:
    ss_fail(err, SS_ENOMEM, "out of memory");
    qmeter_free(&m);
    return NULL;
}

static void drop_ref(qmeter *m, int i)
{
    av_frame_free(&m->refs[i]);
    memmove(m->refs + i, m->refs + i + 1, (size_t)(m->nrefs - i - 1) * sizeof(m->refs[0]));
    m->nrefs--;
}

int qmeter_ref(qmeter *m, const AVFrame *src, ss_err *err)
{
    AVFrame *r = av_frame_alloc();
    if (!r)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (src->width == m->ref_w && src->height == m->ref_h) {
        if (av_frame_ref(r, src) < 0) {
            av_frame_free(&r);
            return ss_fail(err, SS_ENOMEM, "out of memory");
        }
    } else {
        m->sws_ref = q_luma_scaler(m->sws_ref, src->width, src->height, src->format, m->ref_w,
                                   m->ref_h);
        r->format = AV_PIX_FMT_GRAY8;
        r->width = m->ref_w;
        r->height = m->ref_h;
        if (!m->sws_ref || av_frame_get_buffer(r, 0) < 0) {
            av_frame_free(&r);
            return ss_fail(err, SS_ENOMEM, "cannot scale a quality reference");
        }
        sws_scale(m->sws_ref, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
                  r->data, r->linesize);
        r->pts = src->pts;
    }
    if (m->nrefs == QM_MAXREF)
        drop_ref(m, 0);
    int i = m->nrefs;
    while (i > 0 && m->refs[i - 1]->pts > r->pts)
        i--;
    memmove(m->refs + i + 1, m->refs + i, (size_t)(m->nrefs - i) * sizeof(m->refs[0]));
    m->refs[i] = r;
    m->nrefs++;
    return 0;
}

static int measure(qmeter *m, const AVFrame *f, int64_t pts, ss_err *err)
{
    int i = 0;
    while (i < m->nrefs && m->refs[i]->pts < pts)
        drop_ref(m, i);   /* a reference whose frame never came */
    if (i >= m->nrefs || m->refs[i]->pts != pts)
        return 0;
    const AVFrame *ref = m->refs[i];
    const uint8_t *y = f->data[0];
    int ys = f->linesize[0];
    if (f->width != m->ref_w || f->height != m->ref_h) {
        m->sws_dec = q_luma_scaler(m->sws_dec, f->width, f->height, f->format, m->ref_w, m->ref_h);
        if (!m->sws_dec || av_frame_make_writable(m->scaled) < 0)
            return ss_fail(err, SS_ENOMEM, "cannot scale a decoded frame to measure it");
        sws_scale(m->sws_dec, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                  m->scaled->data, m->scaled->linesize);
        y = m->scaled->data[0];
        ys = m->scaled->linesize[0];
    }
    if (m->n == m->cap) {
        int c = m->cap ? m->cap * 2 : 64;
        q_sample *s = realloc(m->s, (size_t)c * sizeof(*s));
        if (!s)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        m->s = s;
        m->cap = c;
    }
    q_sample *q = &m->s[m->n++];
    q->pts = pts;
    q->mse = q_mse(ref->data[0], ref->linesize[0], y, ys, m->ref_w, m->ref_h);
    q->ssim = q_ssim(ref->data[0], ref->linesize[0], y, ys, m->ref_w, m->ref_h);
    drop_ref(m, i);
    return 0;
}

static int receive(qmeter *m, ss_err *err)
{
    for (;;) {
        int r = avcodec_receive_frame(m->dec, m->frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r < 0) {
            m->errors++;
            continue;
        }
        int64_t pts = m->frame->best_effort_timestamp != AV_NOPTS_VALUE ? m->frame->best_effort_timestamp
                                                                         : m->frame->pts;
        r = measure(m, m->frame, pts, err);
        av_frame_unref(m->frame);
        if (r)
            return -1;
    }
}

int qmeter_drain(qmeter *m, ss_err *err)
{
    avcodec_send_packet(m->dec, NULL);
    int r = receive(m, err);
    avcodec_flush_buffers(m->dec);
    return r;
}

int qmeter_packet(qmeter *m, const AVPacket *pkt, ss_err *err)
{
    int r = avcodec_send_packet(m->dec, pkt);
    if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_EOF)
        m->errors++;
    if (receive(m, err))
        return -1;
    if (!pkt) {
        avcodec_flush_buffers(m->dec);
        while (m->nrefs)
            drop_ref(m, 0);
    }
    return 0;
}

const q_sample *qmeter_samples(const qmeter *m, int *n)
{
    *n = m->n;
    return m->s;
}

int qmeter_errors(const qmeter *m)
{
    return m->errors;
}

void qmeter_mean(const qmeter *m, double *psnr, double *ssim)
{
    *psnr = *ssim = 0;
    if (!m->n)
        return;
    double mse = 0, ss = 0;
    for (int i = 0; i < m->n; i++) {
        mse += m->s[i].mse;
        ss += m->s[i].ssim;
    }
    *psnr = q_psnr(mse / m->n);
    *ssim = ss / m->n;
}

void qmeter_free(qmeter **pm)
{
    qmeter *m = *pm;
    if (!m)
        return;
    avcodec_free_context(&m->dec);
    av_frame_free(&m->frame);
    av_frame_free(&m->scaled);
    while (m->nrefs)
        drop_ref(m, 0);
    sws_freeContext(m->sws_ref);
    sws_freeContext(m->sws_dec);
    free(m->s);
    free(m);
    *pm = NULL;
}
