/* video.c — the video timeline: decoded frames get timestamps on one
 * timeline from the video stream's start (damaged and discontinuous
 * timestamps repaired, see TS_JUMP_SECONDS), pass the pre-filter
 * (deinterlace, rotate, CFR fps, 8-bit 4:2:0) and go to every rung's queue,
 * the thumbnails, or the per-title window being sampled. Also the one
 * filter-graph builder of the pipeline (the audio filter uses it too). */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <sys/resource.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libswscale/swscale.h>

#include "util.h"

int media_graph_build(AVFilterGraph **g, AVFilterContext **src, AVFilterContext **sink,
                      const char *src_filter, const char *sink_filter, const char *args,
                      const char *chain, int nb_threads, ss_code code, const char *what,
                      ss_err *err)
{
    *g = avfilter_graph_alloc();
    if (!*g)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (nb_threads > 0)
        (*g)->nb_threads = nb_threads;
    AVFilterInOut *outs = NULL, *ins = NULL;
    int r = avfilter_graph_create_filter(src, avfilter_get_by_name(src_filter), "in", args, NULL,
                                         *g);
    if (r >= 0)
        r = avfilter_graph_create_filter(sink, avfilter_get_by_name(sink_filter), "out", NULL,
                                         NULL, *g);
    if (r >= 0) {
        outs = avfilter_inout_alloc();
        ins = avfilter_inout_alloc();
        if (!outs || !ins) {
            r = AVERROR(ENOMEM);
        } else {
            outs->name = av_strdup("in");
            outs->filter_ctx = *src;
            ins->name = av_strdup("out");
            ins->filter_ctx = *sink;
            r = avfilter_graph_parse_ptr(*g, chain, &ins, &outs, NULL);
        }
    }
    if (r >= 0)
        r = avfilter_graph_config(*g, NULL);
    avfilter_inout_free(&ins);
    avfilter_inout_free(&outs);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, code, "%s: %s", what, e);
    }
    return 0;
}

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
    /* the audio item's key frames for the thumbnails: no frame rate */
    if (j->mode == STAGE_CHUNK && j->range_f0 > 0) {
        /* the title's CFR grid from a slot before this first frame: no
         * copies of it for every slot since the title's start (each went
         * through the rest of the chain: a rotation, a tone map) */
        int64_t slot = (int64_t)floor((double)f->pts * av_q2d(st->time_base) * j->fps_num / j->fps_den) - 1;
        j->fps_start = slot > 0 ? (double)slot * j->fps_den / j->fps_num : 0;
    }
    plan_pre pre = { j->pi.interlaced, j->mode == STAGE_AUDIO ? 0 : j->fps_num, j->fps_den,
                     j->fps_start, j->pi.hdr,
                     j->pi.color_primaries, j->pi.colorspace, j->pi.rotation, j->pi.mirror };
    if (plan_prefilter(&pre, chain, sizeof(chain)))
        return ss_fail(err, SS_EINTERNAL, "video filter description too long");

    char what[600];
    snprintf(what, sizeof(what), "video filter \"%s\"", chain);
    if (media_graph_build(&j->vg, &j->vsrc, &j->vsink, "buffer", "buffersink", args, chain,
                          j->thb.decoder,
                          SS_EINTERNAL, what, err))
        return -1;
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
    if (j->mode == STAGE_AUDIO) {   /* a key frame for the thumbnails */
        AVStream *st = j->ic->streams[j->pi.vidx];
        return j->th ? thumbs_feed(j->th, f, (double)f->pts * av_q2d(st->time_base), err) : 0;
    }
    if (j->mode == STAGE_CHUNK) {
        /* the CFR grid starts at the video start as in one process: frames
         * are numbered on the title's timeline; keep the chunk's range */
        if (f->pts < j->range_f0) {
            j->pre_filtered++;
            return 0;
        }
        if (!j->vframes)
            j->pre_cpu = ss_cpu_s(RUSAGE_THREAD) - j->pre_c0;
        /* a run that goes on into the next chunk (chain.c): the record of
         * the chunk before out as soon as every rung has ended it */
        if (j->chain_pending >= 0)
            chain_emit(j);
        if (j->range_f1 >= 0 && f->pts >= j->range_f1 && !chain_next(j, f->pts)) {
            j->range_done = 1;
            return 0;
        }
    } else {
        if (j->vframes == 0)
            j->first_out = f->pts;
        f->pts -= j->first_out;
    }
    j->vframes++;
    double t = (double)f->pts * j->fps_den / j->fps_num;
    if (j->o->max_duration > 0 && t > j->o->max_duration + 1.0)
        return ss_fail(err, SS_ELIMIT, "source is longer than the limit of %.0f s",
                       j->o->max_duration);
    if (j->th && thumbs_feed(j->th, f, t, err))
        return -1;
    for (int i = 0; i < j->nr; i++) {
        AVFrame *c = av_frame_clone(f);
        if (!c)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        /* a full queue waits for a rung, which may need this token */
        int wait = j->dec_tok && !frameq_room(&j->rungs[i].q);
        if (wait)
            job_tokens_give(j, 1);
        int r = frameq_put(&j->rungs[i].q, c, job_stop_cb, j);
        if (wait)
            job_tokens_take(j, 1);
        if (r)
            return -1;
    }
    double span = j->pi.duration, at = t;
    /* a chunk: the fraction of its range (in a run that went on, of the
     * chunk it encodes now: chain.c moved the range on) */
    if (j->mode == STAGE_CHUNK) {
        at = (double)(f->pts - j->range_f0) * j->fps_den / j->fps_num;
        span = j->range_f1 >= 0 ? (double)(j->range_f1 - j->range_f0) * j->fps_den / j->fps_num
                                : span - (double)j->range_f0 * j->fps_den / j->fps_num;
    }
    if (span > 0) {
        double p = at / span;
        if (p - j->last_progress >= 0.01 || p >= 1) {
            j->last_progress = p;
            job_progress(j, j->pass == 1 ? "analysing" : "encoding", p);
            /* the run's frames, also after it went on into the next chunk:
             * the caller's fps is their average since its first report */
            if (j->pass != 1 && j->ev && j->ev->position)
                j->ev->position(j->ev->ud, t, j->vframes);
        }
    }
    return 0;
}

int video_pull(job *j, ss_err *err)
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
        if (ret || job_cancelled(j) || j->range_done)
            break;
    }
    av_frame_free(&f);
    return ret;
}

/* The announced end of the video (seconds from its start; 0: unknown): the
 * shorter of the video stream's duration and the container's, when both
 * are known (a fragment's damaged tfdt made the stream 23 million years
 * long; libavformat left it out of the container's 3 s). */
double video_announced_end(const job *j)
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
    double end = video_announced_end(j);
    if (gap > 0 && end > 0 && ((double)pts - (double)j->t0) * tb > end + TS_JUMP_SECONDS) {
        j->ts_fixed++;
        return j->next_vpts;
    }
    return pts;
}

static int video_push(job *j, AVFrame *f, ss_err *err);

static int video_frame(job *j, AVFrame *f, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    double tb = av_q2d(st->time_base);
    int64_t fixed0 = j->ts_fixed;
    int64_t pts = video_pts(j, f, tb);
    int64_t nominal = av_rescale_q(1, (AVRational){ j->fps_den, j->fps_num }, st->time_base);
    int64_t dur = nominal;
    if (f->pkt_duration > 0) {
        double end = video_announced_end(j);
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
    if (j->mode == STAGE_CHUNK) {
        if (!j->vframes)
            j->pre_decoded++;
        if (f->pts < j->pre_from)
            return 0;   /* before the key frame the chunk starts on */
        if (!j->vg && f->pts < j->pre_cut) {
            /* pre-roll far before the range: keep the last two */
            av_frame_free(&j->pre_hold[0]);
            j->pre_hold[0] = j->pre_hold[1];
            j->pre_hold[1] = av_frame_clone(f);
            return j->pre_hold[1] ? 0 : ss_fail(err, SS_ENOMEM, "out of memory");
        }
        if (video_push_held(j, err))
            return -1;
    }
    return video_push(j, f, err);
}

int video_push_held(job *j, ss_err *err)
{
    for (int k = 0; k < 2; k++) {
        int r = j->pre_hold[k] ? video_push(j, j->pre_hold[k], err) : 0;
        av_frame_free(&j->pre_hold[k]);
        if (r)
            return -1;
    }
    return 0;
}

/* A frame on the timeline into the pre-filter (opened at the first one),
 * and what comes out of it on to the rungs. */
static int video_push(job *j, AVFrame *f, ss_err *err)
{
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
    return video_pull(j, err);
}

/* Receive every decoded frame available from the video decoder. */
int video_receive(job *j, AVFrame *f, ss_err *err)
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
        if (job_cancelled(j))
            return 0;
    }
}
int video_open(job *j, ss_err *err)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    const AVCodec *dc = avcodec_find_decoder(st->codecpar->codec_id);
    j->vdec = avcodec_alloc_context3(dc);
    if (!j->vdec)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (avcodec_parameters_to_context(j->vdec, st->codecpar) < 0)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    j->vdec->thread_count = j->thb.decoder;   /* 0: libavcodec's choice */
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