/* subs.c — text subtitle streams to WebVTT files (mediai.h).
 *
 * Each text stream (subrip, ass/ssa, mov_text, webvtt, text) is decoded with
 * avcodec_decode_subtitle2; the ASS event text libavcodec produces is turned
 * into plain cue text (override tags {...} removed, \N -> line break, <, >
 * and & escaped) and written by our own WebVTT writer, times relative to
 * the video start. The file is subtitles/<language or trackN>.vtt; the
 * manifests reference it as a single segment. */
#include "mediai.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_CUES 100000
#define MAX_TEXT 4096

typedef struct cue {
    double start, end;
    char *text;
} cue;

typedef struct track {
    int stream;
    AVCodecContext *dec;
    char name[32], lang[16];
    cue *cues;
    int n, sz;
    int errors;
} track;

struct subs {
    AVFormatContext *ic;
    double t0;
    track t[PROBE_MAX_SUBS];
    int nt;
    void (*warn)(void *ud, const char *msg);
    void *ud;
};

subs *subs_new(AVFormatContext *ic, const probe_info *pi, double t0,
               void (*warn)(void *ud, const char *msg), void *ud)
{
    subs *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ic = ic;
    s->t0 = t0;
    s->warn = warn;
    s->ud = ud;
    for (int i = 0; i < pi->nsubs; i++) {
        AVStream *st = ic->streams[pi->sub_idx[i]];
        const AVCodec *c = avcodec_find_decoder(st->codecpar->codec_id);
        AVCodecContext *d = c ? avcodec_alloc_context3(c) : NULL;
        if (!d || avcodec_parameters_to_context(d, st->codecpar) < 0) {
            avcodec_free_context(&d);
            continue;
        }
        d->pkt_timebase = st->time_base;
        if (avcodec_open2(d, c, NULL) < 0) {
            char m[128];
            snprintf(m, sizeof(m), "subtitle stream #%d (%s) skipped: decoder would not open",
                     pi->sub_idx[i], avcodec_get_name(st->codecpar->codec_id));
            if (warn)
                warn(ud, m);
            avcodec_free_context(&d);
            continue;
        }
        track *t = &s->t[s->nt++];
        t->stream = pi->sub_idx[i];
        t->dec = d;
        AVDictionaryEntry *l = av_dict_get(st->metadata, "language", NULL, 0);
        if (l && strcmp(l->value, "und")) {
            size_t k = 0;
            for (const char *p = l->value; *p && k + 1 < sizeof(t->lang); p++)
                if (isalnum((unsigned char)*p) || *p == '-')
                    t->lang[k++] = (char)tolower((unsigned char)*p);
            t->lang[k] = '\0';
        }
        snprintf(t->name, sizeof(t->name), "%s", t->lang[0] ? t->lang : "track");
        int dup = !t->lang[0];
        for (int k = 0; k < s->nt - 1; k++)
            if (!strcmp(s->t[k].lang, t->lang))
                dup = 1;
        if (dup) {
            char nm[40];
            snprintf(nm, sizeof(nm), "%.15s%s%d", t->name, t->lang[0] ? "-" : "", t->stream);
            ss_strlcpy(t->name, nm, sizeof(t->name));
        }
    }
    return s;
}

/* ASS event line ("ReadOrder,Layer,Style,...,Effect,Text") or plain text
 * -> WebVTT cue payload. */
static char *cue_text(const char *ass, int is_ass)
{
    const char *p = ass;
    if (is_ass)
        for (int commas = 0; *p && commas < 8; p++)
            if (*p == ',')
                commas++;
    size_t n = strlen(p);
    if (n > MAX_TEXT)
        n = MAX_TEXT;
    char *o = malloc(n * 5 + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '{') {
            const char *e = memchr(p + i, '}', n - i);
            if (e) {
                i = (size_t)(e - p);
                continue;
            }
        }
        if (c == '\\' && i + 1 < n && (p[i + 1] == 'N' || p[i + 1] == 'n')) {
            o[k++] = '\n';
            i++;
        } else if (c == '\\' && i + 1 < n && p[i + 1] == 'h') {
            o[k++] = ' ';
            i++;
        } else if (c == '&') {
            memcpy(o + k, "&amp;", 5);
            k += 5;
        } else if (c == '<') {
            memcpy(o + k, "&lt;", 4);
            k += 4;
        } else if (c == '>') {
            memcpy(o + k, "&gt;", 4);
            k += 4;
        } else if (c == '\r') {
            continue;
        } else {
            o[k++] = c;
        }
    }
    /* no blank lines inside a cue, none at the end */
    o[k] = '\0';
    char *w = o;
    for (char *r = o; *r; r++) {
        if (*r == '\n' && (w == o || w[-1] == '\n'))
            continue;
        *w++ = *r;
    }
    while (w > o && (w[-1] == '\n' || w[-1] == ' '))
        w--;
    *w = '\0';
    return o;
}

void subs_feed(subs *s, const AVPacket *pkt)
{
    track *t = NULL;
    for (int i = 0; i < s->nt; i++)
        if (s->t[i].stream == pkt->stream_index)
            t = &s->t[i];
    if (!t || t->n >= MAX_CUES)
        return;
    AVStream *st = s->ic->streams[t->stream];
    AVSubtitle sub;
    int got = 0;
    AVPacket *p = av_packet_clone(pkt);
    if (!p)
        return;
    int r = avcodec_decode_subtitle2(t->dec, &sub, &got, p);
    av_packet_free(&p);
    if (r < 0) {
        t->errors++;
        return;
    }
    if (!got)
        return;
    int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    if (ts == AV_NOPTS_VALUE) {
        avsubtitle_free(&sub);
        return;
    }
    double base = ts * av_q2d(st->time_base) - s->t0;
    double start = base + sub.start_display_time / 1000.0;
    double end;
    if (sub.end_display_time > 0 && sub.end_display_time != UINT32_MAX)
        end = base + sub.end_display_time / 1000.0;
    else if (pkt->duration > 0)
        end = base + pkt->duration * av_q2d(st->time_base);
    else
        end = start + 3.0;
    if (start < 0)
        start = 0;
    for (unsigned i = 0; i < sub.num_rects && end > start; i++) {
        AVSubtitleRect *rc = sub.rects[i];
        const char *txt = rc->type == SUBTITLE_ASS ? rc->ass : rc->type == SUBTITLE_TEXT ? rc->text : NULL;
        if (!txt)
            continue;
        char *c = cue_text(txt, rc->type == SUBTITLE_ASS);
        if (!c || !c[0]) {
            free(c);
            continue;
        }
        if (t->n == t->sz) {
            int nsz = t->sz ? t->sz * 2 : 64;
            cue *q = realloc(t->cues, (size_t)nsz * sizeof(*q));
            if (!q) {
                free(c);
                break;
            }
            t->cues = q;
            t->sz = nsz;
        }
        t->cues[t->n++] = (cue){ start, end, c };
    }
    avsubtitle_free(&sub);
}

static int cue_cmp(const void *a, const void *b)
{
    const cue *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void vtt_time(char *out, size_t n, double t)
{
    long ms = (long)(t * 1000 + 0.5);
    snprintf(out, n, "%02ld:%02ld:%02ld.%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
             ms % 1000);
}

int subs_finish(subs *s, const char *outdir, const media_events *ev, pkg_text *texts, int max,
                json_t *arr, double end, ss_err *err)
{
    int n = 0;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/subtitles", outdir);
    for (int i = 0; i < s->nt && n < max; i++) {
        track *t = &s->t[i];
        /* Cues after the video's end never show (the output ends there; a
         * damaged timestamp put one 31 years on): drop them, cut the rest
         * at the end. */
        int had = t->n, kept = 0;
        for (int c = 0; c < t->n; c++) {
            if (t->cues[c].start >= end) {
                free(t->cues[c].text);
                continue;
            }
            if (t->cues[c].end > end)
                t->cues[c].end = end;
            t->cues[kept++] = t->cues[c];
        }
        t->n = kept;
        if (kept > 0 && kept < had) {
            char m[128];
            snprintf(m, sizeof(m), "subtitle stream #%d: %d cue(s) after the video's end dropped",
                     t->stream, had - kept);
            if (s->warn)
                s->warn(s->ud, m);
        }
        if (t->n == 0) {
            char m[128];
            snprintf(m, sizeof(m), "subtitle stream #%d has no cues%s: skipped", t->stream,
                     had ? " before the video's end" : "");
            if (s->warn)
                s->warn(s->ud, m);
            continue;
        }
        qsort(t->cues, (size_t)t->n, sizeof(cue), cue_cmp);
        size_t cap = 16, len = 0;
        for (int k = 0; k < t->n; k++)
            cap += strlen(t->cues[k].text) + 64;
        char *buf = malloc(cap);
        if (!buf)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        len += (size_t)snprintf(buf, cap, "WEBVTT\n\n");
        for (int k = 0; k < t->n; k++) {
            char a[32], b[32];
            vtt_time(a, sizeof(a), t->cues[k].start);
            vtt_time(b, sizeof(b), t->cues[k].end);
            len += (size_t)snprintf(buf + len, cap - len, "%s --> %s\n%s\n\n", a, b, t->cues[k].text);
        }
        if (ss_mkdir_p(dir, err)) {
            free(buf);
            return -1;
        }
        char name[48];
        snprintf(name, sizeof(name), "%s.vtt", t->name);
        int r = media_write_file(dir, "subtitles", name, buf, len, ev, err);
        free(buf);
        if (r)
            return -1;
        pkg_text *x = &texts[n++];
        memset(x, 0, sizeof(*x));
        snprintf(x->name, sizeof(x->name), "%s", t->name);
        snprintf(x->lang, sizeof(x->lang), "%s", t->lang);
        snprintf(x->label, sizeof(x->label), "%s", t->lang[0] ? t->lang : t->name);
        char vtt[80], pl[80];
        snprintf(vtt, sizeof(vtt), "subtitles/%s.vtt", t->name);
        snprintf(pl, sizeof(pl), "subtitles/%s.m3u8", t->name);
        json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s, s:i}", "name", t->name,
                                             "language", t->lang[0] ? t->lang : NULL, "vtt", vtt,
                                             "playlist", pl, "cues", t->n));
    }
    return n;
}

void subs_free(subs **sp)
{
    subs *s = *sp;
    if (!s)
        return;
    for (int i = 0; i < s->nt; i++) {
        for (int k = 0; k < s->t[i].n; k++)
            free(s->t[i].cues[k].text);
        free(s->t[i].cues);
        avcodec_free_context(&s->t[i].dec);
    }
    free(s);
    *sp = NULL;
}
