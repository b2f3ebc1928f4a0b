/* thumbs.c — poster, sprite and WebVTT storyboard from the frames of the one
 * decode (mediai.h). Frames arrive upright, yuv420p, at the pre-filter's
 * size and SAR; everything written is scaled to the display aspect.
 *
 * Poster: one frame a second (in the first half of the title) is measured
 * on a sparse luma grid; near-black, near-white and near-uniform frames
 * are skipped, the one with the most detail (mean absolute gradient) wins.
 * If none passes, the most detailed frame seen is used. At most 1280 wide.
 * Sprite: a 160-px-wide tile every `interval` seconds (stretched so there
 * are at most 400 tiles), 10 per row. JPEG by libavcodec's mjpeg. */
#include "mediai.h"
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libswscale/swscale.h>

#include "util.h"

#define TILE_W 160
/* A very tall picture (a damaged header's size or aspect ratio: 1280x720
 * with a pixel aspect of 1:1000 is shown 1 pixel wide) gets narrower tiles
 * and poster instead of taller ones: a 160-wide tile of it was 115200
 * lines, over JPEG's 65535, and 400 of them would take 11 GB. */
#define MAX_TILE_H 640
#define MAX_POSTER_H 4096
#define MAX_TILES 400
#define COLS 10

struct thumbs {
    int dw, dh;
    double duration, interval;
    AVFrame *best;          /* passes the filter */
    double best_score;
    AVFrame *any;           /* most detailed of all sampled */
    double any_score;
    double next_sample;
    int tw, th;
    AVFrame **tiles;
    int ntiles, tsz;
    double next_tile;
    double last_t;
    struct SwsContext *sws;
};

thumbs *thumbs_new(int dw, int dh, double duration, double interval)
{
    thumbs *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->dw = dw > 0 ? dw : 2;
    t->dh = dh > 0 ? dh : 2;
    t->duration = duration;
    t->interval = interval > 0 ? interval : 10.0;
    if (duration > 0 && duration / t->interval > MAX_TILES)
        t->interval = duration / MAX_TILES;
    t->tw = TILE_W;
    t->th = plan_even((double)TILE_W * t->dh / t->dw);
    if (t->th > MAX_TILE_H) {
        t->th = MAX_TILE_H;
        t->tw = plan_even((double)MAX_TILE_H * t->dw / t->dh);
    }
    t->best_score = t->any_score = -1;
    return t;
}

/* mean luma, standard deviation, mean absolute gradient on a sparse grid */
static void measure(const AVFrame *f, double *mean, double *sd, double *detail)
{
    int step = f->width > 640 ? 4 : 2;
    double s = 0, s2 = 0, g = 0;
    long n = 0;
    for (int y = 0; y + step < f->height; y += step) {
        const uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        const uint8_t *below = row + (ptrdiff_t)step * f->linesize[0];
        for (int x = 0; x + step < f->width; x += step) {
            int v = row[x];
            s += v;
            s2 += (double)v * v;
            g += abs(v - row[x + step]) + abs(v - below[x]);
            n++;
        }
    }
    if (!n) {
        *mean = *sd = *detail = 0;
        return;
    }
    *mean = s / n;
    double var = s2 / n - *mean * *mean;
    *sd = var > 0 ? sqrt(var) : 0;
    *detail = g / n;
}

static AVFrame *scaled(thumbs *t, const AVFrame *f, int w, int h, ss_err *err)
{
    t->sws = sws_getCachedContext(t->sws, f->width, f->height, f->format, w, h,
                                  AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL, NULL, NULL);
    AVFrame *o = av_frame_alloc();
    if (!t->sws || !o) {
        av_frame_free(&o);
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    o->width = w;
    o->height = h;
    o->format = AV_PIX_FMT_YUVJ420P;
    if (av_frame_get_buffer(o, 0) < 0) {
        av_frame_free(&o);
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    sws_scale(t->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, o->data,
              o->linesize);
    return o;
}

int thumbs_feed(thumbs *t, const AVFrame *f, double ts, ss_err *err)
{
    if (!t)
        return 0;
    t->last_t = ts;
    if (ts >= t->next_sample && (t->duration <= 0 || ts <= t->duration / 2 || !t->any)) {
        double sstep = t->duration > 120 ? t->duration / 120 : 1.0;
        t->next_sample = ts + sstep;
        double mean, sd, detail;
        measure(f, &mean, &sd, &detail);
        if (detail > t->any_score) {
            av_frame_free(&t->any);
            t->any = av_frame_clone(f);
            t->any_score = detail;
        }
        if (mean >= 24 && mean <= 232 && sd >= 12 && detail > t->best_score) {
            av_frame_free(&t->best);
            t->best = av_frame_clone(f);
            t->best_score = detail;
        }
    }
    if (ts >= t->next_tile) {
        while (t->next_tile <= ts)
            t->next_tile += t->interval;
        if (t->ntiles == t->tsz) {
            int n = t->tsz ? t->tsz * 2 : 32;
            AVFrame **p = realloc(t->tiles, (size_t)n * sizeof(*p));
            if (!p)
                return ss_fail(err, SS_ENOMEM, "out of memory");
            t->tiles = p;
            t->tsz = n;
        }
        AVFrame *o = scaled(t, f, t->tw, t->th, err);
        if (!o)
            return -1;
        t->tiles[t->ntiles++] = o;
    }
    return 0;
}

static int jpeg(const AVFrame *f, const char *dir, const char *name, const media_events *ev,
                ss_err *err)
{
    const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!c)
        return ss_fail(err, SS_EINTERNAL, "mjpeg encoder not available");
    AVCodecContext *cx = avcodec_alloc_context3(c);
    AVPacket *p = av_packet_alloc();
    AVFrame *in = av_frame_clone(f);
    int ret = -1;
    if (!cx || !p || !in) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    cx->width = f->width;
    cx->height = f->height;
    cx->pix_fmt = AV_PIX_FMT_YUVJ420P;
    cx->time_base = (AVRational){ 1, 25 };
    cx->flags |= AV_CODEC_FLAG_QSCALE;
    cx->global_quality = 3 * FF_QP2LAMBDA;
    if (avcodec_open2(cx, c, NULL) < 0) {
        ss_fail(err, SS_EINTERNAL, "mjpeg encoder would not open");
        goto out;
    }
    in->quality = cx->global_quality;
    in->pts = 0;
    if (avcodec_send_frame(cx, in) < 0 || avcodec_send_frame(cx, NULL) < 0 ||
        avcodec_receive_packet(cx, p) < 0) {
        ss_fail(err, SS_EINTERNAL, "mjpeg encoding failed");
        goto out;
    }
    ret = media_write_file(dir, "thumbs", name, p->data, (size_t)p->size, ev, err);
out:
    av_frame_free(&in);
    av_packet_free(&p);
    avcodec_free_context(&cx);
    return ret;
}

static void vtt_time(char *out, size_t n, double t)
{
    long ms = lround(t * 1000);
    snprintf(out, n, "%02ld:%02ld:%02ld.%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
             ms % 1000);
}

int thumbs_finish(thumbs *t, const char *outdir, const media_events *ev, json_t **info,
                  ss_err *err)
{
    *info = NULL;
    const AVFrame *pf = t->best ? t->best : t->any;
    if (!pf || !t->ntiles)
        return 0;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/thumbs", outdir);
    if (ss_mkdir_p(dir, err))
        return -1;
    int pw = t->dw > 1280 ? 1280 : t->dw;
    pw = plan_even(pw);
    int ph = plan_even((double)pw * t->dh / t->dw);
    if (ph > MAX_POSTER_H) {
        ph = MAX_POSTER_H;
        pw = plan_even((double)MAX_POSTER_H * t->dw / t->dh);
    }
    AVFrame *poster = scaled(t, pf, pw, ph, err);
    if (!poster)
        return -1;
    int r = jpeg(poster, dir, "poster.jpg", ev, err);
    av_frame_free(&poster);
    if (r)
        return -1;

    int cols = t->ntiles < COLS ? t->ntiles : COLS;
    int rows = (t->ntiles + cols - 1) / cols;
    AVFrame *sp = av_frame_alloc();
    if (!sp)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    sp->width = cols * t->tw;
    sp->height = rows * t->th;
    sp->format = AV_PIX_FMT_YUVJ420P;
    if (av_frame_get_buffer(sp, 0) < 0) {
        av_frame_free(&sp);
        return ss_fail(err, SS_ENOMEM, "out of memory");
    }
    for (int y = 0; y < sp->height; y++)
        memset(sp->data[0] + (ptrdiff_t)y * sp->linesize[0], 0, (size_t)sp->width);
    for (int p = 1; p < 3; p++)
        for (int y = 0; y < sp->height / 2; y++)
            memset(sp->data[p] + (ptrdiff_t)y * sp->linesize[p], 128, (size_t)sp->width / 2);
    for (int i = 0; i < t->ntiles; i++) {
        const AVFrame *tl = t->tiles[i];
        int x0 = (i % cols) * t->tw, y0 = (i / cols) * t->th;
        for (int y = 0; y < t->th; y++)
            memcpy(sp->data[0] + (ptrdiff_t)(y0 + y) * sp->linesize[0] + x0,
                   tl->data[0] + (ptrdiff_t)y * tl->linesize[0], (size_t)t->tw);
        for (int p = 1; p < 3; p++)
            for (int y = 0; y < t->th / 2; y++)
                memcpy(sp->data[p] + (ptrdiff_t)(y0 / 2 + y) * sp->linesize[p] + x0 / 2,
                       tl->data[p] + (ptrdiff_t)y * tl->linesize[p], (size_t)t->tw / 2);
    }
    r = jpeg(sp, dir, "sprite.jpg", ev, err);
    av_frame_free(&sp);
    if (r)
        return -1;

    size_t cap = 64 + (size_t)t->ntiles * 96;
    char *vtt = malloc(cap);
    if (!vtt)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    size_t n = (size_t)snprintf(vtt, cap, "WEBVTT\n\n");
    double end_all = t->last_t + 0.001;
    for (int i = 0; i < t->ntiles; i++) {
        char a[32], b[32];
        double s = i * t->interval, e = (i + 1) * t->interval;
        if (i == t->ntiles - 1 || e > end_all)
            e = end_all > s ? end_all : s + t->interval;
        vtt_time(a, sizeof(a), s);
        vtt_time(b, sizeof(b), e);
        n += (size_t)snprintf(vtt + n, cap - n, "%s --> %s\nsprite.jpg#xywh=%d,%d,%d,%d\n\n", a, b,
                              (i % cols) * t->tw, (i / cols) * t->th, t->tw, t->th);
    }
    r = media_write_file(dir, "thumbs", "storyboard.vtt", vtt, n, ev, err);
    free(vtt);
    if (r)
        return -1;
    *info = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f}", "poster",
                      "thumbs/poster.jpg", "sprite", "thumbs/sprite.jpg", "storyboard",
                      "thumbs/storyboard.vtt", "poster_width", pw, "poster_height", ph,
                      "tile_width", t->tw, "tile_height", t->th, "columns", cols, "tiles",
                      t->ntiles, "interval", t->interval);
    return 0;
}

void thumbs_free(thumbs **tp)
{
    thumbs *t = *tp;
    if (!t)
        return;
    av_frame_free(&t->best);
    av_frame_free(&t->any);
    for (int i = 0; i < t->ntiles; i++)
        av_frame_free(&t->tiles[i]);
    free(t->tiles);
    sws_freeContext(t->sws);
    free(t);
    *tp = NULL;
}
