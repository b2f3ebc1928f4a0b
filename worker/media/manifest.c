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


/* The language attribute, when known: HLS `LANGUAGE="en",`, DASH ` lang="en"`. */
static void sb_lang(sbuf *b, const char *lang, int xml)
{
    if (!lang[0])
        return;
    char tag[16];
    pkg_lang_tag(lang, tag, sizeof(tag));
    sb_printf(b, xml ? " lang=\"" : "LANGUAGE=\"");
    sb_quoted(b, tag, xml);
    sb_printf(b, xml ? "\"" : "\",");
}

static const char *const lang_map[][3] = {
    { "eng", "en", "English" }, { "fre", "fr", "French" }, { "fra", "fr", "French" },
    { "ger", "de", "German" }, { "deu", "de", "German" }, { "spa", "es", "Spanish" },
    { "ita", "it", "Italian" }, { "por", "pt", "Portuguese" }, { "rus", "ru", "Russian" },
    { "jpn", "ja", "Japanese" }, { "chi", "zh", "Chinese" }, { "zho", "zh", "Chinese" },
    { "kor", "ko", "Korean" }, { "ara", "ar", "Arabic" }, { "hin", "hi", "Hindi" },
    { "dut", "nl", "Dutch" }, { "nld", "nl", "Dutch" }, { "swe", "sv", "Swedish" },
    { "pol", "pl", "Polish" }, { "tur", "tr", "Turkish" }, { "dan", "da", "Danish" },
    { "nor", "no", "Norwegian" }, { "fin", "fi", "Finnish" }, { "cze", "cs", "Czech" },
    { "ces", "cs", "Czech" }, { "gre", "el", "Greek" }, { "ell", "el", "Greek" },
    { "heb", "he", "Hebrew" }, { "hun", "hu", "Hungarian" }, { "ukr", "uk", "Ukrainian" },
    { "vie", "vi", "Vietnamese" }, { "tha", "th", "Thai" }, { "ind", "id", "Indonesian" },
    { "rum", "ro", "Romanian" }, { "ron", "ro", "Romanian" }, { "cat", "ca", "Catalan" },
    { "bul", "bg", "Bulgarian" }, { "hrv", "hr", "Croatian" }, { "srp", "sr", "Serbian" },
    { "slo", "sk", "Slovak" }, { "slk", "sk", "Slovak" }, { "per", "fa", "Persian" },
    { "fas", "fa", "Persian" }, { "may", "ms", "Malay" }, { "msa", "ms", "Malay" },
};

void pkg_lang_tag(const char *iso, char *out, size_t outlen)
{
    char low[16];
    size_t n = 0;
    for (; iso[n] && n + 1 < sizeof(low); n++)
        low[n] = (char)(iso[n] >= 'A' && iso[n] <= 'Z' ? iso[n] + 32 : iso[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(lang_map) / sizeof(lang_map[0]); i++)
        if (!strcmp(low, lang_map[i][0])) {
            snprintf(out, outlen, "%s", lang_map[i][1]);
            return;
        }
    /* BCP 47 case: language lower, script title ("Hant"), region upper ("BR") */
    for (char *sub = strchr(low, '-'); sub; sub = strchr(sub + 1, '-')) {
        size_t len = strcspn(sub + 1, "-");
        if (len == 2)
            for (size_t k = 1; k <= 2; k++)
                sub[k] = (char)(sub[k] >= 'a' && sub[k] <= 'z' ? sub[k] - 32 : sub[k]);
        else if (len == 4 && sub[1] >= 'a' && sub[1] <= 'z')
            sub[1] = (char)(sub[1] - 32);
    }
    snprintf(out, outlen, "%s", low);
}

const char *pkg_lang_name(const char *tag)
{
    char t[16];
    pkg_lang_tag(tag, t, sizeof(t));
    t[strcspn(t, "-")] = '\0';
    for (size_t i = 0; i < sizeof(lang_map) / sizeof(lang_map[0]); i++)
        if (!strcmp(t, lang_map[i][1]))
            return lang_map[i][2];
    return NULL;
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

static void head(sbuf *b, int target, int event, int iframes)
{
    sb_printf(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n", target);
    sb_printf(b, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:%s\n", event ? "EVENT" : "VOD");
    if (event)   /* else players may start at the live edge */
        sb_printf(b, "#EXT-X-START:TIME-OFFSET=0\n");
    if (iframes)
        sb_printf(b, "#EXT-X-I-FRAMES-ONLY\n");
    sb_printf(b, "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n");
}

static void media_head(sbuf *b, const pkg_track *t, int iframes)
{
    head(b, pkg_target_duration(t), 0, iframes);
}

char *pkg_hls_media_event(const pkg_track *t, int nsegs, int target)
{
    sbuf b = { 0 };
    head(&b, target, 1, 0);
    for (int i = 0; i < nsegs && i < t->nsegs; i++)
        sb_printf(&b, "#EXTINF:%.3f,\nseg_%05d.m4s\n", extinf(t, i), i);
    return sb_done(&b);
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

static void iframe_lines(sbuf *b, const pkg_track *t, int n)
{
    for (int i = 0; i < n && i < t->nsegs; i++)
        sb_printf(b, "#EXTINF:%.3f,\n#EXT-X-BYTERANGE:%lld@0\nseg_%05d.m4s\n", extinf(t, i),
                  (long long)t->segs[i].iframe_end, i);
}

char *pkg_hls_iframes(const pkg_track *t)
{
    sbuf b = { 0 };
    media_head(&b, t, 1);
    iframe_lines(&b, t, t->nsegs);
    sb_printf(&b, "#EXT-X-ENDLIST\n");
    return sb_done(&b);
}

char *pkg_hls_iframes_event(const pkg_track *t, int nsegs, int target)
{
    sbuf b = { 0 };
    head(&b, target, 1, 1);
    iframe_lines(&b, t, nsegs);
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

static int set_naudio(const pkg_set *s)
{
    return !s->audio ? 0 : s->naudio > 0 ? s->naudio : 1;
}

/* HLS GROUP-ID of an audio rendition: one group per codec and layout. */
static void audio_group(const pkg_track *a, char *out, size_t n)
{
    int aac = !strncmp(a->codecs, "mp4a.40.", 8);
    if (a->channels <= 2)
        snprintf(out, n, aac ? "audio" : "audio-%.4s", a->codecs);
    else if (a->channels == 6)
        snprintf(out, n, aac ? "audio-51" : "audio-51-%.4s", a->codecs);
    else
        snprintf(out, n, aac ? "audio-%dch" : "audio-%dch-%.4s", a->channels, a->codecs);
}

/* The group's DEFAULT=YES rendition: the source's default track, else the first. */
static int group_default(const pkg_set *s, const char *group)
{
    int first = -1;
    for (int i = 0; i < set_naudio(s); i++) {
        char g[32];
        audio_group(&s->audio[i], g, sizeof(g));
        if (strcmp(g, group))
            continue;
        if (s->audio[i].is_default)
            return i;
        if (first < 0)
            first = i;
    }
    return first;
}

/* Is audio[i] the first rendition of its group? */
static int group_first(const pkg_set *s, int i, char *group, size_t n)
{
    audio_group(&s->audio[i], group, n);
    for (int k = 0; k < i; k++) {
        char g[32];
        audio_group(&s->audio[k], g, sizeof(g));
        if (!strcmp(g, group))
            return 0;
    }
    return 1;
}

/* NAME of audio[i]: its label, else its language's name (or tag), else
 * "Audio"; a name already used in the group gets " 2", " 3", ... */
static void audio_name(const pkg_set *s, int i, char *out, size_t n)
{
    const pkg_track *a = &s->audio[i];
    char base[80];
    const char *ln = a->lang[0] ? pkg_lang_name(a->lang) : NULL;
    if (a->label[0])
        snprintf(base, sizeof(base), "%s", a->label);
    else if (ln || a->lang[0])
        snprintf(base, sizeof(base), "%s", ln ? ln : a->lang);
    else
        snprintf(base, sizeof(base), "Audio");
    char g[32];
    audio_group(a, g, sizeof(g));
    int same = 0;
    for (int k = 0; k < i; k++) {
        char gk[32], nk[80];
        audio_group(&s->audio[k], gk, sizeof(gk));
        if (strcmp(gk, g))
            continue;
        audio_name(s, k, nk, sizeof(nk));
        size_t bl = strlen(base);
        if (!strncmp(nk, base, bl) && (nk[bl] == '\0' || nk[bl] == ' '))
            same++;
    }
    if (same)
        snprintf(out, n, "%s %d", base, same + 1);
    else
        snprintf(out, n, "%s", base);
}

static void group_rates(const pkg_set *s, const char *group, int64_t *peak, int64_t *avg)
{
    *peak = *avg = 0;
    for (int i = 0; i < set_naudio(s); i++) {
        char g[32];
        audio_group(&s->audio[i], g, sizeof(g));
        if (strcmp(g, group))
            continue;
        int64_t pk = s->audio[i].bound_bps ? s->audio[i].bound_bps : pkg_peak_bps(&s->audio[i]);
        if (pk > *peak)
            *peak = pk;
        if (pkg_avg_bps(&s->audio[i]) > *avg)
            *avg = pkg_avg_bps(&s->audio[i]);
    }
}

static void media_audio(sbuf *b, const pkg_set *s, int i)
{
    const pkg_track *a = &s->audio[i];
    char g[32], name[96];
    audio_group(a, g, sizeof(g));
    audio_name(s, i, name, sizeof(name));
    sb_printf(b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"%s\",NAME=\"", g);
    sb_quoted(b, name, 0);
    sb_printf(b, "\",");
    sb_lang(b, a->lang, 0);
    sb_printf(b, "DEFAULT=%s,AUTOSELECT=YES,", group_default(s, g) == i ? "YES" : "NO");
    if (!strcmp(a->role, "description"))
        sb_printf(b, "CHARACTERISTICS=\"public.accessibility.describes-video\",");
    sb_printf(b, "CHANNELS=\"%d\",URI=\"%s/playlist.m3u8\"\n", a->channels, a->name);
}

char *pkg_hls_master(const pkg_set *s)
{
    sbuf b = { 0 };
    sb_printf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n");
    int na = set_naudio(s);
    for (int i = 0; i < na; i++)
        media_audio(&b, s, i);
    for (int i = 0; i < s->ntexts; i++) {
        const pkg_text *x = &s->texts[i];
        sb_printf(&b, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"");
        sb_quoted(&b, x->label[0] ? x->label : x->name, 0);
        sb_printf(&b, "\",");
        sb_lang(&b, x->lang, 0);
        sb_printf(&b, "DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subtitles/%s.m3u8\"\n", x->name);
    }
    if (na || s->ntexts)
        sb_printf(&b, "\n");
    /* one pass per audio group (one pass without audio) */
    for (int gi = 0; gi < (na ? na : 1); gi++) {
        char g[32] = "";
        const pkg_track *a = NULL;
        int64_t apeak = 0, aavg = 0;
        if (na) {
            if (!group_first(s, gi, g, sizeof(g)))
                continue;
            a = &s->audio[group_default(s, g)];
            group_rates(s, g, &apeak, &aavg);
        }
        if (!s->nvideo && a) {   /* audio only: the group's default rendition is the variant */
            sb_printf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%lld,AVERAGE-BANDWIDTH=%lld,CODECS=\"%s\","
                      "AUDIO=\"%s\"\n%s/playlist.m3u8\n", (long long)apeak, (long long)aavg,
                      a->codecs, g, a->name);
            continue;
        }
        for (int i = 0; i < s->nvideo; i++) {
            const pkg_track *v = &s->video[i];
            char fps[32];
            fps_text(fps, sizeof(fps), v->fps_num, v->fps_den);
            sb_printf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%lld,",
                      (long long)((v->bound_bps ? v->bound_bps : pkg_peak_bps(v)) + apeak));
            if (!s->early)
                sb_printf(&b, "AVERAGE-BANDWIDTH=%lld,", (long long)(pkg_avg_bps(v) + aavg));
            sb_printf(&b, "CODECS=\"%s%s%s\",RESOLUTION=%dx%d,FRAME-RATE=%s", v->codecs,
                      a ? "," : "", a ? a->codecs : "", v->width, v->height, fps);
            if (a)
                sb_printf(&b, ",AUDIO=\"%s\"", g);
            if (s->ntexts)
                sb_printf(&b, ",SUBTITLES=\"subs\"");
            sb_printf(&b, "\n%s/playlist.m3u8\n", v->name);
        }
    }
    int gap = 1;
    for (int i = 0; i < s->nvideo; i++) {
        const pkg_track *v = &s->video[i];
        if (s->early && !v->iframe_bound_bps)
            continue;
        if (gap)
            sb_printf(&b, "\n");
        gap = 0;
        sb_printf(&b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%lld,CODECS=\"%s\",RESOLUTION=%dx%d,"
                  "URI=\"%s/iframes.m3u8\"\n",
                  (long long)(v->iframe_bound_bps ? v->iframe_bound_bps : pkg_iframe_peak_bps(v)),
                  v->codecs, v->width, v->height, v->name);
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

/* Same codec family ("avc1", "av01", "mp4a"): the first four characters. */
static int same_family(const pkg_track *a, const pkg_track *b)
{
    return !strncmp(a->codecs, b->codecs, 4);
}

static void mpd_video_set(sbuf *b, const pkg_set *s, int first, int id)
{
    const pkg_track *f = &s->video[first];
    int mw = 0, mh = 0, top = first;
    for (int i = first; i < s->nvideo; i++) {
        const pkg_track *v = &s->video[i];
        if (!same_family(v, f))
            continue;
        if (v->width > mw)
            mw = v->width;
        if (v->height > mh)
            mh = v->height;
        top = i;
    }
    /* AV1 before H.264 where both decode (dash.js and Shaka honour
     * selectionPriority; a player without AV1 drops that set) */
    sb_printf(b, "    <AdaptationSet id=\"%d\" contentType=\"video\" mimeType=\"video/mp4\" "
              "segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"%d\" maxHeight=\"%d\" "
              "maxFrameRate=\"%d/%d\" selectionPriority=\"%d\">\n", id, mw, mh,
              s->video[top].fps_num, s->video[top].fps_den, strncmp(f->codecs, "av01", 4) ? 1 : 2);
    for (int i = first; i < s->nvideo; i++) {
        const pkg_track *v = &s->video[i];
        if (!same_family(v, f))
            continue;
        sb_printf(b, "      <Representation id=\"%s\" bandwidth=\"%lld\" width=\"%d\" "
                  "height=\"%d\" frameRate=\"%d/%d\" sar=\"1:1\" codecs=\"%s\">\n",
                  v->name, (long long)pkg_peak_bps(v), v->width, v->height, v->fps_num,
                  v->fps_den, v->codecs);
        timeline(b, v, "        ");
        sb_printf(b, "      </Representation>\n");
    }
    sb_printf(b, "    </AdaptationSet>\n");
}

static void mpd_audio_set(sbuf *b, const pkg_set *s, int i, int id, int is_main)
{
    const pkg_track *a = &s->audio[i];
    char name[96];
    audio_name(s, i, name, sizeof(name));
    sb_printf(b, "    <AdaptationSet id=\"%d\" contentType=\"audio\" mimeType=\"audio/mp4\" "
              "segmentAlignment=\"true\" startWithSAP=\"1\"", id);
    sb_lang(b, a->lang, 1);
    sb_printf(b, ">\n      <AudioChannelConfiguration "
              "schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" "
              "value=\"%d\"/>\n", a->channels);
    sb_printf(b, "      <Label>");   /* the HLS NAME */
    sb_quoted(b, name, 1);
    sb_printf(b, "</Label>\n");
    sb_printf(b, "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"%s\"/>\n",
              a->role[0] ? a->role : is_main ? "main" : "alternate");
    sb_printf(b, "      <Representation id=\"%s\" bandwidth=\"%lld\" codecs=\"%s\" "
              "audioSamplingRate=\"%d\">\n", a->name, (long long)pkg_peak_bps(a), a->codecs,
              a->sample_rate);
    timeline(b, a, "        ");
    sb_printf(b, "      </Representation>\n    </AdaptationSet>\n");
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
    int id = 0;
    for (int i = 0; i < s->nvideo; i++) {
        int seen = 0;
        for (int k = 0; k < i && !seen; k++)
            seen = same_family(&s->video[k], &s->video[i]);
        if (!seen)
            mpd_video_set(&b, s, i, id++);
    }
    int na = set_naudio(s), main_track = -1;
    for (int i = 0; i < na && main_track < 0; i++)
        if (s->audio[i].is_default)
            main_track = i;
    for (int i = 0; i < na; i++)
        mpd_audio_set(&b, s, i, id++,
                      main_track < 0 ? i == 0 : s->audio[i].is_default);
    for (int i = 0; i < s->ntexts; i++) {
        const pkg_text *x = &s->texts[i];
        sb_printf(&b, "    <AdaptationSet id=\"%d\" contentType=\"text\" mimeType=\"text/vtt\"",
                  id++);
        sb_lang(&b, x->lang, 1);
        sb_printf(&b, ">\n      <Representation id=\"sub-%s\" bandwidth=\"256\">\n"
                  "        <BaseURL>subtitles/%s.vtt</BaseURL>\n      </Representation>\n"
                  "    </AdaptationSet>\n", x->name, x->name);
    }
    sb_printf(&b, "  </Period>\n</MPD>\n");
    return sb_done(&b);
}
