/* rung.c — one rung of the ladder on its own thread: frames from the
 * shared pre-filter (through its frame queue), scaled to the rung's size,
 * encoded (encoder.h), cut into CMAF segments on the segment grid, and the
 * measured segments' quality sampled.
 *
 * Keyframes: the rung forces an IDR at the first frame whose time is >=
 * k * segment_seconds (plan_boundary_frame) and cuts a segment there, so
 * GOPs are closed and aligned across rungs. */
#include "stage.h"

#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>

#include <libswscale/swscale.h>

#include "log.h"
#include "util.h"

int enc_alloc(const enc_settings *s, const char *lib, const AVCodec **codec, AVCodecContext **out,
              ss_err *err)
{
    *out = NULL;
    if (!(*codec = avcodec_find_encoder_by_name(lib)))
        return ss_fail(err, SS_EINTERNAL, "%s encoder not available", lib);
    AVCodecContext *c = *out = avcodec_alloc_context3(*codec);
    if (!c)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    c->width = s->width;
    c->height = s->height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){ s->fps_den, s->fps_num };
    c->framerate = (AVRational){ s->fps_num, s->fps_den };
    c->sample_aspect_ratio = (AVRational){ 1, 1 };
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    c->color_range = AVCOL_RANGE_MPEG;
    if (s->bt709) {
        c->color_primaries = AVCOL_PRI_BT709;
        c->color_trc = AVCOL_TRC_BT709;
        c->colorspace = AVCOL_SPC_BT709;
    } else if (s->color_from) {
        c->color_primaries = s->color_from->color_primaries;
        c->color_trc = s->color_from->color_trc;
        c->colorspace = s->color_from->colorspace;
    }
    return 0;
}

/* encoder.h enc_free: SVT-AV1's process-wide state is set up and torn down
 * under this lock (its own has none). */
static pthread_mutex_t svt_lock = PTHREAD_MUTEX_INITIALIZER;

static int is_svt(const AVCodec *codec)
{
    return codec && !strcmp(codec->name, "libsvtav1");
}

int enc_avopen(AVCodecContext *c, const AVCodec *codec, AVDictionary **d)
{
    if (!is_svt(codec))
        return avcodec_open2(c, codec, d);
    pthread_mutex_lock(&svt_lock);
    int r = avcodec_open2(c, codec, d);
    pthread_mutex_unlock(&svt_lock);
    return r;
}

void enc_free(AVCodecContext **c)
{
    if (*c && is_svt((*c)->codec)) {
        pthread_mutex_lock(&svt_lock);
        avcodec_free_context(c);
        pthread_mutex_unlock(&svt_lock);
    } else {
        avcodec_free_context(c);
    }
}

int enc_open(AVCodecContext *c, const AVCodec *codec, AVDictionary **d, const enc_settings *s,
             const char *lib, ss_err *err)
{
    int r = enc_avopen(c, codec, d);
    av_dict_free(d);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "%s for %s: %s", lib, s->name, e);
    }
    return 0;
}

int rung_open(job *j, rung *g, int threads, ss_err *err)
{
    snprintf(g->stats, sizeof(g->stats), "%s/%s.log", j->stats_dir, g->p.name);
    g->es = (enc_settings){
        .name = g->p.name,
        .width = g->p.width,
        .height = g->p.height,
        .fps_num = j->fps_num,
        .fps_den = j->fps_den,
        .keyint = plan_keyint(j->fps_num, j->fps_den, j->seg_num, j->seg_den),
        .maxrate_kbps = g->p.maxrate_kbps,
        .bufsize_kbits = g->p.bufsize_kbits,
        .target_kbps = g->p.target_kbps,
        .crf = g->p.crf,
        .crf_exact = g->p.crf_exact,
        .codec_crf = g->codec == &enc_svtav1 ? g->p.av1_crf : 0,
        .level = g->p.level,
        .pass = j->pass,
        .stats = g->stats,
        .preset = j->o->preset,
        .scenecut = j->o->ladder == MEDIA_LADDER_PER_TITLE,
        .stitchable = j->mode == STAGE_CHUNK,
        .threads = threads,
        .color_from = j->vdec,
        .bt709 = j->pi.hdr != PLAN_HDR_NONE,
    };
    if (!g->codec)
        g->codec = &enc_x264;
    if (g->codec->restart)
        g->es.pass = 0;   /* two-pass is libx264's: the others run capped CRF */
    if (g->codec->open(&g->es, &g->enc, g->codecs, sizeof(g->codecs), err))
        return -1;
    if (j->pass == 1)
        return 0;   /* first pass: statistics only, packets are dropped */
    if (j->q_nsegs > 0 && !(g->qm = qmeter_new(g->enc, j->qref_w, j->qref_h, err)))
        return -1;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/%s", j->outdir, g->p.name);
    g->cm = cmaf_open(dir, g->p.name, g->enc, j->ev, err);
    if (g->cm && j->mode == STAGE_CHUNK) {
        cmaf_set_base(g->cm, j->range_seg0, j->range_f0);
        if (!j->range_init)
            cmaf_keep_init(g->cm);
    }
    return g->cm ? 0 : -1;
}

static int rung_drain(rung *g, ss_err *err)
{
    job *j = g->j;
    AVPacket *pkt = av_packet_alloc();
    if (!pkt)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int ret = 0;
    for (;;) {
        int r = avcodec_receive_packet(g->enc, pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            break;
        if (r < 0) {
            char e[128];
            media_averr(r, e, sizeof(e));
            ret = ss_fail(err, SS_EINTERNAL, "%s for %s: %s", g->codec->lib, g->p.name, e);
            break;
        }
        int cut = 0;
        if ((pkt->flags & AV_PKT_FLAG_KEY) &&
            pkt->pts >= plan_boundary_frame(g->kcut, j->fps_num, j->fps_den, j->seg_num, j->seg_den)) {
            cut = g->kcut > 0;
            while (plan_boundary_frame(g->kcut, j->fps_num, j->fps_den, j->seg_num, j->seg_den) <=
                   pkt->pts)
                g->kcut++;
        }
        /* A fragment's length is the sum of its samples' durations, the
         * last one's from the packet: libx264 leaves it 0, so with one
         * frame a segment (1 fps, 1 s segments) every fragment lasted 0
         * and the next one started where it did (tfdt 0, 0, 1 s, ...). */
        if (pkt->duration <= 0)
            pkt->duration = 1;
        /* a run that went on into the next chunk: this IDR starts it, the
         * chunk before ends with the cut (chain.c) */
        int chunk_end = cut && g->chunk + 1 < j->chain_n && pkt->pts >= j->chain[g->chunk].f1;
        int64_t es = g->es_bytes;
        if (chunk_end && g->qm && qmeter_drain(g->qm, err)) {
            ret = -1;
            av_packet_unref(pkt);
            break;
        }
        g->es_bytes += pkt->size;
        /* the meter decodes the measured segments (before cmaf_write
         * rescales the timestamps) */
        r = g->qm && job_q_measured(j, g->kcut - 1) ? qmeter_packet(g->qm, pkt, err) : 0;
        if (!r)
            r = g->cm ? cmaf_write(g->cm, pkt, cut, err) : 0;
        if (!r && chunk_end)
            r = chain_rung_end(g, es, err);
        av_packet_unref(pkt);
        if (r) {
            ret = -1;
            break;
        }
    }
    av_packet_free(&pkt);
    return ret;
}

/* A segment boundary for an encoder that cannot be told to key a frame
 * (encoder.h restart): drain it and open it again, the same settings
 * (checked: the same stream headers, so one init segment holds). */
static int rung_restart(rung *g, ss_err *err)
{
    int r = avcodec_send_frame(g->enc, NULL);
    if (r < 0 && r != AVERROR_EOF)
        return ss_fail(err, SS_EINTERNAL, "%s for %s would not flush", g->codec->lib, g->p.name);
    if (rung_drain(g, err))
        return -1;
    AVCodecContext *old = g->enc;
    g->enc = NULL;
    char codecs[sizeof(g->codecs)];
    r = g->codec->open(&g->es, &g->enc, codecs, sizeof(codecs), err);
    if (!r && (old->extradata_size != g->enc->extradata_size ||
               memcmp(old->extradata, g->enc->extradata, (size_t)old->extradata_size)))
        r = ss_fail(err, SS_EINTERNAL, "%s for %s: stream headers changed on a restart",
                    g->codec->lib, g->p.name);
    enc_free(&old);
    return r;
}

static int rung_encode(rung *g, AVFrame *in, ss_err *err)
{
    job *j = g->j;
    AVFrame *f = in;
    AVFrame *scaled = NULL;
    if (in && (in->width != g->p.width || in->height != g->p.height)) {
        if (!g->sws || g->in_w != in->width || g->in_h != in->height) {
            sws_freeContext(g->sws);
            g->sws = sws_getContext(in->width, in->height, in->format, g->p.width, g->p.height,
                                    AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
            g->in_w = in->width;
            g->in_h = in->height;
            if (!g->sws)
                return ss_fail(err, SS_EINTERNAL, "swscale for %s", g->p.name);
        }
        scaled = av_frame_alloc();
        if (!scaled)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        scaled->width = g->p.width;
        scaled->height = g->p.height;
        scaled->format = AV_PIX_FMT_YUV420P;
        if (av_frame_get_buffer(scaled, 0) < 0) {
            av_frame_free(&scaled);
            return ss_fail(err, SS_ENOMEM, "out of memory");
        }
        sws_scale(g->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height,
                  scaled->data, scaled->linesize);
        av_frame_copy_props(scaled, in);
        f = scaled;
    }
    if (f) {
        f->sample_aspect_ratio = (AVRational){ 1, 1 };
        f->pict_type = AV_PICTURE_TYPE_NONE;
        f->key_frame = 0;
        if (f->pts >= plan_boundary_frame(g->kforce, j->fps_num, j->fps_den, j->seg_num,
                                          j->seg_den)) {
            f->pict_type = AV_PICTURE_TYPE_I;
            while (plan_boundary_frame(g->kforce, j->fps_num, j->fps_den, j->seg_num, j->seg_den) <=
                   f->pts)
                g->kforce++;
        }
        g->last_pts = f->pts;
        g->frames++;
        if (g->qm) {
            int64_t seg = g->kforce - 1;
            int64_t off = f->pts - plan_boundary_frame(seg, j->fps_num, j->fps_den, j->seg_num,
                                                       j->seg_den);
            if (job_q_measured(j, seg) && off % j->q_fstep == j->q_fstep / 2 &&
                qmeter_ref(g->qm, in, err)) {
                av_frame_free(&scaled);
                return -1;
            }
        }
    }
    if (f && f->pict_type == AV_PICTURE_TYPE_I && g->frames > 1 && g->codec->restart &&
        rung_restart(g, err)) {
        av_frame_free(&scaled);
        return -1;
    }
    int r = avcodec_send_frame(g->enc, f);
    av_frame_free(&scaled);
    if (r < 0) {
        char e[128];
        media_averr(r, e, sizeof(e));
        return ss_fail(err, SS_EINTERNAL, "%s for %s: %s", g->codec->lib, g->p.name, e);
    }
    return rung_drain(g, err);
}

void *rung_main(void *arg)
{
    rung *g = arg;
    job *j = g->j;
    log_set_job(j->log_job[0] ? j->log_job : NULL);
    ss_err err = { 0 };
    AVFrame *f = NULL;
    int r;
    /* the job's CPU tokens (plan_thread_budget): held while frames are
     * queued (a handoff per frame cost more than small frames take to
     * encode), never while waiting for one */
    int w = j->thb.weight[(g - j->rungs) % (j->lad.n > 0 ? j->lad.n : 1)];
    int held = 0;
    for (;;) {
        if (held && !frameq_ready(&g->q)) {
            job_tokens_give(j, w);
            held = 0;
        }
        if ((r = frameq_get(&g->q, &f, job_stop_cb, j)) <= 0)
            break;
        if (!held)
            job_tokens_take(j, w);
        held = 1;
        int e = rung_encode(g, f, &err);
        av_frame_free(&f);
        if (e) {
            job_tokens_give(j, w);
            job_fail_err(j, &err);
            g->cpu = ss_cpu_s(RUSAGE_THREAD);
            return NULL;
        }
    }
    /* an encoder that got no frame (a chunk past the real end) has
     * nothing to flush; SVT-AV1 would wait for one (rung_release) */
    int flush = g->frames > 0 || !g->codec->restart;
    if (!held)
        job_tokens_take(j, w);
    if (r == 0 && ((flush && rung_encode(g, NULL, &err)) || (g->qm && qmeter_packet(g->qm, NULL, &err)) ||
                   (g->cm && cmaf_finish(g->cm, g->frames ? g->last_pts + 1 : 0, &err))))
        job_fail_err(j, &err);
    job_tokens_give(j, w);
    g->cpu = ss_cpu_s(RUSAGE_THREAD);
    return NULL;
}

/* SVT-AV1 1.4.1 never returns from flushing or closing an encoder that
 * got no frame (svt_av1_enc_deinit waits for a packet; a chunk whose
 * range held no frame hung there): give it one black frame and the end of
 * stream, and throw its output away. */
static void rung_feed_idle(rung *g)
{
    AVFrame *f = av_frame_alloc();
    AVPacket *p = av_packet_alloc();
    if (f && p) {
        f->width = g->enc->width;
        f->height = g->enc->height;
        f->format = g->enc->pix_fmt;
        f->pts = 0;
        if (av_frame_get_buffer(f, 0) >= 0) {
            memset(f->data[0], 16, (size_t)f->linesize[0] * f->height);
            for (int c = 1; c < 3 && f->data[c]; c++)
                memset(f->data[c], 128, (size_t)f->linesize[c] * ((f->height + 1) / 2));
            if (avcodec_send_frame(g->enc, f) >= 0 && avcodec_send_frame(g->enc, NULL) >= 0)
                while (avcodec_receive_packet(g->enc, p) >= 0)
                    av_packet_unref(p);
        }
    }
    av_frame_free(&f);
    av_packet_free(&p);
}

void rung_release(rung *g)
{
    if (g->enc && g->codec && g->codec->restart && g->frames == 0)
        rung_feed_idle(g);
    frameq_destroy(&g->q);
    enc_free(&g->enc);
    sws_freeContext(g->sws);
    g->sws = NULL;
    cmaf_free(&g->cm);
    qmeter_free(&g->qm);
    json_decref(g->snap);
    g->snap = NULL;
}
