/* mediai.h — internal interfaces between the media pipeline's files (not
 * for use outside worker/media/):
 *
 *   probe.c    open the source, pick its streams, collect facts, limits
 *   cmaf.c     one CMAF track: mp4 muxer on an in-memory AVIOContext, cut
 *              into init.mp4 + seg_NNNNN.m4s, measured per segment
 *   thumbs.c   poster, sprite and storyboard from the decoded frames
 *   subs.c     text subtitle streams to WebVTT
 *   frameq.c   the bounded frame queue between the decoding thread and the
 *              encoder threads
 *   pertitle.c the per-title pass: sampled windows analysed (SI/TI, scene
 *              cuts) and probe-encoded, the ladder chosen (ptplan.c)
 *   stage.h    the stages of media_encode() and the files that hold them:
 *              stage.c, decode.c, video.c, audio.c, rung.c (+ encoder.h,
 *              x264.c), package.c (uses all of these)
 */
#ifndef SS_MEDIA_MEDIAI_H
#define SS_MEDIA_MEDIAI_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "manifest.h"
#include "media.h"
#include "plan.h"
#include "ss_err.h"

#define PROBE_MAX_SUBS 16
#define PROBE_MAX_AUDIO 16

/* One decodable audio stream of the source. */
typedef struct probe_audio {
    int idx;                  /* stream index */
    char codec[32];
    int channels, sample_rate;
    char lang[16];            /* BCP 47 ("en", "pt-BR" stays), "" unknown or "und" */
    char title[64];           /* the title tag, "" none */
    int is_default;           /* default disposition */
    const char *role;         /* "main", "commentary", "description", "dub" (static) */
} probe_audio;

/* ---- probe.c ---- */
typedef struct probe_info {
    char container[64];
    int64_t file_size;
    double duration;          /* seconds; <= 0 unknown */
    double vduration;         /* the video stream's own, <= 0 unknown */
    int vidx, aidx;           /* chosen streams; aidx -1: no audio */
    int naudio;               /* audio streams in the file */
    int sub_idx[PROBE_MAX_SUBS], nsubs;   /* text subtitle streams */
    int nbitmap_subs;         /* bitmap subtitle streams (skipped) */
    int width, height;        /* coded picture size */
    int sar_num, sar_den;
    int rotation;             /* clockwise degrees for display: 0/90/180/270 */
    int dw, dh;               /* display size */
    double fps_avg, fps_r;
    char pix_fmt[32];
    int bit_depth;
    int interlaced;
    char field_order[16];     /* "progressive", "tt", "bb", "tb", "bt", "unknown" */
    char vcodec[32];
    char acodec[32];
    int channels, sample_rate;
    char alang[16];
    probe_audio audio[PROBE_MAX_AUDIO];   /* every decodable audio stream, in file order */
    int nau;
    int mirror;               /* flipped left to right after the rotation */
    int color_trc, color_primaries, colorspace;   /* AVColor* values of the video stream */
    plan_hdr hdr;             /* PQ or HLG: tone-mapped to SDR BT.709 */
    int cover_idx;            /* an attached picture (cover art) stream, -1 none */
    int audio_only;           /* no video stream but audio: an audio-only package */
} probe_info;

/* avformat_close_input, and the AVIOContext of a source read through
 * media_opts.io (probe_open made it) */
void media_close_input(AVFormatContext **ic);
/* Open src (or o->io, src then only names it), find its stream info and
 * check the limits of o. On success *ic is an open input the caller closes
 * with media_close_input(). */
int probe_open(const char *src, const media_opts *o, AVFormatContext **ic, probe_info *pi,
               ss_err *err);
/* The audio tracks o->audio_mode asks for: positions in pi->audio (file
 * order) into sel (up to max); returns how many. A list that matches no
 * stream, and "default", give the default track (pi->aidx); no audio: 0.
 * A language matches after normalising both to BCP 47 ("fre" = "fr"), and
 * a bare language also matches its regional forms ("pt" takes "pt-BR"). */
int probe_pick_audio(const probe_info *pi, const media_opts *o, int *sel, int max);
/* result["source"] */
json_t *probe_json(const probe_info *pi);
/* "Invalid data found ..." -> "invalid data found ..." */
void media_averr(int averr, char *buf, size_t n);

/* ---- cmaf.c ---- */
typedef struct cmaf_out cmaf_out;

/* A CMAF track for the stream that enc encodes, written into dir (created),
 * announced as rel/<file> through ev->file_ready. enc must be open (its
 * extradata is the sample description). Caller frees with cmaf_free(). */
cmaf_out *cmaf_open(const char *dir, const char *rel, const AVCodecContext *enc,
                    const media_events *ev, ss_err *err);
/* This track is a chunk of a title: its first segment is number seg_base
 * and starts at start (enc's time base). Timestamps stay the title's; the
 * muxer sees them from the chunk's start (so every chunk's init segment is
 * the same) and each fragment's sequence number and decode time (tfdt) are
 * moved on to continue the chunks before. Call before the first write. */
void cmaf_set_base(cmaf_out *c, int seg_base, int64_t start);
/* init.mp4 is written to dir (so its CRC can be taken) but not announced
 * through ev->file_ready, so it is not stored: a split job's chunks all
 * make the same init segment and only the plan's `init_chunk` stores it
 * (docs/SPLIT.md). Call before the first write. */
void cmaf_keep_init(cmaf_out *c);
/* Mux one packet (timestamps in enc's time base). cut: the packet starts a
 * new segment (it must be a keyframe); the segment before it is written. */
int cmaf_write(cmaf_out *c, AVPacket *pkt, int cut, ss_err *err);
/* Write the last segment. end: the presentation end of the track in enc's
 * time base (AV_NOPTS_VALUE: from the last packet's pts + duration). */
int cmaf_finish(cmaf_out *c, int64_t end, ss_err *err);
/* Measured track (segments owned by c; valid until cmaf_free). */
void cmaf_track(const cmaf_out *c, pkg_track *t);
int64_t cmaf_bytes(const cmaf_out *c);
int64_t cmaf_packets(const cmaf_out *c);
void cmaf_free(cmaf_out **c);

/* Split a fragment's bytes: the offset of the end of its first sample,
 * from the moof/trun (default-base-is-moof). -1 when not found. */
int64_t cmaf_first_sample_end(const uint8_t *p, size_t n);

/* ---- thumbs.c ---- */
typedef struct thumbs thumbs;

/* dw x dh: display size (frames fed are yuv420p at their own size and SAR,
 * already turned upright); duration: expected length (<= 0 unknown). */
thumbs *thumbs_new(int dw, int dh, double duration, double interval);
/* Look at a decoded frame at time t seconds (cheap for most frames). */
int thumbs_feed(thumbs *th, const AVFrame *f, double t, ss_err *err);
/* Write thumbs/poster.jpg, sprite.jpg, storyboard.vtt; *info gets the
 * result["thumbnails"] object. */
int thumbs_finish(thumbs *th, const char *outdir, const media_events *ev, json_t **info,
                  ss_err *err);
void thumbs_free(thumbs **th);

/* ---- subs.c ---- */
typedef struct subs subs;

/* Decoders for the text subtitle streams of pi; t0: the video start in
 * seconds (cue times are made relative to it). warn(ud, msg) receives
 * warnings (bitmap subtitles skipped, undecodable packets). */
subs *subs_new(AVFormatContext *ic, const probe_info *pi, double t0,
               void (*warn)(void *ud, const char *msg), void *ud);
/* Feed a packet of any stream (others are ignored). */
void subs_feed(subs *s, const AVPacket *pkt);
/* Write subtitles/<name>.vtt for each track with cues before end (the
 * video's length, seconds; cues are cut there); fills texts (up to max) and
 * returns how many, appends the result["subtitles"] entries. */
int subs_finish(subs *s, const char *outdir, const media_events *ev, pkg_text *texts, int max,
                json_t *arr, double end, ss_err *err);
void subs_free(subs **s);

/* ---- frameq.c ---- */
#define FRAMEQ_CAP 8

/* Bounded queue of refcounted frames, one producer and one consumer. */
typedef struct frameq {
    AVFrame *f[FRAMEQ_CAP];
    int head, n, eof;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} frameq;

void frameq_init(frameq *q);
/* Frees the frames still queued. */
void frameq_destroy(frameq *q);
/* Queue f (taking ownership; NULL marks the end), waiting while the queue
 * is full. stop(ud) is polled at least every 50 ms; when it returns
 * non-zero the call gives up: -1, f freed. */
int frameq_put(frameq *q, AVFrame *f, int (*stop)(void *), void *ud);
/* 1: *f is the next frame (the caller owns it); 0: end; -1: stop(ud). */
int frameq_get(frameq *q, AVFrame **f, int (*stop)(void *), void *ud);
/* Whether frameq_put would queue at once (room) and frameq_get would
 * return at once (a frame or the end); exact for the one producer and the
 * one consumer respectively, whom the other side can only help. */
int frameq_room(frameq *q);
int frameq_ready(frameq *q);

/* ---- pertitle.c ---- */
typedef struct pt_ctx pt_ctx;

typedef struct pt_setup {
    int top_w, top_h;          /* display size: the top candidate and the quality reference */
    int fps_num, fps_den;      /* output frame rate */
    int keyint;                /* frames per segment of the real encode */
    int cap_kbps;              /* the top rung's VBV cap (the table's, at the display size) */
    int tokens;                /* CPU tokens (plan_budget_tokens) the caller's feeding
                                  thread, which holds one, and the probes share: a probe
                                  holds one while it has frames queued; 0: not gated */
    void (*tok_take)(void *ud, int n);   /* with tokens: take and give them back */
    void (*tok_give)(void *ud, int n);
    void *tok_ud;
    const char *preset;        /* libx264 preset */
    char x264_params[64];      /* as the real encode's */
    int av1;                   /* codecs has av1: probe SVT-AV1 too (top size) */
} pt_setup;

/* The sampled windows for a title of duration seconds (<= 0: unknown) at
 * fps: start times (seconds from the video start) into starts (max
 * entries) and the frames of each window into *frames; returns the count. */
int pt_windows(double duration, double fps, double *starts, int max, int *frames);
/* Start the probe threads for nwin windows of win_frames frames. Free with
 * pt_free(). */
pt_ctx *pt_new(const pt_setup *s, int nwin, int win_frames, const atomic_int *cancel, ss_err *err);
/* The next frame fed starts a window at source time t (seconds). */
int pt_window(pt_ctx *pt, double t, ss_err *err);
/* A pre-filtered frame of the current window (referenced, not kept). */
int pt_feed(pt_ctx *pt, const AVFrame *f, ss_err *err);
/* Finish the probes, choose the ladder into *lad, *report: the
 * "per_title" object of job.json (caller owns it). */
int pt_finish(pt_ctx *pt, plan_ladder *lad, json_t **report, ss_err *err);
void pt_free(pt_ctx **pt);

/* Write data to dir/name, then announce rel/name. */
int media_write_file(const char *dir, const char *rel, const char *name, const void *data,
                     size_t len, const media_events *ev, ss_err *err);

#endif
