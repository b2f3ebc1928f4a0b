/* plan.h — the pure planning functions of the media pipeline: the ladder
 * (rung sizes from the display aspect ratio, never upscaled), the bitrate
 * caps, the output frame rate (CFR rule), the segment/keyframe grid, the
 * H.264 level, and the RFC 6381 codec string from SPS bytes.
 *
 * Nothing here touches libav* state or files, so every rule is unit tested
 * (tests/unit/test_media_plan.c). docs/MEDIA.md states the rules in words.
 */
#ifndef SS_MEDIA_PLAN_H
#define SS_MEDIA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "media.h"

/* What the planner needs to know about the source's picture. */
typedef struct plan_src {
    int width, height;        /* coded picture size (storage pixels) */
    int sar_num, sar_den;     /* sample aspect ratio; 0/0 or 0/1 = square */
    int rotation;             /* clockwise degrees to turn for display: 0/90/180/270 */
    double fps;               /* output frame rate (after plan_fps) */
} plan_src;

typedef struct plan_rung {
    char name[16];            /* "720p" */
    int width, height;        /* even, output SAR 1:1 */
    int maxrate_kbps;         /* VBV cap (capped CRF and two-pass) */
    int target_kbps;          /* two-pass average: bitrate_kbps if given, else 0.7 x cap */
    int bufsize_kbits;        /* VBV buffer */
    int crf;
    int level;                /* H.264 level_idc, e.g. 31 */
    double crf_exact;         /* per-title: the CRF to 0.1 (0: crf) */
    /* per-title with codecs av1: the AV1 rung's own rate from the AV1
     * probes (av1_crf 0: none, the AV1 rung maps the H.264 CRF) */
    double av1_crf;           /* SVT-AV1's CRF (0..63) */
    int av1_target_kbps, av1_maxrate_kbps;
} plan_rung;

typedef struct plan_ladder {
    plan_rung rungs[MEDIA_MAX_RUNGS];
    int n;                    /* ordered from the smallest to the largest */
    char notes[512];          /* what was dropped or clamped, for a warning */
} plan_ladder;

/* Display size of the source: SAR applied to the width, then turned by the
 * rotation (90/270 swap width and height). */
void plan_display_size(const plan_src *s, int *dw, int *dh);

/* The auto ladder's top rung size: the display height rounded down to
 * even, the width from the display aspect ratio. Quality is measured at
 * this size in every ladder mode (the "display size"). */
void plan_top_size(const plan_src *s, int *w, int *h);

/* The largest picture side libx264 encodes (it refuses a larger width or
 * height when the encoder opens). */
#define PLAN_MAX_SIDE 16384

/* Nearest even integer to x (at least 2). */
int plan_even(double x);

/* The ladder for opts (auto, or explicit rungs; per-title is planned as
 * auto here, and pertitle.c replaces it). Returns the number of rungs (>= 1), or -1 when the source
 * size is unusable (0 or negative). */
int plan_ladder_make(const plan_src *s, const media_opts *o, plan_ladder *out);

/* A rung with the given size, rates and CRF (per-title): bufsize 2 x
 * maxrate, the level from plan_h264_level, crf = crf_exact rounded. */
void plan_rung_make(plan_rung *r, const char *name, int w, int h, double fps, int maxrate_kbps,
                    int target_kbps, double crf_exact);

/* Cap for a rung of w x h at fps (kbps), from the documented table. */
int plan_maxrate_kbps(int w, int h, double fps);
/* The AV1 ladder's rung for H.264 rung h (spec codecs): the same size,
 * named "av1-<name>"; with per-title's AV1 values (av1_crf > 0) their rate
 * and cap (bufsize 2x). */
void plan_av1_rung(const plan_rung *h, plan_rung *out);

/* Smallest H.264 level (level_idc: 30 = 3.0, 31 = 3.1, ...; at least 30)
 * whose frame size, macroblock rate and (High profile) bitrate limits hold
 * w x h at fps with maxrate_kbps. */
int plan_h264_level(int w, int h, double fps, int maxrate_kbps);

/* CFR rule: the output rate for a stream whose average rate is avg (its
 * r_frame_rate r is the fallback when avg is unknown). The result is a
 * common rate within 2 % of avg (23.976, 24, 25, 29.97, 30, 50, 59.94, 60,
 * ...), else avg rounded to an integer; never above 60 (higher rates are
 * halved until they fit). Written as a fraction num/den. */
void plan_fps(double avg, double r, int *num, int *den);

/* Keyframe grid. The frame index (at fps_num/fps_den) of the first frame
 * whose time is >= k * segment seconds (seg_num/seg_den): every rung forces
 * an IDR there, so segments line up across rungs. */
int64_t plan_boundary_frame(int64_t k, int fps_num, int fps_den, int seg_num, int seg_den);

/* x264 keyint: ceil(fps * segment seconds). */
int plan_keyint(int fps_num, int fps_den, int seg_num, int seg_den);

/* Segment length as a fraction (milliseconds precision). */
void plan_segment_q(double seconds, int *num, int *den);

/* Orientation from a display matrix (the 3x3 of ISO/IEC 14496-12 tkhd,
 * 16.16 fixed point, as libavformat gives it in AV_PKT_DATA_DISPLAYMATRIX):
 * *rotation gets the clockwise turn for display (0/90/180/270, the nearest
 * right angle) and *mirror 1 when the picture is then flipped left to right
 * (a negative determinant: a selfie camera's hflip, a vflip = 180 + mirror,
 * a transpose = 90 + mirror). NULL matrix: 0, 0. */
void plan_orientation(const int32_t *matrix, int *rotation, int *mirror);

/* High dynamic range transfer of a source, from its color_trc (the
 * AVColorTransferCharacteristic value: 16 SMPTE ST 2084, 18 ARIB STD-B67). */
typedef enum plan_hdr { PLAN_HDR_NONE = 0, PLAN_HDR_PQ, PLAN_HDR_HLG } plan_hdr;
plan_hdr plan_hdr_of(int color_trc);
/* "pq", "hlg" or NULL */
const char *plan_hdr_name(plan_hdr h);

/* The video pre-filter every rung shares, in one place: deinterlace, CFR,
 * tone-map HDR to SDR BT.709, turn upright (rotation then mirror), 8-bit
 * 4:2:0. */
typedef struct plan_pre {
    int deinterlace;          /* bwdif on interlaced frames */
    int fps_num, fps_den;     /* output rate (0: as it comes, no fps filter) */
    double start;             /* the fps filter's start_time (seconds) */
    plan_hdr hdr;             /* tone-map from this transfer */
    int primaries;            /* the source's AVColorPrimaries (1 BT.709, 9 BT.2020; else BT.2020) */
    int matrix;               /* its AVColorSpace (1 BT.709, 9 BT.2020 NCL, 10 CL; else NCL) */
    int rotation, mirror;     /* plan_orientation's */
} plan_pre;

/* libavfilter graph text for p into out. Returns 0, or -1 when out is too
 * small. */
int plan_prefilter(const plan_pre *p, char *out, size_t outlen);

/* One title across workers: chunks on the segment grid. */
#define PLAN_MAX_CHUNKS 256

typedef struct plan_chunk {
    int64_t seg0;             /* its first segment */
    int64_t f0, f1;           /* output frames [f0, f1); f1 = -1: to the end of the source */
} plan_chunk;

/* Segments per chunk for chunk_seconds: rounded to whole segments, at
 * least one. */
int plan_chunk_segments(double chunk_seconds, int seg_num, int seg_den);

/* The start of a title is ready first (playable while encoding,
 * docs/SPLIT.md "Chunk schedule"): chunk 0 is PLAN_FIRST_CHUNK_SEGMENTS
 * segments, each next one twice the one before, up to per_chunk (chunks of
 * at most PLAN_FIRST_CHUNK_SEGMENTS are all per_chunk). Segments of chunk
 * k. */
#define PLAN_FIRST_CHUNK_SEGMENTS 2
int plan_chunk_len(int k, int per_chunk);

/* The chunks of a title of duration seconds (the announced length; the
 * last chunk runs to the real end) at fps_num/fps_den with segments of
 * seg_num/seg_den: per_chunk segments each (made larger when there would
 * be more than PLAN_MAX_CHUNKS), after the short first chunks of
 * plan_chunk_len when ramp is set. min_chunks: fewer regular chunks than
 * this means no split (0 chunks returned). Returns the count written to
 * out. */
int plan_chunks(double duration, int fps_num, int fps_den, int seg_num, int seg_den, int per_chunk,
                int min_chunks, int ramp, plan_chunk *out);

/* RFC 6381 "avc1.PPCCLL" from H.264 extradata, which may be an avcC box
 * body (first byte 1) or Annex B (start codes; the SPS NAL is found).
 * Returns 0, or -1 when no SPS is there. out needs 16 bytes. */
int plan_avc_codec_string(const uint8_t *extradata, size_t len, char *out, size_t outlen);

/* RFC 6381 "av01.P.LLT.DD" (profile, seq_level_idx of operating point 0,
 * tier M/H, bit depth) from the AV1 sequence header OBU in extradata,
 * which may be an av1C box body (first byte 0x81, OBUs after 4 bytes) or
 * bare OBUs (what libsvtav1 gives). Returns 0, or -1 when no complete
 * sequence header is there. out needs 16 bytes. */
int plan_av1_codec_string(const uint8_t *extradata, size_t len, char *out, size_t outlen);

/* How a job spends its thread budget (`threads`: about that many cores in
 * all, docs/OPERATIONS.md). Every rung runs on its own thread, so a ladder
 * of 3 rungs with one libx264 thread each keeps 3 threads busy besides the
 * decoding one: with a budget, the job gets that many CPU tokens, and the
 * decoding thread (1 token) and each rung (weight[i] tokens, for each frame
 * it scales and encodes) work only while they hold theirs. Without one
 * (threads 0: the whole machine) nothing is gated, as a single worker that
 * owns the machine keeps every core busy best with every thread running. */
typedef struct plan_threads {
    int x264[MEDIA_MAX_RUNGS];    /* libx264 threads of rung i */
    int weight[MEDIA_MAX_RUNGS];  /* tokens rung i holds while it encodes: half its
                                     libx264 threads, rounded up (plan.c) */
    int tokens;                   /* the job's CPU tokens; 0: not gated */
    int decoder;                  /* video decoder and pre-filter threads; 0: libav*'s choice */
} plan_threads;

/* The CPU tokens of a job with `threads` on a worker that may run on ncpus
 * CPUs (ss_ncpus: its affinity mask): threads when 0 < threads < ncpus; 0
 * (no budget, as threads 0) otherwise, since a budget of every CPU the
 * worker may use only throttles it. */
int plan_budget_tokens(int threads, int ncpus);

/* total: the job's threads (> 0: a budget of about that many cores, when
 * plan_budget_tokens keeps one; else every core, not gated); ncpus: the
 * CPUs the worker may run on. libx264 threads per
 * rung are the budget (or the cores) split by pixel share, rounded up (the
 * top rung gets frame threads, see stage.c), at most the budget. */
void plan_thread_budget(const plan_ladder *l, int total, int ncpus, plan_threads *out);

#endif
