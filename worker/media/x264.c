/* x264.c — the H.264 encoder of encoder.h: libx264 through libavcodec,
 * High profile, 8-bit 4:2:0, fixed GOP of one segment, IDRs where the rung
 * forces them, capped CRF or two-pass ABR. */
#include "encoder.h"
#include "mediai.h"
#include "plan.h"

#include <stdio.h>

#include <libavutil/opt.h>

/* x264 options beyond the preset. Segments are cut only at the forced
 * IDRs, so x264's own keyframes at scene cuts (scenecut) cannot break the
 * alignment of the rungs; the fixed ladders keep them off (the same
 * bitstream as the ffmpeg command line they are compared with), per-title
 * turns them on: a cut gets an I-frame, or an IDR when it is more than
 * half a segment after the last one (x264 clamps min-keyint to keyint/2+1).
 * stitchable: SPS/PPS that do not depend on the content, so separately
 * encoded chunks of one title share one init segment. */
const char *enc_x264_params(int scenecut, int pass, int stitchable)
{
    /* two-pass: x264 lets the average drift by ratetol (default 1.0) to
     * spread quality; at 0.1 it keeps to the target (measured: a 150 kbps
     * 360p rung came out 8 % over with 1.0, 2 % with 0.1; other rungs
     * within 1 % either way) */
    static const char *const p[2][2][2] = {
        { { "scenecut=0:open-gop=0", "scenecut=0:open-gop=0:stitchable=1" },
          { "scenecut=0:open-gop=0:ratetol=0.1", "scenecut=0:open-gop=0:ratetol=0.1:stitchable=1" } },
        { { "open-gop=0", "open-gop=0:stitchable=1" },
          { "open-gop=0:ratetol=0.1", "open-gop=0:ratetol=0.1:stitchable=1" } },
    };
    return p[scenecut != 0][pass != 0][stitchable != 0];
}

static int x264_open(const enc_settings *s, AVCodecContext **out, char *codecs, size_t codecs_len,
                     ss_err *err)
{
    const AVCodec *codec;
    if (enc_alloc(s, "libx264", &codec, out, err))
        return -1;
    AVCodecContext *c = *out;
    c->gop_size = s->keyint;
    c->keyint_min = s->keyint;
    c->rc_max_rate = (int64_t)s->maxrate_kbps * 1000;
    c->rc_buffer_size = s->bufsize_kbits * 1000;
    if (s->pass) {
        c->bit_rate = (int64_t)s->target_kbps * 1000;
        c->flags |= s->pass == 1 ? AV_CODEC_FLAG_PASS1 : AV_CODEC_FLAG_PASS2;
    }
    c->level = s->level;
    c->thread_count = s->threads;
    AVDictionary *d = NULL;
    char crf[16];
    if (s->crf_exact > 0)
        snprintf(crf, sizeof(crf), "%.1f", s->crf_exact);
    else
        snprintf(crf, sizeof(crf), "%d", s->crf);
    av_dict_set(&d, "preset", s->preset ? s->preset : "veryfast", 0);
    av_dict_set(&d, "profile", "high", 0);
    if (s->pass)
        av_dict_set(&d, "stats", s->stats, 0);
    else
        av_dict_set(&d, "crf", crf, 0);
    av_dict_set(&d, "forced-idr", "1", 0);
    av_dict_set(&d, "x264-params", enc_x264_params(s->scenecut, s->pass, s->stitchable), 0);
    if (enc_open(c, codec, &d, s, "libx264", err))
        return -1;
    if (plan_avc_codec_string(c->extradata, (size_t)c->extradata_size, codecs, codecs_len))
        return ss_fail(err, SS_EINTERNAL, "libx264 for %s gave no SPS", s->name);
    return 0;
}

const encoder enc_x264 = { "h264", "libx264", x264_open, 0 };
