/* encode.c — media_encode(): decode once, filter, encode every rung, package.
 *
 * Threads:
 *   the caller's thread   demux + decode (frame-threaded decoder) + the
 *                         shared pre-filter (deinterlace, rotate, CFR fps,
 *                         8-bit 4:2:0) + thumbnails + subtitles + audio
 *                         (filter, AAC, its CMAF track: audio is cheap)
 *   one thread per rung   scale (swscale) + libx264 + its CMAF track
 * Between them one bounded queue per rung of refcounted AVFrames (8
 * frames each, sharing the decoder's buffers), so memory stays small and the slowest rung sets the pace.
 *
 * Keyframes: every rung forces an IDR at the first frame whose time is
 * >= k * segment_seconds (plan_boundary_frame) and cuts a segment there, so
 * GOPs are closed and aligned across rungs. Audio segments start at the
 * first AAC frame at or after each boundary.
 *
 * Errors: the first error (any thread) is kept in job.err and raises
 * job.abort; everything is joined and freed on every path. */
#include "mediai.h"
#include "plan.h"
#include "quality.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "log.h"
#include "util.h"

typedef struct job job;

#define Q_SEGMENTS 6   /* measured segments at most (quality_sampling) */

typedef struct rung {
    job *j;
    plan_rung p;
    frameq q;
    pthread_t th;
    int started;
    AVCodecContext *enc;
    struct SwsContext *sws;
    int in_w, in_h;
    cmaf_out *cm;
    int64_t frames;       /* frames encoded */
    int64_t kforce;       /* next boundary index to force */
    int64_t kcut;         /* next boundary index to cut at */
    int64_t last_pts;
    char codecs[40];
    double cpu;           /* CPU seconds of this rung's thread (scale + x264 + mux) */
    qmeter *qm;           /* PSNR/SSIM of the real output (NULL: not measured) */
    int64_t es_bytes;     /* encoded video bytes (elementary stream, no CMAF boxes) */
} rung;

struct job {
    const media_opts *o;
    const media_events *ev;
    const atomic_int *cancel;
    atomic_int abort;
    pthread_mutex_t mu;   /* err, warnings */
    ss_err err;
    json_t *warnings;
    char outdir[4096];
    char log_job[80];     /* the caller's job id, for lines from our threads */

    AVFormatContext *ic;
    probe_info pi;
    AVCodecContext *vdec, *adec;
    AVFilterGraph *vg;
    AVFilterContext *vsrc, *vsink;
    int vg_w, vg_h, vg_fmt;
    struct SwsContext *fix;   /* mid-stream size/format changes -> first geometry */
    AVFilterGraph *ag;
    AVFilterContext *asrc, *asink;
    AVCodecContext *aenc;
    cmaf_out *acm;
    int fps_num, fps_den, seg_num, seg_den;
    plan_ladder lad;
    rung rungs[MEDIA_MAX_RUNGS];
    thumbs *th;
    subs *sb;

    int64_t t0;             /* video start, video stream time base */
    double t0s;
    int64_t next_vpts;      /* guess for frames without a timestamp */
    int64_t vts_shift;      /* added to video timestamps after a discontinuity */
    int64_t ts_fixed;       /* video timestamps re-timed (damaged or discontinuous) */
    int64_t first_out;      /* pts of the first pre-filtered frame */
    int64_t vframes;        /* frames out of the pre-filter */
    int64_t dec_errors;
    int64_t apts_next;      /* guess for audio frames without a timestamp */
    int64_t ats_shift;      /* added to audio timestamps after a discontinuity */
    int64_t ats_fixed;      /* audio frames re-timed or dropped (damaged timestamps) */
    int apts_any;           /* an audio frame has been timed */
    int64_t asamples;       /* samples given to the AAC encoder */
    int64_t akcut;
    AVPacket **hold;        /* AAC packets waiting for the video to pass them */
    int nhold, holdsz;
    double last_progress;
    int aborted_by_cancel;
    int pass;               /* 0: single pass; 1, 2: two-pass rate control */
    pt_ctx *pt;             /* the per-title pass, while it runs */
    json_t *pt_report;      /* its result["per_title"] */
    double t_analysis;      /* its wall time */
    double fps_start;       /* the fps filter's grid start, seconds from the video start */
    int64_t win_start_ts;   /* per-title window: its first source pts (from t0) */
    int win_left;           /* ... and the frames it still wants */
    int win_pending;        /* its first frame has not come yet */
    int64_t pt_decoded;     /* frames decoded for the per-title windows */
    int pt_seeked;          /* a seek happened: check the next frame */
    int pt_reseek;          /* ... it was damaged: go back to the start */
    int pt_noseek;          /* decode on from now, no more seeks */
    int win_snap;           /* it starts at a source keyframe: at its first frame */
    int qref_w, qref_h;     /* quality is measured at this (display) size */
    int64_t q_segs[Q_SEGMENTS];  /* ... in these segments */
    int q_nsegs;            /* (0: quality is not measured) */
    int q_fstep;            /* ... on every q_fstep-th frame from q_fstep/2 */
    char stats_dir[4096];   /* x264 first-pass statistics */
};

/* ------------------------------------------------------------------ */

static int cancelled(job *j)
{
    if (j->cancel && atomic_load(j->cancel)) {
        j->aborted_by_cancel = 1;
        atomic_store(&j->abort, 1);
    }
    return atomic_load(&j->abort);
}

static int job_fail(job *j, ss_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int job_fail(job *j, ss_code code, const char *fmt, ...)
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

static int job_fail_err(job *j, const ss_err *e)
{
    return job_fail(j, e->code ? e->code : SS_EINTERNAL, "%s", e->msg);
}

static void job_warn(void *ud, const char *msg)
{
    job *j = ud;
    pthread_mutex_lock(&j->mu);
    json_array_append_new(j->warnings, json_string(msg));
    pthread_mutex_unlock(&j->mu);
    if (j->ev && j->ev->warning)
        j->ev->warning(j->ev->ud, msg);
}

static void progress(job *j, const char *stage, double f)
{
    if (f < 0)
        f = 0;
    if (f > 1)
        f = 1;
    if (j->ev && j->ev->progress)
        j->ev->progress(j->ev->ud, stage, f);
}

/* Is segment seg one whose quality is measured? */
static int q_measured(const job *j, int64_t seg)
{
    for (int i = 0; i < j->q_nsegs; i++)
        if (j->q_segs[i] == seg)
            return 1;
    return 0;
}

/* x264 options beyond the preset. Segments are cut only at the forced
 * IDRs, so x264's own keyframes at scene cuts (scenecut) cannot break the
 * alignment of the rungs; the fixed ladders keep them off (the same
 * bitstream as the ffmpeg command line they are compared with), per-title
 * turns them on: a cut gets an I-frame, or an IDR when it is more than
 * half a segment after the last one (x264 clamps min-keyint to keyint/2+1). */
static const char *x264_params(const job *j)
{
    /* two-pass: x264 lets the average drift by ratetol (default 1.0) to
     * spread quality; at 0.1 it keeps to the target (measured: a 150 kbps
     * 360p rung came out 8 % over with 1.0, 2 % with 0.1; other rungs
     * within 1 % either way) */
    if (j->pass)
        return j->o->ladder == MEDIA_LADDER_PER_TITLE ? "open-gop=0:ratetol=0.1"
                                                      : "scenecut=0:open-gop=0:ratetol=0.1";
    return j->o->ladder == MEDIA_LADDER_PER_TITLE ? "open-gop=0" : "scenecut=0:open-gop=0";
}

/* frameq stop callback: the job is aborting (or cancelled). */
static int stop_cb(void *ud)
{
    return cancelled(ud);
}

/* ---- rungs ---------------------------------------------------------- */

static int rung_open(job *j, rung *g, int threads, ss_err *err)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        return ss_fail(err, SS_EINTERNAL, "libx264 encoder not available");
    AVCodecContext *c = g->enc = avcodec_alloc_context3(codec);
    if (!c)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    c->width = g->p.width;
    c->height = g->p.height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){ j->fps_den, j->fps_num };
    c->framerate = (AVRational){ j->fps_num, j->fps_den };
    c->sample_aspect_ratio = (AVRational){ 1, 1 };
    int keyint = plan_keyint(j->fps_num, j->fps_den, j->seg_num, j->seg_den);
    c->gop_size = keyint;
    c->keyint_min = keyint;
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    c->rc_max_rate = (int64_t)g->p.maxrate_kbps * 1000;
    c->rc_buffer_size = g->p.bufsize_kbits * 1000;
    if (j->pass) {
        c->bit_rate = (int64_t)g->p.target_kbps * 1000;
        c->flags |= j->pass == 1 ? AV_CODEC_FLAG_PASS1 : AV_CODEC_FLAG_PASS2;
    }
    c->level = g->p.level;
    c->thread_count = threads;
    c->color_range = AVCOL_RANGE_MPEG;
    if (j->vdec) {
        c->color_primaries = j->vdec->color_primaries;
        c->color_trc = j->vdec->color_trc;
        c->colorspace = j->vdec->colorspace;
    }
    AVDictionary *d = NULL;
    char crf[16];
    if (g->p.crf_exact > 0)
        snprintf(crf, sizeof(crf), "%.1f", g->p.crf_exact);
    else
        snprintf(crf, sizeof(crf), "%d", g->p.crf);
    av_dict_set(&d, "preset", j->o->preset ? j->o->preset : "veryfast", 0);
    av_dict_set(&d, "profile", "high", 0);
    if (j->pass) {
        char stats[4200];
        snprintf(stats, sizeof(stats), "%s/%s.log", j->stats_dir, g->p.name);
        av_dict_set(&d, "stats", stats, 0);
    } else {
        av_dict_set(&d, "crf", crf, 0);
    }
    av_dict_set(&d, "forced-idr", "1", 0);
    av_dict_set(&d, "x264-params", x264_params(j), 0);
    int r = avcodec_open2(c, codec, &d);
    av_dict_free(&d);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "libx264 for %s: %s", g->p.name, e);
    }
    if (plan_avc_codec_string(c->extradata, (size_t)c->extradata_size, g->codecs,
                              sizeof(g->codecs)))
        return ss_fail(err, SS_EINTERNAL, "libx264 for %s gave no SPS", g->p.name);
    if (j->pass == 1)
        return 0;   /* first pass: statistics only, packets are dropped */
    if (j->q_nsegs > 0 && !(g->qm = qmeter_new(c, j->qref_w, j->qref_h, err)))
        return -1;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/%s", j->outdir, g->p.name);
    g->cm = cmaf_open(dir, g->p.name, c, j->ev, err);
    return g->cm ? 0 : -1;
}

static int rung_drain(rung *g, ss_err *err)
{
    job *j = g->j;
    AVPacket *pkt = av_packet_alloc();
    if (!pkt)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int ret = 0;
    for (;;) {
        int r = avcodec_receive_packet(g->enc, pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            char e[128];
            media_averr(r, e, sizeof(e));
            ret = ss_fail(err, SS_EINTERNAL, "libx264 for %s: %s", g->p.name, e);
            break;
        }
        int cut = 0;
        if ((pkt->flags & AV_PKT_FLAG_KEY) &&
            pkt->pts >= plan_boundary_frame(g->kcut, j->fps_num, j->fps_den, j->seg_num, j->seg_den)) {
            cut = g->kcut > 0;
            while (plan_boundary_frame(g->kcut, j->fps_num, j->fps_den, j->seg_num, j->seg_den) <=
                   pkt->pts)
                g->kcut++;
        }
        /* A fragment's length is the sum of its samples' durations, the
         * last one's from the packet: libx264 leaves it 0, so with one
         * frame a segment (1 fps, 1 s segments) every fragment lasted 0
         * and the next one started where it did (tfdt 0, 0, 1 s, ...). */
        if (pkt->duration <= 0)
            pkt->duration = 1;
        g->es_bytes += pkt->size;
        /* the meter decodes the measured segments (before cmaf_write
         * rescales the timestamps) */
        r = g->qm && q_measured(j, g->kcut - 1) ? qmeter_packet(g->qm, pkt, err) : 0;
        if (!r)
            r = g->cm ? cmaf_write(g->cm, pkt, cut, err) : 0;
        av_packet_unref(pkt);
        if (r) {
            ret = -1;
            break;
        }
    }
    av_packet_free(&pkt);
    return ret;
}

static int rung_encode(rung *g, AVFrame *in, ss_err *err)
{
    job *j = g->j;
    AVFrame *f = in;
    AVFrame *scaled = NULL;
    if (in && (in->width != g->p.width || in->height != g->p.height)) {
        if (!g->sws || g->in_w != in->width || g->in_h != in->height) {
            sws_freeContext(g->sws);
            g->sws = sws_getContext(in->width, in->height, in->format, g->p.width, g->p.height,
                                    AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
            g->in_w = in->width;
            g->in_h = in->height;
            if (!g->sws)
                return ss_fail(err, SS_EINTERNAL, "swscale for %s", g->p.name);
        }
        scaled = av_frame_alloc();
        if (!scaled)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        scaled->width = g->p.width;
        scaled->height = g->p.height;
        scaled->format = AV_PIX_FMT_YUV420P;
        if (av_frame_get_buffer(scaled, 0) < 0) {
            av_frame_free(&scaled);
            return ss_fail(err, SS_ENOMEM, "out of memory");
        }
        sws_scale(g->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height,
                  scaled->data, scaled->linesize);
        av_frame_copy_props(scaled, in);
        f = scaled;
    }
    if (f) {
        f->sample_aspect_ratio = (AVRational){ 1, 1 };
        f->pict_type = AV_PICTURE_TYPE_NONE;
        f->key_frame = 0;
        if (f->pts >= plan_boundary_frame(g->kforce, j->fps_num, j->fps_den, j->seg_num,
                                          j->seg_den)) {
            f->pict_type = AV_PICTURE_TYPE_I;
            while (plan_boundary_frame(g->kforce, j->fps_num, j->fps_den, j->seg_num, j->seg_den) <=
                   f->pts)
                g->kforce++;
        }
        g->last_pts = f->pts;
        g->frames++;
        if (g->qm) {
            int64_t seg = g->kforce - 1;
            int64_t off = f->pts - plan_boundary_frame(seg, j->fps_num, j->fps_den, j->seg_num,
                                                       j->seg_den);
            if (q_measured(j, seg) && off % j->q_fstep == j->q_fstep / 2 &&
                qmeter_ref(g->qm, in, err)) {
                av_frame_free(&scaled);
                return -1;
            }
        }
    }
    int r = avcodec_send_frame(g->enc, f);
    av_frame_free(&scaled);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "libx264 for %s: %s", g->p.name, e);
    }
    return rung_drain(g, err);
}

static void *rung_main(void *arg)
{
    rung *g = arg;
    job *j = g->j;
    log_set_job(j->log_job[0] ? j->log_job : NULL);
    ss_err err = { 0 };
    AVFrame *f = NULL;
    int r;
    while ((r = frameq_get(&g->q, &f, stop_cb, j)) > 0) {
        int e = rung_encode(g, f, &err);
        av_frame_free(&f);
        if (e) {
            job_fail_err(j, &err);
            g->cpu = ss_cpu_s(RUSAGE_THREAD);
            return NULL;
        }
    }
    if (r == 0 && (rung_encode(g, NULL, &err) || (g->qm && qmeter_packet(g->qm, NULL, &err)) ||
                   (g->cm && cmaf_finish(g->cm, g->frames ? g->last_pts + 1 : 0, &err))))
        job_fail_err(j, &err);
    g->cpu = ss_cpu_s(RUSAGE_THREAD);
    return NULL;
}

/* ---- video pre-filter ---------------------------------------------- */

static int vfilter_open(job *j, const AVFrame *f, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    char args[512], chain[512];
    AVRational sar = f->sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0)
        sar = (AVRational){ j->pi.sar_num, j->pi.sar_den };
    AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    if (fr.num <= 0 || fr.den <= 0)
        fr = (AVRational){ j->fps_num, j->fps_den };
    snprintf(args, sizeof(args),
             "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d:frame_rate=%d/%d",
             f->width, f->height, f->format, st->time_base.num, st->time_base.den, sar.num, sar.den,
             fr.num, fr.den);
    chain[0] = '\0';
    size_t n = 0;
    if (j->pi.interlaced)
        n += (size_t)snprintf(chain + n, sizeof(chain) - n,
                              "bwdif=mode=send_frame:parity=auto:deint=interlaced,");
    if (j->pi.rotation == 90)
        n += (size_t)snprintf(chain + n, sizeof(chain) - n, "transpose=clock,");
    else if (j->pi.rotation == 180)
        n += (size_t)snprintf(chain + n, sizeof(chain) - n, "hflip,vflip,");
    else if (j->pi.rotation == 270)
        n += (size_t)snprintf(chain + n, sizeof(chain) - n, "transpose=cclock,");
    snprintf(chain + n, sizeof(chain) - n,
             "fps=fps=%d/%d:start_time=%.6f:round=near,format=yuv420p", j->fps_num, j->fps_den,
             j->fps_start);

    j->vg = avfilter_graph_alloc();
    if (!j->vg)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    AVFilterInOut *outs = NULL, *ins = NULL;
    int r = avfilter_graph_create_filter(&j->vsrc, avfilter_get_by_name("buffer"), "in", args, NULL,
                                         j->vg);
    if (r >= 0)
        r = avfilter_graph_create_filter(&j->vsink, avfilter_get_by_name("buffersink"), "out", NULL,
                                         NULL, j->vg);
    if (r >= 0) {
        outs = avfilter_inout_alloc();
        ins = avfilter_inout_alloc();
        if (!outs || !ins) {
            r = AVERROR(ENOMEM);
        } else {
            outs->name = av_strdup("in");
            outs->filter_ctx = j->vsrc;
            ins->name = av_strdup("out");
            ins->filter_ctx = j->vsink;
            r = avfilter_graph_parse_ptr(j->vg, chain, &ins, &outs, NULL);
        }
    }
    if (r >= 0)
        r = avfilter_graph_config(j->vg, NULL);
    avfilter_inout_free(&ins);
    avfilter_inout_free(&outs);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "video filter \"%s\": %s", chain, e);
    }
    j->vg_w = f->width;
    j->vg_h = f->height;
    j->vg_fmt = f->format;
    return 0;
}

/* A frame out of the pre-filter: number it, sample it, hand it to every rung. */
static int video_out(job *j, AVFrame *f, ss_err *err)
{
    if (j->pt) {   /* a per-title window */
        if (j->win_left <= 0)
            return 0;
        j->win_left--;
        return pt_feed(j->pt, f, err);
    }
    if (j->vframes == 0)
        j->first_out = f->pts;
    f->pts -= j->first_out;
    j->vframes++;
    double t = (double)f->pts * j->fps_den / j->fps_num;
    if (j->o->max_duration > 0 && t > j->o->max_duration + 1.0)
        return ss_fail(err, SS_ELIMIT, "source is longer than the limit of %.0f s",
                       j->o->max_duration);
    if (j->th && thumbs_feed(j->th, f, t, err))
        return -1;
    for (int i = 0; i < j->lad.n; i++) {
        AVFrame *c = av_frame_clone(f);
        if (!c)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        if (frameq_put(&j->rungs[i].q, c, stop_cb, j))
            return -1;
    }
    if (j->pi.duration > 0) {
        double p = t / j->pi.duration;
        if (p - j->last_progress >= 0.01 || p >= 1) {
            j->last_progress = p;
            progress(j, j->pass == 1 ? "analysing" : "encoding", p);
            if (j->pass != 1 && j->ev && j->ev->position)
                j->ev->position(j->ev->ud, t, j->vframes);
        }
    }
    return 0;
}

static int vfilter_pull(job *j, ss_err *err)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int ret = 0;
    for (;;) {
        int r = av_buffersink_get_frame(j->vsink, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            char e[128];
            media_averr(r, e, sizeof(e));
            ret = ss_fail(err, SS_EINTERNAL, "video filter: %s", e);
            break;
        }
        ret = video_out(j, f, err);
        av_frame_unref(f);
        if (ret || cancelled(j))
            break;
    }
    av_frame_free(&f);
    return ret;
}

/* A frame's timestamp that moves more than this (seconds) away from the
 * one expected after the frame before it is damaged, or a discontinuity:
 * in formats that have those (MPEG-TS, PS, FLV: the demuxer's
 * AVFMT_TS_DISCONT) always, elsewhere when it also lies past the
 * announced end (the video stream's duration, else the container's).
 * Left alone, the fps filter would fill the jump with copies of the last
 * picture: one flipped PTS byte in a 3 s MPEG-TS clip asked for a day of
 * video. The same bound applies to a frame's duration (it ends the last
 * frame's picture): a longer one must end by the announced end (a still
 * picture over a podcast's audio lasts as long as it says). */
#define TS_JUMP_SECONDS 10.0

/* The announced end of the video (seconds from its start; 0: unknown): the
 * shorter of the video stream's duration and the container's, when both
 * are known (a fragment's damaged tfdt made the stream 23 million years
 * long; libavformat left it out of the container's 3 s). */
static double announced_end(const job *j)
{
    double v = j->pi.vduration, c = j->pi.duration;
    if (v > 0 && c > 0)
        return v < c ? v : c;
    return v > 0 ? v : c;
}

/* The frame's timestamp (video stream time base) on the timeline of the
 * frames before it. */
static int64_t video_pts(job *j, const AVFrame *f, double tb)
{
    int64_t raw = f->best_effort_timestamp;
    int64_t guess = j->next_vpts != AV_NOPTS_VALUE ? j->next_vpts : j->t0;
    if (raw == AV_NOPTS_VALUE)
        return guess;
    if (fabs((double)raw) > 4e18 || fabs((double)raw + (double)j->vts_shift) > 4e18) {
        j->ts_fixed++;   /* nowhere near any real timeline */
        return guess;
    }
    int64_t pts = raw + j->vts_shift;
    if (j->next_vpts == AV_NOPTS_VALUE)
        return pts;
    double gap = ((double)pts - (double)j->next_vpts) * tb;
    if (fabs(gap) <= TS_JUMP_SECONDS)
        return pts;
    if (j->ic->iformat->flags & AVFMT_TS_DISCONT) {
        /* shift everything after it onto the timeline (a lone damaged
         * timestamp shifts back with the frame after it) */
        j->vts_shift = j->next_vpts - raw;
        j->ts_fixed++;
        return j->next_vpts;
    }
    double end = announced_end(j);
    if (gap > 0 && end > 0 && ((double)pts - (double)j->t0) * tb > end + TS_JUMP_SECONDS) {
        j->ts_fixed++;
        return j->next_vpts;
    }
    return pts;
}

static int video_frame(job *j, AVFrame *f, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    double tb = av_q2d(st->time_base);
    int64_t fixed0 = j->ts_fixed;
    int64_t pts = video_pts(j, f, tb);
    int64_t nominal = av_rescale_q(1, (AVRational){ j->fps_den, j->fps_num }, st->time_base);
    int64_t dur = nominal;
    if (f->pkt_duration > 0) {
        double end = announced_end(j);
        double fend = ((double)pts - (double)j->t0 + (double)f->pkt_duration) * tb;
        if (f->pkt_duration * tb <= TS_JUMP_SECONDS || (end > 0 && fend <= end + TS_JUMP_SECONDS))
            dur = f->pkt_duration;
    }
    if (fixed0 == 0 && j->ts_fixed > 0 && j->pass != 1 && !j->pt) {
        char m[160];
        snprintf(m, sizeof(m), "video timestamps jump at %.1f s (damaged or discontinuous): "
                 "frames re-timed to follow on", (double)j->vframes * j->fps_den / j->fps_num);
        job_warn(j, m);
    }
    j->next_vpts = pts + (dur > 0 ? dur : 1);
    f->pts = pts - j->t0;
    if (j->pt && (j->win_left <= 0 || f->pts < j->win_start_ts))
        return 0;   /* before (or after) the per-title window */
    if (j->pt && j->win_pending) {
        /* a window that starts at a keyframe starts at its first frame (the
         * index may give the keyframe's decoding time, a little earlier) */
        if (j->win_snap) {
            j->win_start_ts = f->pts;
            j->fps_start = f->pts * av_q2d(st->time_base);
        }
        j->win_pending = 0;
        if (pt_window(j->pt, j->fps_start, err))
            return -1;
    }
    if (!j->vg && vfilter_open(j, f, err))
        return -1;
    AVFrame *use = f, *fixed = NULL;
    if (f->width != j->vg_w || f->height != j->vg_h || f->format != j->vg_fmt) {
        j->fix = sws_getCachedContext(j->fix, f->width, f->height, f->format, j->vg_w, j->vg_h,
                                      j->vg_fmt, SWS_BICUBIC, NULL, NULL, NULL);
        fixed = av_frame_alloc();
        if (!j->fix || !fixed) {
            av_frame_free(&fixed);
            return ss_fail(err, SS_EMEDIA, "cannot convert a changed picture size");
        }
        fixed->width = j->vg_w;
        fixed->height = j->vg_h;
        fixed->format = j->vg_fmt;
        if (av_frame_get_buffer(fixed, 0) < 0) {
            av_frame_free(&fixed);
            return ss_fail(err, SS_ENOMEM, "out of memory");
        }
        sws_scale(j->fix, (const uint8_t *const *)f->data, f->linesize, 0, f->height, fixed->data,
                  fixed->linesize);
        av_frame_copy_props(fixed, f);
        use = fixed;
    }
    int r = av_buffersrc_add_frame_flags(j->vsrc, use, AV_BUFFERSRC_FLAG_KEEP_REF);
    av_frame_free(&fixed);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "video filter: %s", e);
    }
    return vfilter_pull(j, err);
}

/* Receive every decoded frame available from the video decoder. */
static int video_receive(job *j, AVFrame *f, ss_err *err)
{
    for (;;) {
        int r = avcodec_receive_frame(j->vdec, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r < 0) {
            j->dec_errors++;
            continue;
        }
        if (j->pt) {
            j->pt_decoded++;
            if (j->pt_seeked) {
                /* the first frame after a seek is damaged: the source's
                 * "keyframe" did not start a clean picture (a mislabelled
                 * sync sample, an open GOP); decode from the start instead */
                j->pt_seeked = 0;
                if (f->decode_error_flags) {
                    j->pt_reseek = 1;
                    av_frame_unref(f);
                    return 0;
                }
            }
        }
        r = video_frame(j, f, err);
        av_frame_unref(f);
        if (r)
            return -1;
        if (cancelled(j))
            return 0;
    }
}

/* ---- audio ---------------------------------------------------------- */

static int audio_open(job *j, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.aidx];
    const AVCodec *dc = avcodec_find_decoder(st->codecpar->codec_id);
    j->adec = avcodec_alloc_context3(dc);
    if (!j->adec)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (avcodec_parameters_to_context(j->adec, st->codecpar) < 0 ||
        avcodec_open2(j->adec, dc, NULL) < 0)
        return ss_fail(err, SS_EMEDIA, "cannot open the %s audio decoder", j->pi.acodec);
    const AVCodec *ec = avcodec_find_encoder_by_name("aac");
    if (!ec)
        return ss_fail(err, SS_EINTERNAL, "aac encoder not available");
    AVCodecContext *c = j->aenc = avcodec_alloc_context3(ec);
    if (!c)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    c->sample_rate = 48000;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&c->ch_layout, 2);
    c->bit_rate = (int64_t)(j->o->audio_kbps > 0 ? j->o->audio_kbps : 128) * 1000;
    c->time_base = (AVRational){ 1, 48000 };
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(c, ec, NULL);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "aac encoder: %s", e);
    }
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/audio", j->outdir);
    j->acm = cmaf_open(dir, "audio", c, j->ev, err);
    return j->acm ? 0 : -1;
}

static int afilter_open(job *j, const AVFrame *f, ss_err *err)
{
    char layout[128], args[512];
    AVChannelLayout l = { 0 };
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels <= 0)
        av_channel_layout_default(&l, f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels : 2);
    else
        av_channel_layout_copy(&l, &f->ch_layout);
    av_channel_layout_describe(&l, layout, sizeof(layout));
    av_channel_layout_uninit(&l);
    snprintf(args, sizeof(args), "time_base=1/%d:sample_rate=%d:sample_fmt=%s:channel_layout=%s",
             f->sample_rate, f->sample_rate, av_get_sample_fmt_name(f->format), layout);
    const char *chain = "aresample=48000:async=1:first_pts=0,"
                        "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo";
    j->ag = avfilter_graph_alloc();
    if (!j->ag)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    j->ag->nb_threads = 1;
    AVFilterInOut *outs = NULL, *ins = NULL;
    int r = avfilter_graph_create_filter(&j->asrc, avfilter_get_by_name("abuffer"), "in", args,
                                         NULL, j->ag);
    if (r >= 0)
        r = avfilter_graph_create_filter(&j->asink, avfilter_get_by_name("abuffersink"), "out", NULL,
                                         NULL, j->ag);
    if (r >= 0) {
        outs = avfilter_inout_alloc();
        ins = avfilter_inout_alloc();
        if (!outs || !ins) {
            r = AVERROR(ENOMEM);
        } else {
            outs->name = av_strdup("in");
            outs->filter_ctx = j->asrc;
            ins->name = av_strdup("out");
            ins->filter_ctx = j->asink;
            r = avfilter_graph_parse_ptr(j->ag, chain, &ins, &outs, NULL);
        }
    }
    if (r >= 0)
        r = avfilter_graph_config(j->ag, NULL);
    avfilter_inout_free(&ins);
    avfilter_inout_free(&outs);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EMEDIA, "audio filter (%s): %s", args, e);
    }
    av_buffersink_set_frame_size(j->asink, (unsigned)j->aenc->frame_size);
    return 0;
}

/* Video time reached so far, in audio samples (48 kHz). */
static int64_t video_samples(job *j)
{
    return av_rescale(j->vframes, 48000LL * j->fps_den, j->fps_num);
}

static int audio_mux(job *j, AVPacket *pkt, ss_err *err)
{
    int64_t b = plan_boundary_frame(j->akcut, 48000, 1, j->seg_num, j->seg_den);
    int cut = 0;
    if (pkt->pts >= b) {
        cut = j->akcut > 0;
        while (plan_boundary_frame(j->akcut, 48000, 1, j->seg_num, j->seg_den) <= pkt->pts)
            j->akcut++;
    }
    return cmaf_write(j->acm, pkt, cut, err);
}

/* Mux held packets the video has passed (all up to end when end >= 0,
 * dropping those at or after it). */
static int audio_release(job *j, int64_t end, ss_err *err)
{
    int64_t lim = end >= 0 ? end : video_samples(j);
    int k = 0;
    while (k < j->nhold && j->hold[k]->pts < lim) {
        if (audio_mux(j, j->hold[k], err))
            return -1;
        av_packet_free(&j->hold[k]);
        k++;
    }
    if (end >= 0) {
        for (int i = k; i < j->nhold; i++)
            av_packet_free(&j->hold[i]);
        j->nhold = 0;
        return 0;
    }
    if (k > 0 && j->nhold > k)
        memmove(j->hold, j->hold + k, (size_t)(j->nhold - k) * sizeof(*j->hold));
    j->nhold -= k;
    return 0;
}

static int audio_encode(job *j, AVFrame *f, ss_err *err)
{
    if (f) {
        f->pts = j->asamples;
        j->asamples += f->nb_samples;
    }
    int r = avcodec_send_frame(j->aenc, f);
    if (r < 0 && r != AVERROR_EOF) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "aac encoder: %s", e);
    }
    for (;;) {
        AVPacket *p = av_packet_alloc();
        if (!p)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        r = avcodec_receive_packet(j->aenc, p);
        if (r < 0) {
            av_packet_free(&p);
            if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
                break;
            return ss_fail(err, SS_EINTERNAL, "aac encoder failed");
        }
        if (j->nhold == j->holdsz) {
            int n = j->holdsz ? j->holdsz * 2 : 256;
            AVPacket **h = realloc(j->hold, (size_t)n * sizeof(*h));
            if (!h) {
                av_packet_free(&p);
                return ss_fail(err, SS_ENOMEM, "out of memory");
            }
            j->hold = h;
            j->holdsz = n;
        }
        j->hold[j->nhold++] = p;
    }
    return audio_release(j, -1, err);
}

static int afilter_pull(job *j, ss_err *err)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int ret = 0;
    for (;;) {
        int r = av_buffersink_get_frame(j->asink, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            ret = ss_fail(err, SS_EINTERNAL, "audio filter failed");
            break;
        }
        ret = audio_encode(j, f, err);
        av_frame_unref(f);
        if (ret)
            break;
    }
    av_frame_free(&f);
    return ret;
}

/* The audio frame's timestamp (samples from the video start), by the rule
 * of video_pts: a jump of more than TS_JUMP_SECONDS is a discontinuity in
 * formats that have them (shifted back onto the timeline), elsewhere damage
 * when it lands past the video's announced end: such a frame is dropped
 * (the audio is cut there anyway). Returns 0, or -1 to drop the frame. A
 * fragment whose tfdt was 13 hours on made aresample fill them with silence
 * and the AAC packets pile up waiting for the video (3 GB in 30 s). */
static int audio_pts(job *j, const AVFrame *f, int64_t *out)
{
    AVStream *st = j->ic->streams[j->pi.aidx];
    int64_t raw = f->best_effort_timestamp;
    double sr = f->sample_rate;
    double rs = raw != AV_NOPTS_VALUE ? raw * av_q2d(st->time_base) - j->t0s : 0;
    if (raw == AV_NOPTS_VALUE || fabs(rs) > 1e10) {
        if (raw != AV_NOPTS_VALUE)
            j->ats_fixed++;   /* nowhere near any real timeline */
        *out = j->apts_next;
        return 0;
    }
    int64_t pts = av_rescale_q(raw, st->time_base, (AVRational){ 1, f->sample_rate }) -
                  (int64_t)llround(j->t0s * sr);
    int64_t r = pts;
    pts += j->ats_shift;
    if (j->apts_any && fabs((double)(pts - j->apts_next)) / sr > TS_JUMP_SECONDS) {
        if (j->ic->iformat->flags & AVFMT_TS_DISCONT) {
            j->ats_shift = j->apts_next - r;
            j->ats_fixed++;
            *out = j->apts_next;
            return 0;
        }
        double end = announced_end(j);
        if (pts > j->apts_next && end > 0 && pts / sr > end + TS_JUMP_SECONDS) {
            j->ats_fixed++;
            return -1;
        }
    }
    *out = pts;
    return 0;
}

static int audio_frame(job *j, AVFrame *f, ss_err *err)
{
    int64_t fixed0 = j->ats_fixed, pts;
    int drop = audio_pts(j, f, &pts);
    if (fixed0 == 0 && j->ats_fixed > 0) {
        char m[160];
        snprintf(m, sizeof(m), "audio timestamps jump at %.1f s (damaged or discontinuous): "
                 "frames re-timed or dropped", (double)j->apts_next / f->sample_rate);
        job_warn(j, m);
    }
    if (drop)
        return 0;
    j->apts_any = 1;
    j->apts_next = pts + f->nb_samples;
    f->pts = pts;
    if (!j->ag && afilter_open(j, f, err))
        return -1;
    int r = av_buffersrc_add_frame_flags(j->asrc, f, AV_BUFFERSRC_FLAG_KEEP_REF);
    if (r < 0) {
        /* format changes mid-stream: skip those samples (async fills the gap) */
        return 0;
    }
    return afilter_pull(j, err);
}

static int audio_receive(job *j, AVFrame *f, ss_err *err)
{
    for (;;) {
        int r = avcodec_receive_frame(j->adec, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r < 0)
            continue;
        r = audio_frame(j, f, err);
        av_frame_unref(f);
        if (r)
            return -1;
    }
}

/* End of input: flush the audio, pad it with silence or cut it to the
 * video's length, write its last segment. */
static int audio_end(job *j, ss_err *err)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int r = 0;
    avcodec_send_packet(j->adec, NULL);
    r = audio_receive(j, f, err);
    if (!r && j->ag) {
        r = av_buffersrc_add_frame(j->asrc, NULL) < 0 ? ss_fail(err, SS_EINTERNAL, "audio filter would not flush")
                                                      : afilter_pull(j, err);
    }
    int64_t vend = video_samples(j);
    while (!r && j->asamples < vend) {
        av_frame_unref(f);
        f->nb_samples = j->aenc->frame_size;
        f->format = AV_SAMPLE_FMT_FLTP;
        f->sample_rate = 48000;
        av_channel_layout_default(&f->ch_layout, 2);
        if (av_frame_get_buffer(f, 0) < 0) {
            r = ss_fail(err, SS_ENOMEM, "out of memory");
            break;
        }
        av_samples_set_silence(f->extended_data, 0, f->nb_samples, 2, AV_SAMPLE_FMT_FLTP);
        r = audio_encode(j, f, err);
    }
    av_frame_free(&f);
    if (!r)
        r = audio_encode(j, NULL, err);
    if (!r)
        r = audio_release(j, vend, err);
    if (!r)
        r = cmaf_finish(j->acm, vend, err);
    return r;
}

/* ---- the decode loop ----------------------------------------------- */

static int video_open(job *j, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    const AVCodec *dc = avcodec_find_decoder(st->codecpar->codec_id);
    j->vdec = avcodec_alloc_context3(dc);
    if (!j->vdec)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (avcodec_parameters_to_context(j->vdec, st->codecpar) < 0)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    j->vdec->thread_count = 0;
    j->vdec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    j->vdec->pkt_timebase = st->time_base;
    /* Everything is timed from the video stream's start: video and audio
     * both start at 0 there (the fps filter and aresample pad or trim). */
    if (st->start_time != AV_NOPTS_VALUE)
        j->t0 = st->start_time;
    else if (j->ic->start_time != AV_NOPTS_VALUE)
        j->t0 = av_rescale_q(j->ic->start_time, AV_TIME_BASE_Q, st->time_base);
    j->t0s = j->t0 * av_q2d(st->time_base);
    j->next_vpts = AV_NOPTS_VALUE;
    int r = avcodec_open2(j->vdec, dc, NULL);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EMEDIA, "cannot open the %s video decoder: %s", j->pi.vcodec, e);
    }
    return 0;
}

static int decode_all(job *j, ss_err *err)
{
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int ret = 0;
    int warned = 0;
    if (!pkt || !f) {
        ret = ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        if (cancelled(j))
            goto out;
        int r = av_read_frame(j->ic, pkt);
        if (r == AVERROR_EOF)
            break;
        if (r < 0) {
            char e[128], m[256];
            media_averr(r, e, sizeof(e));
            snprintf(m, sizeof(m), "source is damaged after %.1f s (%s): encoded what decoded",
                     (double)j->vframes * j->fps_den / j->fps_num, e);
            job_warn(j, m);
            break;
        }
        if (pkt->stream_index == j->pi.vidx) {
            r = avcodec_send_packet(j->vdec, pkt);
            if (r < 0 && r != AVERROR(EAGAIN)) {
                j->dec_errors++;
                if (!warned && r != AVERROR_EOF) {
                    char e[128], m[256];
                    media_averr(r, e, sizeof(e));
                    snprintf(m, sizeof(m), "video decoding error at %.1f s (%s): damaged frames skipped",
                             (double)j->vframes * j->fps_den / j->fps_num, e);
                    job_warn(j, m);
                    warned = 1;
                }
            }
            ret = video_receive(j, f, err);
        } else if (j->adec && pkt->stream_index == j->pi.aidx) {
            if (avcodec_send_packet(j->adec, pkt) >= 0)
                ret = audio_receive(j, f, err);
        } else if (j->sb) {
            subs_feed(j->sb, pkt);
        }
        av_packet_unref(pkt);
        if (ret)
            goto out;
    }
    /* flush the decoder and the pre-filter */
    avcodec_send_packet(j->vdec, NULL);
    if ((ret = video_receive(j, f, err)))
        goto out;
    if (cancelled(j))
        goto out;
    if (j->vg) {
        if (av_buffersrc_close(j->vsrc, j->next_vpts - j->t0, AV_BUFFERSRC_FLAG_PUSH) < 0) {
            ret = ss_fail(err, SS_EINTERNAL, "video filter would not flush");
            goto out;
        }
        if ((ret = vfilter_pull(j, err)))
            goto out;
    }
    if (j->vframes == 0) {
        ret = ss_fail(err, SS_EMEDIA, "no decodable video frames in the source");
        goto out;
    }
    if (j->adec && (ret = audio_end(j, err)))
        goto out;
out:
    av_packet_free(&pkt);
    av_frame_free(&f);
    return ret;
}

/* ---- per-title -------------------------------------------------------- */

/* Seek only when the next window starts this far (seconds) past where the
 * decoder is; closer, decoding on is cheaper than decoding from a keyframe. */
#define PT_SEEK_GAP 2.0
/* A window moves to a source keyframe within half the spacing of the
 * windows from its planned start (so they stay spread over the title). */

/* Decode the per-title windows (each through a fresh pre-filter whose
 * grid starts at the window) and feed them to j->pt. The end of the
 * source ends the last window early. */
static int decode_windows(job *j, const double *starts, int nwin, int frames, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int ret = 0, eof = 0;
    if (!pkt || !f) {
        ret = ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    double prev_end = 0;
    double dur = j->pi.vduration > 0 ? j->pi.vduration : j->pi.duration;
    double tol = dur > 0 ? dur / nwin / 2 : 0;
    for (int w = 0; w < nwin && !eof; w++) {
        double t = starts[w], tb = av_q2d(st->time_base);
        double at = j->next_vpts != AV_NOPTS_VALUE ? (j->next_vpts - j->t0) * tb : 0;
        /* A window starts at a source keyframe within tol of its planned
         * time when there is one past the last window (nothing decoded in
         * vain), else at the planned time: decoding on from where we are,
         * or from the keyframe before it when that is further on. Without
         * an index, seek when the window is far ahead. */
        int seek = 0;
        int64_t seek_to = 0;
        int64_t ts = j->t0 + (int64_t)floor(t / tb);
        int kb = av_index_search_timestamp(st, ts, AVSEEK_FLAG_BACKWARD);
        int ka = av_index_search_timestamp(st, ts, 0);
        const AVIndexEntry *eb = kb >= 0 ? avformat_index_get_entry(st, kb) : NULL;
        const AVIndexEntry *ea = ka >= 0 ? avformat_index_get_entry(st, ka) : NULL;
        double tb_s = eb ? fmax(0, (eb->timestamp - j->t0) * tb) : -1;
        double ta_s = ea ? fmax(0, (ea->timestamp - j->t0) * tb) : -1;
        if (ea && ta_s >= prev_end - 1e-6 && ta_s - t <= tol && (!eb || ta_s - t <= t - tb_s)) {
            t = ta_s;
            seek_to = ea->timestamp;
            seek = ta_s > at + 1e-6 || ta_s < at - 1e-6 || w == 0;
        } else if (eb && tb_s >= prev_end - 1e-6 && t - tb_s <= tol) {
            t = tb_s;
            seek_to = eb->timestamp;
            seek = tb_s > at + 1e-6 || tb_s < at - 1e-6 || w == 0;
        } else if (eb) {
            seek_to = eb->timestamp;
            seek = tb_s > at + 1e-6;
        } else if (t > at + PT_SEEK_GAP) {
            seek_to = ts;
            seek = 1;
        }
        if (w == 0 && seek && at == 0 && seek_to <= j->t0)
            seek = 0;   /* already there */
        if (j->pt_noseek)
            seek = 0;
        j->win_left = frames;
        j->win_start_ts = (int64_t)floor(t / tb + 1e-6);
        j->fps_start = t;
        j->win_pending = 1;
        j->win_snap = seek_to == (int64_t)j->t0 + j->win_start_ts || (seek && t != starts[w]);
        avfilter_graph_free(&j->vg);
        j->vsrc = j->vsink = NULL;
        /* The index gives a keyframe's decoding time; demuxers seek by
         * presentation time, a few frames later with B-frames. Aim past it
         * (half a second, or half way to the next keyframe) so a backward
         * seek lands on that keyframe, not the one before. */
        if (seek) {
            int kn = av_index_search_timestamp(st, seek_to + 1, 0);
            const AVIndexEntry *en = kn >= 0 ? avformat_index_get_entry(st, kn) : NULL;
            int64_t slack = (int64_t)(0.5 / tb);
            if (en && en->timestamp > seek_to && (en->timestamp - seek_to) / 2 < slack)
                slack = (en->timestamp - seek_to) / 2;
            seek_to += slack;
        }
        if (seek && av_seek_frame(j->ic, j->pi.vidx, seek_to, AVSEEK_FLAG_BACKWARD) >= 0) {
            avcodec_flush_buffers(j->vdec);
            j->next_vpts = AV_NOPTS_VALUE;
            j->vts_shift = 0;
            j->pt_seeked = 1;
        }
        prev_end = t + frames * (double)j->fps_den / j->fps_num;
        while (j->win_left > 0) {
            if (cancelled(j))
                goto out;
            int r = av_read_frame(j->ic, pkt);
            if (r < 0) {
                eof = 1;
                break;
            }
            if (pkt->stream_index == j->pi.vidx) {
                /* well before the window: frames nothing refers to need
                 * not be decoded (half a second covers the reordering) */
                int64_t pp = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
                j->vdec->skip_frame = pp != AV_NOPTS_VALUE && pp - j->t0 < j->win_start_ts - (int64_t)(0.5 / tb)
                                          ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
                if (avcodec_send_packet(j->vdec, pkt) < 0)
                    j->dec_errors++;
                ret = video_receive(j, f, err);
            }
            av_packet_unref(pkt);
            if (ret)
                goto out;
            if (j->pt_reseek) {
                j->pt_reseek = 0;
                j->pt_noseek = 1;
                if (av_seek_frame(j->ic, j->pi.vidx, j->t0, AVSEEK_FLAG_BACKWARD) < 0) {
                    ret = ss_fail(err, SS_EMEDIA, "cannot go back to the start of the source");
                    goto out;
                }
                avcodec_flush_buffers(j->vdec);
                j->next_vpts = AV_NOPTS_VALUE;
                j->vts_shift = 0;
                avfilter_graph_free(&j->vg);
                j->vsrc = j->vsink = NULL;
            }
        }
        if (eof) {
            avcodec_send_packet(j->vdec, NULL);
            if ((ret = video_receive(j, f, err)))
                goto out;
            if (j->vg && av_buffersrc_close(j->vsrc, j->next_vpts - j->t0, AV_BUFFERSRC_FLAG_PUSH) >= 0 &&
                (ret = vfilter_pull(j, err)))
                goto out;
        }
        progress(j, "analysing", (w + 1.0) / nwin);
    }
out:
    av_packet_free(&pkt);
    av_frame_free(&f);
    avfilter_graph_free(&j->vg);
    j->vsrc = j->vsink = NULL;
    j->fps_start = 0;
    if (j->vdec)
        j->vdec->skip_frame = AVDISCARD_DEFAULT;
    return ret;
}

/* The per-title pass: windows analysed and probe-encoded, the ladder in
 * j->lad, the report in j->pt_report. */
static int per_title_pass(job *j, ss_err *e)
{
    double t0 = ss_mono_s(), c0 = ss_cpu_s(RUSAGE_SELF);
    double fps = (double)j->fps_num / j->fps_den;
    double dur = j->pi.vduration > 0 ? j->pi.vduration : j->pi.duration;
    double starts[32];
    int frames;
    int nwin = pt_windows(dur, fps, starts, 32, &frames);
    pt_setup s;
    memset(&s, 0, sizeof(s));
    plan_src ps = { j->pi.width, j->pi.height, j->pi.sar_num, j->pi.sar_den, j->pi.rotation, fps };
    plan_top_size(&ps, &s.top_w, &s.top_h);
    s.fps_num = j->fps_num;
    s.fps_den = j->fps_den;
    s.keyint = plan_keyint(j->fps_num, j->fps_den, j->seg_num, j->seg_den);
    s.cap_kbps = plan_maxrate_kbps(s.top_w, s.top_h, fps);
    s.threads = j->o->threads > 0 ? j->o->threads : ss_ncpus();
    s.preset = j->o->preset ? j->o->preset : "veryfast";
    snprintf(s.x264_params, sizeof(s.x264_params), "%s", x264_params(j));
    progress(j, "analysing", 0);
    if (video_open(j, e))
        return -1;
    j->pt = pt_new(&s, nwin, frames, j->cancel, e);
    if (!j->pt)
        return -1;
    int r = decode_windows(j, starts, nwin, frames, e);
    if (r && j->cancel && atomic_load(j->cancel)) {
        ss_err_clear(e);
        ss_fail(e, SS_ECANCELLED, "cancelled");
    }
    if (!r)
        r = pt_finish(j->pt, &j->lad, &j->pt_report, e);
    pt_free(&j->pt);
    j->t_analysis = ss_mono_s() - t0;
    if (!r && j->pt_report) {
        json_object_set_new(j->pt_report, "seconds", json_real(round(j->t_analysis * 1000) / 1000));
        json_object_set_new(j->pt_report, "cpu_seconds",
                            json_real(round((ss_cpu_s(RUSAGE_SELF) - c0) * 100) / 100));
        json_object_set_new(j->pt_report, "decoded_frames", json_integer(j->pt_decoded));
        json_object_set_new(j->pt_report, "seeks", json_boolean(!j->pt_noseek));
    }
    return r;
}

/* ---- result --------------------------------------------------------- */

static int write_text(job *j, const char *rel, char *text, ss_err *err)
{
    if (!text)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", j->outdir, rel);
    int r = ss_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return r;
}

static double seconds_since(double t)
{
    return round((ss_mono_s() - t) * 1000.0) / 1000.0;
}

static int package(job *j, json_t *res, ss_err *err)
{
    pkg_track vt[MEDIA_MAX_RUNGS], at;
    pkg_text texts[PROBE_MAX_SUBS];
    memset(vt, 0, sizeof(vt));
    memset(&at, 0, sizeof(at));
    int nseg = -1;
    for (int i = 0; i < j->lad.n; i++) {
        rung *g = &j->rungs[i];
        cmaf_track(g->cm, &vt[i]);
        vt[i].width = g->p.width;
        vt[i].height = g->p.height;
        vt[i].fps_num = j->fps_num;
        vt[i].fps_den = j->fps_den;
        snprintf(vt[i].codecs, sizeof(vt[i].codecs), "%s", g->codecs);
        if (nseg < 0)
            nseg = vt[i].nsegs;
        else if (nseg != vt[i].nsegs)
            return ss_fail(err, SS_EINTERNAL, "rungs were cut into different segment counts");
    }
    if (j->acm) {
        cmaf_track(j->acm, &at);
        at.is_audio = 1;
        at.channels = 2;
        at.sample_rate = 48000;
        snprintf(at.lang, sizeof(at.lang), "%s", j->pi.alang);
        snprintf(at.codecs, sizeof(at.codecs), "mp4a.40.2");
    }
    json_t *subarr = json_array();
    int ntexts = 0;
    if (j->sb) {
        ntexts = subs_finish(j->sb, j->outdir, j->ev, texts, PROBE_MAX_SUBS, subarr,
                             (double)j->vframes * j->fps_den / j->fps_num, err);
        if (ntexts < 0) {
            json_decref(subarr);
            return -1;
        }
    }
    double duration = (double)j->vframes * j->fps_den / j->fps_num;
    pkg_set set = { vt, j->lad.n, j->acm ? &at : NULL, texts, ntexts,
                    (double)j->seg_num / j->seg_den, duration };

    if (j->o->hls) {
        for (int i = 0; i < j->lad.n; i++) {
            char rel[128];
            snprintf(rel, sizeof(rel), "%.31s/playlist.m3u8", vt[i].name);
            if (write_text(j, rel, pkg_hls_media(&vt[i]), err))
                goto fail;
            snprintf(rel, sizeof(rel), "%.31s/iframes.m3u8", vt[i].name);
            if (write_text(j, rel, pkg_hls_iframes(&vt[i]), err))
                goto fail;
        }
        if (j->acm && write_text(j, "audio/playlist.m3u8", pkg_hls_media(&at), err))
            goto fail;
        for (int i = 0; i < ntexts; i++) {
            char rel[128];
            snprintf(rel, sizeof(rel), "subtitles/%.31s.m3u8", texts[i].name);
            if (write_text(j, rel, pkg_hls_text(&texts[i], duration), err))
                goto fail;
        }
        if (write_text(j, "master.m3u8", pkg_hls_master(&set), err))
            goto fail;
    }
    if (j->o->dash && write_text(j, "manifest.mpd", pkg_dash_mpd(&set), err))
        goto fail;

    int64_t apeak = j->acm ? pkg_peak_bps(&at) : 0, aavg = j->acm ? pkg_avg_bps(&at) : 0;
    json_t *rs = json_array();
    for (int i = 0; i < j->lad.n; i++) {
        rung *g = &j->rungs[i];
        char pl[128], ipl[128];
        snprintf(pl, sizeof(pl), "%.31s/playlist.m3u8", vt[i].name);
        snprintf(ipl, sizeof(ipl), "%.31s/iframes.m3u8", vt[i].name);
        json_t *r = json_object();
        json_object_set_new(r, "name", json_string(vt[i].name));
        json_object_set_new(r, "width", json_integer(vt[i].width));
        json_object_set_new(r, "height", json_integer(vt[i].height));
        char codecs[96];
        snprintf(codecs, sizeof(codecs), "%s%s%s", vt[i].codecs, j->acm ? "," : "",
                 j->acm ? at.codecs : "");
        json_object_set_new(r, "codecs", json_string(codecs));
        json_object_set_new(r, "bandwidth", json_integer(pkg_peak_bps(&vt[i]) + apeak));
        json_object_set_new(r, "average_bandwidth", json_integer(pkg_avg_bps(&vt[i]) + aavg));
        json_object_set_new(r, "video_bitrate_avg", json_integer(pkg_avg_bps(&vt[i])));
        json_object_set_new(r, "video_bitrate_peak", json_integer(pkg_peak_bps(&vt[i])));
        json_object_set_new(r, "maxrate_kbps", json_integer(g->p.maxrate_kbps));
        if (j->pass)
            json_object_set_new(r, "target_kbps", json_integer(g->p.target_kbps));
        else if (g->p.crf_exact > 0)
            json_object_set_new(r, "crf", json_real(g->p.crf_exact));
        else
            json_object_set_new(r, "crf", json_integer(g->p.crf));
        if (j->pt_report) {
            size_t k;
            json_t *x;
            json_array_foreach(json_object_get(j->pt_report, "rungs"), k, x) {
                if (strcmp(json_string_value(json_object_get(x, "name")), g->p.name))
                    continue;
                if (j->pass)
                    json_object_set(r, "crf_per_title", json_object_get(x, "crf"));
                json_object_set(r, "predicted_psnr", json_object_get(x, "predicted_psnr"));
                json_object_set(r, "predicted_ssim", json_object_get(x, "predicted_ssim"));
                json_object_set(r, "why", json_object_get(x, "why"));
            }
        }
        json_object_set_new(r, "level", json_integer(g->p.level));
        json_object_set_new(r, "video_bitrate_es",
                            json_integer(duration > 0 ? (json_int_t)llround(g->es_bytes * 8 / duration) : 0));
        if (g->qm) {
            double psnr, ssim;
            int nq;
            qmeter_mean(g->qm, &psnr, &ssim);
            qmeter_samples(g->qm, &nq);
            json_object_set_new(r, "psnr", nq ? json_real(round(psnr * 1000) / 1000) : json_null());
            json_object_set_new(r, "ssim", nq ? json_real(round(ssim * 100000) / 100000) : json_null());
            json_object_set_new(r, "quality_frames", json_integer(nq));
        }
        json_object_set_new(r, "bytes", json_integer(cmaf_bytes(g->cm) + vt[i].init_bytes));
        json_object_set_new(r, "frames", json_integer(g->frames));
        json_object_set_new(r, "duration", json_real(duration));
        json_object_set_new(r, "playlist", j->o->hls ? json_string(pl) : json_null());
        json_object_set_new(r, "iframe_playlist", j->o->hls ? json_string(ipl) : json_null());
        json_array_append_new(rs, r);
    }
    json_object_set_new(res, "renditions", rs);
    if (j->acm) {
        json_object_set_new(res, "audio",
                            json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:o}", "codecs", at.codecs,
                                      "channels", 2, "sample_rate", 48000, "bitrate",
                                      (json_int_t)aavg, "bitrate_peak", (json_int_t)apeak, "bytes",
                                      (json_int_t)(cmaf_bytes(j->acm) + at.init_bytes), "playlist",
                                      j->o->hls ? json_string("audio/playlist.m3u8") : json_null()));
    } else {
        json_object_set_new(res, "audio", json_null());
    }
    json_object_set_new(res, "duration", json_real(round(duration * 1000) / 1000));
    json_object_set_new(res, "frame_rate", json_real(round((double)j->fps_num / j->fps_den * 1000) / 1000));
    json_object_set_new(res, "rate_control", json_string(j->pass ? "two-pass" : "capped-crf"));
    json_object_set_new(res, "ladder", json_string(j->o->ladder == MEDIA_LADDER_PER_TITLE ? "per-title"
                                                   : j->o->ladder == MEDIA_LADDER_EXPLICIT ? "explicit"
                                                                                           : "auto"));
    if (j->pt_report)
        json_object_set(res, "per_title", j->pt_report);
    json_object_set_new(res, "segment_seconds", json_real((double)j->seg_num / j->seg_den));
    json_object_set_new(res, "segment_count", json_integer(nseg));
    json_object_set_new(res, "master", j->o->hls ? json_string("master.m3u8") : json_null());
    json_object_set_new(res, "dash", j->o->dash ? json_string("manifest.mpd") : json_null());
    json_object_set_new(res, "subtitles", subarr);
    if (j->q_nsegs > 0) {
        json_t *segs = json_array();
        for (int i = 0; i < j->q_nsegs; i++)
            json_array_append_new(segs, json_integer(j->q_segs[i]));
        json_object_set_new(res, "quality",
                            json_pack("{s:i, s:i, s:o, s:i, s:s}", "width", j->qref_w, "height",
                                      j->qref_h, "segments", segs, "frame_step", j->q_fstep,
                                      "method",
                                      "luma PSNR (of the mean MSE) and SSIM (8x8 windows) of the "
                                      "decoded output scaled (bicubic) to the display size, "
                                      "against the pre-filtered source at that size; frames "
                                      "frame_step/2, +frame_step, ... of the listed segments"));
    }
    else
        json_object_set_new(res, "quality", json_null());
    return 0;
fail:
    json_decref(subarr);
    return -1;
}

/* ---- media_encode ---------------------------------------------------- */

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


/* Free what one pass opened and reset its counters; the plan, the probe
 * facts, warnings and errors stay. */
static void pass_free(job *j)
{
    for (int i = 0; i < j->lad.n; i++) {
        rung *g = &j->rungs[i];
        frameq_destroy(&g->q);
        avcodec_free_context(&g->enc);
        sws_freeContext(g->sws);
        cmaf_free(&g->cm);
        qmeter_free(&g->qm);
    }
    memset(j->rungs, 0, sizeof(j->rungs));
    for (int i = 0; i < j->nhold; i++)
        av_packet_free(&j->hold[i]);
    j->nhold = 0;
    avfilter_graph_free(&j->vg);
    avfilter_graph_free(&j->ag);
    sws_freeContext(j->fix);
    j->fix = NULL;
    avcodec_free_context(&j->vdec);
    avcodec_free_context(&j->adec);
    avcodec_free_context(&j->aenc);
    cmaf_free(&j->acm);
    thumbs_free(&j->th);
    subs_free(&j->sb);
    avformat_close_input(&j->ic);
    j->vsrc = j->vsink = j->asrc = j->asink = NULL;
    j->vframes = j->first_out = j->dec_errors = j->apts_next = j->asamples = j->akcut = 0;
    j->vts_shift = j->ts_fixed = j->ats_shift = j->ats_fixed = 0;
    j->apts_any = 0;
    j->last_progress = 0;
    atomic_store(&j->abort, 0);
}

static void job_free(job *j)
{
    for (int i = 0; i < j->lad.n; i++) {
        rung *g = &j->rungs[i];
        frameq_destroy(&g->q);
        avcodec_free_context(&g->enc);
        sws_freeContext(g->sws);
        cmaf_free(&g->cm);
        qmeter_free(&g->qm);
    }
    for (int i = 0; i < j->nhold; i++)
        av_packet_free(&j->hold[i]);
    free(j->hold);
    avfilter_graph_free(&j->vg);
    avfilter_graph_free(&j->ag);
    sws_freeContext(j->fix);
    avcodec_free_context(&j->vdec);
    avcodec_free_context(&j->adec);
    avcodec_free_context(&j->aenc);
    cmaf_free(&j->acm);
    thumbs_free(&j->th);
    subs_free(&j->sb);
    avformat_close_input(&j->ic);
    json_decref(j->warnings);
    json_decref(j->pt_report);
    pt_free(&j->pt);
    pthread_mutex_destroy(&j->mu);
}

/* x264 threads per rung: the budget split by pixel share, rounded up, at
 * least 1. The top rung carries about half of all the work; with a single
 * x264 thread it would be a critical path that the other core cannot help
 * with once the smaller rungs have caught up (measured: 1.5 instead of 1.8
 * busy cores on 2 cores), so it gets frame threads and the small rungs run
 * single-threaded. */
static void thread_split(const plan_ladder *l, int total, int *out)
{
    double px = 0;
    for (int i = 0; i < l->n; i++)
        px += (double)l->rungs[i].width * l->rungs[i].height;
    for (int i = 0; i < l->n; i++) {
        double share = (double)l->rungs[i].width * l->rungs[i].height / px;
        int t = (int)ceil(total * share);
        out[i] = t < 1 ? 1 : t;
    }
}

/* One pass over the source: open the decoders and encoders, run the rung
 * threads, decode everything, join. The first pass of two-pass rate
 * control only writes x264 statistics (no audio, thumbnails, subtitles or
 * segments). */
static int run_pass(job *j, ss_err *e, double *cpu_main)
{
    const media_opts *opts = j->o;
    int nstarted = 0;
    if (video_open(j, e))
        return -1;
    if (j->pass != 1 && j->pi.aidx >= 0 && audio_open(j, e))
        return -1;
    int total = opts->threads > 0 ? opts->threads : ss_ncpus();
    int th[MEDIA_MAX_RUNGS];
    thread_split(&j->lad, total, th);
    for (int i = 0; i < j->lad.n; i++) {
        rung *g = &j->rungs[i];
        g->j = j;
        g->p = j->lad.rungs[i];
        frameq_init(&g->q);
    }
    for (int i = 0; i < j->lad.n; i++)
        if (rung_open(j, &j->rungs[i], th[i], e))
            return -1;
    if (opts->thumbnails && j->pass != 1)
        j->th = thumbs_new(j->pi.dw, j->pi.dh, j->pi.duration,
                           opts->thumb_interval > 0 ? opts->thumb_interval : 10.0);
    if (j->pi.nsubs && j->pass != 1)
        j->sb = subs_new(j->ic, &j->pi, j->t0s, job_warn, j);

    for (int i = 0; i < j->lad.n; i++) {
        if (pthread_create(&j->rungs[i].th, NULL, rung_main, &j->rungs[i])) {
            ss_fail(e, SS_EINTERNAL, "cannot start a thread");
            atomic_store(&j->abort, 1);
            break;
        }
        j->rungs[i].started = 1;
        nstarted++;
    }
    progress(j, j->pass == 1 ? "analysing" : "encoding", 0);
    int dr = 0;
    if (nstarted == j->lad.n) {
        dr = decode_all(j, e);
        if (dr)
            atomic_store(&j->abort, 1);
        for (int i = 0; i < j->lad.n; i++)
            frameq_put(&j->rungs[i].q, NULL, stop_cb, j);
    }
    *cpu_main = ss_cpu_s(RUSAGE_THREAD);
    for (int i = 0; i < j->lad.n; i++)
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

int media_encode(const char *src, const char *outdir, const media_opts *opts,
                 const media_events *ev, const atomic_int *cancel, json_t **result, ss_err *err)
{
    static const atomic_int never = 0;
    media_opts defaults;
    if (!opts) {
        media_opts_default(&defaults);
        opts = &defaults;
    }
    *result = NULL;
    job J;
    job *j = &J;
    memset(j, 0, sizeof(*j));
    j->o = opts;
    j->ev = ev;
    j->cancel = cancel ? cancel : &never;
    pthread_mutex_init(&j->mu, NULL);
    j->warnings = json_array();
    snprintf(j->outdir, sizeof(j->outdir), "%s", outdir);
    snprintf(j->log_job, sizeof(j->log_job), "%s", log_get_job());
    double t_start = ss_mono_s(), t_probe = 0, t_encode = 0;
    json_t *res = json_object();
    ss_err e = { 0 };
    int ret = -1;
    double cpu_main = 0;

    progress(j, "probing", 0);
    if (probe_open(src, opts, &j->ic, &j->pi, &e))
        goto out;
    if (ss_mkdir_p(outdir, &e))
        goto out;
    json_object_set_new(res, "source", probe_json(&j->pi));
    if (j->pi.nbitmap_subs) {
        char m[128];
        snprintf(m, sizeof(m), "%d bitmap subtitle stream(s) skipped: only text subtitles are converted",
                 j->pi.nbitmap_subs);
        job_warn(j, m);
    }
    if (j->pi.naudio > 1) {
        char m[160];
        snprintf(m, sizeof(m), "source has %d audio streams: encoded stream #%d only",
                 j->pi.naudio, j->pi.aidx);
        job_warn(j, m);
    }
    plan_fps(j->pi.fps_avg, j->pi.fps_r, &j->fps_num, &j->fps_den);
    plan_segment_q(opts->segment_seconds > 0 ? opts->segment_seconds : 4.0, &j->seg_num, &j->seg_den);
    plan_src ps = { j->pi.width, j->pi.height, j->pi.sar_num, j->pi.sar_den, j->pi.rotation,
                    (double)j->fps_num / j->fps_den };
    if (plan_ladder_make(&ps, opts, &j->lad) < 1) {
        ss_fail(&e, SS_EMEDIA, "source picture size %dx%d is unusable", j->pi.width, j->pi.height);
        goto out;
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
        ss_fail(&e, SS_EMEDIA,
                "source picture %dx%d (shown at %dx%d) is too large: %s would be %dx%d, "
                "over H.264's %d pixels a side",
                j->pi.width, j->pi.height, j->pi.dw, j->pi.dh, big, big_w, big_h, PLAN_MAX_SIDE);
        goto out;
    }
    if (j->lad.notes[0])
        job_warn(j, j->lad.notes);
    if (!opts->no_quality) {
        plan_top_size(&ps, &j->qref_w, &j->qref_h);
        quality_sampling(j);
    }
    t_probe = seconds_since(t_start);
    progress(j, "probing", 1);

    if (opts->ladder == MEDIA_LADDER_PER_TITLE) {
        if (per_title_pass(j, &e))
            goto out;
        pass_free(j);
        if (probe_open(src, opts, &j->ic, &j->pi, &e))
            goto out;
    }

    if (opts->rate_control == MEDIA_RC_TWO_PASS) {
        snprintf(j->stats_dir, sizeof(j->stats_dir), "%s/ss-2pass-XXXXXX",
                 opts->scratch_dir && opts->scratch_dir[0] ? opts->scratch_dir : "/tmp");
        if (!mkdtemp(j->stats_dir)) {
            j->stats_dir[0] = '\0';
            ss_fail(&e, SS_EIO, "cannot make a folder for two-pass statistics in %s: %s",
                    opts->scratch_dir ? opts->scratch_dir : "/tmp", strerror(errno));
            goto out;
        }
        j->pass = 1;
        if (run_pass(j, &e, &cpu_main))
            goto out;
        pass_free(j);
        if (probe_open(src, opts, &j->ic, &j->pi, &e))
            goto out;
        j->pass = 2;
    }
    if (run_pass(j, &e, &cpu_main))
        goto out;
    double want = j->pi.vduration > 0 ? j->pi.vduration : j->pi.duration;
    if (want > 1.0 && j->vframes * (double)j->fps_den / j->fps_num < 0.9 * want) {
        char m[200];
        snprintf(m, sizeof(m), "source ended early (damaged or cut tail): encoded the first %.1f s "
                 "of the %.1f s it announces", j->vframes * (double)j->fps_den / j->fps_num, want);
        job_warn(j, m);
    }
    t_encode = seconds_since(t_start) - t_probe - round(j->t_analysis * 1000) / 1000;
    progress(j, "encoding", 1);
    progress(j, "packaging", 0);
    double t_pack0 = ss_mono_s();
    if (j->th) {
        json_t *ti = NULL;
        if (thumbs_finish(j->th, outdir, ev, &ti, &e))
            goto out;
        json_object_set_new(res, "thumbnails", ti ? ti : json_null());
    } else {
        json_object_set_new(res, "thumbnails", json_null());
    }
    if (package(j, res, &e))
        goto out;
    progress(j, "packaging", 1);
    json_object_set(res, "warnings", j->warnings);
    json_t *cpu = json_object();
    json_object_set_new(cpu, "process", json_real(round(ss_cpu_s(RUSAGE_SELF) * 100) / 100));
    json_object_set_new(cpu, "demux_filter_audio", json_real(round(cpu_main * 100) / 100));
    for (int i = 0; i < j->lad.n; i++)
        json_object_set_new(cpu, j->rungs[i].p.name, json_real(round(j->rungs[i].cpu * 100) / 100));
    json_object_set_new(res, "timings",
                        json_pack("{s:f, s:f, s:f, s:f, s:o}", "probe", t_probe, "analysis",
                                  round(j->t_analysis * 1000) / 1000, "encode", t_encode, "package",
                                  seconds_since(t_pack0), "cpu_seconds", cpu));
    *result = res;
    res = NULL;
    ret = 0;
out:
    if (ret && err) {
        if (e.code == SS_OK)
            ss_fail(&e, SS_EINTERNAL, "encode failed");
        ss_fail(err, e.code, "%s", e.msg);
    }
    json_decref(res);
    if (j->stats_dir[0])
        ss_rm_rf(j->stats_dir);
    job_free(j);
    return ret;
}
