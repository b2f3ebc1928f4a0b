/* audio.c — the audio track: decoded frames on the video's timeline (the
 * same timestamp repair rule), resampled to 48 kHz stereo, AAC, and cut
 * into CMAF segments at the first AAC frame at or after each segment
 * boundary. AAC packets are held until the video has passed them, so the
 * audio never runs ahead of the video; at the end it is padded with
 * silence or cut to the video's length. */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>

int audio_open(job *j, ss_err *err)
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
    char what[600];
    snprintf(what, sizeof(what), "audio filter (%s)", args);
    if (media_graph_build(&j->ag, &j->asrc, &j->asink, "abuffer", "abuffersink", args, chain, 1,
                          SS_EMEDIA, what, err))
        return -1;
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
        double end = video_announced_end(j);
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

int audio_receive(job *j, AVFrame *f, ss_err *err)
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
int audio_end(job *j, ss_err *err)
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