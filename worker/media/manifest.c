/* manifest.c — HLS v7 playlists and the DASH MPD from measured values
 * (see manifest.h). Pure: strings in, strings out. */
#include "manifest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 1024);
        while (ncap < b->len + (size_t)n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static char *sb_done(sbuf *b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p)
        return calloc(1, 1);
    return b->p;
}

/* Text safe inside an XML attribute or an HLS quoted string. */
static void sb_quoted(sbuf *b, const char *s, int xml)
{
    for (; *s; s++) {
        if (xml && *s == '&')
            sb_printf(b, "&amp;");
        else if (xml && *s == '<')
            sb_printf(b, "&lt;");
        else if (xml && *s == '>')
            sb_printf(b, "&gt;");
        else if (*s == '"')
            sb_printf(b, xml ? "&quot;" : "'");
        else if ((unsigned char)*s < 0x20)
            sb_printf(b, " ");
        else
            sb_printf(b, "%c", *s);
    }
}

void pkg_lang_tag(const char *iso, char *out, size_t outlen)
{
    static const char *const map[][2] = {
        { "eng", "en" }, { "fre", "fr" }, { "fra", "fr" }, { "ger", "de" }, { "deu", "de" },
        { "spa", "es" }, { "ita", "it" }, { "por", "pt" }, { "rus", "ru" }, { "jpn", "ja" },
        { "chi", "zh" }, { "zho", "zh" }, { "kor", "ko" }, { "ara", "ar" }, { "hin", "hi" },
        { "dut", "nl" }, { "nld", "nl" }, { "swe", "sv" }, { "pol", "pl" }, { "tur", "tr" },
        { "dan", "da" }, { "nor", "no" }, { "fin", "fi" }, { "cze", "cs" }, { "ces", "cs" },
        { "gre", "el" }, { "ell", "el" }, { "heb", "he" }, { "hun", "hu" }, { "ukr", "uk" },
        { "vie", "vi" }, { "tha", "th" }, { "ind", "id" }, { "rum", "ro" }, { "ron", "ro" },
        { "cat", "ca" }, { "bul", "bg" }, { "hrv", "hr" }, { "srp", "sr" }, { "slo", "sk" },
        { "slk", "sk" }, { "per", "fa" }, { "fas", "fa" }, { "may", "ms" }, { "msa", "ms" },
    };
    char low[16];
    size_t n = 0;
    for (; iso[n] && n + 1 < sizeof(low); n++)
        low[n] = (char)(iso[n] >= 'A' && iso[n] <= 'Z' ? iso[n] + 32 : iso[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(low, map[i][0])) {
            snprintf(out, outlen, "%s", map[i][1]);
            return;
        }
    snprintf(out, outlen, "%s", low);
}

double pkg_seg_seconds(const pkg_track *t, int i)
{
    return t->timescale > 0 ? (double)t->segs[i].duration / t->timescale : 0.0;
}

/* The EXTINF value exactly as printed (3 decimals). */
static double extinf(const pkg_track *t, int i)
{
    return round(pkg_seg_seconds(t, i) * 1000.0) / 1000.0;
}

/* A segment's length for its bitrate: the shorter of the exact one and the
 * EXTINF a player reads (a 2-frame segment at 24 fps, 0.0833 s, is
 * "0.083": its bitrate from the playlist is 0.4 % above the exact one, and
 * BANDWIDTH must cover it). */
static double rate_seconds(const pkg_track *t, int i)
{
    double d = pkg_seg_seconds(t, i), e = extinf(t, i);
    return e > 0 && e < d ? e : d;
}

int64_t pkg_peak_bps(const pkg_track *t)
{
    double peak = 0;
    for (int i = 0; i < t->nsegs; i++) {
        double d = rate_seconds(t, i);
        if (d > 0 && t->segs[i].bytes * 8.0 / d > peak)
            peak = t->segs[i].bytes * 8.0 / d;
    }
    return (int64_t)ceil(peak);
}

int64_t pkg_iframe_peak_bps(const pkg_track *t)
{
    double peak = 0;
    for (int i = 0; i < t->nsegs; i++) {
        double d = rate_seconds(t, i);
        if (d > 0 && t->segs[i].iframe_end * 8.0 / d > peak)
            peak = t->segs[i].iframe_end * 8.0 / d;
    }
    return (int64_t)ceil(peak);
}

int64_t pkg_avg_bps(const pkg_track *t)
{
    double bytes = 0, dur = 0;
    for (int i = 0; i < t->nsegs; i++) {
        bytes += (double)t->segs[i].bytes;
        dur += pkg_seg_seconds(t, i);
    }
    return dur > 0 ? (int64_t)ceil(bytes * 8.0 / dur) : 0;
}

int pkg_target_duration(const pkg_track *t)
{
    double mx = 0;
    for (int i = 0; i < t->nsegs; i++)
        if (extinf(t, i) > mx)
            mx = extinf(t, i);
    int td = (int)ceil(mx - 1e-9);
    return td < 1 ? 1 : td;
}

static void media_head(sbuf *b, const pkg_track *t, int iframes)
{
    sb_printf(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n", pkg_target_duration(t));
    sb_printf(b, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    if (iframes)
        sb_printf(b, "#EXT-X-I-FRAMES-ONLY\n");
    sb_printf(b, "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n");
}

char *pkg_hls_media(const pkg_track *t)
{
    sbuf b = { 0 };
    media_head(&b, t, 0);
    for (int i = 0; i < t->nsegs; i++)
        sb_printf(&b, "#EXTINF:%.3f,\nseg_%05d.m4s\n", extinf(t, i), i);
    sb_printf(&b, "#EXT-X-ENDLIST\n");
    return sb_done(&b);
}

char *pkg_hls_iframes(const pkg_track *t)
{
    sbuf b = { 0 };
    media_head(&b, t, 1);
    for (int i = 0; i < t->nsegs; i++)
        sb_printf(&b, "#EXTINF:%.3f,\n#EXT-X-BYTERANGE:%lld@0\nseg_%05d.m4s\n", extinf(t, i),
                  (long long)t->segs[i].iframe_end, i);
    sb_printf(&b, "#EXT-X-ENDLIST\n");
    return sb_done(&b);
}

char *pkg_hls_text(const pkg_text *x, double duration)
{
    sbuf b = { 0 };
    double d = round(duration * 1000.0) / 1000.0;
    int td = (int)ceil(d - 1e-9);
    sb_printf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n", td < 1 ? 1 : td);
    sb_printf(&b, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    sb_printf(&b, "#EXTINF:%.3f,\n%s.vtt\n#EXT-X-ENDLIST\n", d, x->name);
    return sb_done(&b);
}

static void fps_text(char *out, size_t n, int num, int den)
{
    snprintf(out, n, "%.3f", den > 0 ? (double)num / den : 0.0);
}

char *pkg_hls_master(const pkg_set *s)
{
    sbuf b = { 0 };
    sb_printf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n");
    const pkg_track *a = s->audio;
    if (a) {
        sb_printf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"");
        sb_quoted(&b, a->lang[0] ? a->lang : "audio", 0);
        sb_printf(&b, "\",");
        if (a->lang[0]) {
            char tag[16];
            pkg_lang_tag(a->lang, tag, sizeof(tag));
            sb_printf(&b, "LANGUAGE=\"");
            sb_quoted(&b, tag, 0);
            sb_printf(&b, "\",");
        }
        sb_printf(&b, "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s/playlist.m3u8\"\n",
                  a->channels, a->name);
    }
    for (int i = 0; i < s->ntexts; i++) {
        const pkg_text *x = &s->texts[i];
        sb_printf(&b, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"");
        sb_quoted(&b, x->label[0] ? x->label : x->name, 0);
        sb_printf(&b, "\",");
        if (x->lang[0]) {
            char tag[16];
            pkg_lang_tag(x->lang, tag, sizeof(tag));
            sb_printf(&b, "LANGUAGE=\"");
            sb_quoted(&b, tag, 0);
            sb_printf(&b, "\",");
        }
        sb_printf(&b, "DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subtitles/%s.m3u8\"\n", x->name);
    }
    if (a || s->ntexts)
        sb_printf(&b, "\n");
    int64_t apeak = a ? pkg_peak_bps(a) : 0, aavg = a ? pkg_avg_bps(a) : 0;
    for (int i = 0; i < s->nvideo; i++) {
        const pkg_track *v = &s->video[i];
        char fps[32];
        fps_text(fps, sizeof(fps), v->fps_num, v->fps_den);
        sb_printf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%lld,AVERAGE-BANDWIDTH=%lld,CODECS=\"%s%s%s\","
                  "RESOLUTION=%dx%d,FRAME-RATE=%s",
                  (long long)(pkg_peak_bps(v) + apeak), (long long)(pkg_avg_bps(v) + aavg),
                  v->codecs, a ? "," : "", a ? a->codecs : "", v->width, v->height, fps);
        if (a)
            sb_printf(&b, ",AUDIO=\"audio\"");
        if (s->ntexts)
            sb_printf(&b, ",SUBTITLES=\"subs\"");
        sb_printf(&b, "\n%s/playlist.m3u8\n", v->name);
    }
    sb_printf(&b, "\n");
    for (int i = 0; i < s->nvideo; i++) {
        const pkg_track *v = &s->video[i];
        sb_printf(&b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%lld,CODECS=\"%s\",RESOLUTION=%dx%d,"
                  "URI=\"%s/iframes.m3u8\"\n",
                  (long long)pkg_iframe_peak_bps(v), v->codecs, v->width, v->height, v->name);
    }
    return sb_done(&b);
}

static void timeline(sbuf *b, const pkg_track *t, const char *ind)
{
    sb_printf(b, "%s<SegmentTemplate timescale=\"%d\" initialization=\"$RepresentationID$/init.mp4\" "
              "media=\"$RepresentationID$/seg_$Number%%05d$.m4s\" startNumber=\"0\">\n",
              ind, t->timescale);
    sb_printf(b, "%s  <SegmentTimeline>\n", ind);
    for (int i = 0; i < t->nsegs;) {
        int r = 0;
        while (i + r + 1 < t->nsegs && t->segs[i + r + 1].duration == t->segs[i].duration &&
               t->segs[i + r + 1].start == t->segs[i + r].start + t->segs[i + r].duration)
            r++;
        int contiguous = i > 0 && t->segs[i].start == t->segs[i - 1].start + t->segs[i - 1].duration;
        sb_printf(b, "%s    <S ", ind);
        if (!contiguous)
            sb_printf(b, "t=\"%lld\" ", (long long)t->segs[i].start);
        sb_printf(b, "d=\"%lld\"", (long long)t->segs[i].duration);
        if (r)
            sb_printf(b, " r=\"%d\"", r);
        sb_printf(b, "/>\n");
        i += r + 1;
    }
    sb_printf(b, "%s  </SegmentTimeline>\n%s</SegmentTemplate>\n", ind, ind);
}

char *pkg_dash_mpd(const pkg_set *s)
{
    sbuf b = { 0 };
    int mbt = (int)ceil(s->segment_seconds > 0 ? s->segment_seconds : 4);
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
              "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
              "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" "
              "mediaPresentationDuration=\"PT%.3fS\" minBufferTime=\"PT%dS\">\n",
              s->duration, mbt);
    sb_printf(&b, "  <Period id=\"0\" start=\"PT0S\">\n");
    if (s->nvideo > 0) {
        const pkg_track *top = &s->video[s->nvideo - 1];
        int mw = 0, mh = 0;
        for (int i = 0; i < s->nvideo; i++) {
            if (s->video[i].width > mw)
                mw = s->video[i].width;
            if (s->video[i].height > mh)
                mh = s->video[i].height;
        }
        sb_printf(&b, "    <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" "
                  "segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"%d\" maxHeight=\"%d\" "
                  "maxFrameRate=\"%d/%d\">\n", mw, mh, top->fps_num, top->fps_den);
        for (int i = 0; i < s->nvideo; i++) {
            const pkg_track *v = &s->video[i];
            sb_printf(&b, "      <Representation id=\"%s\" bandwidth=\"%lld\" width=\"%d\" "
                      "height=\"%d\" frameRate=\"%d/%d\" sar=\"1:1\" codecs=\"%s\">\n",
                      v->name, (long long)pkg_peak_bps(v), v->width, v->height, v->fps_num,
                      v->fps_den, v->codecs);
            timeline(&b, v, "        ");
            sb_printf(&b, "      </Representation>\n");
        }
        sb_printf(&b, "    </AdaptationSet>\n");
    }
    if (s->audio) {
        const pkg_track *a = s->audio;
        sb_printf(&b, "    <AdaptationSet id=\"1\" contentType=\"audio\" mimeType=\"audio/mp4\" "
                  "segmentAlignment=\"true\" startWithSAP=\"1\"");
        if (a->lang[0]) {
            char tag[16];
            pkg_lang_tag(a->lang, tag, sizeof(tag));
            sb_printf(&b, " lang=\"");
            sb_quoted(&b, tag, 1);
            sb_printf(&b, "\"");
        }
        sb_printf(&b, ">\n      <AudioChannelConfiguration "
                  "schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" "
                  "value=\"%d\"/>\n", a->channels);
        sb_printf(&b, "      <Representation id=\"%s\" bandwidth=\"%lld\" codecs=\"%s\" "
                  "audioSamplingRate=\"%d\">\n", a->name, (long long)pkg_peak_bps(a), a->codecs,
                  a->sample_rate);
        timeline(&b, a, "        ");
        sb_printf(&b, "      </Representation>\n    </AdaptationSet>\n");
    }
    for (int i = 0; i < s->ntexts; i++) {
        const pkg_text *x = &s->texts[i];
        sb_printf(&b, "    <AdaptationSet id=\"%d\" contentType=\"text\" mimeType=\"text/vtt\"",
                  2 + i);
        if (x->lang[0]) {
            char tag[16];
            pkg_lang_tag(x->lang, tag, sizeof(tag));
            sb_printf(&b, " lang=\"");
            sb_quoted(&b, tag, 1);
            sb_printf(&b, "\"");
        }
        sb_printf(&b, ">\n      <Representation id=\"sub-%s\" bandwidth=\"256\">\n"
                  "        <BaseURL>subtitles/%s.vtt</BaseURL>\n      </Representation>\n"
                  "    </AdaptationSet>\n", x->name, x->name);
    }
    sb_printf(&b, "  </Period>\n</MPD>\n");
    return sb_done(&b);
}
