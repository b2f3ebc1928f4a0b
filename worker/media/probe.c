/* probe.c — open the source, choose its streams, collect the facts that go
 * into result["source"], and enforce the configured limits (mediai.h).
 *
 * Stream choice: video = the first decodable video stream with the default
 * disposition, else the first decodable one (cover art is never chosen);
 * audio = likewise among decodable audio streams, and every decodable
 * audio stream is listed with its language (BCP 47), title, default
 * disposition, channels and role; subtitles = every text subtitle stream
 * (subrip, ass/ssa, mov_text, webvtt, text). Orientation (rotation and
 * mirroring) comes from the display matrix, HDR (PQ, HLG) from the video
 * stream's transfer. */
#include "mediai.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libavutil/pixdesc.h>

#include "util.h"

void media_averr(int averr, char *buf, size_t n)
{
    av_strerror(averr, buf, n);
    if (buf[0])
        buf[0] = (char)tolower((unsigned char)buf[0]);
}

static int is_text_sub(enum AVCodecID id)
{
    return id == AV_CODEC_ID_SUBRIP || id == AV_CODEC_ID_SRT || id == AV_CODEC_ID_ASS ||
           id == AV_CODEC_ID_SSA || id == AV_CODEC_ID_MOV_TEXT || id == AV_CODEC_ID_WEBVTT ||
           id == AV_CODEC_ID_TEXT;
}

static void stream_orientation(const AVStream *st, int *rotation, int *mirror)
{
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    plan_orientation((const int32_t *)m, rotation, mirror);
}

/* The role of an audio stream from its disposition (DASH's role scheme). */
static const char *audio_role(int disp)
{
    if (disp & (AV_DISPOSITION_DESCRIPTIONS | AV_DISPOSITION_VISUAL_IMPAIRED))
        return "description";
    if (disp & AV_DISPOSITION_COMMENT)
        return "commentary";
    if (disp & AV_DISPOSITION_DUB)
        return "dub";
    return "main";
}

static void audio_fill(probe_audio *a, const AVStream *st)
{
    a->idx = st->index;
    snprintf(a->codec, sizeof(a->codec), "%s", avcodec_get_name(st->codecpar->codec_id));
    a->channels = st->codecpar->ch_layout.nb_channels;
    a->sample_rate = st->codecpar->sample_rate;
    AVDictionaryEntry *l = av_dict_get(st->metadata, "language", NULL, 0);
    if (l && strcmp(l->value, "und") && strlen(l->value) < sizeof(a->lang))
        pkg_lang_tag(l->value, a->lang, sizeof(a->lang));
    AVDictionaryEntry *t = av_dict_get(st->metadata, "title", NULL, 0);
    if (t)
        ss_utf8_cut(a->title, sizeof(a->title), t->value);
    a->is_default = !!(st->disposition & AV_DISPOSITION_DEFAULT);
    a->role = audio_role(st->disposition);
}

static const char *field_name(enum AVFieldOrder f)
{
    switch (f) {
    case AV_FIELD_PROGRESSIVE: return "progressive";
    case AV_FIELD_TT: return "tt";
    case AV_FIELD_BB: return "bb";
    case AV_FIELD_TB: return "tb";
    case AV_FIELD_BT: return "bt";
    default: return "unknown";
    }
}

static void mb(char *out, size_t n, int64_t bytes)
{
    snprintf(out, n, "%.1f MB", bytes / 1e6);
}

/* ---- a source through media_io (AVIOContext callbacks) ---- */

typedef struct io_pos {
    const media_io *io;
    int64_t pos;
} io_pos;

static int io_read(void *opaque, uint8_t *buf, int len)
{
    io_pos *p = opaque;
    int n = p->io->read(p->io->ud, p->pos, buf, len);
    if (n < 0)
        return AVERROR(EIO);
    if (n == 0)
        return AVERROR_EOF;
    p->pos += n;
    return n;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
    io_pos *p = opaque;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return p->io->size;
    case SEEK_SET:
        p->pos = off;
        break;
    case SEEK_CUR:
        p->pos += off;
        break;
    case SEEK_END:
        p->pos = p->io->size + off;
        break;
    default:
        return AVERROR(EINVAL);
    }
    return p->pos;
}

void media_close_input(AVFormatContext **icp)
{
    AVFormatContext *ic = *icp;
    if (!ic)
        return;
    AVIOContext *pb = (ic->flags & AVFMT_FLAG_CUSTOM_IO) ? ic->pb : NULL;
    avformat_close_input(icp);
    if (pb) {
        av_free(pb->opaque);
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
}

/* An input context reading through io (its AVIOContext freed by
 * media_close_input). */
static int io_input(const media_io *io, AVFormatContext **icp, ss_err *err)
{
    AVFormatContext *ic = avformat_alloc_context();
    io_pos *p = av_mallocz(sizeof(*p));
    uint8_t *buf = av_malloc(64 << 10);
    AVIOContext *pb = ic && p && buf ? avio_alloc_context(buf, 64 << 10, 0, p, io_read, NULL, io_seek)
                                     : NULL;
    if (!pb) {
        av_free(p);
        av_free(buf);
        avformat_free_context(ic);
        return ss_fail(err, SS_ENOMEM, "out of memory");
    }
    p->io = io;
    ic->pb = pb;
    ic->flags |= AVFMT_FLAG_CUSTOM_IO;
    *icp = ic;
    return 0;
}

int probe_open(const char *src, const media_opts *o, AVFormatContext **icp, probe_info *pi,
               ss_err *err)
{
    memset(pi, 0, sizeof(*pi));
    pi->vidx = pi->aidx = -1;
    *icp = NULL;
    struct stat sb;
    if (o->io) {
        memset(&sb, 0, sizeof(sb));
        sb.st_mode = S_IFREG;
        sb.st_size = (off_t)o->io->size;
    } else if (stat(src, &sb) != 0) {
        return ss_fail(err, SS_ENOTFOUND, "source file not found: %s", src);
    }
    if (!S_ISREG(sb.st_mode))
        return ss_fail(err, SS_EMEDIA, "source is not a regular file");
    pi->file_size = sb.st_size;
    if (sb.st_size == 0)
        return ss_fail(err, SS_EMEDIA, "invalid data found when processing input (0-byte file)");
    if (o->max_file_size > 0 && sb.st_size > o->max_file_size) {
        char a[32], b[32];
        mb(a, sizeof(a), sb.st_size);
        mb(b, sizeof(b), o->max_file_size);
        return ss_fail(err, SS_ELIMIT, "source file is %s (%lld bytes), over the limit of %s (%lld bytes)",
                       a, (long long)sb.st_size, b, (long long)o->max_file_size);
    }

    AVFormatContext *ic = NULL;
    char e[128];
    if (o->io && io_input(o->io, &ic, err))
        return -1;
    AVIOContext *own_pb = o->io ? ic->pb : NULL;
    int r = avformat_open_input(&ic, src, NULL, NULL);
    if (r < 0) {
        /* a failed open frees ic but not a caller's AVIOContext */
        if (own_pb) {
            av_free(own_pb->opaque);
            av_freep(&own_pb->buffer);
            avio_context_free(&own_pb);
        }
        media_averr(r, e, sizeof(e));
        if (o->io && o->io->message && o->io->message(o->io->ud)[0])
            return ss_fail(err, SS_ENET, "cannot read the source: %s", o->io->message(o->io->ud));
        return ss_fail(err, SS_EMEDIA, "cannot open the source: %s", e);
    }
    r = avformat_find_stream_info(ic, NULL);
    if (r < 0) {
        media_averr(r, e, sizeof(e));
        media_close_input(&ic);
        return ss_fail(err, SS_EMEDIA, "cannot read the source's streams: %s", e);
    }

    int vfirst = -1, vdef = -1, afirst = -1, adef = -1;
    pi->cover_idx = -1;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        AVStream *st = ic->streams[i];
        AVCodecParameters *cp = st->codecpar;
        int dec = avcodec_find_decoder(cp->codec_id) != NULL;
        if (cp->codec_type == AVMEDIA_TYPE_VIDEO && dec && cp->width > 0 && cp->height > 0 &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            if (vfirst < 0)
                vfirst = (int)i;
            if (vdef < 0 && (st->disposition & AV_DISPOSITION_DEFAULT))
                vdef = (int)i;
        } else if (cp->codec_type == AVMEDIA_TYPE_AUDIO && dec && cp->ch_layout.nb_channels > 0 &&
                   cp->sample_rate > 0) {
            pi->naudio++;
            if (pi->nau < PROBE_MAX_AUDIO)
                audio_fill(&pi->audio[pi->nau++], st);
            if (afirst < 0)
                afirst = (int)i;
            if (adef < 0 && (st->disposition & AV_DISPOSITION_DEFAULT))
                adef = (int)i;
        } else if (cp->codec_type == AVMEDIA_TYPE_VIDEO && dec && cp->width > 0 &&
                   (st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            if (pi->cover_idx < 0)
                pi->cover_idx = (int)i;
        } else if (cp->codec_type == AVMEDIA_TYPE_SUBTITLE) {
            if (is_text_sub(cp->codec_id) && dec && pi->nsubs < PROBE_MAX_SUBS)
                pi->sub_idx[pi->nsubs++] = (int)i;
            else
                pi->nbitmap_subs++;
        }
    }
    pi->vidx = vdef >= 0 ? vdef : vfirst;
    pi->aidx = adef >= 0 ? adef : afirst;
    snprintf(pi->container, sizeof(pi->container), "%s", ic->iformat->name);
    if (ic->duration > 0)
        pi->duration = ic->duration / (double)AV_TIME_BASE;
    if (pi->vidx < 0 && pi->aidx < 0) {
        media_close_input(&ic);
        return ss_fail(err, SS_EMEDIA, "no decodable video or audio stream");
    }
    if (pi->vidx < 0) {   /* a podcast, a music file: audio renditions only */
        pi->audio_only = 1;
        AVStream *as = ic->streams[pi->aidx];
        snprintf(pi->acodec, sizeof(pi->acodec), "%s", avcodec_get_name(as->codecpar->codec_id));
        pi->channels = as->codecpar->ch_layout.nb_channels;
        pi->sample_rate = as->codecpar->sample_rate;
        snprintf(pi->pix_fmt, sizeof(pi->pix_fmt), "none");
        snprintf(pi->field_order, sizeof(pi->field_order), "unknown");
        snprintf(pi->vcodec, sizeof(pi->vcodec), "none");
        pi->sar_num = pi->sar_den = 1;
        if (o->max_duration > 0 && pi->duration > o->max_duration) {
            media_close_input(&ic);
            return ss_fail(err, SS_ELIMIT, "source is %.1f s long, over the limit of %.0f s",
                           pi->duration, o->max_duration);
        }
        *icp = ic;
        return 0;
    }

    AVStream *vs = ic->streams[pi->vidx];
    AVCodecParameters *vp = vs->codecpar;
    pi->width = vp->width;
    pi->height = vp->height;
    AVRational sar = av_guess_sample_aspect_ratio(ic, vs, NULL);
    if (sar.num > 0 && sar.den > 0) {
        av_reduce(&pi->sar_num, &pi->sar_den, sar.num, sar.den, 1 << 16);
    } else {
        pi->sar_num = pi->sar_den = 1;
    }
    stream_orientation(vs, &pi->rotation, &pi->mirror);
    pi->color_trc = vp->color_trc;
    pi->color_primaries = vp->color_primaries;
    pi->colorspace = vp->color_space;
    pi->hdr = plan_hdr_of(vp->color_trc);
    double dw = pi->width * (double)pi->sar_num / pi->sar_den;
    pi->dw = dw < (1 << 30) ? (int)lround(dw) : 1 << 30;   /* a damaged aspect: the limits refuse it */
    pi->dh = pi->height;
    if (pi->rotation == 90 || pi->rotation == 270) {
        int t = pi->dw;
        pi->dw = pi->dh;
        pi->dh = t;
    }
    pi->fps_avg = vs->avg_frame_rate.den > 0 ? av_q2d(vs->avg_frame_rate) : 0;
    pi->fps_r = vs->r_frame_rate.den > 0 ? av_q2d(vs->r_frame_rate) : 0;
    const AVPixFmtDescriptor *pd = av_pix_fmt_desc_get((enum AVPixelFormat)vp->format);
    snprintf(pi->pix_fmt, sizeof(pi->pix_fmt), "%s", pd ? pd->name : "unknown");
    pi->bit_depth = pd ? pd->comp[0].depth : 0;
    snprintf(pi->field_order, sizeof(pi->field_order), "%s", field_name(vp->field_order));
    pi->interlaced = vp->field_order != AV_FIELD_PROGRESSIVE && vp->field_order != AV_FIELD_UNKNOWN;
    snprintf(pi->vcodec, sizeof(pi->vcodec), "%s", avcodec_get_name(vp->codec_id));
    if (vs->duration > 0 && vs->duration != AV_NOPTS_VALUE)
        pi->vduration = vs->duration * av_q2d(vs->time_base);
    if (pi->duration <= 0)
        pi->duration = pi->vduration;

    if (pi->aidx >= 0) {
        AVStream *as = ic->streams[pi->aidx];
        snprintf(pi->acodec, sizeof(pi->acodec), "%s", avcodec_get_name(as->codecpar->codec_id));
        pi->channels = as->codecpar->ch_layout.nb_channels;
        pi->sample_rate = as->codecpar->sample_rate;
        AVDictionaryEntry *l = av_dict_get(as->metadata, "language", NULL, 0);
        if (l && strcmp(l->value, "und") && strlen(l->value) < sizeof(pi->alang))
            snprintf(pi->alang, sizeof(pi->alang), "%s", l->value);
    }

    if (o->max_pixels > 0 && (int64_t)pi->width * pi->height > o->max_pixels) {
        media_close_input(&ic);
        return ss_fail(err, SS_ELIMIT,
                       "source picture %dx%d (%lld pixels) is over the limit of %lld pixels",
                       pi->width, pi->height, (long long)pi->width * pi->height,
                       (long long)o->max_pixels);
    }
    /* the renditions are planned at the display size: a pixel aspect ratio
     * can make that far larger than the coded picture */
    if (o->max_pixels > 0 && (int64_t)pi->dw * pi->dh > o->max_pixels) {
        media_close_input(&ic);
        return ss_fail(err, SS_ELIMIT,
                       "source picture %dx%d displays at %dx%d (pixel aspect %d:%d; %lld pixels), "
                       "over the limit of %lld pixels", pi->width, pi->height, pi->dw, pi->dh,
                       pi->sar_num, pi->sar_den, (long long)pi->dw * pi->dh,
                       (long long)o->max_pixels);
    }
    if (o->max_duration > 0 && pi->duration > o->max_duration) {
        media_close_input(&ic);
        return ss_fail(err, SS_ELIMIT, "source is %.1f s long, over the limit of %.0f s",
                       pi->duration, o->max_duration);
    }
    *icp = ic;
    return 0;
}

static int lang_matches(const char *want, const char *have)
{
    char w[16];
    pkg_lang_tag(want, w, sizeof(w));
    if (!have[0])
        return 0;
    size_t n = strlen(w);
    return !strcasecmp(w, have) || (!strchr(w, '-') && !strncasecmp(w, have, n) && have[n] == '-');
}

int probe_pick_audio(const probe_info *pi, const media_opts *o, int *sel, int max)
{
    int n = 0, def = -1;
    for (int i = 0; i < pi->nau; i++)
        if (pi->audio[i].idx == pi->aidx)
            def = i;
    if (def < 0 || max < 1)
        return 0;
    for (int i = 0; i < pi->nau && n < max; i++) {
        int take = o->audio_mode == MEDIA_AUDIO_ALL;
        for (int k = 0; o->audio_mode == MEDIA_AUDIO_LIST && k < o->naudio_sel && !take; k++) {
            const media_audio_sel *q = &o->audio_sel[k];
            take = q->lang[0] ? lang_matches(q->lang, pi->audio[i].lang) : q->index == i;
        }
        if (take)
            sel[n++] = i;
    }
    if (!n)
        sel[n++] = def;
    return n;
}

json_t *probe_json(const probe_info *pi)
{
    json_t *s = json_object();
    json_object_set_new(s, "container", json_string(pi->container));
    json_object_set_new(s, "file_size", json_integer(pi->file_size));
    json_object_set_new(s, "duration", pi->duration > 0 ? json_real(pi->duration) : json_null());
    json_object_set_new(s, "width", json_integer(pi->width));
    json_object_set_new(s, "height", json_integer(pi->height));
    json_object_set_new(s, "display_width", json_integer(pi->dw));
    json_object_set_new(s, "display_height", json_integer(pi->dh));
    int g = pi->dw, b = pi->dh;
    while (b) {
        int t = g % b;
        g = b;
        b = t;
    }
    char dar[32];
    snprintf(dar, sizeof(dar), "%d:%d", g ? pi->dw / g : 0, g ? pi->dh / g : 0);
    json_object_set_new(s, "display_aspect", json_string(dar));
    char sar[32];
    snprintf(sar, sizeof(sar), "%d:%d", pi->sar_num, pi->sar_den);
    json_object_set_new(s, "sample_aspect", json_string(sar));
    json_object_set_new(s, "rotation", json_integer(pi->rotation));
    json_object_set_new(s, "mirrored", json_boolean(pi->mirror));
    const char *hdr = plan_hdr_name(pi->hdr);
    json_object_set_new(s, "hdr", hdr ? json_string(hdr) : json_null());
    json_object_set_new(s, "fps_avg", json_real(round(pi->fps_avg * 1000) / 1000));
    json_object_set_new(s, "fps_r", json_real(round(pi->fps_r * 1000) / 1000));
    json_object_set_new(s, "pix_fmt", json_string(pi->pix_fmt));
    json_object_set_new(s, "bit_depth", json_integer(pi->bit_depth));
    json_object_set_new(s, "interlaced", json_boolean(pi->interlaced));
    json_object_set_new(s, "field_order", json_string(pi->field_order));
    json_object_set_new(s, "video_codec", pi->audio_only ? json_null() : json_string(pi->vcodec));
    json_object_set_new(s, "audio_only", json_boolean(pi->audio_only));
    if (pi->aidx >= 0) {
        json_object_set_new(s, "audio_codec", json_string(pi->acodec));
        json_object_set_new(s, "audio_channels", json_integer(pi->channels));
        json_object_set_new(s, "audio_sample_rate", json_integer(pi->sample_rate));
        if (pi->alang[0])
            json_object_set_new(s, "audio_language", json_string(pi->alang));
    } else {
        json_object_set_new(s, "audio_codec", json_null());
    }
    json_object_set_new(s, "audio_streams", json_integer(pi->naudio));
    json_t *tracks = json_array();
    for (int i = 0; i < pi->nau; i++) {
        const probe_audio *a = &pi->audio[i];
        json_t *t = json_object();
        json_object_set_new(t, "index", json_integer(a->idx));
        json_object_set_new(t, "codec", json_string(a->codec));
        json_object_set_new(t, "channels", json_integer(a->channels));
        json_object_set_new(t, "sample_rate", json_integer(a->sample_rate));
        json_object_set_new(t, "language", a->lang[0] ? json_string(a->lang) : json_null());
        if (a->title[0])
            json_object_set_new(t, "title", json_string(a->title));
        json_object_set_new(t, "default", json_boolean(a->is_default));
        json_object_set_new(t, "role", json_string(a->role));
        json_array_append_new(tracks, t);
    }
    json_object_set_new(s, "audio_tracks", tracks);
    json_object_set_new(s, "subtitle_streams", json_integer(pi->nsubs));
    return s;
}
