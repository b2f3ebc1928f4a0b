/* early.c — playable while encoding (docs/PLAYABLE.md): the playlists a
 * split job publishes before it is done. From the plan and the records of
 * the items done so far, the EVENT media playlists list the segments that
 * every rung has from the start without a gap (a later chunk that finished
 * first waits for the ones before it) and that the audio covers, and the
 * master declares for each variant a BANDWIDTH no segment of the rung can
 * exceed, so that a player's choice made early stays valid when the rest
 * lands. finalize (items.c) later writes the VOD playlists over them with
 * the same segment URIs. */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int64_t media_rung_bound_bps(int maxrate_kbps, int bufsize_kbits, double seg_seconds,
                             double fps)
{
    if (maxrate_kbps <= 0 || seg_seconds <= 0)
        return 0;
    /* x264's VBV: what a decoder's buffer (bufsize, filled at maxrate)
     * holds at most, plus what arrives during the segment */
    double bits = (double)maxrate_kbps * 1000 * seg_seconds + (double)bufsize_kbits * 1000;
    /* fMP4 around the video: styp + moof + mdat header, 16 bytes of trun
     * per sample */
    double boxes = (1024 + 16 * ceil(seg_seconds * (fps > 0 ? fps : 60))) * 8;
    /* 2 % for x264's VBV rounding */
    return (int64_t)ceil((bits * 1.02 + boxes) / seg_seconds);
}

int64_t media_iframe_bound_bps(int bufsize_kbits, double seg_seconds, double fps)
{
    if (bufsize_kbits <= 0 || seg_seconds <= 0)
        return 0;
    /* an I-frame playlist's entry is a segment's start up to the end of its
     * IDR: the boxes before it (a trun entry per sample) and one frame,
     * which x264's VBV keeps within bufsize; its segment lasts seg_seconds,
     * or at least half of it (a shorter tail counts with the segment before
     * it, two IDRs over more than seg_seconds, as the variants' peak) */
    double bits = (double)bufsize_kbits * 1000 * 1.02 +
                  (1024 + 16 * ceil(seg_seconds * (fps > 0 ? fps : 60))) * 8;
    return (int64_t)ceil(2 * bits / seg_seconds);
}

int64_t media_audio_bound_bps(int channels, double seg_seconds)
{
    if (channels <= 0 || seg_seconds <= 0)
        return 0;
    /* an AAC frame (1024 samples at 48 kHz) carries at most 6144 bits per
     * channel (ISO/IEC 14496-3, the decoder's input buffer); a segment is
     * cut at the first frame at or after its boundary, so it may hold one
     * frame more than its length */
    double frames = ceil(seg_seconds * 48000 / 1024) + 1;
    double bits = frames * 6144 * channels + (1024 + 16 * frames) * 8;
    return (int64_t)ceil(bits / seg_seconds);
}

/* How many of the audio record's first segments an early playlist may
 * list: those that end at least AUDIO_GUARD before the length the audio
 * was cut to (the record's frames) and, once every chunk is done, before
 * the length the chunks measured. The audio item runs again, cut to the
 * measured length, when the two differ (item_finish.lua); that run writes
 * the same segment names with the same bytes except near the cut, where
 * the encoder's flush and the padding or cut change the last AAC frames
 * (a frame depends on the next one's samples): so what an early playlist
 * listed never changes. The audio's last segment is listed only by the
 * final playlists. */
#define AUDIO_GUARD (3 * 1024 / 48000.0)

static int audio_listable(const pkg_track *at, const json_t *au, int64_t chunk_frames,
                          int fps_num, int fps_den)
{
    int64_t cut = json_integer_value(json_object_get(au, "frames"));
    if (chunk_frames > 0 && (cut <= 0 || chunk_frames < cut))
        cut = chunk_frames;
    if (cut <= 0 || at->timescale <= 0)
        return at->nsegs;
    double lim = ((double)cut * fps_den / fps_num - AUDIO_GUARD) * at->timescale;
    int n = 0;
    while (n < at->nsegs && (double)(at->segs[n].start + at->segs[n].duration) <= lim)
        n++;
    return n;
}

static int write_out(const char *outdir, const char *rel, char *text, ss_err *err)
{
    if (!text)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", outdir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (ss_mkdir_p(path, err)) {
        free(text);
        return -1;
    }
    *slash = '/';
    int r = ss_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return r;
}

static int early_target(const pkg_track *t, int fps_num, int fps_den, int seg_num, int seg_den)
{
    /* the grid's longest segment (a frame more than the shortest one when
     * the segment is not a whole number of frames), as an EXTINF */
    double frames = ceil((double)seg_num * fps_num / ((double)seg_den * fps_den) - 1e-9);
    double mx = round(frames * fps_den / fps_num * 1000) / 1000;
    int td = (int)ceil(mx - 1e-9);
    int known = pkg_target_duration(t);
    return known > td ? known : td;
}

int media_publish_early(const char *outdir, const json_t *plan, const json_t *records,
                        ss_err *err)
{
    const json_t *rungs = json_object_get(plan, "rungs");
    int nr = (int)json_array_size(rungs), nch = media_plan_chunks(plan);
    int fps_num = (int)json_integer_value(json_object_get(plan, "fps_num"));
    int fps_den = (int)json_integer_value(json_object_get(plan, "fps_den"));
    int seg_num = (int)json_integer_value(json_object_get(plan, "seg_num"));
    int seg_den = (int)json_integer_value(json_object_get(plan, "seg_den"));
    if (nr < 1 || nr > MEDIA_MAX_RUNGS || fps_num <= 0 || fps_den <= 0 || seg_num <= 0 ||
        seg_den <= 0)
        return ss_fail(err, SS_EINVAL, "the job's plan is not one this worker reads");
    /* the audio item's record is needed: the master names the audio group */
    const json_t *au = json_object_get(records, "audio");
    if (!json_is_object(au))
        return 0;
    pkg_track vt[MEDIA_MAX_RUNGS], at;
    uint32_t crc[MEDIA_MAX_RUNGS] = { 0 };
    memset(vt, 0, sizeof(vt));
    memset(&at, 0, sizeof(at));
    int ret = -1, n = 0, k;
    int64_t chunk_frames = 0;   /* the chunks' length, once all are done */
    for (k = 0; k < nch; k++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", k);
        const json_t *rs = json_object_get(json_object_get(records, name), "rungs");
        /* the H.264 rungs come first; an AV1 ladder's follow (the early
         * master lists H.264, the final one both) */
        if (json_array_size(rs) < (size_t)nr)
            break;   /* not done yet: nothing after it is listed */
        /* a chunk whose init segment differs from the first one's (another
         * x264 build, say) is not listed: its frames would be decoded with
         * the other SPS/PPS; finalize fails such a job */
        int same = 1;
        for (int i = 0; i < nr && same; i++) {
            const json_t *r = json_array_get(rs, (size_t)i);
            uint32_t c32 = (uint32_t)json_integer_value(json_object_get(r, "init_crc"));
            if (json_integer_value(json_object_get(r, "init_bytes")) > 0) {
                if (crc[i] && crc[i] != c32)
                    same = 0;
                crc[i] = c32;
            }
        }
        if (!same)
            break;
        for (int i = 0; i < nr; i++) {
            const json_t *r = json_array_get(rs, (size_t)i);
            if (!vt[i].codecs[0])
                ss_strlcpy(vt[i].codecs, json_string_value(json_object_get(r, "codecs")) ?: "",
                           sizeof(vt[i].codecs));
            if (track_from_json(r, &vt[i], err))
                goto out;
        }
        chunk_frames += json_integer_value(json_object_get(json_object_get(records, name),
                                                           "frames"));
    }
    if (k < nch)
        chunk_frames = 0;
    n = vt[0].nsegs;
    for (int i = 1; i < nr; i++)
        if (vt[i].nsegs < n)
            n = vt[i].nsegs;
    /* every audio rendition of the title (items.c): the early master
     * lists the first, the final one all of them. The record is the audio
     * item's final one or, while it runs, its latest progress record
     * (`partial`: the segments it has stored so far) */
    const json_t *ar = json_array_get(json_object_get(au, "audio"), 0);
    if (json_is_object(ar)) {
        if (track_from_json(ar, &at, err))
            goto out;
        int na = audio_listable(&at, au, chunk_frames, fps_num, fps_den);
        if (na < n)
            n = na;
    }
    if (n < 2) {   /* a player wants a couple of segments to start */
        ret = 0;
        goto out;
    }
    double seg_s = (double)seg_num / seg_den, fps = (double)fps_num / fps_den;
    for (int i = 0; i < nr; i++) {
        const json_t *p = json_array_get(rungs, (size_t)i);
        pkg_track *t = &vt[i];
        ss_strlcpy(t->name, json_string_value(json_object_get(p, "name")) ?: "", sizeof(t->name));
        t->width = (int)json_integer_value(json_object_get(p, "width"));
        t->height = (int)json_integer_value(json_object_get(p, "height"));
        t->fps_num = fps_num;
        t->fps_den = fps_den;
        t->bound_bps = media_rung_bound_bps(
            (int)json_integer_value(json_object_get(p, "maxrate_kbps")),
            (int)json_integer_value(json_object_get(p, "bufsize_kbits")), seg_s, fps);
        t->iframe_bound_bps = media_iframe_bound_bps(
            (int)json_integer_value(json_object_get(p, "bufsize_kbits")), seg_s, fps);
        int td = early_target(t, fps_num, fps_den, seg_num, seg_den);
        char rel[128];
        snprintf(rel, sizeof(rel), "%.31s/playlist.m3u8", t->name);
        if (write_out(outdir, rel, pkg_hls_media_event(t, n, td), err))
            goto out;
        snprintf(rel, sizeof(rel), "%.31s/iframes.m3u8", t->name);
        if (t->iframe_bound_bps && write_out(outdir, rel, pkg_hls_iframes_event(t, n, td), err))
            goto out;
    }
    /* the subtitles, once the audio item is done (it writes them last; its
     * worker stores them before its record leaves): their playlists name
     * the whole file, as the final ones, which finalize rewrites with the
     * length the chunks measured */
    pkg_text texts[PROBE_MAX_SUBS];
    int ntexts = 0;
    size_t ti;
    const json_t *tx;
    json_array_foreach(json_is_true(json_object_get(au, "partial")) ? NULL
                                                                     : json_object_get(au, "texts"),
                       ti, tx) {
        if (ntexts >= PROBE_MAX_SUBS)
            break;
        pkg_text *x = &texts[ntexts++];
        ss_strlcpy(x->name, json_string_value(json_object_get(tx, "name")) ?: "", sizeof(x->name));
        ss_strlcpy(x->lang, json_string_value(json_object_get(tx, "lang")) ?: "", sizeof(x->lang));
        ss_strlcpy(x->label, json_string_value(json_object_get(tx, "label")) ?: "",
                   sizeof(x->label));
        char rel[128];
        snprintf(rel, sizeof(rel), "subtitles/%.31s.m3u8", x->name);
        double dur = (double)json_integer_value(json_object_get(au, "frames")) * fps_den / fps_num;
        if (write_out(outdir, rel, pkg_hls_text(x, dur), err))
            goto out;
    }
    if (at.nsegs) {
        /* the audio may still be encoding: its BANDWIDTH part is a bound
         * (media_audio_bound_bps), the same in every update; its target
         * duration is the grid's, as the rungs' */
        ss_strlcpy(at.name, "audio", sizeof(at.name));
        ss_strlcpy(at.codecs, "mp4a.40.2", sizeof(at.codecs));
        at.is_audio = 1;
        at.channels = 2;
        at.sample_rate = 48000;
        at.is_default = 1;
        pkg_lang_tag(json_string_value(json_object_get(plan, "alang")) ?: "", at.lang,
                     sizeof(at.lang));
        at.bound_bps = media_audio_bound_bps(at.channels, seg_s);
        if (write_out(outdir, "audio/playlist.m3u8",
                      pkg_hls_media_event(&at, n, early_target(&at, 48000, 1024, seg_num,
                                                               seg_den)),
                      err))
            goto out;
    }
    pkg_set set = { vt, nr, at.nsegs ? &at : NULL, texts, ntexts, seg_s, 0, at.nsegs ? 1 : 0, 1 };
    if (write_out(outdir, "master.m3u8", pkg_hls_master(&set), err))
        goto out;
    ret = n;
out:
    for (int i = 0; i < nr; i++)
        free(vt[i].segs);
    free(at.segs);
    return ret;
}
