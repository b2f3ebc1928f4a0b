/* package.c — the measured tracks (segment sizes and durations from
 * cmaf.c) become the HLS playlists, the DASH MPD and the job.json "output"
 * fields (renditions, audio, quality, ...). manifest.c writes the text;
 * this file decides what goes in it. */
#include "stage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int write_text(job *j, const char *rel, char *text, ss_err *err)
{
    if (!text)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", j->outdir, rel);
    int r = ss_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return r;
}

void package_from_job(job *j, pkg_records *r)
{
    memset(r, 0, sizeof(*r));
    r->n = j->nr;
    for (int i = 0; i < j->nr; i++) {
        rung *g = &j->rungs[i];
        rung_rec *x = &r->rungs[i];
        x->p = g->p;
        x->codec_id = g->codec ? g->codec->id : "h264";
        cmaf_track(g->cm, &x->t);
        snprintf(x->codecs, sizeof(x->codecs), "%s", g->codecs);
        x->frames = g->frames;
        x->es_bytes = g->es_bytes;
        x->bytes = cmaf_bytes(g->cm) + x->t.init_bytes;
        if (g->qm) {
            x->measured = 1;
            const q_sample *qs = qmeter_samples(g->qm, &x->nq);
            for (int k = 0; k < x->nq; k++) {
                x->mse_sum += qs[k].mse;
                x->ssim_sum += qs[k].ssim;
            }
        }
    }
    /* the audio renditions: language, title, default disposition and
     * role from the probe */
    r->naudio = j->nau;
    for (int i = 0; i < j->nau; i++) {
        const atrack *a = &j->au[i];
        const probe_audio *pa = &j->pi.audio[a->src];
        pkg_track *t = &r->audio[i];
        cmaf_track(a->cm, t);
        snprintf(t->name, sizeof(t->name), "%s", a->name);
        t->channels = a->channels;
        snprintf(t->lang, sizeof(t->lang), "%s", pa->lang);
        snprintf(t->label, sizeof(t->label), "%s", pa->title);
        snprintf(t->role, sizeof(t->role), "%s", strcmp(pa->role, "main") ? pa->role : "");
        t->is_default = pa->idx == j->pi.aidx;
        r->audio_bytes[i] = cmaf_bytes(a->cm) + t->init_bytes;
        r->audio_src[i] = pa->idx;
    }
    r->frames = j->vframes;
}

/* The default stereo rendition of r (the source's default track, else the
 * first stereo one), -1 when there is no audio. */
static int default_audio(const pkg_records *r)
{
    int adef = -1;
    for (int i = 0; i < r->naudio; i++)
        if (r->audio[i].channels == 2 &&
            (adef < 0 || (r->audio[i].is_default && !r->audio[adef].is_default)))
            adef = i;
    return adef;
}

static json_t *audio_json(const job *j, const pkg_records *r, int i)
{
    const pkg_track *t = &r->audio[i];
    char pl[64];
    snprintf(pl, sizeof(pl), "%.31s/playlist.m3u8", t->name);
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:o, s:i, s:b, s:s}", "name",
                          t->name, "codecs", t->codecs, "channels", t->channels, "sample_rate",
                          t->sample_rate, "bitrate", (json_int_t)pkg_avg_bps(t), "bitrate_peak",
                          (json_int_t)pkg_peak_bps(t), "bytes", (json_int_t)r->audio_bytes[i],
                          "playlist", j->o->hls ? json_string(pl) : json_null(), "source_stream",
                          r->audio_src[i], "default", t->is_default, "role",
                          t->role[0] ? t->role : "main");
    json_object_set_new(o, "language", t->lang[0] ? json_string(t->lang) : json_null());
    json_object_set_new(o, "title", t->label[0] ? json_string(t->label) : json_null());
    return o;
}

int package_write(job *j, pkg_records *rec, json_t *res, ss_err *err)
{
    pkg_track vt[2 * MEDIA_MAX_RUNGS], at[MEDIA_MAX_AUDIO];
    pkg_text *texts = rec->texts;
    memset(vt, 0, sizeof(vt));
    memset(at, 0, sizeof(at));
    int nseg = -1;
    /* what the job asked, not this process's pass: a split job's finalize
     * runs no pass of its own, its chunks ran both */
    const int two_pass = j->o->rate_control == MEDIA_RC_TWO_PASS;
    for (int i = 0; i < rec->n; i++) {
        rung_rec *g = &rec->rungs[i];
        vt[i] = g->t;
        ss_strlcpy(vt[i].name, g->p.name, sizeof(vt[i].name));
        vt[i].width = g->p.width;
        vt[i].height = g->p.height;
        vt[i].fps_num = j->fps_num;
        vt[i].fps_den = j->fps_den;
        snprintf(vt[i].codecs, sizeof(vt[i].codecs), "%s", g->codecs);
        if (nseg < 0)
            nseg = vt[i].nsegs;
        else if (nseg != vt[i].nsegs)
            return ss_fail(err, SS_EINTERNAL, "rungs were cut into different segment counts");
    }
    int na = rec->naudio;
    for (int i = 0; i < na; i++) {
        at[i] = rec->audio[i];
        at[i].is_audio = 1;
        at[i].sample_rate = 48000;
        snprintf(at[i].codecs, sizeof(at[i].codecs), "mp4a.40.2");
        rec->audio[i] = at[i];   /* for audio_json */
    }
    int adef = default_audio(rec);
    json_t *subarr = rec->subarr ? json_incref(rec->subarr) : json_array();
    int ntexts = rec->ntexts;
    double duration = (double)rec->frames * j->fps_den / j->fps_num;
    if (!rec->n && na) {   /* audio only: the audio's own length and segments */
        duration = 0;
        for (int i = 0; i < at[0].nsegs; i++)
            duration += pkg_seg_seconds(&at[0], i);
        nseg = at[0].nsegs;
    }
    pkg_set set = { vt, rec->n, na ? at : NULL, texts, ntexts,
                    (double)j->seg_num / j->seg_den, duration, na, 0 };

    if (j->o->hls) {
        for (int i = 0; i < rec->n; i++) {
            char rel[128];
            snprintf(rel, sizeof(rel), "%.31s/playlist.m3u8", vt[i].name);
            if (write_text(j, rel, pkg_hls_media(&vt[i]), err))
                goto fail;
            snprintf(rel, sizeof(rel), "%.31s/iframes.m3u8", vt[i].name);
            if (write_text(j, rel, pkg_hls_iframes(&vt[i]), err))
                goto fail;
        }
        for (int i = 0; i < na; i++) {
            char rel[128];
            snprintf(rel, sizeof(rel), "%.31s/playlist.m3u8", at[i].name);
            if (write_text(j, rel, pkg_hls_media(&at[i]), err))
                goto fail;
        }
        for (int i = 0; i < ntexts; i++) {
            char rel[128];
            snprintf(rel, sizeof(rel), "subtitles/%.31s.m3u8", texts[i].name);
            if (write_text(j, rel, pkg_hls_text(&texts[i], duration), err))
                goto fail;
        }
        if (write_text(j, "master.m3u8", pkg_hls_master(&set), err))
            goto fail;
    }
    if (j->o->dash && write_text(j, "manifest.mpd", pkg_dash_mpd(&set), err))
        goto fail;

    /* a rung's figures count the stereo group's largest audio (as the master's BANDWIDTH) */
    int64_t apeak = 0, aavg = 0;
    for (int i = 0; i < na; i++)
        if (at[i].channels == 2) {
            apeak = pkg_peak_bps(&at[i]) > apeak ? pkg_peak_bps(&at[i]) : apeak;
            aavg = pkg_avg_bps(&at[i]) > aavg ? pkg_avg_bps(&at[i]) : aavg;
        }
    json_t *rs = json_array();
    for (int i = 0; i < rec->n; i++) {
        rung_rec *g = &rec->rungs[i];
        char pl[128], ipl[128];
        snprintf(pl, sizeof(pl), "%.31s/playlist.m3u8", vt[i].name);
        snprintf(ipl, sizeof(ipl), "%.31s/iframes.m3u8", vt[i].name);
        json_t *r = json_object();
        json_object_set_new(r, "name", json_string(vt[i].name));
        json_object_set_new(r, "video_codec", json_string(g->codec_id ? g->codec_id : "h264"));
        json_object_set_new(r, "width", json_integer(vt[i].width));
        json_object_set_new(r, "height", json_integer(vt[i].height));
        char codecs[96];
        snprintf(codecs, sizeof(codecs), "%s%s%s", vt[i].codecs, adef >= 0 ? "," : "",
                 adef >= 0 ? at[adef].codecs : "");
        json_object_set_new(r, "codecs", json_string(codecs));
        json_object_set_new(r, "bandwidth", json_integer(pkg_peak_bps(&vt[i]) + apeak));
        json_object_set_new(r, "average_bandwidth", json_integer(pkg_avg_bps(&vt[i]) + aavg));
        json_object_set_new(r, "video_bitrate_avg", json_integer(pkg_avg_bps(&vt[i])));
        json_object_set_new(r, "video_bitrate_peak", json_integer(pkg_peak_bps(&vt[i])));
        json_object_set_new(r, "maxrate_kbps", json_integer(g->p.maxrate_kbps));
        if (two_pass)
            json_object_set_new(r, "target_kbps", json_integer(g->p.target_kbps));
        else if (g->codec_id && !strcmp(g->codec_id, "av1") && g->p.av1_crf > 0)   /* per-title */
            json_object_set_new(r, "crf", json_real(g->p.av1_crf));
        else if (g->p.crf_exact > 0)
            json_object_set_new(r, "crf", json_real(g->p.crf_exact));
        else
            json_object_set_new(r, "crf", json_integer(g->p.crf));
        if (j->pt_report) {
            size_t k;
            json_t *x;
            json_array_foreach(json_object_get(j->pt_report, "rungs"), k, x) {
                if (strcmp(json_string_value(json_object_get(x, "name")), g->p.name))
                    continue;
                if (two_pass)
                    json_object_set(r, "crf_per_title", json_object_get(x, "crf"));
                json_object_set(r, "predicted_psnr", json_object_get(x, "predicted_psnr"));
                json_object_set(r, "predicted_ssim", json_object_get(x, "predicted_ssim"));
                json_object_set(r, "why", json_object_get(x, "why"));
            }
        }
        json_object_set_new(r, "level", json_integer(g->p.level));
        json_object_set_new(r, "video_bitrate_es",
                            json_integer(duration > 0 ? (json_int_t)llround(g->es_bytes * 8 / duration) : 0));
        if (g->measured) {
            int nq = g->nq;
            double psnr = nq ? q_psnr(g->mse_sum / nq) : 0, ssim = nq ? g->ssim_sum / nq : 0;
            json_object_set_new(r, "psnr", nq ? json_real(round(psnr * 1000) / 1000) : json_null());
            json_object_set_new(r, "ssim", nq ? json_real(round(ssim * 100000) / 100000) : json_null());
            json_object_set_new(r, "quality_frames", json_integer(nq));
        }
        json_object_set_new(r, "bytes", json_integer(g->bytes));
        json_object_set_new(r, "frames", json_integer(g->frames));
        json_object_set_new(r, "duration", json_real(duration));
        json_object_set_new(r, "playlist", j->o->hls ? json_string(pl) : json_null());
        json_object_set_new(r, "iframe_playlist", j->o->hls ? json_string(ipl) : json_null());
        json_array_append_new(rs, r);
    }
    json_object_set_new(res, "renditions", rs);
    json_t *tracks = json_array();
    for (int i = 0; i < na; i++)
        json_array_append_new(tracks, audio_json(j, rec, i));
    /* "audio": the default stereo rendition, as before there were several */
    json_object_set_new(res, "audio", adef >= 0 ? json_copy(json_array_get(tracks, (size_t)adef))
                                                : json_null());
    json_object_set_new(res, "audio_tracks", tracks);
    json_object_set_new(res, "duration", json_real(round(duration * 1000) / 1000));
    json_object_set_new(res, "frame_rate", !rec->n ? json_null()
                        : json_real(round((double)j->fps_num / j->fps_den * 1000) / 1000));
    json_object_set_new(res, "rate_control", json_string(two_pass ? "two-pass" : "capped-crf"));
    json_object_set_new(res, "ladder", json_string(j->o->ladder == MEDIA_LADDER_PER_TITLE ? "per-title"
                                                   : j->o->ladder == MEDIA_LADDER_EXPLICIT ? "explicit"
                                                                                           : "auto"));
    if (j->pt_report)
        json_object_set(res, "per_title", j->pt_report);
    json_object_set_new(res, "segment_seconds", json_real((double)j->seg_num / j->seg_den));
    json_object_set_new(res, "segment_count", json_integer(nseg));
    json_object_set_new(res, "master", j->o->hls ? json_string("master.m3u8") : json_null());
    json_object_set_new(res, "dash", j->o->dash ? json_string("manifest.mpd") : json_null());
    json_object_set_new(res, "subtitles", subarr);
    if (j->q_nsegs > 0) {
        json_t *segs = json_array();
        for (int i = 0; i < j->q_nsegs; i++)
            json_array_append_new(segs, json_integer(j->q_segs[i]));
        json_object_set_new(res, "quality",
                            json_pack("{s:i, s:i, s:o, s:i, s:s}", "width", j->qref_w, "height",
                                      j->qref_h, "segments", segs, "frame_step", j->q_fstep,
                                      "method",
                                      "luma PSNR (of the mean MSE) and SSIM (8x8 windows) of the "
                                      "decoded output scaled (bicubic) to the display size, "
                                      "against the pre-filtered source at that size; frames "
                                      "frame_step/2, +frame_step, ... of the listed segments"));
    }
    else
        json_object_set_new(res, "quality", json_null());
    return 0;
fail:
    json_decref(subarr);
    return -1;
}