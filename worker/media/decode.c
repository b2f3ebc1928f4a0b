/* decode.c — demux and decode: the whole source in one pass into the
 * video and audio stages (and subtitles), or the sampled windows of the
 * per-title analysis (seeking to a source keyframe near each window). */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <libavfilter/buffersrc.h>

#include "cpuacct.h"
#include "util.h"

/* A chunk decodes from the source's last key frame K at or before its
 * first frame (the seek reads up to K's packet):
 * - K on the chunk's first slot (within STAGE_KEY_ON_GRID of a frame: a
 *   source whose GOPs line up with the segment grid, as the fixed GOPs of
 *   many encoders do) needs no pre-roll at all: every frame from K on
 *   decodes as in one process and the CFR grid gives the first slot K, as
 *   one process does; frames that come out before K are dropped
 *   (j->pre_from). Not for interlaced sources: the deinterlacer looks one
 *   frame back.
 * - K at least STAGE_PREROLL_MIN before it: the filters, which look one
 *   frame back at most, see every frame they need; the pre-roll is K to
 *   the range (with the reference-frames-only part of STAGE_PREROLL_FILTER).
 * Returns 1 with K's packet in pkt (decode from it), 0 when the chunk
 * decodes from the key frame at least STAGE_PREROLL before instead (a key
 * frame just before the range; the caller seeks again, and a remote source
 * reads one block more), -1 out of memory. */
/* Whether decoding can restart at this key frame packet with every frame
 * from it on as in one process: the container's key flag alone also marks
 * recovery points (x264's intra refresh, an open GOP's I frame in some
 * muxers), whose next frames are not whole until the refresh ends. H.264:
 * an IDR slice; HEVC: an IRAP picture (IDR, CRA, BLA: the decoder drops
 * the leading pictures that need what came before); intra-only codecs:
 * every frame. Anything else: no (the chunk takes the long pre-roll). */
static int restart_point(const AVCodecParameters *par, const AVPacket *pkt)
{
    const AVCodecDescriptor *d = avcodec_descriptor_get(par->codec_id);
    if (d && (d->props & AV_CODEC_PROP_INTRA_ONLY))
        return 1;
    int hevc = par->codec_id == AV_CODEC_ID_HEVC;
    if (par->codec_id != AV_CODEC_ID_H264 && !hevc)
        return 0;
    const uint8_t *b = pkt->data, *e = pkt->data + pkt->size;
    const uint8_t *x = par->extradata;
    int lensize = 0;   /* length-prefixed NAL units (avcC, hvcC), else start codes */
    if (x && par->extradata_size > 22 && hevc && x[0] == 1)
        lensize = (x[21] & 3) + 1;
    else if (x && par->extradata_size > 4 && !hevc && x[0] == 1)
        lensize = (x[4] & 3) + 1;
    while (b < e) {
        const uint8_t *nal;
        if (lensize) {
            if (e - b < lensize)
                return 0;
            size_t n = 0;
            for (int i = 0; i < lensize; i++)
                n = n << 8 | b[i];
            nal = b + lensize;
            if (n == 0 || n > (size_t)(e - nal))
                return 0;
            b = nal + n;
        } else {
            while (b + 3 <= e && !(b[0] == 0 && b[1] == 0 && b[2] == 1))
                b++;
            if (b + 3 >= e)
                return 0;
            nal = b + 3;
            b = nal;
        }
        int type = hevc ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
        if (hevc ? type >= 16 && type <= 21 : type == 5)
            return 1;
        if (hevc ? type < 32 : type >= 1 && type <= 5)
            return 0;   /* the first slice is not one */
    }
    return 0;
}

static int chunk_seek_near(job *j, AVPacket *pkt)
{
    AVStream *st = j->ic->streams[j->pi.vidx];
    double tb = av_q2d(st->time_base);
    double frame = (double)j->fps_den / j->fps_num;
    double t = (double)j->range_f0 * frame, tol = STAGE_KEY_ON_GRID * frame;
    double back = STAGE_PREROLL_MIN > 3 * frame ? STAGE_PREROLL_MIN : 3 * frame;
    if (av_seek_frame(j->ic, j->pi.vidx, j->t0 + (int64_t)((t + tol) / tb), AVSEEK_FLAG_BACKWARD) < 0)
        return 0;
    for (int n = 0; n < 1024; n++) {
        if (av_read_frame(j->ic, pkt) < 0)
            return 0;
        if (pkt->stream_index != j->pi.vidx) {
            av_packet_unref(pkt);
            continue;
        }
        if (!(pkt->flags & AV_PKT_FLAG_KEY) || pkt->pts == AV_NOPTS_VALUE ||
            !restart_point(st->codecpar, pkt))
            break;
        double k = (double)(pkt->pts - j->t0) * tb;
        if (!j->pi.interlaced && fabs(k - t) <= tol) {
            j->pre_from = pkt->pts - j->t0;
            return 1;
        }
        if (k <= t - back) {
            double cut = t - STAGE_PREROLL_FILTER;
            j->pre_cut = cut > 0 ? (int64_t)(cut / tb) : 0;
            return 1;
        }
        break;
    }
    av_packet_unref(pkt);
    return 0;
}

int decode_all(job *j, ss_err *err)
{
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int ret = 0;
    int warned = 0;
    if (!pkt || !f) {
        ret = ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    int held = 0;   /* pkt holds the first packet to decode */
    if (j->mode == STAGE_CHUNK && j->range_f0 > 0) {
        held = chunk_seek_near(j, pkt);
        if (held < 0) {
            ret = ss_fail(err, SS_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (j->mode == STAGE_CHUNK && j->range_f0 > 0 && !held) {
        /* read only the chunk's time range: from the key frame before it */
        AVStream *st = j->ic->streams[j->pi.vidx];
        double t = (double)j->range_f0 * j->fps_den / j->fps_num - STAGE_PREROLL;
        if (t > 0 && av_seek_frame(j->ic, j->pi.vidx, j->t0 + (int64_t)(t / av_q2d(st->time_base)),
                                   AVSEEK_FLAG_BACKWARD) < 0) {
            ret = ss_fail(err, SS_EMEDIA, "cannot seek to %.1f s in the source", t);
            goto out;
        }
        double cut = (double)j->range_f0 * j->fps_den / j->fps_num - STAGE_PREROLL_FILTER;
        j->pre_cut = cut > 0 ? (int64_t)(cut / av_q2d(st->time_base)) : 0;
    }
    if (j->mode == STAGE_AUDIO) {
        /* the video only for the thumbnails: key frames */
        if (j->th)
            j->vdec->skip_frame = AVDISCARD_NONKEY;
        else
            j->ic->streams[j->pi.vidx]->discard = AVDISCARD_ALL;
    }
    for (;;) {
        if (job_cancelled(j) || j->range_done)
            break;
        int r = held ? 0 : av_read_frame(j->ic, pkt);
        held = 0;
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
            if (j->pre_cut > 0) {
                /* a chunk's pre-roll far before its range: the frames
                 * other frames refer to (STAGE_PREROLL_FILTER) */
                int64_t pp = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
                j->vdec->skip_frame = !j->vg && pp != AV_NOPTS_VALUE && pp - j->t0 < j->pre_cut
                                          ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
            }
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
        } else if (j->ic->streams[pkt->stream_index]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
            ret = audio_packet(j, pkt, f, err);
        } else if (j->sb) {
            subs_feed(j->sb, pkt);
        }
        av_packet_unref(pkt);
        if (ret)
            goto out;
    }
    if (job_cancelled(j))
        goto out;
    if (j->range_done)
        goto out;   /* the chunk ends before the source does */
    /* flush the decoder and the pre-filter */
    if (j->vdec) {
        avcodec_send_packet(j->vdec, NULL);
        if ((ret = video_receive(j, f, err)))
            goto out;
    }
    if (job_cancelled(j))
        goto out;
    if (j->mode == STAGE_CHUNK && (ret = video_push_held(j, err)))
        goto out;
    if (j->vg) {
        if (av_buffersrc_close(j->vsrc, j->next_vpts - j->t0, AV_BUFFERSRC_FLAG_PUSH) < 0) {
            ret = ss_fail(err, SS_EINTERNAL, "video filter would not flush");
            goto out;
        }
        if ((ret = video_pull(j, err)))
            goto out;
    }
    if (j->vframes == 0 && j->mode == STAGE_WHOLE && !j->pi.audio_only) {
        ret = ss_fail(err, SS_EMEDIA, "no decodable video frames in the source");
        goto out;
    }
    if (j->nau && (ret = audio_end(j, err)))
        goto out;
out:
    av_packet_free(&pkt);
    av_frame_free(&f);
    return ret;
}

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
            if (job_cancelled(j))
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
                (ret = video_pull(j, err)))
                goto out;
        }
        job_progress(j, "analysing", (w + 1.0) / nwin);
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

static void pt_tok_take(void *ud, int n)
{
    job_tokens_take(ud, n);
}

static void pt_tok_give(void *ud, int n)
{
    job_tokens_give(ud, n);
}

/* The per-title pass: windows analysed and probe-encoded, the ladder in
 * j->lad, the report in j->pt_report. */
int decode_per_title(job *j, ss_err *e)
{
    double t0 = ss_mono_s(), c0 = cpuacct_seconds();   /* this job's threads only */
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
    /* the job's threads budget, as the encode's (plan_thread_budget, no
     * rungs yet): the decoding thread holds a token, each probe one while
     * it has frames, the decoder and pre-filter run on one thread */
    plan_ladder none;
    memset(&none, 0, sizeof(none));
    plan_thread_budget(&none, j->o->threads, ss_ncpus(), &j->thb);
    j->tok_free = j->thb.tokens;
    s.tokens = j->thb.tokens;
    s.tok_take = pt_tok_take;
    s.tok_give = pt_tok_give;
    s.tok_ud = j;
    s.preset = j->o->preset ? j->o->preset : "veryfast";
    snprintf(s.x264_params, sizeof(s.x264_params), "%s",
             enc_x264_params(j->o->ladder == MEDIA_LADDER_PER_TITLE, j->pass, 0));
    s.av1 = j->o->av1;
    job_progress(j, "analysing", 0);
    if (video_open(j, e))
        return -1;
    j->pt = pt_new(&s, nwin, frames, j->cancel, e);
    if (!j->pt)
        return -1;
    job_tokens_take(j, 1);
    int r = decode_windows(j, starts, nwin, frames, e);
    job_tokens_give(j, 1);   /* before pt_finish waits for the probes */
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
                            json_real(round((cpuacct_seconds() - c0) * 100) / 100));
        json_object_set_new(j->pt_report, "decoded_frames", json_integer(j->pt_decoded));
        json_object_set_new(j->pt_report, "seeks", json_boolean(!j->pt_noseek));
    }
    return r;
}