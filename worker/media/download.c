/* download.c — the MP4 download rendition (spec `mp4`): one H.264 rung and
 * the default audio rendition remuxed, not re-encoded, from their CMAF
 * files into one progressive MP4 with the moov box first (faststart), for
 * downloads and social uploads: OUT/download.mp4. It runs after the
 * packaging, from the files on disk, so it costs a copy, not an encode. */
#include "stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* rel/init.mp4 + rel/seg_*.m4s (nsegs) into path: one fragmented MP4. */
static int concat_track(const char *outdir, const char *rel, int nsegs, const char *path, ss_err *err)
{
    FILE *o = fopen(path, "wb");
    if (!o)
        return ss_fail(err, SS_EIO, "cannot write %s: %s", path, strerror(errno));
    int r = 0;
    char buf[65536];
    for (int i = -1; i < nsegs && !r; i++) {
        char in[4400];
        if (i < 0)
            snprintf(in, sizeof(in), "%s/%s/init.mp4", outdir, rel);
        else
            snprintf(in, sizeof(in), "%s/%s/seg_%05d.m4s", outdir, rel, i);
        FILE *f = fopen(in, "rb");
        if (!f) {
            r = ss_fail(err, SS_EIO, "cannot read %s: %s", in, strerror(errno));
            break;
        }
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            if (fwrite(buf, 1, n, o) != n) {
                r = ss_fail(err, SS_EIO, "cannot write %s", path);
                break;
            }
        fclose(f);
    }
    if (fclose(o) != 0 && !r)
        r = ss_fail(err, SS_EIO, "cannot write %s", path);
    return r;
}

static int open_in(AVFormatContext **ic, const char *path, ss_err *err)
{
    char e[128];
    int r = avformat_open_input(ic, path, NULL, NULL);
    if (r >= 0)
        r = avformat_find_stream_info(*ic, NULL);
    if (r < 0) {
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "download.mp4: cannot read back %s: %s", path, e);
    }
    return 0;
}

/* The H.264 rung for o->mp4_height: -1 the top one, else the nearest. */
static int pick_rung(const job *j)
{
    int best = j->lad.n - 1;
    if (j->o->mp4_height > 0)
        for (int i = 0; i < j->lad.n; i++) {
            int d = abs(j->rungs[i].p.height - j->o->mp4_height);
            if (d < abs(j->rungs[best].p.height - j->o->mp4_height))
                best = i;
        }
    return best;
}

/* The default stereo rendition (the source's default track, else the
 * first stereo one), -1 none. */
static int pick_audio(const job *j)
{
    int first = -1;
    for (int i = 0; i < j->nau; i++) {
        if (j->au[i].channels != 2)
            continue;
        if (j->pi.audio[j->au[i].src].idx == j->pi.aidx)
            return i;
        if (first < 0)
            first = i;
    }
    return first;
}

int download_mp4(job *j, json_t *res, ss_err *err)
{
    int audio_idx = pick_audio(j);
    const rung *g = &j->rungs[pick_rung(j)];
    const atrack *a = audio_idx >= 0 ? &j->au[audio_idx] : NULL;
    pkg_track vt, at;
    cmaf_track(g->cm, &vt);
    if (a)
        cmaf_track(a->cm, &at);
    char vtmp[4200], atmp[4200], part[4200], final[4200];
    snprintf(vtmp, sizeof(vtmp), "%s/.download-video.mp4", j->outdir);
    snprintf(atmp, sizeof(atmp), "%s/.download-audio.mp4", j->outdir);
    snprintf(part, sizeof(part), "%s/download.mp4.part", j->outdir);
    snprintf(final, sizeof(final), "%s/download.mp4", j->outdir);
    AVFormatContext *in[2] = { NULL, NULL }, *oc = NULL;
    AVPacket *pk[2] = { av_packet_alloc(), av_packet_alloc() };
    int nin = a ? 2 : 1, r = 0, have[2] = { 0, 0 };
    if (!pk[0] || !pk[1]) {
        r = ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    if ((r = concat_track(j->outdir, g->p.name, vt.nsegs, vtmp, err)) ||
        (a && (r = concat_track(j->outdir, a->name, at.nsegs, atmp, err))) ||
        (r = open_in(&in[0], vtmp, err)) || (a && (r = open_in(&in[1], atmp, err))))
        goto out;
    if (avformat_alloc_output_context2(&oc, NULL, "mp4", part) < 0 || !oc) {
        r = ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < nin; k++) {
        AVStream *is = in[k]->streams[0], *os = avformat_new_stream(oc, NULL);
        if (!os || avcodec_parameters_copy(os->codecpar, is->codecpar) < 0) {
            r = ss_fail(err, SS_ENOMEM, "out of memory");
            goto out;
        }
        os->codecpar->codec_tag = 0;
        os->time_base = is->time_base;
    }
    AVDictionary *d = NULL;
    av_dict_set(&d, "movflags", "+faststart", 0);
    int e = avio_open(&oc->pb, part, AVIO_FLAG_WRITE);
    if (e >= 0)
        e = avformat_write_header(oc, &d);
    av_dict_free(&d);
    for (;;) {   /* interleave by time: the next packet is the earlier of the two */
        for (int k = 0; k < nin && e >= 0; k++)
            if (!have[k] && av_read_frame(in[k], pk[k]) >= 0)
                have[k] = 1;
        if (e < 0 || (!have[0] && !have[1]))
            break;
        int k = !have[0] ? 1 : !have[1] ? 0
                : av_compare_ts(pk[0]->dts, in[0]->streams[0]->time_base, pk[1]->dts,
                                in[1]->streams[0]->time_base) <= 0 ? 0 : 1;
        pk[k]->stream_index = k;
        pk[k]->pos = -1;
        av_packet_rescale_ts(pk[k], in[k]->streams[0]->time_base, oc->streams[k]->time_base);
        e = av_interleaved_write_frame(oc, pk[k]);
        have[k] = 0;
    }
    if (e >= 0)
        e = av_write_trailer(oc);
    if (e < 0) {
        char m[128];
        media_averr(e, m, sizeof(m));
        r = ss_fail(err, SS_EINTERNAL, "download.mp4: %s", m);
        goto out;
    }
    avio_closep(&oc->pb);
    if (rename(part, final) != 0) {
        r = ss_fail(err, SS_EIO, "cannot write %s: %s", final, strerror(errno));
        goto out;
    }
    if (j->ev && j->ev->file_ready)
        j->ev->file_ready(j->ev->ud, "download.mp4");
    struct stat sb;
    json_t *o = json_pack("{s:s, s:s, s:s}", "path", "download.mp4", "rendition", g->p.name,
                          "audio", a ? a->name : "");
    if (!a)
        json_object_set_new(o, "audio", json_null());
    json_object_set_new(o, "bytes", json_integer(stat(final, &sb) == 0 ? sb.st_size : 0));
    json_object_set_new(res, "download", o);
out:
    for (int k = 0; k < 2; k++) {
        av_packet_free(&pk[k]);
        avformat_close_input(&in[k]);
    }
    if (oc) {
        if (oc->pb)
            avio_closep(&oc->pb);
        avformat_free_context(oc);
    }
    unlink(vtmp);
    unlink(atmp);
    if (r)
        unlink(part);
    return r;
}
