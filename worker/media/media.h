/* media.h — the worker's media pipeline, its whole public face.
 *
 * media_encode() takes a local source file and writes a complete CMAF ladder
 * into a local output folder (the layout of DESIGN.md §3):
 *
 *   OUT/master.m3u8, OUT/manifest.mpd,
 *   OUT/<rendition>/init.mp4, seg_00000.m4s..., playlist.m3u8, iframes.m3u8
 *   OUT/audio/init.mp4, seg_*.m4s, playlist.m3u8
 *   OUT/thumbs/poster.jpg, sprite.jpg, storyboard.vtt
 *   OUT/subtitles/<lang>.vtt
 *
 * Everything runs in-process on libav* and libx264: probe, plan the ladder,
 * decode once, one shared pre-filter, one scale + encoder thread per rung, AAC
 * once, fragments cut at the same instants in every rung, manifests written
 * from the measured segment sizes. It never runs a subprocess.
 *
 * Threads: media_encode blocks its caller (the worker runs it on a job thread)
 * and starts its own helper threads; the callbacks are called from those
 * threads and must be quick and thread-safe. It leaves libav's global log
 * settings alone: a daemon sets av_log_set_level()/av_log_set_callback()
 * once (the encode command sets AV_LOG_FATAL).
 *
 * Ownership: the caller owns opts, ev and out dir; *result is a new jansson
 * object the caller json_decref()s. On failure the output folder holds
 * partial files the caller removes; nothing in it should be published.
 */
#ifndef SS_MEDIA_H
#define SS_MEDIA_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ss_err.h"

#define MEDIA_MAX_RUNGS 8

typedef enum media_ladder_mode {
    MEDIA_LADDER_AUTO = 0,    /* fixed rule: 240p..source height (see plan) */
    MEDIA_LADDER_PER_TITLE,   /* from the title's measured complexity */
    MEDIA_LADDER_EXPLICIT     /* the rungs given in media_opts.rungs */
} media_ladder_mode;

typedef enum media_rc {
    MEDIA_RC_CAPPED_CRF = 0,  /* CRF with a maxrate/bufsize cap per rung */
    MEDIA_RC_TWO_PASS         /* libx264 two-pass ABR at each rung's bitrate (the source
                                 is decoded twice; first-pass statistics go to scratch_dir) */
} media_rc;

#define MEDIA_MAX_AUDIO_SEL 16

typedef enum media_audio_mode {
    MEDIA_AUDIO_ALL = 0,      /* every decodable audio stream */
    MEDIA_AUDIO_DEFAULT,      /* the default one only */
    MEDIA_AUDIO_LIST          /* those matching media_opts.audio_sel */
} media_audio_mode;

/* One entry of an audio track list: a language, or an index into the
 * source's audio streams (index >= 0, lang ""). */
typedef struct media_audio_sel {
    char lang[16];
    int index;
} media_audio_sel;

/* One requested rung. Zero fields mean "choose for me". */
typedef struct media_rung_req {
    int height;          /* output height in pixels (required) */
    int width;           /* 0: from the display aspect ratio */
    int bitrate_kbps;    /* two-pass target / capped-crf maxrate; 0: from the table */
    int crf;             /* 0: media_opts.crf */
} media_rung_req;

typedef struct media_opts {
    media_ladder_mode ladder;
    media_rung_req rungs[MEDIA_MAX_RUNGS];   /* MEDIA_LADDER_EXPLICIT */
    int nrungs;
    media_rc rate_control;
    const char *preset;        /* libx264 preset, default "veryfast" */
    int crf;                   /* default 23 */
    double segment_seconds;    /* default 4 */
    int threads;               /* about this many busy cores (CPU tokens, plan_thread_budget); 0 = every core, not gated */
    int audio_kbps;            /* AAC stereo bitrate, default 128 */
    int hls, dash;             /* which manifests to write (default both) */
    int thumbnails;            /* poster + sprite + storyboard (default on) */
    double thumb_interval;     /* seconds between storyboard tiles, default 10 */
    /* Limits; 0 = none. Exceeding one fails with SS_ELIMIT. */
    double max_duration;       /* seconds */
    int64_t max_pixels;        /* width*height of the source */
    int64_t max_file_size;     /* bytes of the source file */
    const char *scratch_dir;   /* for two-pass stats and temporary files */
    /* Added after the first version (zeroed by media_opts_default): */
    char preset_buf[24];       /* storage media_opts_from_spec points preset at */
    int no_quality;            /* skip the PSNR/SSIM measurement of the output */
    /* Audio tracks (spec "audio"): which source streams become renditions. */
    media_audio_mode audio_mode;
    media_audio_sel audio_sel[MEDIA_MAX_AUDIO_SEL];   /* MEDIA_AUDIO_LIST */
    int naudio_sel;
    int surround;              /* also a 5.1 AAC rendition of each 5.1 (or more) track */
    int av1;                   /* spec "codecs" has "av1": an AV1 ladder next to H.264 */
    int mp4_height;            /* spec "mp4": 0 none, -1 the top rung, else the rung nearest it */
    /* One title across workers (media_plan): spec "split" */
    int split;                 /* MEDIA_SPLIT_AUTO (default), _OFF, _SECONDS */
    double split_seconds;      /* MEDIA_SPLIT_SECONDS: the chunk length asked for */
    double chunk_seconds;      /* auto: the chunk length (worker config; default 12) */
    /* The source through this reader instead of the file named src (a
     * split job's chunk reading a remote source by range requests); NULL:
     * the file. Borrowed: it must outlive the call. */
    const struct media_io *io;
} media_opts;

/* Random access to a source the worker does not hold as a file. */
typedef struct media_io {
    void *ud;
    int64_t size;              /* bytes */
    /* up to len bytes at off into buf: the count, 0 at the end, < 0 on a
     * failure (the reader keeps the message: message()) */
    int (*read)(void *ud, int64_t off, uint8_t *buf, int len);
    const char *(*message)(void *ud);
} media_io;

#define MEDIA_SPLIT_AUTO 0     /* split titles longer than two chunks */
#define MEDIA_SPLIT_OFF 1
#define MEDIA_SPLIT_SECONDS 2  /* chunks of split_seconds (rounded to whole segments) */
#define MEDIA_CHUNK_SECONDS 12.0

/* Fill opts with the documented defaults. */
void media_opts_default(media_opts *opts);

/* Defaults, then the fields of a canonical job spec (proto/job.schema.json,
 * as common/jobspec.c returns it): ladder ("auto" | "per-title" | [{height,
 * width?, bitrate_kbps?, crf?}]), rate_control, segment_seconds, packaging
 * (["hls","dash"]), thumbnails ({enabled, interval_seconds} or a boolean),
 * preset, crf, audio ({tracks, bitrate_kbps, surround}), codecs, mp4. Unknown fields are ignored (the spec was validated already);
 * a field of the wrong type or range fails with SS_EINVAL. o->preset points
 * into o->preset_buf, so a copy of *o must re-point it. Limits and threads
 * are left to the caller (they come from the worker's config). */
int media_opts_from_spec(media_opts *o, const json_t *spec, ss_err *err);

typedef struct media_events {
    void *ud;
    /* stage: "probing", "analysing", "encoding", "packaging";
     * fraction 0..1 of that stage. Called often; throttle on your side. */
    void (*progress)(void *ud, const char *stage, double fraction);
    /* A finished data file (init segment, media segment, thumbnail,
     * subtitle), path relative to the output folder. Called once per file,
     * as soon as it is complete on disk and will not change again, so the
     * caller can upload while the encode goes on. Playlists and manifests
     * are NOT announced: they are written at the end, and the caller
     * publishes them last. */
    void (*file_ready)(void *ud, const char *relpath);
    /* A warning worth recording in the job (e.g. "source tail is
     * corrupt: encoded the first 9.6 s"). */
    void (*warning)(void *ud, const char *msg);
    /* Optional, with each "encoding" progress call: how far the encode is
     * in the title (seconds) and frames so far, for speed and fps. */
    void (*position)(void *ud, double media_seconds, int64_t frames);
    /* Optional, the audio item of a split job (items.c): a progress
     * record, {frames, partial: true, audio: [...]} as the final record's
     * but listing only the segments each rendition has written so far (all
     * announced through file_ready before). Called on the encoding thread
     * after the first 2 segments, then every MEDIA_PARTIAL_SECONDS; the
     * record is borrowed. docs/PLAYABLE.md */
    void (*partial)(void *ud, const json_t *record);
    /* Optional, a chunk item of a split job (media_encode_item): its
     * decode reached the range end and the encoders are draining (called
     * once, on the encoding thread, after the last pass's input). */
    void (*input_done)(void *ud);
    /* Optional, a chunk item of a split job (media_encode_item "c<k>", single-pass rate
     * control): its decode reached the range end of chunk next-1. Return 1 when the caller
     * now holds chunk `next` (it exists in the plan) and this run goes on encoding it: the
     * decoder and encoders continue (no drain, no pre-roll), 0 to end the run here. Called on
     * the encoding thread, at most once per chunk; may block (a Redis round trip). */
    int (*next_chunk)(void *ud, int next);
    /* Optional, with next_chunk: chunk k of a run that went on is complete (every file of it
     * announced through file_ready before this call) and record is its record, what
     * media_encode_item's *result would hold for it (the callee takes it over). Called on
     * the encoding thread, for every chunk of the run but the last (that one is *result). */
    void (*chunk_done)(void *ud, int k, json_t *record);
    /* (With next_chunk: once it returned 1, progress reports the chunk the run encodes now
     * (the fraction of its range); position goes on counting the run's frames, so that a
     * speed and fps taken since the run's first report stay the run's average (the worker's
     * on_position). A run that fails fails every chunk
     * it holds whose chunk_done was not called. docs/SPLIT.md "A run that goes on into the
     * next chunk".) */
} media_events;

#define MEDIA_PARTIAL_SECONDS 1.5

/* Encode src into outdir (created if missing). cancel: when it becomes
 * non-zero the encode stops within a fraction of a second and returns -1
 * with SS_ECANCELLED. *result receives the job.json "output" object:
 * source probe facts, renditions (name, width, height, codecs, bandwidth,
 * average_bandwidth, bytes, frames, duration, playlist), audio, segments,
 * thumbnails, subtitles, warnings, timings. */
int media_encode(const char *src, const char *outdir, const media_opts *opts,
                 const media_events *ev, const atomic_int *cancel, json_t **result,
                 ss_err *err);

/* ---- one title across workers (stage.c; docs/SPLIT.md) ----
 *
 * A split job runs as items: "plan" (media_plan), "c0".."c<n-1>" (a time
 * range of the video, every rung, on the segment grid), "audio" (the whole
 * audio track, subtitles, thumbnails) and "finalize" (playlists, MPD, the
 * output object from the items' records). Each may run on another machine;
 * their outputs go to the same folder (storage prefix) and together are
 * the ladder media_encode() would have written. */

/* Probe and plan src. *plan: NULL when the title is not split (encode it
 * with media_encode()); otherwise a new JSON object (ladder, grid, chunks,
 * the per-title report) the caller stores and hands to every item. */
int media_plan(const char *src, const media_opts *opts, const media_events *ev,
               const atomic_int *cancel, json_t **plan, ss_err *err);

/* The number of chunks of a plan. */
int media_plan_chunks(const json_t *plan);

/* Playable while encoding (docs/PLAYABLE.md): from a split job's plan and
 * the records of its items stored so far ({name: record}, chunks and audio),
 * write into outdir the EVENT media playlists of every rung and of the
 * audio, listing the first segments that every rung has without a gap and
 * the audio covers, and master.m3u8 with BANDWIDTH bounds (media_rung_bound_bps) and no I-frame playlists.
 * Returns the number of segments listed (0: not playable yet, nothing
 * written: the audio record or a second segment is missing), -1 with err. */
int media_publish_early(const char *outdir, const json_t *plan, const json_t *records,
                        ss_err *err);
/* A rung's peak segment bitrate bound (bits/s) from its VBV settings: no
 * segment of seg_seconds can carry more (maxrate x seconds + bufsize, its
 * fMP4 boxes, 2 % for rounding). */
int64_t media_rung_bound_bps(int maxrate_kbps, int bufsize_kbits, double seg_seconds,
                             double fps);
/* The audio's (AAC at 48 kHz, channels): no segment of seg_seconds can
 * carry more (6144 bits per channel in each AAC frame, its fMP4 boxes). */
int64_t media_audio_bound_bps(int channels, double seg_seconds);
/* A rung's I-frame playlist's (its IDR within bufsize, the boxes before
 * it, segments of at least half seg_seconds). */
int64_t media_iframe_bound_bps(int bufsize_kbits, double seg_seconds, double fps);

/* Run one item of a plan into outdir: "c<k>" and "audio" read src and
 * write their segments (announced through ev->file_ready); "finalize"
 * writes the playlists and manifests from results (an object: item name
 * -> that item's *result; audio needs the chunks' too) and does not read
 * src. *result: the item's record (a new object the caller owns; for
 * finalize the job.json "output" object). When finalize fails because of
 * other items' records (a chunk's init segment differs, a record does not
 * match the plan), *result is {"items": [names]} instead: the items a retry
 * runs again (docs/SPLIT.md "Retry"). */
int media_encode_item(const char *src, const char *outdir, const media_opts *opts,
                      const json_t *plan, const char *item, const json_t *results,
                      const media_events *ev, const atomic_int *cancel, json_t **result,
                      ss_err *err);

#endif
