/* manifest.h — HLS and DASH manifests as pure functions over measured
 * values (pkg_set). The pipeline fills a pkg_set from what it actually
 * wrote (segment byte sizes, durations, the offset of each IDR sample, the
 * codec string from the encoder's SPS) and calls these at the very end;
 * tests/unit/test_media_manifest.c calls them with fixed numbers.
 *
 * Every writer returns a new NUL-terminated string the caller free()s, or
 * NULL when out of memory. Paths in the manifests are relative to the
 * output folder (master.m3u8 and manifest.mpd sit at its top).
 */
#ifndef SS_MEDIA_MANIFEST_H
#define SS_MEDIA_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct pkg_seg {
    int64_t start;        /* presentation time of the first sample (timescale units) */
    int64_t duration;     /* timescale units */
    int64_t bytes;        /* size of seg_NNNNN.m4s */
    int64_t iframe_end;   /* bytes from the file start to the end of its IDR sample (video) */
} pkg_seg;

typedef struct pkg_track {
    char name[32];        /* folder and representation id: "720p", "audio" */
    int is_audio;
    int width, height;            /* video */
    int fps_num, fps_den;         /* video */
    int channels, sample_rate;    /* audio */
    char lang[16];                /* audio: ISO 639 code or BCP 47 tag, or "" */
    char codecs[40];      /* RFC 6381: "avc1.64001f", "av01.0.04M.08", "mp4a.40.2" */
    int timescale;        /* of start/duration */
    int64_t init_bytes;
    pkg_seg *segs;
    int nsegs;
    /* audio renditions (several: one per source track, and a 5.1 one): */
    char label[64];       /* HLS NAME: the track's title; "": the language's name */
    int is_default;       /* the source's default track: DEFAULT=YES, DASH Role "main" */
    char role[16];        /* "commentary", "description", "dub"; "": main or alternate */
    /* playable while encoding: the peak bitrate no segment of the track can
     * exceed (BANDWIDTH of an early master); 0: measure it */
    int64_t bound_bps;
    int64_t iframe_bound_bps;   /* the same for its I-frame playlist; an early master lists
                                   I-frame playlists only with it */
} pkg_track;

typedef struct pkg_text {
    char name[32];        /* subtitles/<name>.vtt and subtitles/<name>.m3u8 */
    char lang[16];        /* "" when unknown */
    char label[64];       /* NAME= in HLS */
} pkg_text;

typedef struct pkg_set {
    const pkg_track *video;   /* rungs per codec, smallest first; H.264 first, then AV1 */
    int nvideo;
    const pkg_track *audio;   /* audio renditions; NULL: no audio */
    const pkg_text *texts;
    int ntexts;
    double segment_seconds;
    double duration;          /* presentation length in seconds */
    int naudio;               /* renditions at audio (0 with audio set: one) */
    int early;                /* the master published while encoding: BANDWIDTH from
                                 bound_bps where set, no AVERAGE-BANDWIDTH, I-frame
                                 playlists only of rungs with iframe_bound_bps
                                 (docs/PLAYABLE.md) */
} pkg_set;

/* HLS: one EXT-X-MEDIA group per audio codec and channel layout ("audio"
 * for stereo AAC, "audio-51" for 5.1), each with one DEFAULT=YES entry;
 * one EXT-X-STREAM-INF per video rung and audio group (CODECS, peak and
 * average BANDWIDTH of the rung plus the group's largest); a title without
 * video gets one variant per group pointing at its default rendition.
 * DASH: one video AdaptationSet per codec, one audio AdaptationSet per
 * rendition with lang and Role (main for the default track, else its role
 * or alternate). */

/* Segment i's length in seconds. */
double pkg_seg_seconds(const pkg_track *t, int i);
/* Peak segment bitrate (bits/s, rounded up) over all segments. */
int64_t pkg_peak_bps(const pkg_track *t);
/* Average bitrate: all segment bytes over the whole length (bits/s). */
int64_t pkg_avg_bps(const pkg_track *t);
/* Peak bitrate of the I-frame byte ranges. */
int64_t pkg_iframe_peak_bps(const pkg_track *t);
/* EXT-X-TARGETDURATION: the longest EXTINF (as printed) rounded up. */
int pkg_target_duration(const pkg_track *t);

/* RFC 5646 language tag for an ISO 639-2 code from a container ("eng" ->
 * "en", "fre"/"fra" -> "fr", ...; codes without a two-letter form are
 * copied lower-cased) or a BCP 47 tag (its case normalised: "PT-br" ->
 * "pt-BR", "zh-hant" -> "zh-Hant"). out needs 16 bytes. */
void pkg_lang_tag(const char *iso, char *out, size_t outlen);
/* English name of a language tag's language ("en", "eng", "en-GB" ->
 * "English"), NULL when not in the table. */
const char *pkg_lang_name(const char *tag);

char *pkg_hls_media(const pkg_track *t);        /* <name>/playlist.m3u8 */
/* The same playlist while the title is encoding: PLAYLIST-TYPE:EVENT,
 * EXT-X-START at 0, no ENDLIST, the first nsegs segments, and
 * TARGETDURATION target (kept for the whole title). */
char *pkg_hls_media_event(const pkg_track *t, int nsegs, int target);
char *pkg_hls_iframes(const pkg_track *t);      /* <name>/iframes.m3u8 */
/* The same while encoding: EVENT, its first nsegs segments (as
 * pkg_hls_media_event). */
char *pkg_hls_iframes_event(const pkg_track *t, int nsegs, int target);
char *pkg_hls_text(const pkg_text *x, double duration);  /* subtitles/<name>.m3u8 */
char *pkg_hls_master(const pkg_set *s);         /* master.m3u8 */
char *pkg_dash_mpd(const pkg_set *s);           /* manifest.mpd */

#endif
