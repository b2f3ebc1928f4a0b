/* audio.c — the audio renditions: every chosen source audio track (and a
 * 5.1 one of each multichannel track with spec audio.surround), each
 * decoded, put on the video's timeline (the same timestamp repair rule),
 * resampled to 48 kHz stereo (or 5.1), AAC, and cut into CMAF segments at
 * the first AAC frame at or after each segment boundary. AAC packets are
 * held until the video has passed them, so the audio never runs ahead of
 * the video; at the end it is padded with silence or cut to the video's
 * length. */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>

/* The decoder and AAC encoder of a, its CMAF track in <outdir>/<name>. */
static int track_open(job *j, atrack *a, ss_err *err)
{
    const probe_audio *pa = &j->pi.audio[a->src];
    AVStream *st = j->ic->streams[pa->idx];
    const AVCodec *dc = avcodec_find_decoder(st->codecpar->codec_id);
    a->dec = avcodec_alloc_context3(dc);
    if (!a->dec)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (avcodec_parameters_to_context(a->dec, st->codecpar) < 0 ||
        avcodec_open2(a->dec, dc, NULL) < 0)
        return ss_fail(err, SS_EMEDIA, "cannot open the %s audio decoder (stream #%d)", pa->codec,
                       pa->idx);
    const AVCodec *ec = avcodec_find_encoder_by_name("aac");
    if (!ec)
        return ss_fail(err, SS_EINTERNAL, "aac encoder not available");
    AVCodecContext *c = a->enc = avcodec_alloc_context3(ec);
    if (!c)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    c->sample_rate = 48000;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&c->ch_layout, a->channels);
    int kbps = j->o->audio_kbps > 0 ? j->o->audio_kbps : 128;
    c->bit_rate = (int64_t)(a->channels > 2 ? 3 * kbps : kbps) * 1000;   /* 5.1: 3x stereo */
    c->time_base = (AVRational){ 1, 48000 };
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(c, ec, NULL);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "aac encoder: %s", e);
    }
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/%s", j->outdir, a->name);
    a->cm = cmaf_open(dir, a->name, c, j->ev, err);
    return a->cm ? 0 : -1;
}

void audio_release(atrack *a)
{
    for (int i = 0; i < a->nhold; i++)
        av_packet_free(&a->hold[i]);
    free(a->hold);
    avfilter_graph_free(&a->ag);
    avcodec_free_context(&a->dec);
    avcodec_free_context(&a->enc);
    cmaf_free(&a->cm);
    memset(a, 0, sizeof(*a));
}

int audio_open(job *j, ss_err *err)
{
    int sel[PROBE_MAX_AUDIO];
    int n = probe_pick_audio(&j->pi, j->o, sel, PROBE_MAX_AUDIO);
    j->nau = 0;
    for (int k = 0; k < n; k++) {
        const probe_audio *pa = &j->pi.audio[sel[k]];
        int surround = j->o->surround && pa->channels >= 6;
        for (int v = 0; v <= surround && j->nau < MEDIA_MAX_AUDIO; v++) {
            atrack *a = &j->au[j->nau];
            memset(a, 0, sizeof(*a));
            a->src = sel[k];
            a->channels = v ? 6 : 2;
            char base[24] = "audio";
            if (k)
                snprintf(base, sizeof(base), "audio_%d", k);
            snprintf(a->name, sizeof(a->name), "%s%s", base, v ? "_51" : "");
            ss_err e = { 0 };
            if (track_open(j, a, &e)) {
                audio_release(a);
                if (n == 1 || e.code != SS_EMEDIA)
                    return ss_fail(err, e.code, "%s", e.msg);
                char m[600];
                snprintf(m, sizeof(m), "audio track skipped: %s", e.msg);
                job_warn(j, m);
                break;
            }
            j->nau++;
        }
    }
    if (j->pi.naudio > n) {
        char m[160];
        snprintf(m, sizeof(m), "source has %d audio streams: %d published (spec audio.tracks)",
                 j->pi.naudio, n);
        job_warn(j, m);
    }
    return 0;
}

static int afilter_open(job *j, atrack *a, const AVFrame *f, ss_err *err)
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
    char chain[256];
    snprintf(chain, sizeof(chain), "aresample=48000:async=1:first_pts=0,"
             "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=%s",
             a->channels > 2 ? "5.1" : "stereo");
    char what[600];
    snprintf(what, sizeof(what), "audio filter (%s)", args);
    if (media_graph_build(&a->ag, &a->asrc, &a->asink, "abuffer", "abuffersink", args, chain, 1,
                          SS_EMEDIA, what, err))
        return -1;
    av_buffersink_set_frame_size(a->asink, (unsigned)a->enc->frame_size);
    return 0;
}

/* Video time reached so far, in audio samples (48 kHz). */
static int64_t video_samples(job *j)
{
    if (j->pi.audio_only)   /* nothing to wait for or to be cut to */
        return INT64_MAX;
    return av_rescale(j->vframes, 48000LL * j->fps_den, j->fps_num);
}

static int audio_mux(job *j, atrack *a, AVPacket *pkt, ss_err *err)
{
    int64_t b = plan_boundary_frame(a->akcut, 48000, 1, j->seg_num, j->seg_den);
    int cut = 0;
    if (pkt->pts >= b) {
        cut = a->akcut > 0;
        while (plan_boundary_frame(a->akcut, 48000, 1, j->seg_num, j->seg_den) <= pkt->pts)
            a->akcut++;
    }
    if (cmaf_write(a->cm, pkt, cut, err))
        return -1;
    if (cut && j->mode == STAGE_AUDIO)   /* a segment more: playable sooner */
        audio_item_progress(j);
    return 0;
}

/* Mux held packets the video has passed (all up to end when end >= 0,
 * dropping those at or after it). */
static int hold_release(job *j, atrack *a, int64_t end, ss_err *err)
{
    int64_t lim = end >= 0 ? end : video_samples(j);
    int k = 0;
    while (k < a->nhold && a->hold[k]->pts < lim) {
        if (audio_mux(j, a, a->hold[k], err))
            return -1;
        av_packet_free(&a->hold[k]);
        k++;
    }
    if (end >= 0) {
        for (int i = k; i < a->nhold; i++)
            av_packet_free(&a->hold[i]);
        a->nhold = 0;
        return 0;
    }
    if (k > 0 && a->nhold > k)
        memmove(a->hold, a->hold + k, (size_t)(a->nhold - k) * sizeof(*a->hold));
    a->nhold -= k;
    return 0;
}

static int audio_encode(job *j, atrack *a, AVFrame *f, ss_err *err)
{
    if (f) {
        f->pts = a->asamples;
        a->asamples += f->nb_samples;
    }
    int r = avcodec_send_frame(a->enc, f);
    if (r < 0 && r != AVERROR_EOF) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "aac encoder: %s", e);
    }
    for (;;) {
        AVPacket *p = av_packet_alloc();
        if (!p)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        r = avcodec_receive_packet(a->enc, p);
        if (r < 0) {
            av_packet_free(&p);
            if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
                break;
            return ss_fail(err, SS_EINTERNAL, "aac encoder failed");
        }
        if (a->nhold == a->holdsz) {
            int n = a->holdsz ? a->holdsz * 2 : 256;
            AVPacket **h = realloc(a->hold, (size_t)n * sizeof(*h));
            if (!h) {
                av_packet_free(&p);
                return ss_fail(err, SS_ENOMEM, "out of memory");
            }
            a->hold = h;
            a->holdsz = n;
        }
        a->hold[a->nhold++] = p;
    }
    return hold_release(j, a, -1, err);
}

static int afilter_pull(job *j, atrack *a, ss_err *err)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int ret = 0;
    for (;;) {
        int r = av_buffersink_get_frame(a->asink, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            ret = ss_fail(err, SS_EINTERNAL, "audio filter failed");
            break;
        }
        ret = audio_encode(j, a, f, err);
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
static int audio_pts(job *j, atrack *a, const AVFrame *f, int64_t *out)
{
    AVStream *st = j->ic->streams[j->pi.audio[a->src].idx];
    int64_t raw = f->best_effort_timestamp;
    double sr = f->sample_rate;
    double rs = raw != AV_NOPTS_VALUE ? raw * av_q2d(st->time_base) - j->t0s : 0;
    if (raw == AV_NOPTS_VALUE || fabs(rs) > 1e10) {
        if (raw != AV_NOPTS_VALUE)
            a->ats_fixed++;   /* nowhere near any real timeline */
        *out = a->apts_next;
        return 0;
    }
    int64_t pts = av_rescale_q(raw, st->time_base, (AVRational){ 1, f->sample_rate }) -
                  (int64_t)llround(j->t0s * sr);
    int64_t r = pts;
    pts += a->ats_shift;
    if (a->apts_any && fabs((double)(pts - a->apts_next)) / sr > TS_JUMP_SECONDS) {
        if (j->ic->iformat->flags & AVFMT_TS_DISCONT) {
            a->ats_shift = a->apts_next - r;
            a->ats_fixed++;
            *out = a->apts_next;
            return 0;
        }
        double end = video_announced_end(j);
        if (pts > a->apts_next && end > 0 && pts / sr > end + TS_JUMP_SECONDS) {
            a->ats_fixed++;
            return -1;
        }
    }
    *out = pts;
    return 0;
}

static int audio_frame(job *j, atrack *a, AVFrame *f, ss_err *err)
{
    int64_t fixed0 = a->ats_fixed, pts;
    int drop = audio_pts(j, a, f, &pts);
    if (fixed0 == 0 && a->ats_fixed > 0 && a->channels == 2) {
        char m[200];
        snprintf(m, sizeof(m), "audio timestamps jump at %.1f s (damaged or discontinuous): "
                 "frames re-timed or dropped%s%s", (double)a->apts_next / f->sample_rate,
                 a->src ? " in " : "", a->src ? a->name : "");
        job_warn(j, m);
    }
    if (drop)
        return 0;
    a->apts_any = 1;
    a->apts_next = pts + f->nb_samples;
    f->pts = pts;
    if (!a->ag && afilter_open(j, a, f, err))
        return -1;
    int r = av_buffersrc_add_frame_flags(a->asrc, f, AV_BUFFERSRC_FLAG_KEEP_REF);
    if (r < 0) {
        /* format changes mid-stream: skip those samples (async fills the gap) */
        return 0;
    }
    return afilter_pull(j, a, err);
}

static int audio_receive(job *j, atrack *a, AVFrame *f, ss_err *err)
{
    for (;;) {
        int r = avcodec_receive_frame(a->dec, f);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r < 0)
            continue;
        r = audio_frame(j, a, f, err);
        av_frame_unref(f);
        if (r)
            return -1;
    }
}

int audio_packet(job *j, const AVPacket *pkt, AVFrame *f, ss_err *err)
{
    for (int i = 0; i < j->nau; i++) {
        atrack *a = &j->au[i];
        if (j->pi.audio[a->src].idx != pkt->stream_index)
            continue;
        if (avcodec_send_packet(a->dec, pkt) >= 0 && audio_receive(j, a, f, err))
            return -1;
    }
    return 0;
}

/* End of input for one rendition: flush, pad with silence or cut to the
 * video's length, write its last segment. */
static int track_end(job *j, atrack *a, AVFrame *f, ss_err *err)
{
    int r = 0;
    avcodec_send_packet(a->dec, NULL);
    r = audio_receive(j, a, f, err);
    if (!r && a->ag) {
        r = av_buffersrc_add_frame(a->asrc, NULL) < 0
                ? ss_fail(err, SS_EINTERNAL, "audio filter would not flush")
                : afilter_pull(j, a, err);
    }
    int64_t vend = j->pi.audio_only ? -1 : video_samples(j);
    while (!r && vend >= 0 && a->asamples < vend) {
        av_frame_unref(f);
        f->nb_samples = a->enc->frame_size;
        f->format = AV_SAMPLE_FMT_FLTP;
        f->sample_rate = 48000;
        av_channel_layout_default(&f->ch_layout, a->channels);
        if (av_frame_get_buffer(f, 0) < 0) {
            r = ss_fail(err, SS_ENOMEM, "out of memory");
            break;
        }
        av_samples_set_silence(f->extended_data, 0, f->nb_samples, a->channels, AV_SAMPLE_FMT_FLTP);
        r = audio_encode(j, a, f, err);
    }
    av_frame_unref(f);
    if (!r)
        r = audio_encode(j, a, NULL, err);
    if (!r)
        r = hold_release(j, a, vend >= 0 ? vend : INT64_MAX, err);
    if (!r)
        r = cmaf_finish(a->cm, vend >= 0 ? vend : AV_NOPTS_VALUE, err);
    return r;
}

int audio_end(job *j, ss_err *err)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int r = 0;
    for (int i = 0; i < j->nau && !r; i++)
        r = track_end(j, &j->au[i], f, err);
    av_frame_free(&f);
    return r;
}
