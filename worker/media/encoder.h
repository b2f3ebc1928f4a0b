/* encoder.h — the video encoder interface of the media pipeline (internal to
 * worker/media/). A rung (rung.c) asks an encoder for an open
 * AVCodecContext with the ladder's settings and the codec string of what it
 * will write; libx264 implements it today (x264.c). Another codec (SVT-AV1,
 * NVENC) is one more `encoder` value: the rungs, the CMAF tracks and the
 * packaging do not change.
 *
 * Every encoder must honour the segment grid: no keyframes of its own that
 * break the alignment of the rungs (scene-cut keyframes only as the
 * settings allow), an IDR on every frame the rung marks AV_PICTURE_TYPE_I,
 * closed GOPs, global headers (extradata) that describe every chunk of a
 * title identically when `stitchable` is set. */
#ifndef SS_MEDIA_ENCODER_H
#define SS_MEDIA_ENCODER_H

#include <libavcodec/avcodec.h>
#include <stddef.h>

#include "ss_err.h"

typedef struct enc_settings {
    const char *name;          /* rung name, for messages ("720p") */
    int width, height;
    int fps_num, fps_den;
    int keyint;                /* frames per segment */
    int maxrate_kbps, bufsize_kbits;
    int target_kbps;           /* two-pass average */
    int crf;                   /* single pass: CRF (crf_exact > 0 wins) */
    double crf_exact;
    double codec_crf;          /* > 0: the codec's own CRF (per-title AV1), wins over crf */
    int level;                 /* codec level (H.264 level_idc) */
    int pass;                  /* 0 single pass, 1 or 2: two-pass */
    const char *stats;         /* two-pass statistics file */
    const char *preset;        /* encoder speed preset */
    int scenecut;              /* extra I-frames at scene cuts (per-title) */
    int stitchable;            /* headers independent of the content (chunks of one title) */
    int threads;
    const AVCodecContext *color_from;   /* colour description to copy (may be NULL) */
    int bt709;                 /* the pre-filter tone-mapped HDR: tag BT.709 instead */
} enc_settings;

typedef struct encoder {
    const char *id;            /* "h264" */
    const char *lib;           /* the library, for messages: "libx264" */
    /* Open an encoder for s into *out (the caller frees it with
     * avcodec_free_context, also after a failure); codecs receives the
     * RFC 6381 codec string. */
    int (*open)(const enc_settings *s, AVCodecContext **out, char *codecs, size_t codecs_len,
                ss_err *err);
    /* The encoder cannot be made to key a given frame: the rung drains
     * and reopens it at every segment boundary instead (the same
     * settings, so the same stream headers). */
    int restart;
} encoder;

/* For implementations: a context of the libavcodec encoder lib (by name)
 * with what every rung shares — size, 8-bit 4:2:0, frame rate and time
 * base, SAR 1:1, global headers, limited range and the colour description
 * (BT.709 when tone-mapped, else the source's). *out is set also on
 * failure (the caller frees it). */
int enc_alloc(const enc_settings *s, const char *lib, const AVCodec **codec, AVCodecContext **out,
              ss_err *err);
/* avcodec_open2 with d (freed), a failure named "<lib> for <rung>: ...". */
int enc_open(AVCodecContext *c, const AVCodec *codec, AVDictionary **d, const enc_settings *s,
             const char *lib, ss_err *err);

/* Free an encoder context. An SVT-AV1 context is opened (enc_open) and
 * freed under one process-wide lock: libsvtav1 sets up and tears down
 * process-wide state without a lock of its own, and chunk threads open
 * and close AV1 encoders at every segment boundary at the same time. */
void enc_free(AVCodecContext **c);
/* avcodec_open2, under that lock for SVT-AV1 (enc_open and the per-title
 * probes use it). */
int enc_avopen(AVCodecContext *c, const AVCodec *codec, AVDictionary **d);

/* The libx264 encoder. */
extern const encoder enc_x264;
/* The SVT-AV1 encoder (av1.c). */
extern const encoder enc_svtav1;

/* libx264's options beyond the preset for these settings (also what the
 * per-title probes use). */
const char *enc_x264_params(int scenecut, int pass, int stitchable);

#endif
