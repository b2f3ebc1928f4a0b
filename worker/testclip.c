/* testclip.c — `streamscale-worker testclip OUT.mp4 [--seconds N]
 * [--size WxH] [--rate FPS] [--no-audio]`: write a short H.264/AAC MP4 made
 * from libavfilter's test sources (a moving test pattern with a clock, and
 * a beeping tone), so the demo and smoke tests need no video of their own
 * and no ffmpeg program.
 */
#include "testclip.h"

#include <libavcodec/avcodec.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ss_err.h"

typedef struct stream {
    AVFilterGraph *graph;
    AVFilterContext *sink;
    AVCodecContext *enc;
    AVStream *st;
    int done;
    int64_t next_pts;      /* in the encoder's time base, for interleaving */
} stream;

static int open_source(stream *s, const char *desc, ss_err *err)
{
    s->graph = avfilter_graph_alloc();
    AVFilterInOut *in = NULL, *out = NULL;
    if (!s->graph)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int prc = avfilter_graph_parse2(s->graph, desc, &in, &out);
    avfilter_inout_free(&in);
    if (prc < 0 || !out) {
        avfilter_inout_free(&out);
        return ss_fail(err, SS_EINTERNAL, "bad filter graph '%s'", desc);
    }
    const char *sink_name = avfilter_pad_get_type(out->filter_ctx->output_pads, out->pad_idx) ==
                                    AVMEDIA_TYPE_VIDEO ? "buffersink" : "abuffersink";
    int rc = avfilter_graph_create_filter(&s->sink, avfilter_get_by_name(sink_name), "sink", NULL,
                                          NULL, s->graph);
    if (rc >= 0)
        rc = avfilter_link(out->filter_ctx, (unsigned)out->pad_idx, s->sink, 0);
    avfilter_inout_free(&out);
    if (rc >= 0)
        rc = avfilter_graph_config(s->graph, NULL);
    if (rc < 0)
        return ss_fail(err, SS_EINTERNAL, "cannot configure '%s': %s", desc, av_err2str(rc));
    return 0;
}

static int write_packets(AVFormatContext *oc, stream *s, ss_err *err)
{
    AVPacket *pkt = av_packet_alloc();
    int rc;
    while ((rc = avcodec_receive_packet(s->enc, pkt)) >= 0) {
        av_packet_rescale_ts(pkt, s->enc->time_base, s->st->time_base);
        pkt->stream_index = s->st->index;
        rc = av_interleaved_write_frame(oc, pkt);
        if (rc < 0)
            break;
    }
    av_packet_free(&pkt);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
        return 0;
    return ss_fail(err, SS_EIO, "writing the clip: %s", av_err2str(rc));
}

/* Pull one frame from the source and encode it; sets s->done at the end. */
static int step(AVFormatContext *oc, stream *s, ss_err *err)
{
    AVFrame *f = av_frame_alloc();
    int rc = av_buffersink_get_frame(s->sink, f);
    if (rc == AVERROR_EOF) {
        av_frame_free(&f);
        s->done = 1;
        avcodec_send_frame(s->enc, NULL);
        return write_packets(oc, s, err);
    }
    if (rc < 0) {
        av_frame_free(&f);
        return ss_fail(err, SS_EINTERNAL, "test source: %s", av_err2str(rc));
    }
    AVRational tb = av_buffersink_get_time_base(s->sink);
    f->pts = av_rescale_q(f->pts, tb, s->enc->time_base);
    f->pict_type = AV_PICTURE_TYPE_NONE;
    s->next_pts = f->pts + (f->nb_samples ? f->nb_samples : 1);
    rc = avcodec_send_frame(s->enc, f);
    av_frame_free(&f);
    if (rc < 0)
        return ss_fail(err, SS_EINTERNAL, "encoder: %s", av_err2str(rc));
    return write_packets(oc, s, err);
}

int testclip_write(const char *path, double seconds, int width, int height, int fps, int audio,
                   ss_err *err)
{
    AVFormatContext *oc = NULL;
    stream v = { 0 }, a = { 0 };
    int rc = -1;
    char desc[512];

    if (avformat_alloc_output_context2(&oc, NULL, "mp4", path) < 0 || !oc) {
        ss_fail(err, SS_EIO, "cannot create %s", path);
        goto out;
    }
    snprintf(desc, sizeof(desc), "testsrc2=size=%dx%d:rate=%d:duration=%g,format=yuv420p", width,
             height, fps, seconds);
    if (open_source(&v, desc, err))
        goto out;
    const AVCodec *vc = avcodec_find_encoder_by_name("libx264");
    if (!vc) {
        ss_fail(err, SS_EINTERNAL, "libx264 is not available");
        goto out;
    }
    v.enc = avcodec_alloc_context3(vc);
    v.enc->width = width;
    v.enc->height = height;
    v.enc->pix_fmt = AV_PIX_FMT_YUV420P;
    v.enc->time_base = (AVRational){ 1, fps };
    v.enc->framerate = (AVRational){ fps, 1 };
    v.enc->gop_size = fps * 2;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        v.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(v.enc->priv_data, "preset", "veryfast", 0);
    av_opt_set(v.enc->priv_data, "crf", "20", 0);
    if (avcodec_open2(v.enc, vc, NULL) < 0) {
        ss_fail(err, SS_EINTERNAL, "cannot open libx264");
        goto out;
    }
    v.st = avformat_new_stream(oc, NULL);
    avcodec_parameters_from_context(v.st->codecpar, v.enc);
    v.st->time_base = v.enc->time_base;

    if (audio) {
        snprintf(desc, sizeof(desc),
                 "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=%g,"
                 "aformat=sample_fmts=fltp:channel_layouts=stereo,asetnsamples=n=1024:p=0", seconds);
        if (open_source(&a, desc, err))
            goto out;
        const AVCodec *ac = avcodec_find_encoder(AV_CODEC_ID_AAC);
        a.enc = avcodec_alloc_context3(ac);
        a.enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
        a.enc->sample_rate = 48000;
        av_channel_layout_default(&a.enc->ch_layout, 2);
        a.enc->bit_rate = 128000;
        a.enc->time_base = (AVRational){ 1, 48000 };
        if (oc->oformat->flags & AVFMT_GLOBALHEADER)
            a.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        if (avcodec_open2(a.enc, ac, NULL) < 0) {
            ss_fail(err, SS_EINTERNAL, "cannot open the AAC encoder");
            goto out;
        }
        a.st = avformat_new_stream(oc, NULL);
        avcodec_parameters_from_context(a.st->codecpar, a.enc);
        a.st->time_base = a.enc->time_base;
    } else {
        a.done = 1;
    }
    if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0) {
        ss_fail(err, SS_EIO, "cannot open %s for writing", path);
        goto out;
    }
    if (avformat_write_header(oc, NULL) < 0) {
        ss_fail(err, SS_EIO, "cannot write the header of %s", path);
        goto out;
    }
    /* Feed whichever stream is behind, so the muxer interleaves cheaply. */
    while (!v.done || !a.done) {
        int video_next = a.done ||
            (!v.done && av_compare_ts(v.next_pts, v.enc->time_base, a.next_pts, a.enc->time_base) <= 0);
        if (step(oc, video_next ? &v : &a, err))
            goto out;
    }
    if (av_write_trailer(oc) < 0) {
        ss_fail(err, SS_EIO, "cannot finish %s", path);
        goto out;
    }
    rc = 0;
out:
    avcodec_free_context(&v.enc);
    avcodec_free_context(&a.enc);
    avfilter_graph_free(&v.graph);
    avfilter_graph_free(&a.graph);
    if (oc && oc->pb)
        avio_closep(&oc->pb);
    avformat_free_context(oc);
    return rc;
}

int testclip_main(int argc, char **argv)
{
    double seconds = 10;
    int w = 1280, h = 720, fps = 30, audio = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seconds") && v) {
            seconds = atof(v);
            i++;
        } else if (!strcmp(a, "--size") && v && sscanf(v, "%dx%d", &w, &h) == 2) {
            i++;
        } else if (!strcmp(a, "--rate") && v) {
            fps = atoi(v);
            i++;
        } else if (!strcmp(a, "--no-audio")) {
            audio = 0;
        } else if (a[0] != '-' && !out) {
            out = a;
        } else {
            fprintf(stderr, "usage: streamscale-worker testclip OUT.mp4 [--seconds N] [--size WxH] "
                            "[--rate FPS] [--no-audio]\n");
            return 2;
        }
    }
    if (!out || seconds <= 0 || seconds > 3600 || w < 16 || h < 16 || w > 7680 || h > 4320 ||
        (w & 1) || (h & 1) || fps < 1 || fps > 120) {
        fprintf(stderr, "streamscale-worker testclip: need OUT.mp4, 0 < seconds <= 3600, an even "
                        "size up to 7680x4320 and 1..120 fps\n");
        return 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    ss_err err = { 0 };
    if (testclip_write(out, seconds, w, h, fps, audio, &err) != 0) {
        fprintf(stderr, "streamscale-worker testclip: %s\n", err.msg);
        return 1;
    }
    return 0;
}
