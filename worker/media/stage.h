/* stage.h — the stages of the media pipeline and what passes between them
 * (internal to worker/media/):
 *
 *   plan      probe the source, choose the frame rate, the segment grid and
 *             the ladder (per-title: decode.c's windows), the quality sample
 *             (stage.c)
 *   encode    decode (decode.c), the video timeline and pre-filter
 *             (video.c), every rung's scale + encoder + CMAF track on its
 *             own thread (rung.c, encoder.h)
 *   audio     resample, AAC, its CMAF track (audio.c)
 *   package   measured segments -> playlists, MPD and the job.json
 *             "output" object (package.c)
 *
 * One `job` holds the state of one media_encode() call; every stage
 * works on it. Threads: the caller's thread runs decode, video, audio,
 * thumbnails and subtitles; each rung runs on its own thread, fed through
 * a bounded frame queue (frameq.c). The first error of any thread is kept
 * in job.err (job_fail) and raises job.abort; teardown is one path
 * (job_release), also after a failure half way. */
#ifndef SS_MEDIA_STAGE_H
#define SS_MEDIA_STAGE_H

#include "encoder.h"
#include "mediai.h"
#include "plan.h"
#include "quality.h"

#include <libavfilter/avfilter.h>
#include <libswscale/swscale.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct job job;

/* A frame's timestamp that moves more than this (seconds) away from the
 * one expected after the frame before it is damaged, or a discontinuity:
 * in formats that have those (MPEG-TS, PS, FLV: the demuxer's
 * AVFMT_TS_DISCONT) always, elsewhere when it also lies past the
 * announced end (the video stream's duration, else the container's).
 * Left alone, the fps filter would fill the jump with copies of the last
 * picture: one flipped PTS byte in a 3 s MPEG-TS clip asked for a day of
 * video. The same bound applies to a frame's duration (it ends the last
 * frame's picture): a longer one must end by the announced end (a still
 * picture over a podcast's audio lasts as long as it says). */
#define TS_JUMP_SECONDS 10.0

#define Q_SEGMENTS 6   /* measured segments at most (quality_sampling) */

/* Audio renditions at most: every chosen source track, and a 5.1 one of
 * each multichannel track when asked (spec audio.surround). */
#define MEDIA_MAX_AUDIO 16

/* One audio rendition: a source audio stream decoded, resampled to 48 kHz
 * (stereo, or 5.1), AAC, its CMAF track in <name>/. */
typedef struct atrack {
    int src;                /* position in probe_info.audio */
    int channels;           /* 2 or 6 */
    char name[32];          /* folder and representation id: "audio", "audio_1", "audio_51" */
    AVCodecContext *dec, *enc;
    AVFilterGraph *ag;
    AVFilterContext *asrc, *asink;
    cmaf_out *cm;
    int64_t apts_next;      /* guess for audio frames without a timestamp */
    int64_t ats_shift;      /* added to audio timestamps after a discontinuity */
    int64_t ats_fixed;      /* audio frames re-timed or dropped (damaged timestamps) */
    int apts_any;           /* an audio frame has been timed */
    int64_t asamples;       /* samples given to the AAC encoder */
    int64_t akcut;
    AVPacket **hold;        /* AAC packets waiting for the video to pass them */
    int nhold, holdsz;
} atrack;

typedef struct rung {
    job *j;
    plan_rung p;
    frameq q;
    pthread_t th;
    int started;
    const encoder *codec; /* the encoder that implements this rung */
    enc_settings es;      /* what it was opened with (a restart reopens it so) */
    char stats[4200];     /* x264 two-pass statistics file */
    AVCodecContext *enc;
    struct SwsContext *sws;
    int in_w, in_h;
    cmaf_out *cm;
    int64_t frames;       /* frames encoded */
    int64_t kforce;       /* next boundary index to force */
    int64_t kcut;         /* next boundary index to cut at */
    int64_t last_pts;
    char codecs[40];
    double cpu;           /* CPU seconds of this rung's thread (scale + x264 + mux) */
    qmeter *qm;           /* PSNR/SSIM of the real output (NULL: not measured) */
    int64_t es_bytes;     /* encoded video bytes (elementary stream, no CMAF boxes) */
    /* a chunk run that goes on into the next chunk (chain.c): the chunk its packets are
     * in, its totals when the chunk before it ended (the record of a chunk is the
     * difference), and the record of the chunk it ended last (snap_chunk; -1: none),
     * which the decoding thread takes over */
    int chunk;
    int64_t b_segs, b_es, b_bytes;
    int b_nq;
    json_t *snap;
    atomic_int snap_chunk;
} rung;

struct job {
    const media_opts *o;
    const media_events *ev;
    const atomic_int *cancel;
    atomic_int abort;
    pthread_mutex_t mu;   /* err, warnings */
    ss_err err;
    json_t *warnings;
    char outdir[4096];
    char log_job[80];     /* the caller's job id, for lines from our threads */

    AVFormatContext *ic;
    probe_info pi;
    AVCodecContext *vdec;
    AVFilterGraph *vg;
    AVFilterContext *vsrc, *vsink;
    int vg_w, vg_h, vg_fmt;
    struct SwsContext *fix;   /* mid-stream size/format changes -> first geometry */
    atrack au[MEDIA_MAX_AUDIO];   /* audio renditions (audio.c) */
    int nau;
    int fps_num, fps_den, seg_num, seg_den;
    plan_ladder lad;
    rung rungs[2 * MEDIA_MAX_RUNGS];   /* the ladder's H.264 rungs, then its AV1 ones */
    int nr;                 /* rungs in use */
    thumbs *th;
    subs *sb;

    int64_t t0;             /* video start, video stream time base */
    double t0s;
    int64_t next_vpts;      /* guess for frames without a timestamp */
    int64_t vts_shift;      /* added to video timestamps after a discontinuity */
    int64_t ts_fixed;       /* video timestamps re-timed (damaged or discontinuous) */
    int64_t first_out;      /* pts of the first pre-filtered frame */
    int64_t vframes;        /* frames out of the pre-filter */
    int64_t dec_errors;
    double last_progress;
    int pass;               /* 0: single pass; 1, 2: two-pass rate control */
    pt_ctx *pt;             /* the per-title pass, while it runs */
    json_t *pt_report;      /* its result["per_title"] */
    double t_analysis;      /* its wall time */
    double fps_start;       /* the fps filter's grid start, seconds from the video start */
    int64_t win_start_ts;   /* per-title window: its first source pts (from t0) */
    int win_left;           /* ... and the frames it still wants */
    int win_pending;        /* its first frame has not come yet */
    int64_t pt_decoded;     /* frames decoded for the per-title windows */
    int pt_seeked;          /* a seek happened: check the next frame */
    int pt_reseek;          /* ... it was damaged: go back to the start */
    int pt_noseek;          /* decode on from now, no more seeks */
    int win_snap;           /* it starts at a source keyframe: at its first frame */
    int qref_w, qref_h;     /* quality is measured at this (display) size */
    int64_t q_segs[Q_SEGMENTS];  /* ... in these segments */
    int q_nsegs;            /* (0: quality is not measured) */
    int q_fstep;            /* ... on every q_fstep-th frame from q_fstep/2 */
    char stats_dir[4096];   /* x264 first-pass statistics */
    /* one title across workers (items.c) */
    int mode;               /* STAGE_WHOLE, STAGE_CHUNK or STAGE_AUDIO */
    int64_t range_f0, range_f1;   /* chunk: output frames [f0, f1); f1 < 0: to the end */
    int range_seg0;         /* chunk: its first segment */
    int range_init;         /* chunk: it stores every rung's init.mp4 (the plan's init_chunk;
                               the others only take its CRC) */
    int range_done;         /* chunk: every frame of the range is out */
    double partial_t;       /* audio item: when it last sent a progress record */
    int partial_segs;       /* ... with how many segments of its first rendition */
    /* the thread budget (plan_thread_budget): with thb.tokens, the decoding
     * thread and the rungs work only while they hold CPU tokens */
    plan_threads thb;
    pthread_mutex_t tok_mu;
    pthread_cond_t tok_cv;
    int tok_free;
    int dec_tok;            /* the decoding thread holds its token */
    int64_t pre_cut;        /* chunk: pre-roll frames before this pts (from t0) skip the filter */
    int64_t pre_from;       /* chunk started on a key frame at its range: frames before this pts
                             * (from t0) are dropped (decode.c chunk_seek_near) */
    AVFrame *pre_hold[2];   /* ... but the last two of them are kept for it */
    int64_t pre_decoded;    /* chunk: frames decoded before its range (its pre-roll) */
    int64_t pre_filtered;   /* ... and frames out of the pre-filter before its range */
    double pre_c0, pre_cpu; /* ... and the CPU seconds of its thread until the range */
    /* a chunk run that goes on into the next chunk (chain.c, media.h next_chunk): the
     * plan's chunks (chain_n 0: this run does not go on), the run's first chunk and the
     * one being decoded, the chunk decoded but whose record is not out yet (-1: none)
     * with its frames and CPU seconds (the run's threads', cpuacct.h, between the range
     * ends), marks at the last boundary */
    plan_chunk chain[PLAN_MAX_CHUNKS];
    int chain_n, chain_k0, chain_k, chain_pending;
    int64_t chain_vf, chain_pend_frames;
    double chain_cpu_mark, chain_pend_cpu, chain_t;
    size_t chain_warn;      /* warnings already in a record */
};

#define STAGE_WHOLE 0       /* the whole title in one process (media_encode) */
#define STAGE_CHUNK 1       /* a chunk's video, every rung (no audio, thumbnails, subtitles) */
#define STAGE_AUDIO 2       /* the audio, subtitles and thumbnails (key frames) of the title */
/* A chunk starts decoding at the source's last key frame before its first
 * frame (decode.c chunk_seek_near): on that frame (within STAGE_KEY_ON_GRID
 * of a frame), or at least STAGE_PREROLL_MIN (and 3 frames) before it, or
 * else the key frame at least STAGE_PREROLL before it. The filters look
 * one frame back at most (deinterlacing, the CFR filter), so they see the
 * frames around the cut as one process would. */
#define STAGE_PREROLL 1.0
#define STAGE_PREROLL_MIN 0.1
#define STAGE_KEY_ON_GRID 0.01
/* Of the pre-roll, only the frames from this long (seconds) before the
 * chunk's first frame pass the pre-filter (with the two frames before
 * them, for the deinterlacer's context and a frame that lasts into the
 * range), and the CFR grid starts at the first of them, not at the title's
 * start; before that, frames no other frame refers to are not decoded.
 * Every frame of the range comes out as in one process (the filters look
 * one frame back at most), for a fraction of the pre-roll's cost. */
#define STAGE_PREROLL_FILTER 0.5

/* ---- stage.c: the job's shared state ---- */
/* The job is aborting (an error, or the caller cancelled). */
int job_cancelled(job *j);
/* Keep the first error (thread-safe) and abort; returns -1. */
int job_fail(job *j, ss_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int job_fail_err(job *j, const ss_err *e);
/* Record a warning for job.json (ud: the job; thread-safe). */
void job_warn(void *ud, const char *msg);
/* Take n of the job's CPU tokens (waits; at most all of them) and give
 * them back; no-ops when the job is not gated (thb.tokens 0). A thread
 * never blocks on a frame queue while it holds tokens. */
void job_tokens_take(job *j, int n);
void job_tokens_give(job *j, int n);
void job_progress(job *j, const char *stage, double f);
/* frameq stop callback (ud: the job). */
int job_stop_cb(void *ud);
/* Is segment seg one whose quality is measured? */
int job_q_measured(const job *j, int64_t seg);

void stage_init(job *j, const media_opts *opts, const media_events *ev, const atomic_int *cancel,
                const char *outdir);
/* Probe src, plan the frame rate, grid, ladder and quality sampling;
 * res["source"] and the warnings. */
int stage_plan(job *j, const char *src, json_t *res, ss_err *e);
/* The encode passes (two with two-pass rate control). */
int stage_passes(job *j, const char *src, ss_err *e, double *cpu_main);
int stage_run_pass(job *j, ss_err *e, double *cpu_main);
/* The one teardown path: what a pass opened (final: and the job). */
void job_release(job *j, int final);
double stage_seconds_since(double t);
/* The end of a media_* call: e (its error) into err when ret failed
 * ("what" when e is empty), scratch removed, the job released. */
void stage_end(job *j, int ret, ss_err *e, ss_err *err, const char *what);

/* ---- rung.c ---- */
/* Open g's encoder (threads: its share), quality meter and CMAF track. */
int rung_open(job *j, rung *g, int threads, ss_err *err);
/* The rung's thread: frames from g->q until the end, then flush. */
void *rung_main(void *arg);
/* Free what the rung holds (safe on a zeroed or half-opened rung). */
void rung_release(rung *g);

/* ---- video.c ---- */
/* A filter graph from a source (args) through chain to a sink: one builder
 * for the video and the audio pre-filters. what names it in errors. */
int media_graph_build(AVFilterGraph **g, AVFilterContext **src, AVFilterContext **sink,
                      const char *src_filter, const char *sink_filter, const char *args,
                      const char *chain, int nb_threads, ss_code code, const char *what,
                      ss_err *err);
/* Open the video decoder and the timeline's origin (t0). */
int video_open(job *j, ss_err *err);
/* Every decoded frame available: timeline, pre-filter, out to the rungs
 * (or the per-title windows). */
int video_receive(job *j, AVFrame *f, ss_err *err);
/* Frames still in the pre-filter. */
int video_pull(job *j, ss_err *err);
/* A chunk's held pre-roll frames into the pre-filter (at the end of the
 * source, before its flush). */
int video_push_held(job *j, ss_err *err);
/* The announced end of the video (seconds from its start; 0: unknown). */
double video_announced_end(const job *j);

/* ---- items.c ---- */
/* A job split would cut into chunks but that one process encodes (an AV1
 * ladder, several audio tracks, 5.1, an MP4 download): say so in a
 * warning (media_encode, after stage_plan). */
void items_warn_unsplit(job *j);

/* ---- chain.c: a chunk run that goes on into the next chunk ---- */
/* Load the plan's chunks for a run of chunk k (items.c; only a single-pass
 * run with both events goes on). */
void chain_setup(job *j, const json_t *plan, int k, double t0, double c0);
/* The decoding thread, frame pts (output frames) reached the range's end:
 * 1 when the run goes on into the next chunk (the range moved on), 0 to end
 * it here. */
int chain_next(job *j, int64_t pts);
/* The decoding thread: hand the pending chunk's record to the caller when
 * every rung has ended it. 1: none pending (any more), 0: not yet. */
int chain_emit(job *j);
/* A rung's thread, at the first packet of the chunk after g->chunk (a cut
 * on the chunk's end): its record of g->chunk; es: its es_bytes before the
 * packet. */
int chain_rung_end(rung *g, int64_t es, ss_err *err);
/* A rung's part of a chunk record (name, codecs, frames, bytes, segments,
 * quality sums, init CRC) since its totals at the last boundary. */
json_t *chain_rung_json(job *j, rung *g, int64_t frames, int64_t es);
/* Segments as a record lists them: [[start, duration, bytes, iframe_end], ...]. */
json_t *chain_segs_json(const pkg_seg *s, int n);
/* The warnings since the last record (a new array). */
json_t *chain_warnings(job *j);

/* ---- audio.c ---- */
/* Open the renditions the spec asks for (probe_pick_audio; a 5.1 one
 * next to each multichannel track with audio.surround) into j->au. A
 * track whose decoder will not open is skipped with a warning unless it is
 * the only one. */
int audio_open(job *j, ss_err *err);
/* A demuxed packet of any stream: to the renditions of its stream. */
int audio_packet(job *j, const AVPacket *pkt, AVFrame *f, ss_err *err);
/* End of input: flush, pad with silence or cut to the video's length,
 * write the last segments. */
int audio_end(job *j, ss_err *err);
/* Free a rendition (safe on a zeroed or half-opened one). keep_hold:
 * keep the hold array's memory (between passes). */
void audio_release(atrack *a);

/* ---- decode.c ---- */
/* Demux and decode the whole source into the video and audio stages. */
int decode_all(job *j, ss_err *err);
/* The per-title pass: windows analysed and probe-encoded, the ladder in
 * j->lad, the report in j->pt_report. */
int decode_per_title(job *j, ss_err *e);

/* ---- download.c ---- */
/* OUT/download.mp4 (spec mp4): the chosen H.264 rung and the default
 * audio remuxed from their CMAF files, moov first; res["download"]. */
int download_mp4(job *j, json_t *res, ss_err *err);

/* ---- package.c ---- */
/* What packaging needs of a rung, measured: filled from the rung itself
 * (one process) or from the records of the chunks (finalize item). */
typedef struct rung_rec {
    plan_rung p;
    const char *codec_id;     /* "h264", "av1" (static; NULL: h264) */
    char codecs[40];
    pkg_track t;              /* segments (owned by the filler) */
    int64_t frames, es_bytes;
    int64_t bytes;            /* segments + init */
    int measured;             /* quality was measured: */
    double mse_sum, ssim_sum; /* ... sums over the nq sampled frames */
    int nq;
} rung_rec;

typedef struct pkg_records {
    rung_rec rungs[2 * MEDIA_MAX_RUNGS];
    int n;
    pkg_track audio[MEDIA_MAX_AUDIO];   /* segments owned by the filler; name, channels,
                                           lang, label, role, is_default set */
    int64_t audio_bytes[MEDIA_MAX_AUDIO];   /* segments + init */
    int audio_src[MEDIA_MAX_AUDIO];     /* the source stream of each */
    int naudio;
    pkg_text texts[PROBE_MAX_SUBS];
    int ntexts;
    json_t *subarr;           /* result["subtitles"] entries (borrowed; NULL: none) */
    int64_t frames;           /* the video's length in output frames */
} pkg_records;

/* Records of the rungs and audio of j after a whole encode (pointing into
 * j's tracks). */
void package_from_job(job *j, pkg_records *r);
/* Playlists and MPD from the records (j: the plan, options, output folder,
 * per-title report, quality sampling), the job.json "output" fields into
 * res. */
int package_write(job *j, pkg_records *r, json_t *res, ss_err *err);

/* Append the segments of an item's track record ({segs, timescale,
 * init_bytes}, items.c) to t (t->segs grows; the caller frees it). */
int track_from_json(const json_t *r, pkg_track *t, ss_err *e);
/* The audio item's progress (ev->partial) after a segment was written. */
void audio_item_progress(job *j);

#endif
