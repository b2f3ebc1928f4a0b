/* av1.c — the AV1 encoder of encoder.h: SVT-AV1 (libsvtav1 through
 * libavcodec), 8-bit 4:2:0, CRF capped by the rung's maxrate (SVT-AV1's
 * `mbr`), preset AV1_PRESET (docs/BENCHMARKS.md has the preset/speed
 * table it was chosen from).
 *
 * Keyframes: FFmpeg 5.1's libsvtav1 wrapper ignores a frame's
 * AV_PICTURE_TYPE_I (checked: -force_key_frames gave one keyframe in 10 s),
 * and a fixed keyframe interval cannot follow a grid whose segments differ
 * by a frame (29.97 fps x 4 s: 120, 120, 119, ... frames). So the encoder
 * is restarted at every segment boundary (`restart` in encoder.h): each
 * segment is its own closed sequence, starting with a keyframe on the same
 * frame as every H.264 rung's IDR, and the settings (so the sequence
 * header, av1C) are the same for every session — rung.c checks that. */
#include "encoder.h"
#include "mediai.h"
#include "plan.h"

#include <stdio.h>

#include <libavutil/opt.h>

/* Measured (tests/bench/bench_av1_presets.sh, 360p, CRF 35, 2 cores):
 * preset 8 costs about 4x libx264 veryfast's CPU and compresses about 12 %
 * better than preset 10 on noisy content; preset 6 costs 2x preset 8 for
 * under 10 % more. */
#define AV1_PRESET 8

/* SVT-AV1's CRF (0..63): per-title's from the AV1 probes, else 1.5x the
 * ladder's x264 CRF (23 -> 35). */
static int av1_crf(const enc_settings *s)
{
    double c = s->codec_crf > 0 ? s->codec_crf : (s->crf_exact > 0 ? s->crf_exact : s->crf) * 1.5;
    int q = (int)(c + 0.5);
    return q < 1 ? 1 : q > 63 ? 63 : q;
}

static int svtav1_open(const enc_settings *s, AVCodecContext **out, char *codecs,
                       size_t codecs_len, ss_err *err)
{
    const AVCodec *codec;
    if (enc_alloc(s, "libsvtav1", &codec, out, err))
        return -1;
    AVCodecContext *c = *out;
    c->gop_size = s->keyint + 1;     /* no keyframe of its own within a segment */
    char params[128];
    snprintf(params, sizeof(params), "mbr=%d:lp=%d", s->maxrate_kbps, s->threads > 0 ? s->threads : 1);
    AVDictionary *d = NULL;
    av_dict_set_int(&d, "preset", AV1_PRESET, 0);
    av_dict_set_int(&d, "crf", av1_crf(s), 0);
    av_dict_set(&d, "svtav1-params", params, 0);
    if (enc_open(c, codec, &d, s, "libsvtav1", err))
        return -1;
    if (plan_av1_codec_string(c->extradata, (size_t)c->extradata_size, codecs, codecs_len))
        return ss_fail(err, SS_EINTERNAL, "libsvtav1 for %s gave no sequence header", s->name);
    return 0;
}

const encoder enc_svtav1 = { "av1", "libsvtav1", svtav1_open, 1 };
